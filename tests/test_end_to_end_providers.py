"""End to end per provider shape: the simulator serving a provider's API (`--sms-api`), the
exporter reading it with that provider's adapter; exported counters equal the truth.

A provider's API does not know the carrier or the area of a message (the bank does), so the
SMS series are compared summed over those two labels; receipts and transactions are compared
as they are. Provider dates have whole seconds: latency histograms are compared by their count,
and their buckets within the one-second rounding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.app import Exporter
from exporter.config import parse_config, simulator_config_document
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.simulator.shapes import TWILIO_ACCOUNT, VONAGE_ACCOUNT
from exporter.timestamps import parse_duration_ms, parse_rfc3339_ms

from harness import Series, diff, exported_like, get_json, scrape, truth_series, wait_until

START = "2026-11-26T08:00:00Z"
EXACT = (
    "smswatch_sms_submitted_total",
    "smswatch_sms_messages_total",
    "smswatch_pos_transactions_total",
    "smswatch_receipts_total",
)
HISTOGRAMS = ("smswatch_sms_delivery_seconds_bucket", "smswatch_receipt_notify_seconds_bucket")
UNKNOWABLE = {"carrier", "area"}  # the bank knows them, the provider's API does not


def summed(series: dict[Series, float], names: tuple[str, ...]) -> dict[Series, float]:
    out: Counter[Series] = Counter()
    for (name, labels), value in series.items():
        if name in names:
            kept = frozenset((k, v) for k, v in labels if k not in UNKNOWABLE)
            out[(name, kept)] += value
    return {k: v for k, v in out.items() if v}


def bucket_bounds(truth: dict[Series, float]) -> list[tuple[Series, float, float]]:
    """Each truth bucket with the range a one-second rounding of either timestamp allows: the
    next lower bucket's count and the next higher one's (exact for +Inf, the count)."""
    by_series: dict[tuple[str, frozenset[tuple[str, str]]], dict[float, float]] = {}
    for (name, labels), value in truth.items():
        le = dict(labels)["le"]
        rest = frozenset((k, v) for k, v in labels if k != "le")
        by_series.setdefault((name, rest), {})[float(le)] = value
    out = []
    for (name, rest), buckets in by_series.items():
        bounds = sorted(buckets)
        for i, le in enumerate(bounds):
            key = (name, rest | {("le", "+Inf" if le == float("inf") else repr(le))})
            if le == float("inf"):
                out.append((key, buckets[le], buckets[le]))
                continue
            low = buckets[bounds[i - 1]] if i > 0 else 0.0
            out.append((key, low, buckets[bounds[i + 1]]))
    return out


@pytest.fixture(params=["twilio", "vonage"])
def shaped_sim(request: pytest.FixtureRequest) -> Iterator[SimulatorServer]:
    settings = settings_from_options(
        seed=11,
        speed=600,
        start_ms=parse_rfc3339_ms(START),
        traffic_for_ms=parse_duration_ms("45m"),
        scenario=None,
        rate=1.0,
        sms_api=request.param,
    )
    sim = SimulatorServer(settings, "127.0.0.1", 0)
    sim.start()
    yield sim
    sim.stop()


PROVIDER_KEYS: dict[str, dict[str, Any]] = {
    "twilio": {
        "account_sid": TWILIO_ACCOUNT,
        "auth": {"type": "basic", "username": TWILIO_ACCOUNT, "password": "${TOKEN}"},
        "page_size": 1000,
    },
    "vonage": {
        "account_id": VONAGE_ACCOUNT,
        "auth": {"type": "basic", "username": VONAGE_ACCOUNT, "password": "${TOKEN}"},
    },
}


def shaped_config(tmp_path: Path, url: str, shape: str) -> Any:
    doc = simulator_config_document(url, "200ms")
    doc["state"]["path"] = str(tmp_path / "state.sqlite")
    doc["sources"][0] = {
        "name": "sms",
        "kind": "sms_gateway",
        "provider": shape,
        "gateway": "bank-sms",
        "base_url": url,
        "poll_interval": "200ms",
        "list_lag": "1s",
        "timeout": {"connect": "1s", "read": "1500ms"},
        "retries": 2,
        "backoff": "50ms",
        **PROVIDER_KEYS[shape],
    }
    doc["sources"][1].update(
        {"timeout": {"connect": "1s", "read": "1500ms"}, "retries": 2, "backoff": "50ms"}
    )
    return parse_config(doc, env={"TOKEN": "not-checked-by-the-simulator"})


def test_provider_shape_exported_counters_equal_the_truth(
    tmp_path: Path, shaped_sim: SimulatorServer
) -> None:
    shape = shaped_sim.simulation.settings.sms_api
    exporter = Exporter(shaped_config(tmp_path, shaped_sim.url, shape), "127.0.0.1", 0)
    exporter.start()
    metrics_url = f"http://127.0.0.1:{exporter.port}/metrics"
    try:
        truth = wait_until(
            lambda: (t := get_json(f"{shaped_sim.url}/sim/v1/truth"))["complete"] and t,
            120,
            "the simulator to finish its traffic",
            interval=0.5,
        )
        assert truth["parameters"]["sms_api"] == shape
        expected = summed(truth_series(truth), EXACT)
        last: list[str] = []

        def agrees() -> bool:
            nonlocal last
            last = diff(expected, summed(exported_like(scrape(metrics_url), EXACT), EXACT))
            return not last

        try:
            wait_until(agrees, 60, "the exporter to catch up", interval=0.5)
        except AssertionError:
            pytest.fail("exported counters differ from the truth:\n" + "\n".join(last[:40]))
        exported = scrape(metrics_url)
        want = summed(truth_series(truth), HISTOGRAMS)
        got = summed(exported_like(exported, HISTOGRAMS), HISTOGRAMS)
        for key, low, high in bucket_bounds(want):
            assert low <= got.get(key, 0) <= high, (key, low, got.get(key), high)
        statuses = {dict(k[1])["status"] for k in expected if k[0].endswith("messages_total")}
        assert (
            statuses
            == {
                "twilio": {"delivered", "undelivered", "failed", "unknown"},  # given up: unknown
                "vonage": {"delivered", "failed", "rejected", "expired", "unknown"},
            }[shape]
        )
        receipts = sum(v for (n, _), v in expected.items() if n == "smswatch_receipts_total")
        assert receipts > 1000
    finally:
        exporter.stop()

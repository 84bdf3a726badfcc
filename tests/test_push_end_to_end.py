"""The pushing shape end to end: the simulator pushes Alibaba SmsReport batches to a real
`smswatch run` process, which is killed (`kill -9`) and restarted while the simulator keeps
pushing. The exporter follows the provider's clock (the pushes' `Date` header), so it decides
receipts at all although the simulator runs 600 times faster than its wall clock; everything it
was told is exact; a receipt whose SMS report could have come while it was down (or before it
first listened) is `unknown`, never a false `missing`, and the gap is exported.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_end_to_end_providers import summed

from exporter.app import SIMULATED_CLOCK_ENV
from exporter.config import simulator_config_document
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.timestamps import parse_duration_ms, parse_rfc3339_ms

from harness import (
    PROCESS_LOCAL,
    Process,
    Series,
    StateBackend,
    diff,
    exported_like,
    finished_truth,
    free_port,
    get_json,
    http_get,
    scrape,
    truth_series,
    wait_until,
)

START = "2026-11-26T08:00:00Z"
RECEIPTS = "smswatch_receipts_total"
SCENARIO = """
faults:
  - {kind: integration_drop, start: 28m, duration: 10m, share: 0.2}
  - {kind: invalid_numbers, start: 10m, duration: 10m, share: 0.2}
"""
TOLD = ("smswatch_sms_messages_total", "smswatch_pos_transactions_total")


def write_config(
    tmp_path: Path,
    sim_url: str,
    second_acquirer: bool = False,
    state: StateBackend | None = None,
) -> Path:
    """Alibaba pushes for the SMS, the generic acquirer feed (and its second one) polled; the
    state on `state` (default: SQLite)."""
    doc: dict[str, Any] = simulator_config_document(sim_url, "200ms")
    doc["state"] = (state or StateBackend("sqlite")).document(tmp_path)
    doc["sources"][0] = {
        "name": "sms",
        "kind": "sms_gateway",
        "gateway": "bank-sms",
        "provider": "aliyun",
        "pull": False,
        "poll_interval": "200ms",
        "push": {"secret": "${PUSH_SECRET}", "lag": "1m"},
    }
    if second_acquirer:
        doc["sources"].append(
            {"name": "acquirer-2", "kind": "acquirer", "base_url": sim_url,
             "path": "/acquirer-2/v1/transactions", "acquirers": doc["sources"][1]["acquirers"],
             "poll_interval": "200ms", "page_size": 1000}
        )  # fmt: skip
    for source in doc["sources"][1:]:
        source.update(
            {"timeout": {"connect": "1s", "read": "1500ms"}, "retries": 2, "backoff": "50ms"}
        )
    for source in doc["sources"]:
        source["max_clock_skew"] = "3s"
    path = tmp_path / "smswatch.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def start_exporter(tmp_path: Path, config: Path, port: int, clock: str = "") -> Process:
    """`smswatch run` (on the simulated `clock` when given), once it listens."""
    process = Process(
        ["run", "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"],
        tmp_path / "exporter.log",
        env={"PUSH_SECRET": "pushed", **({SIMULATED_CLOCK_ENV: clock} if clock else {})},
    )
    wait_until(
        lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200,
        20,
        "the exporter to listen",
    )
    return process


def per_acquirer(series: dict[Series, float], **labels: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for (name, ls), value in series.items():
        found = dict(ls)
        if name == RECEIPTS and all(found.get(k) == v for k, v in labels.items()):
            out[found["acquirer"]] += value
    return out


def test_pushes_across_a_kill_are_exact_where_known_and_unknown_where_unwatched(
    tmp_path: Path, state_backend: StateBackend
) -> None:
    pushes_across_a_kill(tmp_path, SCENARIO, state=state_backend)


def told_difference(truth: dict[str, Any], exported: dict[Series, float]) -> list[str]:
    """How exported series differ from what a pushing provider told and the acquirer published
    (empty when equal): messages with a final status, transactions, receipts delivered or
    failed, and every acquirer's receipts in total (missing and unknown ones: see the test)."""
    everything = truth_series(truth)
    expected = summed(
        {k: v for k, v in everything.items() if ("status", "unknown") not in k[1]}, TOLD
    )
    for key, value in summed(everything, (RECEIPTS,)).items():
        if dict(key[1])["outcome"] in ("delivered", "failed"):
            expected[key] = value
    got = summed(exported_like(exported, (*TOLD, RECEIPTS)), (*TOLD, RECEIPTS))
    told = {
        k: v
        for k, v in got.items()
        if ("status", "unknown") not in k[1]
        and dict(k[1]).get("outcome") not in ("missing", "unknown")
    }
    lines = diff(expected, told)
    if per_acquirer(got) != per_acquirer(everything):
        lines.append(
            f"receipts per acquirer: truth={per_acquirer(everything)} got={per_acquirer(got)}"
        )
    return lines


def pushes_across_a_kill(
    tmp_path: Path, faults: str, *, together: bool = False, state: StateBackend | None = None
) -> dict[str, Any]:
    """Run the pushing shape with `faults`, kill the exporter once at 15m, and hold it to the
    truth; returns the truth. `together`: the faults reach the acquirer feeds too (the second
    acquirer is configured) and move the upstream's clock, so the exporter runs on the
    simulated clock (the cap on pushes' `Date` headers protects only against a clock ahead of
    a clock that is right). `state`: where the exporter keeps it (default: SQLite)."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(faults)
    port = free_port()
    settings = settings_from_options(
        seed=2,
        speed=300,
        start_ms=parse_rfc3339_ms(START),
        traffic_for_ms=parse_duration_ms("40m"),
        scenario=str(scenario),
        rate=1.0,
        sms_api="aliyun",
        push_url=f"http://127.0.0.1:{port}/push/sms?secret=pushed",
    )
    sim_port = free_port()
    sim = SimulatorServer(settings, "127.0.0.1", sim_port)
    config = write_config(
        tmp_path, f"http://127.0.0.1:{sim_port}", second_acquirer=together, state=state
    )
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    wall, simulated = time.time(), sim.simulation.clock.now_ms()
    clock = f"{wall}:{simulated - 1000}:{settings.speed}" if together else ""
    exporter = start_exporter(tmp_path, config, port, clock)
    sim.start()  # its first pushes may still fail: what came before the first one is unwatched
    try:
        wait_until(
            lambda: (
                parse_rfc3339_ms(get_json(f"{sim.url}/sim/v1/truth")["sim_time"])
                >= parse_rfc3339_ms(START) + parse_duration_ms("15m")
                and pushes_taken(scrape(metrics_url)) > 0
            ),
            60,
            "simulated time 15m, pushes taken",
        )
        with sim.push_lock:  # no push in flight: the kill falls between two pushes
            before = scrape(metrics_url)
            exporter.kill()
        exporter = start_exporter(tmp_path, config, port, clock)
        after = scrape(metrics_url)
        for key, value in before.items():
            if key[0].endswith("_total") and not key[0].startswith(PROCESS_LOCAL):
                assert after.get(key, 0) >= value, f"{key} went down across a restart"

        truth = finished_truth(sim.url)
        everything = truth_series(truth)
        last: list[str] = []

        def agrees() -> bool:
            nonlocal last
            last = told_difference(truth, scrape(metrics_url))
            return not last

        try:
            wait_until(agrees, 60, "the exporter to catch up", interval=0.5)
        except AssertionError:
            pytest.fail("exported counters differ from the truth:\n" + "\n".join(last))

        exported = scrape(metrics_url)
        push = truth["push"]
        # The gap: what the simulator saw as unacknowledged pushes is what the exporter exports.
        assert push["unobserved"], "the kill left a gap in what the receiver watched"
        unobserved = exported[("smswatch_unobserved_seconds_total", frozenset({("source", "sms")}))]
        assert unobserved == push["unobserved_seconds"] > 0
        # Receipts whose SMS report could have come in the gap (or before the exporter first
        # listened) are unknown: the same ones on both sides, and never a false missing.
        unwatched = per_acquirer_metric(exported, "smswatch_receipts_unobserved_total")
        assert unwatched == per_acquirer_metric(everything, "smswatch_receipts_unobserved_total")
        assert sum(unwatched.values()) > 0
        missing = per_acquirer(exported, outcome="missing")
        untold = Counter(push["receipts_untold"])  # never reported: an outcome-only blind spot
        assert missing == per_acquirer(everything, outcome="missing") + untold
        assert sum(missing.values()) > 0
        assert exporter.stop() == 0
    finally:
        exporter.stop()
        sim.stop()
    return truth


def per_acquirer_metric(series: dict[Series, float], name: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for (found, labels), value in series.items():
        if found == name and value:
            out[dict(labels)["acquirer"]] += value
    return out


def pushes_taken(series: dict[Series, float]) -> float:
    labels = frozenset({("source", "sms"), ("result", "accepted")})
    return series.get(("smswatch_push_requests_total", labels), 0.0)

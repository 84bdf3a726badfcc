"""A window re-read is planned on the upstream's clock, not on ours.

Before an upstream has answered once, the exporter only has its own clock to plan the window
to re-read (Vonage, Stripe, Square; Twilio walks from its first answer). When that clock is
ahead of the upstream's, by more than the window, the plan covers a stretch the upstream has
not reached, while the watermark comes from the upstream's answers: the source would be
declared complete up to the upstream's now without one of its records read, and every receipt
of that stretch decided `missing`. This is what a loaded machine did to the end-to-end test
(the simulator runs days behind the wall clock and had run minutes before the exporter's first
answer). Here the same interleaving happens on purpose: the exporter's clock is 4 days ahead.

Invariant checked after every poll, through the real poller and store: every record the
upstream holds, created inside the lookback and before the committed watermark, is stored.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from test_window_checkpoints import BACKLOG_MS, PROVIDERS, Upstream

from exporter.config import parse_config, simulator_config_document
from exporter.poller import Pipeline, Poller
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.simulator.shapes import VONAGE_ACCOUNT
from exporter.simulator.simulation import SimClock
from exporter.sources.vonage import iso_text
from exporter.store import Store
from exporter.timestamps import parse_duration_ms, parse_rfc3339_ms

from harness import config_with

START = parse_rfc3339_ms("2026-11-26T08:00:00Z")
AHEAD_S = 4 * 86_400  # the exporter's clock is 4 days ahead of the upstream's
LOOKBACK_MS = 86_400_000  # the adapters' default


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    state = Store(str(tmp_path / "state.sqlite"))
    yield state
    state.close()


def test_vonage_on_the_simulator_reads_what_its_watermark_claims(
    tmp_path: Path, store: Store
) -> None:
    wall = [0.0]  # the simulated clock moves only when the test says so
    settings = settings_from_options(
        seed=1,
        speed=1.0,
        start_ms=START,
        traffic_for_ms=parse_duration_ms("20m"),
        rate=1.0,
        sms_api="vonage",
    )
    sim = SimulatorServer(settings, "127.0.0.1", 0)
    sim.simulation.clock = SimClock(START, 1.0, wall=lambda: wall[0])
    sim.start()
    try:
        wall[0] = 600.0  # the provider is 10 minutes into its traffic when first asked
        doc = simulator_config_document(sim.url)
        doc["sources"][0] = {
            "name": "sms",
            "kind": "sms_gateway",
            "provider": "vonage",
            "gateway": "bank-sms",
            "base_url": sim.url,
            "account_id": VONAGE_ACCOUNT,
            "list_lag": "1s",
            "retries": 0,
            "auth": {"type": "basic", "username": VONAGE_ACCOUNT, "password": "${TOKEN}"},
        }
        config = parse_config(doc, state_path=str(tmp_path / "state.sqlite"), env={"TOKEN": "t"})
        source = config.sources[0]
        poller = Poller(source, Pipeline(config, store), threading.Event())
        poller.adapter.clock.local = lambda: START / 1000 + AHEAD_S + wall[0]
        poller.poll()
        assert poller.health.up, poller.health.last_error
        watermark = store.source_state(source.name).watermark_ms
        held = provider_records(sim.url, START, START + 900_000)
        claimed = [i for i, at in held.items() if at < watermark]
        assert watermark > START and len(claimed) > 100, (watermark, len(claimed))
        stored = store.messages(source.gateway, claimed)
        assert len(stored) == len(claimed), f"{len(claimed) - len(stored)} claimed, not read"
    finally:
        sim.stop()


def provider_records(url: str, low: int, high: int) -> dict[str, int]:
    """Message id → date_received (Unix ms) of every record the simulated Vonage holds."""
    query = (
        f"account_id={VONAGE_ACCOUNT}&product=SMS&direction=outbound"
        f"&date_start={iso_text(low)}&date_end={iso_text(high)}"
    )
    token = base64.b64encode(f"{VONAGE_ACCOUNT}:t".encode()).decode()
    request = urllib.request.Request(
        f"{url}/v2/reports/records?{query}", headers={"Authorization": f"Basic {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        page = json.loads(response.read())
    assert "next" not in page["_links"]
    return {r["message_id"]: parse_rfc3339_ms(r["date_received"]) for r in page["records"]}


END_MS = START + BACKLOG_MS  # the upstream's now: a record every 10 minutes of 30 hours before


def upstream_poller(provider: str, store: Store, ahead_s: float) -> tuple[Any, Upstream, Poller]:
    """(source, upstream, poller) of a provider whose upstream's clock says END_MS while the
    exporter's says END_MS + `ahead_s`."""
    kind, options, _, _ = PROVIDERS[provider]
    config = config_with(**{kind: {"retries": 0, "deadline": "350s", **options}})
    source = config.sources[0 if kind == "sms" else 1]
    up = Upstream(END_MS)
    poller = Poller(source, Pipeline(config, store), threading.Event())
    poller.adapter.monotonic = up.monotonic
    poller.adapter.clock.local = lambda: END_MS / 1000 + ahead_s
    return source, up, poller


def polls(provider: str, up: Upstream, poller: Poller, most: int) -> Iterator[None]:
    """Up to `most` polls against the fake upstream (yields after each)."""
    _, _, url, serve = PROVIDERS[provider]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, url, callback=lambda r: serve(up, r))
        for _ in range(most):
            up.new_poll()
            poller.poll()
            yield


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_a_clock_ahead_of_the_upstream_never_claims_what_was_not_read(
    provider: str, store: Store
) -> None:
    source, up, poller = upstream_poller(provider, store, AHEAD_S)
    prefix = {"vonage": "v", "twilio": "SM", "stripe": "pi_", "square": "sq"}[provider]
    in_lookback = [t for t in up.times if t >= END_MS - LOOKBACK_MS]
    done = END_MS - source.options["list_lag"]
    watermarks = []
    for _ in polls(provider, up, poller, 30):
        watermark = store.source_state(source.name).watermark_ms
        watermarks.append(watermark)
        ids = [f"{prefix}{t}" for t in in_lookback if t < watermark]
        if source.kind == "sms_gateway":
            read = set(store.messages(source.gateway, ids))
        else:
            read = store.known_transactions(source.name, ids)
        assert read == set(ids), (provider, watermarks, len(ids) - len(read))
        if watermark >= done:
            break
    assert watermarks[-1] == done, (provider, watermarks)


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_a_clock_behind_the_committed_watermark_still_reads_on(provider: str, store: Store) -> None:
    # A restart on a clock 2 days behind the upstream's: on ours, the whole window to re-read
    # (from the committed watermark − give_up_after) lies in the future, and no request would
    # ever be made to learn the upstream's clock: the source would stay stuck.
    source, up, poller = upstream_poller(provider, store, -2 * 86_400)
    store.advance_source(source.name, "", END_MS - 3_600_000)
    done = END_MS - source.options["list_lag"]
    for _ in polls(provider, up, poller, 5):
        if store.source_state(source.name).watermark_ms >= done:
            break
    assert poller.health.up, poller.health.last_error
    assert store.source_state(source.name).watermark_ms == done

"""Watermarks the exporter accepts: capped at its own clock + max_clock_skew, and what is exported
about them (negative lag, clamps, which source holds decisions back). Real SQLite store, real
collector, hand-checkable pages (DESIGN.md "Event time, not wall time")."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
import responses
from prometheus_client import CollectorRegistry, generate_latest
from test_provider_pull import NOON_MS, TWILIO, TWILIO_LIST, fixture
from test_reconcile import counters, gauges, ms, sms, terminal, txn

from exporter.collector import SmswatchCollector
from exporter.config import parse_config, simulator_config_document
from exporter.errors import ConfigError
from exporter.poller import Pipeline, Poller, PollHealth
from exporter.records import Page
from exporter.store import Store

from harness import config_with, parse_exposition

HOURS_8 = 8 * 3_600_000  # Beijing local time labelled `Z`


class Clock:
    """The exporter's clock, moved by hand (Unix seconds)."""

    def __init__(self, minutes: float) -> None:
        self.now_ms = ms(minutes)

    def __call__(self) -> float:
        return self.now_ms / 1000


@pytest.fixture
def clock() -> Clock:
    return Clock(1)


@pytest.fixture
def pipeline(tmp_path: Path, clock: Clock) -> Pipeline:
    raw = simulator_config_document("http://127.0.0.1:1")
    config = parse_config(raw, state_path=str(tmp_path / "state.sqlite"))
    return Pipeline(config, Store(config.state_path), clock=clock)


def page(events: list, watermark_ms: int) -> Page:  # type: ignore[type-arg]
    return Page(events, 0, "c", False, watermark_ms)


def metrics(p: Pipeline, clock: Clock) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    health = {s.name: PollHealth() for s in p.config.sources}
    registry.register(SmswatchCollector(p.config, p.store, health, clock=clock))
    return parse_exposition(generate_latest(registry).decode())


def test_a_page_ahead_of_our_clock_gives_up_nothing_and_later_deliveries_count(
    pipeline: Pipeline, clock: Clock
) -> None:
    sms_source, acquirer = pipeline.config.sources
    pipeline.commit_terminals(acquirer, [terminal("T1", True, -60)], 0, ms(1))
    pipeline.commit_transactions(acquirer, page([txn(1, 0), txn(2, 0.5)], ms(1)))
    pipeline.commit_sms(sms_source, page([sms("m1", "rrn1", "submitted", 0.2, 0.2)], ms(1)))
    # An upstream clock step: the SMS feed's and the acquirer's next pages claim to be complete
    # up to 8 hours from now. Nothing is pending that long: it must not all be given up.
    clock.now_ms = ms(2)
    pipeline.commit_sms(sms_source, page([], ms(2) + HOURS_8))
    pipeline.commit_transactions(acquirer, page([], ms(2) + HOURS_8))
    pipeline.commit_terminals(acquirer, [terminal("T1", True, -60)], 0, ms(2) + HOURS_8)
    assert counters(pipeline, "smswatch_sms_messages_total") == {}
    assert counters(pipeline, "smswatch_receipts_total") == {}, "nothing decided before its time"
    assert gauges(pipeline, "smswatch_sms_pending") == {("bank-sms",): 1.0}
    assert counters(pipeline, "smswatch_source_watermark_clamped_total") == {
        ("sms",): 1.0,
        ("acquirer",): 2.0,  # the transactions page and the inventory
    }
    exported = metrics(pipeline, clock)
    lag = exported[("smswatch_source_lag_seconds", frozenset({("source", "sms")}))]
    assert lag == -60.0, "the source is ahead: negative lag (capped at now + 60 s), not 0"

    # The real delivery comes later, as does the second receipt's SMS (submitted in time).
    clock.now_ms = ms(12)
    pipeline.commit_sms(
        sms_source,
        page(
            [
                sms("m1", "rrn1", "delivered", 0.2, 3),
                sms("m2", "rrn2", "submitted", 4, 4),
                sms("m2", "rrn2", "delivered", 4, 4.1),
            ],
            ms(11),
        ),
    )
    pipeline.commit_transactions(acquirer, page([], ms(11)))
    pipeline.commit_terminals(acquirer, [terminal("T1", True, -60)], 0, ms(11))
    assert ("sms", "conflict") not in counters(pipeline, "smswatch_records_total")
    assert counters(pipeline, "smswatch_sms_messages_total") == {
        ("bank-sms", "china-mobile", "east", "delivered", "none"): 2.0
    }
    assert counters(pipeline, "smswatch_receipts_total") == {
        ("acq-north", "delivered", "none"): 2.0
    }


def test_clamps_are_logged_once_per_poll_with_the_source(
    pipeline: Pipeline, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    sms_source = pipeline.config.sources[0]
    poller = Poller(sms_source, pipeline, threading.Event(), clock)
    pipeline.commit_sms(sms_source, page([], ms(1) + HOURS_8))
    pipeline.commit_sms(sms_source, page([], ms(1) + HOURS_8 + 1))
    with caplog.at_level(logging.WARNING, logger="exporter.poller"):
        poller._log_clamps()
        poller._log_clamps()
    lines = [r for r in caplog.records if "max_clock_skew" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].source == "sms"  # type: ignore[attr-defined]
    assert lines[0].capped == 2  # type: ignore[attr-defined]
    assert lines[0].ahead_s == pytest.approx(8 * 3600 - 60, abs=0.01)  # type: ignore[attr-defined]


def test_the_source_that_holds_decisions_back_is_exported(pipeline: Pipeline, clock: Clock) -> None:
    sms_source, acquirer = pipeline.config.sources
    clock.now_ms = ms(30)
    pipeline.commit_sms(sms_source, page([], ms(29.8)))
    pipeline.commit_transactions(acquirer, page([], ms(20)))
    pipeline.commit_terminals(acquirer, [terminal("T1", True, -60)], 0, ms(29.5))
    exported = metrics(pipeline, clock)
    holding = {
        dict(labels)["source"]: v
        for (name, labels), v in exported.items()
        if name == "smswatch_source_holding_decisions"
    }
    assert holding == {"sms": 0.0, "acquirer": 1.0}
    assert exported[("smswatch_decisions_lag_seconds", frozenset())] == 600.0
    # The terminal inventory is part of the acquirer source: when it is the oldest, it holds.
    pipeline.commit_transactions(acquirer, page([], ms(29.9)))
    exported = metrics(pipeline, clock)
    assert exported[("smswatch_source_holding_decisions", frozenset({("source", "acquirer")}))]
    assert exported[("smswatch_decisions_lag_seconds", frozenset())] == 30.0


def test_max_clock_skew_is_validated_with_its_field_path() -> None:
    raw = simulator_config_document("http://127.0.0.1:1")
    raw["sources"][0]["max_clock_skew"] = "soon"
    with pytest.raises(ConfigError, match=r"sources\[0\]\.max_clock_skew"):
        parse_config(raw, state_path=":memory:")
    raw["sources"][0]["max_clock_skew"] = "5m"
    assert parse_config(raw, state_path=":memory:").sources[0].max_clock_skew_ms == 300_000


@responses.activate
def test_a_date_header_ahead_of_our_clock_is_capped_too(tmp_path: Path) -> None:
    """A pull adapter's watermark comes from the upstream's `Date` header: capped the same."""
    config = config_with(sms=TWILIO)
    source = config.sources[0]
    beijing_as_gmt = "Thu, 26 Nov 2026 20:05:00 GMT"  # 12:05 UTC written in local time
    responses.get(
        TWILIO_LIST,
        json=fixture("twilio", "messages_page1.json"),
        headers={"Date": beijing_as_gmt},
    )
    store = Store(str(tmp_path / "state.sqlite"))
    clock = Clock(0)
    clock.now_ms = NOON_MS
    Poller(source, Pipeline(config, store, clock=clock), threading.Event(), clock).poll()
    assert store.source_state("sms").watermark_ms == NOON_MS + 60_000
    rows, _, _ = store.snapshot()
    clamped = [v for m, labels, v in rows if m == "smswatch_source_watermark_clamped_total"]
    assert clamped == [1.0]

"""When the exporter listened to a push-only source, on the provider's clock: a receipt whose SMS
report could have come while nobody listened (before the first push, or during the exporter's
own downtime) is `unknown`, never `missing`; the gap is exported; a push source that hears
nothing shows as stale. Real store (SQLite and PostgreSQL), the real pipeline and poller,
hand-checkable times."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_reconcile import MIN, counters, ms, txn

from exporter.config import Config, parse_config, simulator_config_document
from exporter.poller import Pipeline, Poller
from exporter.records import Page, SmsEvent
from exporter.store import open_store

HOUR = 60 * MIN


def aliyun_config(state: Path) -> Config:
    doc = simulator_config_document("http://127.0.0.1:9")
    doc["state"]["path"] = str(state)
    doc["sources"][0] = {
        "name": "sms",
        "kind": "sms_gateway",
        "gateway": "bank-sms",
        "provider": "aliyun",
        "pull": False,
        "push": {"lag": "1m", "insecure": True},
    }
    del doc["sources"][1]["terminals_path"]
    return parse_config(doc)


class Clock:
    def __init__(self, at_ms: int) -> None:
        self.now_ms = at_ms

    def __call__(self) -> float:
        return self.now_ms / 1000


def report(n: int, submitted: float, done: float) -> SmsEvent:
    """An Alibaba SmsReport as the receiver reads it: the outcome only, whole seconds."""
    return SmsEvent(f"{n}^0", f"rrn{n}", "138****1234", "unknown", "unknown", "delivered", "",
                    ms(submitted), ms(done))  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock(ms(0))


PipelineAt = Callable[[Path, Clock], Pipeline]


@pytest.fixture
def pipeline_at(on_backend: Callable[[Config], Config]) -> PipelineAt:
    """An exporter's pipeline on the state at a path (the same state again: a restart), on
    each state backend."""

    def at(state: Path, clock: Clock) -> Pipeline:
        config = on_backend(aliyun_config(state))
        return Pipeline(config, open_store(config), clock=clock)

    return at


def receipts(p: Pipeline) -> dict[tuple[str, ...], float]:
    return counters(p, "smswatch_receipts_total")


def test_a_fresh_state_does_not_decide_history_it_never_watched_as_missing(
    tmp_path: Path, clock: Clock, pipeline_at: PipelineAt
) -> None:
    clock.now_ms = ms(3 * 60)
    p = pipeline_at(tmp_path / "state.sqlite", clock)
    sms, acquirer = p.config.sources
    # Day one: the acquirer's feed has three hours of history; nobody listened to the pushes.
    p.commit_transactions(acquirer, Page([txn(1, 0), txn(2, 1), txn(3, 150)], 0, "c", False,
                                         ms(3 * 60)))  # fmt: skip
    poller = Poller(sms, p, threading.Event(), clock)
    poller.poll()  # a push-only source moves only with pushes: nothing decided by our clock
    assert receipts(p) == {}
    # The first push comes at 3 h on the provider's clock: txn 3's SMS report is in it.
    p.commit_push(sms, [report(3, 150.05, 150.1)], 0, provider_ms=ms(3 * 60))
    # Later keep-alives: the provider has nothing more to push.
    clock.now_ms = ms(5 * 60)
    p.commit_push(sms, [], 0, provider_ms=ms(5 * 60))
    poller.poll()
    assert receipts(p) == {
        ("acq-north", "unknown", "unknown"): 2.0,  # history: their SMS could have been pushed
        ("acq-north", "delivered", "none"): 1.0,
    }
    assert counters(p, "smswatch_receipts_unobserved_total") == {("acq-north",): 2.0}
    assert counters(p, "smswatch_unobserved_seconds_total") == {}  # only gaps once listening


def test_the_exporters_downtime_makes_receipts_unknown_and_is_exported(
    tmp_path: Path, clock: Clock, pipeline_at: PipelineAt
) -> None:
    state = tmp_path / "state.sqlite"
    clock.now_ms = ms(5 * 60)
    p = pipeline_at(state, clock)
    sms, acquirer = p.config.sources
    p.commit_push(sms, [], 0, provider_ms=ms(0))  # listening from 0
    p.commit_transactions(
        acquirer,
        Page(
            [txn(1, 1), txn(2, 2), txn(3, 20), txn(4, 101), txn(5, 102)], 0, "c", False, ms(4 * 60)
        ),
    )
    p.commit_push(sms, [report(1, 1.05, 1.2)], 0, provider_ms=ms(10))
    p.store.close()
    # The exporter is down from 10 min to 40 min (provider time); then it starts again.
    p = pipeline_at(state, clock)
    p.store.open_push_gap("sms")
    # The provider retries what failed: txn 2's report (at 2.2 min) arrives after the restart.
    p.commit_push(sms, [report(2, 2.05, 2.2)], 0, provider_ms=ms(40))
    p.commit_push(sms, [report(4, 101.05, 101.1)], 0, provider_ms=ms(102))
    p.commit_push(sms, [], 0, provider_ms=ms(4 * 60))
    assert receipts(p) == {
        ("acq-north", "delivered", "none"): 3.0,  # 1, 2 (its report retried after), and 4
        # 3 (at 20 min) has no SMS; one could have been reported until 55 min: we were down
        ("acq-north", "unknown", "unknown"): 1.0,
        # 5 (at 102 min) has no SMS, and we listened from 102 to 137 min: it is missing
        ("acq-north", "missing", "integration"): 1.0,
    }
    assert counters(p, "smswatch_unobserved_seconds_total") == {("sms",): 30 * 60.0}
    assert counters(p, "smswatch_receipts_unobserved_total") == {("acq-north",): 1.0}


def test_a_push_source_that_hears_nothing_goes_stale(
    tmp_path: Path, clock: Clock, pipeline_at: PipelineAt
) -> None:
    p = pipeline_at(tmp_path / "state.sqlite", clock)
    sms = p.config.sources[0]
    poller = Poller(sms, p, threading.Event(), clock)
    poller.poll()
    assert p.store.source_state("sms").last_success_ms is None, "no push yet: never succeeded"
    before = int(time.time() * 1000)
    p.commit_push(sms, [report(1, 0, 0.1)], 0, provider_ms=ms(1))
    heard = p.store.source_state("sms").last_success_ms
    assert heard is not None and heard >= before
    # Our ticks go on; only a push is a success of a push source.
    poller.poll()
    poller.poll()
    assert p.store.source_state("sms").last_success_ms == heard
    assert poller.health.up


def test_a_push_dated_hours_ahead_hides_no_later_downtime(
    tmp_path: Path, clock: Clock, pipeline_at: PipelineAt
) -> None:
    """A provider clock step (8 hours ahead, then right again) is heard at most at our clock +
    max_clock_skew (1m), as its watermark is: the exporter's downtime after it is still a gap,
    and a receipt in it is `unknown`, not a false `missing`."""
    state = tmp_path / "state.sqlite"
    clock.now_ms = ms(0.1)
    p = pipeline_at(state, clock)
    sms, acquirer = p.config.sources
    p.commit_push(sms, [], 0, provider_ms=ms(0))  # listening from 0
    clock.now_ms = ms(10)
    p.commit_push(sms, [], 0, provider_ms=ms(10) + 8 * HOUR)  # the step: heard at 11 min
    p.store.close()
    # The exporter is down from 10 min to 40 min; the provider's clock is right again.
    clock.now_ms = ms(40)
    p = pipeline_at(state, clock)
    p.store.open_push_gap("sms")
    p.commit_push(sms, [], 0, provider_ms=ms(40))
    clock.now_ms = ms(4 * 60)
    p.commit_transactions(acquirer, Page([txn(3, 20)], 0, "c", False, ms(4 * 60)))
    p.commit_push(sms, [], 0, provider_ms=ms(4 * 60))
    assert counters(p, "smswatch_unobserved_seconds_total") == {("sms",): (40 - 11) * 60.0}
    # 3 (at 20 min) has no SMS; one could have been reported while we were down
    assert receipts(p) == {("acq-north", "unknown", "unknown"): 1.0}
    assert counters(p, "smswatch_source_watermark_clamped_total") == {("sms",): 1.0}

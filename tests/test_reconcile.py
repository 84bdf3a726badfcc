"""Reconciliation under the outcome rules, on a real store (SQLite and PostgreSQL), with
hand-checkable pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.config import Config, parse_config, simulator_config_document
from exporter.poller import Pipeline
from exporter.records import Page, SmsEvent, Terminal, Transaction
from exporter.store import decode_labels, open_store

MIN = 60_000
T0 = 1_800_000_000_000  # an arbitrary event-time origin


def ms(minutes: float) -> int:
    return T0 + int(minutes * MIN)


def txn(
    n: int,
    at: float,
    *,
    result: str = "approved",
    expected: bool = True,
    terminal: str = "T1",
    original: str = "",
    acquirer: str = "acq-north",
) -> Transaction:
    return Transaction(
        txn_id=f"t{n}",
        rrn=f"rrn{n}",
        terminal_id=terminal,
        merchant_id="M1",
        acquirer=acquirer,
        amount=1000,
        currency="CNY",
        pan="62258800****1234",
        result=result,
        response_code="00",
        txn_ms=ms(at),
        sms_expected=expected,
        original_txn_id=original,
    )


def sms(
    msg: str, ref: str, status: str, submitted: float, at: float, code: str = "000"
) -> SmsEvent:
    return SmsEvent(
        message_id=msg,
        txn_ref=ref,
        phone="138****1234",
        carrier="china-mobile",
        area="east",
        status=status,
        error_code=code,
        submitted_ms=ms(submitted),
        status_ms=ms(at),
    )


def terminal(tid: str, enabled: bool, since: float, version: str = "5.2.1") -> Terminal:
    return Terminal(tid, "M1", "acq-north", "east", version, enabled, ms(since), ms(since))


@pytest.fixture
def pipeline(tmp_path: Path, on_backend: Callable[[Config], Config]) -> Pipeline:
    raw = simulator_config_document("http://127.0.0.1:1")
    config = on_backend(parse_config(raw, state_path=str(tmp_path / "state.sqlite")))
    return Pipeline(config, open_store(config), clock=lambda: T0 / 1000 + 86_400)


def counters(p: Pipeline, metric: str) -> dict[tuple[str, ...], float]:
    rows, _, _ = p.store.snapshot()
    return {decode_labels(labels): v for m, labels, v in rows if m == metric and v}


def gauges(p: Pipeline, metric: str) -> dict[tuple[str, ...], float]:
    _, rows, _ = p.store.snapshot()
    return {decode_labels(labels): v for m, labels, v in rows if m == metric}


def feed_sms(p: Pipeline, events: list[SmsEvent], watermark: float) -> None:
    source = p.config.sources[0]
    p.commit_sms(source, Page(events, 0, "c", False, ms(watermark)))


def feed_txns(p: Pipeline, txns: list[Transaction], watermark: float) -> None:
    source = p.config.sources[1]
    p.commit_transactions(source, Page(txns, 0, "c", False, ms(watermark)))


def feed_terminals(p: Pipeline, terminals: list[Terminal], watermark: float) -> None:
    p.commit_terminals(p.config.sources[1], terminals, 0, ms(watermark))


def test_delivered_failed_and_missing_receipts_are_decided_on_event_time(
    pipeline: Pipeline,
) -> None:
    feed_terminals(pipeline, [terminal("T1", True, -60), terminal("T9", False, -60)], 2)
    feed_txns(
        pipeline,
        [
            txn(1, 0),
            txn(2, 0.5),
            txn(3, 1),  # no SMS at all, terminal fine: integration
            txn(4, 1, terminal="T9"),  # no SMS, terminal's SMS notice off: terminal_config
            txn(5, 1, result="declined", expected=False),
        ],
        2,
    )
    feed_sms(
        pipeline,
        [
            sms("m1", "rrn1", "submitted", 0.01, 0.01),
            sms("m2", "rrn2", "submitted", 0.51, 0.51),
            sms("m1", "rrn1", "delivered", 0.01, 0.11),
            sms("m2", "rrn2", "undelivered", 0.51, 0.6, "MK:0001"),
        ],
        2,
    )
    # Both watermarks are at 2 min: delivered/failed are decided, missing ones still wait
    # for txn_time + 5 min.
    assert counters(pipeline, "smswatch_receipts_total") == {
        ("acq-north", "delivered", "none"): 1,
        ("acq-north", "failed", "invalid_number"): 1,
    }
    assert gauges(pipeline, "smswatch_receipts_awaiting_sms")[("acq-north",)] == 2
    feed_txns(pipeline, [], 6.5)
    assert ("acq-north", "missing", "integration") not in counters(
        pipeline, "smswatch_receipts_total"
    ), "the SMS feed's watermark has not passed the deadline yet"
    feed_terminals(pipeline, [terminal("T1", True, -60), terminal("T9", False, -60)], 6.5)
    feed_sms(pipeline, [], 6.5)
    assert counters(pipeline, "smswatch_receipts_total") == {
        ("acq-north", "delivered", "none"): 1,
        ("acq-north", "failed", "invalid_number"): 1,
        ("acq-north", "missing", "integration"): 1,
        ("acq-north", "missing", "terminal_config"): 1,
    }
    assert counters(pipeline, "smswatch_pos_transactions_total") == {
        ("acq-north", "approved"): 4,
        ("acq-north", "declined"): 1,
    }
    assert gauges(pipeline, "smswatch_receipts_awaiting_sms")[("acq-north",)] == 0
    notify = counters(pipeline, "smswatch_receipt_notify_seconds:bucket")
    assert notify == {("acq-north", "3"): 1}  # 6.6 s: in the le=10 bucket (index 3)


def test_duplicates_count_once_and_late_contradictions_are_conflicts(pipeline: Pipeline) -> None:
    events = [
        sms("m1", "rrn1", "submitted", 0, 0),
        sms("m1", "rrn1", "submitted", 0, 0),
        sms("m1", "rrn1", "delivered", 0, 0.1),
        sms("m1", "rrn1", "delivered", 0, 0.1),
        sms("m1", "rrn1", "undelivered", 0, 0.2, "MK:0001"),
    ]
    feed_sms(pipeline, events[:3], 0.15)
    feed_sms(pipeline, events[3:], 0.3)
    assert counters(pipeline, "smswatch_sms_submitted_total") == {
        ("bank-sms", "china-mobile", "east"): 1
    }
    assert counters(pipeline, "smswatch_sms_messages_total") == {
        ("bank-sms", "china-mobile", "east", "delivered", "none"): 1
    }
    assert counters(pipeline, "smswatch_records_total") == {
        ("sms", "accepted"): 2,
        ("sms", "duplicate"): 2,
        ("sms", "conflict"): 1,
    }


def test_message_without_final_status_becomes_unknown_at_give_up(pipeline: Pipeline) -> None:
    feed_terminals(pipeline, [terminal("T1", True, -60)], 60)
    feed_txns(pipeline, [txn(1, 0)], 1)
    feed_sms(pipeline, [sms("m1", "rrn1", "submitted", 0.01, 0.01)], 29)
    assert gauges(pipeline, "smswatch_sms_pending")[("bank-sms",)] == 1
    feed_txns(pipeline, [], 40)
    feed_sms(pipeline, [sms("m1", "rrn1", "delivered", 0.01, 35)], 40)
    assert counters(pipeline, "smswatch_sms_messages_total") == {
        ("bank-sms", "china-mobile", "east", "unknown", "unknown"): 1
    }
    assert counters(pipeline, "smswatch_receipts_total") == {("acq-north", "unknown", "unknown"): 1}
    assert counters(pipeline, "smswatch_records_total")[("sms", "conflict")] == 1
    assert gauges(pipeline, "smswatch_sms_pending")[("bank-sms",)] == 0


def test_reversal_before_decision_cancels_and_after_decision_does_not(pipeline: Pipeline) -> None:
    feed_terminals(pipeline, [terminal("T1", True, -60)], 60)
    feed_txns(
        pipeline,
        [
            txn(1, 0),
            txn(2, 0),
            txn(11, 0.05, result="reversed", expected=False, original="t1"),
        ],
        1,
    )
    feed_sms(
        pipeline,
        [
            sms("m1", "rrn1", "submitted", 0.01, 0.01),
            sms("m2", "rrn2", "submitted", 0.01, 0.01),
            sms("m1", "rrn1", "delivered", 0.01, 0.2),
            sms("m2", "rrn2", "delivered", 0.01, 0.2),
        ],
        1,
    )
    feed_txns(pipeline, [txn(12, 0.5, result="reversed", expected=False, original="t2")], 1)
    feed_sms(pipeline, [], 2)  # past submit + max_skew: no later transaction can claim m2
    feed_txns(pipeline, [], 2)
    assert counters(pipeline, "smswatch_receipts_total") == {("acq-north", "delivered", "none"): 1}
    assert counters(pipeline, "smswatch_pos_transactions_total") == {
        ("acq-north", "approved"): 2,
        ("acq-north", "reversed"): 2,
    }


def test_reversal_seen_before_its_original_still_cancels(pipeline: Pipeline) -> None:
    feed_terminals(pipeline, [terminal("T1", True, -60)], 60)
    feed_txns(pipeline, [txn(11, 0.05, result="reversed", expected=False, original="t1")], 0.05)
    feed_txns(pipeline, [txn(1, 0)], 1)
    feed_sms(pipeline, [], 10)
    feed_txns(pipeline, [], 10)
    assert counters(pipeline, "smswatch_receipts_total") == {}
    assert gauges(pipeline, "smswatch_receipts_awaiting_sms")[("acq-north",)] == 0


def test_sms_submitted_after_the_grace_leaves_the_receipt_missing(pipeline: Pipeline) -> None:
    feed_terminals(pipeline, [terminal("T1", True, -60)], 0)
    feed_txns(pipeline, [txn(1, 0)], 1)
    feed_sms(
        pipeline,
        [sms("m1", "rrn1", "submitted", 6, 6), sms("m1", "rrn1", "delivered", 6, 6.1)],
        7,
    )
    feed_txns(pipeline, [], 7)
    feed_terminals(pipeline, [terminal("T1", True, -60)], 7)
    assert counters(pipeline, "smswatch_receipts_total") == {
        ("acq-north", "missing", "integration"): 1
    }
    assert counters(pipeline, "smswatch_sms_messages_total") == {
        ("bank-sms", "china-mobile", "east", "delivered", "none"): 1
    }


def test_terminal_setting_is_judged_at_transaction_time(pipeline: Pipeline) -> None:
    feed_terminals(pipeline, [terminal("T1", True, -60)], 0)
    feed_terminals(pipeline, [terminal("T1", False, 2)], 2.5)
    feed_terminals(pipeline, [terminal("T1", True, 4)], 4.5)
    feed_txns(pipeline, [txn(1, 1), txn(2, 3), txn(3, 5)], 20)
    feed_terminals(pipeline, [terminal("T1", True, 4)], 20)
    feed_sms(pipeline, [], 20)
    assert counters(pipeline, "smswatch_receipts_total") == {
        ("acq-north", "missing", "integration"): 2,
        ("acq-north", "missing", "terminal_config"): 1,
    }
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "enabled", "current")] == 1


def test_unknown_acquirer_and_carrier_values_are_bounded(pipeline: Pipeline) -> None:
    feed_txns(pipeline, [txn(1, 0, acquirer="acq-mystery", expected=False)], 1)
    odd = SmsEvent("m1", "x", "", "carrier-x", "moon", "submitted", "", ms(0), ms(0))
    feed_sms(pipeline, [odd], 1)
    assert counters(pipeline, "smswatch_pos_transactions_total") == {("other", "approved"): 1}
    assert counters(pipeline, "smswatch_sms_submitted_total") == {("bank-sms", "other", "other"): 1}


def test_counters_survive_a_restart(tmp_path: Path, pipeline: Pipeline) -> None:
    feed_sms(pipeline, [sms("m1", "rrn1", "submitted", 0, 0)], 1)
    pipeline.store.close()
    reopened = Pipeline(pipeline.config, open_store(pipeline.config), clock=pipeline.clock)
    feed_sms(reopened, [sms("m1", "rrn1", "submitted", 0, 0), sms("m2", "r", "submitted", 1, 1)], 2)
    assert counters(reopened, "smswatch_sms_submitted_total") == {
        ("bank-sms", "china-mobile", "east"): 2
    }
    assert counters(reopened, "smswatch_records_total")[("sms", "duplicate")] == 1

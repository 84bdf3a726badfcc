"""The ground truth applies the outcome rules of API.md exactly."""

from __future__ import annotations

import json

import pytest

from exporter.simulator.simulation import Simulation
from exporter.simulator.truth import (
    MessageFacts,
    TransactionFacts,
    TruthLedger,
    message_final,
    transaction_deltas,
)

from .conftest import MINUTE, items, run_to_completion, settings
from .reference import expected_metrics, usable

T = 1_000_000_000_000  # a transaction time
RULES = {"gateway": "bank-sms", "missing_after_ms": 300_000, "give_up_after_ms": 1_800_000}


def receipt(**overrides: object) -> TransactionFacts:
    facts = TransactionFacts(
        acquirer="acq-north",
        result="approved",
        txn_time=T,
        receipt=True,
        terminal_config_off=False,
    )
    for name, value in overrides.items():
        setattr(facts, name, value)
    return facts


def message(submitted: int, *events: tuple[int, str, str]) -> MessageFacts:
    return MessageFacts(
        "china-mobile", "east", submitted, [(submitted, "SUBMITTED", "000"), *events]
    )


def outcome(facts: TransactionFacts) -> list[tuple[int, str, tuple[str, ...], int]]:
    return [
        tuple(d)  # type: ignore[misc]
        for d in transaction_deltas(facts, **RULES)  # type: ignore[arg-type]
        if d.metric.startswith("smswatch_receipt")
    ]


def test_delivered_receipt_counts_at_the_delivery_with_notify_latency() -> None:
    facts = receipt(messages=[message(T + 1_000, (T + 4_500, "DELIVRD", "000"))])
    assert outcome(facts) == [
        (T + 4_500, "smswatch_receipts_total", ("acq-north", "delivered", "none"), 1),
        (T + 4_500, "smswatch_receipt_notify_seconds", ("acq-north",), 4_500),
    ]


def test_failed_receipt_takes_the_cause_of_its_code() -> None:
    facts = receipt(messages=[message(T + 1_000, (T + 3_000, "UNDELIV", "MK:0001"))])
    assert outcome(facts) == [
        (T + 3_000, "smswatch_receipts_total", ("acq-north", "failed", "invalid_number"), 1)
    ]


def test_no_sms_by_missing_after_is_missing_integration_or_terminal_config() -> None:
    assert outcome(receipt()) == [
        (T + 300_000, "smswatch_receipts_total", ("acq-north", "missing", "integration"), 1)
    ]
    assert outcome(receipt(terminal_config_off=True)) == [
        (T + 300_000, "smswatch_receipts_total", ("acq-north", "missing", "terminal_config"), 1)
    ]


def test_sms_submitted_exactly_at_missing_after_counts_later_is_missing() -> None:
    on_time = receipt(messages=[message(T + 300_000, (T + 302_000, "DELIVRD", "000"))])
    assert outcome(on_time)[0][2] == ("acq-north", "delivered", "none")
    late = receipt(messages=[message(T + 300_001, (T + 302_000, "DELIVRD", "000"))])
    assert outcome(late) == [
        (T + 300_000, "smswatch_receipts_total", ("acq-north", "missing", "integration"), 1)
    ]


def test_reversal_cancels_only_when_at_or_before_the_decision() -> None:
    delivered = [message(T + 1_000, (T + 5_000, "DELIVRD", "000"))]
    assert outcome(receipt(messages=delivered, reversal_time=T + 5_000)) == []
    assert len(outcome(receipt(messages=delivered, reversal_time=T + 5_001))) == 2
    assert outcome(receipt(reversal_time=T + 300_000)) == []  # missing decided at M
    # The reversal still counts as a transaction record.
    deltas = transaction_deltas(receipt(reversal_time=T + 9), **RULES)  # type: ignore[arg-type]
    assert (T + 9, "smswatch_pos_transactions_total", ("acq-north", "reversed"), 1) in deltas


def test_no_final_status_by_give_up_is_unknown_even_if_a_report_comes_later() -> None:
    silent = message(T + 1_000, (T + 2_000, "ENROUTE", "000"))
    assert message_final(silent, 1_800_000) == (T + 1_801_000, "unknown", "unknown", None)
    late = message(T + 1_000, (T + 1_801_001, "DELIVRD", "000"))
    assert message_final(late, 1_800_000) == (T + 1_801_000, "unknown", "unknown", None)
    in_time = message(T + 1_000, (T + 1_801_000, "DELIVRD", "000"))
    assert message_final(in_time, 1_800_000) == (T + 1_801_000, "delivered", "none", 1_800_000)
    assert outcome(receipt(messages=[silent])) == [
        (T + 1_801_000, "smswatch_receipts_total", ("acq-north", "unknown", "unknown"), 1)
    ]


def test_first_final_wins_and_duplicates_change_nothing() -> None:
    noisy = message(
        T + 1_000,
        (T + 1_000, "SUBMITTED", "000"),  # duplicate
        (T + 4_000, "DELIVRD", "000"),
        (T + 4_000, "DELIVRD", "000"),  # duplicate
        (T + 90_000, "UNDELIV", "MK:0023"),  # conflict
        (T + 95_000, "DELIVRD", "000"),  # late duplicate
    )
    assert message_final(noisy, 1_800_000) == (T + 4_000, "delivered", "none", 3_000)
    deltas = transaction_deltas(receipt(messages=[noisy]), **RULES)  # type: ignore[arg-type]
    assert sum(d.metric == "smswatch_sms_submitted_total" for d in deltas) == 1
    assert sum(d.metric == "smswatch_sms_messages_total" for d in deltas) == 1


def test_the_first_submitted_message_decides_the_receipt() -> None:
    throttled = message(T + 1_000, (T + 2_000, "REJECTD", "DB:9007"))
    retry = message(T + 60_000, (T + 63_000, "DELIVRD", "000"))
    facts = receipt(messages=[retry, throttled])  # order of the list does not matter
    assert outcome(facts) == [
        (T + 2_000, "smswatch_receipts_total", ("acq-north", "failed", "throttled"), 1)
    ]


def test_ledger_counts_only_what_is_due_and_buckets_cumulatively() -> None:
    ledger = TruthLedger()
    ledger.record(
        transaction_deltas(  # type: ignore[arg-type]
            receipt(messages=[message(T + 1_000, (T + 3_000, "DELIVRD", "000"))]), **RULES
        )
    )
    ledger.advance(T + 2_999)
    metrics = ledger.metrics()
    assert "smswatch_receipts_total" not in metrics
    assert metrics["smswatch_sms_submitted_total"][0]["value"] == 1
    ledger.advance(T + 3_000)
    buckets = ledger.metrics()["smswatch_sms_delivery_seconds_bucket"]
    # Latency 2000 ms: le="2" counts it (latency_ms <= le × 1000), le="1" does not.
    assert [b["labels"]["le"] for b in buckets][:2] == ["2", "5"]
    assert all(b["value"] == 1 for b in buckets)
    assert buckets[-1]["labels"]["le"] == "+Inf"


@pytest.mark.parametrize(
    "overrides",
    [
        {"scenario": None, "traffic_for_ms": 65 * MINUTE},  # the default scenario, every fault
        {"seed": 11, "missing_after_ms": 20_000, "give_up_after_ms": 40_000},  # tight rules
    ],
    ids=["default-scenario", "tight-rules"],
)
def test_truth_equals_an_independent_reading_of_the_feeds(overrides: dict[str, object]) -> None:
    simulation = Simulation(settings(**overrides))
    run_to_completion(simulation)
    truth = simulation.truth_document()
    assert truth["complete"] is True
    terminals = json.loads(simulation.page("terminals", None, 5000))["terminals"]
    run = simulation.settings
    expected = expected_metrics(
        items("messages", simulation),
        items("transactions", simulation),
        terminals,
        gateway=run.gateway,
        missing_after_ms=run.missing_after_ms,
        give_up_after_ms=run.give_up_after_ms,
    )
    assert truth["metrics"] == expected
    unusable = {
        "messages": sum(
            not usable(m, "message_id", ("submitted_at", "status_at"))
            for m in items("messages", simulation)
        ),
        "transactions": sum(
            not usable(t, "txn_id", ("txn_time",)) for t in items("transactions", simulation)
        ),
    }
    assert truth["records"] == {feed: {"invalid": n} for feed, n in unusable.items()}
    if overrides.get("scenario", "none") is None:
        assert min(unusable.values()) > 0, "the default scenario poisons both feeds"
    receipts = {
        (s["labels"]["outcome"], s["labels"]["cause"])
        for s in truth["metrics"]["smswatch_receipts_total"]
    }
    if overrides.get("scenario", "none") is None:
        # Every cause shows up among the receipts of the default scenario's first hour.
        causes = {cause for _, cause in receipts}
        assert causes >= {
            "none",
            "gateway",
            "invalid_number",
            "unreachable",
            "terminal_config",
            "integration",
            "throttled",
            "filtered",
        }


def test_faults_started_at_run_time_keep_the_truth_exact() -> None:
    simulation = Simulation(settings(traffic_for_ms=40 * MINUTE))
    start = simulation.settings.start_ms
    simulation.advance(start + 10 * MINUTE)
    for fault in (
        {"kind": "terminal_sms_off", "duration": "8m", "terminals": 60},
        {"kind": "integration_drop", "duration": "5m", "share": 0.5},
        {"kind": "gateway_outage", "duration": "3m"},
    ):
        started = simulation.start_fault(json.dumps(fault).encode())
        assert started["start"] == "2026-11-26T04:10:00.001Z"
    run_to_completion(simulation)
    terminals = json.loads(simulation.page("terminals", None, 5000))["terminals"]
    expected = expected_metrics(
        items("messages", simulation),
        items("transactions", simulation),
        terminals,
        gateway="bank-sms",
        missing_after_ms=simulation.settings.missing_after_ms,
        give_up_after_ms=simulation.settings.give_up_after_ms,
    )
    metrics = simulation.truth_document()["metrics"]
    assert metrics == expected
    causes = {s["labels"]["cause"] for s in metrics["smswatch_receipts_total"]}
    assert {"terminal_config", "integration", "gateway"} <= causes


def test_a_whole_second_shape_judges_submitted_in_time_on_its_seconds() -> None:
    """Issue 12: Twilio, Vonage and Alibaba dates have whole seconds. A message submitted
    400 ms after txn_time + missing_after shows as submitted at that very second, so the
    exporter reading such a shape (rightly) links it: the truth of the shape must too."""
    late_ms = T + RULES["missing_after_ms"] + 400
    facts = receipt(messages=[message(late_ms, (late_ms + 2_000, "DELIVRD", "000"))])
    in_ms = [d for d in transaction_deltas(facts, **RULES) if d.metric == "smswatch_receipts_total"]  # type: ignore[arg-type]
    assert in_ms[0].labels == ("acq-north", "missing", "integration")
    seconds = [
        d
        for d in transaction_deltas(facts, **RULES, whole_seconds=True)  # type: ignore[arg-type]
        if d.metric == "smswatch_receipts_total"
    ]
    assert seconds[0].labels == ("acq-north", "delivered", "none")

"""Same seed, settings and scenario → the same feeds, however and whenever they are polled."""

from __future__ import annotations

import re

from exporter.simulator.simulation import Simulation
from exporter.simulator.traffic import timestamp_text
from exporter.timestamps import format_rfc3339_ms, parse_rfc3339_ms

from .conftest import MINUTE, items, run_to_completion, settings

PHONE = re.compile(r"^1[3-9]\d\*{4}\d{4}$")
PAN = re.compile(r"^\d{8}\*{4}\d{4}$")


def feed_bytes(simulation: Simulation) -> tuple[list[bytes], list[bytes]]:
    messages, transactions = simulation.messages, simulation.transactions
    return messages.items(0, len(messages)), transactions.items(0, len(transactions))


def test_same_seed_gives_identical_feeds_across_polling_patterns() -> None:
    run = settings(scenario=None, traffic_for_ms=70 * MINUTE)
    coarse = Simulation(run)
    run_to_completion(coarse, step_ms=17 * MINUTE)
    fine = Simulation(run)
    now = run.start_ms
    step = 1
    while not fine.complete:  # irregular steps, from 1 ms to minutes
        now += step
        fine.advance(now)
        step = step * 7 % 190_001 + 1
    assert feed_bytes(coarse) == feed_bytes(fine)
    assert coarse.truth_document()["metrics"] == fine.truth_document()["metrics"]


def test_another_seed_gives_other_traffic() -> None:
    one, other = Simulation(settings(seed=1)), Simulation(settings(seed=2))
    run_to_completion(one)
    run_to_completion(other)
    assert feed_bytes(one) != feed_bytes(other)


def test_feed_items_are_ordered_by_event_time_and_masked() -> None:
    simulation = Simulation(settings(scenario=None, traffic_for_ms=30 * MINUTE))
    run_to_completion(simulation)
    messages = items("messages", simulation)
    transactions = items("transactions", simulation)
    assert messages and transactions
    message_times = [parse_rfc3339_ms(m["status_at"]) for m in messages]
    assert message_times == sorted(message_times)
    txn_times = [parse_rfc3339_ms(t["txn_time"]) for t in transactions]
    assert txn_times == sorted(txn_times)
    assert all(PHONE.match(m["phone"]) for m in messages)
    assert all(PAN.match(t["pan"]) for t in transactions)
    for message in messages:
        if message["status"] == "SUBMITTED":
            assert message["status_at"] == message["submitted_at"]
    assert {t["result"] for t in transactions} == {"approved", "declined", "reversed"}
    reversals = [t for t in transactions if t["result"] == "reversed"]
    ids = {t["txn_id"] for t in transactions}
    assert all(r["original_txn_id"] in ids and not r["sms_expected"] for r in reversals)
    assert all(t["original_txn_id"] is None for t in transactions if t["result"] != "reversed")


def test_traffic_shape_matches_the_design() -> None:
    simulation = Simulation(settings(traffic_for_ms=120 * MINUTE))
    run_to_completion(simulation)
    transactions = {t["txn_id"]: t for t in items("transactions", simulation)}.values()
    records = [t for t in transactions if t["result"] != "reversed"]
    declined = sum(t["result"] == "declined" for t in records) / len(records)
    approved = [t for t in records if t["result"] == "approved"]
    silent = sum(not t["sms_expected"] for t in approved) / len(approved)
    reversed_ = sum(t["result"] == "reversed" for t in transactions) / len(approved)
    # Two hours at noon at 2 tx/s peak: roughly 13 000 transactions.
    assert 10_000 < len(records) < 16_000
    assert 0.06 < declined < 0.10
    assert 0.08 < silent < 0.12
    assert 0.01 < reversed_ < 0.02
    messages = items("messages", simulation)
    events: dict[tuple[str, str], int] = {}
    for m in messages:
        key = (m["message_id"], m["status"])
        events[key] = events.get(key, 0) + 1
    assert any(count > 1 for count in events.values()), "the gateway repeats some events"
    latencies = sorted(
        parse_rfc3339_ms(m["status_at"]) - parse_rfc3339_ms(m["submitted_at"])
        for m in messages
        if m["status"] == "DELIVRD"
    )
    median = latencies[len(latencies) // 2]
    assert 1_500 < median < 6_000
    assert latencies[-1] > 60_000, "a long tail past 60 s"


def test_the_cached_timestamp_format_equals_the_shared_one() -> None:
    for ms in (0, 999, 1_000, 1_764_158_400_123, 1_764_158_459_999, 4_102_444_800_000):
        assert timestamp_text(ms) == format_rfc3339_ms(ms)

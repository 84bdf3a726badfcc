"""Each fault kind produces its codes or its effect, inside its window only."""

from __future__ import annotations

import json
from collections.abc import Callable
from statistics import median
from typing import Any

import pytest

from exporter.simulator.simulation import SimClock, Simulation
from exporter.timestamps import parse_rfc3339_ms

from .conftest import MINUTE, START_MS, items, run_to_completion, settings

WINDOW = {"start": "5m", "duration": "5m"}
IN_WINDOW = (START_MS + 5 * MINUTE, START_MS + 10 * MINUTE)


def run_with(scenario_file: Callable[..., str], fault: dict[str, Any]) -> Simulation:
    simulation = Simulation(
        settings(scenario=scenario_file({**WINDOW, **fault}), traffic_for_ms=15 * MINUTE)
    )
    run_to_completion(simulation)
    return simulation


def first_finals(simulation: Simulation) -> list[dict[str, Any]]:
    """The first final event of each message."""
    finals: dict[str, dict[str, Any]] = {}
    for event in items("messages", simulation):
        if event["status"] not in ("SUBMITTED", "ENROUTE"):
            finals.setdefault(event["message_id"], event)
    return list(finals.values())


def submitted_in_window(event: dict[str, Any]) -> bool:
    return IN_WINDOW[0] <= parse_rfc3339_ms(event["submitted_at"]) < IN_WINDOW[1]


@pytest.mark.parametrize(
    ("fault", "stats", "codes"),
    [
        (
            {"kind": "gateway_outage", "share": 1.0},
            {"UNDELIV"},
            {"IB:0070", "MA:0054", "MA:0051", "DB:9001"},
        ),
        (
            {"kind": "invalid_numbers", "share": 1.0},
            {"UNDELIV"},
            {"MK:0001", "DB:0101", "MI:0073", "MK:0005", "DB:0102"},
        ),
        (
            {"kind": "weak_signal", "share": 1.0},
            {"EXPIRED", "UNDELIV", "DELETED"},
            {"MK:0010", "MK:0023", "MI:0024", "MI:0099"},
        ),
        (
            {"kind": "throttling", "share": 1.0},
            {"REJECTD"},
            {"DB:9007", "IB:0008", "DB:0142", "MI:0061"},
        ),
        (
            {"kind": "carrier_filtering", "share": 1.0},
            {"REJECTD"},
            {"MK:0115", "KEYWORD", "DB:0144"},
        ),
    ],
    ids=lambda value: value["kind"] if isinstance(value, dict) else "",
)
def test_message_faults_emit_their_codes(
    scenario_file: Callable[..., str], fault: dict[str, Any], stats: set[str], codes: set[str]
) -> None:
    simulation = run_with(scenario_file, fault)
    inside = [e for e in first_finals(simulation) if submitted_in_window(e)]
    outside = [e for e in first_finals(simulation) if not submitted_in_window(e)]
    assert len(inside) > 100
    assert {e["status"] for e in inside} == stats
    assert {e["error_code"] for e in inside} == codes
    delivered_outside = sum(e["status"] == "DELIVRD" for e in outside) / len(outside)
    assert delivered_outside > 0.95


def test_selectors_limit_a_fault_to_its_carrier(scenario_file: Callable[..., str]) -> None:
    simulation = run_with(
        scenario_file, {"kind": "carrier_filtering", "carrier": "china-telecom", "share": 1.0}
    )
    inside = [e for e in first_finals(simulation) if submitted_in_window(e)]
    telecom = [e for e in inside if e["carrier"] == "china-telecom"]
    others = [e for e in inside if e["carrier"] != "china-telecom"]
    assert telecom and all(e["status"] == "REJECTD" for e in telecom)
    assert sum(e["status"] == "DELIVRD" for e in others) / len(others) > 0.95


def test_weak_signal_slows_what_still_arrives(scenario_file: Callable[..., str]) -> None:
    simulation = run_with(
        scenario_file, {"kind": "weak_signal", "area": "west", "share": 0.3, "latency_factor": 8}
    )

    def latency(e: dict[str, Any]) -> int:
        return parse_rfc3339_ms(e["status_at"]) - parse_rfc3339_ms(e["submitted_at"])

    delivered = [e for e in first_finals(simulation) if e["status"] == "DELIVRD"]
    west = [latency(e) for e in delivered if submitted_in_window(e) and e["area"] == "west"]
    rest = [latency(e) for e in delivered if e["area"] != "west"]
    assert median(west) > 4 * median(rest)


def receipts_in_window(simulation: Simulation) -> list[dict[str, Any]]:
    """Receipts printed during the fault window (repeated records once)."""
    unique = {t["txn_id"]: t for t in items("transactions", simulation)}
    return [
        t
        for t in unique.values()
        if t["result"] == "approved"
        and t["sms_expected"]
        and IN_WINDOW[0] <= parse_rfc3339_ms(t["txn_time"]) < IN_WINDOW[1]
    ]


def receipt_counts(simulation: Simulation) -> dict[tuple[str, str, str], int]:
    return {
        (s["labels"]["acquirer"], s["labels"]["outcome"], s["labels"]["cause"]): s["value"]
        for s in simulation.truth_document()["metrics"]["smswatch_receipts_total"]
    }


def test_integration_drop_leaves_receipts_without_sms(scenario_file: Callable[..., str]) -> None:
    simulation = run_with(
        scenario_file, {"kind": "integration_drop", "acquirer": "acq-east", "share": 1.0}
    )
    refs = {e["txn_ref"] for e in items("messages", simulation)}
    east = [t for t in receipts_in_window(simulation) if t["acquirer"] == "acq-east"]
    north = [t for t in receipts_in_window(simulation) if t["acquirer"] == "acq-north"]
    assert east and not any(t["rrn"] in refs for t in east)
    assert sum(t["rrn"] in refs for t in north) / len(north) > 0.95
    assert receipt_counts(simulation)[("acq-east", "missing", "integration")] >= len(east) * 0.9


def test_sync_delay_submits_late_some_beyond_missing_after(
    scenario_file: Callable[..., str],
) -> None:
    simulation = run_with(
        scenario_file, {"kind": "sync_delay", "delay": "2m", "jitter": "6m", "share": 1.0}
    )
    submitted: dict[str, int] = {}
    for event in items("messages", simulation):  # the first message of each receipt
        submitted.setdefault(event["txn_ref"], parse_rfc3339_ms(event["submitted_at"]))
    reversed_ids = {t["original_txn_id"] for t in items("transactions", simulation)}
    delays = [
        submitted[t["rrn"]] - parse_rfc3339_ms(t["txn_time"])
        for t in receipts_in_window(simulation)
        if t["rrn"] in submitted and t["txn_id"] not in reversed_ids
    ]
    assert delays and all(2 * MINUTE <= d <= 8 * MINUTE for d in delays)
    late = sum(d > 5 * MINUTE for d in delays)
    assert 0.2 < late / len(delays) < 0.8
    counts = receipt_counts(simulation)
    missing = sum(v for k, v in counts.items() if k[1:] == ("missing", "integration"))
    assert missing >= late


def test_terminal_sms_off_switches_terminals_off_then_on(
    scenario_file: Callable[..., str],
) -> None:
    simulation = run_with(
        scenario_file, {"kind": "terminal_sms_off", "acquirer": "acq-south", "terminals": 12}
    )
    (fault,) = simulation.faults()
    chosen = set(fault["terminal_ids"])
    assert len(chosen) == 12

    def snapshot(at: int) -> dict[str, dict[str, Any]]:
        probe = Simulation(simulation.settings)
        probe.advance(at)
        page = json.loads(probe.page("terminals", None, 5000))
        return {t["terminal_id"]: t for t in page["terminals"]}

    during = snapshot(IN_WINDOW[0] + MINUTE)
    assert all(not during[t]["sms_notice_enabled"] for t in chosen)
    assert all(during[t]["acquirer"] == "acq-south" for t in chosen)
    assert {during[t]["changed_at"] for t in chosen} == {"2026-11-26T04:05:00.000Z"}
    after = snapshot(IN_WINDOW[1])
    assert all(after[t]["sms_notice_enabled"] for t in chosen)
    assert {after[t]["changed_at"] for t in chosen} == {"2026-11-26T04:10:00.000Z"}
    assert after[next(iter(chosen))]["history"] == [
        {"at": "2026-11-26T04:05:00.000Z", "sms_notice_enabled": False},
        {"at": "2026-11-26T04:10:00.000Z", "sms_notice_enabled": True},
    ]

    refs = {e["txn_ref"] for e in items("messages", simulation)}
    hit = [t for t in receipts_in_window(simulation) if t["terminal_id"] in chosen]
    assert hit and not any(t["rrn"] in refs for t in hit)
    counts = receipt_counts(simulation)
    assert counts[("acq-south", "missing", "terminal_config")] >= len(hit) * 0.9


#: The sms upstream's clock 8 hours ahead from 1 to 3 minutes.
STEP_AHEAD = {
    "kind": "clock_skew",
    "start": "1m",
    "duration": "2m",
    "target": "sms",
    "offset": "8h",
}


def test_a_push_clock_step_ahead_leaves_the_receivers_gaps_as_they_were(
    scenario_file: Callable[..., str],
) -> None:
    """The truth of what a push receiver watched is unchanged by a `clock_skew` ahead (a
    receiver caps the `Date` at a right clock): its downtime after the step is still a gap."""
    wall = [0.0]
    simulation = Simulation(
        settings(
            scenario=scenario_file(STEP_AHEAD),
            sms_api="aliyun",
            push_url="http://127.0.0.1:9/push",
            speed=1.0,
        ),
        SimClock(START_MS, 1.0, wall=lambda: wall[0]),
    )
    simulation.clock.start()
    for minute, acked in ((0.5, True), (2, True), (4, True), (5, False), (9, False), (10, True)):
        wall[0] = minute * 60
        batch, date_ms = simulation.reports_to_push(100)
        simulation.push_done(batch, date_ms, acked)
    assert simulation.push_log is not None
    assert simulation.push_log.windows == [(START_MS + 4 * MINUTE, START_MS + 10 * MINUTE)]

"""The scenario library through `smswatch backtest`: the shipped rules and Alertmanager config,
replayed over simulated days of the real pipeline, detect every fault with its cause within its
target, and page nobody on healthy traffic.

Two runs, each once per session: the library's two-day timeline (alerts/backtest/library.yaml,
faults separated by quiet traffic, which also counts as healthy time), and healthy days with no
fault at all. Both step every simulated minute (`--scrape-interval 60s`); production scrapes
every 15 s, so the detection times here are a little pessimistic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alert_files import ALERTMANAGER_CONFIG, ALERTS, RULES

from exporter.cli import main

LIBRARY = ALERTS / "backtest" / "library.yaml"
#: Healthy simulated days (a whole week would take too long for the suite: `smswatch backtest
#: --days 30` by hand gives the monthly figure published in the README).
HEALTHY_DAYS = 2


def _backtest(out: Path, *args: str) -> dict[str, Any]:
    code = main(
        [
            "backtest",
            "--scrape-interval",
            "60s",
            "--rules.dir",
            str(RULES),
            "--alertmanager.config",
            str(ALERTMANAGER_CONFIG),
            "--out",
            str(out),
            "--log.level",
            "warning",
            *args,
        ]
    )
    assert code == 0
    report: dict[str, Any] = json.loads((out / "backtest.json").read_text())
    print((out / "backtest.txt").read_text())
    return report


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _backtest(tmp_path_factory.mktemp("library"), "--days", "2", "--scenario", str(LIBRARY))


@pytest.fixture(scope="session")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _backtest(tmp_path_factory.mktemp("healthy"), "--days", str(HEALTHY_DAYS))


#: Fault id (order in the library) → (the cause it must be found with, or None for an alert
#: without a cause; the alert that must say so; minutes from the fault's start).
TARGETS: dict[int, tuple[str | None, str, int]] = {
    1: ("gateway", "SMSGatewayErrors", 2),  # total outage by day
    2: ("gateway", "SMSGatewayErrors", 10),  # partial degradation, one carrier
    3: ("integration", "ReceiptsWithoutSMS", 30),  # slow integration loss
    4: ("terminal_config", "ReceiptsWithoutSMSTerminalConfig", 15),  # batch of terminals
    5: ("gateway", "SMSGatewayErrors", 2),  # total outage at night
    6: (None, "SmswatchMonitoringBlind", 3),  # blindness at night
    7: ("unreachable", "SMSUnreachableHotSpot", 30),  # local unreachable, 25x
    8: ("throttled", "SMSThrottled", 10),  # throttling on one carrier
    9: ("gateway", "SMSGatewayErrors", 2),  # two at once: outage...
    10: (None, "SmswatchMonitoringBlind", 3),  # ...and the acquirer API down
    11: (None, "ReceiptNotificationSlow", 15),  # receipts notified minutes late
    12: ("integration", "ReceiptsWithoutSMS", 30),  # slow integration loss at night
}


def _fault(report: dict[str, Any], fault_id: int) -> dict[str, Any]:
    fault: dict[str, Any] = next(f for f in report["faults"] if f["id"] == fault_id)
    return fault


@pytest.mark.slow
@pytest.mark.parametrize("fault_id", sorted(TARGETS))
def test_each_fault_is_found_with_its_cause_within_its_target(
    library: dict[str, Any], fault_id: int
) -> None:
    cause, alert, minutes = TARGETS[fault_id]
    fault = _fault(library, fault_id)
    found = [
        a
        for a in fault["alerts"]
        if a["alert"] == alert and a["cause"] == cause and a["after_seconds"] <= minutes * 60
    ]
    assert found, f"fault {fault_id} ({fault['kind']}): {alert} (cause {cause}) " + (
        f"not within {minutes} min; alerts: "
        + ", ".join(f"{a['alert']}({a['cause']}) +{a['after_seconds']}s" for a in fault["alerts"])
    )


@pytest.mark.slow
def test_blindness_never_pages_as_an_outage(library: dict[str, Any]) -> None:
    """While the SMS status API fails and messages flow, no page carries a cause."""
    blind = _fault(library, 6)
    assert [p for p in blind["pages"] if p["cause"]] == []
    assert {p["alert"] for p in blind["pages"]} == {"SmswatchMonitoringBlind"}


@pytest.mark.slow
def test_one_incident_pages_once_and_never_after_it_ended(library: dict[str, Any]) -> None:
    """A total outage is one notification (its cause alert); the burn-rate and total-failure
    pages it explains stay muted for the whole incident, its tail included."""
    for fault_id in (1, 5):
        pages = _fault(library, fault_id)["pages"]
        assert [p["alert"] for p in pages] == ["SMSGatewayErrors"], pages
        assert not any(p["after_end"] for p in pages)


@pytest.mark.slow
def test_quiet_time_between_the_faults_pages_nobody(library: dict[str, Any]) -> None:
    assert library["false_pages"] == []


@pytest.mark.slow
def test_healthy_days_page_nobody_and_ticket_at_most_once_a_week(
    healthy: dict[str, Any],
) -> None:
    summary = healthy["summary"]
    assert summary["pages"] == 0, healthy["false_pages"]
    assert summary["tickets"] <= max(1, HEALTHY_DAYS // 7), [
        a for a in healthy["alerts"] if a["tickets"]
    ]

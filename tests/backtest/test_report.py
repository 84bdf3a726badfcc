"""The report's definitions: detection, cause, resolution after the fault, false pages."""

from __future__ import annotations

from pathlib import Path

from exporter.backtest.alertstate import Firing
from exporter.backtest.evaluation import AlertSeries
from exporter.backtest.inhibition import load_alertmanager
from exporter.backtest.report import build_report, render_table
from exporter.backtest.rules import Rule
from exporter.simulator.scenario import Fault

ROOT = Path(__file__).resolve().parents[2]
MINUTE = 60_000
HOUR = 60 * MINUTE


def series(name: str, severity: str, *episodes: Firing, **labels: str) -> AlertSeries:
    rule = Rule(name, "vector(1)", True, MINUTE, labels={"severity": severity})
    return AlertSeries(
        rule, {"alertname": name, "severity": severity, "job": "smswatch", **labels}, list(episodes)
    )


def test_detection_cause_resolution_and_false_pages() -> None:
    fault = Fault(kind="gateway_outage", start_ms=2 * HOUR, duration_ms=20 * MINUTE, fault_id=1)
    alerts = [
        series(
            "ReceiptNotificationErrorBudgetBurn",
            "critical",
            Firing(HOUR, HOUR, HOUR + 5 * MINUTE),  # before the fault: a false page
            Firing(2 * HOUR + 3 * MINUTE, 2 * HOUR + 4 * MINUTE, 2 * HOUR + 40 * MINUTE),
            acquirer="acq-north",
        ),
        series(
            "SMSGatewayErrors",
            "critical",
            Firing(2 * HOUR + 2 * MINUTE, 2 * HOUR + 6 * MINUTE, 2 * HOUR + 25 * MINUTE),
            cause="gateway",
            gateway="bank-sms",
        ),
        series("Watchdog", "info", Firing(MINUTE, MINUTE, None)),
    ]
    report = build_report(
        alerts=alerts,
        faults=[fault],
        am=load_alertmanager(ROOT / "alerts" / "alertmanager.yml"),
        start_ms=0,
        end_ms=7 * 24 * HOUR,
        grace_ms=30 * MINUTE,
        run={
            "start": "0",
            "end": "7d",
            "seed": 1,
            "scenario": "s",
            "scrape_interval": "1m",
            "evaluation_interval": "1m",
        },
        timings={"total": 1.0},
    )
    (row,) = report["faults"]
    assert row["detected"]
    assert (row["first_alert"], row["detect_after_seconds"]) == (
        "ReceiptNotificationErrorBudgetBurn",
        240,
    )
    assert (row["cause_alert"], row["cause"], row["cause_after_seconds"]) == (
        "SMSGatewayErrors",
        "gateway",
        360,
    )
    assert row["resolved_after_end_seconds"] == 20 * 60
    # The receipt page is muted while the gateway alert fires, and pages once it resolved.
    assert [(p["alert"], p["after_seconds"], p["after_end"]) for p in row["pages"]] == [
        ("ReceiptNotificationErrorBudgetBurn", 4 * 60, False),
        ("SMSGatewayErrors", 6 * 60, False),
        ("ReceiptNotificationErrorBudgetBurn", 25 * 60, True),
    ]
    assert [(p["alert"], p["start"]) for p in report["false_pages"]] == [
        ("ReceiptNotificationErrorBudgetBurn", "1970-01-01T01:00:00.000Z")
    ]
    summary = report["summary"]
    assert (summary["pages"], summary["pages_per_week"], summary["false_pages"]) == (4, 4.0, 1)
    assert "SMSGatewayErrors" in render_table(report)

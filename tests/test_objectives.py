"""The objectives have one home in the package; the alerting spec must state the same numbers."""

from __future__ import annotations

from pathlib import Path

import yaml

from exporter import objectives
from exporter.app import report_objectives
from exporter.config import Objectives
from exporter.dashboards import objectives as dashboard_objectives
from exporter.reports.objectives import DEFAULT_OBJECTIVES

SPEC = Path(__file__).resolve().parent.parent / "alerts" / "spec.yaml"


def test_the_alerting_spec_states_the_package_objectives() -> None:
    spec = yaml.safe_load(SPEC.read_text())["slo"]
    slos = spec["objectives"]
    assert slos["sms-delivery"]["objective"] / 100 == objectives.DELIVERY_RATIO
    assert slos["receipt-notification"]["objective"] / 100 == objectives.RECEIPT_NOTIFICATION_RATIO
    assert slos["receipt-latency"]["objective"] / 100 == objectives.NOTIFY_WITHIN_RATIO
    assert slos["receipt-latency"]["latency_seconds"] == objectives.NOTIFY_WITHIN_SECONDS
    assert spec["period"] == f"{objectives.PERIOD_DAYS}d"
    causes = yaml.safe_load(SPEC.read_text())["causes"]
    assert tuple(causes["cardholder_side"]) == objectives.CARDHOLDER_SIDE_CAUSES
    assert tuple(causes["bank_side"]) == objectives.BANK_SIDE_CAUSES


def test_config_reports_and_dashboards_default_to_them() -> None:
    assert Objectives().sms_delivery_ratio == objectives.DELIVERY_RATIO
    assert Objectives().receipt_notify_within_60s_ratio == objectives.NOTIFY_WITHIN_RATIO
    assert DEFAULT_OBJECTIVES.delivered_ratio == objectives.DELIVERY_RATIO
    assert DEFAULT_OBJECTIVES.receipt_notification_ratio == objectives.RECEIPT_NOTIFICATION_RATIO
    assert Objectives().receipt_notification_ratio == objectives.RECEIPT_NOTIFICATION_RATIO
    assert DEFAULT_OBJECTIVES.latency_seconds == objectives.NOTIFY_WITHIN_SECONDS
    assert dashboard_objectives.NOTIFY_OBJECTIVE == objectives.NOTIFY_WITHIN_RATIO
    assert dashboard_objectives.RECEIPT_OBJECTIVE == objectives.RECEIPT_NOTIFICATION_RATIO


def test_the_config_objectives_reach_the_scheduled_reports() -> None:
    chosen = Objectives(
        sms_delivery_ratio=0.99,
        receipt_notify_within_60s_ratio=0.9,
        receipt_notification_ratio=0.97,
    )
    judged = report_objectives(chosen)
    assert (judged.delivered_ratio, judged.receipt_notification_ratio) == (0.99, 0.97)
    assert judged.within_latency_ratio == 0.9

"""Inhibition as the real alerts/alertmanager.yml defines it."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.backtest.alertstate import Firing
from exporter.backtest.evaluation import AlertSeries
from exporter.backtest.inhibition import AlertmanagerConfig, load_alertmanager, muted_by
from exporter.backtest.report import notifications, spells
from exporter.backtest.rules import Rule
from exporter.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
MINUTE = 60_000


@pytest.fixture(scope="module")
def am() -> AlertmanagerConfig:
    return load_alertmanager(ROOT / "alerts" / "alertmanager.yml")


def alert(name: str, severity: str, **labels: str) -> dict[str, str]:
    return {"alertname": name, "severity": severity, "job": "smswatch", **labels}


OUTAGE = alert("SMSGatewayOutage", "critical", cause="gateway", gateway="bank-sms")


def test_a_gateway_outage_mutes_the_burn_rate_pages_of_its_gateway(am: AlertmanagerConfig) -> None:
    burn = alert("SMSDeliveryErrorBudgetBurn", "critical", gateway="bank-sms")
    assert muted_by(am.inhibit_rules, OUTAGE, burn)
    other = alert("SMSDeliveryErrorBudgetBurn", "critical", gateway="other-sms")
    assert not muted_by(am.inhibit_rules, OUTAGE, other)


def test_a_gateway_outage_mutes_the_receipt_pages_of_its_job(am: AlertmanagerConfig) -> None:
    receipts = alert("ReceiptNotificationErrorBudgetBurn", "critical", acquirer="acq-north")
    assert muted_by(am.inhibit_rules, OUTAGE, receipts)
    elsewhere = {**receipts, "job": "smswatch-2"}
    assert not muted_by(am.inhibit_rules, OUTAGE, elsewhere)


def test_a_page_mutes_the_ticket_of_the_same_alert_and_acquirer(am: AlertmanagerConfig) -> None:
    page = alert("ReceiptNotificationErrorBudgetBurn", "critical", acquirer="acq-north")
    ticket = alert("ReceiptNotificationErrorBudgetBurn", "warning", acquirer="acq-north")
    assert muted_by(am.inhibit_rules, page, ticket)
    assert not muted_by(am.inhibit_rules, page, {**ticket, "acquirer": "acq-east"})
    assert not muted_by(am.inhibit_rules, ticket, page)


def test_an_alert_on_both_sides_is_not_muted_by_its_peers(tmp_path: Path) -> None:
    """An alert that is a source and a target of the same rule: as in Alertmanager, only a
    source that is no target mutes it."""
    path = tmp_path / "am.yml"
    path.write_text(
        "inhibit_rules:\n"
        "  - source_matchers: ['cause=\"gateway\"']\n"
        "    target_matchers: ['alertname=~\"SMSGatewayErrors|SMSDeliveryErrorBudgetBurn\"']\n"
        "    equal: [job, gateway]\n"
    )
    rules = load_alertmanager(path).inhibit_rules
    errors = alert("SMSGatewayErrors", "critical", cause="gateway", gateway="bank-sms")
    assert not muted_by(rules, errors, errors)
    assert muted_by(rules, OUTAGE, errors)


def test_a_page_muted_while_its_cause_fires_pages_once_the_cause_resolves(
    am: AlertmanagerConfig,
) -> None:
    rule = Rule("x", "vector(1)", True, MINUTE)
    burn = alert("SMSDeliveryErrorBudgetBurn", "critical", gateway="bank-sms")
    series = [
        AlertSeries(rule, OUTAGE, [Firing(0, 2 * MINUTE, 20 * MINUTE)]),
        AlertSeries(rule, burn, [Firing(0, 5 * MINUTE, 30 * MINUTE)]),
    ]
    pages = notifications(spells(series, 60 * MINUTE, am), am)
    assert [(p.alert, p.start_ms, p.end_ms) for p in pages] == [
        ("SMSGatewayOutage", 2 * MINUTE, 20 * MINUTE),
        ("SMSDeliveryErrorBudgetBurn", 20 * MINUTE, 30 * MINUTE),
    ]


def test_a_bad_matcher_names_its_place(tmp_path: Path) -> None:
    path = tmp_path / "am.yml"
    path.write_text("inhibit_rules:\n  - source_matchers: ['severity']\n    target_matchers: []\n")
    with pytest.raises(ConfigError, match=r"inhibit_rules\[0\]\.source_matchers\[0\]"):
        load_alertmanager(path)

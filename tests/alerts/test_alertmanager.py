"""alerts/alertmanager.yml: valid, routes by severity, and inhibits on a real Alertmanager.

The live test starts Debian's Alertmanager on 127.0.0.1 with the shipped config, its webhook
URLs pointed at an HTTP server in this test, posts alerts through the v2 API and checks what
is inhibited (`status.inhibitedBy`) and what the webhook receives.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_files import ALERTMANAGER_CONFIG
from alert_stack import (
    Webhook,
    get_json,
    local_alertmanager_config,
    post_json,
    webhook_server,
)
from alert_stack import alertmanager as start_alertmanager

from harness import wait_until


def test_amtool_check_config(amtool: str) -> None:
    result = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER_CONFIG)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 inhibit rules" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ("severity=critical alertname=SMSGatewayOutage cause=gateway", "oncall-pager,oncall-chat"),
        ("severity=critical alertname=SmswatchExporterDown", "oncall-pager,oncall-chat"),
        ("severity=warning alertname=SMSUnreachableHotSpot cause=unreachable", "ticket-queue"),
        ("severity=info alertname=SomethingInformational", "blackhole"),
        ("severity=info alertname=Watchdog", "deadmansswitch"),
        ("alertname=NoSeverity", "blackhole"),
    ],
)
def test_routes(amtool: str, labels: str, receivers: str) -> None:
    result = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_CONFIG}",
            *labels.split(),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receivers


def test_warnings_wait_for_business_hours_in_shanghai() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    interval = next(t for t in config["time_intervals"] if t["name"] == "business-hours")
    assert interval["time_intervals"][0]["location"] == "Asia/Shanghai"
    warning = next(r for r in config["route"]["routes"] if r["receiver"] == "ticket-queue")
    assert warning["active_time_intervals"] == ["business-hours"]


@pytest.fixture()
def webhook() -> Iterator[Webhook]:
    with webhook_server() as hook:
        yield hook


@pytest.fixture()
def alertmanager(alertmanager_bin: str, tmp_path: Path, webhook: Webhook) -> Iterator[str]:
    config = local_alertmanager_config(webhook.url, tmp_path)
    with start_alertmanager(alertmanager_bin, config, tmp_path / "am") as url:
        yield url


def _post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    post_json(f"{url}/api/v2/alerts", alerts)


def _alert(**labels: str) -> dict[str, Any]:
    return {
        "labels": {"job": "smswatch", **labels},
        "annotations": {"summary": f"{labels['alertname']} (test)"},
    }


def test_inhibition_and_notification_on_a_real_alertmanager(
    alertmanager: str, webhook: Webhook
) -> None:
    outage = _alert(
        alertname="SMSGatewayOutage", severity="critical", cause="gateway", gateway="bank-sms"
    )
    burn_same_gateway = _alert(
        alertname="SMSDeliveryErrorBudgetBurn", severity="critical", gateway="bank-sms"
    )
    receipts_missing = _alert(
        alertname="ReceiptsWithoutSMS",
        severity="critical",
        cause="integration",
        acquirer="acq-north",
    )
    burn_other_gateway = _alert(
        alertname="SMSDeliveryErrorBudgetBurn", severity="critical", gateway="backup-sms"
    )
    ticket_other_gateway = _alert(
        alertname="SMSDeliveryErrorBudgetBurn", severity="warning", gateway="backup-sms"
    )
    _post_alerts(
        alertmanager,
        [outage, burn_same_gateway, receipts_missing, burn_other_gateway, ticket_other_gateway],
    )

    def states() -> dict[tuple[str, str, str], list[str]] | None:
        alerts = get_json(f"{alertmanager}/api/v2/alerts")
        found = {
            (
                a["labels"]["alertname"],
                a["labels"].get("gateway") or a["labels"].get("acquirer", ""),
                a["labels"]["severity"],
            ): a["status"]["inhibitedBy"]
            for a in alerts
        }
        return found if len(found) == 5 else None

    inhibited = wait_until(states, 15, "five alerts in Alertmanager")
    assert inhibited[("SMSGatewayOutage", "bank-sms", "critical")] == []
    # A gateway outage silences the burn-rate page of the same gateway, and the receipt pages.
    assert inhibited[("SMSDeliveryErrorBudgetBurn", "bank-sms", "critical")] != []
    assert inhibited[("ReceiptsWithoutSMS", "acq-north", "critical")] != []
    # Another gateway's page stays; its ticket is silenced by the page of the same alert.
    assert inhibited[("SMSDeliveryErrorBudgetBurn", "backup-sms", "critical")] == []
    assert inhibited[("SMSDeliveryErrorBudgetBurn", "backup-sms", "warning")] != []

    def notified() -> set[tuple[str, str]] | None:
        seen = {
            (note.receiver, alert["labels"]["alertname"] + "/" + alert["labels"].get("gateway", ""))
            for note in webhook.snapshot()
            for alert in note.alerts()
        }
        wanted = {
            ("/oncall-pager", "SMSGatewayOutage/bank-sms"),
            ("/oncall-chat", "SMSGatewayOutage/bank-sms"),
            ("/oncall-pager", "SMSDeliveryErrorBudgetBurn/backup-sms"),
        }
        return seen if wanted <= seen else None

    seen = wait_until(notified, 20, "the pages at the webhook")
    names = {name for _, name in seen}
    assert "SMSDeliveryErrorBudgetBurn/bank-sms" not in names
    assert "ReceiptsWithoutSMS/" not in names
    notes = webhook.snapshot()
    assert all(n.authorization == "Bearer s3cret" for n in notes), "secret read from file"
    payload = next(n.payload for n in notes if n.receiver == "/oncall-pager")
    assert payload["version"] == "4" and payload["status"] == "firing"


def test_exporter_down_silences_what_it_feeds(alertmanager: str) -> None:
    _post_alerts(
        alertmanager,
        [
            _alert(alertname="SmswatchExporterDown", severity="critical", instance="smswatch:8479"),
            _alert(alertname="SMSThrottled", severity="warning", cause="throttled", gateway="gw"),
            _alert(alertname="SmswatchSourceDown", severity="warning", source="acquirer"),
            _alert(alertname="Watchdog", severity="info"),
        ],
    )

    def states() -> dict[str, list[str]] | None:
        alerts = get_json(f"{alertmanager}/api/v2/alerts")
        found = {a["labels"]["alertname"]: a["status"]["inhibitedBy"] for a in alerts}
        return found if len(found) == 4 else None

    inhibited = wait_until(states, 15, "four alerts in Alertmanager")
    assert inhibited["SmswatchExporterDown"] == []
    assert inhibited["Watchdog"] == []
    assert inhibited["SMSThrottled"] != []
    assert inhibited["SmswatchSourceDown"] != []


def test_state_down_silences_the_frozen_numbers_but_not_the_exporter_alerts(
    alertmanager: str,
) -> None:
    _post_alerts(
        alertmanager,
        [
            _alert(alertname="SmswatchStateDown", severity="critical", instance="smswatch:8479"),
            _alert(alertname="SMSDeliveryTotalFailure", severity="critical", gateway="gw"),
            _alert(alertname="SmswatchSourceStale", severity="warning", source="sms"),
            _alert(alertname="SmswatchExporterDown", severity="critical", instance="smswatch:9"),
            _alert(alertname="Watchdog", severity="info"),
        ],
    )

    def states() -> dict[str, list[str]] | None:
        alerts = get_json(f"{alertmanager}/api/v2/alerts")
        found = {a["labels"]["alertname"]: a["status"]["inhibitedBy"] for a in alerts}
        return found if len(found) == 5 else None

    inhibited = wait_until(states, 15, "five alerts in Alertmanager")
    assert inhibited["SMSDeliveryTotalFailure"] != [] and inhibited["SmswatchSourceStale"] != []
    assert inhibited["Watchdog"] == [] and inhibited["SmswatchExporterDown"] == []
    assert inhibited["SmswatchStateDown"] != []  # by the exporter down, which says more


def test_causes_and_blindness_silence_what_they_explain(alertmanager: str) -> None:
    """Throttling explains its gateway's burn; an integration fault its acquirer's receipt burn
    (not another acquirer's); slow notification the latency burn; blindness its source's
    warnings. Blindness never silences a page of another kind."""
    _post_alerts(
        alertmanager,
        [
            # Another shard (job): its throttling silences its own pages only.
            _alert(
                alertname="SMSThrottled",
                severity="critical",
                cause="throttled",
                gateway="gw",
                job="smswatch-2",
            ),
            _alert(
                alertname="SMSDeliveryErrorBudgetBurn",
                severity="critical",
                gateway="gw",
                job="smswatch-2",
            ),
            _alert(
                alertname="ReceiptsWithoutSMS",
                severity="critical",
                cause="integration",
                acquirer="acq-east",
            ),
            _alert(
                alertname="ReceiptNotificationErrorBudgetBurn",
                severity="critical",
                acquirer="acq-east",
            ),
            _alert(
                alertname="ReceiptNotificationErrorBudgetBurn",
                severity="critical",
                acquirer="acq-west",
            ),
            _alert(alertname="ReceiptNotificationSlow", severity="critical", acquirer="acq-west"),
            _alert(
                alertname="ReceiptLatencyErrorBudgetBurn", severity="critical", acquirer="acq-west"
            ),
            _alert(alertname="SmswatchMonitoringBlind", severity="critical", source="sms"),
            _alert(alertname="SmswatchSourceDown", severity="warning", source="sms"),
            _alert(alertname="SmswatchSourceDown", severity="warning", source="acquirer"),
        ],
    )

    def states() -> dict[tuple[str, str], list[str]] | None:
        alerts = get_json(f"{alertmanager}/api/v2/alerts")
        found = {
            (
                a["labels"]["alertname"],
                a["labels"].get("gateway")
                or a["labels"].get("acquirer")
                or a["labels"].get("source", ""),
            ): a["status"]["inhibitedBy"]
            for a in alerts
        }
        return found if len(found) == 10 else None

    inhibited = wait_until(states, 15, "ten alerts in Alertmanager")
    assert inhibited[("SMSDeliveryErrorBudgetBurn", "gw")] != []
    assert inhibited[("ReceiptNotificationErrorBudgetBurn", "acq-east")] != []
    assert inhibited[("ReceiptNotificationErrorBudgetBurn", "acq-west")] == []
    assert inhibited[("ReceiptLatencyErrorBudgetBurn", "acq-west")] != []
    assert inhibited[("SmswatchSourceDown", "sms")] != []
    assert inhibited[("SmswatchSourceDown", "acquirer")] == []
    for page in ("SMSThrottled", "ReceiptsWithoutSMS", "SmswatchMonitoringBlind"):
        assert all(v == [] for k, v in inhibited.items() if k[0] == page), page

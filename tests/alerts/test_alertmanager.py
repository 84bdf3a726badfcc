"""alerts/alertmanager.yml: valid, routes by severity, and inhibits on a real Alertmanager.

The live test starts Debian's Alertmanager on 127.0.0.1 with the shipped config, its webhook
URLs pointed at an HTTP server in this test, posts alerts through the v2 API and checks what
is inhibited (`status.inhibitedBy`) and what the webhook receives.
"""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from alert_files import ALERTMANAGER_CONFIG

from harness import free_port, wait_until


def test_amtool_check_config(amtool: str) -> None:
    result = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER_CONFIG)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 inhibit rules" in result.stdout


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


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, Any], str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        auth = self.headers.get("Authorization", "")
        type(self).received.append((self.path, json.loads(body), auth))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def webhook() -> Iterator[tuple[str, list[tuple[str, dict[str, Any], str]]]]:
    received: ClassVar[list[tuple[str, dict[str, Any], str]]] = []
    handler = type("Webhook", (_Webhook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def local_config(webhook_url: str, secrets: Path) -> dict[str, Any]:
    """The shipped config with every webhook pointed at the test and quick timers."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    token = secrets / "relay-token"
    token.write_text("s3cret\n")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook_url}/{receiver['name']}"
            hook["http_config"]["authorization"]["credentials_file"] = str(token)
    for route in [config["route"], *config["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="1s")
    return config


@pytest.fixture()
def alertmanager(
    alertmanager_bin: str,
    tmp_path: Path,
    webhook: tuple[str, list[tuple[str, dict[str, Any], str]]],
) -> Iterator[str]:
    config_path = tmp_path / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(local_config(webhook[0], tmp_path)))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "alertmanager.log", "wb") as log:
        proc = subprocess.Popen(
            [
                alertmanager_bin,
                f"--config.file={config_path}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: _get(f"{url}/-/ready") is not None, 20, "Alertmanager ready")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body.strip().startswith((b"[", b"{")) else body


def _post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _alert(**labels: str) -> dict[str, Any]:
    return {
        "labels": {"job": "smswatch", **labels},
        "annotations": {"summary": f"{labels['alertname']} (test)"},
    }


def test_inhibition_and_notification_on_a_real_alertmanager(
    alertmanager: str, webhook: tuple[str, list[tuple[str, dict[str, Any], str]]]
) -> None:
    _, received = webhook
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
        alerts = _get(f"{alertmanager}/api/v2/alerts")
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
            (path, alert["labels"]["alertname"] + "/" + alert["labels"].get("gateway", ""))
            for path, payload, _ in received
            for alert in payload["alerts"]
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
    assert all(auth == "Bearer s3cret" for _, _, auth in received), "secret read from file"
    payload = next(p for path, p, _ in received if path == "/oncall-pager")
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
        alerts = _get(f"{alertmanager}/api/v2/alerts")
        found = {a["labels"]["alertname"]: a["status"]["inhibitedBy"] for a in alerts}
        return found if len(found) == 4 else None

    inhibited = wait_until(states, 15, "four alerts in Alertmanager")
    assert inhibited["SmswatchExporterDown"] == []
    assert inhibited["Watchdog"] == []
    assert inhibited["SMSThrottled"] != []
    assert inhibited["SmswatchSourceDown"] != []

"""The demo's receiver prints one line per alert state, for what a real Alertmanager (the
shipped routing, as the demo configures it) posts to it."""

from __future__ import annotations

import io
import json
import shutil
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from exporter.demo.receiver import NotificationPrinter
from exporter.demo.stack import AlertingStack, Binaries

from harness import wait_until

ALERTS = Path(__file__).resolve().parents[2] / "alerts"
RUNBOOK = "https://github.com/smswatch/smswatch/blob/main/alerts/runbooks/SMSGatewayOutage.md"
LABELS = {
    "alertname": "SMSGatewayOutage",
    "severity": "critical",
    "cause": "gateway",
    "gateway": "bank-sms",
    "job": "smswatch",
}
ANNOTATIONS = {
    "summary": "SMS gateway submits nothing while card transactions are approved.",
    "description": "Gateway bank-sms submitted no SMS in the last 2m.",
    "runbook_url": RUNBOOK,
}
#: A fixed clock: 2026-11-30 02:03:04 UTC; 65 simulated minutes since the start.
WALL_S = datetime(2026, 11, 30, 2, 3, 4, tzinfo=UTC).timestamp()


@pytest.fixture
def printer() -> Iterator[NotificationPrinter]:
    printer = NotificationPrinter(
        io.StringIO(), "t0ken", sim_offset_ms=lambda: 65 * 60_000, clock=lambda: WALL_S
    )
    printer.start()
    try:
        yield printer
    finally:
        printer.stop()


def _post_alert(alertmanager: str, **times: str) -> None:
    body = json.dumps([{"labels": LABELS, "annotations": ANNOTATIONS, **times}]).encode()
    request = urllib.request.Request(
        f"{alertmanager}/api/v2/alerts",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def test_a_page_through_alertmanager_prints_one_line_firing_then_one_resolved(
    printer: NotificationPrinter, tmp_path: Path
) -> None:
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert alertmanager, "install Debian's prometheus-alertmanager package (see .ci/run)"
    stack = AlertingStack(
        Binaries("prometheus", alertmanager),
        ALERTS,
        tmp_path,
        speed=300,  # group_wait 100ms, group_interval 1s
        exporter_target="127.0.0.1:9",
        receiver_url=printer.url,
        token=printer.token,
    )
    stack.start_alertmanager()
    try:
        now = datetime.now(UTC)
        _post_alert(stack.alertmanager_url, startsAt=now.isoformat())
        wait_until(lambda: printer.lines, 15, "the page printed")
        _post_alert(
            stack.alertmanager_url,
            startsAt=now.isoformat(),
            endsAt=(now + timedelta(milliseconds=1)).isoformat(),
        )
        wait_until(lambda: len(printer.lines) >= 2, 15, "the resolution printed")
    finally:
        stack.stop()

    where = "cause=gateway  gateway=bank-sms  | " + ANNOTATIONS["summary"]
    runbook = "| runbook alerts/runbooks/SMSGatewayOutage.md"
    assert printer.lines == [
        f"02:03:04 sim +1h05m  FIRING    SMSGatewayOutage  critical  {where}  {runbook}",
        f"02:03:04 sim +1h05m  RESOLVED  SMSGatewayOutage  critical  {where}  {runbook}",
    ]
    # The pager and the chat receivers both got it; it is printed once per state.
    assert isinstance(printer.out, io.StringIO)
    assert printer.out.getvalue().splitlines() == printer.lines


def test_a_notification_without_the_token_is_refused(printer: NotificationPrinter) -> None:
    payload: dict[str, Any] = {"alerts": [{"status": "firing", "labels": LABELS}]}
    request = urllib.request.Request(
        f"{printer.url}/oncall-pager", data=json.dumps(payload).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert printer.lines == []


def test_an_alert_resolved_before_its_firing_was_notified_says_so(
    printer: NotificationPrinter,
) -> None:
    alert = {
        "status": "resolved",
        "labels": {**LABELS, "alertname": "SMSUnreachableHotSpot", "severity": "warning"},
        "annotations": {"summary": "Handsets of one carrier and area cannot be reached."},
        "startsAt": "2026-11-30T02:00:00Z",
        "fingerprint": "a1",
    }
    printed = printer.take({"alerts": [alert, alert]})
    assert printed == [
        "02:03:04 sim +1h05m  RESOLVED  SMSUnreachableHotSpot  warning  cause=gateway  "
        "gateway=bank-sms  | Handsets of one carrier and area cannot be reached.  "
        "| fired and resolved between two notifications"
    ]

"""The test handset as a provider's inbound-message webhook: Twilio's form post (`Body`) and
Vonage's JSON (`text`) prove a canary received; a post without the secret is refused and
changes nothing. Real HTTP to the exporter's own server."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import responses

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.errors import ConfigError

from .test_ledger import config_document, counters

SECRET = "inbox-secret-123"


def post(url: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@responses.activate
def test_inbound_webhooks_prove_receipt_and_strangers_are_refused(tmp_path: Path) -> None:
    responses.add_passthru("http://127.0.0.1")
    responses.post("https://sms-gw.bank/sms/v1/send", json={})
    doc = config_document(tmp_path)
    doc["probes"]["inbox"] = {"webhook": {"secret": "${INBOX_SECRET}"}}
    doc["probes"]["gateways"][0]["numbers"].append(
        {"number": "+447700900123", "carrier": "vonage-vn", "area": "uk"}
    )
    app = Exporter(parse_config(doc, env={"INBOX_SECRET": SECRET}), "127.0.0.1", 0)
    app.web.start()
    try:
        assert app.prober is not None
        first, second = app.prober.send_round("bank-sms")
        base = f"http://127.0.0.1:{app.port}/probe/inbox"
        twilio = f"Body=smswatch+canary+{first.nonce}&From=%2B8613800138000&To=%2B15005550006"
        assert post(base, twilio.encode(), "application/x-www-form-urlencoded") == 403
        assert counters(app.store, "smswatch_probe_received_total") == {}
        assert (
            post(f"{base}?secret={SECRET}", twilio.encode(), "application/x-www-form-urlencoded")
            == 200
        )
        vonage = {
            "msisdn": "447700900001",
            "to": "447700900123",
            "type": "text",
            "text": f"smswatch canary {second.nonce}",
            "messageId": "0A00000012345678",
        }
        assert (
            post(f"{base}?secret={SECRET}", json.dumps(vonage).encode(), "application/json") == 200
        )
        assert counters(app.store, "smswatch_probe_received_total") == {
            ("smswatch_probe_received_total", ("bank-sms", "china-mobile", "north")): 1,
            ("smswatch_probe_received_total", ("bank-sms", "vonage-vn", "uk")): 1,
        }
        got = app.store.canary(first.canary_id)
        assert got is not None and got.handset_ms is not None
        assert got.handset_ms >= got.sent_ms
    finally:
        app.web.stop()
        app.store.close()


def test_an_unguarded_webhook_is_refused_by_the_config(tmp_path: Path) -> None:
    doc = config_document(tmp_path)
    doc["probes"]["inbox"] = {"webhook": {"path": "/probe/inbox"}}
    with pytest.raises(ConfigError) as caught:
        parse_config(doc)
    assert caught.value.field_path == "probes.inbox.webhook"

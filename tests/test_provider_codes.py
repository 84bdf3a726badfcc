"""Provider code tables and DLR parsers checked against each provider's own documentation
(issue 12, "Wrong today" and "Missing codes"). Each case names its source.

What a user notices is the cause a failure is counted under: a wrong one pages the wrong team.
The push cases go through the exporter's real HTTP receivers and read /metrics.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.app import Exporter
from exporter.classify import ALIYUN, SMPP, TABLES, TENCENT, TWILIO, VONAGE, CodeTable
from exporter.config import parse_config, simulator_config_document
from exporter.sources import jasmin, kannel, vonage

from harness import http_get, scrape

SECRET = "s3cret"


@pytest.mark.parametrize(
    ("table", "status", "code", "cause"),
    [
        # twilio.com/docs/api/errors/30001: "Queue overflow ... sent too many messages too
        # quickly" for the account's rate: throttled, not the gateway.
        (TWILIO, "failed", "30001", "throttled"),
        # twilio.com/docs/api/errors/30024: the sender id is not provisioned with the carrier
        # (the sender's own set-up, C4 → gateway).
        (TWILIO, "undelivered", "30024", "gateway"),
        # Issue 12 / Twilio error 30450: blocked by SMS pumping protection → filtered.
        (TWILIO, "failed", "30450", "filtered"),
        # Issue 12 / Twilio error 63038: the account's daily message limit → throttled.
        (TWILIO, "failed", "63038", "throttled"),
        # twilio.com/docs/api/errors/21608: the To number is not verified for a trial or
        # unprofiled account: account set-up (gateway).
        (TWILIO, "failed", "21608", "gateway"),
        # Vonage delivery-receipts guide + api.support.vonage.com 204014733: DLR err-code 15
        # is "prepaid insufficient funds", the *recipient's* prepaid credit (the submit-time
        # status 15, "invalid sender", is another table): unreachable.
        (VONAGE, "failed", "15", "unreachable"),
        # Same table: 11 unroutable (gateway), 16 gateway quota exceeded (throttled).
        (VONAGE, "failed", "11", "gateway"),
        (VONAGE, "rejected", "16", "throttled"),
        # alibabacloud.com/help/en/sms/developer-reference/error-codes (issue 12).
        (ALIYUN, "undelivered", "isv.DAY_LIMIT_CONTROL", "throttled"),
        (ALIYUN, "undelivered", "isv.MONTH_LIMIT_CONTROL", "throttled"),
        (ALIYUN, "undelivered", "isv.SMS_CONTENT_ILLEGAL", "filtered"),
        (ALIYUN, "undelivered", "isv.SMS_SIGN_ILLEGAL", "gateway"),
        (ALIYUN, "undelivered", "isv.SMS_SIGNATURE_SCENE_ILLEGAL", "gateway"),
        (ALIYUN, "undelivered", "NO_ROUTE", "gateway"),
        # Issue 12 (sms-providers.md §3, corrected): REQUEST_SUCCESS without a carrier receipt
        # is a recipient-side state, NOROUTE a busy network or an empty number.
        (ALIYUN, "undelivered", "REQUEST_SUCCESS", "unreachable"),
        (ALIYUN, "undelivered", "NOROUTE", "unreachable"),
        # cloud.tencent.com/document/product/382/3771, the send-error table taken whole.
        (TENCENT, "rejected", "1002", "filtered"),
        (TENCENT, "undelivered", "1047", "throttled"),
        (TENCENT, "undelivered", "1009", "integration"),
    ],
)
def test_codes_get_the_cause_their_provider_documents(
    table: CodeTable, status: str, code: str, cause: str
) -> None:
    assert table.cause(status, code) == cause
    assert table.ambiguity(status, code) != "unlisted"


@pytest.mark.parametrize(
    ("table", "code"),
    [
        # Issue 12: Alibaba INVALID_NUMBER also covers switched-off and out-of-service
        # handsets; REQUEST_SUCCESS and NOROUTE are best guesses too.
        (ALIYUN, "INVALID_NUMBER"),
        (ALIYUN, "REQUEST_SUCCESS"),
        (ALIYUN, "NOROUTE"),
        (VONAGE, "11"),
        (SMPP, "NOROUTE"),
    ],
)
def test_codes_that_only_suggest_a_cause_are_counted_as_ambiguous(
    table: CodeTable, code: str
) -> None:
    assert table.ambiguity("undelivered", code) == code.upper()


@pytest.mark.parametrize("dialect", ["jasmin", "jasmin_8x8", "jasmin_gsm_map"])
def test_every_jasmin_table_keeps_the_esme_entries_and_the_integration_default(
    dialect: str,
) -> None:
    """Issue 12 + jookies/jasmin receiving-dlr.rst: a level-1 `message_status` is the
    submit_sm_resp command status, whatever `err` dialect the SMSC's receipts use."""
    table = TABLES[dialect]
    assert table.cause("rejected", "ESME_RTHROTTLED") == "throttled"
    assert table.cause("rejected", "ESME_RINVDSTADR") == "invalid_number"
    assert table.cause("rejected", "ESME_RSYSERR") == "gateway"
    assert table.cause("rejected", "ESME_RINVSRCADR") == "integration"
    assert table.cause("rejected", "ESME_RINVPASWD") == "integration"
    assert table.cause("rejected", "") == "integration"
    assert table.ambiguity("rejected", "ESME_RINVSRCADR") is None


def test_a_jasmin_refusal_it_will_retry_is_not_the_final_status() -> None:
    """jookies/jasmin jasmin/managers/listeners.py: a submit_sm_resp in
    `submit_error_retrial` (default ESME_RSYSERR, ESME_RTHROTTLED, ESME_RMSGQFUL,
    ESME_RINVSCHED) is requeued, yet its level-1 DLR is sent all the same."""
    retried = {"id": "j-1", "message_status": "ESME_RTHROTTLED", "level": "1"}
    event = jasmin.parse_dlr(retried, 1_000)
    assert event is not None and event.status == "submitted" and event.error_code == ""
    final = jasmin.parse_dlr({**retried, "message_status": "ESME_RINVDSTADR"}, 1_000)
    assert final is not None and (final.status, final.error_code) == (
        "rejected",
        "ESME_RINVDSTADR",
    )
    none_retried = jasmin.parse_dlr(retried, 1_000, retried=())
    assert none_retried is not None and none_retried.status == "rejected"


def test_vonage_dlr_to_is_the_sender_never_a_phone_number() -> None:
    """developer.vonage.com/messaging/sms/guides/delivery-receipts: `to` is the sender id the
    message was sent `from`; the recipient is `msisdn`."""
    without_msisdn = vonage.parse_dlr(
        {"messageId": "v-1", "status": "delivered", "to": "447700900123"}, 1
    )
    assert without_msisdn is not None and without_msisdn.phone == ""
    both = vonage.parse_dlr(
        {
            "messageId": "v-2",
            "status": "delivered",
            "to": "447700900123",
            "msisdn": "8613812345678",
        },
        1,
    )
    assert both is not None and both.phone.endswith("5678") and "0123" not in both.phone


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        # Kannel gw/bb_smscconn.c + gw/smsc/smsc_smpp.c: `NACK/` + `0x%08lx/<text>`.
        ("NACK/0x00000058/Throttling error", "ESME_RTHROTTLED"),
        ("NACK/0x0000000b/Invalid Destination Address", "ESME_RINVDSTADR"),
        ("NACK/0x00000008/System Error", "ESME_RSYSERR"),
        ("NACK/0x0000000a/Invalid Source Address", "ESME_RINVSRCADR"),
        ("NACK/Retries Exceeded", "NACK"),
    ],
)
def test_kannel_nack_reads_the_smpp_command_status(reply: str, code: str) -> None:
    assert kannel.nack_code(reply) == code


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Exporter]:
    doc = simulator_config_document("http://127.0.0.1:9")
    doc["state"]["path"] = str(tmp_path / "state.sqlite")
    push = {"secret": "${PUSH_SECRET}", "lag": "30s"}
    doc["sources"] = [
        {"name": "kannel", "kind": "sms_gateway", "provider": "kannel", "pull": False,
         "push": push},
        {"name": "jasmin", "kind": "sms_gateway", "provider": "jasmin", "pull": False,
         "push": push, "error_codes": "8x8"},
        doc["sources"][1],
    ]  # fmt: skip
    app = Exporter(parse_config(doc, env={"PUSH_SECRET": SECRET}), "127.0.0.1", 0)
    app.web.start()
    yield app
    app.web.stop()
    app.store.close()


def _metric(app: Exporter, name: str, **labels: str) -> float:
    exported = scrape(f"http://127.0.0.1:{app.port}/metrics")
    return sum(v for (n, ls), v in exported.items() if n == name and set(labels.items()) <= set(ls))


def _push(app: Exporter, source: str, params: dict[str, str]) -> int:
    query = urllib.parse.urlencode({"secret": SECRET, **params})
    return http_get(f"http://127.0.0.1:{app.port}/push/{source}?{query}")[0]


def test_kannel_nack_causes_through_the_receiver(receivers: Exporter) -> None:
    """Kannel gw/dlr.h: type 16 is the SMSC NACK; its `%A` carries the command status. A
    throttled bind was counted `filtered` (the `rejected` default) before."""
    for n, reply in enumerate(
        ("NACK/0x00000058/Throttling error", "NACK/0x0000000b/Invalid Destination Address")
    ):
        assert _push(receivers, "kannel", {"type": "16", "reply": reply, "msg": f"k-{n}"}) == 200
    causes = {
        cause: _metric(receivers, "smswatch_sms_messages_total", gateway="kannel", cause=cause)
        for cause in ("throttled", "invalid_number", "filtered")
    }
    assert causes == {"throttled": 1, "invalid_number": 1, "filtered": 0}


def test_kannel_later_expired_and_unknown_types_read_the_receipt(receivers: Exporter) -> None:
    """Kannel 1.5+/1.6 gw/dlr.h: DLR_EXPIRED = 0x20|DLR_FAIL (34), DLR_UNKNOWN = 0x40|DLR_FAIL
    (66): the not-delivered bit, with the receipt's stat and err in `%A`."""
    receipt = "id:1 sub:001 dlvrd:000 done date:2611261210 stat:EXPIRED err:MK:0010"
    assert _push(receivers, "kannel", {"type": "34", "reply": receipt, "msg": "k-e"}) == 200
    assert _push(receivers, "kannel", {"type": "66", "reply": "", "msg": "k-u"}) == 200
    assert (
        _metric(receivers, "smswatch_sms_messages_total", gateway="kannel", status="expired") == 1
    )
    assert (
        _metric(receivers, "smswatch_sms_messages_total", gateway="kannel", status="unknown") == 1
    )


def test_jasmin_with_an_8x8_dialect_keeps_the_esme_causes(receivers: Exporter) -> None:
    """jookies/jasmin receiving-dlr.rst: level 1 carries the submit_sm_resp status. With
    `error_codes: 8x8` an invalid destination was counted under the `filtered` default."""
    assert (
        _push(receivers, "jasmin", {"id": "j-9", "message_status": "ESME_RINVDSTADR", "level": "1"})
        == 200
    )
    assert (
        _push(receivers, "jasmin", {"id": "j-8", "message_status": "ESME_RTHROTTLED", "level": "1"})
        == 200
    )
    assert (
        _metric(receivers, "smswatch_sms_messages_total", gateway="jasmin", cause="invalid_number")
        == 1
    )
    # The throttled one will be retried by Jasmin: it is pending, not a final failure.
    assert _metric(receivers, "smswatch_sms_messages_total", gateway="jasmin") == 1
    assert _metric(receivers, "smswatch_sms_submitted_total", gateway="jasmin") == 2


def test_an_unknown_code_is_news_logged_once_and_listed_on_the_landing_page(
    receivers: Exporter, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 12: a code no table knows is counted `unlisted`, logged once per (code, source)
    without the phone, and listed with its count on the landing page."""
    receipt = "id:9 sub:001 dlvrd:000 done date:2611261210 stat:UNDELIV err:ZZ:9999"
    with caplog.at_level("WARNING", logger="exporter.poller"):
        for n in range(3):
            params = {"type": "2", "reply": receipt, "msg": f"u-{n}", "to": "13812345678"}
            assert _push(receivers, "kannel", params) == 200
    news = [r for r in caplog.records if "not in the" in r.getMessage()]
    assert len(news) == 1 and getattr(news[0], "code", "") == "ZZ:9999"
    assert "13812345678" not in caplog.text
    assert (
        _metric(receivers, "smswatch_sms_ambiguous_total", gateway="kannel", code="unlisted") == 3
    )
    status, body = http_get(f"http://127.0.0.1:{receivers.port}/")
    page = body.decode() if isinstance(body, bytes) else str(body)
    assert status == 200
    assert "<td>kannel</td><td>ZZ:9999</td><td>3</td>" in page

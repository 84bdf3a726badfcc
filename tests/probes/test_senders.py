"""Each send API's outbound request, as the provider documents it (sources in
exporter/probes/senders.py), checked on the wire with `responses`; and the message id (or the
refusal) read from the provider's answer."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from exporter.probes.senders import Canary, SendRefused, send
from exporter.probes.settings import SendApi
from exporter.sources.aliyun import rpc_signature
from exporter.sources.tencent import tc3_authorization

CANARY = Canary(
    "canary-0123456789abcdef", "+8613800138000", "smswatch canary SWABCDEFGHIJ", "SWABCDEFGHIJ"
)


def api(kind: str, url: str, secret: str = "s3cret-value", **options: str) -> SendApi:
    return SendApi(kind=kind, url=url, secret=secret, options=options)


def query(call: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(call.request.url).query))


def form(call: Any) -> dict[str, str]:
    body = call.request.body
    return dict(parse_qsl(body if isinstance(body, str) else body.decode()))


@responses.activate
def test_kannel_sendsms_carries_our_id_in_the_dlr_url() -> None:
    responses.get(
        "http://kannel:13013/cgi-bin/sendsms", body="0: Accepted for delivery", status=202
    )
    sent = api(
        "kannel",
        "http://kannel:13013/cgi-bin/sendsms",
        username="smswatch",
        dlr_url="http://exp/push/kannel?type=%d&msg={canary_id}&ref={canary_id}",
        **{"from": "95588"},
    )
    assert send(sent, CANARY) == CANARY.canary_id
    q = query(responses.calls[0])
    assert q == {
        "username": "smswatch",
        "password": "s3cret-value",
        "to": CANARY.to,
        "text": CANARY.text,
        "dlr-mask": "31",
        "dlr-url": f"http://exp/push/kannel?type=%d&msg={CANARY.canary_id}&ref={CANARY.canary_id}",
        "from": "95588",
    }


@responses.activate
def test_kannel_refusal_is_a_send_failure() -> None:
    responses.get(
        "http://kannel/cgi-bin/sendsms", body="Authorization failed for sendsms", status=403
    )
    with pytest.raises(SendRefused, match="kannel answered 403"):
        send(api("kannel", "http://kannel/cgi-bin/sendsms", username="u", dlr_url="x"), CANARY)


@responses.activate
def test_jasmin_send_returns_jasmins_message_id() -> None:
    responses.get("http://jasmin:1401/send", body='Success "07033084-5cfd-4812-90a4-e4d24ffb6e3d"')
    sent = api(
        "jasmin",
        "http://jasmin:1401/send",
        username="bank",
        dlr_url="http://exp/push/jasmin?ref={canary_id}",
    )
    assert send(sent, CANARY) == "07033084-5cfd-4812-90a4-e4d24ffb6e3d"
    q = query(responses.calls[0])
    assert q["content"] == CANARY.text and q["to"] == CANARY.to and q["password"] == "s3cret-value"
    assert (q["dlr"], q["dlr-level"], q["dlr-method"]) == ("yes", "3", "GET")
    assert q["dlr-url"] == f"http://exp/push/jasmin?ref={CANARY.canary_id}"


@responses.activate
def test_jasmin_error_is_a_send_failure() -> None:
    responses.get("http://jasmin:1401/send", body='Error "No route found"', status=412)
    with pytest.raises(SendRefused, match="412"):
        send(api("jasmin", "http://jasmin:1401/send", username="u", dlr_url="x"), CANARY)


@responses.activate
def test_twilio_messages_create() -> None:
    sid = "AC0123456789abcdef0123456789abcdef"
    responses.post(
        f"https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json",
        json={"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"},
        status=201,
    )
    sent = api(
        "twilio",
        "https://api.twilio.com",
        account_sid=sid,
        messaging_service_sid="MG0123",
        status_callback="https://exp/push/twilio?ref={canary_id}",
    )
    assert send(sent, CANARY) == "SM0123456789abcdef0123456789abcdef"
    call = responses.calls[0]
    assert form(call) == {
        "To": CANARY.to,
        "Body": CANARY.text,
        "MessagingServiceSid": "MG0123",
        "StatusCallback": f"https://exp/push/twilio?ref={CANARY.canary_id}",
    }
    assert call.request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_twilio_error_is_a_send_failure() -> None:
    responses.post(
        "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
        json={"code": 21211, "message": "Invalid 'To' Phone Number"},
        status=400,
    )
    with pytest.raises(SendRefused, match="HTTP 400"):
        send(
            api("twilio", "https://api.twilio.com", account_sid="AC1", **{"from": "+1555"}), CANARY
        )


@responses.activate
def test_aliyun_sendsms_is_signed_and_carries_the_nonce_and_out_id() -> None:
    responses.get(
        "https://dysmsapi.aliyuncs.com/",
        json={"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "r"},
    )
    sent = api(
        "aliyun",
        "https://dysmsapi.aliyuncs.com",
        access_key_id="LTAI5tExample",
        sign_name="某银行",
        template_code="SMS_1234",
        template_param="code",
    )
    assert send(sent, CANARY) == "900619746936498440^0"
    q = query(responses.calls[0])
    assert q["Action"] == "SendSms" and q["Version"] == "2017-05-25"
    assert (q["PhoneNumbers"], q["SignName"], q["TemplateCode"]) == (
        CANARY.to,
        "某银行",
        "SMS_1234",
    )
    assert json.loads(q["TemplateParam"]) == {"code": CANARY.nonce}
    assert q["OutId"] == CANARY.canary_id
    signature = q.pop("Signature")
    assert signature == rpc_signature("GET", q, "s3cret-value")


@responses.activate
def test_aliyun_refusal_code() -> None:
    responses.get("https://dysmsapi.aliyuncs.com/", json={"Code": "isv.AMOUNT_NOT_ENOUGH"})
    sent = api("aliyun", "https://dysmsapi.aliyuncs.com", access_key_id="k", sign_name="s",
               template_code="t", template_param="code")  # fmt: skip
    with pytest.raises(SendRefused, match="AMOUNT_NOT_ENOUGH"):
        send(sent, CANARY)


@responses.activate
def test_tencent_sendsms_is_tc3_signed() -> None:
    responses.post(
        "https://sms.tencentcloudapi.com/",
        json={
            "Response": {
                "SendStatusSet": [
                    {
                        "SerialNo": "5000:1045710669157053657849499619",
                        "Code": "Ok",
                        "Message": "send success",
                    }
                ],
                "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279",
            }
        },
    )
    sent = api(
        "tencent",
        "https://sms.tencentcloudapi.com",
        secret_id="AKIDexample",
        sms_sdk_app_id="1400006666",
        sign_name="某银行",
        template_id="449739",
        region="ap-guangzhou",
    )
    assert send(sent, CANARY) == "5000:1045710669157053657849499619"
    request = responses.calls[0].request
    body = request.body if isinstance(request.body, bytes) else request.body.encode()
    assert json.loads(body) == {
        "PhoneNumberSet": [CANARY.to],
        "SmsSdkAppId": "1400006666",
        "TemplateId": "449739",
        "SignName": "某银行",
        "TemplateParamSet": [CANARY.nonce],
        "SessionContext": CANARY.canary_id,
    }
    headers = request.headers
    assert (headers["X-TC-Action"], headers["X-TC-Version"], headers["X-TC-Region"]) == (
        "SendSms",
        "2021-01-11",
        "ap-guangzhou",
    )
    assert headers["Authorization"] == tc3_authorization(
        "AKIDexample",
        "s3cret-value",
        host="sms.tencentcloudapi.com",
        service="sms",
        payload=body,
        timestamp=int(headers["X-TC-Timestamp"]),
    )


@responses.activate
def test_tencent_refusal_in_the_send_status() -> None:
    responses.post(
        "https://sms.tencentcloudapi.com/",
        json={"Response": {"SendStatusSet": [{"Code": "LimitExceeded.PhoneNumberDailyLimit"}]}},
    )
    sent = api("tencent", "https://sms.tencentcloudapi.com", secret_id="a", sms_sdk_app_id="1",
               sign_name="s", template_id="t", region="ap-guangzhou")  # fmt: skip
    with pytest.raises(SendRefused, match="PhoneNumberDailyLimit"):
        send(sent, CANARY)


@responses.activate
def test_vonage_sms_json() -> None:
    responses.post(
        "https://rest.nexmo.com/sms/json",
        json={
            "message-count": "1",
            "messages": [{"to": "8613800138000", "message-id": "0A0000000123ABCD1", "status": "0"}],
        },
    )
    sent = api("vonage", "https://rest.nexmo.com", api_key="abcd1234", **{"from": "BANK"})
    assert send(sent, CANARY) == "0A0000000123ABCD1"
    assert form(responses.calls[0]) == {
        "api_key": "abcd1234",
        "api_secret": "s3cret-value",
        "from": "BANK",
        "to": "8613800138000",
        "text": CANARY.text,
        "client-ref": CANARY.canary_id,
    }


@responses.activate
def test_vonage_refusal_comes_in_a_200() -> None:
    responses.post(
        "https://rest.nexmo.com/sms/json",
        json={
            "message-count": "1",
            "messages": [{"status": "9", "error-text": "Partner quota exceeded"}],
        },
    )
    with pytest.raises(SendRefused, match="status 9"):
        send(api("vonage", "https://rest.nexmo.com", api_key="k", **{"from": "B"}), CANARY)


@responses.activate
def test_generic_http_post_with_a_template() -> None:
    responses.post("https://sms-gw.bank/sms/v1/send", json={"data": {"id": "gw-42"}})
    sent = SendApi(
        kind="http",
        url="https://sms-gw.bank/sms/v1/send",
        options={
            "method": "POST",
            "content_type": "application/json",
            "body": '{"to": "{to}", "text": "{text}", "ref": "{canary_id}"}',
            "message_id": "data.id",
        },
        headers=(("Authorization", "Bearer tok-secret"),),
    )
    assert send(sent, CANARY) == "gw-42"
    request = responses.calls[0].request
    assert json.loads(request.body) == {
        "to": CANARY.to,
        "text": CANARY.text,
        "ref": CANARY.canary_id,
    }
    assert request.headers["Authorization"] == "Bearer tok-secret"


@responses.activate
def test_unreachable_send_api_is_a_send_failure() -> None:
    with pytest.raises(SendRefused, match="ConnectionError"):
        send(api("vonage", "https://rest.nexmo.com", api_key="k", **{"from": "B"}), CANARY)

"""Canary sends through each gateway's own send API: the request, and the id in the answer.

Each kind has a pure `request` (what goes out) and a pure `answer` (the provider's message id
in what comes back, or `SendRefused`); `send` does the HTTP. The request shapes, with their
sources:

- `kannel`: `GET /cgi-bin/sendsms?username&password&to&text&dlr-mask&dlr-url[&from][&smsc]`,
  answered 202 `0: Accepted for delivery` (kannel-on-this-machine.md, observed with Debian's
  Kannel 1.4.5; tests/test_kannel.py). The `dlr-url` carries our own message id (`msg=`), so the
  id is ours and known before the send.
- `jasmin`: `GET /send?username&password&to&content&dlr=yes&dlr-url&dlr-level=3&dlr-method=GET
  [&from]`, answered 200 `Success "<uuid>"`, errors `Error "..."` with 400/403/412/500
  (jookies/jasmin misc/doc/sources/apis/ja-http/sending-mt.rst). Jasmin's DLR carries that id.
- `twilio`: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form `To, From` (or
  `MessagingServiceSid`), `Body`, `StatusCallback`, basic auth AccountSid:AuthToken; the answer's
  `sid` is the message id (twilio/sample-code api/v2010/message/create-send-sms-callback;
  TwilioDevEd/api-snippets rest/messages/send-sms-callback).
- `aliyun`: RPC `Action=SendSms` (Dysmsapi 2017-05-25) with `PhoneNumbers, SignName,
  TemplateCode, TemplateParam` (JSON), `OutId`, signed as exporter.sources.aliyun signs; answer
  `{"Code": "OK", "BizId": ...}` (dew-serverless/acs-sdk-php data/dysmsapi/2017-05-25/api-docs.php;
  the SmsReport push carries `biz_id` and `out_id`, sms-providers.md §3).
- `tencent`: `POST https://sms.tencentcloudapi.com/`, `X-TC-Action: SendSms`, version
  2021-01-11, body `PhoneNumberSet, SmsSdkAppId, TemplateId, SignName, TemplateParamSet,
  SessionContext` (TencentCloud/tencentcloud-sdk-python tencentcloud/sms/v20210111/models.py
  SendSmsRequest), TC3 signed as exporter.sources.tencent signs; answer
  `Response.SendStatusSet[]{SerialNo, Code "Ok", Message}` (same file, SendStatus).
- `vonage`: `POST https://rest.nexmo.com/sms/json`, form `api_key, api_secret, from, to, text,
  client-ref[, callback]`; answer `{"messages": [{"status": "0", "message-id": ...}]}`, an
  error is a non-zero `status` with `error-text` in a 200 (Vonage/vonage-curl-code-snippets
  sms/send-an-sms.sh; Vonage/vonage-python-sdk sms: `client_ref` sent as `client-ref`).
- `http`: the bank's own API: `body` template POSTed (or PUT/GET) with `headers`; the message
  id is the answer's JSON field `message_id` when set, else our canary id (put `{canary_id}` in
  the body so its reports carry it).

Every kind passes the canary id where the provider echoes it back on reports (Kannel `ref=`,
Alibaba `OutId`, Tencent `SessionContext`, Vonage `client-ref`), so a report is known as a
canary's even when it arrives before the send's answer.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from exporter.probes.settings import SendApi
from exporter.sources.aliyun import signed_params
from exporter.sources.tencent import tc3_authorization

_JASMIN_SUCCESS = re.compile(r'^\s*Success\s+"([^"]+)"')


class SendRefused(Exception):
    """The gateway did not take the canary: `reason` says why (never a number or secret)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Canary:
    """What one canary says and to whom."""

    canary_id: str
    to: str
    text: str
    nonce: str


@dataclass
class Outbound:
    """One HTTP request to a send API."""

    method: str
    url: str
    params: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None


def fill(template: str, canary: Canary, escape_json: bool = False) -> str:
    """A template with `{to}`, `{text}`, `{nonce}`, `{canary_id}` filled in (JSON-escaped in a
    JSON body)."""
    values = {
        "{to}": canary.to,
        "{text}": canary.text,
        "{nonce}": canary.nonce,
        "{canary_id}": canary.canary_id,
    }
    out = template
    for key, value in values.items():
        out = out.replace(key, json.dumps(value)[1:-1] if escape_json else value)
    return out


def request(api: SendApi, canary: Canary, now: float | None = None) -> Outbound:
    """The outbound request of a canary through `api` (pure but for the signing time)."""
    now = time.time() if now is None else now
    opts = api.options
    if api.kind == "kannel":
        params = {
            "username": opts["username"],
            "password": api.secret,
            "to": canary.to,
            "text": canary.text,
            "dlr-mask": "31",
            "dlr-url": fill(opts["dlr_url"], canary),
        }
        params.update({k: opts[k] for k in ("from", "smsc") if opts.get(k)})
        return Outbound("GET", api.url, params=params)
    if api.kind == "jasmin":
        params = {
            "username": opts["username"],
            "password": api.secret,
            "to": canary.to,
            "content": canary.text,
            "dlr": "yes",
            "dlr-url": fill(opts["dlr_url"], canary),
            "dlr-level": "3",
            "dlr-method": "GET",
        }
        if opts.get("from"):
            params["from"] = opts["from"]
        return Outbound("GET", api.url, params=params)
    if api.kind == "twilio":
        sid = opts["account_sid"]
        form = {"To": canary.to, "Body": canary.text}
        if opts.get("messaging_service_sid"):
            form["MessagingServiceSid"] = opts["messaging_service_sid"]
        else:
            form["From"] = opts["from"]
        if opts.get("status_callback"):
            form["StatusCallback"] = fill(opts["status_callback"], canary)
        url = f"{api.url}/2010-04-01/Accounts/{sid}/Messages.json"
        return Outbound("POST", url, data=form, auth=(sid, api.secret))
    if api.kind == "aliyun":
        query = signed_params(
            "SendSms",
            {
                "PhoneNumbers": canary.to,
                "SignName": opts["sign_name"],
                "TemplateCode": opts["template_code"],
                "TemplateParam": json.dumps(
                    {opts["template_param"]: canary.nonce}, separators=(",", ":")
                ),
                "OutId": canary.canary_id,
            },
            opts["access_key_id"],
            api.secret,
            now=now,
            nonce=uuid.uuid4().hex,
        )
        return Outbound("GET", f"{api.url}/", params=query)
    if api.kind == "tencent":
        payload = json.dumps(
            {
                "PhoneNumberSet": [canary.to],
                "SmsSdkAppId": opts["sms_sdk_app_id"],
                "TemplateId": opts["template_id"],
                "SignName": opts["sign_name"],
                "TemplateParamSet": [canary.nonce],
                "SessionContext": canary.canary_id,
            },
            separators=(",", ":"),
        ).encode()
        host = urlsplit(api.url).netloc
        stamp = int(now)
        headers = {
            "Authorization": tc3_authorization(
                opts["secret_id"],
                api.secret,
                host=host,
                service="sms",
                payload=payload,
                timestamp=stamp,
            ),
            "Content-Type": "application/json",
            "Host": host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": "2021-01-11",
            "X-TC-Timestamp": str(stamp),
            "X-TC-Region": opts["region"],
        }
        return Outbound("POST", f"{api.url}/", body=payload, headers=headers)
    if api.kind == "vonage":
        form = {
            "api_key": opts["api_key"],
            "api_secret": api.secret,
            "from": opts["from"],
            "to": canary.to.lstrip("+"),
            "text": canary.text,
            "client-ref": canary.canary_id,
        }
        if opts.get("callback"):
            form["callback"] = fill(opts["callback"], canary)
        return Outbound("POST", f"{api.url}/sms/json", data=form)
    # http: the bank's own send API
    is_json = "json" in opts["content_type"]
    body = fill(opts["body"], canary, escape_json=is_json).encode()
    headers = {"Content-Type": opts["content_type"]}
    headers.update({name: fill(value, canary) for name, value in api.headers})
    return Outbound(opts["method"], fill(api.url, canary), body=body, headers=headers)


def answer(api: SendApi, canary: Canary, status: int, body: bytes) -> str:
    """The provider's message id in a send's answer; `SendRefused` when it refused."""
    text = body.decode("utf-8", "replace")
    if api.kind == "kannel":
        if status not in (200, 202) or not text.lstrip().startswith("0:"):
            raise SendRefused(f"kannel answered {status}: {text.strip()[:80]}")
        return canary.canary_id
    if api.kind == "jasmin":
        match = _JASMIN_SUCCESS.match(text)
        if status != 200 or not match:
            raise SendRefused(f"jasmin answered {status}: {text.strip()[:80]}")
        return match.group(1)
    if status >= 400 and api.kind != "vonage":
        raise SendRefused(f"{api.kind} answered HTTP {status}: {_error_text(text)}")
    document = _json(text, api.kind)
    if api.kind == "twilio":
        return _field(document, "sid", api.kind)
    if api.kind == "aliyun":
        if document.get("Code") != "OK":
            raise SendRefused(f"aliyun refused: {document.get('Code')}")
        return _field(document, "BizId", api.kind)
    if api.kind == "tencent":
        response = document.get("Response") or {}
        if "Error" in response:
            raise SendRefused(f"tencent refused: {(response['Error'] or {}).get('Code')}")
        statuses = response.get("SendStatusSet") or [{}]
        if statuses[0].get("Code") != "Ok":
            raise SendRefused(f"tencent refused: {statuses[0].get('Code')}")
        return _field(statuses[0], "SerialNo", api.kind)
    if api.kind == "vonage":
        messages = document.get("messages") or [{}]
        if str(messages[0].get("status")) != "0":
            raise SendRefused(
                f"vonage refused: status {messages[0].get('status')} "
                f"{messages[0].get('error-text', '')}".strip()
            )
        return _field(messages[0], "message-id", api.kind)
    path = api.options.get("message_id", "")
    if not path:
        return canary.canary_id
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, str | int) or value == "":
        raise SendRefused(f"http answer has no {path}")
    return str(value)


def send(api: SendApi, canary: Canary, session: requests.Session | None = None) -> str:
    """Send one canary; its provider message id, or `SendRefused` (connection errors too)."""
    out = request(api, canary)
    http = session or requests.Session()
    try:
        reply = http.request(
            out.method,
            out.url,
            params=out.params or None,
            data=out.data if out.data is not None else out.body,
            headers=out.headers or None,
            auth=out.auth,
            timeout=api.timeout_s,
            allow_redirects=False,
        )
    except requests.Timeout as exc:
        raise SendRefused(f"{api.kind} send timed out") from exc
    except requests.RequestException as exc:
        raise SendRefused(f"{api.kind} send failed: {type(exc).__name__}") from exc
    finally:
        if session is None:
            http.close()
    return answer(api, canary, reply.status_code, reply.content)


def _json(text: str, kind: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise SendRefused(f"{kind} answer is not JSON") from exc
    if not isinstance(document, dict):
        raise SendRefused(f"{kind} answer is not a JSON object")
    return document


def _field(document: dict[str, Any], name: str, kind: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise SendRefused(f"{kind} answer has no {name}")
    return value


def _error_text(text: str) -> str:
    try:
        document = json.loads(text)
    except ValueError:
        return text.strip()[:80]
    if isinstance(document, dict):
        return str(document.get("message") or document.get("code") or "")[:80]
    return ""

"""Tencent Cloud SMS (API 3.0, 2021-01-11): PullSmsSendStatus and the status callback
(reference sms-providers.md §4).

Facts used: `POST https://sms.tencentcloudapi.com/` with `X-TC-Action: PullSmsSendStatus` and
body `{"SmsSdkAppId", "Limit"}`, `Limit` ≤ 100, 100 req/s [V]; answer
`Response.PullSmsSendStatusSet[]{UserReceiveTime (unix s), PhoneNumber, SerialNo, ReportStatus
SUCCESS|FAIL, Description, SessionContext}` [V]; no submit time [V]; receipt codes [V]; callback
fields `user_receive_time, nationcode, mobile, report_status, errmsg, description, sid` [V].
TC3-HMAC-SHA256 signing is [R] in the reference; this module's signer reproduces the
signature of Tencent's own Python SDK (tencentcloud-sdk-python-common) for a known key and time
(tests/test_provider_pull.py) — confirmed [V]. The pull is a consuming queue [V]
tencentcloud-sdk-python tencentcloud/sms/v20210111/sms_client.py, PullSmsSendStatus docstring:
"接口拉取的状态数据为队列模式，同一号码一次下发的状态数据仅能拉取一次" (queue mode: a status can be
pulled once). Should a report come back twice all the same, that contradicts it: smswatch logs
it (once per poll, with the count) and the pipeline counts the repeat as
`smswatch_records_total{result="duplicate"}`; nothing is counted twice. Still unconfirmed [R]:
the callback's time format and its expected answer `{"result":0,"errmsg":"OK"}`.

A consuming read loses what it pulled unless it is kept before anything else happens: each
answer becomes one page, and the poller commits it to the store before this generator makes
the next request. A request that timed out is not retried blindly (it may have consumed
reports); it fails the poll and is counted as `timeout`.

There is no submit time: a report's message is joined by `SerialNo` (the message id SendSms
returned) and to its receipt by `SessionContext` (the bank passes its transaction reference
there). Its events have `submit_known=False`: no delivery latency is measured from them. And a
message is only told of once its outcome is: the queue is complete up to its clock −
`report_lag` − `give_up_after` (a receipt is declared missing only when its SMS could no longer
be reported), and a message that never gets a report is never seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from exporter.classify import tencent_status
from exporter.config import SourceConfig
from exporter.privacy import mask_phone
from exporter.records import Page, SmsEvent
from exporter.sources.client import BadPayload, SourceClient
from exporter.sources.payloads import json_reports, read_each
from exporter.sources.pulling import (
    BEIJING,
    NO_WATERMARK,
    PullContext,
    UpstreamClock,
    local_time_ms,
)

log = logging.getLogger(__name__)

#: How many recent reports the puller remembers to notice one returned twice.
REMEMBERED = 100_000

SERVICE = "sms"
VERSION = "2021-01-11"
ACTION = "PullSmsSendStatus"
CONTENT_TYPE = "application/json"


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    *,
    host: str,
    service: str,
    payload: bytes,
    timestamp: int,
) -> str:
    """The `Authorization` header of a TC3-HMAC-SHA256 signed POST (JSON body)."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_headers = f"content-type:{CONTENT_TYPE}\nhost:{host}\n"
    signed_headers = "content-type;host"  # what Tencent's own SDK signs
    canonical_request = "\n".join(
        (
            "POST",
            "/",
            "",
            canonical_headers,
            signed_headers,
            hashlib.sha256(payload).hexdigest(),
        )
    )
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(
        (
            "TC3-HMAC-SHA256",
            str(timestamp),
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        )
    )

    def _hmac(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    secret_date = _hmac(f"TC3{secret_key}".encode(), date)
    secret_service = _hmac(secret_date, service)
    secret_signing = _hmac(secret_service, "tc3_request")
    signature = hmac.new(secret_signing, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )


def api_host(base_url: str) -> str:
    """The host (and port) of a base URL: what the signature's `host` header names."""
    return base_url.split("://", 1)[-1].split("/", 1)[0]


def tc3_headers(source: SourceConfig, action: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers of one signed SMS API 3.0 call of `action` (JSON body) to the source's
    host, with its SecretId/SecretKey and `region` option."""
    auth = source.auth
    return {
        "Content-Type": CONTENT_TYPE,
        "X-TC-Action": action,
        "X-TC-Version": VERSION,
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Region": str(source.options["region"]),
        "Authorization": tc3_authorization(
            auth.username,
            auth.secret,
            host=api_host(source.base_url),
            service=SERVICE,
            payload=body,
            timestamp=timestamp,
        ),
    }


class ApiError(BadPayload):
    """`Response.Error` in an HTTP 200 answer."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"Tencent Cloud error {code}: {message}")

    @property
    def kind(self) -> str:
        """The `error` label value for it."""
        if self.code.startswith("RequestLimitExceeded") or "LimitExceeded" in self.code:
            return "throttled"
        if self.code.startswith(("InternalError", "ResourceUnavailable")):
            return "http_5xx"
        return "http_4xx"


def parse_pull(payload: Any) -> tuple[list[SmsEvent], int, int]:
    """One PullSmsSendStatus answer → (events, invalid reports, reports in the answer)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("Response"), dict):
        raise BadPayload("no 'Response' object")
    response = payload["Response"]
    error = response.get("Error")
    if isinstance(error, dict):
        raise ApiError(str(error.get("Code", "")), str(error.get("Message", "")))
    reports = response.get("PullSmsSendStatusSet")
    if not isinstance(reports, list):
        raise BadPayload("no 'PullSmsSendStatusSet' list")
    events, invalid = read_each(reports, _pulled_event)
    return events, invalid, len(reports)


def _pulled_event(report: dict[str, Any]) -> SmsEvent:
    """One PullSmsSendStatusSet report → its event (ValueError when malformed)."""
    serial = report.get("SerialNo")
    status = tencent_status(
        str(report.get("ReportStatus") or ""), str(report.get("Description") or "")
    )
    received = report.get("UserReceiveTime")
    if not isinstance(serial, str) or not serial or status is None:
        raise ValueError("no SerialNo or unknown ReportStatus")
    if isinstance(received, bool) or not isinstance(received, int | float):
        raise ValueError("UserReceiveTime is not a number")
    at = int(received) * 1000
    return SmsEvent(
        message_id=serial,
        txn_ref=str(report.get("SessionContext") or ""),
        phone=mask_phone(str(report.get("SubscriberNumber") or report.get("PhoneNumber") or "")),
        carrier="unknown",
        area="unknown",
        status=status,
        error_code=str(report.get("Description") or ""),
        submitted_ms=at,
        status_ms=at,
        submit_known=False,
    )


class TencentPuller:
    """Drains the PullSmsSendStatus queue, one committed page per answer."""

    def __init__(self, source: SourceConfig, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.clock = UpstreamClock(clock)
        self.lag_ms: int = source.options["report_lag"]
        self.pulled: OrderedDict[tuple[str, str], None] = OrderedDict()  # recent reports

    def repeated(self, events: list[SmsEvent]) -> int:
        """How many of these reports this process pulled before (a consuming queue returns a
        report once); remembers the last `REMEMBERED` reports."""
        count = 0
        for event in events:
            key = (event.message_id, event.status)
            if key in self.pulled:
                count += 1
            self.pulled[key] = None
            self.pulled.move_to_end(key)
        while len(self.pulled) > REMEMBERED:
            self.pulled.popitem(last=False)
        return count

    def _sign(
        self, method: str, params: dict[str, str | int], body: bytes
    ) -> tuple[dict[str, str | int], dict[str, str]]:
        return params, tc3_headers(self.source, ACTION, body, int(self.clock.local()))

    def pages(
        self, client: SourceClient, ctx: PullContext, deadline: float
    ) -> Iterator[Page[SmsEvent]]:
        body = json.dumps(
            {"SmsSdkAppId": self.source.options["sms_sdk_app_id"], "Limit": self.source.page_size},
            separators=(",", ":"),
        ).encode()
        for _ in range(self.source.max_pages):
            reply = client.request(
                "POST",
                self.source.path,
                {},
                deadline,
                body=body,
                sign=self._sign,
                retry_timeouts=False,
            )
            now = self.clock.observe(reply.date_ms)
            try:
                events, invalid, count = parse_pull(reply.payload)
            except ApiError as exc:
                raise client.fail(exc.kind, str(exc)) from exc
            except BadPayload as exc:
                # Whatever that answer held is gone from the queue: say so, loudly.
                raise client.fail("bad_payload", f"consumed answer unreadable: {exc}") from exc
            repeats = self.repeated(events)
            if repeats:
                log.warning(
                    "PullSmsSendStatus returned reports it had returned before: it may not be a "
                    "consuming queue (counted as duplicates)",
                    extra={"source": self.source.name, "repeated": repeats},
                )
            drained = count < self.source.page_size
            # Outcomes only: a message submitted within give_up_after may still be untold.
            complete = now - self.lag_ms - ctx.give_up_after_ms
            yield Page(events, invalid, "", not drained, complete if drained else NO_WATERMARK)
            if drained:
                return


# --------------------------------------------------------------------------- callback push

#: The answer the callback expects [R].
CALLBACK_ACK = json.dumps({"result": 0, "errmsg": "OK"}).encode()


def parse_callback(body: bytes) -> tuple[list[SmsEvent], int]:
    """A status callback body (a JSON array of reports, or one report) → (events, invalid).

    `user_receive_time` is taken as Beijing `yyyy-MM-dd HH:mm:ss` [R], or Unix seconds.
    The callback has no session context [V field list]; a `session_context`/`ext` field is
    read when present.
    """
    return read_each(json_reports(body, "callback body"), _callback_event)


def _callback_event(report: dict[str, Any]) -> SmsEvent:
    """One callback report → its event (ValueError when malformed)."""
    sid = report.get("sid")
    status = tencent_status(str(report.get("report_status") or ""), str(report.get("errmsg") or ""))
    if not isinstance(sid, str) or not sid or status is None:
        raise ValueError("no sid or unknown report_status")
    received = report.get("user_receive_time")
    if isinstance(received, int) and not isinstance(received, bool):
        at = received * 1000
    else:
        at = local_time_ms(received, BEIJING)
    return SmsEvent(
        message_id=sid,
        txn_ref=str(report.get("session_context") or report.get("ext") or ""),
        phone=mask_phone(str(report.get("mobile") or "")),
        carrier="unknown",
        area="unknown",
        status=status,
        error_code=str(report.get("errmsg") or ""),
        submitted_ms=at,
        status_ms=at,
        submit_known=False,
    )

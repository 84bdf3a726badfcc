"""Alibaba Cloud SMS (Dysmsapi 2017-05-25): QuerySendDetails pull and the SmsReport push
(reference sms-providers.md §3).

Facts used:
- [V] `QuerySendDetails` takes one `PhoneNumber`, `SendDate` (yyyyMMdd, last 30 days),
  `PageSize` 1–50 and `CurrentPage`; QPS 5000/s per user (help.aliyun.com 419277);
- [V] the answer has `Code` ("OK"), `TotalCount` and `SmsSendDetailDTOs.SmsSendDetailDTO[]
  {PhoneNum, SendStatus, ErrCode, SendDate, ReceiveDate, OutId}`; `SendStatus` 1 awaiting
  receipt, 2 failed, 3 delivered (developer.aliyun.com/ask/217920; alibabacloud-java-sdk#42);
- [V] dates `yyyy-MM-dd HH:mm:ss`, Beijing time (same sources) — still an option,
  `time_zone` (default +08:00), since no official page states the zone of the SmsReport
  times: a report timed after it reached smswatch is logged (`warn_if_ahead`);
- [V] the SmsReport push: a JSON array of `phone_number, send_time, report_time, success,
  err_code, err_msg, biz_id, out_id`, answered with `{"code":0}`, retried after 1, 5 and 10
  minutes (help.aliyun.com 101867, 101641);
- [V] the RPC signature (HMAC-SHA1, SignatureVersion 1.0): this module's signer reproduces the
  signature of Alibaba's own Python SDK (aliyun-python-sdk-core) for a known key, time and
  nonce (tests/test_provider_pull.py);
- [V] API and receipt codes: exporter.classify.ALIYUN, with their sources
  (alibabacloud.com/help/en/sms/developer-reference/error-codes); the receipt code table is a
  public mirror of Alibaba's [R official].

Because QuerySendDetails answers for one number at a time, a pull source reads a configured
list of numbers (canary handsets, escalations); the bank's bulk traffic is read from the
SmsReport push. The detail rows carry no BizId, so a pulled message's id is a keyed hash of
its number, send time and OutId: a canary source should have its own gateway label.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from exporter.classify import ALIYUN_SEND_STATUS
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

API_VERSION = "2017-05-25"

log = logging.getLogger(__name__)


def percent_encode(text: str) -> str:
    """RFC 3986 encoding as the RPC signature wants it (`~` kept, space as %20)."""
    return quote(text, safe="-_.~")


def rpc_signature(method: str, params: dict[str, str], secret: str) -> str:
    """Signature of an Alibaba Cloud RPC request (HMAC-SHA1 over the canonical query)."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
    )
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_params(
    action: str,
    params: dict[str, str],
    access_key_id: str,
    secret: str,
    *,
    now: float,
    nonce: str,
    method: str = "GET",
    version: str = API_VERSION,
) -> dict[str, str]:
    """The full query of a signed RPC request (common parameters + `Signature`); `version`
    is the API's (Dysmsapi's by default)."""
    query = {
        "Action": action,
        "Version": version,
        "Format": "JSON",
        "AccessKeyId": access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce,
        "Timestamp": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **params,
    }
    query["Signature"] = rpc_signature(method, query, secret)
    return query


def message_key(secret: str, phone: str, send_date: str, out_id: str) -> str:
    """A stable message id for a detail row (no BizId in it), keyed so a number never shows."""
    mac = hmac.new(secret.encode(), f"{phone}|{send_date}|{out_id}".encode(), hashlib.sha256)
    return "ali-" + mac.hexdigest()[:24]


def zone_of(offset_minutes: int | None) -> timezone:
    """The zone of the `time_zone` option (Beijing when it is not set)."""
    return BEIJING if offset_minutes is None else timezone(timedelta(minutes=offset_minutes))


def parse_details(
    payload: Any, secret: str, zone: timezone = BEIJING
) -> tuple[list[SmsEvent], int, int]:
    """A QuerySendDetails answer → (events, invalid rows, TotalCount)."""
    if not isinstance(payload, dict):
        raise BadPayload("not a JSON object")
    code = payload.get("Code")
    if code != "OK":
        raise ApiError(str(code), str(payload.get("Message", "")))
    dtos = payload.get("SmsSendDetailDTOs", {})
    rows = dtos.get("SmsSendDetailDTO") if isinstance(dtos, dict) else None
    if not isinstance(rows, list):
        raise BadPayload("no SmsSendDetailDTOs.SmsSendDetailDTO list")
    total = payload.get("TotalCount", len(rows))
    events, invalid = read_each(rows, lambda row: _detail_event(row, secret, zone))
    return events, invalid, int(total) if isinstance(total, int | str) else len(rows)


def _detail_event(row: dict[str, Any], secret: str, zone: timezone) -> SmsEvent:
    """One SmsSendDetailDTO row → its event (ValueError when malformed)."""
    status = ALIYUN_SEND_STATUS.get(int(row.get("SendStatus", 0)))
    if status is None:
        raise ValueError("unknown SendStatus")
    submitted = local_time_ms(row.get("SendDate"), zone)
    received = row.get("ReceiveDate")
    done = local_time_ms(received, zone) if received else submitted
    phone = str(row.get("PhoneNum") or "")
    out_id = str(row.get("OutId") or "")
    code = str(row.get("ErrCode") or "")
    return SmsEvent(
        message_id=message_key(secret, phone, str(row.get("SendDate")), out_id),
        txn_ref=out_id,
        phone=mask_phone(phone),
        carrier="unknown",
        area="unknown",
        status=status,
        error_code="" if code == "DELIVERED" else code,
        submitted_ms=submitted,
        status_ms=max(submitted, done),
    )


class ApiError(BadPayload):
    """An answer with `Code` other than OK."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"Alibaba Cloud error {code}: {message}")

    @property
    def kind(self) -> str:
        """The `error` label value for it."""
        if "LIMIT" in self.code.upper() or self.code.startswith("Throttling"):
            return "throttled"
        if self.code.startswith("isp."):
            return "http_5xx"
        return "http_4xx"


class AliyunPuller:
    """QuerySendDetails for each configured number and each of the last `send_date_days`."""

    def __init__(self, source: SourceConfig, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.numbers: tuple[str, ...] = tuple(source.options["phone_numbers"])
        self.days: int = source.options["send_date_days"]
        self.clock = UpstreamClock(clock)
        self.lag_ms = 60_000
        self.zone = zone_of(source.options["time_zone"])

    def _sign(self, method: str, params: dict[str, str | int], body: bytes) -> Any:
        auth = self.source.auth
        query = signed_params(
            "QuerySendDetails",
            {k: str(v) for k, v in params.items()},
            auth.username,
            auth.secret,
            now=self.clock.local(),
            nonce=str(uuid.uuid4()),
            method=method,
        )
        return query, {}

    def send_dates(self, now_ms: int) -> list[str]:
        """The `SendDate`s (yyyyMMdd in the account's zone) to read at `now_ms`, oldest first."""
        return [
            datetime.fromtimestamp(now_ms / 1000 - day * 86_400, self.zone).strftime("%Y%m%d")
            for day in range(self.days - 1, -1, -1)
        ]

    def pages(
        self, client: SourceClient, ctx: PullContext, deadline: float
    ) -> Iterator[Page[SmsEvent]]:
        guessed = not self.clock.answered
        started = self.clock.now_ms()
        dates = self.send_dates(started)
        jobs = [(number, date) for number in self.numbers for date in dates]
        for index, (number, date) in enumerate(jobs):
            page_no = 1
            seen = 0
            while True:
                params: dict[str, str | int] = {
                    "PhoneNumber": number,
                    "SendDate": date,
                    "PageSize": self.source.page_size,
                    "CurrentPage": page_no,
                }
                reply = client.request("GET", self.source.path, params, deadline, sign=self._sign)
                now = self.clock.observe(reply.date_ms)
                if index == 0 and page_no == 1:
                    started = now
                    if guessed and self.send_dates(now) != dates:
                        # The days were planned on our clock, a day or more off Alibaba's,
                        # whose now the watermark is taken from: a day it claims would go
                        # unread. Plan them again on its clock (this answer is dropped).
                        yield from self.pages(client, ctx, deadline)
                        return
                try:
                    events, invalid, total = parse_details(
                        reply.payload, self.source.auth.secret, self.zone
                    )
                except ApiError as exc:
                    raise client.fail(exc.kind, str(exc)) from exc
                seen += len(events) + invalid
                last_page = seen >= total or not (events or invalid)
                last = last_page and index == len(jobs) - 1
                watermark = started - self.lag_ms if last else NO_WATERMARK
                yield Page(events, invalid, "", not last, watermark)
                if last_page:
                    break
                page_no += 1


# --------------------------------------------------------------------------- SmsReport push

#: The acknowledgement SmsReport expects [V] help.aliyun.com 101867.
REPORT_ACK = json.dumps({"code": 0, "msg": "OK"}).encode()


def parse_sms_report(
    body: bytes, zone: timezone = BEIJING, received_ms: int | None = None
) -> tuple[list[SmsEvent], int]:
    """An SmsReport push body (JSON array) → (events, invalid reports).

    `send_time` (to the carrier) and `report_time` (receipt received) are in `zone` (Beijing
    by default, the `time_zone` option); with seconds, so latency uses them as they are. A
    report timed later than when it reached smswatch (by more than `ZONE_SLACK_MS`) says the
    zone is wrong: it is logged, once.
    """
    events, invalid = read_each(
        json_reports(body, "SmsReport body"), lambda report: _report_event(report, zone)
    )
    if received_ms is not None:
        warn_if_ahead(events, received_ms)
    return events, invalid


#: How far a report may be timed after smswatch received it before its zone is doubted.
ZONE_SLACK_MS = 600_000
_zone_warned: set[str] = set()


def warn_if_ahead(events: list[SmsEvent], received_ms: int) -> None:
    """Log once when reports are timed after they were received: the `time_zone` is wrong."""
    ahead = max((e.status_ms - received_ms for e in events), default=0)
    if ahead > ZONE_SLACK_MS and "ahead" not in _zone_warned:
        _zone_warned.add("ahead")
        log.warning(
            "Alibaba report times are ahead of the time they were received: check time_zone",
            extra={"ahead_s": ahead // 1000},
        )


def _report_event(report: dict[str, Any], zone: timezone) -> SmsEvent:
    """One SmsReport → its event (ValueError when malformed)."""
    biz_id = report.get("biz_id")
    if not isinstance(biz_id, str) or not biz_id:
        raise ValueError("no biz_id")
    success = report.get("success")
    if isinstance(success, str):
        success = success.lower() == "true"
    if not isinstance(success, bool):
        raise ValueError("success is not a boolean")
    sent = local_time_ms(report.get("send_time"), zone)
    done = local_time_ms(report.get("report_time"), zone)
    code = str(report.get("err_code") or "")
    return SmsEvent(
        message_id=biz_id,
        txn_ref=str(report.get("out_id") or ""),
        phone=mask_phone(str(report.get("phone_number") or "")),
        carrier="unknown",
        area="unknown",
        status="delivered" if success else "undelivered",
        error_code="" if code == "DELIVERED" else code,
        submitted_ms=sent,
        status_ms=max(sent, done),
    )

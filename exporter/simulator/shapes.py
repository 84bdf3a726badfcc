"""Provider-shaped views of the simulated gateway (`--sms-api`): the same traffic, served the way
each provider's API serves it.

The simulator generates one thing: SMPP-style status events (`codes.py`). A shape re-tells each
message in its provider's words, from its own table (cause → provider status and code, below),
never from the exporter's classifier: the two tables are independent accounts of the same
reference (shared sms-providers.md §1, §2, §10). Where a provider's vocabulary is coarser than
SMPP's (Twilio has no `expired`), the truth's
`status` and `cause` labels are what that provider can tell (`project`); the traffic, the
counts and the receipts' timing are the same as in the generic shape.

Both shapes list every message with its status *as of now*: a message's first final status
sticks (later repeats and contradicting reports are not shown: a record has one status).
Dates have whole seconds, as the providers' do. Every answer's `Date` header is the simulated
now it was computed at, so a consumer can tell up to when the list is complete.

- `twilio`: `GET /2010-04-01/Accounts/{AccountSid}/Messages.json?PageSize=N[&PageToken=PA<n>]`,
  newest first; RFC 2822 dates; the RRN in the body (`… RRN <ref>`); `next_page_uri` carries a
  `PageToken` (the position after the last message returned, so pages never shift).
- `vonage`: `GET /v2/reports/records?account_id=…&product=SMS&direction=outbound&date_start=…
  &date_end=…[&cursor=<n>]`, records received in `[date_start, date_end)` oldest first, ISO 8601
  dates, the RRN in `client_ref`, `_links.next.href` while more remain.

Two shapes report outcomes only, once per message (its first final status), as those providers
do; a message that never gets a final report is never told of:

- `tencent`: `POST /` with `X-TC-Action: PullSmsSendStatus` and `{"SmsSdkAppId", "Limit"}`
  pops up to `Limit` (≤ 100) reports off a queue: `UserReceiveTime` (Unix s), `SerialNo`
  (the message id), `ReportStatus` SUCCESS|FAIL, `Description` (the carrier's code, or the stat
  when there is none), `SessionContext` (the RRN).
- `aliyun`: SmsReport batches (JSON arrays of `phone_number, send_time, report_time, success,
  err_code, err_msg, biz_id, out_id`, Beijing times) POSTed to `--sms-push-url`, retried until
  the receiver answers `{"code":0}`.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from exporter.simulator.codes import NO_ERROR, cause_of

SHAPES: tuple[str, ...] = ("generic", "twilio", "vonage", "tencent", "aliyun")
#: Shapes whose dates have whole seconds (RFC 2822, ISO seconds, Beijing `HH:mm:ss`); Tencent's
#: receipts carry no submit time at all.
WHOLE_SECOND_SHAPES = frozenset({"twilio", "vonage", "aliyun"})
TWILIO_ACCOUNT = "ACsimulator0000000000000000000000"
VONAGE_ACCOUNT = "abcd1234"
VONAGE_PAGE = 1000


@dataclass(frozen=True)
class Shape:
    """One provider's words: per cause, (status word, code, cause as the provider tells it)."""

    name: str
    failures: dict[str, tuple[str, Any, str]]
    by_stat: dict[str, tuple[str, Any, str]]  # stat-specific overrides (e.g. EXPIRED)
    intermediate: dict[str, str]
    delivered: str
    labels: dict[str, str]  # status word → the `status` label

    def final(self, stat: str, code: str) -> tuple[str, Any, str]:
        """(status word, code, cause told) of a final report."""
        if stat == "DELIVRD":
            return self.delivered, None, "none"
        cause = cause_of(stat, code)
        return self.by_stat.get(f"{stat}/{cause}") or self.failures[cause]

    def project(self, stat: str, code: str) -> tuple[str, str]:
        """The truth's (status, cause) labels of a final report in this shape."""
        word, _, cause = self.final(stat, code)
        return self.labels[word], cause


SHAPE_TABLES: dict[str, Shape] = {
    # Twilio error codes (reference §1, §10).
    "twilio": Shape(
        "twilio",
        failures={
            "gateway": ("failed", 30024, "gateway"),  # sender not provisioned on the carrier
            "invalid_number": ("undelivered", 30005, "invalid_number"),  # unknown handset
            "unreachable": ("undelivered", 30003, "unreachable"),
            "throttled": ("failed", 30022, "throttled"),  # 10DLC rate cap [R]
            "filtered": ("undelivered", 30007, "filtered"),  # carrier filter
            "integration": ("failed", 20003, "integration"),  # authentication failed
            "unknown": ("undelivered", 30008, "unknown"),  # unknown error
        },
        by_stat={},
        intermediate={"SUBMITTED": "queued", "ENROUTE": "sent"},
        delivered="delivered",
        labels={"delivered": "delivered", "undelivered": "undelivered", "failed": "failed"},
    ),
    # Vonage DLR err-codes (reference §2, §10): the whole receipt table.
    "vonage": Shape(
        "vonage",
        failures={
            "gateway": ("failed", "11", "gateway"),  # unroutable
            "invalid_number": ("failed", "3", "invalid_number"),  # absent, permanent
            "unreachable": ("failed", "2", "unreachable"),  # absent, temporary
            "throttled": ("rejected", "16", "throttled"),  # gateway quota exceeded
            "filtered": ("rejected", "6", "filtered"),  # anti-spam
            "integration": ("rejected", "10", "integration"),  # illegal message
            "unknown": ("unknown", "1", "unknown"),
        },
        by_stat={
            "EXPIRED/unreachable": ("expired", "2", "unreachable"),
            "DELETED/unreachable": ("expired", "2", "unreachable"),
        },
        intermediate={"SUBMITTED": "submitted", "ENROUTE": "accepted"},
        delivered="delivered",
        labels={
            "delivered": "delivered",
            "failed": "failed",
            "rejected": "rejected",
            "expired": "expired",
            "unknown": "unknown",
        },
    ),
}


def rfc2822(ms: int) -> str:
    """Unix ms → `Thu, 26 Nov 2026 12:00:00 +0000` (seconds truncated)."""
    return format_datetime(datetime.fromtimestamp(ms // 1000, UTC))


def iso_seconds(ms: int) -> str:
    """Unix ms → `2026-11-26T12:00:00+00:00` (seconds truncated)."""
    return datetime.fromtimestamp(ms // 1000, UTC).isoformat()


@dataclass(slots=True)
class _Message:
    message_id: str
    txn_ref: str
    to: str
    created_ms: int
    status: str
    code: Any
    updated_ms: int
    final: bool = False


class ListView:
    """Every message as a provider's list shows it, kept up to date as events are released."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self._messages: list[_Message] = []
        self._by_id: dict[str, _Message] = {}

    def add(self, at_ms: int, item: bytes) -> None:
        """Take one released generic event into account."""
        event = json.loads(item)
        message = self._by_id.get(event["message_id"])
        stat = event["status"]
        if message is None:
            message = _Message(
                message_id=event["message_id"],
                txn_ref=event["txn_ref"],
                to=event["phone"],
                created_ms=at_ms,
                status=self.shape.intermediate["SUBMITTED"],
                code=None,
                updated_ms=at_ms,
            )
            self._by_id[event["message_id"]] = message
            self._messages.append(message)
        if message.final:
            return  # one status per record: the first final one sticks
        if stat in self.shape.intermediate:
            message.status = self.shape.intermediate[stat]
        else:
            message.status, message.code, _ = self.shape.final(stat, event["error_code"])
            message.final = True
        message.updated_ms = at_ms

    # -- Twilio ---------------------------------------------------------------------------

    def twilio_page(self, page_size: int, token: str | None) -> dict[str, Any]:
        """One page of the Messages list, newest first, after the position in `token`."""
        end = len(self._messages)
        if token:
            if not token.startswith("PA") or not token[2:].isdigit():
                raise ValueError(f"bad PageToken {token!r}")
            end = min(end, int(token[2:]))
        start = max(0, end - page_size)
        base = f"/2010-04-01/Accounts/{TWILIO_ACCOUNT}/Messages.json"
        return {
            "messages": [
                {
                    "sid": "SM" + m.message_id.replace("-", "").rjust(32, "0")[-32:],
                    "account_sid": TWILIO_ACCOUNT,
                    "from": "BANKX",
                    "to": m.to,
                    "body": f"Card transaction alert. RRN {m.txn_ref}",
                    "status": m.status,
                    "error_code": m.code,
                    "direction": "outbound-api",
                    "date_created": rfc2822(m.created_ms),
                    "date_sent": rfc2822(m.created_ms),
                    "date_updated": rfc2822(m.updated_ms),
                }
                for m in self._messages[start:end][::-1]
            ],
            "page_size": page_size,
            "uri": f"{base}?PageSize={page_size}",
            "next_page_uri": f"{base}?PageSize={page_size}&PageToken=PA{start}" if start else None,
        }

    # -- Vonage ---------------------------------------------------------------------------

    def vonage_records(self, start_ms: int, end_ms: int, cursor: int) -> dict[str, Any]:
        """Records received in `[start_ms, end_ms)`, oldest first, from position `cursor`."""
        from bisect import bisect_left

        times = [m.created_ms for m in self._messages]
        low = max(bisect_left(times, start_ms), cursor)
        high = bisect_left(times, end_ms)
        stop = min(high, low + VONAGE_PAGE)
        links: dict[str, Any] = {"self": {"href": "/v2/reports/records"}}
        if stop < high:
            links["next"] = {
                "href": (
                    f"/v2/reports/records?account_id={VONAGE_ACCOUNT}&product=SMS&direction="
                    f"outbound&date_start={iso_seconds(start_ms).replace('+00:00', 'Z')}"
                    f"&date_end={iso_seconds(end_ms).replace('+00:00', 'Z')}&cursor={stop}"
                )
            }
        return {
            "request_status": "SUCCESS",
            "_links": links,
            "records": [
                {
                    "account_id": VONAGE_ACCOUNT,
                    "message_id": m.message_id.replace("-", "").upper().rjust(16, "0"),
                    "client_ref": m.txn_ref,
                    "direction": "outbound",
                    "to": m.to,
                    "date_received": iso_seconds(m.created_ms),
                    "date_finalized": iso_seconds(m.updated_ms) if m.final else None,
                    "status": m.status,
                    "error_code": m.code,
                }
                for m in self._messages[low:stop]
            ],
        }


# --------------------------------------------------------------------------- outcomes only

_TENCENT_REJECTED = frozenset({"REJECTD", "SUBFAIL", "-106"})


def tencent_report(stat: str, code: str) -> tuple[str, str]:
    """(ReportStatus, Description) of a final report: the carrier's code is passed through."""
    if stat == "DELIVRD":
        return "SUCCESS", "DELIVRD"
    return "FAIL", code if code and code != NO_ERROR else stat


def tencent_project(stat: str, code: str) -> tuple[str, str]:
    """The truth's (status, cause) labels as a Tencent report tells them."""
    if stat == "DELIVRD":
        return "delivered", "none"
    _, description = tencent_report(stat, code)
    if description in ("EXPIRED", "DELETED"):
        status = "expired"
    elif description in _TENCENT_REJECTED:
        status = "rejected"
    elif description == "UNKNOWN":
        status = "unknown"
    else:
        status = "undelivered"
    return status, "unknown" if status == "unknown" else cause_of(stat, code)


#: Per cause, the Alibaba receipt ErrCode (reference §3, §10).
ALIYUN_CODES: dict[str, str] = {
    "gateway": "IS_CLOSE",
    "invalid_number": "MOBILE_ACCOUNT_ABNORMAL",
    "unreachable": "MOBILE_NOT_ON_SERVICE",  # the ambiguous one: counted by the exporter
    "throttled": "MOBILE_SEND_LIMIT",
    "filtered": "MOBILE_IN_BLACK",
    "integration": "PARAMS_ILLEGAL",
    "unknown": "SP_UNKNOWN_ERROR",
}


def aliyun_project(stat: str, code: str) -> tuple[str, str]:
    """The truth's (status, cause) labels as an SmsReport tells them (success or not)."""
    if stat == "DELIVRD":
        return "delivered", "none"
    return "undelivered", cause_of(stat, code)


def beijing(ms: int) -> str:
    """Unix ms → `2026-11-26 20:00:00` Beijing time (seconds truncated)."""
    return datetime.fromtimestamp(ms // 1000 + 8 * 3600, UTC).strftime("%Y-%m-%d %H:%M:%S")


class ReportQueue:
    """The first final report of each message, queued in release order (Tencent, Alibaba)."""

    def __init__(self, shape: str) -> None:
        self.shape = shape
        self._submitted: dict[str, int] = {}
        self._done: set[str] = set()
        self._queue: deque[dict[str, Any]] = deque()

    def add(self, at_ms: int, item: bytes) -> None:
        """Take one released generic event into account."""
        event = json.loads(item)
        message_id = event["message_id"]
        self._submitted.setdefault(message_id, at_ms)
        stat = event["status"]
        if stat in ("SUBMITTED", "ENROUTE") or message_id in self._done:
            return
        self._done.add(message_id)
        if self.shape == "tencent":
            status, description = tencent_report(stat, event["error_code"])
            self._queue.append(
                {
                    "UserReceiveTime": at_ms // 1000,
                    "CountryCode": "86",
                    "SubscriberNumber": event["phone"],
                    "PhoneNumber": "+86" + event["phone"],
                    "SerialNo": "5000:" + message_id,
                    "ReportStatus": status,
                    "Description": description,
                    "SessionContext": event["txn_ref"],
                }
            )
        else:
            success = stat == "DELIVRD"
            cause = "none" if success else cause_of(stat, event["error_code"])
            self._queue.append(
                {
                    "phone_number": event["phone"],
                    "send_time": beijing(self._submitted[message_id]),
                    "report_time": beijing(at_ms),
                    "success": success,
                    "err_code": "DELIVERED" if success else ALIYUN_CODES[cause],
                    "err_msg": "",
                    "sms_size": "1",
                    "biz_id": message_id.replace("m-", "") + "^0",
                    "out_id": event["txn_ref"],
                }
            )

    def take(self, limit: int) -> list[dict[str, Any]]:
        """Pop up to `limit` reports (a consuming read)."""
        out: list[dict[str, Any]] = []
        while self._queue and len(out) < limit:
            out.append(self._queue.popleft())
        return out

    def give_back(self, reports: list[dict[str, Any]]) -> None:
        """Put reports whose push failed back at the head, in order."""
        self._queue.extendleft(reversed(reports))

    def __len__(self) -> int:
        return len(self._queue)


PROJECTIONS = {
    "twilio": SHAPE_TABLES["twilio"].project,
    "vonage": SHAPE_TABLES["vonage"].project,
    "tencent": tencent_project,
    "aliyun": aliyun_project,
}

"""Provider-shaped views of the simulated gateway (`--sms-api`): the same traffic, served the way
each provider's API serves it.

The simulator generates one thing: SMPP-style status events (`codes.py`). A shape re-tells each
message in its provider's words, from its own table (cause → provider status and code, below),
never from the exporter's classifier: the two tables are independent accounts of the same
reference (shared sms-providers.md). Where a provider's vocabulary is coarser than SMPP's
(Twilio has no `expired` or `rejected`), the truth's `status` label is what that provider can
say (`status_label`); causes, counts and outcomes are the same as in the generic shape.

Twilio (`twilio`): `GET /2010-04-01/Accounts/{AccountSid}/Messages.json?PageSize=N` lists every
message newest first with its status *as of now*: a message's first final status sticks (later
repeats and contradicting reports are not shown, as a message resource has one status), dates
are RFC 2822 at whole seconds, the transaction reference is in the body (`… RRN <ref>`), and
`next_page_uri` carries a `PageToken` (the position of the last message returned, so pages do
not shift as new messages arrive). Every answer's `Date` header is the simulated now it was
computed at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from exporter.simulator.codes import FINAL_STATUSES, cause_of

SHAPES: tuple[str, ...] = ("generic", "twilio")
TWILIO_ACCOUNT = "ACsimulator0000000000000000000000"

#: Per cause, the Twilio (status, error_code) a failed message shows (reference §1, §10).
TWILIO_FAILURES: dict[str, tuple[str, int]] = {
    "gateway": ("failed", 30001),  # queue overflow
    "invalid_number": ("undelivered", 30005),  # unknown handset
    "unreachable": ("undelivered", 30003),  # unreachable handset
    "throttled": ("failed", 30022),  # 10DLC rate cap [R]
    "filtered": ("undelivered", 30007),  # carrier filter
    "integration": ("failed", 20003),  # authentication failed
    "unknown": ("undelivered", 30008),  # unknown error
}
_TWILIO_INTERMEDIATE = {"SUBMITTED": "queued", "ENROUTE": "sent"}
_TWILIO_LABEL = {"delivered": "delivered", "undelivered": "undelivered", "failed": "failed"}


def status_label(shape: str, stat: str, code: str) -> str:
    """The `status` label a final report gets in a shape (the generic label otherwise)."""
    if shape == "twilio":
        if stat == "DELIVRD":
            return "delivered"
        return _TWILIO_LABEL[TWILIO_FAILURES[cause_of(stat, code)][0]]
    return FINAL_STATUSES[stat]


def rfc2822(ms: int) -> str:
    """Unix ms → `Thu, 26 Nov 2026 12:00:00 +0000` (seconds truncated)."""
    return format_datetime(datetime.fromtimestamp(ms // 1000, UTC))


@dataclass(slots=True)
class _Message:
    sid: str
    to: str
    body: str
    created_ms: int
    status: str
    error_code: int | None
    updated_ms: int
    final: bool = False


class TwilioView:
    """Every message as Twilio's Messages list shows it, kept up to date as events release."""

    def __init__(self) -> None:
        self._messages: list[_Message] = []
        self._by_id: dict[str, _Message] = {}

    def add(self, at_ms: int, item: bytes) -> None:
        """Take one released generic event into account."""
        event = json.loads(item)
        message = self._by_id.get(event["message_id"])
        stat = event["status"]
        if message is None:
            message = _Message(
                sid="SM" + event["message_id"].replace("-", "").rjust(32, "0")[-32:],
                to=event["phone"],
                body=f"Card transaction alert. RRN {event['txn_ref']}",
                created_ms=at_ms,
                status="queued",
                error_code=None,
                updated_ms=at_ms,
            )
            self._by_id[event["message_id"]] = message
            self._messages.append(message)
        if message.final:
            return  # a message resource has one status: its first final one sticks
        if stat in _TWILIO_INTERMEDIATE:
            message.status = _TWILIO_INTERMEDIATE[stat]
        elif stat == "DELIVRD":
            message.status, message.final = "delivered", True
        else:
            message.status, message.error_code = TWILIO_FAILURES[
                cause_of(stat, event["error_code"])
            ]
            message.final = True
        message.updated_ms = at_ms

    def page(self, page_size: int, token: str | None) -> dict[str, Any]:
        """One page of the list, newest first, after the position in `token`."""
        end = len(self._messages)
        if token:
            if not token.startswith("PA") or not token[2:].isdigit():
                raise ValueError(f"bad PageToken {token!r}")
            end = min(end, int(token[2:]))
        start = max(0, end - page_size)
        chosen = self._messages[start:end][::-1]
        base = f"/2010-04-01/Accounts/{TWILIO_ACCOUNT}/Messages.json"
        return {
            "messages": [
                {
                    "sid": m.sid,
                    "account_sid": TWILIO_ACCOUNT,
                    "from": "BANKX",
                    "to": m.to,
                    "body": m.body,
                    "status": m.status,
                    "error_code": m.error_code,
                    "direction": "outbound-api",
                    "date_created": rfc2822(m.created_ms),
                    "date_sent": rfc2822(m.created_ms),
                    "date_updated": rfc2822(m.updated_ms),
                }
                for m in chosen
            ],
            "page_size": page_size,
            "uri": f"{base}?PageSize={page_size}",
            "next_page_uri": f"{base}?PageSize={page_size}&PageToken=PA{start}" if start else None,
        }

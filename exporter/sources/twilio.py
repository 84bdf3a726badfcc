"""Twilio Programmable Messaging: the Messages list (reference sms-providers.md §1).

Facts used, with their provenance: `GET /2010-04-01/Accounts/{AccountSid}/Messages.json` [V];
`PageSize` up to 1000 [V]; follow `next_page_uri` until it is null [V]; fields `sid, to, body,
status, error_code, direction, date_created, date_updated` [V]; dates RFC 2822 GMT [V];
`date_updated` ≈ when the last status (the DLR) arrived [V]; HTTP Basic auth [R]; HTTP 429 on
rate limits [V]. Unconfirmed and relied on: the list is ordered newest first by creation [R] (if
it is not, smswatch reads further than it needs, never less: the stop is only an optimisation).

The list has no "changed since" filter, so each poll re-reads the window of messages that may
still change (created after `watermark − give_up_after`) and hands over only the messages whose
status changed since the last committed read (`Unchanged`); the pipeline's dedup stays the
guard. One event per message: its current status.

Twilio keeps no client reference; the bank's transaction reference is read from the message
body with `txn_ref_pattern` (one capturing group). The body itself is never stored or logged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from exporter.classify import TWILIO_STATUSES
from exporter.config import SourceConfig
from exporter.privacy import mask_phone
from exporter.records import Page, SmsEvent
from exporter.sources.client import BadPayload, SourceClient
from exporter.sources.pulling import (
    PullContext,
    Unchanged,
    UpstreamClock,
    horizon_ms,
    rfc2822_ms,
    sms_key,
)


def parse_messages(payload: Any, txn_ref: re.Pattern[str]) -> tuple[list[SmsEvent], int, int]:
    """One list page → (events, invalid items, oldest date_created in ms or -1).

    Inbound messages are skipped (neither events nor invalid).
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
        raise BadPayload("Twilio page without a 'messages' list")
    events: list[SmsEvent] = []
    invalid = 0
    oldest = -1
    for item in payload["messages"]:
        try:
            if not isinstance(item, dict):
                raise ValueError("not an object")
            created = rfc2822_ms(item.get("date_created"))
            oldest = created if oldest < 0 else min(oldest, created)
            direction = item.get("direction") or "outbound-api"
            if not str(direction).startswith("outbound"):
                continue
            status = TWILIO_STATUSES.get(str(item.get("status") or ""))
            sid = item.get("sid")
            if status is None or not isinstance(sid, str) or not sid:
                raise ValueError("unknown status or no sid")
            updated_text = item.get("date_updated")
            updated = rfc2822_ms(updated_text) if updated_text else created
            body = item.get("body")
            match = txn_ref.search(body) if isinstance(body, str) else None
            code = item.get("error_code")
            events.append(
                SmsEvent(
                    message_id=sid,
                    txn_ref=match.group(1) if match else "",
                    phone=mask_phone(str(item.get("to") or "")),
                    carrier="unknown",
                    area="unknown",
                    status=status,
                    error_code="" if code is None else str(code),
                    submitted_ms=created,
                    status_ms=max(created, updated),
                )
            )
        except (ValueError, TypeError, IndexError):
            invalid += 1
    return events, invalid, oldest


class TwilioPuller:
    """Re-reads the window of messages that may still change, newest first."""

    def __init__(self, source: SourceConfig) -> None:
        self.source = source
        self.pattern = re.compile(source.options["txn_ref_pattern"])
        self.lookback_ms: int = source.options["lookback"]
        self.lag_ms: int = source.options["list_lag"]
        self.clock = UpstreamClock()
        self.unchanged = Unchanged(sms_key)

    def pages(
        self, client: SourceClient, ctx: PullContext, deadline: float
    ) -> Iterator[Page[SmsEvent]]:
        path = self.source.path
        params: dict[str, str | int] = {"PageSize": self.source.page_size}
        started: int | None = None
        for _ in range(self.source.max_pages):
            reply = client.request("GET", path, params, deadline)
            now = self.clock.observe(reply.date_ms)
            if started is None:
                started = now
            horizon = horizon_ms(ctx, started, self.lookback_ms)
            events, invalid, oldest = parse_messages(reply.payload, self.pattern)
            next_uri = reply.payload.get("next_page_uri")
            done = not next_uri or (0 <= oldest < horizon)
            yield from self.unchanged.hand_over(
                events, invalid, last=done, watermark_ms=started - self.lag_ms, horizon=horizon
            )
            if done:
                return
            if not isinstance(next_uri, str):
                raise BadPayload("next_page_uri is not a string")
            path, params = next_uri, {}

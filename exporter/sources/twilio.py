"""Twilio Programmable Messaging: the Messages list (reference sms-providers.md §1).

Facts used, with their provenance:
- [V] `GET /2010-04-01/Accounts/{AccountSid}/Messages.json` (twilio-python
  twilio/rest/api/v2010/account/message/__init__.py, `MessageList` uri);
- [V] `PageSize` up to 1000 (CRAN twilio `tw_get_messages_list`); follow `next_page_uri` until it
  is null (twilio-python twilio/base/page.py `next_page_url`);
- [V] fields `sid, to, from, body, status, error_code, direction, date_created, date_updated,
  date_sent` and RFC 2822 GMT dates (twilio-python MessageInstance, `deserialize.rfc2822_datetime`);
- [V] `date_updated` ≈ when the last status (the DLR) arrived (twilio.com message resource);
- [V] HTTP 429 / 20429 on rate limits (twilio.com/docs/api/errors/20429);
- [V] HTTP Basic auth with AccountSid:AuthToken (twilio-python twilio/base/client_base.py:
  `self.auth = (username, password)`);
- [V] the only list filters are `To`, `From`, `DateSent` (day granularity, `YYYY-MM-DD`) —
  twilio-python `MessageList.stream` docstring: no "changed since", no finer time filter;
- [R] the list comes newest first, in SID order, which is only *close* to creation order (issue
  12): the walk goes on `order_margin` past the horizon and stops only at a page whose newest
  message is older than horizon − margin, so one out-of-order message never stops it early.

The list has no "changed since" filter, so each poll re-reads the window of messages that may
still change (created after `watermark − give_up_after`) and hands over only the messages whose
status changed since the last committed read (`Unchanged`); the pipeline's dedup stays the
guard. One event per message: its current status.

Checkpoints (issue 11 item 8): newest first, nothing of the window is complete before the walk
reaches its horizon, so the watermark can only move then. What is kept instead is the walk's
position: each page commits the `next_page_uri` still to read (with the walk's start time and
horizon) as the source's cursor, and a poll that runs out of deadline stops between pages; the
next poll resumes the same walk instead of starting again from the newest message. A backlog
longer than one deadline is thus read across polls and the watermark moves once it is through
(to the walk's start − `list_lag`); the next walk covers only what arrived meanwhile.

Twilio keeps no client reference; the bank's transaction reference is read from the message
body with `txn_ref_pattern` (one capturing group). The body itself is never stored or logged.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from exporter.classify import TWILIO_STATUSES
from exporter.config import SourceConfig
from exporter.privacy import mask_phone
from exporter.records import Page, SmsEvent
from exporter.sources.client import BadPayload, SourceClient
from exporter.sources.pulling import (
    PollBudget,
    PullContext,
    Unchanged,
    UpstreamClock,
    horizon_ms,
    rfc2822_ms,
    sms_key,
)


def parse_messages(payload: Any, txn_ref: re.Pattern[str]) -> tuple[list[SmsEvent], int, int]:
    """One list page → (events, invalid items, newest date_created in ms or -1).

    Inbound messages are skipped (neither events nor invalid).
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
        raise BadPayload("Twilio page without a 'messages' list")
    events: list[SmsEvent] = []
    invalid = 0
    newest = -1
    for item in payload["messages"]:
        try:
            if not isinstance(item, dict):
                raise ValueError("not an object")
            created = rfc2822_ms(item.get("date_created"))
            newest = max(newest, created)
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
    return events, invalid, newest


#: The cursor of a source with no walk under way (an explicit value: an empty one may be
#: taken as "stay where you are" by the store).
NO_WALK = "{}"


@dataclass(frozen=True)
class Walk:
    """A walk of the list under way: the page to read next, when it started, its horizon."""

    next_uri: str
    started_ms: int
    horizon_ms: int

    def cursor(self) -> str:
        """The walk as the source's cursor text."""
        return json.dumps(
            {"next": self.next_uri, "started": self.started_ms, "horizon": self.horizon_ms}
        )

    @classmethod
    def from_cursor(cls, text: str) -> Walk | None:
        """The walk a cursor holds, or None (no walk, or a cursor of another form)."""
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        uri, started, horizon = data.get("next"), data.get("started"), data.get("horizon")
        if not isinstance(uri, str) or not isinstance(started, int) or not isinstance(horizon, int):
            return None
        return cls(uri, started, horizon)


class TwilioPuller:
    """Walks the list newest first down to the window already decided, resumable across polls."""

    def __init__(
        self,
        source: SourceConfig,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.pattern = re.compile(source.options["txn_ref_pattern"])
        self.lookback_ms: int = source.options["lookback"]
        self.lag_ms: int = source.options["list_lag"]
        self.margin_ms: int = source.options["order_margin"]
        self.clock = UpstreamClock()
        self.monotonic = monotonic
        self.unchanged = Unchanged(sms_key)

    def pages(
        self, client: SourceClient, ctx: PullContext, deadline: float
    ) -> Iterator[Page[SmsEvent]]:
        walk = Walk.from_cursor(ctx.cursor)
        path: str = walk.next_uri if walk else self.source.path
        params: dict[str, str | int] = {} if walk else {"PageSize": self.source.page_size}
        budget = PollBudget(deadline, self.monotonic)
        for index in range(self.source.max_pages):
            if index and not budget.fits():
                return  # the walk's position is committed: the next poll goes on from there
            reply = client.request("GET", path, params, deadline)
            now = self.clock.observe(reply.date_ms)
            if walk is None:
                walk = Walk("", now, horizon_ms(ctx, now, self.lookback_ms))
            events, invalid, newest = parse_messages(reply.payload, self.pattern)
            next_uri = reply.payload.get("next_page_uri")
            if next_uri is not None and not isinstance(next_uri, str):
                raise BadPayload("next_page_uri is not a string")
            # SID order is only close to creation order: stop only once a whole page is older
            # than the horizon by the margin.
            done = not next_uri or (0 <= newest < walk.horizon_ms - self.margin_ms)
            cursor = (
                NO_WALK if done else Walk(str(next_uri), walk.started_ms, walk.horizon_ms).cursor()
            )
            yield from self.unchanged.hand_over(
                events,
                invalid,
                last=done,
                watermark_ms=walk.started_ms - self.lag_ms,
                horizon=walk.horizon_ms,
                cursor=cursor,
            )
            budget.mark()
            if done:
                return
            path, params = str(next_uri), {}

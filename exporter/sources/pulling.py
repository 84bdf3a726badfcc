"""What provider pull adapters share: the poll context, the upstream's clock, time parsing.

A pull adapter is a generator of pages: the poller commits each page (events, cursor and
watermark in one store transaction) *before* it asks the generator for the next, so the next
request is only made once everything read so far is safe. That order is what a consuming
read (Tencent's PullSmsSendStatus) needs, and it costs the others nothing.

Watermarks of APIs that have none are defined here once, honestly: the upstream's own clock
when it answered (its `Date` header, else ours) minus the provider's documented or configured
lag, and only once the whole window was read; pages before the last carry no watermark (-1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Generic, Protocol, TypeVar

from exporter.config import SourceConfig
from exporter.records import Page, SmsEvent, Terminal, Transaction
from exporter.sources.client import SourceClient

T = TypeVar("T")

#: Beijing time (UTC+8, no daylight saving): Alibaba's documented date zone.
BEIJING = timezone(timedelta(hours=8))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

NO_WATERMARK = -1


@dataclass(frozen=True)
class PullContext:
    """What an adapter knows of its source's committed state when a poll starts."""

    cursor: str
    watermark_ms: int  # committed watermark, -1 before the first complete read
    give_up_after_ms: int


class UpstreamClock:
    """The upstream's clock as its `Date` headers tell it (ours until it answered once)."""

    def __init__(self, local: Callable[[], float] = time.time) -> None:
        self.local = local
        self.offset_ms = 0

    def now_ms(self) -> int:
        return int(self.local() * 1000) + self.offset_ms

    def observe(self, date_ms: int | None) -> int:
        """Record a `Date` header; returns the upstream's now (ours when there is none)."""
        if date_ms is None:
            return self.now_ms()
        self.offset_ms = date_ms - int(self.local() * 1000)
        return date_ms


class SmsPuller(Protocol):
    """Pages of SMS events from one provider's API."""

    def pages(
        self, client: SourceClient, ctx: PullContext, deadline: float
    ) -> Iterator[Page[SmsEvent]]: ...


class TransactionPuller(Protocol):
    """Pages of transactions (and a terminal snapshot) from one acquirer's API."""

    def pages(
        self, client: SourceClient, ctx: PullContext, deadline: float
    ) -> Iterator[Page[Transaction]]: ...

    def terminals(self, client: SourceClient, deadline: float) -> tuple[list[Terminal], int, int]:
        """(terminals, invalid count, watermark ms) of the whole inventory."""
        ...


def horizon_ms(ctx: PullContext, now_ms: int, lookback_ms: int) -> int:
    """How far back a window re-read must go: everything older is decided already.

    A message created before `watermark − give_up_after` either showed its final status in an
    earlier complete read (its status time was before that read's watermark) or has been given
    up as unknown; the first read goes back `lookback`.
    """
    if ctx.watermark_ms < 0:
        return now_ms - lookback_ms
    return ctx.watermark_ms - ctx.give_up_after_ms


def rfc2822_ms(text: Any) -> int:
    """`Tue, 03 Nov 2026 12:00:00 +0000` (Twilio [V]) → Unix ms; ValueError if not that."""
    if not isinstance(text, str) or not text:
        raise ValueError("missing date")
    moment = parsedate_to_datetime(text)
    if moment.tzinfo is None:
        raise ValueError(f"date without a zone: {text!r}")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def local_time_ms(text: Any, zone: timezone) -> int:
    """`2025-06-01 10:00:00` in a known zone (Alibaba: Beijing [V]) → Unix ms."""
    if not isinstance(text, str) or not text:
        raise ValueError("missing date")
    moment = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def iso_ms(text: Any) -> int:
    """ISO 8601 with an offset (`Z`, `+00:00`, `+0000`) → Unix ms."""
    if not isinstance(text, str) or not text:
        raise ValueError("missing date")
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError(f"date without a zone: {text!r}")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def dotted(item: Any, path: str) -> Any:
    """The value at a dotted path of nested objects, or None."""
    value = item
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def source_option(source: SourceConfig, key: str) -> Any:
    """A validated provider option of a source (config.PROVIDER_OPTIONS)."""
    return source.options[key]


class Unchanged(Generic[T]):
    """What a window re-read already handed over, so that only changes are handed over again.

    Re-reading a window shows every record again; handing each over would count it as a
    `duplicate` on every poll. A record is remembered only once the page that carried it was
    committed (`remember` after the poller took the page), and forgotten once it is older than
    the window: after a restart the first re-read is counted as duplicates, nothing is lost.
    `key` tells a record's (id, state, time).
    """

    def __init__(self, key: Callable[[T], tuple[str, str, int]]) -> None:
        self.key = key
        self._seen: dict[str, tuple[str, int]] = {}

    def fresh(self, records: list[T]) -> list[T]:
        """The records whose (id, state) was not handed over before."""
        seen, key = self._seen, self.key
        return [r for r in records if seen.get(key(r)[0], ("", 0))[0] != key(r)[1]]

    def remember(self, records: list[T]) -> None:
        for record in records:
            ident, state, at = self.key(record)
            self._seen[ident] = (state, at)

    def forget_before(self, horizon: int) -> None:
        self._seen = {k: v for k, v in self._seen.items() if v[1] >= horizon}

    def hand_over(
        self, records: list[T], invalid: int, *, last: bool, watermark_ms: int, horizon: int
    ) -> Iterator[Page[T]]:
        """The page of a re-read with only the fresh records; a page before the last carries no
        watermark. Once the poller took the page its records are remembered, and after the last
        page of the read what is older than `horizon` is forgotten."""
        records = self.fresh(records)
        yield Page(records, invalid, "", not last, watermark_ms if last else NO_WATERMARK)
        self.remember(records)
        if last:
            self.forget_before(horizon)


def sms_key(event: SmsEvent) -> tuple[str, str, int]:
    return event.message_id, event.status, event.submitted_ms


def transaction_key(txn: Transaction) -> tuple[str, str, int]:
    return txn.txn_id, txn.result, txn.txn_ms

"""What provider pull adapters share: the poll context, the upstream's clock, time parsing.

A pull adapter is a generator of pages: the poller commits each page (events, cursor and
watermark in one store transaction) *before* it asks the generator for the next, so the next
request is only made once everything read so far is safe. That order is what a consuming
read (Tencent's PullSmsSendStatus) needs, and it costs the others nothing.

Watermarks of APIs that have none are defined here once, honestly: the upstream's own clock
when it answered (its `Date` header, else ours) minus the provider's documented or configured
lag, and only once the whole window was read; pages before the last carry no watermark (-1).
The window a re-read covers is planned on that same clock (`SlicedReRead.plan_on_upstream_clock`):
a watermark on the upstream's clock over a window planned on ours would claim what was not read.
"""

from __future__ import annotations

import itertools
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
#: An HTTP `Date` header has whole seconds: the upstream's clock is known to a second.
DATE_PRECISION_MS = 1000


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
        #: Whether the upstream answered once: before, `now_ms` is only our clock's guess.
        self.answered = False

    def now_ms(self) -> int:
        return int(self.local() * 1000) + self.offset_ms

    def observe(self, date_ms: int | None) -> int:
        """Record a `Date` header; returns the upstream's now (ours when there is none)."""
        self.answered = True
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
        self,
        records: list[T],
        invalid: int,
        *,
        last: bool,
        watermark_ms: int,
        horizon: int,
        checkpoint: bool = False,
        cursor: str = "",
    ) -> Iterator[Page[T]]:
        """The page of a re-read with only the fresh records; a page before the last carries no
        watermark unless it ends a time slice (`checkpoint`). Once the poller took the page its
        records are remembered, and after the last page (or a checkpoint) of the read what is
        older than `horizon` is forgotten."""
        records = self.fresh(records)
        complete = last or checkpoint
        yield Page(records, invalid, cursor, not last, watermark_ms if complete else NO_WATERMARK)
        self.remember(records)
        if complete:
            self.forget_before(horizon)


def sms_key(event: SmsEvent) -> tuple[str, str, int]:
    return event.message_id, event.status, event.submitted_ms


def transaction_key(txn: Transaction) -> tuple[str, str, int]:
    return txn.txn_id, txn.result, txn.txn_ms


# --------------------------------------------------------------------------- window slices


def time_slices(low_ms: int, high_ms: int, span_ms: int) -> list[tuple[int, int]]:
    """`[low, high)` cut into slices of at most `span` (whole seconds, oldest first)."""
    low = max(0, low_ms - low_ms % 1000)
    high = high_ms - high_ms % 1000
    span = max(1000, span_ms - span_ms % 1000)
    out = []
    while low < high:
        out.append((low, min(high, low + span)))
        low += span
    return out


class PollBudget:
    """Whether one more unit of work (a time slice, a page) fits before the poll's deadline:
    a unit is taken to last as long as the longest one so far (issue 11 item 8)."""

    def __init__(self, deadline: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.deadline = deadline
        self.monotonic = monotonic
        self._mark = monotonic()
        self.longest = 0.0

    def mark(self) -> None:
        """One unit is done: remember how long it took."""
        now = self.monotonic()
        self.longest = max(self.longest, now - self._mark)
        self._mark = now

    def fits(self) -> bool:
        """Whether another unit as long as the longest so far ends before the deadline."""
        return self.monotonic() + self.longest < self.deadline


#: One page of a slice: (records, invalid, the upstream's now when it answered, last of slice).
SlicePage = tuple[list[T], int, int, bool]


def sliced_re_read(
    unchanged: Unchanged[T],
    slices: list[tuple[int, int]],
    read_slice: Callable[[int, int], Iterator[SlicePage[T]]],
    *,
    lag_ms: int,
    horizon: int,
    budget: PollBudget,
    started: Iterator[SlicePage[T]] | None = None,
) -> Iterator[Page[T]]:
    """A window re-read in time slices, oldest first, with a checkpoint after each slice
    (issue 11 item 8): once slice `[low, high)` is read whole, everything created before `high`
    is known with its status as of the first answer of this poll, so the watermark may move to
    `min(high, first answer's clock − lag)`. The next slice starts only if it fits in what is
    left of the poll's deadline; the next poll goes on from the committed watermark, so a
    backlog longer than one deadline still drains, one committed slice at a time.
    `started`: the pages of the first slice when its reading has already begun.
    """
    first_now: int | None = None
    for index, (low, high) in enumerate(slices):
        if index and not budget.fits():
            return
        answers = started if index == 0 and started is not None else read_slice(low, high)
        for records, invalid, now, end_of_slice in answers:
            first_now = now if first_now is None else first_now
            yield from unchanged.hand_over(
                records,
                invalid,
                last=end_of_slice and index == len(slices) - 1,
                checkpoint=end_of_slice,
                watermark_ms=min(high, first_now - lag_ms),
                horizon=horizon,
            )
        budget.mark()


class SlicedReRead(Generic[T]):
    """A window re-read adapter that reads its window in time slices, oldest first
    (`sliced_re_read`); a provider says how one slice is read (`read_slice`)."""

    #: What identifies a record's state (`sms_key`, `transaction_key`).
    key: Callable[[T], tuple[str, str, int]]
    #: The longest slice the provider's API answers, if it has a limit.
    max_slice_ms: int | None = None

    def __init__(
        self,
        source: SourceConfig,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.clock = UpstreamClock(clock)
        self.monotonic = monotonic
        self.lookback_ms: int = source.options["lookback"]
        self.lag_ms: int = source.options["list_lag"]
        slice_ms: int = source.options["slice"]
        limit = self.max_slice_ms
        self.slice_ms = slice_ms if limit is None else min(slice_ms, limit)
        self.unchanged: Unchanged[T] = Unchanged(type(self).key)

    def read_slice(
        self, client: SourceClient, low: int, high: int, deadline: float
    ) -> Iterator[SlicePage[T]]:
        """The pages of the records created in `[low, high)`; the last one says so."""
        raise NotImplementedError

    def window(self, ctx: PullContext) -> tuple[int, list[tuple[int, int]]]:
        """(horizon, slices) of the window to re-read, on the upstream's clock as known."""
        end = self.clock.now_ms()
        horizon = max(0, horizon_ms(ctx, end, self.lookback_ms))
        return horizon, time_slices(horizon, end, self.slice_ms)

    def pages(self, client: SourceClient, ctx: PullContext, deadline: float) -> Iterator[Page[T]]:
        def read(low: int, high: int) -> Iterator[SlicePage[T]]:
            return self.read_slice(client, low, high, deadline)

        horizon, slices = self.window(ctx)
        started = None
        if not self.clock.answered:
            horizon, slices, started = self.plan_on_upstream_clock(ctx, horizon, slices, read)
        yield from sliced_re_read(
            self.unchanged,
            slices,
            read,
            lag_ms=self.lag_ms,
            horizon=horizon,
            budget=PollBudget(deadline, self.monotonic),
            started=started,
        )

    def plan_on_upstream_clock(
        self,
        ctx: PullContext,
        horizon: int,
        slices: list[tuple[int, int]],
        read: Callable[[int, int], Iterator[SlicePage[T]]],
    ) -> tuple[int, list[tuple[int, int]], Iterator[SlicePage[T]] | None]:
        """The window planned on the upstream's clock, which its first answer tells.

        Until the upstream answered once, the window is planned on our clock. Were ours ahead
        (by more than the window), the plan would read a stretch the upstream has not reached
        and skip what it holds, while the watermark, taken from the upstream's answers, would
        claim those records read: receipts decided `missing` whose SMS were never looked at.
        So the first slice's first answer is awaited, and the window planned again if it
        starts later than the upstream's clock says it must, beyond the second a `Date`
        header cannot tell (the answer is then dropped); else
        the plan stands, and that answer is its first. Nothing to read on our clock (ours
        behind the committed watermark) asks one second at the horizon, only to learn it.
        Returns (horizon, slices, the pages of the first slice already begun or None).
        """
        low, high = slices[0] if slices else (horizon, horizon + 1000)
        answers = read(low, high)
        first = next(answers, None)
        known_horizon, known_slices = self.window(ctx)
        if first is None or not slices or known_horizon + DATE_PRECISION_MS < horizon:
            close = getattr(answers, "close", None)
            if close is not None:
                close()
            return known_horizon, known_slices, None
        return horizon, slices, itertools.chain([first], answers)

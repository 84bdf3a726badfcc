"""Paged change feeds: append-only item logs, cursors, pages and their watermarks (API.md).

An `ItemLog` keeps every published item of a feed as JSON bytes in event-time order. Full
chunks are zlib-compressed, so a long demo keeps roughly 60 bytes per message event plus
8 bytes for its event time, instead of a Python object per event.

A cursor is opaque to clients: `<feed letter><run tag>-<index>`, where the run tag is derived
from the seed and start, so a cursor from another simulator run is refused rather than read
as a position in this one.
"""

from __future__ import annotations

import zlib
from array import array
from collections import OrderedDict
from dataclasses import dataclass

from exporter.timestamps import format_rfc3339_ms

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
CHUNK_ITEMS = 2048
_CACHED_CHUNKS = 8


class FeedRequestError(ValueError):
    """A malformed `cursor` or `limit`: the client gets a 400 with this message."""


class ItemLog:
    """An append-only list of `(event time, JSON bytes)`, compressed by chunks."""

    def __init__(self, chunk_items: int = CHUNK_ITEMS) -> None:
        self._chunk_items = chunk_items
        self._times = array("q")
        self._sealed: list[bytes] = []
        self._tail: list[bytes] = []
        self._cache: OrderedDict[int, list[bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._times)

    def append(self, time_ms: int, item: bytes) -> None:
        """Add an item at the end; event times must not decrease."""
        self._times.append(time_ms)
        self._tail.append(item)
        if len(self._tail) == self._chunk_items:
            self._sealed.append(zlib.compress(b"\n".join(self._tail), 1))
            self._tail = []

    def time_at(self, index: int) -> int:
        """The event time of item `index`."""
        return self._times[index]

    def items(self, start: int, stop: int) -> list[bytes]:
        """Items `start` to `stop - 1`."""
        out: list[bytes] = []
        index = start
        while index < stop:
            chunk, offset = divmod(index, self._chunk_items)
            take = min(stop - index, self._chunk_items - offset)
            out.extend(self._chunk(chunk)[offset : offset + take])
            index += take
        return out

    def stored_bytes(self) -> int:
        """Approximate memory held by the items (compressed chunks, tail and times)."""
        return (
            sum(len(c) for c in self._sealed)
            + sum(len(i) for i in self._tail)
            + self._times.itemsize * len(self._times)
        )

    def _chunk(self, chunk: int) -> list[bytes]:
        if chunk == len(self._sealed):
            return self._tail
        cached = self._cache.get(chunk)
        if cached is None:
            cached = zlib.decompress(self._sealed[chunk]).split(b"\n")
            self._cache[chunk] = cached
            if len(self._cache) > _CACHED_CHUNKS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(chunk)
        return cached


@dataclass(frozen=True)
class Page:
    """One page of a feed."""

    items: list[bytes]
    next_index: int
    has_more: bool
    watermark_ms: int


def parse_limit(value: str | None) -> int:
    """`limit` query parameter: 1..5000, default 500."""
    if value is None or value == "":
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise FeedRequestError(f"limit must be a whole number from 1 to {MAX_LIMIT}: {value!r}")
    return int(value)


#: The feeds and the letter that starts their cursors.
FEED_LETTERS: dict[str, str] = {
    "messages": "m",
    "transactions": "t",
    "terminals": "i",
    "messages-2": "n",  # the second gateway (`id_collision`)
    "transactions-2": "u",  # the second acquirer (`id_collision`)
}


class Cursors:
    """Encodes and checks the opaque cursors of one simulator run."""

    def __init__(self, run_tag: str) -> None:
        self._run_tag = run_tag

    def encode(self, feed: str, index: int) -> str:
        """The cursor pointing after the first `index` items of `feed`."""
        return f"{FEED_LETTERS[feed]}{self._run_tag}-{index}"

    def decode(self, feed: str, cursor: str | None, length: int) -> int:
        """The item index a cursor points at (0 for none); refuses foreign or future cursors."""
        if not cursor:
            return 0
        tag, sep, number = cursor.partition("-")
        if not sep or not number.isdigit() or not tag or tag[0] != FEED_LETTERS[feed]:
            raise FeedRequestError(f"malformed cursor for the {feed} feed: {cursor!r}")
        if tag[1:] != self._run_tag:
            raise FeedRequestError(
                f"cursor {cursor!r} comes from another simulator run (seed or start differ)"
            )
        index = int(number)
        if index > length:
            raise FeedRequestError(f"cursor {cursor!r} points past the end of the {feed} feed")
        return index


def log_page(log: ItemLog, start: int, limit: int, now_ms: int) -> Page:
    """A page of an event-time feed, with the watermark rule of API.md.

    On the last page the watermark is `now_ms` (everything up to it is published); on a page
    with more to come it is the event time of the first item not returned.
    """
    stop = min(len(log), start + limit)
    has_more = stop < len(log)
    watermark = log.time_at(stop) if has_more else now_ms
    return Page(log.items(start, stop), stop, has_more, watermark)


def snapshot_page(items: list[bytes], start: int, limit: int, now_ms: int) -> Page:
    """A page of a snapshot feed (the terminals): its watermark is `now_ms` on every page."""
    stop = min(len(items), start + limit)
    return Page(items[start:stop], stop, stop < len(items), now_ms)


def render_page(feed: str, page: Page, cursors: Cursors, reset: bool = False) -> bytes:
    """The JSON body of a page: `{"<feed>": [...], "next_cursor", "has_more", "watermark"}`.

    `reset` (a `cursor_reset` fault) sends an empty `next_cursor`. The items key of a second
    feed is that of the first (`messages-2` → `messages`)."""
    cursor = "" if reset else cursors.encode(feed, page.next_index)
    items = feed.removesuffix("-2")
    tail = (
        f'],"next_cursor":"{cursor}",'
        f'"has_more":{"true" if page.has_more else "false"},'
        f'"watermark":"{format_rfc3339_ms(page.watermark_ms)}"}}'
    )
    return b"".join((f'{{"{items}":['.encode(), b",".join(page.items), tail.encode()))

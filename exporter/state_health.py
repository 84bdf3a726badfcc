"""The state database's health as this process sees it, and what the process does while it is
down.

`smswatch_state_up` is 1 while the last read (a scrape's snapshot) and the last commit of this
process both worked. A read that works does not undo a failed commit (a SQLite file that turned
read-only still reads): only a commit that works again does. Commit durations (the `COMMIT`
itself: the database making a transaction visible, and durable where asked) go into
`smswatch_state_commit_duration_seconds`. Both are process-local: each replica says what it sees.

While a side (reads or writes) is down, at most one attempt per `retry_s` goes to the database
(the probe); every other one fails at once with `StateUnavailable`, so that a burst of pushes is
answered 503 in microseconds instead of queueing behind connect timeouts, and a recovering
database is not hammered.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from exporter.dialect import STATE_ERRORS, UNAVAILABLE_ERRORS, StateUnavailable

#: Buckets of `smswatch_state_commit_duration_seconds`: 0.1 ms (SQLite in WAL) to 10 s (a lock
#: wait at its bound).
COMMIT_BUCKETS_SECONDS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)
log = logging.getLogger(__name__)

#: The sides of the state a process uses.
READ, WRITE = "read", "write"


def is_outage(side: str, exc: BaseException) -> bool:
    """Whether `exc`, raised while reading or writing (`side`), says the database is down: any
    state error of a read (a scrape's read depends on no value); of a write, the database being
    unavailable, or its file being unreadable (`sqlite3.DatabaseError` itself: not a database,
    malformed). Not a value it cannot hold (quarantined: the database is fine) nor a statement
    it refuses (a bug, or a commit refused on purpose)."""
    if side == READ:
        return isinstance(exc, STATE_ERRORS)
    return isinstance(exc, UNAVAILABLE_ERRORS) or type(exc) is sqlite3.DatabaseError


@dataclass
class _Side:
    """One side's state: failing since when and why, the next probe, a probe under way."""

    failing_since: float | None = None
    why: str = ""
    next_try: float = 0.0
    prober: int | None = None  # the thread probing, if any
    depth: dict[int, int] = field(default_factory=dict)  # nested attempts per thread


class StateHealth:
    """Process-local health of the state database (thread-safe)."""

    def __init__(self, retry_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        """`retry_s`: the pause between probes while a side is down."""
        self.retry_s = retry_s
        self.clock = clock
        self._lock = threading.Lock()
        self._sides = {READ: _Side(), WRITE: _Side()}
        self.commit_buckets = [0] * (len(COMMIT_BUCKETS_SECONDS) + 1)
        self.commit_sum_s = 0.0

    @property
    def up(self) -> bool:
        """Whether the last read and the last commit both worked."""
        with self._lock:
            return all(side.failing_since is None for side in self._sides.values())

    def failing(self, side: str) -> bool:
        """Whether the last attempt of `side` failed."""
        with self._lock:
            return self._sides[side].failing_since is not None

    def down_for(self) -> float | None:
        """Seconds since a side began to fail (the earliest), or None while up."""
        with self._lock:
            since = [s.failing_since for s in self._sides.values() if s.failing_since is not None]
        return None if not since else self.clock() - min(since)

    def why(self) -> str:
        """What took a side down, without the database's own words (which may name its host:
        they go to the log): the error's type, or the timeout ("" while up)."""
        with self._lock:
            return "; ".join(s.why for s in self._sides.values() if s.failing_since is not None)

    @contextmanager
    def attempt(self, side: str) -> Iterator[None]:
        """One use of the state (a transaction, a snapshot): refused at once with
        `StateUnavailable` while `side` is down and it is not time to probe; else run, and its
        outcome recorded (nested attempts of one thread count as the outermost one)."""
        me = threading.get_ident()
        with self._lock:
            state = self._sides[side]
            nested = state.depth.get(me, 0)
            if not nested and state.failing_since is not None:
                now = self.clock()
                if state.prober is not None or now < state.next_try:
                    raise StateUnavailable(f"state database down ({state.why})")
                state.prober = me
                state.next_try = now + self.retry_s
            state.depth[me] = nested + 1
        ok = False
        try:
            yield
            ok = True
        except BaseException as exc:
            if not nested and is_outage(side, exc):
                self.failed(side, exc)
            raise
        finally:
            with self._lock:
                if nested:
                    state.depth[me] = nested
                else:
                    del state.depth[me]
                    if state.prober == me:
                        state.prober = None
            if ok and not nested:
                self.succeeded(side)

    def failed(self, side: str, exc: BaseException | str) -> None:
        """`side` failed (an error, or what a timeout says)."""
        why = exc if isinstance(exc, str) else type(exc).__name__
        said = why if isinstance(exc, str) else f"{why}: {exc}".strip()
        with self._lock:
            state = self._sides[side]
            now = self.clock()
            began = state.failing_since is None
            if began:
                state.failing_since = now
            state.why = why
            state.next_try = max(state.next_try, now + self.retry_s)
        if began:
            log.warning(
                "state database down: serving the last metrics read, pushes answered 503, "
                "polls paused",
                extra={"side": side, "error": said.splitlines()[0][:300]},
            )

    def succeeded(self, side: str) -> None:
        """`side` worked; a commit that works proves reads too."""
        now = self.clock()
        back: list[float] = []
        with self._lock:
            for name in (READ, WRITE) if side == WRITE else (READ,):
                state = self._sides[name]
                if state.failing_since is not None:
                    back.append(now - state.failing_since)
                    state.failing_since = None
                    state.why = ""
        if back:
            log.warning("state database back", extra={"side": side, "down_s": round(max(back), 3)})

    def observe_commit(self, seconds: float) -> None:
        """One commit's duration, into the histogram."""
        with self._lock:  # the first bucket whose bound is >= seconds (+Inf past the last)
            self.commit_buckets[bisect_left(COMMIT_BUCKETS_SECONDS, seconds)] += 1
            self.commit_sum_s += seconds

    def commit_histogram(self) -> tuple[list[int], float]:
        """(per-bucket counts, +Inf last; sum of seconds), read together."""
        with self._lock:
            return list(self.commit_buckets), self.commit_sum_s

"""The committed state as a scrape sees it: read fresh when the database answers in time, else
the last snapshot read, so that a database outage never fails a scrape, never turns the
business metrics into zeros nor moves a counter down, and never holds a scrape longer than
`wait_s` (`smswatch_state_up` says the numbers are not fresh).

The read runs in a thread of its own: a statement stuck on a database that stopped answering
holds that thread (until the connection's bounds end it), never the scrape. While one read is
under way no second one starts; a scrape that comes while it is late gets the last snapshot at
once. After each read, a write that failed before is probed again (`Store.writable`), so that
`smswatch_state_up` comes back with the database even when nothing else writes.

Counters never go down in what this process serves: a database that comes back without its
last commits (a failover to a standby that had not received them; polls commit with
`synchronous_commit = off`) has counters below those served before. Prometheus would take that
for a reset and count the whole value again in every rate; each counter is served at the
highest value this process has read until the re-read feeds bring the database back to it.
"""

from __future__ import annotations

import logging
import threading
import time

from exporter.dialect import STATE_ERRORS
from exporter.state_health import READ
from exporter.store import Snapshot, Store

log = logging.getLogger(__name__)

#: How long a scrape waits for the database before it serves the last snapshot (seconds).
SCRAPE_WAIT_S = 2.0


class LastSnapshot:
    """The latest snapshot of the committed state (`Store.snapshot`) this process read."""

    def __init__(self, store: Store, wait_s: float = SCRAPE_WAIT_S) -> None:
        """`wait_s`: the longest a reader waits for the database."""
        self.store = store
        self.wait_s = wait_s
        self._lock = threading.Lock()
        self._last: Snapshot | None = None
        #: The highest value read of each counter (metric, encoded labels).
        self._highest: dict[tuple[str, str], float] = {}
        self._read_at: float | None = None
        self._under_way: threading.Event | None = None
        self._started = 0.0

    @property
    def read_at(self) -> float | None:
        """Unix time of the last snapshot read, None before the first."""
        with self._lock:
            return self._read_at

    def read(self) -> Snapshot | None:
        """A fresh snapshot, or after `wait_s` (or at once while a read is late) the last one;
        None when the state was never read."""
        with self._lock:
            if self._under_way is None:
                self._under_way = threading.Event()
                self._started = time.monotonic()
                threading.Thread(
                    target=self._refresh, args=(self._under_way,), name="state-read", daemon=True
                ).start()
            done, started = self._under_way, self._started
        if not done.wait(max(0.0, started + self.wait_s - time.monotonic())):
            self.store.health.failed(READ, f"no answer within {self.wait_s:g} s")
        with self._lock:
            return self._last

    def _refresh(self, done: threading.Event) -> None:
        try:
            counters, gauges, sources = self.store.snapshot()
            with self._lock:
                for metric, labels, value in counters:
                    if value > self._highest.get((metric, labels), float("-inf")):
                        self._highest[(metric, labels)] = value
                served = [(*key, value) for key, value in self._highest.items()]
                self._last, self._read_at = (served, gauges, sources), time.time()
        except STATE_ERRORS:
            pass  # recorded by the store's health; the last snapshot stays
        except Exception:  # a bug must not leave every later scrape on the old numbers
            log.exception("reading the state failed")
        finally:
            with self._lock:
                self._under_way = None
            done.set()
        try:
            self.store.writable()
        except Exception:
            log.exception("probing the state's commits failed")

"""Leases: which replica polls which source, and which one is the primary.

Two or more exporter processes (replicas) may share one state. Every polled source has a lease
`source:<name>` in the state, and one more lease, `primary`, names the replica that runs the
singleton jobs (prune, scheduled reports, canary probes, provider account checks) and exports
the series read from the shared state. A lease carries a fencing token that every change of
holder bumps; a page commits only if its poller's token is still the lease's (checked inside
the page's own transaction, under the state's write lock), so a replica that paused past its
lease and wakes up can never commit a page.

Expiry is judged on one clock: the database's (PostgreSQL) or the host's wall clock (a SQLite
file's replicas share a host), never the exporter's own, maybe simulated, clock. Locally, a
replica stops treating a lease as held once `ttl` has passed on its monotonic clock since the
round that renewed it began, before it even talks to the database again.

Live replicas (heard within `ttl`) spread the sources: each takes at most ceil(sources / live)
and releases the rest. A dead holder's lease is taken once it expires (at most `ttl` after its
last renewal, found by the next round, every ttl/3); a holder on this host whose process is
gone is found dead at once.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from exporter.dialect import STATE_ERRORS
from exporter.store import Store

log = logging.getLogger(__name__)

#: The lease of the replica that runs the singleton jobs and exports the shared state's series.
PRIMARY = "primary"
#: Names this process's replica (default: `<hostname>:<pid>:<random>`).
REPLICA_ENV = "SMSWATCH_REPLICA"
#: Changes of a lease as this process saw them (`change` of smswatch_lease_changes_total).
LEASE_CHANGES: tuple[str, ...] = ("acquired", "lost", "released")

#: The least time PostgreSQL lets a replica's write transaction wait on its client.
IDLE_TRANSACTION_MIN_MS = 30_000
#: Replica ids of the keepers running in this process (never taken for dead).
_RUNNING: set[str] = set()
_RUNNING_LOCK = threading.Lock()


def source_lease(source: str) -> str:
    """The name of a source's lease."""
    return f"source:{source}"


def replica_id(environ: Mapping[str, str]) -> str:
    """This process's replica id: `SMSWATCH_REPLICA`, else hostname, pid and a random suffix
    (a restarted process is a new replica)."""
    named = environ.get(REPLICA_ENV, "").strip()
    if named:
        return named
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def holder_is_dead(holder: str) -> bool:
    """Whether `holder` is a default-named replica of this host whose process is gone (or an
    earlier process that had this one's pid, as a restarted container's pid 1). Replicas named
    by `SMSWATCH_REPLICA`, or of other hosts, are only ever found dead by their lease's expiry."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    with _RUNNING_LOCK:
        if holder in _RUNNING:
            return False
    pid = int(parts[1])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


class LeaseLost(Exception):
    """A page was not committed: the poller's lease token is no longer the current one."""


class Lease:
    """One lease as this replica holds it: its token and a local deadline (monotonic clock)."""

    def __init__(
        self, name: str, replica: str, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        """`monotonic`: the local clock the deadline runs on (CLOCK_MONOTONIC keeps running
        while the process is stopped)."""
        self.name = name
        self.replica = replica
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._token: int | None = None
        self._deadline = 0.0
        #: Whether a running keeper keeps this lease (else nobody shares the state yet).
        self.kept = False

    def token(self) -> int | None:
        """The fencing token while the lease is held by the local deadline, else None."""
        with self._lock:
            if self._token is not None and self._monotonic() < self._deadline:
                return self._token
            return None

    def held(self) -> bool:
        """Whether this replica holds the lease now (its local deadline not passed)."""
        return self.token() is not None

    def _set(self, token: int | None, deadline: float) -> tuple[int | None, bool]:
        """Record a round's result; returns the token recorded before (None if none) and
        whether it was still held then (its local deadline not passed)."""
        with self._lock:
            before, held = self._token, self._monotonic() < self._deadline
            self._token, self._deadline = token, deadline if token is not None else 0.0
            return before, held

    def fence(self) -> Fence | None:
        """The fence a poll starting now commits its pages under (None: not held)."""
        token = self.token()
        return None if token is None else Fence(self, token)


@dataclass(frozen=True)
class Fence:
    """A lease token taken at a poll's start: each page's transaction checks it is current."""

    lease: Lease
    token: int

    def check(self, store: Store) -> None:
        """Raise `LeaseLost` unless the token is still current (inside the page's transaction:
        the state's write lock makes a takeover and this commit take turns). The local
        deadline is checked first: past it, the database is not even asked."""
        if self.lease.token() != self.token:
            raise LeaseLost(
                f"lease {self.lease.name} no longer held here: released, or expired locally "
                f"(token {self.token})"
            )
        if not store.lease_is_current(self.lease.name, self.lease.replica, self.token):
            raise LeaseLost(f"lease {self.lease.name} taken over (token {self.token} is stale)")


class LeaseKeeper:
    """Acquires, renews and releases this replica's leases, a round every ttl/3 on its own
    thread (and once at `start`, so the first polls happen right away)."""

    def __init__(
        self,
        store: Store,
        sources: Sequence[str],
        ttl_ms: int,
        replica: str,
        on_acquired: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`sources`: the names of the polled sources (push-only ones have no lease).
        `on_acquired(lease name)` runs after a round that acquired it (e.g. to poll at once)."""
        self.store = store
        self.replica = replica
        self.ttl_ms = ttl_ms
        self.sources = tuple(sources)
        self._monotonic = monotonic
        self._on_acquired = on_acquired
        self.primary = Lease(PRIMARY, replica, monotonic)
        self.by_source = {s: Lease(source_lease(s), replica, monotonic) for s in self.sources}
        self._changes: Counter[tuple[str, str]] = Counter()
        self._changes_lock = threading.Lock()
        self._round_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ what others ask

    @property
    def running(self) -> bool:
        """Whether the keeper was started: leases are kept (after `stop`, none is held, so a
        stopping replica exports nothing of the shared state)."""
        return self._thread is not None

    def is_primary(self) -> bool:
        """Whether this replica is the primary now (local deadline checked)."""
        return self.primary.held()

    def polls(self, source: str) -> bool:
        """Whether this replica polls `source` now."""
        lease = self.by_source.get(source)
        return lease.held() if lease is not None else self.is_primary()

    def lease_names(self) -> list[str]:
        """Every lease this keeper takes part in: `primary` first, then the sources'."""
        return [PRIMARY, *(lease.name for lease in self.by_source.values())]

    def changes(self) -> dict[tuple[str, str], int]:
        """(lease, change) → how many times, in this process."""
        with self._changes_lock:
            return dict(self._changes)

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """One round now (the first polls need their leases), then a round every ttl/3."""
        with _RUNNING_LOCK:
            _RUNNING.add(self.replica)
        for lease in [self.primary, *self.by_source.values()]:
            lease.kept = True
        # a replica paused inside a write transaction must not stall the others for long;
        # never below 30 s, so a long page's work between two statements is not cut
        self.store.limit_idle_transactions(max(2 * self.ttl_ms, IDLE_TRANSACTION_MIN_MS))
        self.round()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            self.round()

    def stop(self) -> None:
        """Stop renewing and release every lease held (another replica takes them at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        leases = [self.primary, *self.by_source.values()]
        held = [(lease, lease.token()) for lease in leases]
        try:
            with self.store.transaction():
                for lease, token in held:
                    if token is not None:
                        self.store.release_lease(lease.name, self.replica, token)
                self.store.forget_replica(self.replica)
        except STATE_ERRORS as exc:  # they expire on their own
            log.warning("leases not released", extra={"error": type(exc).__name__})
        for lease, token in held:
            lease._set(None, 0.0)
            lease.kept = False
            if token is not None:
                self._count(lease.name, "released")
        with _RUNNING_LOCK:
            _RUNNING.discard(self.replica)

    def round(self) -> None:
        """Heartbeat, renew what is held, take free or expired leases up to this replica's
        share, release the extras: one write transaction. A failed round changes nothing
        (local deadlines run out on their own)."""
        with self._round_lock:
            started = self._monotonic()
            released: set[str] = set()
            try:
                tokens = self.store.run(lambda store: self._round(store, released))
            except STATE_ERRORS as exc:
                log.warning(
                    "lease round failed: leases run out at their local deadline",
                    extra={"replica": self.replica, "error": type(exc).__name__},
                )
                return
            deadline = started + self.ttl_ms / 1000
            acquired = []
            for lease in [self.primary, *self.by_source.values()]:
                token = tokens.get(lease.name)
                before, held = lease._set(token, deadline)
                if token == before and held:
                    continue  # renewed
                if before is not None and (held or token is None):
                    # given up to another replica's share, or taken over / expired meanwhile
                    change = "released" if lease.name in released and held else "lost"
                    self._count(lease.name, change)
                    log.info(f"lease {change}", extra={"lease": lease.name})
                elif before is not None:  # ran out locally, held again now
                    self._count(lease.name, "lost")
                if token is not None:
                    self._count(lease.name, "acquired")
                    acquired.append(lease.name)
                    log.info(
                        "lease acquired",
                        extra={"lease": lease.name, "token": token, "replica": self.replica},
                    )
            if self._on_acquired is not None:
                for name in acquired:
                    self._on_acquired(name)

    def _round(self, store: Store, released: set[str]) -> dict[str, int]:
        """The round's transaction: lease name → token held after it (absent: not held);
        the leases given up for another replica's share are added to `released`."""
        now = store.db_now_ms()
        store.heartbeat(self.replica, now)
        live = []
        for replica in store.replicas_seen(now - self.ttl_ms):
            if replica != self.replica and holder_is_dead(replica):
                store.forget_replica(replica)
            else:
                live.append(replica)
        rows = store.leases()
        tokens: dict[str, int] = {}

        def take(name: str) -> None:
            row = rows.get(name)
            dead = row is not None and bool(row.holder) and holder_is_dead(row.holder)
            token = store.take_lease(name, self.replica, now, self.ttl_ms, holder_dead=dead)
            if token is not None:
                tokens[name] = token

        take(PRIMARY)
        share = math.ceil(len(self.sources) / max(1, len(live)))
        names = sorted(source_lease(s) for s in self.sources)
        mine = [n for n in names if n in rows and rows[n].holder == self.replica]
        for name in mine[:share]:
            take(name)  # renew (or take back, if it expired and nobody took it)
        for name in mine[share:]:  # more than this replica's share: another takes them
            store.release_lease(name, self.replica, rows[name].token)
            released.add(name)
        for name in names:
            if len(tokens) - (PRIMARY in tokens) >= share:
                break
            if name not in mine:
                take(name)
        return tokens

    def _count(self, lease: str, change: str) -> None:
        with self._changes_lock:
            self._changes[(lease, change)] += 1


class PollGate:
    """What a poller commits under: the fence of its lease, for the thread that polls."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def fenced(self, fence: Fence | None) -> Iterator[None]:
        """Pages committed by this thread inside are checked against `fence` (None: none)."""
        self._local.fence = fence
        try:
            yield
        finally:
            self._local.fence = None

    def check(self, store: Store) -> None:
        """Inside a page's transaction: raise `LeaseLost` if this thread's fence is stale."""
        fence = getattr(self._local, "fence", None)
        if fence is not None:
            fence.check(store)

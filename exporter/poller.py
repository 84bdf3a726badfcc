"""One poll of one source: fetch pages until drained, commit each page with its cursor.

Each page commits in one store transaction together with its cursor advance, its counter
deltas and the decisions its watermark allows, so a crash between pages loses nothing and
counts nothing twice. A failed request leaves the cursor where the last commit put it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from exporter import reconcile
from exporter.catalogue import POLL_BUCKETS_SECONDS
from exporter.classify import TABLES, UNLISTED_CODES, CodeTable
from exporter.config import OUTCOME_ONLY_PROVIDERS, Config, SourceConfig
from exporter.dialect import STATE_ERRORS, UNAVAILABLE_ERRORS, UNSTORABLE_ERRORS
from exporter.errors import SourceError
from exporter.group_commit import GroupCommit
from exporter.leases import Fence, Lease, LeaseLost, PollGate
from exporter.probes.ledger import divert_reports
from exporter.quarantine import quarantined
from exporter.reconcile import LabelBounds, Settings
from exporter.records import (
    Page,
    SmsEvent,
    Terminal,
    Transaction,
    unstorable_records,
)
from exporter.sources import adapters
from exporter.sources.client import BadPayload, SourceClient
from exporter.sources.generic import (
    fetch_page,
    parse_sms_page,
    parse_terminal_page,
    parse_transaction_page,
)
from exporter.sources.pulling import PullContext
from exporter.store import Store

R = TypeVar("R")

log = logging.getLogger(__name__)

#: What storing a value SQLite cannot hold raises (an integer beyond 64 bits, a lone
#: surrogate, NaN into a NOT NULL column). Not `OperationalError` (a locked or full database)
#: nor a bug's TypeError: those fail the poll, which is retried, and quarantine nothing.
_UNSTORABLE: tuple[type[Exception], ...] = (
    OverflowError,
    UnicodeEncodeError,
    *UNSTORABLE_ERRORS,
)


@dataclass
class PollHealth:
    """In-memory health of a source, for /metrics and the landing page."""

    up: bool = False
    polls: int = 0
    last_duration_s: float = 0.0
    last_error: str = ""
    last_records: int = 0
    duration_buckets: list[int] = field(
        default_factory=lambda: [0] * (len(POLL_BUCKETS_SECONDS) + 1)
    )
    duration_sum_s: float = 0.0

    def observe(self, seconds: float) -> None:
        """Record a poll's duration in the (process-local) histogram."""
        for i, bound in enumerate(POLL_BUCKETS_SECONDS):
            if seconds <= bound:
                self.duration_buckets[i] += 1
                break
        else:
            self.duration_buckets[-1] += 1
        self.duration_sum_s += seconds
        self.last_duration_s = seconds
        self.polls += 1


class Stay(NamedTuple):
    """Where a generic feed's page was read from, and whether it answered without
    `next_cursor` (the source stays there and asks again). Asked again from the same cursor,
    such a feed answers the same items first, the new ones after them (it only grows at its
    end): the invalid items among the first ones were counted already."""

    read_from: str
    stays: bool


@dataclass(frozen=True)
class Push:
    """One push a receiver took, waiting for its durable commit (`Pipeline.commit_push`)."""

    source: SourceConfig
    events: list[SmsEvent]
    invalid: int
    provider_ms: int | None
    counters: Counter[Any] | None

    def timely(self, horizon_ms: int) -> list[SmsEvent]:
        """The events of messages submitted at or after the prune horizon (the rest is late)."""
        return reconcile.refuse_late(self.events, horizon_ms, lambda e: e.submitted_ms)


def _isolable(exc: Exception) -> bool:
    """Whether a failure is a push's own (its values, a bug its data hits), so that the other
    pushes of its group go on: anything but an error of the database itself."""
    return isinstance(exc, _UNSTORABLE) or not isinstance(exc, STATE_ERRORS)


class Pipeline:
    """The state that every poller shares: store, settings, label bounds, feed membership."""

    def __init__(
        self, config: Config, store: Store, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        #: The lease fence of the thread polling (replicas): checked in each page's transaction.
        self.gate = PollGate()
        #: Per source, the watermarks capped since the poller last looked: (count, most ahead ms).
        self._clamped: dict[str, tuple[int, int]] = {}
        self._clamp_lock = threading.Lock()
        #: Terminals as this process last committed them: id → (source, terminal). One that a
        #: snapshot reports again unchanged has nothing left to record (see `commit_terminals`).
        self._inventory: dict[str, tuple[str, Terminal]] = {}
        self._inventory_seen = store.foreign_writes()  # forgotten when another process writes
        self._inventory_lock = threading.Lock()
        self.settings = Settings(
            missing_after_ms=config.missing_after_ms,
            give_up_after_ms=config.give_up_after_ms,
            join_transaction_field=config.join_transaction_field,
            min_software_version=config.min_software_version,
            max_skew_ms=config.join_max_skew_ms,
        )
        adopted = store.adopt_unscoped(
            {s.name: s.acquirers for s in config.sources if s.kind == "acquirer"}
        )
        if adopted:
            log.info(
                "transactions from an older state file given their source", extra={"rows": adopted}
            )
        cap = config.max_label_values
        self.carriers = LabelBounds(
            config.carriers, cap, store.label_values("smswatch_sms_submitted_total", 1)
        )
        self.areas = LabelBounds(
            config.areas, cap, store.label_values("smswatch_sms_submitted_total", 2)
        )
        self.source_names = [s.name for s in config.sources]
        self.with_terminals = [s.name for s in config.sources if s.terminals_path]
        #: Push-only SMS sources: what they tell is only known while the exporter listens.
        self.push_only = [s.name for s in config.sources if is_push_only(s)]
        self.evidence_after_ms = (
            config.give_up_after_ms
            if any(is_push_only(s) and s.provider in OUTCOME_ONLY_PROVIDERS for s in config.sources)
            else 0
        )
        #: Canary probes are configured: SMS events of canaries are taken out before ingest.
        self.canaries = config.probes is not None
        #: What was logged once already: acquirers without join keys, (source, unlisted code).
        self._warned: set[tuple[str, ...]] = set()
        self._announced: set[tuple[str, str]] = set()
        #: Pushes committed in groups, durably (`commit_push`).
        self.push_commits: GroupCommit[Push] = GroupCommit(self._commit_pushes, store.durable)

    def now_ms(self) -> int:
        """The exporter's clock in Unix ms (what outcomes are dated by on the landing page)."""
        return int(self.clock() * 1000)

    def accept_watermark(self, source: SourceConfig, watermark_ms: int) -> int:
        """A source's watermark as the exporter accepts it: at most its clock + max_clock_skew.

        An upstream whose clock is ahead (a clock step, Beijing time labelled `Z`) would move the
        committed watermark forward for good: pending messages given up as unknown, their real
        deliveries then conflicts. Capped ones are counted (inside the caller's transaction)
        and remembered for one log line per poll (`take_clamps`).
        """
        if watermark_ms < 0:
            return watermark_ms
        cap = int(self.clock() * 1000) + source.max_clock_skew_ms
        if watermark_ms <= cap:
            return watermark_ms
        self.store.add_counters(
            Counter({("smswatch_source_watermark_clamped_total", (source.name,)): 1})
        )
        with self._clamp_lock:
            count, ahead = self._clamped.get(source.name, (0, 0))
            self._clamped[source.name] = (count + 1, max(ahead, watermark_ms - cap))
        return cap

    def take_clamps(self, source: str) -> tuple[int, int]:
        """(how many watermarks were capped, by how much the furthest was ahead, ms) since the
        last call, for one log line per poll."""
        with self._clamp_lock:
            return self._clamped.pop(source, (0, 0))

    def settle(self) -> None:
        """Decide every receipt that all feeds' watermarks have passed (inside a transaction)."""
        watermark = self.store.watermark(self.source_names, self.with_terminals)
        if watermark < 0:
            return
        blind = self.store.unobserved_windows(self.push_only) if self.push_only else []
        while True:
            changes = reconcile.decide_receipts(
                watermark,
                self.store,
                self.settings,
                blind=blind,
                evidence_after_ms=self.evidence_after_ms,
            )
            self.store.apply(changes, "", self.now_ms())
            if len(changes.receipts) < 100_000:
                break

    def _commit(
        self,
        source: SourceConfig,
        records: Sequence[R],
        invalid: int,
        ingest: Callable[[Sequence[R]], reconcile.Changes],
        finish: Callable[[], None],
        stay: Stay | None = None,
    ) -> None:
        """Apply records, count `invalid`, then `finish` (cursor, decisions) in one transaction.

        Records whose values cannot be stored are quarantined before anything is written. If
        the page still fails to apply, it is applied again record by record (a savepoint
        each), and the records that fail alone are quarantined: one bad item never stalls a
        feed nor makes a push batch fail forever. Transient database errors still fail it.
        """
        good, bad = _storable(records)
        try:
            with self.store.transaction():
                self.gate.check(self.store)  # a stale lease token: nothing of the page commits
                self.store.apply(ingest(good), source.name, self.now_ms())
                self._quarantine(source, bad, invalid, stay)
                finish()
            return
        except _UNSTORABLE as exc:
            log.warning(
                "page failed to apply, applying it record by record",
                extra={"source": source.name, "error": f"{type(exc).__name__}: {exc}"},
            )
        with self.store.transaction():
            self.gate.check(self.store)
            bad += self._apply_one_by_one(source, good, ingest)
            self._quarantine(source, bad, invalid, stay)
            finish()

    def _quarantine(
        self, source: SourceConfig, bad: list[tuple[R, str]], invalid: int, stay: Stay | None
    ) -> None:
        """Count invalid records and keep the refused ones (inside the page's transaction).

        A page read again from a cursor where the feed stayed (`stay`) starts with the items
        that were counted then: only those beyond them are counted and kept."""
        fresh = invalid + len(bad)
        if stay is not None:
            counted = self.store.stay_counted(source.name, stay.read_from)
            self.store.set_stay_counted(
                source.name, stay.read_from if stay.stays else None, max(fresh, counted)
            )
            fresh = max(0, fresh - counted)
        if bad:
            now_ms = int(time.time() * 1000)
            entries = [quarantined(r, why, source.name, now_ms) for r, why in bad]  # type: ignore[arg-type]
            if stay is not None:  # kept once, as counted once
                kept = self.store.quarantined_records(source.name, [e.record for e in entries])
                entries = [e for e in entries if e.record not in kept]
            self.store.add_quarantined(entries)
            log.warning(
                "records quarantined",
                extra={"source": source.name, "records": len(entries), "reason": bad[0][1]},
            )
        if fresh:
            self.store.add_counters(
                Counter({("smswatch_records_total", (source.name, "invalid")): fresh})
            )

    def _ingest_sms(
        self, source: SourceConfig
    ) -> Callable[[Sequence[SmsEvent]], reconcile.Changes]:
        def ingest(events: Sequence[SmsEvent]) -> reconcile.Changes:
            if self.canaries:  # canary reports go to their probe, never to cardholder counters
                events = divert_reports(
                    self.store, source.gateway, events, int(self.clock() * 1000)
                )
            changes = reconcile.ingest_sms(
                list(events),
                source.gateway,
                self.store,
                self.settings,
                self.carriers,
                self.areas,
                code_table(source),
            )
            self._announce_unlisted(source, changes.counters)
            return changes

        return ingest

    def commit_sms(
        self, source: SourceConfig, page: Page[SmsEvent], read_from: str | None = None
    ) -> None:
        """Commit one page of SMS events with its cursor and the decisions it allows.

        `read_from`: the cursor a generic feed's page was read from (see `Stay`)."""
        events = self._timely_events(page.records)

        def finish() -> None:
            self._count_late(source, len(page.records) - len(events))
            self._advance_sms(source, page.next_cursor, page.watermark_ms)

        stay = None if read_from is None else Stay(read_from, not page.next_cursor)
        self._commit(source, events, page.invalid, self._ingest_sms(source), finish, stay)

    def _timely_events(self, events: list[SmsEvent]) -> list[SmsEvent]:
        """The events of messages submitted at or after the prune horizon (the rest is late)."""
        return reconcile.refuse_late(
            events, self.store.prune_horizon_ms(), lambda e: e.submitted_ms
        )

    def _count_late(self, source: SourceConfig, late: int) -> None:
        """Count records refused as older than the prune horizon (inside the transaction)."""
        if late:
            self.store.add_counters(
                Counter({("smswatch_records_total", (source.name, "late")): late})
            )

    def _advance_sms(self, source: SourceConfig, cursor: str, watermark_ms: int) -> None:
        """Move an SMS source's watermark (capped), give up what it passed, decide."""
        self.store.advance_source(source.name, cursor, self.accept_watermark(source, watermark_ms))
        watermark = self.store.source_state(source.name).watermark_ms
        while True:
            expired = reconcile.give_up_messages(
                source.gateway, watermark, self.store, self.settings
            )
            self.store.apply(expired, "", self.now_ms())
            if len(expired.messages) < 100_000:
                break
        oldest = self.store.pending_oldest_ms(source.gateway)
        age = 0.0 if oldest is None else max(0, watermark - oldest) / 1000
        self.store.set_gauge("smswatch_sms_pending_oldest_seconds", (source.gateway,), age)
        self.settle()

    def commit_push(
        self,
        source: SourceConfig,
        events: list[SmsEvent],
        invalid: int,
        provider_ms: int | None = None,
        counters: Counter[Any] | None = None,
    ) -> None:
        """Commit the events of one push (before it is acknowledged), and what they decide.

        A push-only source follows the provider's clock. The push says the provider was heard
        at `provider_ms` (its `Date` header, else the latest report time in it), which closes a
        gap of the exporter's own downtime (`smswatch_unobserved_seconds_total`). The provider
        has pushed everything up to the latest report time in the push (reports come in their
        order, give or take `push.lag`; a batch after an outage is the oldest of a backlog), or
        up to its `Date` when the push is empty (a keep-alive: nothing left to push); the
        source is complete up to that time − `push.lag` (− `give_up_after` for providers that
        report outcomes only). A pulled source's watermark moves with its pages. `counters`
        are added with the push's records (the receiver's own counts).

        The commit is durable (synchronous=FULL) before it returns: the provider forgets what
        it was acknowledged. Pushes that arrive while a commit is in flight are committed
        together in the next transaction (`exporter.group_commit`): one fsync for the group.
        Each push is applied on its own when the group's records fail to apply together, so
        one bad push fails alone; a database error fails every push of the group with the
        same exception. Never called while holding the store's lock (the group's leader needs
        it).
        """
        self.push_commits.submit(Push(source, events, invalid, provider_ms, counters))

    def _commit_pushes(self, take: Callable[[], list[Push]]) -> list[BaseException | None]:
        """Commit a group of pushes in one transaction; the outcome of each (None: committed)."""
        failures: dict[int, BaseException] = {}
        with self.store.transaction():
            pushes = take()
            horizon_ms = self.store.prune_horizon_ms()
            by_source: dict[str, list[int]] = {}
            for i, push in enumerate(pushes):
                by_source.setdefault(push.source.name, []).append(i)
            for indexes in by_source.values():
                source = pushes[indexes[0]].source
                try:
                    with self.store.savepoint():
                        self._apply_pushes(source, [pushes[i] for i in indexes], horizon_ms)
                    continue
                except Exception as exc:
                    if not _isolable(exc):
                        raise
                    log.warning(
                        "pushes failed to apply together, applying them one by one",
                        extra={"source": source.name, "error": f"{type(exc).__name__}: {exc}"},
                    )
                try:
                    with self.store.savepoint():
                        taken: list[Push] = []
                        for i in indexes:
                            try:
                                with self.store.savepoint():
                                    self._apply_push_alone(source, pushes[i], horizon_ms)
                                taken.append(pushes[i])
                            except Exception as exc:
                                if not _isolable(exc):
                                    raise
                                failures[i] = exc
                        if taken:
                            self._finish_pushes(source, taken, horizon_ms)
                except Exception as exc:
                    if not _isolable(exc):
                        raise
                    for i in indexes:
                        failures.setdefault(i, exc)
        return [failures.get(i) for i in range(len(pushes))]

    def _apply_pushes(self, source: SourceConfig, pushes: list[Push], horizon_ms: int) -> None:
        """Apply the pushes of one source together, as one page of their events."""
        good, bad = _storable([e for p in pushes for e in p.timely(horizon_ms)])
        self.store.apply(self._ingest_sms(source)(good), source.name, self.now_ms())
        self._quarantine(source, bad, sum(p.invalid for p in pushes), None)
        self._finish_pushes(source, pushes, horizon_ms)

    def _apply_push_alone(self, source: SourceConfig, push: Push, horizon_ms: int) -> None:
        """Apply one push on its own; records that fail alone are quarantined."""
        good, bad = _storable(push.timely(horizon_ms))
        ingest = self._ingest_sms(source)
        try:
            with self.store.savepoint():
                self.store.apply(ingest(good), source.name, self.now_ms())
        except _UNSTORABLE:
            bad += self._apply_one_by_one(source, good, ingest)
        self._quarantine(source, bad, push.invalid, None)

    def _apply_one_by_one(
        self,
        source: SourceConfig,
        records: Sequence[R],
        ingest: Callable[[Sequence[R]], reconcile.Changes],
    ) -> list[tuple[R, str]]:
        """Apply records one at a time (a savepoint each); those that fail alone, and why."""
        bad: list[tuple[R, str]] = []
        for record in records:
            try:
                with self.store.savepoint():
                    self.store.apply(ingest([record]), source.name, self.now_ms())
            except _UNSTORABLE as exc:
                bad.append((record, f"{type(exc).__name__}: {exc}"))
        return bad

    def _finish_pushes(self, source: SourceConfig, pushes: list[Push], horizon_ms: int) -> None:
        """What a source's pushes tell beyond their records: late ones, the receiver's counts,
        that the provider was heard (a gap of ours closed), then the watermark: the furthest
        the pushes complete, and the decisions it allows."""
        marks: list[int] = []
        heard: list[int] = []
        counted: Counter[Any] = Counter()
        for push in pushes:
            late = len(push.events) - len(push.timely(horizon_ms))
            if late:
                counted[("smswatch_records_total", (source.name, "late"))] += late
            if push.counters:
                counted.update(push.counters)
            if not is_push_only(source):
                continue
            # A `Date` ahead of our clock is heard at most at clock + max_clock_skew, like a
            # watermark: heard as it is, a clock step would hide every later gap of ours.
            provider_ms = push.provider_ms
            heard_ms = None if provider_ms is None else self.accept_watermark(source, provider_ms)
            complete_ms = max((e.status_ms for e in push.events), default=heard_ms)
            if complete_ms is not None:
                heard.append(complete_ms if heard_ms is None else heard_ms)
                marks.append(self._push_watermark(source, complete_ms))
        if counted:
            self.store.add_counters(counted)
        if heard:  # as if heard one after the other: the first closes a gap, the latest stays
            self._hear_push(source, heard[0])
            if len(heard) > 1:
                self._hear_push(source, max(heard[1:]))
        if marks:
            self._advance_sms(source, self.store.source_state(source.name).cursor, max(marks))
        else:
            self.settle()

    def _hear_push(self, source: SourceConfig, provider_ms: int) -> None:
        """The provider was heard at `provider_ms`: close a gap of ours."""
        gap_ms = self.store.hear_push(source.name, provider_ms, int(time.time() * 1000))
        if gap_ms:
            self.store.add_counters(
                Counter({("smswatch_unobserved_seconds_total", (source.name,)): gap_ms / 1000})
            )
            log.warning(
                "push source was not watched: receipts that depend on it become unknown",
                extra={"source": source.name, "unobserved_s": gap_ms / 1000},
            )

    def _push_watermark(self, source: SourceConfig, complete_ms: int) -> int:
        """The watermark of a push source that has pushed everything up to `complete_ms`."""
        assert source.push is not None
        watermark = complete_ms - source.push.lag_ms
        if source.provider in OUTCOME_ONLY_PROVIDERS:
            watermark -= self.settings.give_up_after_ms
        return watermark

    def _announce_unlisted(self, source: SourceConfig, counters: Counter[Any]) -> None:
        """Log a provider code no table knows, once per (code, source), never with a phone:
        a provider's new code is news (issue 12)."""
        for (metric, labels), count in counters.items():
            if metric == UNLISTED_CODES and (source.name, labels[1]) not in self._announced:
                self._announced.add((source.name, labels[1]))
                log.warning(
                    "provider code not in the %s table: counted as code=unlisted",
                    code_table(source).name,
                    extra={"source": source.name, "code": labels[1], "count": count},
                )

    def commit_transactions(
        self, source: SourceConfig, page: Page[Transaction], read_from: str | None = None
    ) -> None:
        """Commit one page of transactions with its cursor and the decisions it allows.

        `read_from`: the cursor a generic feed's page was read from (see `Stay`)."""
        bounds = LabelBounds(source.acquirers, len(source.acquirers))
        default = source.acquirers[0]
        records = [t if t.acquirer else _with_acquirer(t, default) for t in page.records]
        timely = reconcile.refuse_late(records, self.store.prune_horizon_ms(), lambda t: t.txn_ms)

        def ingest(rs: Sequence[Transaction]) -> reconcile.Changes:
            changes = reconcile.ingest_transactions(
                list(rs), bounds, self.store, self.settings, source.name
            )
            self._warn_unjoinable(source, changes.counters)
            return changes

        def finish() -> None:
            self._count_late(source, len(records) - len(timely))
            self.store.advance_source(
                source.name, page.next_cursor, self.accept_watermark(source, page.watermark_ms)
            )
            self.settle()

        stay = None if read_from is None else Stay(read_from, not page.next_cursor)
        self._commit(source, timely, page.invalid, ingest, finish, stay)

    def _warn_unjoinable(self, source: SourceConfig, counters: Counter[Any]) -> None:
        """Warn once per acquirer when transactions come without a join key."""
        for (metric, labels), count in counters.items():
            if metric == "smswatch_transactions_unjoinable_total" and labels not in self._warned:
                self._warned.add(labels)
                log.warning(
                    "transactions without a join key: no SMS can be linked to them "
                    "(see smswatch_transactions_unjoinable_total)",
                    extra={"source": source.name, "acquirer": labels[0], "count": count},
                )

    def commit_terminals(
        self, source: SourceConfig, terminals: list[Terminal], invalid: int, watermark_ms: int
    ) -> None:
        """Commit a full inventory snapshot: history of changes, and the terminal gauge.

        Terminals absent from the snapshot are decommissioned: they leave the gauge (their
        history stays for lookups of past receipts). A terminal this process committed before
        exactly as it is reported now has its row and history stored already: only the others
        go through the inventory (all of them when one is reported twice, so that its rows
        apply in the order given)."""
        bounds = LabelBounds(source.acquirers, len(source.acquirers))
        default = source.acquirers[0]
        terminals = [t if t.acquirer else _terminal_with_acquirer(t, default) for t in terminals]
        calls = 0

        def ingest(ts: Sequence[Terminal]) -> reconcile.Changes:
            nonlocal calls
            calls += 1
            return reconcile.ingest_terminals(
                list(ts), self.store, bounds, watermark_ms, source.name
            )

        with self._inventory_lock:
            known = self._inventory
            seen = self.store.foreign_writes()
            if seen != self._inventory_seen:
                known.clear()  # another process may have written the inventory since
            ids = [t.terminal_id for t in terminals]
            once = len(set(ids)) == len(ids)
            fresh = [t for t in terminals if known.get(t.terminal_id) != (source.name, t)]
            batch = fresh if once else terminals
            refused = unstorable_records(batch)
            if once:  # the terminals left out of the batch were stored as they are
                present = set(ids) - {batch[i].terminal_id for i in refused}
            else:
                present = {t.terminal_id for i, t in enumerate(batch) if i not in refused}
            self._commit(
                source,
                batch,
                invalid,
                ingest,
                lambda: self._finish_terminals(source, present, watermark_ms),
            )
            for terminal_id in [k for k, (s, _) in known.items() if s == source.name]:
                if terminal_id not in present:
                    del known[terminal_id]  # decommissioned
            for t in fresh:
                if once and calls == 1 and t.terminal_id in present:
                    known[t.terminal_id] = (source.name, t)  # applied in one go, as it is
                else:
                    known.pop(t.terminal_id, None)
            self._inventory_seen = self.store.foreign_writes()
            if self._inventory_seen != seen:
                known.clear()  # another process wrote meanwhile: nothing is sure

    def _finish_terminals(self, source: SourceConfig, present: set[str], watermark_ms: int) -> None:
        """Retire the terminals absent from the snapshot, move the inventory's watermark, count
        the terminal gauge again (series written only where they changed), decide."""
        bounds = LabelBounds(source.acquirers, len(source.acquirers))
        self.store.retire_terminals(source.name, present)
        self.store.set_terminals_watermark(source.name, self.accept_watermark(source, watermark_ms))
        counts: Counter[tuple[str, ...]] = Counter()
        for acquirer in source.acquirers:
            for notice in ("enabled", "disabled"):
                for software in ("current", "outdated"):
                    counts[(acquirer, notice, software)] = 0
        for acquirer, enabled, version, n in self.store.terminal_groups(source.name):
            outdated = reconcile.is_outdated(version, self.config.min_software_version)
            counts[
                (
                    bounds(acquirer),
                    "enabled" if enabled else "disabled",
                    "outdated" if outdated else "current",
                )
            ] += n
        self.store.update_gauge("smswatch_pos_terminals", {k: float(v) for k, v in counts.items()})
        self.settle()


def _storable(records: Sequence[R]) -> tuple[Sequence[R], list[tuple[R, str]]]:
    """The records a database can hold, and those it cannot with why (`unstorable_records`)."""
    refused = unstorable_records(records)  # type: ignore[arg-type]
    if not refused:
        return records, []
    good = [r for i, r in enumerate(records) if i not in refused]
    return good, [(records[i], why) for i, why in refused.items()]


def is_push_only(source: SourceConfig) -> bool:
    """An SMS source that is only pushed to, never polled."""
    return source.push_only


def code_table(source: SourceConfig) -> CodeTable:
    """The classification table of a source's provider (Kannel/Jasmin: their `err` dialect,
    always with the SMPP command statuses their refusals carry)."""
    if source.provider in ("kannel", "jasmin"):
        dialect = source.options["error_codes"]
        return TABLES[source.provider if dialect == "cmpp" else f"{source.provider}_{dialect}"]
    return TABLES.get(source.provider, TABLES["smpp"])


def _with_acquirer(t: Transaction, acquirer: str) -> Transaction:
    return t._replace(acquirer=acquirer)


def _terminal_with_acquirer(t: Terminal, acquirer: str) -> Terminal:
    return t._replace(acquirer=acquirer)


#: A backlog's pages share a commit: at most this many, for at most this long (seconds).
BATCH_PAGES = 8
BATCH_SECONDS = 1.0


def _drop(ahead: Future[Any] | None) -> None:
    """Forget a page read ahead: one not started never is; one being read finishes before
    the poll ends (within its deadline) and is discarded, its result or its error alike."""
    if ahead is not None:
        ahead.cancel()


class Poller:
    """Polls one source; APScheduler runs `poll` on an interval, never twice at once."""

    def __init__(
        self,
        source: SourceConfig,
        pipeline: Pipeline,
        stop: threading.Event,
        clock: Callable[[], float] = time.time,
        lease: Lease | None = None,
    ) -> None:
        """`lease`: polled only while this replica holds it, each page committed under its
        fencing token (None: always polled, as by a single exporter)."""
        self.source = source
        self.lease = lease
        self.pipeline = pipeline
        self.health = PollHealth()
        self._running = threading.Lock()
        self.client = SourceClient(source, self._count_error, stop)
        self.clock = clock
        self.adapter: Any = adapters.puller(source) if source.pull else None

    def _count_error(self, kind: str) -> None:
        self.pipeline.store.tally(
            Counter({("smswatch_source_errors_total", (self.source.name, kind)): 1})
        )

    def count_overrun(self) -> None:
        """One scheduled poll skipped or late: the previous one outlasted the interval."""
        self.pipeline.store.tally(
            Counter({("smswatch_source_poll_overruns_total", (self.source.name,)): 1})
        )

    def poll(self) -> None:
        """Drain the feed (until `has_more` is false, the deadline or max pages), if this
        replica holds the source's lease.

        While the state database is down the poll does not start (nothing fetched could be
        committed, and the cursor stays where the last commit put it); a poll it cuts short
        ends there. Neither is a poll of the source: its health and its errors stay as they
        were, and the polls resume by themselves when a commit works again."""
        fence = None if self.lease is None else self.lease.fence()
        if self.lease is not None and fence is None:
            return  # another replica polls this source
        if not self._running.acquire(blocking=False):
            log.warning("previous poll still running, skipped", extra={"source": self.source.name})
            return
        try:
            if not self.pipeline.store.writable():
                log.debug("state database down: poll paused", extra={"source": self.source.name})
                return
            self._poll(fence)
        finally:
            self._running.release()

    def _poll(self, fence: Fence | None) -> None:
        lost = False
        started = time.monotonic()
        deadline = started + self.source.deadline_ms / 1000
        records = 0
        error = ""
        try:
            with self.pipeline.gate.fenced(fence):
                records = self._poll_pages(deadline)
            self.health.up = True
        except LeaseLost as exc:
            lost = True
            log.warning(
                "lease lost: page not committed, poll stopped",
                extra={"source": self.source.name, "reason": str(exc)},
            )
        except SourceError as exc:
            self.health.up = False
            error = exc.kind
            log.warning("poll failed", extra={"source": self.source.name, "error": exc.kind})
        except UNAVAILABLE_ERRORS as exc:  # our database, not the source: the poll did not happen
            self._log_clamps()
            log.warning(
                "poll cut short: state database down",
                extra={"source": self.source.name, "error": type(exc).__name__},
            )
            return
        except Exception as exc:  # a bug must not kill the scheduler thread silently
            self.health.up = False
            error = "internal"
            log.exception("poll crashed", extra={"source": self.source.name})
            _ = exc
        self._log_clamps()
        elapsed = time.monotonic() - started
        self.health.observe(elapsed)
        self.health.last_error = error
        self.health.last_records = records
        try:
            # A push-only source's last success is its last push (`Store.hear_push`).
            ok = not error and self.source.pull
            if not lost:  # the new holder records its own polls
                self.pipeline.store.record_poll(self.source.name, ok, error)
        except UNAVAILABLE_ERRORS as exc:
            log.warning(
                "poll not recorded: state database down",
                extra={"source": self.source.name, "error": type(exc).__name__},
            )
        log.debug(
            "poll done",
            extra={"source": self.source.name, "records": records, "seconds": round(elapsed, 3)},
        )

    def _poll_pages(self, deadline: float) -> int:
        """Fetch and commit the source's pages; returns the records read."""
        records = 0
        if not self.source.pull:
            return 0  # a push-only source moves with its pushes (`commit_push`)
        if self.source.kind == "acquirer" and self.source.terminals_path:
            self._poll_terminals(deadline)
        if self.adapter is not None:
            records = self._drain_adapter(deadline)
        else:
            records = self._drain(deadline)
        return records

    def _log_clamps(self) -> None:
        """One structured line per poll when the source's clock was ahead of ours."""
        count, ahead_ms = self.pipeline.take_clamps(self.source.name)
        if count:
            log.warning(
                "watermark ahead of the exporter's clock: capped at now + max_clock_skew",
                extra={
                    "source": self.source.name,
                    "capped": count,
                    "ahead_s": round(ahead_ms / 1000, 3),
                    "max_clock_skew_s": self.source.max_clock_skew_ms / 1000,
                },
            )

    def _drain(self, deadline: float) -> int:
        """Drain a generic feed, committing each page before fetching the next."""
        source = self.source
        if source.kind == "sms_gateway":
            return self._drain_feed(
                lambda p: parse_sms_page(p, source), self.pipeline.commit_sms, deadline
            )
        return self._drain_feed(
            lambda p: parse_transaction_page(p, source), self.pipeline.commit_transactions, deadline
        )

    def _drain_feed(
        self,
        parse: Callable[[Any], Page[R]],
        commit: Callable[[SourceConfig, Page[R], str], None],
        deadline: float,
    ) -> int:
        """Commit each page before the next one, in feed order, while reading the next page
        during the commit: a backlog drains at the pace of the slower of the two instead of
        their sum (the upstream's latency and the database's work overlap).

        The page read ahead is committed only after its predecessor, from the cursor that
        commit stored; it is dropped unread when the poll ends first (deadline, stop, an
        error, a lost lease), and read again by the next poll.

        Pages of a backlog whose successor is already read when they have committed share
        one database commit (`Store.batch`, each page a savepoint): up to `BATCH_PAGES` pages
        or `BATCH_SECONDS`, never waiting for the upstream with the batch open. What a batch
        holds up (pushes, lease renewals) waits that long at most."""
        source = self.source

        def fetch(cursor: str) -> Page[R]:
            return fetch_page(
                self.client, source.path, source.feed, cursor, source.page_size, parse, deadline
            )

        records = 0
        store = self.pipeline.store
        cursor = store.source_state(source.name).cursor
        with (
            ThreadPoolExecutor(1, thread_name_prefix=f"read-{source.name}") as reader,
            ExitStack() as batch,
        ):
            batched, batch_since = 0, 0.0  # pages in the open batch, since when it is open
            page = fetch(cursor)
            for n in range(1, source.max_pages + 1):
                ahead: Future[Page[R]] | None = None
                if (
                    page.next_cursor
                    and page.has_more
                    and n < source.max_pages
                    and self._on(deadline)
                ):
                    ahead = reader.submit(fetch, page.next_cursor)
                if batched or ahead is not None:  # a backlog: its pages commit together
                    if not batched:
                        batch.enter_context(store.batch())
                        batch_since = time.monotonic()
                    batched += 1
                try:
                    commit(source, page, cursor)  # an empty next_cursor keeps the stored one
                except BaseException:
                    _drop(ahead)
                    raise  # the pages before it in the batch commit, as one by one
                records += len(page.records) + page.invalid
                if batched and (
                    ahead is None
                    or not ahead.done()  # never held open while waiting for the upstream
                    or batched >= BATCH_PAGES
                    or time.monotonic() - batch_since >= BATCH_SECONDS
                ):
                    batch.close()
                    batched = 0
                if not page.next_cursor:
                    log.warning("page without next_cursor: staying", extra={"source": source.name})
                    break
                if ahead is None or not self._on(deadline):
                    _drop(ahead)
                    break
                cursor, page = page.next_cursor, ahead.result()
        return records

    def _on(self, deadline: float) -> bool:
        """Whether the poll may read another page: before its deadline, and not stopping."""
        return time.monotonic() < deadline and not self.client.stop.is_set()

    def _drain_adapter(self, deadline: float) -> int:
        """Commit each page of a provider adapter before it makes its next request."""
        source = self.source
        store = self.pipeline.store
        state = store.source_state(source.name)
        ctx = PullContext(state.cursor, state.watermark_ms, self.pipeline.settings.give_up_after_ms)
        records = 0
        try:
            if source.kind == "sms_gateway":
                consuming = source.provider in adapters.CONSUMING_PROVIDERS
                for sms_page in self.adapter.pages(self.client, ctx, deadline):
                    with store.durable() if consuming else nullcontext():
                        self.pipeline.commit_sms(source, sms_page)
                    records += len(sms_page.records) + sms_page.invalid
            else:
                for txn_page in self.adapter.pages(self.client, ctx, deadline):
                    self.pipeline.commit_transactions(source, txn_page)
                    records += len(txn_page.records) + txn_page.invalid
        except BadPayload as exc:
            raise self.client.fail("bad_payload", str(exc)) from exc
        return records

    def _poll_terminals(self, deadline: float) -> None:
        source = self.source
        if self.adapter is not None:
            try:
                snapshot = self.adapter.terminals(self.client, deadline)
            except BadPayload as exc:
                raise self.client.fail("bad_payload", str(exc)) from exc
            self.pipeline.commit_terminals(source, *snapshot)
            return
        cursor = ""
        terminals: list[Terminal] = []
        invalid = 0
        watermark = -1
        for _ in range(source.max_pages):
            page = fetch_page(
                self.client,
                source.terminals_path,
                source.terminals_feed,
                cursor,
                source.page_size,
                lambda p: parse_terminal_page(p, source),
                deadline,
            )
            terminals.extend(page.records)
            invalid += page.invalid
            watermark = page.watermark_ms if watermark < 0 else min(watermark, page.watermark_ms)
            cursor = page.next_cursor
            if not page.has_more:
                break
        else:
            raise SourceError(source.name, "bad_payload", "terminal inventory exceeds max_pages")
        self.pipeline.commit_terminals(source, terminals, invalid, watermark)

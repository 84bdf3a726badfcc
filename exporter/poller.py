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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from exporter import reconcile
from exporter.catalogue import POLL_BUCKETS_SECONDS
from exporter.classify import TABLES, CodeTable
from exporter.config import OUTCOME_ONLY_PROVIDERS, Config, SourceConfig
from exporter.errors import SourceError
from exporter.reconcile import LabelBounds, Settings
from exporter.records import Page, SmsEvent, Terminal, Transaction
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


class Pipeline:
    """The state that every poller shares: store, settings, label bounds, feed membership."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
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

    def settle(self) -> None:
        """Decide every receipt that all feeds' watermarks have passed (inside a transaction)."""
        watermark = self.store.watermark(self.source_names, self.with_terminals)
        if watermark < 0:
            return
        while True:
            changes = reconcile.decide_receipts(watermark, self.store, self.settings)
            self.store.apply(changes, "")
            if len(changes.receipts) < 100_000:
                break

    def commit_sms(self, source: SourceConfig, page: Page[SmsEvent]) -> None:
        """Commit one page of SMS events with its cursor and the decisions it allows."""
        with self.store.transaction():
            events = self._timely_events(page.records)
            changes = reconcile.ingest_sms(
                events,
                source.gateway,
                self.store,
                self.settings,
                self.carriers,
                self.areas,
                code_table(source),
            )
            changes.records["invalid"] += page.invalid
            changes.records["late"] += len(page.records) - len(events)
            self.store.apply(changes, source.name)
            self.store.advance_source(source.name, page.next_cursor, page.watermark_ms)
            watermark = self.store.source_state(source.name).watermark_ms
            while True:
                expired = reconcile.give_up_messages(
                    source.gateway, watermark, self.store, self.settings
                )
                self.store.apply(expired, "")
                if len(expired.messages) < 100_000:
                    break
            oldest = self.store.pending_oldest_ms(source.gateway)
            age = 0.0 if oldest is None else max(0, watermark - oldest) / 1000
            self.store.set_gauge("smswatch_sms_pending_oldest_seconds", (source.gateway,), age)
            self.settle()

    def _timely_events(self, events: list[SmsEvent]) -> list[SmsEvent]:
        """The events of messages submitted at or after the prune horizon (the rest is late)."""
        return reconcile.refuse_late(
            events, self.store.prune_horizon_ms(), lambda e: e.submitted_ms
        )

    def commit_push(self, source: SourceConfig, events: list[SmsEvent], invalid: int) -> None:
        """Commit the events of one push (before it is acknowledged), and what they decide.

        The source's cursor and watermark stay: a push-only source's watermark moves on its
        own timer (`Poller.poll`), a pulled one's with its pages.
        """
        with self.store.transaction():
            timely = self._timely_events(events)
            changes = reconcile.ingest_sms(
                timely,
                source.gateway,
                self.store,
                self.settings,
                self.carriers,
                self.areas,
                code_table(source),
            )
            changes.records["invalid"] += invalid
            changes.records["late"] += len(events) - len(timely)
            self.store.apply(changes, source.name)
            self.settle()

    def commit_transactions(self, source: SourceConfig, page: Page[Transaction]) -> None:
        """Commit one page of transactions with its cursor and the decisions it allows."""
        bounds = LabelBounds(source.acquirers, len(source.acquirers))
        default = source.acquirers[0]
        records = [t if t.acquirer else _with_acquirer(t, default) for t in page.records]
        with self.store.transaction():
            timely = reconcile.refuse_late(
                records, self.store.prune_horizon_ms(), lambda t: t.txn_ms
            )
            changes = reconcile.ingest_transactions(
                timely, bounds, self.store, self.settings, source.name
            )
            changes.records["invalid"] += page.invalid
            changes.records["late"] += len(records) - len(timely)
            self.store.apply(changes, source.name)
            self.store.advance_source(source.name, page.next_cursor, page.watermark_ms)
            self.settle()

    def commit_terminals(
        self, source: SourceConfig, terminals: list[Terminal], invalid: int, watermark_ms: int
    ) -> None:
        """Commit a full inventory snapshot: history of changes, and the terminal gauge."""
        bounds = LabelBounds(source.acquirers, len(source.acquirers))
        default = source.acquirers[0]
        terminals = [t if t.acquirer else _terminal_with_acquirer(t, default) for t in terminals]
        with self.store.transaction():
            changes = reconcile.ingest_terminals(terminals, self.store, bounds)
            changes.records["invalid"] += invalid
            self.store.apply(changes, source.name)
            self.store.set_terminals_watermark(source.name, watermark_ms)
            counts: Counter[tuple[str, ...]] = Counter()
            for acquirer in source.acquirers:
                for notice in ("enabled", "disabled"):
                    for software in ("current", "outdated"):
                        counts[(acquirer, notice, software)] = 0
            for acquirer, enabled, version in self.store.terminal_rows(source.name):
                outdated = reconcile.is_outdated(version, self.config.min_software_version)
                counts[
                    (
                        bounds(acquirer),
                        "enabled" if enabled else "disabled",
                        "outdated" if outdated else "current",
                    )
                ] += 1
            self._replace_terminal_gauge(source, counts)
            self.settle()

    def _replace_terminal_gauge(
        self, source: SourceConfig, counts: Counter[tuple[str, ...]]
    ) -> None:
        for labels, value in counts.items():
            self.store.set_gauge("smswatch_pos_terminals", labels, float(value))


def code_table(source: SourceConfig) -> CodeTable:
    """The classification table of a source's provider (Kannel/Jasmin: their `err` dialect)."""
    if source.provider == "kannel":
        return TABLES[
            {"cmpp": "smpp"}.get(source.options["error_codes"], source.options["error_codes"])
        ]
    if source.provider == "jasmin" and source.options["error_codes"] != "cmpp":
        return TABLES[source.options["error_codes"]]
    return TABLES.get(source.provider, TABLES["smpp"])


def _with_acquirer(t: Transaction, acquirer: str) -> Transaction:
    return t._replace(acquirer=acquirer)


def _terminal_with_acquirer(t: Terminal, acquirer: str) -> Terminal:
    return t._replace(acquirer=acquirer)


class Poller:
    """Polls one source; APScheduler runs `poll` on an interval, never twice at once."""

    def __init__(
        self,
        source: SourceConfig,
        pipeline: Pipeline,
        stop: threading.Event,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.pipeline = pipeline
        self.health = PollHealth()
        self._running = threading.Lock()
        self.client = SourceClient(source, self._count_error, stop)
        self.clock = clock
        self.adapter: Any = adapters.puller(source) if source.pull else None

    def _count_error(self, kind: str) -> None:
        self.pipeline.store.add_counters(
            Counter({("smswatch_source_errors_total", (self.source.name, kind)): 1})
        )

    def poll(self) -> None:
        """Drain the feed (until `has_more` is false, the deadline or max pages)."""
        if not self._running.acquire(blocking=False):
            log.warning("previous poll still running, skipped", extra={"source": self.source.name})
            return
        started = time.monotonic()
        deadline = started + self.source.deadline_ms / 1000
        records = 0
        error = ""
        try:
            if not self.source.pull:
                records = self._tick_push_only()
            elif self.source.kind == "acquirer" and self.source.terminals_path:
                self._poll_terminals(deadline)
            if self.adapter is not None:
                records = self._drain_adapter(deadline)
            elif self.source.pull:
                records = self._drain(deadline)
            self.health.up = True
        except SourceError as exc:
            self.health.up = False
            error = exc.kind
            log.warning("poll failed", extra={"source": self.source.name, "error": exc.kind})
        except Exception as exc:  # a bug must not kill the scheduler thread silently
            self.health.up = False
            error = "internal"
            log.exception("poll crashed", extra={"source": self.source.name})
            _ = exc
        finally:
            elapsed = time.monotonic() - started
            self.health.observe(elapsed)
            self.health.last_error = error
            self.health.last_records = records
            try:
                self.pipeline.store.record_poll(self.source.name, not error, error)
            finally:
                self._running.release()
        log.debug(
            "poll done",
            extra={"source": self.source.name, "records": records, "seconds": round(elapsed, 3)},
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
        commit: Callable[[SourceConfig, Page[R]], None],
        deadline: float,
    ) -> int:
        source = self.source
        store = self.pipeline.store
        records = 0
        for _ in range(source.max_pages):
            cursor = store.source_state(source.name).cursor
            page = fetch_page(
                self.client, source.path, source.feed, cursor, source.page_size, parse, deadline
            )
            commit(source, page)  # an empty next_cursor keeps the stored one ("stay")
            records += len(page.records) + page.invalid
            if not page.next_cursor:
                log.warning("page without next_cursor: staying", extra={"source": source.name})
                break
            if not page.has_more or time.monotonic() >= deadline or self.client.stop.is_set():
                break
        return records

    def _tick_push_only(self) -> int:
        """A push-only source is complete up to now − lag: move its watermark, decide."""
        assert self.source.push is not None
        watermark = int(self.clock() * 1000) - self.source.push.lag_ms
        if self.source.provider in OUTCOME_ONLY_PROVIDERS:
            watermark -= self.pipeline.settings.give_up_after_ms
        self.pipeline.commit_sms(self.source, Page([], 0, "", False, watermark))
        return 0

    def _drain_adapter(self, deadline: float) -> int:
        """Commit each page of a provider adapter before it makes its next request."""
        source = self.source
        store = self.pipeline.store
        state = store.source_state(source.name)
        ctx = PullContext(state.cursor, state.watermark_ms, self.pipeline.settings.give_up_after_ms)
        records = 0
        try:
            if source.kind == "sms_gateway":
                for sms_page in self.adapter.pages(self.client, ctx, deadline):
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

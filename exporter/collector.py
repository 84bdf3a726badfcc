"""The custom collector: the only module that speaks prometheus-client.

`collect()` reads the committed state (one read transaction) and the pollers' health, so a
scrape never waits on a bank API. Every configured gateway, acquirer and source is exported
from the start with zeros, so no series is absent and rates work from the first failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import product
from typing import Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter import __version__
from exporter.accounts.checker import AccountHealth
from exporter.accounts.readings import SENDER_STATES
from exporter.catalogue import (
    BUCKETS_SECONDS,
    METRICS,
    METRICS_BY_NAME,
    POLL_BUCKETS_SECONDS,
    PROBE_FAILURE_CAUSES,
    PUSH_RESULTS,
    RECORD_RESULTS,
    REPORT_DELIVERY_RESULTS,
    SOURCE_ERRORS,
    TRANSACTION_RESULTS,
)
from exporter.classify import NO_CODE_LABELS, UNLISTED
from exporter.config import Config
from exporter.poller import PollHealth
from exporter.snapshots import LastSnapshot
from exporter.state_health import COMMIT_BUCKETS_SECONDS
from exporter.store import SourceState, Store, decode_labels

#: Series about the replica itself: every replica exports them.
REPLICA_SERIES = frozenset(
    {
        "smswatch_build_info",
        "smswatch_source_leader",
        "smswatch_primary",
        "smswatch_lease_changes_total",
        "smswatch_state_up",
        "smswatch_state_commit_duration_seconds",
    }
)
#: Per-source series kept in this process's memory only: exported by the source's poller.
#: (smswatch_source_up comes from the primary, as the other source series it is joined with:
#: from the poller's memory where the primary polls the source, else as last committed.)
POLLER_SERIES = frozenset({"smswatch_source_poll_seconds"})
_LEASE_CHANGES = ("acquired", "lost", "released")


class Leadership(Protocol):
    """What the collector asks the lease keeper (exporter/leases.py) at each scrape."""

    @property
    def running(self) -> bool:
        """Whether leases are kept (before its start, an exporter exports everything)."""

    def is_primary(self) -> bool:
        """Whether this replica holds the primary lease now."""

    def polls(self, source: str) -> bool:
        """Whether this replica polls `source` now."""

    def lease_names(self) -> list[str]:
        """Every lease this replica takes part in."""

    def changes(self) -> dict[tuple[str, str], int]:
        """(lease, change) → count, in this process."""


#: Failure (status, cause) pairs exported with zeros for every gateway/carrier/area.
_ZERO_MESSAGE_SERIES = [("delivered", "none"), ("unknown", "unknown")] + [
    (status, cause)
    for status in ("undelivered", "expired", "rejected")
    for cause in ("gateway", "invalid_number", "unreachable", "throttled", "filtered")
]
#: Receipt (outcome, cause) pairs exported with zeros for every acquirer.
_ZERO_RECEIPT_SERIES = [
    ("delivered", "none"),
    ("missing", "terminal_config"),
    ("missing", "integration"),
    ("unknown", "unknown"),
] + [
    ("failed", cause)
    for cause in (
        "gateway",
        "invalid_number",
        "unreachable",
        "integration",
        "throttled",
        "filtered",
        "unknown",
    )
]

Labels = tuple[str, ...]


class SmswatchCollector(Collector):
    """Builds the whole metric catalogue from the store and the pollers' health."""

    def __init__(
        self,
        config: Config,
        store: Store,
        health: Mapping[str, PollHealth],
        clock: Callable[[], float] = time.time,
        accounts: Mapping[str, Callable[[], AccountHealth]] | None = None,
        leadership: Leadership | None = None,
        snapshots: LastSnapshot | None = None,
    ) -> None:
        """`accounts`: gateway → the latest health of its provider account check.
        `leadership`: with replicas, which leases this one holds: the shared state's series
        only on the primary, a source's in-memory series only on its poller (None: one
        exporter, everything exported). `snapshots`: how the committed state is read
        (default: from `store`, the last snapshot served while the database is down)."""
        self.leadership = leadership
        self._serving_shared = False  # `_serves_shared`
        self.config = config
        self.store = store
        self.health = health
        self.clock = clock
        self.accounts = accounts or {}
        self.snapshots = snapshots or LastSnapshot(store)

    def describe(self) -> Iterator[Metric]:
        """Metric families without samples: registering never touches the store or an API."""
        for spec in METRICS:
            yield _family(spec.name, spec.labels)

    def collect(self) -> Iterator[Metric]:
        """Every metric of the catalogue, as committed; with replicas, each series from one
        replica only (the leases are judged now, on their local deadlines)."""
        leadership = self.leadership if self.leadership and self.leadership.running else None
        if leadership is None:
            yield from self._all()
            yield from self._lease_metrics()
            return
        families = list(self._all())  # reads the state (or serves the last read) first
        primary = self._serves_shared(leadership.is_primary())
        for family in families:
            name = f"{family.name}_total" if family.type == "counter" else family.name
            if name in REPLICA_SERIES:
                pass
            elif name in POLLER_SERIES:
                family.samples = [
                    s for s in family.samples if leadership.polls(s.labels.get("source", ""))
                ]
            elif not primary:
                family.samples = []
            yield family
        yield from self._lease_metrics()

    def _serves_shared(self, primary: bool) -> bool:
        """Whether this replica exports the shared state's series now: while it is the primary;
        and, once the state database went down while it was, until the database answers it
        again. Nobody can take the primary over through a database that is down, and the last
        numbers stay served (`smswatch_state_up 0`) instead of vanishing when the lease runs
        out locally. (A replica cut off from a database the others still reach serves its
        last numbers beside the new primary's until it reaches it again: SmswatchStateDown
        pages for it meanwhile.)"""
        if self.store.health.up:
            self._serving_shared = primary
        else:
            self._serving_shared = self._serving_shared or primary
        return self._serving_shared

    def _lease_metrics(self) -> Iterator[Metric]:
        """Which sources this replica polls, whether it is the primary, its lease changes."""
        leadership = self.leadership if self.leadership and self.leadership.running else None
        polled = [s.name for s in self.config.sources if not s.push_only]
        leader = _family("smswatch_source_leader", ("source",))
        assert isinstance(leader, GaugeMetricFamily)
        for name in polled:
            on = leadership is None or leadership.polls(name)
            leader.add_metric([name], 1.0 if on else 0.0)
        yield leader
        primary = _family("smswatch_primary", ())
        assert isinstance(primary, GaugeMetricFamily)
        primary.add_metric([], 1.0 if leadership is None or leadership.is_primary() else 0.0)
        yield primary
        names = (
            leadership.lease_names()
            if leadership is not None
            else ["primary", *(f"source:{n}" for n in polled)]
        )
        changes: dict[str, dict[Labels, float]] = {
            "smswatch_lease_changes_total": {
                k: float(v) for k, v in (leadership.changes() if leadership else {}).items()
            }
        }
        yield self._counter("smswatch_lease_changes_total", changes, product(names, _LEASE_CHANGES))

    def _all(self) -> Iterator[Metric]:
        """Every metric of the catalogue but the lease ones, as committed (as last read while
        the state database is down; only the process's own metrics before the state was ever
        read)."""
        snapshot = self.snapshots.read()
        if snapshot is None:
            yield self._build_info()
            yield from self._state_metrics()
            return
        counters_rows, gauge_rows, sources = snapshot
        counters: dict[str, dict[Labels, float]] = {}
        for metric, labels, value in counters_rows:
            counters.setdefault(metric, {})[decode_labels(labels)] = value
        gauges: dict[str, dict[Labels, float]] = {}
        for metric, labels, value in gauge_rows:
            gauges.setdefault(metric, {})[decode_labels(labels)] = value
        cfg = self.config
        carriers = cfg.carriers or ()
        areas = cfg.areas or ()
        sources_by_name = {s.name: s for s in sources}
        names = [s.name for s in cfg.sources]

        yield self._counter(
            "smswatch_sms_submitted_total",
            counters,
            product(cfg.gateways, carriers, areas),
        )
        yield self._counter(
            "smswatch_sms_messages_total",
            counters,
            (
                (g, c, a, s, cause)
                for g, c, a in product(cfg.gateways, carriers, areas)
                for s, cause in _ZERO_MESSAGE_SERIES
            ),
        )
        yield self._histogram(
            "smswatch_sms_delivery_seconds", counters, product(cfg.gateways, carriers)
        )
        yield self._gauge("smswatch_sms_pending", gauges, ((g,) for g in cfg.gateways))
        yield self._gauge(
            "smswatch_sms_pending_oldest_seconds", gauges, ((g,) for g in cfg.gateways)
        )
        yield self._counter(
            "smswatch_pos_transactions_total",
            counters,
            product(cfg.acquirers, TRANSACTION_RESULTS),
        )
        yield self._counter(
            "smswatch_receipts_total",
            counters,
            ((a, o, c) for a in cfg.acquirers for o, c in _ZERO_RECEIPT_SERIES),
        )
        yield self._histogram(
            "smswatch_receipt_notify_seconds", counters, ((a,) for a in cfg.acquirers)
        )
        yield self._gauge("smswatch_receipts_awaiting_sms", gauges, ((a,) for a in cfg.acquirers))
        yield self._gauge(
            "smswatch_pos_terminals",
            gauges,
            product(
                [a for s in cfg.sources if s.terminals_path for a in s.acquirers],
                ("enabled", "disabled"),
                ("current", "outdated"),
            ),
        )

        up = _family("smswatch_source_up", ("source",))
        last_success = _family("smswatch_source_last_success_timestamp_seconds", ("source",))
        lag = _family("smswatch_source_lag_seconds", ("source",))
        expected_lag = _family("smswatch_source_expected_lag_seconds", ("source",))
        push_only = _family("smswatch_source_push_only", ("source",))
        poll = HistogramMetricFamily(
            "smswatch_source_poll_seconds",
            METRICS_BY_NAME["smswatch_source_poll_seconds"].help,
            labels=["source"],
        )
        now = self.clock()
        for source in cfg.sources:
            health = self.health.get(source.name) or PollHealth()
            state = sources_by_name.get(source.name)
            assert isinstance(up, GaugeMetricFamily)
            leadership = self.leadership
            if leadership is None or not leadership.running or leadership.polls(source.name):
                up.add_metric([source.name], 1.0 if health.up else 0.0)
            else:  # another replica polls it: its last poll as committed
                polled_ok = state is not None and state.last_poll_ms is not None
                up.add_metric([source.name], 1.0 if polled_ok and not state.last_error else 0.0)  # type: ignore[union-attr]
            assert isinstance(expected_lag, GaugeMetricFamily)
            expected_lag.add_metric(
                [source.name], source.expected_lag_ms(cfg.give_up_after_ms) / 1000
            )
            assert isinstance(push_only, GaugeMetricFamily)
            push_only.add_metric([source.name], 1.0 if source.push_only else 0.0)
            if state is not None and state.last_success_ms is not None:
                assert isinstance(last_success, GaugeMetricFamily)
                last_success.add_metric([source.name], state.last_success_ms / 1000)
            if state is not None and state.watermark_ms >= 0:
                marks = [state.watermark_ms]
                if source.terminals_path and state.terminals_watermark_ms is not None:
                    marks.append(state.terminals_watermark_ms)
                assert isinstance(lag, GaugeMetricFamily)
                lag.add_metric([source.name], now - min(marks) / 1000)  # < 0: source ahead
            buckets = _cumulative(POLL_BUCKETS_SECONDS, health.duration_buckets)
            poll.add_metric([source.name], buckets, health.duration_sum_s)
        yield up
        yield poll
        yield self._counter("smswatch_source_poll_overruns_total", counters, ((n,) for n in names))
        yield self._counter("smswatch_source_errors_total", counters, product(names, SOURCE_ERRORS))
        yield last_success
        yield lag
        yield expected_lag
        yield push_only
        yield self._counter("smswatch_records_total", counters, product(names, RECORD_RESULTS))
        yield from self._time_metrics(counters, sources_by_name, now)
        yield self._counter(
            "smswatch_sms_ambiguous_total",
            counters,
            product(cfg.gateways, (*NO_CODE_LABELS.values(), UNLISTED)),
        )
        yield self._counter(
            "smswatch_transactions_unjoinable_total", counters, ((a,) for a in cfg.acquirers)
        )
        yield self._counter(
            "smswatch_push_requests_total",
            counters,
            product([s.name for s in cfg.sources if s.push is not None], PUSH_RESULTS),
        )
        yield self._counter(
            "smswatch_receipt_notify_clamped_total", counters, ((a,) for a in cfg.acquirers)
        )
        mailed = cfg.reports.mailed_schedules() if cfg.reports is not None else ()
        yield self._counter(
            "smswatch_report_deliveries_total", counters, product(mailed, REPORT_DELIVERY_RESULTS)
        )
        yield from self._account_metrics()
        yield self._build_info()
        yield from self._probe_metrics(counters, gauges)
        yield from self._state_metrics()

    def _build_info(self) -> Metric:
        info = _family("smswatch_build_info", ("version",))
        assert isinstance(info, GaugeMetricFamily)
        info.add_metric([__version__], 1.0)
        return info

    def _state_metrics(self) -> Iterator[Metric]:
        """The state database's health as this process sees it (process-local)."""
        health = self.store.health
        up = _family("smswatch_state_up", ())
        assert isinstance(up, GaugeMetricFamily)
        up.add_metric([], 1.0 if health.up else 0.0)
        yield up
        name = "smswatch_state_commit_duration_seconds"
        commits = HistogramMetricFamily(name, METRICS_BY_NAME[name].help, labels=[])
        counts, total = health.commit_histogram()
        commits.add_metric([], _cumulative(COMMIT_BUCKETS_SECONDS, counts), total)
        yield commits

    def _probe_metrics(
        self, counters: dict[str, dict[Labels, float]], gauges: dict[str, dict[Labels, float]]
    ) -> Iterator[Metric]:
        """Canary probes: every configured gateway × test handset's carrier and area with zeros."""
        probes = self.config.probes
        series = sorted(
            {(p.gateway, n.carrier, n.area) for p in probes.gateways for n in p.numbers}
            if probes is not None
            else set()
        )
        for name in (
            "smswatch_probe_sent_total",
            "smswatch_probe_delivered_total",
            "smswatch_probe_received_total",
        ):
            yield self._counter(name, counters, series)
        yield self._histogram("smswatch_probe_end_to_end_seconds", counters, series)
        yield self._counter("smswatch_probe_fake_reports_total", counters, series)
        yield self._counter(
            "smswatch_probe_failures_total",
            counters,
            ((*s, cause) for s in series for cause in PROBE_FAILURE_CAUSES),
        )
        yield self._gauge("smswatch_probe_last_sent_timestamp_seconds", gauges, ())
        interval = _family("smswatch_probe_interval_seconds", ("gateway",))
        assert isinstance(interval, GaugeMetricFamily)
        for probe in probes.gateways if probes is not None else ():
            interval.add_metric([probe.gateway], probe.interval_ms / 1000)
        yield interval

    def _time_metrics(
        self,
        counters: dict[str, dict[Labels, float]],
        states: Mapping[str, SourceState],
        now: float,
    ) -> Iterator[Metric]:
        """Clock and observation health: capped watermarks, unobserved time, and which source
        holds receipt decisions back (DESIGN.md "Event time, not wall time")."""
        cfg = self.config
        names = [s.name for s in cfg.sources]
        yield self._counter(
            "smswatch_source_watermark_clamped_total", counters, ((n,) for n in names)
        )
        yield self._counter(
            "smswatch_unobserved_seconds_total",
            counters,
            ((s.name,) for s in cfg.sources if s.push is not None),
        )
        yield self._counter(
            "smswatch_receipts_unobserved_total", counters, ((a,) for a in cfg.acquirers)
        )
        marks: dict[str, int] = {}
        for source in cfg.sources:
            state = states.get(source.name)
            mark = -1 if state is None else state.watermark_ms
            if source.terminals_path:
                terminals = -1 if state is None else state.terminals_watermark_ms
                mark = min(mark, -1 if terminals is None else terminals)
            marks[source.name] = mark
        decision = min(marks.values()) if marks else -1
        holding = _family("smswatch_source_holding_decisions", ("source",))
        assert isinstance(holding, GaugeMetricFamily)
        for name in names:
            holding.add_metric([name], 1.0 if marks[name] == decision else 0.0)
        yield holding
        lag = _family("smswatch_decisions_lag_seconds", ())
        if decision >= 0:
            assert isinstance(lag, GaugeMetricFamily)
            lag.add_metric([], now - decision / 1000)
        yield lag

    def _account_metrics(self) -> Iterator[Metric]:
        """Provider account health: the latest check of each gateway with `account:`."""
        names = (
            "smswatch_account_balance",
            "smswatch_account_quota_remaining",
            "smswatch_account_quota_limit",
            "smswatch_sms_sender_approved",
            "smswatch_sms_sender_state",
            "smswatch_account_up",
            "smswatch_account_last_success_timestamp_seconds",
        )
        gauges: dict[str, dict[Labels, float]] = {name: {} for name in names}
        errors: dict[Labels, float] = {}
        for gateway in sorted(self.accounts):
            health = self.accounts[gateway]()
            gauges["smswatch_account_up"][(gateway,)] = 1.0 if health.up else 0.0
            if health.last_success_s is not None:
                last = gauges["smswatch_account_last_success_timestamp_seconds"]
                last[(gateway,)] = health.last_success_s
            for kind, count in health.errors.items():
                errors[(gateway, kind)] = float(count)
            reading = health.reading
            if reading.balance is not None:
                balance = gauges["smswatch_account_balance"]
                balance[(gateway, reading.balance.currency)] = reading.balance.amount
            if reading.quota is not None:
                gauges["smswatch_account_quota_remaining"][(gateway,)] = reading.quota.remaining
                gauges["smswatch_account_quota_limit"][(gateway,)] = reading.quota.total
            for sender in reading.senders or ():
                key = (gateway, sender.kind, sender.name)
                gauges["smswatch_sms_sender_approved"][key] = 1.0 if sender.approved else 0.0
                for state in SENDER_STATES:
                    on = 1.0 if state == sender.state else 0.0
                    gauges["smswatch_sms_sender_state"][(*key, state)] = on
        for name in names[:5]:
            yield self._gauge(name, gauges, ())
        yield self._gauge("smswatch_account_up", gauges, ())
        yield self._counter(
            "smswatch_account_check_errors_total",
            {"smswatch_account_check_errors_total": errors},
            product(sorted(self.accounts), SOURCE_ERRORS),
        )
        yield self._gauge("smswatch_account_last_success_timestamp_seconds", gauges, ())

    # ------------------------------------------------------------------ builders

    def _counter(
        self, name: str, counters: dict[str, dict[Labels, float]], zeros: Iterable[Labels]
    ) -> Metric:
        return self._series(name, counters, zeros)

    def _gauge(
        self, name: str, gauges: dict[str, dict[Labels, float]], zeros: Iterable[Labels]
    ) -> Metric:
        return self._series(name, gauges, zeros)

    def _series(
        self, name: str, stored: dict[str, dict[Labels, float]], zeros: Iterable[Labels]
    ) -> Metric:
        """A counter or gauge family: stored values over zeros for every configured series."""
        family = _family(name, METRICS_BY_NAME[name].labels)
        values = {tuple(z): 0.0 for z in zeros}
        values.update(stored.get(name, {}))
        for labels in sorted(values):
            family.add_metric(list(labels), values[labels])  # type: ignore[attr-defined]
        return family

    def _histogram(
        self, name: str, counters: dict[str, dict[Labels, float]], zeros: Iterable[Labels]
    ) -> Metric:
        spec = METRICS_BY_NAME[name]
        family = HistogramMetricFamily(name, spec.help, labels=list(spec.labels))
        per_bucket: dict[Labels, list[float]] = {
            tuple(z): [0.0] * (len(BUCKETS_SECONDS) + 1) for z in zeros
        }
        for labels, value in counters.get(f"{name}:bucket", {}).items():
            key, index = labels[:-1], int(labels[-1])
            per_bucket.setdefault(key, [0.0] * (len(BUCKETS_SECONDS) + 1))[index] += value
        sums = counters.get(f"{name}:sum_ms", {})
        for labels in sorted(per_bucket):
            buckets = _cumulative(BUCKETS_SECONDS, per_bucket[labels])
            family.add_metric(list(labels), buckets, sums.get(labels, 0.0) / 1000)
        return family


def _cumulative(bounds: Sequence[float], counts: Sequence[float]) -> list[tuple[str, float]]:
    """Per-bucket counts (+Inf last) as a histogram's cumulative `(le, count)` buckets."""
    cumulative = 0.0
    buckets = []
    for bound, count in zip([*bounds, float("inf")], counts, strict=True):
        cumulative += count
        buckets.append((_le(bound), cumulative))
    return buckets


def _le(bound: float) -> str:
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


def _family(name: str, labels: Iterable[str]) -> Metric:
    spec = METRICS_BY_NAME[name]
    if spec.kind == "counter":
        return CounterMetricFamily(name, spec.help, labels=list(labels))
    if spec.kind == "histogram":
        return HistogramMetricFamily(name, spec.help, labels=list(labels))
    return GaugeMetricFamily(name, spec.help, labels=list(labels))

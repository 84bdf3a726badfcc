"""Every figure of a report, read from Prometheus for one period: the report's data model.

Counts are exact counter increases (`counters.exact_increases`) summed over the period's chart
buckets, so the buckets add up to the totals; latency comes from histogram bucket increases
(`latency`); nothing is an average of ratios. Ratios are kept as numerator and denominator.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from exporter.catalogue import BUCKETS_SECONDS, CAUSE_NONE, CAUSES, METRICS_BY_NAME
from exporter.errors import ConfigError, ReportError
from exporter.objectives import BANK_SIDE_CAUSES, CARDHOLDER_SIDE_CAUSES
from exporter.reports.completeness import Completeness, gather_completeness
from exporter.reports.counters import Increases, exact_increases, selector
from exporter.reports.incidents import IncidentSummary, gather_incidents
from exporter.reports.latency import LatencySummary, summary_from_buckets
from exporter.reports.objectives import Objectives
from exporter.reports.periods import Period, bucket_boundaries, previous_period
from exporter.reports.prometheus import PrometheusClient, optional

log = logging.getLogger(__name__)

ALL = "*"  # the key of an "all …" row


def metric(name: str) -> str:
    """`name`, checked against the metric catalogue (the contract)."""
    base = name.removesuffix("_bucket")
    if base not in METRICS_BY_NAME:
        raise KeyError(f"{base} is not in the metric catalogue")
    return name


def ratio(numerator: int, denominator: int) -> Fraction | None:
    """numerator ÷ denominator, exactly; None when there is nothing to divide."""
    return Fraction(numerator, denominator) if denominator else None


@dataclass(frozen=True)
class Delivery:
    """Outcomes of one row (a gateway, carrier or acquirer) over the period.

    `ratio` is the overall delivery rate (shown, not judged); `sli` is the share the SLO
    judges, counted as the recording rules count it (alerts/rules/slo-*.yaml): events are all
    final outcomes except the cardholder-side causes, bad events those with a bank-side cause.
    """

    key: str
    by_outcome: Mapping[str, int]  # status (SMS) or outcome (receipts) → count
    by_cause: Mapping[str, int] = field(default_factory=dict)  # cause → count (all outcomes)

    @property
    def delivered(self) -> int:
        return self.by_outcome.get("delivered", 0)

    @property
    def total(self) -> int:
        return sum(self.by_outcome.values())

    @property
    def ratio(self) -> Fraction | None:
        return ratio(self.delivered, self.total)

    @property
    def cardholder_side(self) -> int:
        """Outcomes with a cause on the cardholder's side: neither good nor bad for the SLO."""
        return sum(self.by_cause.get(cause, 0) for cause in CARDHOLDER_SIDE_CAUSES)

    @property
    def cardholder_side_share(self) -> Fraction | None:
        """Cardholder-side outcomes ÷ all final outcomes."""
        return ratio(self.cardholder_side, self.total)

    @property
    def bank_side(self) -> int:
        """Outcomes with a bank-side cause: the SLO's bad events."""
        return sum(self.by_cause.get(cause, 0) for cause in BANK_SIDE_CAUSES)

    @property
    def sli_events(self) -> int:
        """The SLO's events: all final outcomes less the cardholder-side ones."""
        return self.total - self.cardholder_side

    @property
    def sli(self) -> Fraction | None:
        """1 − bank-side ÷ SLO events: what the objective judges."""
        return ratio(self.sli_events - self.bank_side, self.sli_events)


@dataclass(frozen=True)
class CauseRow:
    """Receipts not notified and failed SMS for one cause, this period and the previous one."""

    cause: str
    receipts: int
    receipts_previous: int
    messages: int
    messages_previous: int


@dataclass(frozen=True)
class TerminalRow:
    """Terminal inventory of one acquirer at the period end, and its receipts without SMS."""

    acquirer: str
    total: int
    notice_disabled: int
    outdated: int
    missing_terminal_config: int


@dataclass(frozen=True)
class Bucket:
    """One chart bucket [start, end) of the period."""

    start: datetime
    end: datetime
    receipts: int
    receipts_delivered: int
    messages: int
    messages_delivered: int
    not_notified_by_cause: Mapping[str, int]
    #: The SLOs' events and bad events in the bucket (see `Delivery.sli`).
    receipts_sli_events: int = 0
    receipts_bank_side: int = 0
    messages_sli_events: int = 0
    messages_bank_side: int = 0

    @property
    def receipts_sli(self) -> Fraction | None:
        return ratio(self.receipts_sli_events - self.receipts_bank_side, self.receipts_sli_events)

    @property
    def messages_sli(self) -> Fraction | None:
        return ratio(self.messages_sli_events - self.messages_bank_side, self.messages_sli_events)


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, in numbers."""

    period: Period
    previous: Period
    objectives: Objectives
    generated_at: datetime
    prometheus_url: str
    prometheus_version: str
    prometheus_retention: str
    matchers: str
    exporter_versions: tuple[str, ...]
    transactions: Mapping[str, int]
    receipts_by_outcome: Mapping[str, int]
    sms_submitted: int
    by_acquirer: tuple[Delivery, ...]
    by_gateway: tuple[Delivery, ...]
    by_carrier: tuple[Delivery, ...]
    notify_latency: tuple[LatencySummary, ...]  # "*" first, then per acquirer
    delivery_latency: tuple[LatencySummary, ...]  # "*" first, then per gateway
    causes: tuple[CauseRow, ...]
    terminals: tuple[TerminalRow, ...]
    terminals_seen: bool
    incidents: IncidentSummary
    completeness: Completeness
    buckets: tuple[Bucket, ...] = field(default_factory=tuple)

    @property
    def receipts(self) -> int:
        return sum(self.receipts_by_outcome.values())

    @property
    def receipts_with_sms(self) -> int:
        return self.receipts - self.receipts_by_outcome.get("missing", 0)

    @property
    def coverage(self) -> Fraction | None:
        return ratio(self.receipts_with_sms, self.receipts)


def _not_delivered(labels: Mapping[str, str]) -> bool:
    """A receipt or message whose outcome is not `delivered` (it has a cause)."""
    return labels.get("outcome", labels.get("status")) != "delivered"


def _int(value: float) -> int:
    return round(value)


def gather(
    client: PrometheusClient,
    period: Period,
    objectives: Objectives,
    *,
    matchers: str = "",
    alert_matchers: str = "",
    now: datetime,
) -> ReportData:
    """Read every figure of the report on `period` from Prometheus."""
    if objectives.latency_seconds not in BUCKETS_SECONDS:
        raise ConfigError(
            f"{objectives.latency_seconds} s is not a histogram bucket bound "
            f"({', '.join(map(str, BUCKETS_SECONDS))})",
            path="objectives.latency_seconds",
        )
    bounds = bucket_boundaries(period)
    times = [moment.timestamp() for moment in bounds]
    previous = previous_period(period)
    prev_times = [previous.start.timestamp(), previous.end.timestamp()]

    def counter(name: str, span: list[float] = times) -> Increases:
        return exact_increases(client, selector(metric(name), matchers), span)

    transactions = counter("smswatch_pos_transactions_total")
    receipts = counter("smswatch_receipts_total")
    submitted = counter("smswatch_sms_submitted_total")
    messages = counter("smswatch_sms_messages_total")
    notify = counter("smswatch_receipt_notify_seconds_bucket")
    delivery = counter("smswatch_sms_delivery_seconds_bucket")
    if not any(c.series for c in (transactions, receipts, submitted, messages)):
        raise ReportError(
            f"no smswatch data in the period {period.local_start:%Y-%m-%d %H:%M} – "
            f"{period.local_end:%Y-%m-%d %H:%M} {period.zone.key} at {client.url}"
            + (f" (series matching {matchers})" if matchers else "")
        )
    receipts_prev = counter("smswatch_receipts_total", prev_times)
    messages_prev = counter("smswatch_sms_messages_total", prev_times)

    receipts_by_cause = receipts.totals_by(("cause",), _not_delivered)
    receipts_prev_by_cause = receipts_prev.totals_by(("cause",), _not_delivered)
    messages_by_cause = messages.totals_by(("cause",), _not_delivered)
    messages_prev_by_cause = messages_prev.totals_by(("cause",), _not_delivered)
    seen = {
        k[0]
        for k in (
            *receipts_by_cause,
            *messages_by_cause,
            *receipts_prev_by_cause,
            *messages_prev_by_cause,
        )
    } - {CAUSE_NONE}
    cause_order = [*CAUSES, *sorted(seen - set(CAUSES))]
    causes = tuple(
        CauseRow(
            cause,
            _int(receipts_by_cause.get((cause,), 0)),
            _int(receipts_prev_by_cause.get((cause,), 0)),
            _int(messages_by_cause.get((cause,), 0)),
            _int(messages_prev_by_cause.get((cause,), 0)),
        )
        for cause in cause_order
    )

    terminals, terminals_seen = _terminals(client, period, matchers, receipts)
    incidents = gather_incidents(client, period, alert_matchers)
    counted = (transactions, receipts, submitted, messages, notify, delivery)
    completeness = gather_completeness(
        client,
        period,
        matchers,
        counter_resets=sum(c.resets for c in counted),
        counter_gaps=sum(c.gaps for c in counted),
    )
    build = optional(client.build_info) or {}
    runtime = optional(client.runtime_info) or {}
    versions = client.label_values(
        f"last_over_time({selector(metric('smswatch_build_info'), matchers)}"
        f"[{int(period.seconds * 1000)}ms])",
        period.end.timestamp(),
        "version",
    )

    per_bucket_receipts = receipts.sum_by(("outcome", "cause"))
    per_bucket_messages = messages.sum_by(("status",))
    receipts_per_cause = receipts.sum_by(("cause",))
    messages_per_cause = messages.sum_by(("cause",))
    buckets = []
    for index in range(len(bounds) - 1):
        by_cause: dict[str, int] = {}
        total = delivered = 0
        for (outcome, cause), values in per_bucket_receipts.items():
            count = _int(values[index])
            total += count
            if outcome == "delivered":
                delivered += count
            elif count:
                by_cause[cause] = by_cause.get(cause, 0) + count
        sms_total = sum(_int(v[index]) for v in per_bucket_messages.values())
        sms_delivered = _int(per_bucket_messages.get(("delivered",), [0.0] * len(times))[index])
        buckets.append(
            Bucket(
                bounds[index],
                bounds[index + 1],
                total,
                delivered,
                sms_total,
                sms_delivered,
                by_cause,
                *_sli_counts(receipts_per_cause, index),
                *_sli_counts(messages_per_cause, index),
            )
        )

    return ReportData(
        period=period,
        previous=previous,
        objectives=objectives,
        generated_at=now,
        prometheus_url=client.url,
        prometheus_version=str(build.get("version", "")),
        prometheus_retention=str(runtime.get("storageRetention", "")),
        matchers=matchers,
        exporter_versions=tuple(versions),
        transactions={
            k[0]: _int(v) for k, v in sorted(transactions.totals_by(("result",)).items())
        },
        receipts_by_outcome={
            k[0]: _int(v) for k, v in sorted(receipts.totals_by(("outcome",)).items())
        },
        sms_submitted=_int(submitted.total()),
        by_acquirer=_deliveries(receipts, "acquirer", "outcome"),
        by_gateway=_deliveries(messages, "gateway", "status"),
        by_carrier=_deliveries(messages, "carrier", "status"),
        notify_latency=_latencies(notify, "acquirer"),
        delivery_latency=_latencies(delivery, "gateway"),
        causes=causes,
        terminals=terminals,
        terminals_seen=terminals_seen,
        incidents=incidents,
        completeness=completeness,
        buckets=tuple(buckets),
    )


def _sli_counts(per_cause: Mapping[tuple[str, ...], list[float]], index: int) -> tuple[int, int]:
    """(SLO events, bank-side events) of one chart bucket, from counts per cause."""
    counts = {key[0]: _int(values[index]) for key, values in per_cause.items()}
    cardholder = sum(counts.get(cause, 0) for cause in CARDHOLDER_SIDE_CAUSES)
    return sum(counts.values()) - cardholder, sum(
        counts.get(cause, 0) for cause in BANK_SIDE_CAUSES
    )


def _deliveries(counts: Increases, by: str, outcome: str) -> tuple[Delivery, ...]:
    """One row per value of `by`, after an "all" row (key `ALL`)."""
    outcomes = _counts_by(counts.totals_by((by, outcome)))
    causes = _counts_by(counts.totals_by((by, "cause")))
    return tuple(
        Delivery(key, outcomes[key], causes.get(key, {}))
        for key in (ALL, *sorted(k for k in outcomes if k != ALL))
    )


def _counts_by(totals: Mapping[tuple[str, ...], float]) -> dict[str, dict[str, int]]:
    """(row, label value) → count, as row → label value → count, with the `ALL` row."""
    rows: dict[str, dict[str, int]] = {ALL: {}}
    for (key, value), count in sorted(totals.items()):
        for row in (rows.setdefault(key, {}), rows[ALL]):
            row[value] = row.get(value, 0) + _int(count)
    return rows


def _latencies(buckets: Increases, by: str) -> tuple[LatencySummary, ...]:
    per_key = buckets.totals_by((by, "le"))
    grouped: dict[str, dict[str, float]] = {}
    everything: dict[str, float] = {}
    for (key, le), value in per_key.items():
        grouped.setdefault(key, {})[le] = grouped.get(key, {}).get(le, 0.0) + value
        everything[le] = everything.get(le, 0.0) + value
    return (
        summary_from_buckets(ALL, everything),
        *(summary_from_buckets(k, v) for k, v in sorted(grouped.items())),
    )


def _terminals(
    client: PrometheusClient, period: Period, matchers: str, receipts: Increases
) -> tuple[tuple[TerminalRow, ...], bool]:
    """Inventory at the period end (last sample in the 5 minutes before it)."""
    answer = client.instant(
        f"last_over_time({selector(metric('smswatch_pos_terminals'), matchers)}[5m])",
        period.end.timestamp(),
    )
    inventory: dict[str, list[int]] = {}
    for sample in answer:
        labels = dict(sample.labels)
        row = inventory.setdefault(labels.get("acquirer", ""), [0, 0, 0])
        count = _int(sample.value)
        row[0] += count
        if labels.get("sms_notice") == "disabled":
            row[1] += count
        if labels.get("software") == "outdated":
            row[2] += count
    missing = receipts.totals_by(
        ("acquirer",),
        lambda m: m.get("outcome") == "missing" and m.get("cause") == "terminal_config",
    )
    acquirers = sorted(set(inventory) | {k[0] for k in missing})
    rows = []
    for acquirer in acquirers:
        total, disabled, outdated = inventory.get(acquirer, [0, 0, 0])
        rows.append(
            TerminalRow(acquirer, total, disabled, outdated, _int(missing.get((acquirer,), 0)))
        )
    if rows:
        rows.insert(
            0,
            TerminalRow(
                ALL,
                sum(r.total for r in rows),
                sum(r.notice_disabled for r in rows),
                sum(r.outdated for r in rows),
                sum(r.missing_terminal_config for r in rows),
            ),
        )
    return tuple(rows), bool(answer)

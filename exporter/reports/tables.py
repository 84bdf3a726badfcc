"""The report's tables: one model feeds both the PDF/HTML page and the CSV files.

Every cell is a canonical text (``12345``, ``99.49``, ``2026-03-10T08:00:00+08:00``) plus a
kind that tells the page how to dress it (a unit, a translated label, a local time); the CSV
file holds the canonical text itself. So the CSV numbers are the page's numbers by construction.
Percentages are truncated towards zero to two decimals: a success rate is never shown higher
than it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

from exporter.catalogue import CAUSES, SMS_FINAL_STATUSES
from exporter.reports.figures import Delivery, ReportData
from exporter.reports.latency import QUANTILES, LatencySummary, Quantile
from exporter.reports.objectives import Objectives
from exporter.reports.texts import Texts
from exporter.vocabulary import cause_words

RECEIPT_OUTCOMES_SHOWN = ("delivered", "failed", "missing", "unknown")


@dataclass(frozen=True)
class Column:
    key: str  # CSV header (stable, English)
    title: str  # page header (translated)
    kind: str = "count"


@dataclass(frozen=True)
class Cell:
    text: str
    kind: str = ""  # overrides the column's kind when set


@dataclass(frozen=True)
class Table:
    name: str  # CSV file stem
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def kind_of(self, row: int, column: int) -> str:
        return self.rows[row][column].kind or self.columns[column].kind


# -- canonical number texts ---------------------------------------------------------------


def pct(value: Fraction | None) -> str:
    """A fraction as a percentage with two decimals, truncated towards zero."""
    if value is None:
        return ""
    hundredths = math.trunc(value * 10_000)
    sign = "-" if hundredths < 0 else ""
    hundredths = abs(hundredths)
    return f"{sign}{hundredths // 100}.{hundredths % 100:02d}"


def objective_pct(value: float) -> str:
    return pct(Fraction(str(value)))


def meets(value: Fraction | None, objective: float) -> str:
    if value is None:
        return ""
    return "yes" if value >= Fraction(str(objective)) else "no"


def seconds(quantile: Quantile) -> str:
    if quantile.seconds is None:
        return ""
    if quantile.above_bound:
        return f"> {quantile.seconds:g}"
    return f"{quantile.seconds:.2f}"


def duration(total: float | None) -> str:
    """H:MM:SS (hours may exceed 24)."""
    if total is None:
        return ""
    whole = round(total)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def moment(unix: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(unix, UTC).astimezone(zone).isoformat(timespec="seconds")


def signed(value: int) -> str:
    return f"+{value}" if value > 0 else str(value)


def change_pct(current: int, previous: int) -> Cell:
    if previous == 0:
        return Cell("new", "label") if current else Cell("")
    text = pct(Fraction(current - previous, previous))
    return Cell(("+" + text) if current > previous else text)


# -- tables ---------------------------------------------------------------------------------


def build_tables(data: ReportData, t: Texts) -> dict[str, Table]:
    """Every table of the report, by CSV name, in page order."""
    tables = [
        _coverage(data, t),
        _delivery(
            data.by_acquirer,
            "delivery_acquirer",
            t("s2.acquirer"),
            "acquirer",
            "receipts",
            RECEIPT_OUTCOMES_SHOWN,
            data.objectives.receipt_notification_ratio,
            t,
        ),
        _delivery(
            data.by_gateway,
            "delivery_gateway",
            t("s2.gateway"),
            "gateway",
            "messages",
            SMS_FINAL_STATUSES,
            data.objectives.delivered_ratio,
            t,
        ),
        _delivery(
            data.by_carrier,
            "delivery_carrier",
            t("s2.carrier"),
            "carrier",
            "messages",
            SMS_FINAL_STATUSES,
            data.objectives.delivered_ratio,
            t,
        ),
        _latency(
            data.notify_latency,
            "latency_receipts",
            t("s3.receipts"),
            "acquirer",
            data.objectives,
            t,
        ),
        _latency(data.delivery_latency, "latency_sms", t("s3.sms"), "gateway", data.objectives, t),
        _latency_buckets(data.notify_latency[0], t),
        _causes(data, t),
        _incidents(data, t),
        _incident_totals(data, t),
        _terminals(data, t),
        _completeness(data, t),
        _gaps(data, t),
        _buckets(data, t),
    ]
    return {table.name: table for table in tables}


def _key(value: str) -> Cell:
    return Cell(value, "key")


def _figures(name: str, title: str, rows: Sequence[tuple[Cell, Cell]], t: Texts) -> Table:
    """A two-column table of named figures: item, value."""
    columns = (Column("item", t("col.item"), "item"), Column("value", t("col.value")))
    return Table(name, title, columns, tuple(rows))


def _when_columns(t: Texts) -> tuple[Column, ...]:
    """When something was the case: start and end (local times) and how long it lasted."""
    return (
        Column("start", t("col.start"), "time"),
        Column("end", t("col.end"), "time"),
        Column("duration", t("col.duration"), "duration"),
    )


def _availability_columns(t: Texts) -> tuple[Column, ...]:
    """Which source or exporter target a row of the completeness section is about."""
    return (Column("kind", t("col.kind"), "label"), Column("name", t("col.source"), "text"))


def _coverage(data: ReportData, t: Texts) -> Table:
    rows = [
        (Cell("approved", "item"), Cell(str(data.transactions.get("approved", 0)))),
        (Cell("declined", "item"), Cell(str(data.transactions.get("declined", 0)))),
        (Cell("reversed", "item"), Cell(str(data.transactions.get("reversed", 0)))),
        (Cell("receipts", "item"), Cell(str(data.receipts))),
        (Cell("receipts_with_sms", "item"), Cell(str(data.receipts_with_sms))),
        (Cell("receipts_missing", "item"), Cell(str(data.receipts_by_outcome.get("missing", 0)))),
        (Cell("sms_submitted", "item"), Cell(str(data.sms_submitted))),
        (Cell("coverage", "item"), Cell(pct(data.coverage), "pct")),
    ]
    return _figures("coverage", t("s1"), rows, t)


def _delivery(
    rows: Sequence[Delivery],
    name: str,
    title: str,
    by: str,
    what: str,
    outcomes: Sequence[str],
    objective: float,
    t: Texts,
) -> Table:
    """Outcomes per row, the overall delivery rate (shown), the cardholder-side share, and the
    bank-side SLI judged against `objective` (`objective_pct`, `meets_objective`)."""
    columns = (
        Column(by, t(f"col.{by}"), "key"),
        Column(what, t(f"col.{what}")),
        *(Column(outcome, t(f"col.{outcome}")) for outcome in outcomes),
        Column("success_pct", t("col.success"), "pct"),
        Column("cardholder_side", t("col.cardholder_side")),
        Column("cardholder_side_pct", t("col.cardholder_share"), "pct"),
        Column("sli_events", t("col.sli_events")),
        Column("bank_side", t("col.bank_side")),
        Column("sli_pct", t("col.sli"), "pct"),
        Column("objective_pct", t("col.objective"), "pct"),
        Column("meets_objective", t("col.met"), "verdict"),
    )
    body = tuple(
        (
            _key(row.key),
            Cell(str(row.total)),
            *(Cell(str(row.by_outcome.get(outcome, 0))) for outcome in outcomes),
            Cell(pct(row.ratio)),
            Cell(str(row.cardholder_side)),
            Cell(pct(row.cardholder_side_share)),
            Cell(str(row.sli_events)),
            Cell(str(row.bank_side)),
            Cell(pct(row.sli)),
            Cell(objective_pct(objective)),
            Cell(meets(row.sli, objective)),
        )
        for row in rows
    )
    return Table(name, title, columns, body)


def _latency(
    summaries: Sequence[LatencySummary],
    name: str,
    title: str,
    by: str,
    objectives: Objectives,
    t: Texts,
) -> Table:
    limit = objectives.latency_seconds
    columns = (
        Column(by, t(f"col.{by}"), "key"),
        Column("notified", t("col.notified") if by == "acquirer" else t("col.delivered")),
        *(Column(f"p{round(q * 100)}_seconds", f"p{round(q * 100)}", "seconds") for q in QUANTILES),
        Column(f"within_{limit}s", t("col.within", seconds=limit)),
        Column(f"within_{limit}s_pct", t("col.share"), "pct"),
        Column("objective_pct", t("col.objective"), "pct"),
        Column("meets_objective", t("col.met"), "verdict"),
    )
    body = []
    for summary in summaries:
        within = summary.within(limit) if summary.count else 0
        share = Fraction(within, summary.count) if summary.count else None
        body.append(
            (
                _key(summary.name),
                Cell(str(summary.count)),
                *(Cell(seconds(summary.quantile(q))) for q in QUANTILES),
                Cell(str(within)),
                Cell(pct(share)),
                Cell(objective_pct(objectives.within_latency_ratio)),
                Cell(meets(share, objectives.within_latency_ratio)),
            )
        )
    return Table(name, title, columns, tuple(body))


def _latency_buckets(summary: LatencySummary, t: Texts) -> Table:
    rows = tuple(
        (Cell("+Inf" if math.isinf(upper) else f"{upper:g}"), Cell(str(count)))
        for _, upper, count in summary.per_bucket()
    )
    return Table(
        "latency_buckets",
        t("s3.chart"),
        (Column("le_seconds", t("col.upper"), "text"), Column("count", t("col.count"))),
        rows,
    )


def _causes(data: ReportData, t: Texts) -> Table:
    columns = (
        Column("cause", t("col.cause"), "key"),
        Column("meaning", t("col.meaning"), "text"),
        Column("receipts_not_notified", t("col.not_notified")),
        Column("receipts_previous", t("col.previous")),
        Column("receipts_change", "Δ", "change"),
        Column("receipts_change_pct", "Δ %", "pct"),
        Column("sms_not_delivered", t("col.failed_sms")),
        Column("sms_previous", t("col.previous")),
        Column("sms_change", "Δ", "change"),
        Column("sms_change_pct", "Δ %", "pct"),
    )
    rows = []
    for row in data.causes:
        words = cause_words(row.cause, t.lang)
        meaning = f"{words.name} — {words.meaning}"
        rows.append(
            (
                _key(row.cause),
                Cell(meaning),
                Cell(str(row.receipts)),
                Cell(str(row.receipts_previous)),
                Cell(signed(row.receipts - row.receipts_previous)),
                change_pct(row.receipts, row.receipts_previous),
                Cell(str(row.messages)),
                Cell(str(row.messages_previous)),
                Cell(signed(row.messages - row.messages_previous)),
                change_pct(row.messages, row.messages_previous),
            )
        )
    return Table("causes", t("s4"), columns, tuple(rows))


def _incidents(data: ReportData, t: Texts) -> Table:
    zone = data.period.zone
    end_s = data.period.end.timestamp()
    columns = (
        Column("alert", t("col.alert"), "text"),
        Column("cause", t("col.cause"), "key"),
        Column("severity", t("col.severity"), "text"),
        *_when_columns(t),
        Column("affected", t("col.affected"), "text"),
        Column("note", t("col.note"), "label"),
    )
    rows = []
    for incident in data.incidents.incidents:
        notes = []
        if incident.started_before(data.period):
            notes.append("before")
        if incident.end is None:
            notes.append("ongoing")
        rows.append(
            (
                Cell(incident.alertname),
                _key(incident.cause),
                Cell(incident.severity),
                Cell(("≤ " if not incident.start_known else "") + moment(incident.start, zone)),
                Cell(moment(incident.end, zone) if incident.end is not None else ""),
                Cell(duration(incident.duration(end_s))),
                Cell(" ".join(f"{k}={v}" for k, v in incident.affected)),
                Cell(" ".join(notes)),
            )
        )
    return Table("incidents", t("s5"), columns, tuple(rows))


def _incident_totals(data: ReportData, t: Texts) -> Table:
    summary = data.incidents
    severities = summary.by_severity()
    rows = [(Cell("incidents", "item"), Cell(str(len(summary.incidents))))]
    for severity in sorted(severities, key=lambda s: (s not in ("critical", "warning"), s)):
        rows.append(
            (
                Cell(severity, "item" if severity in ("critical", "warning") else "key"),
                Cell(str(severities[severity])),
            )
        )
    rows.append((Cell("resolved", "item"), Cell(str(len(summary.resolved)))))
    rows.append(
        (Cell("firing", "item"), Cell(duration(summary.firing_seconds(data.period)), "duration"))
    )
    rows.append((Cell("mttr", "item"), Cell(duration(summary.mttr()), "duration")))
    return _figures("incident_totals", t("s5.totals"), rows, t)


def _terminals(data: ReportData, t: Texts) -> Table:
    columns = (
        Column("acquirer", t("col.acquirer"), "key"),
        Column("terminals", t("col.terminals")),
        Column("sms_notice_off", t("col.notice_off")),
        Column("software_outdated", t("col.outdated")),
        Column("receipts_missing_terminal_config", t("col.missing_terminal")),
    )
    rows = tuple(
        (
            _key(r.acquirer),
            Cell(str(r.total)),
            Cell(str(r.notice_disabled)),
            Cell(str(r.outdated)),
            Cell(str(r.missing_terminal_config)),
        )
        for r in data.terminals
    )
    return Table("terminals", t("s6"), columns, rows)


def _share(part: float, whole: float) -> str:
    return pct(Fraction(round(part * 1000), round(whole * 1000)) if whole else None)


def _completeness(data: ReportData, t: Texts) -> Table:
    columns = (
        *_availability_columns(t),
        Column("up_pct", t("col.up"), "pct"),
        Column("current_pct", t("col.current"), "pct"),
        Column("gaps", t("col.gaps")),
    )
    rows = tuple(
        (
            Cell(a.kind),
            Cell(a.name),
            Cell(_share(a.up_seconds, a.total_seconds)),
            Cell(_share(a.current_seconds, a.total_seconds)),
            Cell(str(len(a.gaps))),
        )
        for a in data.completeness.availabilities
    )
    return Table("completeness", t("s7"), columns, rows)


def _gaps(data: ReportData, t: Texts) -> Table:
    zone = data.period.zone
    columns = (
        *_availability_columns(t),
        Column("reason", t("col.reason"), "label"),
        *_when_columns(t),
    )
    rows = tuple(
        (
            Cell(a.kind),
            Cell(a.name),
            Cell(gap.reason),
            Cell(moment(gap.start, zone)),
            Cell(moment(gap.end, zone)),
            Cell(duration(gap.seconds)),
        )
        for a in data.completeness.availabilities
        for gap in a.gaps
    )
    return Table("gaps", t("s7.gaps"), columns, rows)


def _buckets(data: ReportData, t: Texts) -> Table:
    zone = data.period.zone
    columns = (
        Column("start", t("col.bucket_start"), "time"),
        Column("end", t("col.bucket_end"), "time"),
        Column("receipts", t("col.receipts")),
        Column("receipts_delivered", t("col.delivered")),
        Column("receipts_success_pct", t("col.success"), "pct"),
        Column("messages", t("col.messages")),
        Column("messages_delivered", t("col.delivered")),
        Column("messages_success_pct", t("col.success"), "pct"),
        *(Column(f"not_notified_{cause}", cause) for cause in CAUSES),
        Column("not_notified_other", "other"),
        Column("receipts_sli_pct", t("col.sli"), "pct"),
        Column("messages_sli_pct", t("col.sli"), "pct"),
    )
    rows = tuple(
        (
            Cell(moment(b.start.timestamp(), zone)),
            Cell(moment(b.end.timestamp(), zone)),
            Cell(str(b.receipts)),
            Cell(str(b.receipts_delivered)),
            Cell(pct(Fraction(b.receipts_delivered, b.receipts) if b.receipts else None)),
            Cell(str(b.messages)),
            Cell(str(b.messages_delivered)),
            Cell(pct(Fraction(b.messages_delivered, b.messages) if b.messages else None)),
            *(Cell(str(b.not_notified_by_cause.get(cause, 0))) for cause in CAUSES),
            Cell(str(sum(v for c, v in b.not_notified_by_cause.items() if c not in CAUSES))),
            Cell(pct(b.receipts_sli)),
            Cell(pct(b.messages_sli)),
        )
        for b in data.buckets
    )
    return Table("buckets", t("s2.chart", bucket=""), columns, rows)

"""Every figure of the daily report equals what the known history says, exactly."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
import report_dataset as ds
from report_harness import GENERATED_AT, LoadedPrometheus

from exporter.reports.figures import ALL, ReportData, gather
from exporter.reports.objectives import DEFAULT_OBJECTIVES, Objectives
from exporter.reports.periods import load_zone, resolve_period
from exporter.reports.prometheus import PrometheusClient
from exporter.reports.tables import Table, build_tables
from exporter.reports.texts import Texts

RECEIPTS = "smswatch_receipts_total"
MESSAGES = "smswatch_sms_messages_total"


@pytest.fixture(scope="module")
def data(prometheus: LoadedPrometheus) -> ReportData:
    period = resolve_period("daily", load_zone(ds.ZONE), end=GENERATED_AT, now=GENERATED_AT)
    return gather(PrometheusClient(prometheus.url), period, DEFAULT_OBJECTIVES, now=GENERATED_AT)


def test_the_period_is_the_day_before_generation(data: ReportData) -> None:
    assert data.period.start.timestamp() == ds.PERIOD_START
    assert data.period.end.timestamp() == ds.PERIOD_END
    assert data.previous.start.timestamp() == ds.PREVIOUS_START


def test_coverage(data: ReportData, dataset: ds.Dataset) -> None:
    assert data.transactions == dataset.by("smswatch_pos_transactions_total", "result")
    outcomes = dataset.by(RECEIPTS, "outcome")
    assert data.receipts_by_outcome == outcomes
    assert data.receipts == sum(outcomes.values())
    assert data.receipts_with_sms == sum(outcomes.values()) - outcomes["missing"]
    assert data.coverage == Fraction(data.receipts_with_sms, data.receipts)
    assert data.sms_submitted == dataset.increase("smswatch_sms_submitted_total")


@pytest.mark.parametrize(
    ("attribute", "metric", "by", "outcome"),
    [
        ("by_acquirer", RECEIPTS, "acquirer", "outcome"),
        ("by_gateway", MESSAGES, "gateway", "status"),
        ("by_carrier", MESSAGES, "carrier", "status"),
    ],
)
def test_delivery_rows(
    data: ReportData, dataset: ds.Dataset, attribute: str, metric: str, by: str, outcome: str
) -> None:
    rows = {row.key: dict(row.by_outcome) for row in getattr(data, attribute)}
    keys = {s.labels[by] for s in dataset.counters if s.name == metric}
    expected = {
        key: {
            k: v
            for k, v in dataset.by(metric, outcome, where=lambda m, key=key: m[by] == key).items()
        }
        for key in keys
    }
    expected[ALL] = dataset.by(metric, outcome)
    assert rows == expected
    everyone = next(r for r in getattr(data, attribute) if r.key == ALL)
    assert everyone.ratio == Fraction(expected[ALL]["delivered"], sum(expected[ALL].values()))


@pytest.mark.parametrize(
    ("attribute", "metric", "by"),
    [
        ("by_acquirer", RECEIPTS, "acquirer"),
        ("by_gateway", MESSAGES, "gateway"),
        ("by_carrier", MESSAGES, "carrier"),
    ],
)
def test_delivery_rows_count_the_bank_side_sli_as_the_alerts_do(
    data: ReportData, dataset: ds.Dataset, attribute: str, metric: str, by: str
) -> None:
    """Per row: events = all outcomes less cardholder-side causes, bad = bank-side causes
    (alerts/rules/slo-*.yaml), from exact counts by cause."""
    rows = {row.key: row for row in getattr(data, attribute)}
    keys = {s.labels[by] for s in dataset.counters if s.name == metric}
    assert set(rows) == {*keys, ALL}
    for key, row in rows.items():
        where = ds.everywhere if key == ALL else (lambda m, key=key: m[by] == key)
        total, cardholder, events, bad = dataset.sli(metric, where)
        assert (row.total, row.cardholder_side, row.sli_events, row.bank_side) == (
            total,
            cardholder,
            events,
            bad,
        ), key
        assert row.sli == Fraction(events - bad, events), key
        assert row.cardholder_side_share == Fraction(cardholder, total), key


def test_healthy_traffic_meets_the_objective_below_the_overall_rate(data: ReportData) -> None:
    """1 % cardholder-side failures: the overall rate is under 99.5 %, the SLI is not."""
    for rows, key, objective in (
        (data.by_gateway, ds.HEALTHY_GATEWAY, DEFAULT_OBJECTIVES.delivered_ratio),
        (data.by_acquirer, ds.HEALTHY_ACQUIRER, DEFAULT_OBJECTIVES.receipt_notification_ratio),
    ):
        row = next(r for r in rows if r.key == key)
        assert row.ratio is not None and row.sli is not None
        assert row.ratio < Fraction("0.995") <= row.sli
        assert row.sli >= Fraction(str(objective))
        assert Fraction("0.0099") < (row.cardholder_side_share or 0) < Fraction("0.0101")
    tables = build_tables(data, Texts("en"))
    gateway = _csv_row(tables["delivery_gateway"], ds.HEALTHY_GATEWAY)
    assert float(gateway["success_pct"]) < 99.5
    assert (gateway["objective_pct"], gateway["meets_objective"]) == ("99.50", "yes")
    acquirer = _csv_row(tables["delivery_acquirer"], ds.HEALTHY_ACQUIRER)
    assert float(acquirer["success_pct"]) < 99.5
    assert (acquirer["objective_pct"], acquirer["meets_objective"]) == ("97.50", "yes")


def test_the_objectives_are_report_settings(data: ReportData) -> None:
    strict = replace(
        data, objectives=Objectives(delivered_ratio=0.9999, receipt_notification_ratio=0.9999)
    )
    tables = build_tables(strict, Texts("en"))
    for table, key in (
        ("delivery_gateway", ds.HEALTHY_GATEWAY),
        ("delivery_acquirer", ds.HEALTHY_ACQUIRER),
    ):
        row = _csv_row(tables[table], key)
        assert (row["objective_pct"], row["meets_objective"]) == ("99.99", "no")


def _csv_row(table: Table, key: str) -> dict[str, str]:
    """One row of a table as its CSV file holds it (column key → canonical text)."""
    for cells in table.rows:
        if cells[0].text == key:
            return {
                column.key: cell.text for column, cell in zip(table.columns, cells, strict=True)
            }
    raise AssertionError(f"no row {key} in {table.name}")


def test_latency_buckets(data: ReportData, dataset: ds.Dataset) -> None:
    summaries = {s.name: s for s in data.notify_latency}
    assert list(summaries[ALL].buckets) == dataset.buckets("smswatch_receipt_notify_seconds")
    for acquirer in ds.ACQUIRERS:
        assert list(summaries[acquirer].buckets) == dataset.buckets(
            "smswatch_receipt_notify_seconds", where=lambda m, a=acquirer: m["acquirer"] == a
        )
    gateways = {s.name: s for s in data.delivery_latency}
    assert list(gateways["bank-b"].buckets) == dataset.buckets(
        "smswatch_sms_delivery_seconds", where=lambda m: m["gateway"] == "bank-b"
    )
    overall = summaries[ALL]
    assert overall.within(60) == dict(overall.buckets)[60.0]
    assert overall.count == dataset.increase("smswatch_receipt_notify_seconds_count")


def test_causes_with_the_previous_day(data: ReportData, dataset: ds.Dataset) -> None:
    rows = {row.cause: row for row in data.causes}

    def not_delivered(metric: str, field: str, start: float, end: float) -> dict[str, int]:
        return dataset.by(metric, "cause", start, end, where=lambda m: m[field] != "delivered")

    receipts = not_delivered(RECEIPTS, "outcome", ds.PERIOD_START, ds.PERIOD_END)
    receipts_before = not_delivered(RECEIPTS, "outcome", ds.PREVIOUS_START, ds.PERIOD_START)
    messages = not_delivered(MESSAGES, "status", ds.PERIOD_START, ds.PERIOD_END)
    messages_before = not_delivered(MESSAGES, "status", ds.PREVIOUS_START, ds.PERIOD_START)
    for cause, row in rows.items():
        assert row.receipts == receipts.get(cause, 0), cause
        assert row.receipts_previous == receipts_before.get(cause, 0), cause
        assert row.messages == messages.get(cause, 0), cause
        assert row.messages_previous == messages_before.get(cause, 0), cause
    assert list(rows)[:8] == [
        "gateway",
        "invalid_number",
        "unreachable",
        "terminal_config",
        "integration",
        "throttled",
        "filtered",
        "unknown",
    ]
    assert rows["filtered"].receipts > 0 == rows["filtered"].receipts_previous
    assert rows["gateway"].messages > 0


def test_terminals_at_the_period_end(data: ReportData, dataset: ds.Dataset) -> None:
    rows = {row.acquirer: row for row in data.terminals}
    missing = dataset.by(
        RECEIPTS,
        "acquirer",
        where=lambda m: m["outcome"] == "missing" and m["cause"] == "terminal_config",
    )
    for acquirer in ds.ACQUIRERS:
        inventory = {k: v for k, v in ds.TERMINALS_AFTER.items() if k[0] == acquirer}
        row = rows[acquirer]
        assert row.total == sum(inventory.values())
        assert row.notice_disabled == sum(v for k, v in inventory.items() if k[1] == "disabled")
        assert row.outdated == sum(v for k, v in inventory.items() if k[2] == "outdated")
        assert row.missing_terminal_config == missing[acquirer]
    assert rows[ALL].total == sum(ds.TERMINALS_AFTER.values())


def test_incidents_have_their_true_start_end_and_duration(data: ReportData) -> None:
    expected = sorted(
        (a.labels["alertname"], a.first, a.resolved if a.resolved <= ds.PERIOD_END else None)
        for a in ds.ALERTS
        if a.labels["alertname"] != "Watchdog"
        and a.resolved > ds.PERIOD_START
        and a.first < ds.PERIOD_END
    )
    found = sorted((i.alertname, i.start, i.end) for i in data.incidents.incidents)
    assert found == expected
    by_name = {i.alertname: i for i in data.incidents.incidents}
    outage = by_name["SMSGatewayOutage"]
    assert outage.duration(ds.PERIOD_END) == 45 * 60
    assert (outage.severity, outage.cause, outage.affected) == (
        "critical",
        "gateway",
        (("gateway", "bank-a"),),
    )
    assert by_name["SmswatchSourceDown"].duration(ds.PERIOD_END) == 27 * 60
    assert by_name["SmswatchExporterDown"].started_before(data.period)
    assert by_name["SmswatchExporterDown"].duration_in(data.period) == 30 * 60
    assert by_name["POSTerminalsNotNotifying"].end is None
    resolved = [end - start for _, start, end in expected if end is not None]
    assert data.incidents.mttr() == sum(resolved) / len(resolved)
    assert data.incidents.firing_seconds(data.period) == (30 + 45 + 27 + 21 + 5 + 5 + 30) * 60


def test_completeness_lists_the_gaps(data: ReportData) -> None:
    completeness = data.completeness
    assert not completeness.complete
    sources = {a.name: a for a in completeness.sources}
    start = ds.PERIOD_START
    outage = (start, start + 8 * 60, "no_data")
    assert [(g.start, g.end, g.reason) for g in sources["sms"].gaps] == [
        outage,
        (ds.ts("2026-03-10T07:00:00Z"), ds.ts("2026-03-10T07:30:00Z"), "down"),
    ]
    assert [(g.start, g.end, g.reason) for g in sources["acquirer"].gaps] == [
        outage,
        (ds.ts("2026-03-10T10:00:00Z"), ds.ts("2026-03-10T10:20:00Z"), "lagging"),
    ]
    assert sources["acquirer"].up_seconds == 86400 - 8 * 60
    assert sources["acquirer"].current_seconds == 86400 - 28 * 60
    (exporter,) = completeness.exporters
    assert exporter.name == "smswatch exporter:8479"
    assert [(g.start, g.end, g.reason) for g in exporter.gaps] == [(start, start + 480, "down")]
    assert completeness.counter_resets > 0 and completeness.counter_gaps > 0


def test_buckets_add_up_to_the_totals(data: ReportData) -> None:
    assert len(data.buckets) == 24
    assert sum(b.receipts for b in data.buckets) == data.receipts
    assert sum(b.receipts_delivered for b in data.buckets) == data.receipts_by_outcome["delivered"]
    not_notified = sum(sum(b.not_notified_by_cause.values()) for b in data.buckets)
    assert not_notified == data.receipts - data.receipts_by_outcome["delivered"]
    assert sum(b.messages for b in data.buckets) == next(
        r.total for r in data.by_gateway if r.key == ALL
    )
    for rows, events, bad in (
        (data.by_acquirer, "receipts_sli_events", "receipts_bank_side"),
        (data.by_gateway, "messages_sli_events", "messages_bank_side"),
    ):
        everyone = next(r for r in rows if r.key == ALL)
        assert sum(getattr(b, events) for b in data.buckets) == everyone.sli_events
        assert sum(getattr(b, bad) for b in data.buckets) == everyone.bank_side

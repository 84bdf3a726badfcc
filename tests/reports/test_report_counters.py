"""Counter increases are exact against a real Prometheus holding a known history: across
exporter outages, counter resets, a series born mid-period and unaligned scrapes."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

import pytest
import report_dataset as ds
from report_harness import LoadedPrometheus

from exporter.reports.counters import exact_increases
from exporter.reports.latency import QUANTILES, bucket_quantile
from exporter.reports.periods import Period, bucket_boundaries, load_zone
from exporter.reports.prometheus import PrometheusClient

COUNTERS = (
    "smswatch_pos_transactions_total",
    "smswatch_receipts_total",
    "smswatch_sms_submitted_total",
    "smswatch_sms_messages_total",
    "smswatch_receipt_notify_seconds_bucket",
    "smswatch_sms_delivery_seconds_bucket",
)


def hourly_boundaries() -> list[float]:
    zone = load_zone(ds.ZONE)
    period = Period(
        "daily",
        datetime.fromtimestamp(ds.PERIOD_START, UTC),
        datetime.fromtimestamp(ds.PERIOD_END, UTC),
        zone,
    )
    return [b.timestamp() for b in bucket_boundaries(period)]


@pytest.mark.parametrize("name", COUNTERS)
def test_every_series_and_hour_equals_the_scraped_increments(
    prometheus: LoadedPrometheus, name: str
) -> None:
    bounds = hourly_boundaries()
    result = exact_increases(PrometheusClient(prometheus.url), name, bounds)
    expected = {
        # a series is keyed without the target that exported it (replicas take turns)
        tuple(sorted((k, v) for k, v in s.labels.items() if k != "instance")): [
            s.increase(a, b) for a, b in itertools.pairwise(bounds)
        ]
        for s in prometheus.dataset.counters
        if s.name == name and any(a > ds.DOWN[0] - 300 for a, _, _ in s.samples)
    }
    assert len(bounds) == 25
    assert set(result.series) == set(expected)
    for labels, values in expected.items():
        assert result.series[labels] == values, labels


def test_the_history_exercises_resets_gaps_and_births(prometheus: LoadedPrometheus) -> None:
    client = PrometheusClient(prometheus.url)
    bounds = hourly_boundaries()
    messages = exact_increases(client, "smswatch_sms_messages_total", bounds)
    # Every series restarts at 04:00:17Z; bank-b/cu delivered also came back reset after the
    # outage across the period start; every series was absent across the start. A reset is a
    # decrease (a series that stayed at zero shows none).
    decreases = [
        (s.labels, t)
        for s in prometheus.dataset.counters
        if s.name == "smswatch_sms_messages_total"
        for (_, before, _), (t, after, _) in zip(s.samples, s.samples[1:], strict=False)
        if after < before and ds.PERIOD_START < t <= ds.PERIOD_END
    ]
    assert {t for _, t in decreases} == {ds.RESET_ALL, ds.DOWN[1] + 17}
    assert messages.resets == len(decreases) > len(messages.series) / 2
    assert messages.gaps == len(messages.series)
    receipts = exact_increases(client, "smswatch_receipts_total", bounds)
    born = tuple(
        sorted(
            {
                "job": ds.JOB["job"],
                "acquirer": "acq-b",
                "outcome": "failed",
                "cause": "filtered",
            }.items()
        )
    )
    assert (
        sum(receipts.series[born])
        == prometheus.dataset.increase(
            "smswatch_receipts_total", where=lambda labels: labels.get("cause") == "filtered"
        )
        > 0
    )


def test_adjacent_periods_add_up_to_their_union(prometheus: LoadedPrometheus) -> None:
    client = PrometheusClient(prometheus.url)
    name = "smswatch_sms_messages_total"
    split = exact_increases(client, name, [ds.PREVIOUS_START, ds.PERIOD_START, ds.PERIOD_END])
    whole = exact_increases(client, name, [ds.PREVIOUS_START, ds.PERIOD_END])
    assert {k: sum(v) for k, v in split.series.items()} == {
        k: v[0] for k, v in whole.series.items()
    }
    assert whole.total() == prometheus.dataset.increase(name, ds.PREVIOUS_START, ds.PERIOD_END)


def test_prometheus_increase_is_not_exact_on_the_same_data(
    prometheus: LoadedPrometheus,
) -> None:
    """Why the report does not use increase(): extrapolation gives fractions of messages."""
    client = PrometheusClient(prometheus.url)
    naive = client.instant("sum(increase(smswatch_pos_transactions_total[1d]))", ds.PERIOD_END)[
        0
    ].value
    exact = prometheus.dataset.increase("smswatch_pos_transactions_total")
    assert naive != exact
    assert (
        exact_increases(
            client, "smswatch_pos_transactions_total", [ds.PERIOD_START, ds.PERIOD_END]
        ).total()
        == exact
    )


def test_quantiles_equal_histogram_quantile_on_an_aligned_window(
    prometheus: LoadedPrometheus,
) -> None:
    """On a window whose edges are scrape instants (and no reset inside), Prometheus'
    increase() is exact too, so histogram_quantile must give our numbers to the last bit."""
    start, end = ds.ts("2026-03-10T06:00:17Z"), ds.ts("2026-03-10T12:00:17Z")
    client = PrometheusClient(prometheus.url)
    buckets = exact_increases(client, "smswatch_receipt_notify_seconds_bucket", [start, end])
    per_le = buckets.totals_by(("le",))
    cumulative = sorted((float(le), count) for (le,), count in per_le.items())
    expected = prometheus.dataset.buckets("smswatch_receipt_notify_seconds", start, end)
    assert cumulative == expected
    for q in QUANTILES:
        ours = bucket_quantile(q, cumulative)
        theirs = client.instant(
            f"histogram_quantile({q}, sum by (le) "
            f"(increase(smswatch_receipt_notify_seconds_bucket[{int(end - start)}s])))",
            end,
        )[0].value
        assert ours.seconds is not None
        if ours.above_bound:
            assert theirs == ours.seconds == 3600
        else:
            assert ours.seconds == theirs, q
    assert not math.isnan(bucket_quantile(0.5, cumulative).seconds or math.nan)

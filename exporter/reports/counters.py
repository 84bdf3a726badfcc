"""Exact counter increases over report intervals, from the raw samples Prometheus holds.

Why not `increase(x[period])`: Prometheus extrapolates it to the window edges (and, before 3.0,
reads the window closed at both ends), so unless a sample falls exactly on each boundary the
answer is a fraction such as 9.71 messages, and two adjacent days do not add up to their sum.
An auditor needs whole messages that add up.

What this module computes instead, per series and interval (a, b]:

    value(t)     = the last sample at or before t
    increase     = value(b) - value(a), adding back every counter reset in between

i.e. the sum over consecutive samples of (v_j - v_{j-1}), or v_j when v_j < v_{j-1} (a reset:
the counter restarted from zero). Each counted event belongs to the interval in which
Prometheus first *scraped* it, so adjacent intervals partition the data: no event is counted
twice or lost, and the buckets of a chart add up to the period total exactly. A series with no
sample in the `BASELINE_LOOKBACK` before the period counts from zero (counters start at zero).

Replicas: a series is the same counter whichever target exported it (`instance`, `pod` are
not part of its identity). Several exporter replicas share one state and only the primary
exports the shared counters; when another replica becomes primary, the counter continues on its
target from the same value, so the two targets' samples are read as one series (the larger
value where both answer at one instant), never counted from zero again.

How, cheaply: for every interval three aggregated queries give the end value (`last_over_time`),
the reset count (`resets`) and whether the series was sampled within the lookback delta before the
interval (`last_over_time(x[5m])`). Only when an interval holds a reset, or the series has a gap
across its start, are that interval's raw samples fetched and summed exactly in Python.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from exporter.reports.prometheus import Labels, PrometheusClient, Series

log = logging.getLogger(__name__)

#: Prometheus' default lookback delta: a series is "present" at t when sampled in [t - 5m, t].
LOOKBACK_MS = 5 * 60 * 1000
#: How far back the value at the start of a report is searched for a series that was absent
#: at the start (an exporter outage across the boundary). The shipped Prometheus keeps 35 days.
BASELINE_LOOKBACK_MS = 35 * 86_400 * 1000
#: Above this many series needing raw samples in one interval, fetch the whole metric at once.
_RAW_PER_SERIES_LIMIT = 20


@dataclass
class Increases:
    """Per series, the exact increase in each interval between `boundaries` (Unix seconds)."""

    boundaries: tuple[float, ...]
    series: dict[Labels, list[float]] = field(default_factory=dict)
    #: Counter resets found (series × interval), and series that were absent across a boundary.
    resets: int = 0
    gaps: int = 0

    @property
    def intervals(self) -> int:
        return len(self.boundaries) - 1

    def sum_by(
        self,
        names: Sequence[str],
        where: Callable[[Mapping[str, str]], bool] | None = None,
    ) -> dict[tuple[str, ...], list[float]]:
        """Per interval, the sum over series grouped by the label `names` (missing label = "")."""
        grouped: dict[tuple[str, ...], list[float]] = {}
        for labels, values in self.series.items():
            metric = dict(labels)
            if where is not None and not where(metric):
                continue
            key = tuple(metric.get(name, "") for name in names)
            sums = grouped.setdefault(key, [0.0] * self.intervals)
            for index, value in enumerate(values):
                sums[index] += value
        return grouped

    def totals_by(
        self,
        names: Sequence[str],
        where: Callable[[Mapping[str, str]], bool] | None = None,
    ) -> dict[tuple[str, ...], float]:
        """Over the whole span, the sum grouped by the label `names`."""
        return {key: sum(values) for key, values in self.sum_by(names, where).items()}

    def total(self, where: Callable[[Mapping[str, str]], bool] | None = None) -> float:
        return sum(self.totals_by((), where).values())


def selector(metric: str, matchers: str = "") -> str:
    """`metric{matchers}`; `matchers` is a PromQL matcher list such as ``job="smswatch"``."""
    return f"{metric}{{{matchers}}}" if matchers else metric


def exact_increases(
    client: PrometheusClient, series_selector: str, boundaries: Sequence[float]
) -> Increases:
    """The exact increase of every series matching `series_selector` (one counter metric) in
    each interval (t[i-1], t[i]] of `boundaries`, as the module docstring defines it."""
    times = [float(t) for t in boundaries]
    if len(times) < 2 or any(b <= a for a, b in itertools.pairwise(times)):
        raise ValueError("boundaries must be increasing, at least two")
    count = len(times) - 1
    ms = [round(t * 1000) for t in times]
    lengths = [ms[i] - ms[i - 1] for i in range(1, len(ms))]

    present = _at_times(client, f"last_over_time({series_selector}[{LOOKBACK_MS}ms])", times)
    ends: list[dict[Labels, float]] = [{} for _ in range(count)]
    resets: list[dict[Labels, float]] = [{} for _ in range(count)]
    for run in _equal_runs(lengths):
        span = lengths[run[0]] + LOOKBACK_MS
        run_times = [times[i + 1] for i in run]
        for index, found in zip(
            run,
            _at_times(client, f"last_over_time({series_selector}[{span}ms])", run_times),
            strict=True,
        ):
            ends[index] = found
        for index, found in zip(
            run,
            _at_times(client, f"resets({series_selector}[{span}ms])", run_times),
            strict=True,
        ):
            resets[index] = found

    everyone: set[Labels] = set().union(*ends) if ends else set()
    result = Increases(tuple(times), {labels: [0.0] * count for labels in everyone})
    value: dict[Labels, float | None] = {labels: present[0].get(labels) for labels in everyone}
    absent_at_start = [labels for labels in everyone if value[labels] is None]
    seen_before: set[Labels] = {labels for labels in everyone if value[labels] is not None}
    if absent_at_start:
        wide: dict[Labels, float] = {}
        for s in client.instant(
            f"last_over_time({series_selector}[{BASELINE_LOOKBACK_MS}ms])", times[0]
        ):
            _keep_larger(wide, _unnamed(s.labels), s.value)
        for labels in absent_at_start:
            if labels in wide:
                value[labels] = wide[labels]
                seen_before.add(labels)

    for index in range(count):
        raw_needed: list[Labels] = []
        for labels in everyone:
            end = ends[index].get(labels)
            if end is None:
                continue  # no sample in the interval: no change
            previous = value[labels]
            gap = labels in seen_before and labels not in present[index]
            if gap:
                result.gaps += 1
            if previous is None:
                previous = 0.0  # a series born in this interval counts from zero
            if gap or resets[index].get(labels, 0.0) > 0 or end < previous:
                raw_needed.append(labels)
                continue
            result.series[labels][index] = end - previous
            value[labels] = end
            seen_before.add(labels)
        if raw_needed:
            raw = _raw_samples(
                client, series_selector, raw_needed, times[index + 1], lengths[index]
            )
            for labels in raw_needed:
                previous = value[labels] or 0.0
                increase = 0.0
                for moment, sample in raw.get(labels, ()):
                    if round(moment * 1000) <= ms[index]:
                        continue  # at the boundary: belongs to the interval before
                    if sample >= previous:
                        increase += sample - previous
                    else:
                        increase += sample
                        result.resets += 1
                    previous = sample
                result.series[labels][index] = increase
                value[labels] = previous
                seen_before.add(labels)
    if result.resets or result.gaps:
        log.info(
            "counter resets or gaps handled",
            extra={"selector": series_selector, "resets": result.resets, "gaps": result.gaps},
        )
    return result


def _equal_runs(lengths: Sequence[int]) -> list[list[int]]:
    """Indexes of consecutive intervals of equal length, grouped."""
    runs: list[list[int]] = []
    for index, length in enumerate(lengths):
        if runs and lengths[runs[-1][-1]] == length:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def _at_times(
    client: PrometheusClient, expr: str, times: Sequence[float]
) -> list[dict[Labels, float]]:
    """`expr` evaluated at each of `times`; evenly spaced runs go in one range query."""
    out: list[dict[Labels, float]] = [{} for _ in times]
    ms = [round(t * 1000) for t in times]
    position = {moment: index for index, moment in enumerate(ms)}
    runs: list[list[int]] = []
    for index in range(len(times)):
        if runs:
            run = runs[-1]
            if len(run) == 1 or ms[index] - ms[run[-1]] == ms[run[1]] - ms[run[0]]:
                run.append(index)
                continue
        runs.append([index])
    for run in runs:
        if len(run) == 1:
            for sample in client.instant(expr, times[run[0]]):
                _keep_larger(out[run[0]], _unnamed(sample.labels), sample.value)
            continue
        step_ms = ms[run[1]] - ms[run[0]]
        for series in client.range(expr, times[run[0]], times[run[-1]], step_ms / 1000):
            for moment, sample_value in series.points:
                slot = position.get(round(moment * 1000))
                if slot is not None:
                    _keep_larger(out[slot], _unnamed(series.labels), sample_value)
    return out


def _keep_larger(values: dict[Labels, float], labels: Labels, value: float) -> None:
    """One counter exported by two targets (replicas, one after the other): its larger value."""
    values[labels] = max(value, values.get(labels, value))


def _raw_samples(
    client: PrometheusClient,
    series_selector: str,
    wanted: Sequence[Labels],
    end: float,
    length_ms: int,
) -> dict[Labels, tuple[tuple[float, float], ...]]:
    """Raw samples in [end - length, end] of the `wanted` series (exact label sets)."""
    found: list[Series] = []
    if len(wanted) > _RAW_PER_SERIES_LIMIT:
        found = client.raw(f"{series_selector}[{length_ms}ms]", end)
    else:
        name, _, rest = series_selector.partition("{")
        extra = rest.rstrip("}")
        for labels in wanted:
            matchers = [f"{key}={_quote(value)}" for key, value in labels]
            if extra:
                matchers.append(extra)
            found.extend(client.raw(f"{name}{{{','.join(matchers)}}}[{length_ms}ms]", end))
    wanted_set = set(wanted)
    out: dict[Labels, tuple[tuple[float, float], ...]] = {}
    for series in found:
        labels = _unnamed(series.labels)
        if labels in wanted_set:  # the targets that exported it, one after the other
            out[labels] = tuple(sorted((*out.get(labels, ()), *series.points)))
    return out


#: Labels that name where a series was scraped, not which counter it is.
_TARGET_LABELS = frozenset({"__name__", "instance", "pod"})


def _unnamed(labels: Labels) -> Labels:
    """A series' identity: without its name (some functions keep it, `last_over_time`, others
    drop it, `resets`) nor the target that exported it (replicas)."""
    return tuple((k, v) for k, v in labels if k not in _TARGET_LABELS)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

"""Data completeness: was each source up and current, and was the exporter scraped, all period?

The period is cut into windows of `step` seconds (60 s, or the scrape interval if longer). For
each window ending at t, `min_over_time(smswatch_source_up[step])`,
`max_over_time(smswatch_source_lag_seconds[step])` and `min_over_time(up{job=…}[step])` say
whether the source was up for the whole window, how far behind it was at worst, and whether the
exporter answered every scrape. A window is:

- ``ok``: up and current (lag ≤ `SOURCE_LAG_LIMIT_SECONDS`);
- ``lagging``: up but behind; ``down``: a poll (or scrape) failed; ``no_data``: no sample at all.

Consecutive windows that are not ok form a gap; gaps are accurate to one step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exporter.reports.counters import selector
from exporter.reports.objectives import SOURCE_LAG_LIMIT_SECONDS
from exporter.reports.periods import Period
from exporter.reports.prometheus import (
    Labels,
    PrometheusClient,
    optional,
    parse_duration_seconds,
)

DEFAULT_STEP_SECONDS = 60.0

OK, LAGGING, DOWN, NO_DATA = "ok", "lagging", "down", "no_data"


@dataclass(frozen=True)
class Gap:
    """A stretch of the period when a source or exporter was not ok."""

    start: float
    end: float
    reason: str  # lagging | down | no_data

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Availability:
    """How one source (or one exporter target) fared over the period."""

    kind: str  # source | exporter
    name: str
    total_seconds: float
    up_seconds: float
    current_seconds: float
    gaps: tuple[Gap, ...]

    @property
    def complete(self) -> bool:
        return not self.gaps


@dataclass(frozen=True)
class Completeness:
    """Completeness of the data behind a report."""

    step_seconds: float
    lag_limit_seconds: float
    sources: tuple[Availability, ...]
    exporters: tuple[Availability, ...]
    counter_resets: int
    counter_gaps: int

    @property
    def availabilities(self) -> tuple[Availability, ...]:
        """The sources', then the exporter targets'."""
        return (*self.sources, *self.exporters)

    @property
    def complete(self) -> bool:
        return (
            bool(self.sources)
            and bool(self.exporters)
            and all(a.complete for a in self.availabilities)
        )


def gather_completeness(
    client: PrometheusClient,
    period: Period,
    matchers: str = "",
    *,
    counter_resets: int = 0,
    counter_gaps: int = 0,
) -> Completeness:
    """Availability of every source and exporter target seen in `period`."""
    config = optional(client.config) or {}
    global_section = config.get("global") if isinstance(config.get("global"), dict) else {}
    scrape = parse_duration_seconds((global_section or {}).get("scrape_interval"), 60.0)
    step = max(DEFAULT_STEP_SECONDS, scrape)
    windows = _windows(period, step)

    up = _evaluate(
        client,
        f"min_over_time({selector('smswatch_source_up', matchers)}[{int(step * 1000)}ms])",
        windows,
        ("source",),
        min,
    )
    lag = _evaluate(
        client,
        f"max_over_time({selector('smswatch_source_lag_seconds', matchers)}[{int(step * 1000)}ms])",
        windows,
        ("source",),
        max,
    )
    jobs = client.label_values(
        f"count by (job) (last_over_time({selector('smswatch_source_up', matchers)}"
        f"[{int(period.seconds * 1000)}ms]))",
        period.end.timestamp(),
        "job",
    )
    exporters: dict[tuple[str, ...], list[float | None]] = {}
    if jobs:
        job_matcher = "|".join(_regex_escape(job) for job in jobs)
        exporters = _evaluate(
            client,
            f'min_over_time(up{{job=~"{job_matcher}"}}[{int(step * 1000)}ms])',
            windows,
            ("job", "instance"),
            min,
        )

    sources = []
    for key in sorted(up.keys() | lag.keys()):
        states = [
            _source_state(u, lg)
            for u, lg in zip(
                up.get(key, [None] * len(windows)), lag.get(key, [None] * len(windows)), strict=True
            )
        ]
        sources.append(_availability("source", key[0], windows, states))
    targets = []
    for key in sorted(exporters):
        states = [NO_DATA if u is None else OK if u >= 1 else DOWN for u in exporters[key]]
        name = f"{key[0]} {key[1]}".strip()
        targets.append(_availability("exporter", name, windows, states))
    return Completeness(
        step_seconds=step,
        lag_limit_seconds=SOURCE_LAG_LIMIT_SECONDS,
        sources=tuple(sources),
        exporters=tuple(targets),
        counter_resets=counter_resets,
        counter_gaps=counter_gaps,
    )


def _windows(period: Period, step: float) -> list[tuple[float, float]]:
    """(start, end) of each window; the last one is shorter when the period is not a multiple."""
    start, end = period.start.timestamp(), period.end.timestamp()
    out = []
    cursor = start
    while cursor < end - 1e-9:
        out.append((cursor, min(cursor + step, end)))
        cursor += step
    return out


def _evaluate(
    client: PrometheusClient,
    expr: str,
    windows: list[tuple[float, float]],
    by: tuple[str, ...],
    pick: Callable[[float, float], float],
) -> dict[tuple[str, ...], list[float | None]]:
    """`expr` at each window end, grouped by the labels `by` (worst value across instances)."""
    out: dict[tuple[str, ...], list[float | None]] = {}
    position = {round(end * 1000): index for index, (_, end) in enumerate(windows)}
    full = [
        w
        for w in windows
        if round((w[1] - w[0]) * 1000) == round((windows[0][1] - windows[0][0]) * 1000)
    ]
    answers: list[tuple[Labels, float, float]] = []
    if full:
        step = full[0][1] - full[0][0]
        for series in client.range(expr, full[0][1], full[-1][1], step):
            answers.extend((series.labels, t, v) for t, v in series.points)
    for window in windows[len(full) :]:
        answers.extend((s.labels, s.time, s.value) for s in client.instant(expr, window[1]))
    for labels, moment, value in answers:
        index = position.get(round(moment * 1000))
        if index is None:
            continue
        metric: Mapping[str, str] = dict(labels)
        key = tuple(metric.get(name, "") for name in by)
        values = out.setdefault(key, [None] * len(windows))
        current = values[index]
        values[index] = value if current is None else pick(current, value)
    return out


def _source_state(up: float | None, lag: float | None) -> str:
    if up is None:
        return NO_DATA
    if up < 1:
        return DOWN
    if lag is not None and lag > SOURCE_LAG_LIMIT_SECONDS:
        return LAGGING
    return OK


def _availability(
    kind: str, name: str, windows: list[tuple[float, float]], states: list[str]
) -> Availability:
    total = sum(end - start for start, end in windows)
    up_seconds = sum(
        end - start for (start, end), s in zip(windows, states, strict=True) if s in (OK, LAGGING)
    )
    current = sum(end - start for (start, end), s in zip(windows, states, strict=True) if s == OK)
    gaps: list[Gap] = []
    for (start, end), state in zip(windows, states, strict=True):
        if state == OK:
            continue
        if gaps and gaps[-1].reason == state and gaps[-1].end == start:
            gaps[-1] = Gap(gaps[-1].start, end, state)
        else:
            gaps.append(Gap(start, end, state))
    return Availability(kind, name, total, up_seconds, current, tuple(gaps))


def _regex_escape(text: str) -> str:
    special = set(".^$*+?()[]{}|\\")
    return "".join("\\\\" + c if c in special else c for c in text)

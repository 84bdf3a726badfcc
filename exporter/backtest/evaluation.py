"""Rule evaluation with Prometheus' own engine over the backfilled range.

Recording rules, level by level: a real `prometheus` serves the TSDB, each rule of the level is
evaluated with `query_range` at its group's interval (what Prometheus' rule manager would have
evaluated at those instants), the results are written as OpenMetrics, one file per 2h block,
and backfilled before the next level starts (Prometheus restarts to load the new blocks).
Then the alerting rules are queried the same way and their states run through `alertstate`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from exporter.backtest.alertstate import Firing, firing_episodes
from exporter.backtest.exposition import BLOCK_MS, series_text
from exporter.backtest.rules import Rule, RuleSet
from exporter.backtest.tsdb import Backfill, PrometheusServer, Series

log = logging.getLogger(__name__)

#: Range queries in flight at once: one per core of the machine the backtest was sized for.
QUERY_WORKERS = 2


@dataclass(frozen=True)
class AlertSeries:
    """One alert series (rule labels, result labels and `alertname`) and its firing episodes."""

    rule: Rule
    labels: dict[str, str]
    episodes: list[Firing]


@dataclass
class EvaluationTimings:
    """Wall seconds of the evaluation stages."""

    recording_query_s: float = 0.0
    recording_backfill_s: float = 0.0
    alert_query_s: float = 0.0
    prometheus_start_s: float = 0.0
    levels: list[float] = field(default_factory=list)


def evaluation_times(start_ms: int, end_ms: int, interval_ms: int) -> list[int]:
    """Evaluation instants in (start, end]: multiples of the interval since the epoch."""
    first = (start_ms // interval_ms + 1) * interval_ms
    return list(range(first, end_ms + 1, interval_ms))


def query_rules(
    prometheus: PrometheusServer, rules: list[Rule], start_ms: int, end_ms: int
) -> list[list[Series]]:
    """Each rule's expression over its evaluation instants, `QUERY_WORKERS` queries at once
    (each range query runs on one core in Prometheus)."""

    def run(rule: Rule) -> list[Series]:
        times = evaluation_times(start_ms, end_ms, rule.interval_ms)
        if not times:
            return []
        return prometheus.query_range(rule.expr, times[0], times[-1], rule.interval_ms)

    with ThreadPoolExecutor(max_workers=QUERY_WORKERS) as pool:
        return list(pool.map(run, rules))


def record_level(
    prometheus: PrometheusServer,
    rules: list[Rule],
    start_ms: int,
    end_ms: int,
    directory: Path,
    level: int,
) -> list[Path]:
    """Evaluate one level's recording rules; append their samples to one file per block."""
    paths: dict[int, Path] = {}
    for rule, result in zip(rules, query_rules(prometheus, rules, start_ms, end_ms), strict=True):
        chunks: dict[int, list[str]] = {}
        for series in result:
            labels = {k: v for k, v in series.labels.items() if k != "__name__"}
            labels.update(rule.labels)
            prefix = series_text(rule.name, sorted(labels.items())) + " "
            for at, value in series.points:
                if value != value:  # NaN: Prometheus records it; OpenMetrics writes it
                    text = "NaN"
                elif value in (float("inf"), float("-inf")):
                    text = "+Inf" if value > 0 else "-Inf"
                else:
                    text = repr(value)
                chunks.setdefault(at // BLOCK_MS, []).append(
                    f"{prefix}{text} {at // 1000}.{at % 1000:03d}\n"
                )
        for block, lines in chunks.items():
            path = paths.setdefault(block, directory / f"rules-{level}-{block * BLOCK_MS}.om")
            with path.open("a", encoding="utf-8") as handle:
                handle.write("".join(lines))
    for path in paths.values():
        with path.open("a", encoding="utf-8") as handle:
            handle.write("# EOF\n")
    return sorted(paths.values())


def evaluate(
    ruleset: RuleSet,
    data_dir: Path,
    work_dir: Path,
    start_ms: int,
    end_ms: int,
    eval_interval_ms: int,
    backfill: Backfill,
    progress: Callable[[str], None] = lambda message: None,
) -> tuple[list[AlertSeries], EvaluationTimings]:
    """Evaluate every recording level (backfilling each), then every alerting rule."""
    timings = EvaluationTimings()
    rules_dir = work_dir / "recorded"
    rules_dir.mkdir(exist_ok=True)
    for level, rules in enumerate(ruleset.levels):
        started = time.perf_counter()
        with PrometheusServer(data_dir, eval_interval_ms, work_dir) as prometheus:
            timings.prometheus_start_s += time.perf_counter() - started
            queried = time.perf_counter()
            files = record_level(prometheus, rules, start_ms, end_ms, rules_dir, level)
            timings.recording_query_s += time.perf_counter() - queried
        filled = time.perf_counter()
        for path in files:
            backfill.run_now(path)
        timings.recording_backfill_s += time.perf_counter() - filled
        timings.levels.append(time.perf_counter() - started)
        progress(f"recording level {level}: {len(rules)} rules, {len(files)} blocks")
    alerts: list[AlertSeries] = []
    started = time.perf_counter()
    with PrometheusServer(data_dir, eval_interval_ms, work_dir) as prometheus:
        timings.prometheus_start_s += time.perf_counter() - started
        queried = time.perf_counter()
        results = query_rules(prometheus, ruleset.alerts, start_ms, end_ms)
        for rule, result in zip(ruleset.alerts, results, strict=True):
            times = evaluation_times(start_ms, end_ms, rule.interval_ms)
            for series in result:
                labels = {k: v for k, v in series.labels.items() if k != "__name__"}
                labels.update(rule.labels)
                labels["alertname"] = rule.name
                active = {at for at, _ in series.points}
                episodes = firing_episodes(times, active, rule.for_ms, rule.keep_firing_for_ms)
                alerts.append(AlertSeries(rule, labels, episodes))
        timings.alert_query_s += time.perf_counter() - queried
    progress(f"alerting rules: {len(ruleset.alerts)} rules, {len(alerts)} series")
    return alerts, timings

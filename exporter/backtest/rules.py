"""The rule files Prometheus loads (alerts/rules/*.yaml), read as they are, never copied.

Recording rules are ordered in levels: a rule whose expression reads a series another
recording rule records comes one level after it. Each level is evaluated and backfilled before
the next, since promtool's `create-blocks-from rules` cannot chain rules in one pass, and
Prometheus' own engine only sees what is in its TSDB.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from exporter.backtest.tsdb import tool
from exporter.errors import ConfigError
from exporter.timestamps import parse_duration_ms

#: A range (`[3d]`) or subquery range (`[30m:]`, `[1h:1m]`) in PromQL.
_RANGE = re.compile(r"\[((?:\d+(?:ms|[smhdwy]))+)(?::[^\]]*)?\]")
#: Metric names in PromQL (recorded names have colons).
_NAME = re.compile(r"(?<![\w:.\"'])([a-zA-Z_:][a-zA-Z0-9_:]*)")


@dataclass(frozen=True)
class Rule:
    """One recording or alerting rule, with the interval of its group."""

    name: str  # the recorded metric or the alert name
    expr: str
    alert: bool
    interval_ms: int
    labels: dict[str, str] = field(default_factory=dict)
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    group: str = ""
    source: str = ""


@dataclass(frozen=True)
class RuleSet:
    """Every rule of the files, recording rules in evaluation levels."""

    files: list[Path]
    levels: list[list[Rule]]
    alerts: list[Rule]

    @property
    def read_metrics(self) -> set[str]:
        """Names that the expressions read and no recording rule records (the scraped ones)."""
        recorded = {rule.name for level in self.levels for rule in level}
        names: set[str] = set()
        for rule in [*(r for level in self.levels for r in level), *self.alerts]:
            names |= expression_names(rule.expr)
        return names - recorded


def expression_names(expr: str) -> set[str]:
    """Every identifier of an expression that may be a metric name (a superset: a label name or
    function name in the set matches no series and costs nothing)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "{}", without_strings)
    return set(_NAME.findall(without_labels))


def _duration(value: object, where: str, source: str) -> int:
    try:
        return parse_duration_ms(str(value))
    except ValueError as exc:
        raise ConfigError(f"not a duration: {value!r}", path=where, source=source) from exc


def load_rules(paths: list[Path], default_interval_ms: int) -> RuleSet:
    """Read rule files (Prometheus' format) and order their recording rules in levels."""
    recording: list[Rule] = []
    alerts: list[Rule] = []
    for path in paths:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read rule file: {exc}", source=str(path)) from exc
        for g, group in enumerate(document.get("groups") or []):
            where = f"groups[{g}]"
            interval = group.get("interval")
            interval_ms = (
                _duration(interval, f"{where}.interval", str(path))
                if interval
                else default_interval_ms
            )
            for r, raw in enumerate(group.get("rules") or []):
                at = f"{where}.rules[{r}]"
                if "alert" not in raw and "record" not in raw:
                    raise ConfigError("neither record nor alert", path=at, source=str(path))
                alert = "alert" in raw
                rule = Rule(
                    name=str(raw["alert" if alert else "record"]),
                    expr=str(raw["expr"]),
                    alert=alert,
                    interval_ms=interval_ms,
                    labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
                    for_ms=_duration(raw.get("for", "0s"), f"{at}.for", str(path)),
                    keep_firing_for_ms=_duration(
                        raw.get("keep_firing_for", "0s"), f"{at}.keep_firing_for", str(path)
                    ),
                    group=str(group.get("name", "")),
                    source=str(path),
                )
                (alerts if alert else recording).append(rule)
    return RuleSet(files=list(paths), levels=_levels(recording), alerts=alerts)


def _levels(rules: list[Rule]) -> list[list[Rule]]:
    recorded = {rule.name for rule in rules}
    needs = {id(rule): expression_names(rule.expr) & recorded for rule in rules}
    by_name: dict[str, list[Rule]] = {}
    for rule in rules:
        by_name.setdefault(rule.name, []).append(rule)
    level: dict[int, int] = {}

    def depth(rule: Rule, seen: frozenset[int]) -> int:
        if id(rule) in level:
            return level[id(rule)]
        if id(rule) in seen:
            raise ConfigError(f"recording rules read each other in a cycle: {rule.name}")
        deeper = [
            depth(other, seen | {id(rule)}) for name in needs[id(rule)] for other in by_name[name]
        ]
        level[id(rule)] = 1 + max(deeper) if deeper else 0
        return level[id(rule)]

    for rule in rules:
        depth(rule, frozenset())
    count = max(level.values(), default=-1) + 1
    return [[rule for rule in rules if level[id(rule)] == n] for n in range(count)]


def rule_files(directory: Path) -> list[Path]:
    """The rule files of a directory, as Prometheus' `rule_files: [dir/*.yaml]` loads them."""
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    if not files:
        raise ConfigError(f"no rule files (*.yaml) in {directory}", path="--rules.dir")
    return files


def check_rules(paths: list[Path]) -> None:
    """`promtool check rules`: the files must be ones Prometheus would load (ConfigError)."""
    result = subprocess.run(
        [tool("promtool"), "check", "rules", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise ConfigError(f"promtool check rules failed: {detail}", path="--rules.dir")


def shortest_range_ms(expr: str) -> int | None:
    """The shortest range or subquery window of an expression (None: it has none)."""
    ranges = [parse_duration_ms(text) for text in _RANGE.findall(expr)]
    return min(ranges) if ranges else None


def for_alerts(rules: RuleSet) -> RuleSet:
    """Only the recording rules that some alerting rule reads, directly or through others
    (dashboards' series, such as the 30-day error budget, cost much and page nobody)."""
    needed: set[str] = set()
    for alert in rules.alerts:
        needed |= expression_names(alert.expr)
    for level in reversed(rules.levels):
        for rule in level:
            if rule.name in needed:
                needed |= expression_names(rule.expr)
    levels = [[r for r in level if r.name in needed] for level in rules.levels]
    return RuleSet(files=rules.files, levels=[lv for lv in levels if lv], alerts=rules.alerts)


def with_long_window_interval(rules: RuleSet, min_range_ms: int, interval_ms: int) -> RuleSet:
    """Recording rules whose every window is at least `min_range_ms` evaluated only every
    `interval_ms` (if their group's interval is shorter): a 1-day window moves by 0.35 % in
    5 minutes, and reading it at every evaluation costs as much as all other rules together."""
    levels = [
        [
            replace(rule, interval_ms=max(rule.interval_ms, interval_ms))
            if (shortest := shortest_range_ms(rule.expr)) is not None and shortest >= min_range_ms
            else rule
            for rule in level
        ]
        for level in rules.levels
    ]
    return RuleSet(files=rules.files, levels=levels, alerts=rules.alerts)

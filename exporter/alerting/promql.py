"""Building blocks of the generated rules: scaled durations, selectors checked against the
metric catalogue, and the alert and recording-rule records the files are made of.

Time scaling: `--time-scale N` divides every wall-clock duration (range windows, `for:`, group
intervals, the poll interval) by N, so the end-to-end test can run the same rules against a
simulator running N times faster than real time. Event-time values (latency and lag thresholds,
`sloth_window` labels, rule names) keep their nominal values. Range windows and freshness
thresholds never shrink below a few scrape intervals of the Prometheus that runs the rules
(`--scrape-interval`): a window holding fewer than two samples gives no rate at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exporter.alerting.spec import AlertSpec
from exporter.catalogue import METRICS_BY_NAME
from exporter.language import check_language, localized_uid
from exporter.timestamps import format_duration_ms

#: A range window spans at least this many scrape intervals, a freshness threshold at least
#: `STALE_SCRAPES` of them.
WINDOW_SCRAPES = 4
STALE_SCRAPES = 3

#: Suffixes of the series a histogram exposes.
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def format_duration(ms: int) -> str:
    """Milliseconds as a Prometheus duration in the largest exact units (90000 → 1m30s); the
    durations of rules are positive."""
    if ms <= 0:
        raise ValueError(f"duration must be positive: {ms} ms")
    return format_duration_ms(ms)


def format_number(value: Decimal | int) -> str:
    """A number as PromQL text without float noise (Decimal 0.0050 → 0.005, 60 → 60)."""
    text = format(Decimal(value).normalize(), "f")
    return text


#: The labels an alert is per, as a Chinese description names them.
DIMENSION_ZH: dict[str, str] = {
    "gateway": "短信网关",
    "acquirer": "收单机构",
    "carrier": "运营商",
    "area": "地区",
    "source": "数据源",
}


def runbook_path(alert: str, lang: str = "en") -> str:
    """Where an alert's runbook lives under alerts/runbooks/: English at the top, every other
    language in a folder named after it."""
    return f"{alert}.md" if lang == "en" else f"{lang}/{alert}.md"


def _labels(name: str) -> tuple[str, ...]:
    """The labels of a catalogue metric; ValueError for an unknown metric."""
    if name in METRICS_BY_NAME:
        return METRICS_BY_NAME[name].labels
    raise ValueError(f"{name} is not in the metric catalogue")


@dataclass(frozen=True)
class Alert:
    """One alerting rule, in the mixin style: severity, summary, description, runbook."""

    name: str
    expr: str
    for_ms: int | None
    severity: str
    summary: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)
    dashboard: str | None = None  # key of spec.dashboards
    keep_firing_for_ms: int | None = None


@dataclass(frozen=True)
class Recording:
    """One recording rule."""

    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    """A rule group; `interval_ms` overrides the global evaluation interval."""

    name: str
    rules: tuple[Alert | Recording, ...]
    interval_ms: int | None = None


@dataclass(frozen=True)
class Context:
    """The spec plus the time scale: everything a rule builder needs."""

    spec: AlertSpec
    scale: int = 1
    scrape_ms: int | None = None  # the scrape interval in wall time (default: the spec's, scaled)
    lang: str = "en"  # the language of summaries and descriptions, and of the runbooks linked

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise ValueError(f"time scale must be >= 1: {self.scale}")
        check_language(self.lang)

    @property
    def scrape_interval_ms(self) -> int:
        """The scrape (and evaluation) interval of the Prometheus running the rules, wall time:
        as given, else the spec's, scaled like everything else."""
        return self.scrape_ms or self.scaled_ms(self.spec.scrape_interval_ms)

    def scaled_ms(self, ms: int) -> int:
        """A wall-clock duration divided by the time scale (at least 1 ms)."""
        return max(1, round(ms / self.scale))

    def duration(self, ms: int) -> str:
        """A wall-clock duration, scaled (5m at 60× → 5s)."""
        return format_duration(self.scaled_ms(ms))

    def window_ms(self, ms: int) -> int:
        """A range window in wall ms, scaled, never shorter than WINDOW_SCRAPES scrapes."""
        return max(self.scaled_ms(ms), WINDOW_SCRAPES * self.scrape_interval_ms)

    def window(self, ms: int) -> str:
        """A range window, scaled, but never shorter than WINDOW_SCRAPES scrape intervals."""
        return format_duration(self.window_ms(ms))

    def stale_seconds(self, ms: int) -> str:
        """A freshness threshold in seconds, scaled, never below STALE_SCRAPES scrapes."""
        wall = max(self.scaled_ms(ms), STALE_SCRAPES * self.scrape_interval_ms)
        return format_number(Decimal(wall) / 1000)

    def seconds(self, ms: int) -> str:
        """A wall-clock duration in (scaled) seconds, as a PromQL number."""
        return format_number(Decimal(ms) / 1000 / self.scale)

    def seconds_per_hour(self) -> str:
        """How many wall seconds make one (scaled) hour: turns per-second rates into per-hour."""
        return self.seconds(3_600_000)

    def metric(self, name: str, **matchers: str) -> str:
        """A selector of a catalogue metric (histograms take their _bucket/_count/_sum suffix).

        `matchers` values are PromQL matcher texts: `status='!="delivered"'`.
        """
        base = name
        for suffix in _HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in METRICS_BY_NAME:
                base = name[: -len(suffix)]
                if METRICS_BY_NAME[base].kind != "histogram":
                    raise ValueError(f"{base} is not a histogram")
        labels = _labels(base)
        allowed = set(labels) | ({"le"} if name.endswith("_bucket") else set())
        for label in matchers:
            if label not in allowed:
                raise ValueError(f"{base} has no label {label!r}")
        parts = [self.spec.selector, *(f"{label}{text}" for label, text in matchers.items())]
        return f"{name}{{{','.join(parts)}}}"

    def by(self, name: str, *labels: str) -> str:
        """`job, <labels>` for `sum by (...)`, each label checked against the catalogue."""
        known = _labels(name)
        for label in labels:
            if label not in known:
                raise ValueError(f"{name} has no label {label!r}")
        return ", ".join(("job", *labels))

    def alert(
        self,
        name: str,
        expr: str,
        *,
        severity: str,
        summary: str,
        description: str,
        labels: dict[str, str] | None = None,
        dashboard: str | None = None,
    ) -> Alert:
        """An alert of the spec's `alerts:`, with the `for:` (and `keep_firing_for:`) the spec
        gives it."""
        return Alert(
            name=name,
            expr=expr,
            for_ms=self.spec.alerts[name].for_ms,
            keep_firing_for_ms=self.spec.alerts[name].keep_firing_for_ms,
            severity=severity,
            summary=summary,
            description=description,
            labels=labels or {},
            dashboard=dashboard,
        )

    def runbook_url(self, alert: str) -> str:
        """The alert's runbook in the rules' language: `<base>/<Alert>.md` in English,
        `<base>/zh-CN/<Alert>.md` in Simplified Chinese."""
        return f"{self.spec.runbook_base_url}/{runbook_path(alert, self.lang)}"

    def dashboard_url(self, key: str) -> str:
        """The dashboard in the rules' language (zh-CN dashboards have their own uids)."""
        uid = localized_uid(self.spec.dashboards[key], self.lang)
        return f"{self.spec.dashboard_base_url}/{uid}"

    def render_rule(self, rule: Alert | Recording) -> dict[str, Any]:
        """A rule as the mapping Prometheus reads."""
        if isinstance(rule, Recording):
            out: dict[str, Any] = {"record": rule.record, "expr": rule.expr}
            if rule.labels:
                out["labels"] = dict(rule.labels)
            return out
        alert: dict[str, Any] = {"alert": rule.name, "expr": rule.expr}
        if rule.for_ms:
            alert["for"] = self.duration(rule.for_ms)
        if rule.keep_firing_for_ms:
            alert["keep_firing_for"] = self.duration(rule.keep_firing_for_ms)
        alert["labels"] = {"severity": rule.severity, **rule.labels}
        annotations = {
            "summary": rule.summary,
            "description": rule.description,
            "runbook_url": self.runbook_url(rule.name),
        }
        if rule.dashboard:
            annotations["dashboard_url"] = self.dashboard_url(rule.dashboard)
        alert["annotations"] = annotations
        return alert

    def render_group(self, group: Group) -> dict[str, Any]:
        out: dict[str, Any] = {"name": group.name}
        if group.interval_ms:
            out["interval"] = self.duration(group.interval_ms)
        out["rules"] = [self.render_rule(rule) for rule in group.rules]
        return out

"""Incidents: the alerts that fired in a period, read back from Prometheus' `ALERTS` series.

The rule manager writes one `ALERTS{alertstate="firing", …}` sample per rule evaluation while an
alert fires. We ask for `timestamp(ALERTS{alertstate="firing"})` over the period with
`query_range`, at a step no longer than the rule evaluation interval W, so every firing
evaluation is seen and its own timestamp comes back as the value. Then, per alert (its label set):

- start = the first evaluation that found it firing;
- end   = the last firing evaluation + W, i.e. the evaluation that found it resolved;
- evaluations more than 1.5 W apart are separate incidents.

So start and end are exact rule-evaluation instants (resolution: one evaluation interval, the
resolution of `ALERTS` itself), whatever the query step. W is the rule group's interval from
`/api/v1/rules`, else the global `evaluation_interval`. The query starts `LOOKBACK` before the
period to find the true start of incidents already firing at its start; an incident whose end is
after the period end is "ongoing". `Watchdog` and `InfoInhibitor` (always-firing helpers) are
not incidents.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from exporter.reports.periods import Period
from exporter.reports.prometheus import PrometheusClient, optional, parse_duration_seconds

log = logging.getLogger(__name__)

LOOKBACK_SECONDS = 86_400
DEFAULT_EVALUATION_SECONDS = 60.0
NOT_INCIDENTS = ("Watchdog", "InfoInhibitor")
#: Labels that name what an incident affected, in display order.
AFFECTED_LABELS = ("gateway", "acquirer", "carrier", "area", "source")


@dataclass(frozen=True)
class Incident:
    """One alert firing interval."""

    alertname: str
    severity: str
    cause: str
    affected: tuple[tuple[str, str], ...]
    start: float
    end: float | None  # None: still firing at the period end
    start_known: bool = True  # False: already firing at the start of the lookback
    evaluation_seconds: float = DEFAULT_EVALUATION_SECONDS

    def duration(self, period_end: float) -> float:
        """Firing time from start to end (to the period end when ongoing)."""
        return (self.end if self.end is not None else period_end) - self.start

    def duration_in(self, period: Period) -> float:
        """The part of the firing time that lies inside `period`."""
        start = max(self.start, period.start.timestamp())
        end = min(
            self.end if self.end is not None else period.end.timestamp(), period.end.timestamp()
        )
        return max(0.0, end - start)

    def started_before(self, period: Period) -> bool:
        return self.start < period.start.timestamp()


@dataclass(frozen=True)
class IncidentSummary:
    """Incidents of a period and their totals."""

    incidents: tuple[Incident, ...]
    evaluation_seconds: float
    step_seconds: float

    @property
    def resolved(self) -> tuple[Incident, ...]:
        return tuple(i for i in self.incidents if i.end is not None and i.start_known)

    def mttr(self) -> float | None:
        """Mean time to resolve: mean start → end of the incidents that were resolved in the
        period (with a known start); None when there are none."""
        done = self.resolved
        if not done:
            return None
        return sum(i.end - i.start for i in done if i.end is not None) / len(done)

    def firing_seconds(self, period: Period) -> float:
        return sum(i.duration_in(period) for i in self.incidents)

    def by_severity(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for incident in self.incidents:
            counts[incident.severity] = counts.get(incident.severity, 0) + 1
        return dict(sorted(counts.items()))


def evaluation_intervals(client: PrometheusClient) -> tuple[float, dict[str, float]]:
    """The global rule evaluation interval and, per alert name, its rule group's interval."""
    config = optional(client.config) or {}
    global_section = config.get("global") if isinstance(config.get("global"), dict) else {}
    default = parse_duration_seconds(
        (global_section or {}).get("evaluation_interval"), DEFAULT_EVALUATION_SECONDS
    )
    per_alert: dict[str, float] = {}
    for group in optional(client.rule_groups) or []:
        interval = group.get("interval")
        seconds = float(interval) if isinstance(interval, int | float) and interval > 0 else default
        for rule in group.get("rules") or []:
            if isinstance(rule, dict) and rule.get("type") == "alerting" and rule.get("name"):
                name = str(rule["name"])
                per_alert[name] = min(per_alert.get(name, seconds), seconds)
    return default, per_alert


def gather_incidents(
    client: PrometheusClient, period: Period, matchers: str = ""
) -> IncidentSummary:
    """Every incident that overlaps `period` (see the module docstring)."""
    default, per_alert = evaluation_intervals(client)
    step = min([default, *per_alert.values()])
    excluded = "|".join(NOT_INCIDENTS)
    selector = f'ALERTS{{alertstate="firing",alertname!~"{excluded}"' + (
        f",{matchers}}}" if matchers else "}"
    )
    query_start = period.start.timestamp() - LOOKBACK_SECONDS
    series = client.range(f"timestamp({selector})", query_start, period.end.timestamp(), step)
    incidents: list[Incident] = []
    for item in series:
        labels = dict(item.labels)
        labels.pop("alertstate", None)
        name = labels.get("alertname", "")
        evaluation = per_alert.get(name, default)
        incidents.extend(
            _intervals(labels, (value for _, value in item.points), evaluation, query_start, period)
        )
    incidents.sort(key=lambda i: (i.start, i.alertname, i.affected))
    return IncidentSummary(tuple(incidents), default, step)


def _intervals(
    labels: dict[str, str],
    timestamps: Iterable[float],
    evaluation: float,
    query_start: float,
    period: Period,
) -> list[Incident]:
    """Split the firing evaluation times of one alert into incidents overlapping `period`."""
    moments = sorted({round(t, 3) for t in timestamps})
    runs: list[list[float]] = []
    for moment in moments:
        if runs and moment - runs[-1][-1] <= 1.5 * evaluation:
            runs[-1].append(moment)
        else:
            runs.append([moment])
    start_s, end_s = period.start.timestamp(), period.end.timestamp()
    out: list[Incident] = []
    for run in runs:
        first, last = run[0], run[-1]
        resolved = last + evaluation
        if resolved <= start_s or first >= end_s:
            continue
        out.append(
            Incident(
                alertname=labels.get("alertname", ""),
                severity=labels.get("severity", ""),
                cause=labels.get("cause", ""),
                affected=_affected(labels),
                start=first,
                end=resolved if resolved <= end_s else None,
                start_known=first > query_start,
                evaluation_seconds=evaluation,
            )
        )
    return out


def _affected(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((name, labels[name]) for name in AFFECTED_LABELS if labels.get(name))

"""The backtest's findings: alert episodes, pages per week, detection per fault, false pages.

Definitions (the README's Backtest section says the same):
- an *episode* is one firing spell of one alert series (from the evaluation where it fired to
  the first one where it no longer fired);
- a *page* is a notification of a `severity="critical"` alert: the spells in which the alert is
  firing and not muted by an inhibit rule, merged per Alertmanager group (the root route's
  `group_by`); an alert muted at first and unmuted later pages then;
- a *ticket* is the same for `severity="warning"`;
- a fault is *detected* by the first alert (any severity but `info`) that fires in its window,
  from its start to `grace` after its end; *resolved after end* is when the last alert that
  fired in the window stopped firing, from the fault's end; its *cause* is the `cause` label of
  the first alert of the window that has one;
- a *false page* is a page that starts outside every fault's window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.backtest.evaluation import AlertSeries
from exporter.backtest.inhibition import AlertmanagerConfig, muted_by
from exporter.simulator.scenario import Fault
from exporter.timestamps import format_rfc3339_ms

REPORT_VERSION = 1
WEEK_MS = 7 * 86_400_000
#: Labels shown for an alert in the report (the others are the job's or the rule's).
SHOWN_LABELS: tuple[str, ...] = ("gateway", "acquirer", "carrier", "area", "source")

Interval = tuple[int, int]


@dataclass(frozen=True)
class Spell:
    """One firing episode of one alert series, with the parts of it that were muted."""

    labels: dict[str, str]
    start_ms: int
    end_ms: int  # the run's end when it was still firing
    open: bool  # still firing at the end of the run
    muted: list[Interval]

    @property
    def alert(self) -> str:
        return self.labels["alertname"]

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    def unmuted(self) -> list[Interval]:
        """The parts of the spell that were not muted."""
        out: list[Interval] = []
        at = self.start_ms
        for start, end in self.muted:
            if start > at:
                out.append((at, start))
            at = max(at, end)
        if at < self.end_ms:
            out.append((at, self.end_ms))
        return out


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def spells(alerts: Sequence[AlertSeries], end_ms: int, am: AlertmanagerConfig) -> list[Spell]:
    """Every firing episode with its muted parts (inhibit rules against every other episode)."""
    firing = [a for a in alerts if a.episodes]
    sources = {
        id(target): [
            source
            for source in firing
            if source is not target and muted_by(am.inhibit_rules, source.labels, target.labels)
        ]
        for target in firing
    }
    out = []
    for target in firing:
        for episode in target.episodes:
            start = episode.fired_ms
            end = episode.resolved_ms if episode.resolved_ms is not None else end_ms
            muting = [
                (max(start, s.fired_ms), min(end, s_end))
                for source in sources[id(target)]
                for s in source.episodes
                if s.fired_ms < end
                and (s_end := s.resolved_ms if s.resolved_ms is not None else end_ms) > start
            ]
            out.append(
                Spell(target.labels, start, end, episode.resolved_ms is None, _merge(muting))
            )
    return sorted(out, key=lambda s: (s.start_ms, s.alert))


@dataclass(frozen=True)
class Notification:
    """A page or ticket: one Alertmanager group's unmuted firing spell."""

    alert: str
    severity: str
    group: dict[str, str]
    cause: str
    start_ms: int
    end_ms: int


def notifications(all_spells: Sequence[Spell], am: AlertmanagerConfig) -> list[Notification]:
    """Unmuted spells of critical and warning alerts, merged per Alertmanager group."""
    groups: dict[tuple[str, ...], list[tuple[Interval, Spell]]] = {}
    for spell in all_spells:
        if spell.severity not in ("critical", "warning"):
            continue
        key = (spell.severity, *(spell.labels.get(name, "") for name in am.group_by))
        for piece in spell.unmuted():
            groups.setdefault(key, []).append((piece, spell))
    out = []
    for key, pieces in groups.items():
        for start, end in _merge(piece for piece, _ in pieces):
            first = min(
                (s for (p_start, _), s in pieces if start <= p_start < end),
                key=lambda s: s.start_ms,
            )
            group = {name: value for name, value in zip(am.group_by, key[1:], strict=True) if value}
            out.append(
                Notification(
                    alert=first.alert,
                    severity=key[0],
                    group=group,
                    cause=first.labels.get("cause", ""),
                    start_ms=start,
                    end_ms=end,
                )
            )
    return sorted(out, key=lambda n: (n.start_ms, n.alert))


def _time(ms: int | None) -> str | None:
    return None if ms is None else format_rfc3339_ms(ms)


def _shown(labels: dict[str, str]) -> dict[str, str]:
    return {k: labels[k] for k in SHOWN_LABELS if k in labels}


def build_report(
    *,
    alerts: Sequence[AlertSeries],
    faults: Sequence[Fault],
    am: AlertmanagerConfig,
    start_ms: int,
    end_ms: int,
    grace_ms: int,
    run: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, Any]:
    """The machine-readable report (stable keys; `version` changes when they do)."""
    weeks = max(end_ms - start_ms, 1) / WEEK_MS
    all_spells = spells(alerts, end_ms, am)
    sent = notifications(all_spells, am)
    pages = [n for n in sent if n.severity == "critical"]
    rules = {(a.rule.name, a.rule.labels.get("severity", "")) for a in alerts}
    rules |= {(s.alert, s.severity) for s in all_spells}
    per_alert = []
    for name, severity in sorted(rules):
        episodes = [s for s in all_spells if s.alert == name and s.severity == severity]
        own = [n for n in sent if n.alert == name and n.severity == severity]
        n_pages = sum(1 for n in own if n.severity == "critical")
        n_tickets = sum(1 for n in own if n.severity == "warning")
        per_alert.append(
            {
                "alert": name,
                "severity": severity,
                "episodes": len(episodes),
                "episodes_per_week": round(len(episodes) / weeks, 2),
                "pages": n_pages,
                "pages_per_week": round(n_pages / weeks, 2),
                "tickets": n_tickets,
                "tickets_per_week": round(n_tickets / weeks, 2),
                "firing_seconds": sum(s.end_ms - s.start_ms for s in episodes) // 1000,
            }
        )
    windows = [(f.start_ms, f.end_ms + grace_ms) for f in faults]
    fault_rows = []
    for fault in faults:
        w_start, w_end = fault.start_ms, fault.end_ms + grace_ms
        hits = [
            s
            for s in all_spells
            if w_start <= s.start_ms < w_end and s.severity not in ("info", "")
        ]
        fault_pages = [p for p in pages if w_start <= p.start_ms < w_end]
        first = hits[0] if hits else None
        caused = next((s for s in hits if s.labels.get("cause")), None)
        first_page = fault_pages[0] if fault_pages else None
        resolved = None
        if hits and not any(s.open for s in hits):
            resolved = (max(s.end_ms for s in hits) - fault.end_ms) // 1000
        fault_rows.append(
            {
                "id": fault.fault_id,
                "kind": fault.kind,
                "start": _time(fault.start_ms),
                "end": _time(fault.end_ms),
                "detected": first is not None,
                "first_alert": first.alert if first else None,
                "first_alert_severity": first.severity if first else None,
                "detect_after_seconds": (first.start_ms - fault.start_ms) // 1000
                if first
                else None,
                "cause_alert": caused.alert if caused else None,
                "cause": caused.labels.get("cause") if caused else None,
                "cause_after_seconds": (caused.start_ms - fault.start_ms) // 1000
                if caused
                else None,
                "first_page": first_page.alert if first_page else None,
                "page_cause": first_page.cause if first_page else None,
                "page_after_seconds": (first_page.start_ms - fault.start_ms) // 1000
                if first_page
                else None,
                "resolved_after_end_seconds": resolved,
                "alerts": [
                    {
                        "alert": s.alert,
                        "severity": s.severity,
                        "cause": s.labels.get("cause"),
                        "labels": _shown(s.labels),
                        "after_seconds": (s.start_ms - fault.start_ms) // 1000,
                        "resolved_after_end_seconds": None
                        if s.open
                        else (s.end_ms - fault.end_ms) // 1000,
                    }
                    for s in hits
                ],
                "pages": [
                    {
                        "alert": p.alert,
                        "cause": p.cause,
                        "group": p.group,
                        "after_seconds": (p.start_ms - fault.start_ms) // 1000,
                        "after_end": p.start_ms >= fault.end_ms,
                    }
                    for p in fault_pages
                ],
            }
        )
    false_pages = [
        {
            "alert": p.alert,
            "cause": p.cause,
            "group": p.group,
            "start": _time(p.start_ms),
            "end": _time(p.end_ms),
            "seconds": (p.end_ms - p.start_ms) // 1000,
        }
        for p in pages
        if not any(w_start <= p.start_ms < w_end for w_start, w_end in windows)
    ]
    return {
        "version": REPORT_VERSION,
        "run": run,
        "timings_seconds": {k: round(v, 1) for k, v in timings.items()},
        "summary": {
            "days": round((end_ms - start_ms) / 86_400_000, 3),
            "pages": len(pages),
            "pages_per_week": round(len(pages) / weeks, 2),
            "tickets": sum(1 for n in sent if n.severity == "warning"),
            "tickets_per_week": round(sum(1 for n in sent if n.severity == "warning") / weeks, 2),
            "false_pages": len(false_pages),
            "faults": len(faults),
            "faults_detected": sum(1 for f in fault_rows if f["detected"]),
        },
        "alerts": per_alert,
        "faults": fault_rows,
        "false_pages": false_pages,
        "episodes": [
            {
                "alert": s.alert,
                "severity": s.severity,
                "cause": s.labels.get("cause"),
                "labels": _shown(s.labels),
                "start": _time(s.start_ms),
                "end": None if s.open else _time(s.end_ms),
                "muted_seconds": sum(e - b for b, e in s.muted) // 1000,
            }
            for s in all_spells
        ],
    }


def _minutes(seconds: int | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f} min"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(c) for c in header], *[["—" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def render_table(report: dict[str, Any]) -> str:
    """The report as readable text tables."""
    run, summary = report["run"], report["summary"]
    lines = [
        f"Backtest {run['start']} → {run['end']} ({summary['days']:g} days, seed {run['seed']}, "
        f"scenario {run['scenario']}), scrape {run['scrape_interval']}, "
        f"evaluation {run['evaluation_interval']}",
        f"Pages: {summary['pages']} ({summary['pages_per_week']:g}/week), tickets: "
        f"{summary['tickets']} ({summary['tickets_per_week']:g}/week), false pages: "
        f"{summary['false_pages']}, faults detected: {summary['faults_detected']}/"
        f"{summary['faults']}",
        "",
        "Alerts that fired",
    ]
    fired = [a for a in report["alerts"] if a["episodes"]]
    lines += _table(
        ("alert", "severity", "episodes", "/week", "pages", "/week", "tickets", "/week"),
        [
            (
                a["alert"],
                a["severity"],
                a["episodes"],
                a["episodes_per_week"],
                a["pages"],
                a["pages_per_week"],
                a["tickets"],
                a["tickets_per_week"],
            )
            for a in fired
        ]
        or [("(none)", "", "", "", "", "", "", "")],
    )
    if report["faults"]:
        lines += ["", "Faults"]
        lines += _table(
            (
                "id",
                "kind",
                "start",
                "end",
                "first alert",
                "after",
                "first alert with a cause",
                "cause",
                "after",
                "first page",
                "after",
                "resolved after end",
            ),
            [
                (
                    f["id"],
                    f["kind"],
                    f["start"],
                    f["end"],
                    f["first_alert"] or "NOT DETECTED",
                    _minutes(f["detect_after_seconds"]),
                    f["cause_alert"],
                    f["cause"],
                    _minutes(f["cause_after_seconds"]),
                    f["first_page"],
                    _minutes(f["page_after_seconds"]),
                    _minutes(f["resolved_after_end_seconds"]),
                )
                for f in report["faults"]
            ],
        )
        late = [
            (f["id"], p["alert"], p["cause"], _minutes(p["after_seconds"]))
            for f in report["faults"]
            for p in f["pages"]
            if p["after_end"]
        ]
        if late:
            lines += ["", "Pages that came after their fault had ended"]
            lines += _table(("fault", "alert", "cause", "after fault start"), late)
    lines += ["", "False pages (outside every fault)"]
    lines += _table(
        ("alert", "cause", "group", "start", "end"),
        [
            (
                p["alert"],
                p["cause"] or "",
                ",".join(f"{k}={v}" for k, v in p["group"].items() if k != "alertname"),
                p["start"],
                p["end"],
            )
            for p in report["false_pages"]
        ]
        or [("(none)", "", "", "", "")],
    )
    timings = report["timings_seconds"]
    lines += ["", "Timings (wall seconds): " + ", ".join(f"{k} {v:g}" for k, v in timings.items())]
    return "\n".join(lines) + "\n"

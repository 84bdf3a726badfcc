"""Which alerts were firing for a transaction's gateway or acquirer around its time (Prometheus).

Prometheus keeps every alert's history in the `ALERTS` series (`alertstate="firing"`, one sample
per rule evaluation). One instant query of the range selector `ALERTS{alertstate="firing"}[…]`
returns the raw samples, with their exact times, over the union of the results' windows: from
`lookback` before the earliest payment to `after` past the latest outcome. Samples closer than
`GAP` make one firing run. A run counts for a transaction when it overlaps [payment time,
outcome time + `after`] (alert rules trail their cause by their `for:` and windows) and carries
the transaction's `acquirer` or the `gateway` of one of its messages (any gateway when no SMS
was sent). Alerts without either label (Watchdog, exporter health) say nothing about one
transaction and are left out.

Alertmanager is not asked: it only knows the alerts active now, not those of last Tuesday.
The alerts firing now (the landing page) come from Prometheus' own `/api/v1/alerts`, which
carries the rules' annotations (summary, runbook_url) that the `ALERTS` series lack.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from exporter.lookup.settings import PrometheusSettings

log = logging.getLogger(__name__)

SELECTOR = 'ALERTS{alertstate="firing"}'
#: Samples further apart start a new run: Prometheus' own staleness delta (rules evaluate
#: every 15 s to 1 min).
GAP_MS = 5 * 60_000


class AlertsUnavailable(Exception):
    """Prometheus could not be asked, or answered something else than a matrix."""


@dataclass(frozen=True)
class FiringAlert:
    """One continuous run of a firing alert."""

    alertname: str
    labels: dict[str, str] = field(hash=False)
    firing_from_ms: int  # its first sample
    firing_until_ms: int  # its last sample
    started_earlier: bool = False  # firing at the start of the queried range: began earlier
    continues: bool = False  # firing at the end of the queried range: may have gone on

    @property
    def gateway(self) -> str:
        """The alert's gateway label ("" when none)."""
        return self.labels.get("gateway", "")

    @property
    def acquirer(self) -> str:
        """The alert's acquirer label ("" when none)."""
        return self.labels.get("acquirer", "")

    def to_json(self, rfc3339: Any) -> dict[str, Any]:
        """JSON form; `rfc3339` formats Unix ms."""
        return {
            "alertname": self.alertname,
            "severity": self.labels.get("severity", ""),
            "cause": self.labels.get("cause", ""),
            "gateway": self.gateway or None,
            "acquirer": self.acquirer or None,
            "firing_from": rfc3339(self.firing_from_ms),
            "started_earlier": self.started_earlier,
            "firing_until": rfc3339(self.firing_until_ms),
            "continues": self.continues,
        }


#: How firing alerts are ordered for people: the most urgent first.
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2, "none": 3}


@dataclass(frozen=True)
class ActiveAlert:
    """An alert firing now, with the annotations its rule gave it."""

    alertname: str
    labels: dict[str, str] = field(hash=False)
    annotations: dict[str, str] = field(hash=False)
    active_at: str = ""  # RFC 3339, as Prometheus gives it

    @property
    def severity(self) -> str:
        """The alert's severity label ("" when none)."""
        return self.labels.get("severity", "")

    @property
    def runbook_url(self) -> str:
        """Its runbook (`runbook_url` annotation), or ""."""
        return self.annotations.get("runbook_url", "")


@dataclass(frozen=True)
class Window:
    """What one transaction asks: the time it matters and the labels that concern it."""

    start_ms: int
    end_ms: int
    acquirer: str
    gateways: frozenset[str]  # empty: no SMS was sent, every gateway concerns it


def runs(series: Sequence[dict[str, Any]], start_ms: int, end_ms: int) -> list[FiringAlert]:
    """Continuous firing runs of `ALERTS` matrix series (a gap over `GAP_MS` ends a run)."""
    out: list[FiringAlert] = []
    for item in series:
        labels = {k: str(v) for k, v in dict(item.get("metric") or {}).items()}
        name = labels.pop("alertname", "")
        labels.pop("alertstate", None)
        labels.pop("__name__", None)
        times = sorted(round(float(point[0]) * 1000) for point in item.get("values") or [])
        if not name or not times:
            continue
        first = previous = times[0]
        for at in [*times[1:], None]:
            if at is not None and at - previous <= GAP_MS:
                previous = at
                continue
            out.append(
                FiringAlert(
                    alertname=name,
                    labels=labels,
                    firing_from_ms=first,
                    firing_until_ms=previous,
                    started_earlier=first - start_ms < GAP_MS,
                    continues=end_ms - previous < GAP_MS,
                )
            )
            if at is not None:
                first = previous = at
    return out


def concerning(alerts: Sequence[FiringAlert], window: Window) -> list[FiringAlert]:
    """The runs that overlap the window and carry its acquirer or one of its gateways."""
    out = []
    for alert in alerts:
        if alert.firing_from_ms > window.end_ms or alert.firing_until_ms < window.start_ms:
            continue
        if (alert.acquirer and alert.acquirer == window.acquirer) or (
            alert.gateway and (not window.gateways or alert.gateway in window.gateways)
        ):
            out.append(alert)
    return sorted(out, key=lambda a: (a.firing_from_ms, a.alertname))


class AlertHistory:
    """Asks Prometheus for the firing alerts around a set of transactions."""

    def __init__(self, settings: PrometheusSettings, session: requests.Session | None = None):
        self.settings = settings
        self._session = session or requests.Session()

    def firing(self, windows: Sequence[Window], now_ms: int) -> list[list[FiringAlert]]:
        """For each window, the alert runs that concern it (raises `AlertsUnavailable`)."""
        if not windows:
            return []
        start_ms = min(w.start_ms for w in windows) - self.settings.lookback_ms
        end_ms = min(now_ms, max(w.end_ms for w in windows))
        range_s = max(1, math.ceil((end_ms - start_ms) / 1000))
        data = self._ask(
            "/api/v1/query",
            {"query": f"{SELECTOR}[{range_s}s]", "time": f"{end_ms / 1000:.3f}"},
            "alert history",
        )
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise AlertsUnavailable("Prometheus answered no matrix")
        found = runs(data.get("result") or [], start_ms, end_ms)
        return [concerning(found, window) for window in windows]

    def active(self, timeout_s: float | None = None) -> list[ActiveAlert]:
        """The alerts firing now, as Prometheus' rule evaluation holds them (`/api/v1/alerts`),
        with their annotations; pending ones are left out (raises `AlertsUnavailable`).

        `timeout_s` (at most the settings' timeout) bounds the wait for a page built live."""
        limit = self.settings.timeout_s if timeout_s is None else timeout_s
        data = self._ask("/api/v1/alerts", {}, "active alerts", min(limit, self.settings.timeout_s))
        if not isinstance(data, dict) or not isinstance(data.get("alerts"), list):
            raise AlertsUnavailable("Prometheus answered no alert list")
        out = []
        for item in data["alerts"]:
            if not isinstance(item, dict) or item.get("state") != "firing":
                continue
            labels = {str(k): str(v) for k, v in dict(item.get("labels") or {}).items()}
            annotations = {str(k): str(v) for k, v in dict(item.get("annotations") or {}).items()}
            name = labels.pop("alertname", "")
            if name:
                out.append(ActiveAlert(name, labels, annotations, str(item.get("activeAt", ""))))
        return sorted(out, key=lambda a: (_SEVERITY_ORDER.get(a.severity, 9), a.alertname))

    def _ask(self, path: str, params: dict[str, str], what: str, timeout_s: float = 0) -> Any:
        """The `data` of a successful Prometheus API answer (raises `AlertsUnavailable`)."""
        try:
            response = self._session.get(
                f"{self.settings.url}{path}",
                params=params,
                timeout=timeout_s or self.settings.timeout_s,
            )
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning(f"{what} unavailable", extra={"error": type(exc).__name__})
            raise AlertsUnavailable("Prometheus did not answer") from exc
        if not isinstance(document, dict):
            raise AlertsUnavailable("Prometheus answered no JSON object")
        if response.status_code != 200 or document.get("status") != "success":
            log.warning(
                f"{what} unavailable",
                extra={"status": response.status_code, "error": document.get("errorType", "")},
            )
            raise AlertsUnavailable(f"Prometheus answered HTTP {response.status_code}")
        return document.get("data") or {}

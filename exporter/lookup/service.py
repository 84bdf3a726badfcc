"""One lookup from start to end: validate, read the store, ask for alerts, explain, audit.

The CLI, the HTTP API and the page all come through `LookupService.run`, so each lookup is
audited exactly once, whoever asked and however: who, when, through what, with which key (a
phone key only as its last 4 digits), the time range and how many transactions were found.
A refused request (bad input) is audited with its key kind only, never its value.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from exporter.catalogue import CAUSES
from exporter.lookup.alerts import AlertHistory, AlertsUnavailable, FiringAlert, Window
from exporter.lookup.explain import Explained, explain, situation_of
from exporter.lookup.query import BadLookup, LookupQuery, parse_query
from exporter.lookup.settings import LookupSettings
from exporter.store import AuditEntry, Store, StoredMessage, StoredTransaction
from exporter.timestamps import format_rfc3339_ms

log = logging.getLogger(__name__)

#: Situations for which an incident at the time is worth showing.
_ALERT_SITUATIONS = frozenset((*CAUSES, "on_its_way", "awaiting"))


@dataclass(frozen=True)
class Caller:
    """Who asks, for the audit."""

    user: str
    method: str  # token | basic | cli
    channel: str  # api | page | cli
    remote: str = ""


@dataclass(frozen=True)
class LookupResult:
    """What a lookup found, explained."""

    query: LookupQuery
    results: list[Explained]
    truncated: bool
    alerts_status: str  # ok | not_configured | unavailable
    timezone: str

    def to_json(self) -> dict[str, Any]:
        """The JSON document of `GET /api/v1/receipts` and `smswatch lookup --output json`."""
        q = self.query
        query: dict[str, Any] = {q.kind: q.value}
        if q.at_ms is not None and q.window_ms is not None:
            query.update(
                {
                    "from": format_rfc3339_ms(q.from_ms),
                    "to": format_rfc3339_ms(q.to_ms),
                }
            )
        return {
            "query": query,
            "count": len(self.results),
            "truncated": self.truncated,
            "timezone": self.timezone,
            "alerts": self.alerts_status,
            "results": [r.to_json() for r in self.results],
        }


class LookupService:
    """Lookups over one store with one set of settings."""

    def __init__(
        self,
        store: Store,
        settings: LookupSettings,
        alerts: AlertHistory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.alerts = alerts
        self._clock = clock

    def parse(self, params: Mapping[str, str]) -> LookupQuery:
        """Validate parameters with this service's time zone and window limits."""
        return parse_query(
            params,
            self.settings.zone,
            default_window_ms=self.settings.default_window_ms,
            max_window_ms=self.settings.max_window_ms,
        )

    def run(self, params: Mapping[str, str], caller: Caller, lang: str = "en") -> LookupResult:
        """Validate, look up, explain and audit (BadLookup after auditing the refusal)."""
        now_ms = int(self._clock() * 1000)
        try:
            query = self.parse(params)
        except BadLookup as exc:
            self._audit(caller, now_ms, exc.kind or "-", "", None, None, 0, "bad_request")
            raise
        result = self.find(query, lang)
        from_ms, to_ms = (query.from_ms, query.to_ms) if query.at_ms is not None else (None, None)
        self._audit(
            caller, now_ms, query.kind, query.audit_key, from_ms, to_ms, len(result.results), "ok"
        )
        log.info(
            "lookup",
            extra={
                "user": caller.user,
                "channel": caller.channel,
                "key": query.kind,
                "results": len(result.results),
            },
        )
        return result

    def find(self, query: LookupQuery, lang: str = "en") -> LookupResult:
        """Look up and explain (no audit: `run` is the audited entry point)."""
        if query.at_ms is not None:
            rows = self.store.lookup(
                query.kind, query.value, query.from_ms, query.to_ms, self.settings.max_results
            )
        else:
            rows = self.store.lookup(query.kind, query.value, limit=self.settings.max_results)
        now_ms = int(self._clock() * 1000)
        found = [(t, rows.messages.get(t.join_key or t.rrn, [])) for t in rows.transactions]
        situations = [situation_of(t, messages) for t, messages in found]
        status = "not_configured"
        alerts_by_index: dict[int, list[FiringAlert]] = {}
        if self.alerts is not None:
            wanted = [i for i, s in enumerate(situations) if s in _ALERT_SITUATIONS]
            windows = [self._window(found[i][0], found[i][1], now_ms) for i in wanted]
            try:
                for i, firing in zip(wanted, self.alerts.firing(windows, now_ms), strict=True):
                    alerts_by_index[i] = firing
                status = "ok"
            except AlertsUnavailable:
                status = "unavailable"
        results = []
        for i, (t, messages) in enumerate(found):
            alerts: list[FiringAlert] | None
            if status == "unavailable" and situations[i] in _ALERT_SITUATIONS:
                alerts = None
            else:
                alerts = alerts_by_index.get(i, [])
            results.append(explain(t, messages, alerts, self.settings.zone, lang))
        return LookupResult(query, results, rows.truncated, status, self.settings.timezone)

    def _window(self, t: StoredTransaction, messages: list[StoredMessage], now_ms: int) -> Window:
        assert self.settings.prometheus is not None
        after = self.settings.prometheus.after_ms
        end = t.decide_ms if t.state == "decided" and t.decide_ms is not None else now_ms
        return Window(
            start_ms=t.txn_ms,
            end_ms=min(now_ms, end + after),
            acquirer=t.acquirer,
            gateways=frozenset(m.gateway for m in messages),
        )

    def _audit(
        self,
        caller: Caller,
        at_ms: int,
        kind: str,
        key: str,
        from_ms: int | None,
        to_ms: int | None,
        results: int,
        status: str,
    ) -> None:
        self.store.add_audit(
            AuditEntry(
                at_ms=at_ms,
                user=caller.user,
                method=caller.method,
                channel=caller.channel,
                remote=caller.remote,
                key_kind=kind,
                key=key,
                from_ms=from_ms,
                to_ms=to_ms,
                results=results,
                status=status,
            )
        )


AUDIT_CSV_COLUMNS: tuple[str, ...] = (
    "time",
    "user",
    "method",
    "channel",
    "remote",
    "key_kind",
    "key",
    "from",
    "to",
    "results",
    "status",
)


def _cell(value: str) -> str:
    """Neutralize spreadsheet formulas (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def audit_csv(entries: Iterable[AuditEntry]) -> str:
    """The audit as CSV (RFC 4180, times RFC 3339 UTC), header first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(AUDIT_CSV_COLUMNS)
    for e in entries:
        writer.writerow(
            [
                format_rfc3339_ms(e.at_ms),
                _cell(e.user),
                e.method,
                e.channel,
                _cell(e.remote),
                e.key_kind,
                _cell(e.key),
                "" if e.from_ms is None else format_rfc3339_ms(e.from_ms),
                "" if e.to_ms is None else format_rfc3339_ms(e.to_ms),
                e.results,
                e.status,
            ]
        )
    return out.getvalue()

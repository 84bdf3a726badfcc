"""A small client of the Prometheus HTTP API (`/api/v1/query`, `query_range`, status).

Every failure becomes a `ReportError` with one line naming the server and the query, so the
command line can print it and exit 1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import yaml

from exporter.errors import ReportError
from exporter.timestamps import parse_duration_ms

log = logging.getLogger(__name__)

#: Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS_PER_QUERY = 11_000

Labels = tuple[tuple[str, str], ...]
T = TypeVar("T")


def labels_key(metric: Mapping[str, str]) -> Labels:
    """A hashable, sorted form of a label set."""
    return tuple(sorted(metric.items()))


@dataclass(frozen=True)
class Sample:
    """One series of an instant-query answer: its labels, the evaluation time and value."""

    labels: Labels
    time: float
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range answer: its labels and (time, value) points in time order."""

    labels: Labels
    points: tuple[tuple[float, float], ...]


class PrometheusClient:
    """Queries one Prometheus server; `timeout` applies to each request."""

    def __init__(
        self, url: str, *, timeout: float = 120.0, session: requests.Session | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = session or requests.Session()

    # -- raw API -------------------------------------------------------------------------

    def _call(self, path: str, params: Mapping[str, str] | None = None, query: str = "") -> Any:
        where = f"{self.url}{path}"
        try:
            if params is None:
                response = self._session.get(where, timeout=self.timeout)
            else:
                response = self._session.post(where, data=dict(params), timeout=self.timeout)
        except requests.Timeout as exc:
            raise ReportError(
                f"Prometheus at {self.url} timed out after {self.timeout:g}s"
                + (f" on {query}" if query else "")
            ) from exc
        except requests.RequestException as exc:
            raise ReportError(
                f"Prometheus unreachable at {self.url}: {type(exc).__name__}"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = (body or {}).get("error") if isinstance(body, dict) else None
            raise ReportError(
                f"Prometheus at {self.url} answered HTTP {response.status_code}"
                + (f": {detail}" if detail else "")
                + (f" (query: {query})" if query else "")
            )
        return body.get("data")

    def instant(self, query: str, at: float) -> list[Sample]:
        """Evaluate `query` at Unix time `at` (seconds); a vector answer."""
        data = self._call("/api/v1/query", {"query": query, "time": _ts(at)}, query)
        if data.get("resultType") != "vector":
            raise ReportError(f"Prometheus returned {data.get('resultType')} for {query}")
        return [
            Sample(labels_key(item["metric"]), float(item["value"][0]), float(item["value"][1]))
            for item in data["result"]
        ]

    def label_values(self, query: str, at: float, label: str) -> list[str]:
        """The values of `label` in the answer of an instant query, sorted, empty left out."""
        return sorted({dict(s.labels).get(label, "") for s in self.instant(query, at)} - {""})

    def raw(self, query: str, at: float) -> list[Series]:
        """Evaluate a range selector (`x[1h]`) at `at`: the raw samples, staleness excluded."""
        data = self._call("/api/v1/query", {"query": query, "time": _ts(at)}, query)
        if data.get("resultType") != "matrix":
            raise ReportError(f"Prometheus returned {data.get('resultType')} for {query}")
        return [_series(item) for item in data["result"]]

    def range(self, query: str, start: float, end: float, step: float) -> list[Series]:
        """Evaluate `query` at start, start+step, …, ≤ end; split into requests of at most
        `MAX_POINTS_PER_QUERY` points and joined per series."""
        joined: dict[Labels, list[tuple[float, float]]] = {}
        for chunk_start, chunk_end in _chunks(start, end, step):
            data = self._call(
                "/api/v1/query_range",
                {
                    "query": query,
                    "start": _ts(chunk_start),
                    "end": _ts(chunk_end),
                    "step": _ts(step),
                },
                query,
            )
            for item in data["result"]:
                series = _series(item)
                joined.setdefault(series.labels, []).extend(series.points)
        return [Series(labels, tuple(points)) for labels, points in joined.items()]

    def config(self) -> dict[str, Any]:
        """The server's loaded configuration (`/api/v1/status/config`), parsed."""
        data = self._call("/api/v1/status/config")
        loaded = yaml.safe_load(data.get("yaml") or "") or {}
        return loaded if isinstance(loaded, dict) else {}

    def rule_groups(self) -> list[dict[str, Any]]:
        """The loaded rule groups (`/api/v1/rules`)."""
        data = self._call("/api/v1/rules")
        groups = data.get("groups") or []
        return [g for g in groups if isinstance(g, dict)]

    def build_info(self) -> dict[str, Any]:
        """`/api/v1/status/buildinfo`: version and revision of the server."""
        data = self._call("/api/v1/status/buildinfo")
        return data if isinstance(data, dict) else {}

    def runtime_info(self) -> dict[str, Any]:
        """`/api/v1/status/runtimeinfo`: retention and other runtime settings."""
        data = self._call("/api/v1/status/runtimeinfo")
        return data if isinstance(data, dict) else {}


def _ts(seconds: float) -> str:
    """Unix seconds with millisecond precision, as Prometheus reads them."""
    return f"{round(seconds * 1000) / 1000:.3f}"


def _series(item: Mapping[str, Any]) -> Series:
    return Series(
        labels_key(item["metric"]),
        tuple((float(t), float(v)) for t, v in item.get("values", [])),
    )


def _chunks(start: float, end: float, step: float) -> Iterator[tuple[float, float]]:
    if step <= 0 or end < start:
        raise ValueError("need step > 0 and end >= start")
    points = math.floor((end - start) / step + 1e-9) + 1
    index = 0
    while index < points:
        count = min(MAX_POINTS_PER_QUERY, points - index)
        yield start + index * step, start + (index + count - 1) * step
        index += count


def parse_duration_seconds(text: object, default: float) -> float:
    """A Prometheus config duration (``30s``, ``1m``, ``1h30m``) in seconds, else `default`."""
    if not isinstance(text, str):
        return default
    try:
        seconds = parse_duration_ms(text) / 1000
    except ValueError:
        return default
    return seconds if seconds > 0 else default


def optional(call: Callable[[], T]) -> T | None:
    """`call()`, or None when the server refuses it: status and rules endpoints only add
    detail, and Prometheus-compatible backends (Thanos, Mimir) may not serve them."""
    try:
        return call()
    except ReportError as exc:
        log.warning("prometheus endpoint unavailable", extra={"error": str(exc)})
        return None

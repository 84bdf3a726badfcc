"""Helpers of the report tests (fixtures live in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import report_dataset

from exporter.reports.periods import load_zone, resolve_period
from exporter.reports.report import ReportRequest

#: When the test reports are "generated" (the clock passed to the report code).
GENERATED_AT = datetime(2026, 3, 11, 1, 0, tzinfo=UTC)


@dataclass(frozen=True)
class LoadedPrometheus:
    """A running Prometheus and the history it holds."""

    url: str
    dataset: report_dataset.Dataset


def daily_request(
    url: str,
    out: Path,
    lang: str = "en",
    formats: tuple[str, ...] = ("pdf", "html", "csv"),
) -> ReportRequest:
    """The daily report on the dataset's day (2026-03-10, Asia/Shanghai)."""
    zone = load_zone(report_dataset.ZONE)
    period = resolve_period("daily", zone, end=GENERATED_AT, now=GENERATED_AT)
    return ReportRequest(prometheus_url=url, period=period, out_dir=out, lang=lang, formats=formats)

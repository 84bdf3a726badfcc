"""One report, end to end: read the figures, build the tables, write the files."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from exporter import __version__
from exporter.errors import ConfigError
from exporter.reports.figures import ReportData, gather
from exporter.reports.objectives import DEFAULT_OBJECTIVES, Objectives
from exporter.reports.outputs import report_directory, write_manifest
from exporter.reports.periods import Period
from exporter.reports.prometheus import PrometheusClient
from exporter.reports.tables import build_tables
from exporter.reports.texts import LANGUAGES, Texts

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("pdf", "html", "csv")


@dataclass(frozen=True)
class ReportRequest:
    """What to report on, from where, and where to write it."""

    prometheus_url: str
    period: Period
    out_dir: Path
    lang: str = "en"
    formats: tuple[str, ...] = FORMATS
    objectives: Objectives = DEFAULT_OBJECTIVES
    #: Extra PromQL matchers for every smswatch series, e.g. ``job="smswatch"``.
    matchers: str = ""
    #: Extra PromQL matchers for the ALERTS series read as incidents.
    alert_matchers: str = ""
    timeout_seconds: float = 120.0

    @property
    def name(self) -> str:
        """The report directory name: ``smswatch-daily-2026-03-10-en``."""
        return f"smswatch-{self.period.report_id}-{self.lang}"


def parse_formats(text: str | list[str] | tuple[str, ...], *, path: str) -> tuple[str, ...]:
    """``pdf,html,csv`` (or a list) → a tuple in canonical order; unknown or none is an error."""
    items = text.split(",") if isinstance(text, str) else list(text)
    wanted = [str(item).strip().lower() for item in items if str(item).strip()]
    unknown = sorted(set(wanted) - set(FORMATS))
    if unknown or not wanted:
        raise ConfigError(
            f"formats must be a non-empty subset of {', '.join(FORMATS)}"
            + (f", got {', '.join(unknown)}" if unknown else ""),
            path=path,
        )
    return tuple(f for f in FORMATS if f in wanted)


def check_lang(lang: str, *, path: str) -> str:
    if lang not in LANGUAGES:
        raise ConfigError(f"must be one of {', '.join(LANGUAGES)}, got {lang!r}", path=path)
    return lang


def generate_report(request: ReportRequest, *, now: Callable[[], datetime] | None = None) -> Path:
    """Produce the report of `request`; return its directory. Raises `ReportError` (runtime)
    or `ConfigError` (bad request); on error nothing is left under the report's name."""
    clock = now or (lambda: datetime.now(UTC))
    started = time.monotonic()
    client = PrometheusClient(request.prometheus_url, timeout=request.timeout_seconds)
    data = gather(
        client,
        request.period,
        request.objectives,
        matchers=request.matchers,
        alert_matchers=request.alert_matchers,
        now=clock(),
    )
    path = write_report(data, request)
    log.info(
        "report written",
        extra={
            "report": request.name,
            "path": str(path),
            "seconds": round(time.monotonic() - started, 2),
        },
    )
    return path


#: matplotlib's style context is process-wide: reports scheduled at the same minute (daily and
#: weekly jobs run in parallel threads) render one at a time.
_RENDERING = threading.Lock()


def write_report(data: ReportData, request: ReportRequest) -> Path:
    """Write the files of a report whose figures are `data`."""
    with _RENDERING:
        return _write_report(data, request)


def _write_report(data: ReportData, request: ReportRequest) -> Path:
    from exporter.reports import render  # matplotlib and WeasyPrint: only when writing

    if request.lang == "zh-CN" and {"pdf", "html"} & set(request.formats):
        render.require_cjk_font()
    t = Texts(request.lang)
    tables = build_tables(data, t)
    with report_directory(request.out_dir, request.name) as directory:
        figure_files: list[tuple[str, str]] = []
        if "csv" in request.formats:
            for name, table in tables.items():
                content = render.table_csv(table)
                (directory / f"{name}.csv").write_bytes(content)
                figure_files.append((f"{name}.csv", hashlib.sha256(content).hexdigest()))
        if "html" in request.formats or "pdf" in request.formats:
            html = render.render_html(
                data, tables, t, report_name=request.name, figure_files=figure_files
            )
            if "html" in request.formats:
                (directory / f"{request.name}.html").write_text(html, encoding="utf-8")
            if "pdf" in request.formats:
                render.render_pdf(html, directory / f"{request.name}.pdf")
        period = data.period
        write_manifest(
            directory,
            {
                "report": request.name,
                "report_id": period.report_id,
                "period": {
                    "kind": period.kind,
                    "start": period.local_start.isoformat(),
                    "end": period.local_end.isoformat(),
                    "timezone": period.zone.key,
                },
                "lang": request.lang,
                "generated_at": data.generated_at.astimezone(UTC).isoformat(),
                "generator": f"smswatch {__version__}",
                "prometheus": data.prometheus_url,
                "matchers": data.matchers,
                "objectives": {
                    "delivered_ratio": data.objectives.delivered_ratio,
                    "receipt_notification_ratio": data.objectives.receipt_notification_ratio,
                    "within_latency_ratio": data.objectives.within_latency_ratio,
                    "latency_seconds": data.objectives.latency_seconds,
                },
                "data_complete": data.completeness.complete,
            },
        )
    return request.out_dir / request.name

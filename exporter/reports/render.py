"""Turn a report's tables and charts into a self-contained HTML page, and that page into PDF.

The PDF is WeasyPrint's rendering of exactly the HTML page (one template, two outputs). Text
uses Noto Sans CJK SC, which covers Latin and Chinese, so a zh-CN report needs no fallback font.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from exporter import __version__
from exporter.errors import ReportError
from exporter.reports.figures import ALL, ReportData
from exporter.reports.periods import bucket_size
from exporter.reports.tables import Table, duration, objective_pct
from exporter.reports.texts import CJK_FONT, Texts

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("exporter.reports", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def table_csv(table: Table) -> bytes:
    """The CSV file of `table`: a header of column keys, then the canonical cell texts."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([column.key for column in table.columns])
    for row in table.rows:
        writer.writerow([cell.text for cell in row])
    return buffer.getvalue().encode("utf-8")


def _local(text: str) -> str:
    """``2026-03-10T08:00:00+08:00`` → ``2026-03-10 08:00:00`` (the zone is in the header)."""
    prefix = ""
    if text.startswith("≤ "):
        prefix, text = "≤ ", text[2:]
    if not text:
        return ""
    return prefix + datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S")


def _label(t: Texts, text: str) -> str:
    words = []
    for token in text.split():
        key = next((k for k in (f"reason.{token}", f"kind.{token}", token) if t.has(k)), None)
        words.append(t(key) if key else token)
    return " ".join(words)


def cell_html(t: Texts, table: Table, row: int, column: int) -> Markup:
    """One cell as HTML, dressed for its kind."""
    text = table.rows[row][column].text
    kind = table.kind_of(row, column)
    if kind == "pct":
        shown = f"{text} %" if text else ""
    elif kind == "seconds":
        shown = f"{text} s" if text else ""
    elif kind == "time":
        shown = _local(text)
    elif kind == "verdict":
        if not text:
            return Markup("")
        return Markup('<span class="{}">{}</span>').format(
            "met" if text == "yes" else "unmet", t(text)
        )
    elif kind == "key":
        shown = t("all") if text == ALL else text
    elif kind == "item":
        shown = t(f"item.{text}") if t.has(f"item.{text}") else text
    elif kind == "label":
        shown = _label(t, text)
    else:
        shown = text
    return escape(shown)


def split_columns(table: Table, at: str) -> tuple[list[int], list[int]]:
    """Column indexes of a table too wide for the page, drawn as two tables: the columns
    before `at`, then the first (key) column and the columns from `at` on."""
    index = next(i for i, column in enumerate(table.columns) if column.key == at)
    return list(range(index)), [0, *range(index, len(table.columns))]


def _numeric(table: Table, column: int) -> bool:
    return table.columns[column].kind in ("count", "pct", "seconds", "change", "duration")


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def render_html(
    data: ReportData,
    tables: Mapping[str, Table],
    t: Texts,
    *,
    report_name: str,
    figure_files: Sequence[tuple[str, str]],
) -> str:
    """The report page; `figure_files` are (CSV name, SHA-256) pairs listed in the header."""
    from exporter.reports import charts  # imports matplotlib: only when a page is drawn

    period = data.period
    zone = period.zone
    bucket = t(f"bucket.{bucket_size(period)}")
    completeness = data.completeness
    problems: list[str] = []
    if not completeness.sources:
        problems.append(t("complete.no_sources"))
    if not completeness.exporters:
        problems.append(t("complete.no_exporter"))
    for availability in completeness.availabilities:
        by_reason: dict[str, float] = {}
        for gap in availability.gaps:
            by_reason[gap.reason] = by_reason.get(gap.reason, 0.0) + gap.seconds
        for reason, seconds in by_reason.items():
            problems.append(
                t(
                    f"complete.{availability.kind}_gap",
                    name=availability.name,
                    reason=t(f"reason.{reason}"),
                    duration=duration(seconds),
                )
            )
    context: dict[str, Any] = {
        "t": t,
        "lang": t.lang,
        "font": CJK_FONT,
        "data": data,
        "tables": tables,
        "report_name": report_name,
        "report_id": period.report_id,
        "kind_title": t(f"kind.{period.kind}"),
        "period_text": f"{period.local_start:%Y-%m-%d %H:%M} – {period.local_end:%Y-%m-%d %H:%M}",
        "previous_text": f"{data.previous.local_start:%Y-%m-%d %H:%M} – "
        f"{data.previous.local_end:%Y-%m-%d %H:%M}",
        "zone": zone.key,
        "generated": data.generated_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        "objectives_text": t(
            "header.objectives_text",
            delivered=objective_pct(data.objectives.delivered_ratio),
            receipts=objective_pct(data.objectives.receipt_notification_ratio),
            within=objective_pct(data.objectives.within_latency_ratio),
            seconds=data.objectives.latency_seconds,
        ),
        "figure_files": figure_files,
        "problems": problems,
        "complete": completeness.complete,
        "lag_limit": duration(completeness.lag_limit_seconds),
        "bucket": bucket,
        "version": __version__,
        "cell": lambda table, row, column: cell_html(t, table, row, column),
        "numeric": _numeric,
        "split": split_columns,
        "chart_success": _data_uri(charts.success_chart(data, t)),
        "chart_latency": _data_uri(charts.latency_chart(data, t)),
        "chart_causes": _data_uri(charts.causes_chart(data, t)),
    }
    return _ENV.get_template("report.html").render(context)


def require_cjk_font() -> None:
    """Fail early, with the fix, when the CJK font a Chinese report needs is not installed
    (the page and its charts would show empty boxes instead of characters)."""
    from matplotlib import font_manager

    try:
        font_manager.findfont(CJK_FONT, fallback_to_default=False)
    except ValueError as exc:
        raise ReportError(
            f"the zh-CN report needs the font {CJK_FONT!r} (Debian: apt-get install "
            "fonts-noto-cjk); it is not installed"
        ) from exc


def render_pdf(html: str, target: Path) -> None:
    """Render the HTML page to a PDF file at `target`."""
    try:
        import weasyprint  # heavy import, only when a PDF is wanted
    except (ImportError, OSError) as exc:
        raise ReportError(
            "PDF output needs WeasyPrint and Pango (Debian: apt-get install libpango-1.0-0 "
            f"libpangoft2-1.0-0): {exc}; --format html,csv works without them"
        ) from exc
    weasyprint.HTML(string=html).write_pdf(str(target))

"""Charts of a report as standalone SVG text (matplotlib, text drawn as paths).

Drawing text as paths makes the charts independent of the fonts of whatever displays them;
CJK labels use Noto Sans CJK. The figures are the report's own numbers (`ReportData`), the same
as the `buckets.csv` and `latency_buckets.csv` files.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from exporter.catalogue import CAUSES
from exporter.reports.figures import ReportData
from exporter.reports.periods import bucket_size
from exporter.reports.tables import pct
from exporter.reports.texts import CJK_FONT, Texts

FONTS = [CJK_FONT, "DejaVu Sans"]
_STYLE: Any = {
    "font.family": "sans-serif",
    "font.sans-serif": FONTS,
    "font.size": 8,
    "axes.unicode_minus": False,
    "svg.fonttype": "path",
    "svg.hashsalt": "smswatch",
}
_SIZE = (7.2, 2.6)
_COLOURS = {
    "gateway": "#d62728",
    "invalid_number": "#9467bd",
    "unreachable": "#ff7f0e",
    "terminal_config": "#8c564b",
    "integration": "#1f77b4",
    "throttled": "#bcbd22",
    "filtered": "#e377c2",
    "unknown": "#7f7f7f",
}


@contextmanager
def _chart() -> Iterator[tuple[Figure, Axes]]:
    """A figure of the report's size with one plot, in the report's style; render it with
    `_svg` inside the `with`, where the style (fonts as paths, a fixed id salt) holds."""
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=_SIZE)
        yield figure, figure.add_subplot()


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def _no_data(axes: Axes, t: Texts) -> None:
    """Say so in the middle of a plot that has nothing to show."""
    axes.text(0.5, 0.5, t("chart.no_data"), transform=axes.transAxes, ha="center")


def _labels(data: ReportData) -> list[str]:
    size = bucket_size(data.period)
    zone = data.period.zone
    fmt = {"hour": "%H:%M", "day": "%m-%d", "month": "%Y-%m"}[size]
    return [b.start.astimezone(zone).strftime(fmt) for b in data.buckets]


def _sparse_ticks(count: int, most: int = 12) -> list[int]:
    every = max(1, math.ceil(count / most))
    return list(range(0, count, every))


def _time_ticks(axes: Axes, labels: list[str]) -> None:
    """Label the bucket axis with at most a dozen of the buckets' start times."""
    ticks = _sparse_ticks(len(labels))
    axes.set_xticks(ticks, [labels[i] for i in ticks])


def success_chart(data: ReportData, t: Texts) -> str:
    """Receipt and SMS bank-side SLI per bucket, against their objectives."""
    with _chart() as (figure, axes):
        labels = _labels(data)
        xs = list(range(len(labels)))
        objectives = (
            (data.objectives.receipt_notification_ratio * 100, t("chart.receipts"), "#9467bd"),
            (data.objectives.delivered_ratio * 100, t("chart.sms"), "#d62728"),
        )

        def series(values: list[Fraction | None]) -> list[float]:
            return [float(pct(v)) if v is not None else math.nan for v in values]

        receipts = series([b.receipts_sli for b in data.buckets])
        sms = series([b.messages_sli for b in data.buckets])
        axes.plot(xs, receipts, marker="o", markersize=2.5, label=t("chart.receipts"))
        axes.plot(xs, sms, marker="s", markersize=2.5, label=t("chart.sms"))
        for objective, what, colour in objectives:
            axes.axhline(
                objective,
                color=colour,
                linestyle="--",
                linewidth=1,
                label=f"{t('chart.objective')} {what} {objective:g} %",
            )
        values = [v for v in (*receipts, *sms) if not math.isnan(v)]
        low = min([*values, *(o for o, _, _ in objectives)])
        axes.set_ylim(max(0.0, low - max(0.5, (100 - low) * 0.15)), 100.2)
        axes.set_ylabel(t("chart.sli"))
        _time_ticks(axes, labels)
        axes.grid(axis="y", linewidth=0.3)
        axes.legend(loc="lower left", fontsize=7, frameon=False, ncols=2)
        if not values:
            _no_data(axes, t)
        return _svg(figure)


def latency_chart(data: ReportData, t: Texts) -> str:
    """Receipts per notify-latency bucket (not cumulative), with the latency target marked."""
    summary = data.notify_latency[0]
    limit = data.objectives.latency_seconds
    with _chart() as (figure, axes):
        buckets = summary.per_bucket()
        labels = [
            f"≤{upper:g}" if not math.isinf(upper) else f">{lower:g}" for lower, upper, _ in buckets
        ]
        counts = [count for _, _, count in buckets]
        colours = ["#2ca02c" if upper <= limit else "#ff7f0e" for _, upper, _ in buckets]
        axes.bar(range(len(counts)), counts, color=colours)
        axes.set_xticks(range(len(labels)), labels)
        axes.set_xlabel(t("chart.seconds"))
        axes.set_ylabel(t("chart.count"))
        boundary = next((i for i, (_, upper, _) in enumerate(buckets) if upper == limit), None)
        if boundary is not None:
            axes.axvline(boundary + 0.5, color="#d62728", linestyle="--", linewidth=1)
        if summary.count:
            share = pct(Fraction(summary.within(limit), summary.count))
            axes.text(
                0.99,
                0.92,
                t("chart.within", share=share, seconds=limit),
                transform=axes.transAxes,
                ha="right",
            )
        else:
            _no_data(axes, t)
        axes.grid(axis="y", linewidth=0.3)
        return _svg(figure)


def causes_chart(data: ReportData, t: Texts) -> str:
    """Receipts not notified per bucket, stacked by cause."""
    with _chart() as (figure, axes):
        labels = _labels(data)
        xs = list(range(len(labels)))
        present = [c for c in CAUSES if any(b.not_notified_by_cause.get(c) for b in data.buckets)]
        others = sorted({c for b in data.buckets for c in b.not_notified_by_cause} - set(CAUSES))
        bottom = [0] * len(xs)
        for cause in [*present, *others]:
            heights = [b.not_notified_by_cause.get(cause, 0) for b in data.buckets]
            axes.bar(xs, heights, bottom=bottom, label=cause, color=_COLOURS.get(cause, "#17becf"))
            bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
        _time_ticks(axes, labels)
        axes.set_ylabel(t("chart.count"))
        axes.grid(axis="y", linewidth=0.3)
        if present or others:
            axes.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
        else:
            _no_data(axes, t)
        return _svg(figure)

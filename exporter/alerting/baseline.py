"""Baselines: each cause's own recent normal, so a cause alert asks "is this cause far above its
usual share *here*?" instead of comparing every place with one fixed share.

Two recording rules per counter, at the finest labels a cause alert localizes by:
`smswatch:<counter>:rate1h` (the hourly rate, recorded every `baseline.evaluation`) and
`smswatch:<counter>:rate1h_median1d` (its median over `baseline.window`, sampled hourly: a cheap
subquery of 24 points, not a day of raw samples). The median, not the mean: one hour of outage
must not raise a cause's normal for the rest of the day, or a second, partial fault of the same
cause would hide under it. Any coarser dimension's baseline share is the ratio of sums.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.alerting.promql import Context, Group, Recording, format_duration, format_number
from exporter.alerting.spec import Thresholds
from exporter.language import say

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Counter:
    """A counter whose cause shares are baselined, and the labels it is recorded by."""

    metric: str
    short: str  # the recording-rule middle part: sms_messages
    labels: tuple[str, ...]


SMS = Counter(
    "smswatch_sms_messages_total", "sms_messages", ("gateway", "carrier", "area", "cause")
)
RECEIPTS = Counter("smswatch_receipts_total", "receipts", ("acquirer", "outcome", "cause"))
COUNTERS: tuple[Counter, ...] = (SMS, RECEIPTS)


def hourly(counter: Counter) -> str:
    """The name of a counter's recorded hourly rate."""
    return f"smswatch:{counter.short}:rate1h"


def median(ctx: Context, counter: Counter) -> str:
    """The name of a counter's recorded baseline (median hourly rate over the baseline window)."""
    return f"smswatch:{counter.short}:rate1h_median{format_duration(ctx.spec.baseline.window_ms)}"


def baseline_group(ctx: Context) -> Group:
    """The recording rules of every baseline, in one group at the baseline's own interval."""
    rules = []
    for counter in COUNTERS:
        by = ctx.by(counter.metric, *counter.labels)
        rules.append(
            Recording(
                hourly(counter),
                f"sum by ({by}) (rate({ctx.metric(counter.metric)}[{ctx.window(HOUR_MS)}]))\n",
            )
        )
        window = ctx.duration(ctx.spec.baseline.window_ms)
        step = ctx.duration(HOUR_MS)
        rules.append(
            Recording(
                median(ctx, counter),
                f"quantile_over_time(0.5, {hourly(counter)}{{{ctx.spec.selector}}}"
                f"[{window}:{step}])\n"
                # Before the first whole hour, the hour so far is the only normal there is.
                f"or\n{hourly(counter)}{{{ctx.spec.selector}}}\n",
            )
        )
    return Group("smswatch-baselines", tuple(rules), interval_ms=ctx.spec.baseline.evaluation_ms)


def _selector(ctx: Context, name: str, part: dict[str, str]) -> str:
    inner = ",".join([ctx.spec.selector, *(f"{label}{text}" for label, text in part.items())])
    return f"{name}{{{inner}}}"


def above_baseline(
    ctx: Context, counter: Counter, dims: tuple[str, ...], part: dict[str, str], t: Thresholds
) -> str:
    """PromQL: the share of `part` (matchers such as cause="gateway") among all events of the
    counter, per `dims`, over the alert's window, where it is above `factor` × its baseline
    share (floored, capped at the ceiling) and counts at least `min_events` events. The value
    is the share now."""
    assert t.window_ms and t.factor is not None and t.floor is not None and t.min_events
    window = ctx.window(t.window_ms)
    by = ctx.by(counter.metric, *dims)
    part_now = f"sum by ({by}) (increase({ctx.metric(counter.metric, **part)}[{window}]))"
    all_now = f"sum by ({by}) (increase({ctx.metric(counter.metric)}[{window}]))"
    base = median(ctx, counter)
    normal = (
        f"sum by ({by}) ({_selector(ctx, base, part)})\n"
        f"    /\n"
        f"    sum by ({by}) ({_selector(ctx, base, {})})"
    )
    return (
        f"(\n  {part_now}\n/\n  {all_now}\n)\n"
        f"> on ({by})\n"
        f"clamp_max(\n"
        f"  {format_number(t.factor)} * clamp_min(\n"
        f"    (\n    {normal}\n    )\n"
        f"    or on ({by}) (0 * {all_now}),\n"
        f"    {format_number(t.floor)}\n"
        f"  ),\n"
        f"  {format_number(ctx.spec.baseline.ceiling)}\n"
        f")\n"
        f"and on ({by})\n"
        f"{part_now} >= {t.min_events}\n"
    )


def none_although_due(by: str, due: str, minimum: int, seen: str) -> str:
    """PromQL: per `by`, `due` (the events the usual rate says this window should hold) is at
    least `minimum`, yet `seen` (the events it holds) is zero. The value is `due`."""
    return f"{due} >= {minimum}\nunless on ({by})\n{seen} > 0\n"


def words(t: Thresholds) -> str:
    """`over the last 30m, at 6× its normal share here (at least 0.2 %)` for descriptions, in
    the language being generated."""
    assert t.window_ms and t.factor is not None and t.floor is not None
    window, factor = format_duration(t.window_ms), format_number(t.factor)
    floor = format_number(t.floor * 100)
    return say(
        f"over the last {window}, at more than {factor}× its normal share here (normal taken "
        f"as at least {floor} %)",
        f"统计窗口为最近 {window}，超过此处正常占比的 {factor} 倍（正常占比按不低于 {floor} % 计）",
    )

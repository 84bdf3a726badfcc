"""Monitoring blindness: a source that is down, stale or lagging is not an outage.

`smswatch:source_blind` (1/0 per source) is recorded once; `SmswatchMonitoringBlind` pages on it
(no `cause`: smswatch cannot see, which says nothing about cardholders), and `held()` is the
clause that makes an alert judging the *absence* of events hold its judgement while any source
was blind during its window: frozen counters look exactly like a silent gateway.
"""

from __future__ import annotations

from exporter.alerting.promql import Alert, Context, Group, Recording, format_duration
from exporter.language import say

BLIND = "smswatch:source_blind"
LAG = "smswatch_source_lag_seconds"


def blind_recording(ctx: Context) -> Recording:
    """1 when a source's polls all failed over the blind window, its last good poll is older
    than that window, or its feed is complete only up to more than `threshold` ago; else 0."""
    t = ctx.spec.alerts["SmswatchMonitoringBlind"]
    assert t.window_ms and t.threshold_ms
    up = ctx.metric("smswatch_source_up")
    last = ctx.metric("smswatch_source_last_success_timestamp_seconds")
    return Recording(
        BLIND,
        "clamp_max(\n"
        f"    (max_over_time({up}[{ctx.window(t.window_ms)}]) == bool 0)\n"
        f"  + on (job, instance, source)\n"
        f"    ((time() - {last}) > bool {ctx.stale_seconds(t.window_ms)})\n"
        f"    * on (job, instance, source) ({last} > bool 0)\n"
        f"    * on (job, instance, source) {polled(ctx)}\n"
        f"  + on (job, instance, source)\n"
        f"    ({excess_lag(ctx)} > bool {t.threshold_ms // 1000})\n"
        f"    * on (job, instance, source) {polled(ctx, LAG)},\n"
        "  1\n"
        ")\n",
    )


def excess_lag(ctx: Context) -> str:
    """A source's lag beyond the lag it has by design (`smswatch_source_expected_lag_seconds`,
    0 where an older exporter does not export it): an outcome-only provider's watermark trails
    by give_up_after on a healthy day, which is not blindness."""
    lag = ctx.metric("smswatch_source_lag_seconds")
    expected = ctx.metric("smswatch_source_expected_lag_seconds")
    return (
        f"({lag} - on (job, instance, source) ({expected} or on (job, instance, source) {lag} * 0))"
    )


def polled(ctx: Context, like: str = "smswatch_source_last_success_timestamp_seconds") -> str:
    """1 for a polled source, 0 for a push-only one; 1 where an older exporter does not say.

    A push-only source's last success is its last report and its watermark moves only with
    reports, so a quiet hour looks exactly like a lost receiver: neither is blindness by
    itself. A push source silent while transactions flow holds receipt decisions back, which
    `SmswatchDecisionsHeldBack` reports."""
    push_only = ctx.metric("smswatch_source_push_only")
    return f"(1 - ({push_only} or on (job, instance, source) {ctx.metric(like)} * 0))"


def held(ctx: Context, window_ms: int) -> str:
    """`unless` clauses: nothing fires while a source of the job was blind within the window,
    had a failed poll within it, or has gone more than `stale_after_polls` polls without a good
    one: the absence of events is only news when every source was read all along."""
    window = ctx.window(window_ms)
    sel = ctx.spec.selector
    stale = ctx.stale_seconds(ctx.spec.poll_interval_ms * ctx.spec.stale_after_polls)
    up = ctx.metric("smswatch_source_up")
    last = ctx.metric("smswatch_source_last_success_timestamp_seconds")
    return (
        f"unless on (job)\n"
        f"max by (job) (max_over_time({BLIND}{{{sel}}}[{window}])) == 1\n"
        f"unless on (job)\n"
        f"min by (job) (min_over_time({up}[{window}])) == 0\n"
        f"unless on (job)\n"
        f"max by (job) ((time() - {last}) * on (job, instance, source) {polled(ctx)}) > {stale}\n"
    )


def blind_alert(ctx: Context) -> Alert:
    """The page: a source is blind (no `cause`: it says nothing about cardholders)."""
    t = ctx.spec.alerts["SmswatchMonitoringBlind"]
    assert t.window_ms and t.threshold_ms
    return ctx.alert(
        "SmswatchMonitoringBlind",
        f"{BLIND}{{{ctx.spec.selector}}} == 1\n",
        severity="critical",
        summary=say(
            "smswatch is blind: a data source cannot be read or is far behind.",
            "smswatch 失明：某个数据源无法读取或严重滞后。",
        ),
        description=say(
            "Source {{ $labels.source }} has had no good poll for "
            f"{format_duration(t.window_ms)}, or its feed is complete only up to more than "
            f"{format_duration(t.threshold_ms)} ago. smswatch cannot see what happens to "
            "transaction SMS: the alerts that judge missing traffic hold their judgement until "
            "it recovers. This says nothing about whether SMS are delivered: ask the provider.",
            f"数据源 {{{{ $labels.source }}}} 已有 {format_duration(t.window_ms)} 没有成功轮询，"
            f"或其数据只完整到 {format_duration(t.threshold_ms)} 以前。smswatch 看不到交易短信的"
            "情况：依据流量缺失判断的告警会暂停判定，直到数据源恢复。这并不说明短信是否已送达："
            "请向服务商确认。",
        ),
        dashboard="oncall",
    )


def blindness_group(ctx: Context) -> Group:
    """The recording rule first, then the alert that reads it, in one group."""
    return Group("smswatch-blindness", (blind_recording(ctx), blind_alert(ctx)))

"""Monitoring blindness: a source that is down, stale or lagging is not an outage.

`smswatch:source_blind` (1/0 per source) is recorded once; `SmswatchMonitoringBlind` pages on it
(no `cause`: smswatch cannot see, which says nothing about cardholders), and `held()` is the
clause that makes an alert judging the *absence* of events hold its judgement while any source
was blind during its window: frozen counters look exactly like a silent gateway.
"""

from __future__ import annotations

from exporter.alerting.promql import Alert, Context, Group, Recording, format_duration

BLIND = "smswatch:source_blind"


def blind_recording(ctx: Context) -> Recording:
    """1 when a source's polls all failed over the blind window, its last good poll is older
    than that window, or its feed is complete only up to more than `threshold` ago; else 0."""
    t = ctx.spec.alerts["SmswatchMonitoringBlind"]
    assert t.window_ms and t.threshold_ms
    up = ctx.metric("smswatch_source_up")
    last = ctx.metric("smswatch_source_last_success_timestamp_seconds")
    lag = ctx.metric("smswatch_source_lag_seconds")
    return Recording(
        BLIND,
        "clamp_max(\n"
        f"    (max_over_time({up}[{ctx.window(t.window_ms)}]) == bool 0)\n"
        f"  + on (job, instance, source)\n"
        f"    ((time() - {last}) > bool {ctx.stale_seconds(t.window_ms)})\n"
        f"    * on (job, instance, source) ({last} > bool 0)\n"
        f"  + on (job, instance, source)\n"
        f"    ({lag} > bool {t.threshold_ms // 1000}),\n"
        "  1\n"
        ")\n",
    )


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
        f"max by (job) (time() - {last}) > {stale}\n"
    )


def blind_alert(ctx: Context) -> Alert:
    """The page: a source is blind (no `cause`: it says nothing about cardholders)."""
    t = ctx.spec.alerts["SmswatchMonitoringBlind"]
    assert t.window_ms and t.threshold_ms
    return ctx.alert(
        "SmswatchMonitoringBlind",
        f"{BLIND}{{{ctx.spec.selector}}} == 1\n",
        severity="critical",
        summary="smswatch is blind: a data source cannot be read or is far behind.",
        description=(
            "Source {{ $labels.source }} has had no good poll for "
            f"{format_duration(t.window_ms)}, or its feed is complete only up to more than "
            f"{format_duration(t.threshold_ms)} ago. smswatch cannot see what happens to "
            "transaction SMS: the alerts that judge missing traffic hold their judgement until "
            "it recovers. This says nothing about whether SMS are delivered: ask the provider."
        ),
        dashboard="oncall",
    )


def blindness_group(ctx: Context) -> Group:
    """The recording rule first, then the alert that reads it, in one group."""
    return Group("smswatch-blindness", (blind_recording(ctx), blind_alert(ctx)))

"""Health alerts: the exporter and its sources, and the Watchdog that proves the alerting path.

These carry no `cause`: they say smswatch is blind or late, not why cardholders miss SMS. The
blindness page itself lives in `blindness.py`; these are its earlier, quieter warnings.
"""

from __future__ import annotations

from exporter.alerting.blindness import LAG, blindness_group, excess_lag, polled
from exporter.alerting.promql import Alert, Context, Group, format_duration, format_number


def health_alerts(ctx: Context) -> list[Alert]:
    spec = ctx.spec
    alerts = spec.alerts
    stale_ms = spec.poll_interval_ms * spec.stale_after_polls
    lag = alerts["SmswatchSourceLagging"]
    assert lag.threshold_ms
    up = f"up{{{spec.selector}}}"
    held = alerts["SmswatchDecisionsHeldBack"]
    assert held.threshold_ms
    held_s = format_number(held.threshold_ms // 1000)
    lag_text = format_duration(lag.threshold_ms)
    return [
        ctx.alert(
            "SmswatchSourceDown",
            f"{ctx.metric('smswatch_source_up')} == 0\n",
            severity="warning",
            summary="An upstream API of smswatch cannot be polled.",
            description=(
                "The last polls of source {{ $labels.source }} failed (smswatch_source_up is 0 "
                f"for {format_duration(alerts['SmswatchSourceDown'].for_ms)}): its numbers are "
                "frozen and its alerts cannot fire."
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchSourceStale",
            (
                f"(time() - {ctx.metric('smswatch_source_last_success_timestamp_seconds')})\n"
                f"* on (job, instance, source) {polled(ctx)}\n"
                f"> {ctx.stale_seconds(stale_ms)}\n"
            ),
            severity="warning",
            summary="An upstream API of smswatch has not been polled successfully for a while.",
            description=(
                "Source {{ $labels.source }} has had no successful poll for "
                "{{ $value | humanizeDuration }} (more than "
                f"{spec.stale_after_polls} poll intervals of "
                f"{format_duration(spec.poll_interval_ms)}): a poll may be hung."
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchSourceLagging",
            (
                f"{excess_lag(ctx)}\n"
                f"* on (job, instance, source) {polled(ctx, LAG)}\n"
                f"> {format_number(lag.threshold_ms // 1000)}\n"
            ),
            severity="warning",
            summary="An upstream feed is complete only up to a time far in the past.",
            description=(
                "Source {{ $labels.source }} is complete only up to "
                f"{{{{ $value | humanizeDuration }}}} ago (threshold {lag_text}): receipts wait "
                "longer for their outcome, and receipt alerts come late."
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchDecisionsHeldBack",
            (
                f"{ctx.metric('smswatch_source_holding_decisions')} == 1\n"
                f"and on (job, instance)\n"
                f"{ctx.metric('smswatch_decisions_lag_seconds')} > {held_s}\n"
                f"unless on (job, instance, source)\n"
                f"{excess_lag(ctx)} <= {held_s}\n"
            ),
            severity="warning",
            summary="Receipt decisions wait for one source far behind the clock.",
            description=(
                "Receipts are decided only up to more than "
                f"{format_duration(held.threshold_ms)} ago, and source {{{{ $labels.source }}}} "
                "is the one holding them back: receipt alerts and the receipt SLO come late."
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchExporterDown",
            f"{up} == 0\n",
            severity="critical",
            summary="Prometheus cannot scrape the smswatch exporter.",
            description=(
                "Scrapes of {{ $labels.instance }} (job {{ $labels.job }}) have failed for "
                f"{format_duration(alerts['SmswatchExporterDown'].for_ms)}: transaction SMS are "
                "not monitored and no SMS alert can fire."
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchExporterAbsent",
            f"absent({up})\n",
            severity="critical",
            summary="Prometheus has no smswatch exporter target at all.",
            description=(
                "No target of job {{ $labels.job }} has been scraped for "
                f"{format_duration(alerts['SmswatchExporterAbsent'].for_ms)}: the scrape "
                "config or service discovery lost the exporter. Transaction SMS are not monitored."
            ),
        ),
        Alert(
            name="Watchdog",
            expr="vector(1)\n",
            for_ms=None,
            severity="info",
            summary="The alerting pipeline is alive (this alert always fires).",
            description=(
                "Watchdog always fires. If the dead man's switch stops receiving it, Prometheus, "
                "the rules or Alertmanager are broken and no other alert would reach on-call."
            ),
        ),
    ]


def health_groups(ctx: Context) -> list[Group]:
    return [blindness_group(ctx), Group("smswatch-health", tuple(health_alerts(ctx)))]

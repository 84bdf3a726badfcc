"""Canary probe alerts: a test SMS that fails, a delivery report the handset contradicts, and
probes that stopped running (exporter/probes/).

`SMSProbeFailing` carries the cause of what failed: `gateway` (send refused, no report, a
rejected report: the platform cannot deliver even one message; pages, as other gateway-side
causes do, and explains that gateway's SLO pages) or `unreachable` (the report says the test
handset could not be reached: a ticket per carrier and area, the test SIM or the local network).
`SMSFakeDeliveryReports` has no cause label: a route that reports DELIVRD for messages that
never arrive hides every cause, and must not silence anything.
"""

from __future__ import annotations

from exporter.alerting.promql import Alert, Context, Group, format_duration


def probe_alerts(ctx: Context) -> list[Alert]:
    """Every probe alert, with the thresholds of the spec."""
    a = ctx.spec.alerts
    failing = a["SMSProbeFailing"]
    fake = a["SMSFakeDeliveryReports"]
    stopped = a["SMSProbesNotRunning"]
    assert failing.window_ms and failing.min_events
    assert fake.window_ms and fake.min_events
    assert stopped.threshold_ms
    failures = "smswatch_probe_failures_total"
    fakes = "smswatch_probe_fake_reports_total"
    failing_window = ctx.window(failing.window_ms)
    gateway_failures = ctx.metric(failures, cause='="gateway"')
    unreachable_failures = ctx.metric(failures, cause='="unreachable"')
    fake_window = ctx.window(fake.window_ms)
    by_gateway = ctx.by(failures, "gateway", "cause")
    by_place = ctx.by(failures, "gateway", "carrier", "area", "cause")
    last_sent = ctx.metric("smswatch_probe_last_sent_timestamp_seconds")
    interval = ctx.metric("smswatch_probe_interval_seconds")
    return [
        ctx.alert(
            "SMSProbeFailing",
            f"sum by ({by_gateway}) (increase({gateway_failures}"
            f"[{failing_window}])) >= {failing.min_events}\n",
            severity="critical",
            labels={"cause": "gateway"},
            summary="Canary SMS through a gateway fail: the platform cannot deliver.",
            description=(
                "{{ $value | humanize }} canary SMS through gateway {{ $labels.gateway }} failed "
                f"in the last {format_duration(failing.window_ms)}: the send was refused, no "
                "final delivery report came, or the report said rejected or failed. Whatever "
                "the bank's own traffic shows, a test message cannot get through."
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SMSProbeFailing",
            f"sum by ({by_place}) (increase({unreachable_failures}"
            f"[{failing_window}])) >= {failing.min_events}\n",
            severity="warning",
            labels={"cause": "unreachable"},
            summary="Canary SMS to a test handset are reported undelivered.",
            description=(
                "{{ $value | humanize }} canary SMS through gateway {{ $labels.gateway }} to the "
                "test handset of {{ $labels.carrier }} in {{ $labels.area }} were reported "
                f"undelivered or expired in the last {format_duration(failing.window_ms)}: the "
                "handset is off or out of coverage, or that carrier's network there has trouble."
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SMSFakeDeliveryReports",
            f"sum by ({ctx.by(fakes, 'gateway', 'carrier', 'area')}) (increase("
            f"{ctx.metric(fakes)}[{fake_window}])) >= {fake.min_events}\n",
            severity="critical",
            summary="A gateway reports canary SMS delivered that never reached the handset.",
            description=(
                "{{ $value | humanize }} canary SMS through gateway {{ $labels.gateway }} to the "
                "test handset of {{ $labels.carrier }} in {{ $labels.area }} were reported "
                f"delivered in the last {format_duration(fake.window_ms)} but their nonce never "
                "reached the handset: fake delivery reports (a grey route). Cardholders may not "
                "get their SMS while every metric says delivered."
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SMSProbesNotRunning",
            "(\n"
            f"  time() - {last_sent}\n"
            f"  > on (job, instance, gateway) 2 * {interval} + "
            f"{ctx.seconds(stopped.threshold_ms)}\n"
            ")\n"
            "or on (job, instance, gateway)\n"
            f"({interval} unless on (job, instance, gateway) {last_sent})\n",
            severity="warning",
            summary="Canary SMS probes have stopped running.",
            description=(
                "No canary SMS went out through gateway {{ $labels.gateway }} for two of its "
                f"probe intervals plus {format_duration(stopped.threshold_ms)}: nothing checks "
                "that a test message gets through, nor catches fake delivery reports."
            ),
            dashboard="oncall",
        ),
    ]


def probe_groups(ctx: Context) -> list[Group]:
    """The groups of probes.yaml."""
    return [Group("smswatch-probes", tuple(probe_alerts(ctx)))]

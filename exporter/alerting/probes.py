"""Canary probe alerts: a test SMS that fails, a delivery report the handset contradicts, and
probes that stopped running (exporter/probes/).

`SMSProbeFailing` carries the cause of what failed: `gateway` (send refused, no report, a
rejected report: the platform cannot deliver even one message; pages, as other gateway-side
causes do, and explains that gateway's SLO pages) or `unreachable` (the report says the test
handset could not be reached: a ticket per carrier and area, the test SIM or the local network).
`SMSFakeDeliveryReports` has no cause label: a route that reports DELIVRD for messages that
never arrive hides every cause, and must not silence anything.

Annotations are said in English and Simplified Chinese (`say`); the cause alerts close with the
vocabulary's name of their cause, like every other cause alert.
"""

from __future__ import annotations

from exporter.alerting.causes import cause_named
from exporter.alerting.promql import Alert, Context, Group, format_duration
from exporter.language import say


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
    failing_for = format_duration(failing.window_ms)
    fake_for = format_duration(fake.window_ms)
    grace = format_duration(stopped.threshold_ms)
    return [
        ctx.alert(
            "SMSProbeFailing",
            f"sum by ({by_gateway}) (increase({gateway_failures}"
            f"[{failing_window}])) >= {failing.min_events}\n",
            severity="critical",
            labels={"cause": "gateway"},
            summary=say(
                "Canary SMS through a gateway fail: the platform cannot deliver.",
                "经由某网关发送的拨测短信失败：短信平台无法送达。",
            ),
            description=say(
                "{{ $value | humanize }} canary SMS through gateway {{ $labels.gateway }} failed "
                f"in the last {failing_for}: the send was refused, no "
                "final delivery report came, or the report said rejected or failed. Whatever "
                "the bank's own traffic shows, a test message cannot get through.",
                f"最近 {failing_for} 内，经由网关 {{{{ $labels.gateway }}}} 发送的 "
                "{{ $value | humanize }} 条拨测短信失败：发送被拒绝、未收到最终状态报告，或状态"
                "报告为拒绝或失败。无论银行自身的业务流量显示如何，测试短信都无法送达。",
            )
            + cause_named("gateway"),
            dashboard="oncall",
        ),
        ctx.alert(
            "SMSProbeFailing",
            f"sum by ({by_place}) (increase({unreachable_failures}"
            f"[{failing_window}])) >= {failing.min_events}\n",
            severity="warning",
            labels={"cause": "unreachable"},
            summary=say(
                "Canary SMS to a test handset are reported undelivered.",
                "发往某测试手机的拨测短信被报告为未送达。",
            ),
            description=say(
                "{{ $value | humanize }} canary SMS through gateway {{ $labels.gateway }} to the "
                "test handset of {{ $labels.carrier }} in {{ $labels.area }} were reported "
                f"undelivered or expired in the last {failing_for}: the "
                "handset is off or out of coverage, or that carrier's network there has trouble.",
                f"最近 {failing_for} 内，经由网关 {{{{ $labels.gateway }}}} 发往 "
                "{{ $labels.area }} 地区 {{ $labels.carrier }} 测试手机的 {{ $value | humanize }} "
                "条拨测短信，状态报告为未送达或已过期：测试手机关机或不在服务区，或该运营商在"
                "当地的网络出现故障。",
            )
            + cause_named("unreachable"),
            dashboard="oncall",
        ),
        ctx.alert(
            "SMSFakeDeliveryReports",
            f"sum by ({ctx.by(fakes, 'gateway', 'carrier', 'area')}) (increase("
            f"{ctx.metric(fakes)}[{fake_window}])) >= {fake.min_events}\n",
            severity="critical",
            summary=say(
                "A gateway reports canary SMS delivered that never reached the handset.",
                "某网关报告拨测短信已送达，但测试手机从未收到。",
            ),
            description=say(
                "{{ $value | humanize }} canary SMS through gateway {{ $labels.gateway }} to the "
                "test handset of {{ $labels.carrier }} in {{ $labels.area }} were reported "
                f"delivered in the last {fake_for} but their nonce never "
                "reached the handset: fake delivery reports (a grey route). Cardholders may not "
                "get their SMS while every metric says delivered.",
                f"最近 {fake_for} 内，经由网关 {{{{ $labels.gateway }}}} 发往 "
                "{{ $labels.area }} 地区 {{ $labels.carrier }} 测试手机的 {{ $value | humanize }} "
                "条拨测短信被报告为已送达，但其随机校验码从未出现在测试手机上：这是虚假状态报告"
                "（灰色通道）。所有指标都显示已送达，持卡人却可能收不到短信。",
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
            summary=say(
                "Canary SMS probes have stopped running.",
                "短信拨测已停止运行。",
            ),
            description=say(
                "No canary SMS went out through gateway {{ $labels.gateway }} for two of its "
                f"probe intervals plus {grace}: nothing checks "
                "that a test message gets through, nor catches fake delivery reports.",
                f"网关 {{{{ $labels.gateway }}}} 已有两个拨测周期再加 {grace} 未发出任何拨测短信："
                "既没有检查测试短信能否送达，也无法发现虚假状态报告。",
            ),
            dashboard="oncall",
        ),
    ]


def probe_groups(ctx: Context) -> list[Group]:
    """The groups of probes.yaml."""
    return [Group("smswatch-probes", tuple(probe_alerts(ctx)))]

"""Cause alerts: each names one root cause of DESIGN.md §1 in its `cause` label, so the page
says *why* cardholders miss their SMS. Each compares the cause's share with its own baseline in
the place that can localize it (gateway × carrier, carrier × area, acquirer), so a local or slow
fault is found while still small. Beside them: total failure at any hour (deliveries stop while
the last hour says some were due) and the latency page.

The cause alerts that explain pages keep firing for the tail of those pages (`keep_firing_for`),
so Alertmanager's inhibitions cover the whole incident.
"""

from __future__ import annotations

from exporter.alerting.baseline import (
    RECEIPTS,
    SMS,
    Counter,
    above_baseline,
    hourly,
    none_although_due,
    words,
)
from exporter.alerting.blindness import held
from exporter.alerting.promql import (
    DIMENSION_ZH,
    Alert,
    Context,
    Group,
    format_duration,
    format_number,
)
from exporter.language import current_language, say
from exporter.vocabulary import cause_words


def cause_named(cause: str) -> str:
    """The closing sentence of a cause alert's description: the cause's name in the
    vocabulary's words, in the language being generated."""
    name = cause_words(cause, current_language()).name
    return say(f" Cause: {name}.", f"原因：{name}。")


def _cause_alert(
    ctx: Context,
    name: str,
    counter: Counter,
    dims: tuple[str, ...],
    *,
    cause: str,
    outcome: str | None = None,
    severity: str,
    summary: str,
    description: str,
    dashboard: str,
) -> Alert:
    """An alert on the share of `counter` put down to `cause` (and `outcome`) against its
    baseline, per `dims`, with the spec's thresholds for `name`."""
    part = {"cause": f'="{cause}"'}
    if outcome is not None:
        part = {"outcome": f'="{outcome}"', **part}
    t = ctx.spec.alerts[name]
    return ctx.alert(
        name,
        above_baseline(ctx, counter, dims, part, t),
        severity=severity,
        labels={"cause": cause},
        summary=summary,
        description=description + say(" ", "，") + words(t) + say(".", "。") + cause_named(cause),
        dashboard=dashboard,
    )


def _nothing_delivered(
    ctx: Context, name: str, counter: Counter, dim: str, delivered: str, what: tuple[str, str]
) -> Alert:
    """No `what` delivered over the window although the last hour's rate of deliveries says at
    least `min_expected` were due, while card payments are approved and no source is blind."""
    t = ctx.spec.alerts[name]
    assert t.window_ms and t.min_expected
    window = ctx.window(t.window_ms)
    seconds = ctx.seconds(ctx.window_ms(t.window_ms) * ctx.scale)
    by = ctx.by(counter.metric, dim)
    label, value = delivered.split("=", 1)
    ok = ctx.metric(counter.metric, **{label: "=" + value})
    rate = f"{hourly(counter)}{{{ctx.spec.selector},{delivered}}}"
    approved = ctx.metric("smswatch_pos_transactions_total", result='="approved"')
    return ctx.alert(
        name,
        none_although_due(
            by,
            f"sum by ({by}) ({rate}) * {seconds}",
            t.min_expected,
            f"sum by ({by}) (increase({ok}[{window}]))",
        )
        + "unless on (job)\n"
        f"sum by (job) (increase({approved}[{window}])) == 0\n" + held(ctx, t.window_ms),
        severity="critical",
        summary=say(
            f"No {what[0]} delivered at all although some were due: total outage.",
            f"本应有{what[1]}送达，却一条也未送达：完全中断。",
        ),
        description=say(
            f"{dim.capitalize()} {{{{ $labels.{dim} }}}}: not one of its {what[0]} was "
            f"delivered in the last {format_duration(t.window_ms)}, while the last hour's rate "
            f"says {{{{ $value | humanize }}}} were due and card payments are approved. This "
            "alert has no traffic guard: it pages at night when the burn-rate alerts cannot.",
            f"{DIMENSION_ZH[dim]} {{{{ $labels.{dim} }}}}：最近 {format_duration(t.window_ms)} "
            f"内没有一条{what[1]}送达，而按过去一小时的速率应有 {{{{ $value | humanize }}}} 条，"
            "且刷卡交易仍在正常批准。本告警不设流量门槛：夜间消耗速率告警无法触发时，它照样呼叫值班。",
        ),
        dashboard="oncall" if counter is SMS else "receipts",
    )


def total_failure(ctx: Context) -> list[Alert]:
    """Deliveries stop although the hour's volume says some were due: pages at any hour."""
    return [
        _nothing_delivered(
            ctx,
            "SMSDeliveryTotalFailure",
            SMS,
            "gateway",
            'cause="none"',
            ("messages", "短信"),
        ),
        _nothing_delivered(
            ctx,
            "ReceiptNotificationTotalFailure",
            RECEIPTS,
            "acquirer",
            'outcome="delivered"',
            ("receipts", "签购单的短信"),
        ),
    ]


def gateway(ctx: Context) -> list[Alert]:
    """cause=gateway: no submissions while cards are approved; gateway failures; throttling."""
    spec = ctx.spec
    outage = spec.alerts["SMSGatewayOutage"]
    assert outage.window_ms and outage.min_events
    window = ctx.window(outage.window_ms)
    approved = ctx.metric("smswatch_pos_transactions_total", result='="approved"')
    submitted = ctx.metric("smswatch_sms_submitted_total")
    by_gw = ctx.by("smswatch_sms_submitted_total", "gateway")
    return [
        ctx.alert(
            "SMSGatewayOutage",
            f"sum by (job) (increase({approved}[{window}]))\n"
            "  * on (job) group_right ()\n"
            f"(sum by ({by_gw}) (increase({submitted}[{window}])) == bool 0)\n"
            f">= {outage.min_events}\n" + held(ctx, outage.window_ms),
            severity="critical",
            labels={"cause": "gateway"},
            summary=say(
                "SMS gateway submits nothing while card transactions are approved.",
                "刷卡交易正常批准，短信网关却未提交任何短信。",
            ),
            description=say(
                "Gateway {{ $labels.gateway }} submitted no SMS in the last "
                f"{format_duration(outage.window_ms)} while {{{{ $value | humanize }}}} card "
                "transactions were approved and every source was readable: cardholders get no "
                "transaction SMS at all.",
                "短信网关 {{ $labels.gateway }} 最近 "
                f"{format_duration(outage.window_ms)} 内未提交任何短信，而同期有 "
                "{{ $value | humanize }} 笔刷卡交易获批，且所有数据源均可正常读取："
                "持卡人完全收不到交易短信。",
            )
            + cause_named("gateway"),
            dashboard="oncall",
        ),
        _cause_alert(
            ctx,
            "SMSGatewayErrors",
            SMS,
            ("gateway", "carrier"),
            cause="gateway",
            severity="critical",
            summary=say(
                "The SMS gateway fails messages (platform error or carrier link down).",
                "短信网关发送失败（平台错误或运营商链路中断）。",
            ),
            description=say(
                "{{ $value | humanizePercentage }} of the messages of gateway "
                "{{ $labels.gateway }} to carrier {{ $labels.carrier }} failed for a gateway "
                "cause (platform error, carrier link down)",
                "短信网关 {{ $labels.gateway }} 发往运营商 {{ $labels.carrier }} 的短信中，有 "
                "{{ $value | humanizePercentage }} 因网关原因失败（平台错误、运营商链路中断）",
            ),
            dashboard="oncall",
        ),
        _cause_alert(
            ctx,
            "SMSThrottled",
            SMS,
            ("gateway", "carrier"),
            cause="throttled",
            severity="critical",
            summary=say(
                "The SMS gateway or a carrier throttles transaction SMS.",
                "短信网关或运营商正在对交易短信限流。",
            ),
            description=say(
                "{{ $value | humanizePercentage }} of the messages of gateway "
                "{{ $labels.gateway }} to carrier {{ $labels.carrier }} failed on a rate or "
                "frequency cap",
                "短信网关 {{ $labels.gateway }} 发往运营商 {{ $labels.carrier }} 的短信中，有 "
                "{{ $value | humanizePercentage }} 因发送速率或频次限制而失败",
            ),
            dashboard="oncall",
        ),
    ]


def receipts(ctx: Context) -> list[Alert]:
    """Receipts printed with no SMS: integration, and terminal configuration."""
    spec = ctx.spec
    inv = spec.alerts["POSTerminalsNotNotifying"]
    assert inv.window_ms and inv.min_events
    terminals = "smswatch_pos_terminals"
    by_acq = ctx.by(terminals, "acquirer")
    off = ctx.metric(terminals, sms_notice='="disabled"')
    old = ctx.metric(terminals, software='="outdated"')
    not_notifying = f"sum by ({by_acq}) ({off} or {old})"
    trail = format_duration(spec.missing_after_ms)
    step = ctx.duration(300_000)
    return [
        _cause_alert(
            ctx,
            "ReceiptsWithoutSMS",
            RECEIPTS,
            ("acquirer",),
            outcome="missing",
            cause="integration",
            severity="critical",
            summary=say(
                "Receipts are printed but their SMS never reaches the SMS platform.",
                "签购单已打印，但其短信始终未到达短信平台。",
            ),
            description=say(
                "{{ $value | humanizePercentage }} of the receipts of acquirer "
                "{{ $labels.acquirer }} got no SMS submitted within the "
                f"{trail} grace, from terminals whose SMS notice is on: the bank / acquirer / "
                f"SMS platform integration drops or delays transactions (judged {trail} after "
                "the transaction, so this trails the fault)",
                "收单机构 {{ $labels.acquirer }} 的签购单中，有 {{ $value | humanizePercentage }} "
                f"在 {trail} 宽限期内没有提交短信，且这些终端的短信通知是开启的：银行、收单机构与"
                f"短信平台之间的对接丢失或延迟了交易（在交易后 {trail} 才能判定，"
                "因此本告警滞后于故障）",
            ),
            dashboard="receipts",
        ),
        _cause_alert(
            ctx,
            "ReceiptsWithoutSMSTerminalConfig",
            RECEIPTS,
            ("acquirer",),
            outcome="missing",
            cause="terminal_config",
            severity="critical",
            summary=say(
                "Receipts without SMS from terminals with SMS notice off or old software.",
                "短信通知关闭或软件过旧的终端打印的签购单没有短信。",
            ),
            description=say(
                "{{ $value | humanizePercentage }} of the receipts of acquirer "
                "{{ $labels.acquirer }} got no SMS because the terminal's SMS notice is off or "
                "its software is outdated",
                "收单机构 {{ $labels.acquirer }} 的签购单中，有 {{ $value | humanizePercentage }} "
                "因终端短信通知关闭或终端软件版本过旧而没有短信",
            ),
            dashboard="receipts",
        ),
        ctx.alert(
            "POSTerminalsNotNotifying",
            f"{not_notifying}\n"
            f"- on ({by_acq})\n"
            f"min_over_time(({not_notifying})[{ctx.window(inv.window_ms)}:{step}])\n"
            f">= {inv.min_events}\n",
            severity="warning",
            labels={"cause": "terminal_config"},
            summary=say(
                "A batch of POS terminals switched SMS notice off or runs outdated software.",
                "一批 POS 终端关闭了短信通知或运行过旧的软件。",
            ),
            description=say(
                "{{ $value | humanize }} more POS terminals of acquirer {{ $labels.acquirer }} "
                "have SMS notice disabled or outdated software than at their fewest over the "
                f"last {format_duration(inv.window_ms)} (threshold {inv.min_events}): their "
                "receipts get no SMS.",
                "收单机构 {{ $labels.acquirer }} 短信通知关闭或软件过旧的 POS 终端，比最近 "
                f"{format_duration(inv.window_ms)} 内的最低值多出 {{{{ $value | humanize }}}} 台"
                f"（阈值 {inv.min_events} 台）：这些终端的签购单不会发送短信。",
            )
            + cause_named("terminal_config"),
            dashboard="receipts",
        ),
    ]


def hot_spots(ctx: Context) -> list[Alert]:
    """Cardholder-side causes against their own baseline: tickets, never SLO pages."""
    return [
        _cause_alert(
            ctx,
            "SMSInvalidNumberHotSpot",
            RECEIPTS,
            ("acquirer",),
            outcome="failed",
            cause="invalid_number",
            severity="warning",
            summary=say(
                "Many receipts' SMS fail on a wrong or invalid phone number.",
                "大量签购单的短信因手机号错误或无效而失败。",
            ),
            description=say(
                "{{ $value | humanizePercentage }} of the receipts of acquirer "
                "{{ $labels.acquirer }} failed on an invalid, empty, suspended or ported phone "
                "number",
                "收单机构 {{ $labels.acquirer }} 的签购单中，有 {{ $value | humanizePercentage }} "
                "因手机号无效、为空号、已停机或已携号转网而发送失败",
            ),
            dashboard="receipts",
        ),
        _cause_alert(
            ctx,
            "SMSUnreachableHotSpot",
            SMS,
            ("gateway", "carrier", "area"),
            cause="unreachable",
            severity="warning",
            summary=say(
                "Handsets of one carrier and area cannot be reached.",
                "某运营商在某地区的手机无法触达。",
            ),
            description=say(
                "{{ $value | humanizePercentage }} of the messages of gateway "
                "{{ $labels.gateway }} to carrier {{ $labels.carrier }} in area "
                "{{ $labels.area }} were undeliverable (weak signal, handset off, network "
                "trouble)",
                "短信网关 {{ $labels.gateway }} 发往运营商 {{ $labels.carrier }} 地区 "
                "{{ $labels.area }} 的短信中，有 {{ $value | humanizePercentage }} 无法送达"
                "（信号弱、手机关机、网络故障）",
            ),
            dashboard="oncall",
        ),
        _cause_alert(
            ctx,
            "SMSCarrierFiltering",
            SMS,
            ("gateway", "carrier"),
            cause="filtered",
            severity="warning",
            summary=say(
                "A carrier filters transaction SMS as spam or blocks them.",
                "运营商将交易短信当作垃圾短信过滤或拦截。",
            ),
            description=say(
                "{{ $value | humanizePercentage }} of the messages of gateway "
                "{{ $labels.gateway }} to carrier {{ $labels.carrier }} were blocked by the "
                "carrier's spam filter, a blacklist or an opt-out",
                "短信网关 {{ $labels.gateway }} 发往运营商 {{ $labels.carrier }} 的短信中，有 "
                "{{ $value | humanizePercentage }} 被运营商的垃圾短信过滤、黑名单或退订拦截",
            ),
            dashboard="oncall",
        ),
    ]


def latency(ctx: Context) -> Alert:
    """Most receipts notified, but minutes late: what the cardholder feels."""
    t = ctx.spec.alerts["ReceiptNotificationSlow"]
    assert t.window_ms and t.latency_seconds and t.ratio is not None and t.min_events
    window = ctx.window(t.window_ms)
    metric = "smswatch_receipt_notify_seconds"
    by = ctx.by(metric, "acquirer")
    le = format_number(t.latency_seconds)
    count = f"sum by ({by}) (increase({ctx.metric(metric + '_count')}[{window}]))"
    fast = ctx.metric(metric + "_bucket", le=f'=~"{le}|{le}\\\\.0"')
    in_time = f"sum by ({by}) (increase({fast}[{window}]))"
    return ctx.alert(
        "ReceiptNotificationSlow",
        f"(\n  ({count} - {in_time})\n/\n  {count}\n) > {format_number(t.ratio)}\n"
        f"and\n{count} >= {t.min_events}\n",
        severity="critical",
        summary=say(
            "Transaction SMS arrive, but minutes after the payment.",
            "交易短信能送达，但比付款晚了几分钟。",
        ),
        description=say(
            "{{ $value | humanizePercentage }} of the receipts of acquirer "
            "{{ $labels.acquirer }} notified in the last "
            f"{format_duration(t.window_ms)} reached the cardholder more than "
            f"{t.latency_seconds} s after the payment (threshold "
            f"{format_number(t.ratio * 100)} %).",
            f"收单机构 {{{{ $labels.acquirer }}}} 最近 {format_duration(t.window_ms)} 内已通知的"
            f"签购单中，有 {{{{ $value | humanizePercentage }}}} 的短信在付款 {t.latency_seconds} "
            f"秒之后才到达持卡人（阈值 {format_number(t.ratio * 100)} %）。",
        ),
        dashboard="receipts",
    )


def cause_groups(ctx: Context) -> list[Group]:
    """The alert groups of causes.yaml (its baseline recordings come from baseline.py)."""
    return [
        Group("smswatch-total-failure", (*total_failure(ctx), latency(ctx))),
        Group("smswatch-cause-gateway", tuple(gateway(ctx))),
        Group("smswatch-cause-receipts", tuple(receipts(ctx))),
        Group("smswatch-cause-hot-spots", tuple(hot_spots(ctx))),
    ]

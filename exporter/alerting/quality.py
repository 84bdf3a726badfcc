"""Data-quality alerts: what smswatch could not observe, records it refused, clocks it had to
clamp, codes it could not classify, and an acquirer whose approvals stop while its source is up.

None carries a `cause`: they say the numbers are incomplete or suspect, not why cardholders
miss SMS. All are tickets except `POSApprovalsStopped`, which pages: while an acquirer sends no
approved transactions no receipt of it can be judged at all.
"""

from __future__ import annotations

from exporter.alerting.baseline import none_although_due
from exporter.alerting.blindness import held
from exporter.alerting.promql import Alert, Context, Group, format_duration, format_number
from exporter.language import say


def quality_alerts(ctx: Context) -> list[Alert]:
    """Every data-quality alert, with the thresholds of the spec."""
    spec = ctx.spec
    a = spec.alerts

    def window(name: str) -> str:
        t = a[name]
        assert t.window_ms
        return ctx.window(t.window_ms)

    def nominal(name: str) -> str:
        t = a[name]
        assert t.window_ms
        return format_duration(t.window_ms)

    unobserved = ctx.metric("smswatch_unobserved_seconds_total")
    receipts_unobserved = ctx.metric("smswatch_receipts_unobserved_total")
    clamped = ctx.metric("smswatch_source_watermark_clamped_total")
    records = "smswatch_records_total"
    by_src = ctx.by(records, "source")
    bad = ctx.metric(records, result='="invalid"')
    invalid = a["SmswatchInvalidRecords"]
    assert invalid.ratio is not None and invalid.min_events
    ru = a["SmswatchReceiptsUnobserved"]
    assert ru.min_events
    stop = a["POSApprovalsStopped"]
    assert stop.window_ms and stop.min_expected
    txn = "smswatch_pos_transactions_total"
    by_acq = ctx.by(txn, "acquirer")
    hour = ctx.window(3_600_000)
    approved = ctx.metric(txn, result='="approved"')
    txn_sources = "|".join(spec.transaction_sources)
    sources_up = ctx.metric("smswatch_source_up", source=f'=~"{txn_sources}"')
    stop_s = ctx.seconds(ctx.window_ms(stop.window_ms) * ctx.scale)
    unlisted = a["SMSUnlistedCodes"]
    assert unlisted.ratio is not None and unlisted.min_events
    ambiguous = ctx.metric("smswatch_sms_ambiguous_total", code='="unlisted"')
    failed = ctx.metric("smswatch_sms_messages_total", status='!="delivered"')
    by_gw = ctx.by("smswatch_sms_ambiguous_total", "gateway")
    return [
        ctx.alert(
            "SmswatchUnobservedTime",
            f"sum by (job, source) (increase({unobserved}[{window('SmswatchUnobservedTime')}]))"
            " > 0\n",
            severity="warning",
            summary=say(
                "smswatch could not observe part of a source's history.",
                "smswatch 未能观测到某数据源的部分历史数据。",
            ),
            description=say(
                "Source {{ $labels.source }} has {{ $value | humanizeDuration }} of event time "
                f"in the last {nominal('SmswatchUnobservedTime')} that smswatch could not read "
                "(the feed no longer served it): events in that gap are not counted.",
                f"数据源 {{{{ $labels.source }}}} 在最近 {nominal('SmswatchUnobservedTime')} 内有 "
                "{{ $value | humanizeDuration }} 的事件时间 smswatch 未能读取（数据流已不再提供）："
                "这段空缺内的事件没有被计入。",
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchReceiptsUnobserved",
            f"sum by (job, acquirer) (increase({receipts_unobserved}"
            f"[{window('SmswatchReceiptsUnobserved')}])) >= {ru.min_events}\n",
            severity="warning",
            summary=say(
                "Receipts were decided `unknown` because smswatch could not observe them.",
                "因 smswatch 未能观测到，部分签购单被判定为 `unknown`。",
            ),
            description=say(
                "{{ $value | humanize }} receipts of acquirer {{ $labels.acquirer }} were "
                f"decided unknown in the last {nominal('SmswatchReceiptsUnobserved')} because "
                "their decision fell in a time smswatch could not observe.",
                f"收单机构 {{{{ $labels.acquirer }}}} 最近 {nominal('SmswatchReceiptsUnobserved')} "
                "内有 {{ $value | humanize }} 张签购单被判定为 unknown，因为其判定时刻落在 "
                "smswatch 未能观测的时段内。",
            ),
            dashboard="receipts",
        ),
        ctx.alert(
            "SmswatchWatermarkClamped",
            f"sum by (job, source) (increase({clamped}[{window('SmswatchWatermarkClamped')}]))"
            " > 0\n",
            severity="warning",
            summary=say(
                "A source reports times in the future: its watermark was clamped.",
                "某数据源报告了未来的时间：其水位线已被截断。",
            ),
            description=say(
                "Source {{ $labels.source }} had its watermark capped at the clock plus the "
                "allowed skew {{ $value | humanize }} times in the last "
                f"{nominal('SmswatchWatermarkClamped')}: its clock (or ours) is wrong.",
                f"数据源 {{{{ $labels.source }}}} 在最近 {nominal('SmswatchWatermarkClamped')} 内"
                "有 {{ $value | humanize }} 次水位线被截断为当前时钟加允许偏差："
                "它的时钟（或我们的）不准。",
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchInvalidRecords",
            "(\n"
            f"  sum by ({by_src}) (increase({bad}"
            f"[{window('SmswatchInvalidRecords')}]))\n"
            "/\n"
            f"  sum by ({by_src}) (increase({ctx.metric(records)}"
            f"[{window('SmswatchInvalidRecords')}]))\n"
            f") > {format_number(invalid.ratio)}\n"
            "and\n"
            f"sum by ({by_src}) (increase({bad}"
            f"[{window('SmswatchInvalidRecords')}])) >= {invalid.min_events}\n",
            severity="warning",
            summary=say(
                "A source sends many records smswatch cannot read.",
                "某数据源发送了大量 smswatch 无法解析的记录。",
            ),
            description=say(
                "{{ $value | humanizePercentage }} of the records of source "
                "{{ $labels.source }} were invalid (quarantined) over the last "
                f"{nominal('SmswatchInvalidRecords')} (threshold "
                f"{format_number(invalid.ratio * 100)} %): the provider changed its format or "
                "sends broken data; those events are not counted.",
                f"数据源 {{{{ $labels.source }}}} 最近 {nominal('SmswatchInvalidRecords')} 内的"
                "记录中，有 {{ $value | humanizePercentage }} 无效（已隔离）"
                f"（阈值 {format_number(invalid.ratio * 100)} %）：服务商更改了数据格式或发送了"
                "损坏的数据，这些事件没有被计入。",
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "POSApprovalsStopped",
            none_although_due(
                by_acq,
                f"sum by ({by_acq}) (rate({approved}[{hour}])) * {stop_s}",
                stop.min_expected,
                f"sum by ({by_acq}) (increase({approved}[{window('POSApprovalsStopped')}]))",
            )
            + "unless on (job)\n"
            f"min by (job) ({sources_up}) == 0\n" + held(ctx, stop.window_ms),
            severity="critical",
            summary=say(
                "An acquirer's approved card payments fell to zero while its feed is up.",
                "收单机构的数据源正常，但其获批的刷卡交易降为零。",
            ),
            description=say(
                "Acquirer {{ $labels.acquirer }} reported no approved transaction in the last "
                f"{nominal('POSApprovalsStopped')} although its feed answers and the last hour's "
                "rate says {{ $value | humanize }} were due: its terminals or its link to us "
                "are down, and none of its receipts can be judged.",
                f"收单机构 {{{{ $labels.acquirer }}}} 最近 {nominal('POSApprovalsStopped')} "
                "内未报告任何获批交易，而其数据源仍有响应，且按过去一小时的速率应有 "
                "{{ $value | humanize }} 笔：其终端或与我们的链路已中断，其签购单都无法判定。",
            ),
            dashboard="receipts",
        ),
        ctx.alert(
            "SMSUnlistedCodes",
            "(\n"
            f"  sum by ({by_gw}) (increase({ambiguous}[{window('SMSUnlistedCodes')}]))\n"
            "/ on (job, gateway)\n"
            f"  sum by ({by_gw}) (increase({failed}[{window('SMSUnlistedCodes')}]))\n"
            f") > {format_number(unlisted.ratio)}\n"
            "and on (job, gateway)\n"
            f"sum by ({by_gw}) (increase({ambiguous}[{window('SMSUnlistedCodes')}]))"
            f" >= {unlisted.min_events}\n",
            severity="warning",
            summary=say(
                "Many failed SMS carry a provider code smswatch does not know.",
                "大量失败短信带有 smswatch 不认识的服务商错误码。",
            ),
            description=say(
                "{{ $value | humanizePercentage }} of the failed messages of gateway "
                "{{ $labels.gateway }} over the last "
                f"{nominal('SMSUnlistedCodes')} carried a code missing from the code table "
                f"(threshold {format_number(unlisted.ratio * 100)} %): their cause is a guess.",
                f"短信网关 {{{{ $labels.gateway }}}} 最近 {nominal('SMSUnlistedCodes')} "
                "内的失败短信中，有 {{ $value | humanizePercentage }} 带有错误码表中没有的错误码"
                f"（阈值 {format_number(unlisted.ratio * 100)} %）：它们的原因只是推测。",
            ),
            dashboard="oncall",
        ),
    ]


def quality_groups(ctx: Context) -> list[Group]:
    """The groups of quality.yaml."""
    return [Group("smswatch-data-quality", tuple(quality_alerts(ctx)))]

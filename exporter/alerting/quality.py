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
            summary="smswatch could not observe part of a source's history.",
            description=(
                "Source {{ $labels.source }} has {{ $value | humanizeDuration }} of event time "
                f"in the last {nominal('SmswatchUnobservedTime')} that smswatch could not read "
                "(the feed no longer served it): events in that gap are not counted."
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchReceiptsUnobserved",
            f"sum by (job, acquirer) (increase({receipts_unobserved}"
            f"[{window('SmswatchReceiptsUnobserved')}])) >= {ru.min_events}\n",
            severity="warning",
            summary="Receipts were decided `unknown` because smswatch could not observe them.",
            description=(
                "{{ $value | humanize }} receipts of acquirer {{ $labels.acquirer }} were "
                f"decided unknown in the last {nominal('SmswatchReceiptsUnobserved')} because "
                "their decision fell in a time smswatch could not observe."
            ),
            dashboard="receipts",
        ),
        ctx.alert(
            "SmswatchWatermarkClamped",
            f"sum by (job, source) (increase({clamped}[{window('SmswatchWatermarkClamped')}]))"
            " > 0\n",
            severity="warning",
            summary="A source reports times in the future: its watermark was clamped.",
            description=(
                "Source {{ $labels.source }} had its watermark capped at the clock plus the "
                "allowed skew {{ $value | humanize }} times in the last "
                f"{nominal('SmswatchWatermarkClamped')}: its clock (or ours) is wrong."
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
            summary="A source sends many records smswatch cannot read.",
            description=(
                "{{ $value | humanizePercentage }} of the records of source "
                "{{ $labels.source }} were invalid (quarantined) over the last "
                f"{nominal('SmswatchInvalidRecords')} (threshold "
                f"{format_number(invalid.ratio * 100)} %): the provider changed its format or "
                "sends broken data; those events are not counted."
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
            summary="An acquirer's approved card payments fell to zero while its feed is up.",
            description=(
                "Acquirer {{ $labels.acquirer }} reported no approved transaction in the last "
                f"{nominal('POSApprovalsStopped')} although its feed answers and the last hour's "
                "rate says {{ $value | humanize }} were due: its terminals or its link to us "
                "are down, and none of its receipts can be judged."
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
            summary="Many failed SMS carry a provider code smswatch does not know.",
            description=(
                "{{ $value | humanizePercentage }} of the failed messages of gateway "
                "{{ $labels.gateway }} over the last "
                f"{nominal('SMSUnlistedCodes')} carried a code missing from the code table "
                f"(threshold {format_number(unlisted.ratio * 100)} %): their cause is a guess."
            ),
            dashboard="oncall",
        ),
    ]


def quality_groups(ctx: Context) -> list[Group]:
    """The groups of quality.yaml."""
    return [Group("smswatch-data-quality", tuple(quality_alerts(ctx)))]

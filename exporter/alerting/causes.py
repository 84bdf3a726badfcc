"""Cause alerts: each names one root cause of DESIGN.md §1 in its `cause` label, so the page
says *why* cardholders miss their SMS, plus the absolute-count alerts for total outages at low
traffic (which the SLO alerts' traffic guard would otherwise hide).
"""

from __future__ import annotations

from exporter.alerting.promql import Alert, Context, Group, format_duration, format_number
from exporter.alerting.spec import Thresholds

SMS = "smswatch_sms_messages_total"
RECEIPTS = "smswatch_receipts_total"


def _share(
    ctx: Context, metric: str, dims: tuple[str, ...], part: dict[str, str], t: Thresholds
) -> str:
    """`part ÷ all` of a counter over the window, above the ratio, with enough events."""
    assert t.window_ms and t.ratio is not None and t.min_events
    window = ctx.duration(t.window_ms)
    by = ctx.by(metric, *dims)
    return (
        "(\n"
        f"  sum by ({by}) (rate({ctx.metric(metric, **part)}[{window}]))\n"
        "/\n"
        f"  sum by ({by}) (rate({ctx.metric(metric)}[{window}]))\n"
        f") > {format_number(t.ratio)}\n"
        "and\n"
        f"sum by ({by}) (increase({ctx.metric(metric)}[{window}])) >= {t.min_events}\n"
    )


def _words(t: Thresholds) -> str:
    """`over 30m (threshold 5 %, at least 20 events)` for descriptions."""
    assert t.window_ms and t.ratio is not None
    percent = format_number(t.ratio * 100)
    return f"over the last {format_duration(t.window_ms)} (threshold {percent} %)"


def _share_alert(
    ctx: Context,
    name: str,
    metric: str,
    dims: tuple[str, ...],
    *,
    cause: str,
    outcome: str | None = None,
    unless: str = "",
    severity: str,
    summary: str,
    description: str,
    dashboard: str,
) -> Alert:
    """An alert on the share of `metric` put down to `cause` (and `outcome`), with the spec's
    thresholds for `name`; its `cause` label is the cause it selects. `unless` is a clause
    appended to the expression."""
    part = {"cause": f'="{cause}"'}
    if outcome is not None:
        part = {"outcome": f'="{outcome}"', **part}
    return ctx.alert(
        name,
        _share(ctx, metric, dims, part, ctx.spec.alerts[name]) + unless,
        severity=severity,
        labels={"cause": cause},
        summary=summary,
        description=description,
        dashboard=dashboard,
    )


def total_failure(ctx: Context) -> list[Alert]:
    """Nothing delivered at all while some traffic is there: pages even at 3 a.m."""
    out = []
    for name, metric, dim, ok, what in (
        ("SMSDeliveryTotalFailure", SMS, "gateway", 'status="delivered"', "messages"),
        (
            "ReceiptNotificationTotalFailure",
            RECEIPTS,
            "acquirer",
            'outcome="delivered"',
            "receipts",
        ),
    ):
        t = ctx.spec.alerts[name]
        assert t.window_ms and t.min_events
        window = ctx.duration(t.window_ms)
        by = ctx.by(metric, dim)
        label, value = ok.split("=", 1)
        failed = ctx.metric(metric, **{label: "!=" + value})
        delivered = ctx.metric(metric, **{label: "=" + value})
        out.append(
            ctx.alert(
                name,
                f"sum by ({by}) (increase({failed}[{window}])) >= {t.min_events}\n"
                f"unless on ({by})\n"
                f"sum by ({by}) (increase({delivered}[{window}])) > 0\n",
                severity="critical",
                summary=f"No {what} delivered at all: total outage.",
                description=(
                    f"{dim.capitalize()} {{{{ $labels.{dim} }}}}: {{{{ $value | humanize }}}} "
                    f"{what} reached an outcome in the last {format_duration(t.window_ms)} and "
                    "not one was delivered. This alert has no traffic guard: it pages at night "
                    "when the burn-rate alerts cannot."
                ),
                dashboard="oncall" if metric == SMS else "receipts",
            )
        )
    return out


def gateway(ctx: Context) -> list[Alert]:
    """cause=gateway: no submissions while cards are approved, API down, gateway errors."""
    spec = ctx.spec
    outage = spec.alerts["SMSGatewayOutage"]
    assert outage.window_ms and outage.min_events
    window = ctx.duration(outage.window_ms)
    approved = ctx.metric("smswatch_pos_transactions_total", result='="approved"')
    submitted = ctx.metric("smswatch_sms_submitted_total")
    by_gw = ctx.by("smswatch_sms_submitted_total", "gateway")
    labels = {"cause": "gateway"}
    api_parts = []
    for source, gw in spec.sms_sources.items():
        up = ctx.metric("smswatch_source_up", source=f'="{source}"')
        api_parts.append(f'label_replace({up}, "gateway", "{gw}", "", "")')
    api_expr = "(\n  " + "\nor\n  ".join(api_parts) + "\n) == 0\n"
    errors = spec.alerts["SMSGatewayErrors"]
    return [
        ctx.alert(
            "SMSGatewayOutage",
            f"sum by (job) (increase({approved}[{window}]))\n"
            "  * on (job) group_right ()\n"
            f"(sum by ({by_gw}) (rate({submitted}[{window}])) == bool 0)\n"
            f">= {outage.min_events}\n",
            severity="critical",
            labels=labels,
            summary="SMS gateway submits nothing while card transactions are approved.",
            description=(
                "Gateway {{ $labels.gateway }} submitted no SMS in the last "
                f"{format_duration(outage.window_ms)} while {{{{ $value | humanize }}}} card "
                "transactions were approved: cardholders get no transaction SMS at all."
            ),
            dashboard="oncall",
        ),
        ctx.alert(
            "SMSGatewayAPIDown",
            api_expr,
            severity="critical",
            labels=labels,
            summary="The bank SMS platform's API cannot be polled.",
            description=(
                "Polls of source {{ $labels.source }} (gateway {{ $labels.gateway }}) have been "
                "failing for "
                f"{format_duration(spec.alerts['SMSGatewayAPIDown'].for_ms)}: the SMS platform "
                "is down or unreachable, and smswatch cannot see whether SMS go out."
            ),
            dashboard="oncall",
        ),
        _share_alert(
            ctx,
            "SMSGatewayErrors",
            SMS,
            ("gateway",),
            cause="gateway",
            severity="critical",
            summary="The SMS gateway fails messages across carriers.",
            description=(
                "{{ $value | humanizePercentage }} of the messages of gateway "
                "{{ $labels.gateway }} failed for a gateway cause (platform error, carrier "
                f"link down) {_words(errors)}."
            ),
            dashboard="oncall",
        ),
    ]


def receipts(ctx: Context) -> list[Alert]:
    """Receipts printed with no SMS: integration, and terminal configuration."""
    spec = ctx.spec
    integ = spec.alerts["ReceiptsWithoutSMS"]
    assert integ.gateway_quiet_ms
    submitted = ctx.metric("smswatch_sms_submitted_total")
    by_gw = ctx.by("smswatch_sms_submitted_total", "gateway")
    grace = ctx.duration(spec.missing_after_ms)
    quiet = (
        "unless on (job)\n"
        f"max by (job) (max_over_time((sum by ({by_gw}) (rate({submitted}[{grace}])) == bool 0)"
        f"[{ctx.duration(integ.gateway_quiet_ms)}:]) == 1)\n"
    )
    term = spec.alerts["ReceiptsWithoutSMSTerminalConfig"]
    inv = spec.alerts["POSTerminalsNotNotifying"]
    assert inv.ratio is not None and inv.min_events
    terminals = "smswatch_pos_terminals"
    by_acq = ctx.by(terminals, "acquirer")
    off = ctx.metric(terminals, sms_notice='="disabled"')
    old = ctx.metric(terminals, software='="outdated"')
    trail = format_duration(spec.missing_after_ms)
    return [
        _share_alert(
            ctx,
            "ReceiptsWithoutSMS",
            RECEIPTS,
            ("acquirer",),
            outcome="missing",
            cause="integration",
            unless=quiet,
            severity="critical",
            summary="Receipts are printed but their SMS never reaches the SMS platform.",
            description=(
                "{{ $value | humanizePercentage }} of the receipts of acquirer "
                "{{ $labels.acquirer }} got no SMS submitted within the "
                f"{trail} grace, from terminals whose SMS notice is on, {_words(integ)}: the "
                "bank / acquirer / SMS platform integration drops or delays transactions. "
                f"Receipts are judged {trail} after the transaction, so this trails the fault."
            ),
            dashboard="receipts",
        ),
        _share_alert(
            ctx,
            "ReceiptsWithoutSMSTerminalConfig",
            RECEIPTS,
            ("acquirer",),
            outcome="missing",
            cause="terminal_config",
            severity="warning",
            summary="Receipts without SMS from terminals with SMS notice off or old software.",
            description=(
                "{{ $value | humanizePercentage }} of the receipts of acquirer "
                "{{ $labels.acquirer }} got no SMS because the terminal's SMS notice is off or "
                f"its software is outdated, {_words(term)}."
            ),
            dashboard="receipts",
        ),
        ctx.alert(
            "POSTerminalsNotNotifying",
            "(\n"
            f"  sum by ({by_acq}) ({off} or {old})\n"
            "/\n"
            f"  sum by ({by_acq}) ({ctx.metric(terminals)})\n"
            f") > {format_number(inv.ratio)}\n"
            "and\n"
            f"sum by ({by_acq}) ({ctx.metric(terminals)}) >= {inv.min_events}\n",
            severity="warning",
            labels={"cause": "terminal_config"},
            summary="Many POS terminals have SMS notice off or outdated software.",
            description=(
                "{{ $value | humanizePercentage }} of the POS terminals of acquirer "
                "{{ $labels.acquirer }} have SMS notice disabled or outdated software "
                f"(threshold {format_number(inv.ratio * 100)} %): their receipts will "
                "get no SMS."
            ),
            dashboard="receipts",
        ),
    ]


def hot_spots(ctx: Context) -> list[Alert]:
    """invalid_number by acquirer, unreachable by carrier/area, throttled, filtered."""
    spec = ctx.spec
    invalid = spec.alerts["SMSInvalidNumberHotSpot"]
    unreach = spec.alerts["SMSUnreachableHotSpot"]
    throttle = spec.alerts["SMSThrottled"]
    filtered = spec.alerts["SMSCarrierFiltering"]
    return [
        _share_alert(
            ctx,
            "SMSInvalidNumberHotSpot",
            RECEIPTS,
            ("acquirer",),
            outcome="failed",
            cause="invalid_number",
            severity="warning",
            summary="Many receipts' SMS fail on a wrong or invalid phone number.",
            description=(
                "{{ $value | humanizePercentage }} of the receipts of acquirer "
                "{{ $labels.acquirer }} failed on an invalid, empty, suspended or ported phone "
                f"number {_words(invalid)}."
            ),
            dashboard="receipts",
        ),
        _share_alert(
            ctx,
            "SMSUnreachableHotSpot",
            SMS,
            ("gateway", "carrier", "area"),
            cause="unreachable",
            severity="warning",
            summary="Handsets of one carrier and area cannot be reached.",
            description=(
                "{{ $value | humanizePercentage }} of the messages of gateway "
                "{{ $labels.gateway }} to carrier {{ $labels.carrier }} in area "
                "{{ $labels.area }} were undeliverable (weak signal, handset off, network "
                f"trouble) {_words(unreach)}."
            ),
            dashboard="oncall",
        ),
        _share_alert(
            ctx,
            "SMSThrottled",
            SMS,
            ("gateway",),
            cause="throttled",
            severity="warning",
            summary="The SMS gateway or carriers throttle transaction SMS.",
            description=(
                "{{ $value | humanizePercentage }} of the messages of gateway "
                "{{ $labels.gateway }} failed on a rate or frequency cap "
                f"{_words(throttle)}."
            ),
            dashboard="oncall",
        ),
        _share_alert(
            ctx,
            "SMSCarrierFiltering",
            SMS,
            ("gateway", "carrier"),
            cause="filtered",
            severity="warning",
            summary="A carrier filters transaction SMS as spam or blocks them.",
            description=(
                "{{ $value | humanizePercentage }} of the messages of gateway "
                "{{ $labels.gateway }} to carrier {{ $labels.carrier }} were blocked by the "
                f"carrier's spam filter, a blacklist or an opt-out {_words(filtered)}."
            ),
            dashboard="oncall",
        ),
    ]


def cause_groups(ctx: Context) -> list[Group]:
    return [
        Group("smswatch-total-failure", tuple(total_failure(ctx))),
        Group("smswatch-cause-gateway", tuple(gateway(ctx))),
        Group("smswatch-cause-receipts", tuple(receipts(ctx))),
        Group("smswatch-cause-hot-spots", tuple(hot_spots(ctx))),
    ]

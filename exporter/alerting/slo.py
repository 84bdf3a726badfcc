"""SLO rules in the shape Sloth generates: SLI error ratios per window, meta series, and
multi-window multi-burn-rate alerts, one SLO per gateway or per acquirer.

Names and labels follow Sloth (`slo:sli_error:ratio_rate5m{sloth_id,sloth_service,sloth_slo,
sloth_window}`, `slo:objective:ratio`, `slo:period_error_budget_remaining:ratio` …) so its
dashboards work; beside them `slo:sli_total:rate<window>` records the event rate the traffic
guard needs. The 30-day ratio is the exact ratio of rates (Sloth's `--disable-optimized-rules`),
never an average of 5-minute ratios, and is evaluated in its own slower group with the
period burn rate and remaining budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.alerting.promql import (
    DIMENSION_ZH,
    Alert,
    Context,
    Group,
    Recording,
    format_duration,
    format_number,
)
from exporter.alerting.spec import BurnPolicy, Objective
from exporter.language import say

#: How often the 30-day period ratios are evaluated (before scaling): rate() over 30 days of
#: raw series is the heaviest query here and changes slowly.
PERIOD_EVALUATION_MS = 300_000


#: The counter each outcome SLO reads; its `cause` label says who caused a failure.
SLI_METRICS: dict[str, str] = {
    "sms-delivery": "smswatch_sms_messages_total",
    "receipt-notification": "smswatch_receipts_total",
}


@dataclass(frozen=True)
class SLODefinition:
    """How one SLO is measured: its error and total rate expressions per window."""

    name: str
    alert: str
    dimension: str  # gateway | acquirer
    what: str  # human wording for summaries
    what_zh: str  # the same in Simplified Chinese
    dashboard: str

    def rates(self, ctx: Context, window: str) -> tuple[str, str]:
        """(errors, total) per-second rate expressions over `window`, by job and dimension."""
        if self.name in ("sms-delivery", "receipt-notification"):
            # Bad: the outcomes the bank side causes. Valid: everything but the cardholder-side
            # outcomes, which are neither good nor bad for this SLO.
            metric = SLI_METRICS[self.name]
            by = ctx.by(metric, self.dimension)
            errors = ctx.metric(metric, cause=f'=~"{"|".join(ctx.spec.bank_side_causes)}"')
            total = ctx.metric(metric, cause=f'!~"{"|".join(ctx.spec.cardholder_causes)}"')
        else:
            objective = ctx.spec.objectives[self.name]
            le = format_number(objective.latency_seconds or 0)
            by = ctx.by("smswatch_receipt_notify_seconds", "acquirer")
            count = ctx.metric("smswatch_receipt_notify_seconds_count")
            # Prometheus 2.x keeps `le` as the exporter writes it: "60" or "60.0".
            fast = ctx.metric("smswatch_receipt_notify_seconds_bucket", le=f'=~"{le}|{le}\\\\.0"')
            total_rate = f"sum by ({by}) (rate({count}[{window}]))"
            fast_rate = f"sum by ({by}) (rate({fast}[{window}]))"
            return f"({total_rate} - {fast_rate})", total_rate
        total_rate = f"sum by ({by}) (rate({total}[{window}]))"
        # No bad event at all yet is an error rate of 0, not an absent one.
        return f"(sum by ({by}) (rate({errors}[{window}])) or 0 * {total_rate})", total_rate


SLOS: tuple[SLODefinition, ...] = (
    SLODefinition(
        "sms-delivery",
        "SMSDeliveryErrorBudgetBurn",
        "gateway",
        "SMS delivery",
        "短信送达",
        "overview",
    ),
    SLODefinition(
        "receipt-notification",
        "ReceiptNotificationErrorBudgetBurn",
        "acquirer",
        "receipt notification",
        "签购单短信通知",
        "overview",
    ),
    SLODefinition(
        "receipt-latency",
        "ReceiptLatencyErrorBudgetBurn",
        "acquirer",
        "receipt notification latency",
        "签购单短信通知时延",
        "overview",
    ),
)


def _ids(ctx: Context, slo: SLODefinition) -> dict[str, str]:
    return {
        "sloth_id": f"{ctx.spec.service}-{slo.name}",
        "sloth_service": ctx.spec.service,
        "sloth_slo": slo.name,
    }


def _match(ids: dict[str, str]) -> str:
    return "{" + ", ".join(f'{key}="{value}"' for key, value in ids.items()) + "}"


def windows_ms(ctx: Context) -> list[int]:
    """Every window an alert of the spec uses, shortest first."""
    policies = (ctx.spec.page, ctx.spec.ticket)
    found = {ms for p in policies for pair in p.windows for ms in (pair.long_ms, pair.short_ms)}
    return sorted(found)


def sli_group(ctx: Context, slo: SLODefinition) -> Group:
    """`slo:sli_error:ratio_rate<w>` and `slo:sli_total:rate<w>` for every alert window."""
    ids = _ids(ctx, slo)
    rules: list[Recording] = []
    for ms in windows_ms(ctx):
        nominal = format_duration(ms)
        errors, total = slo.rates(ctx, ctx.duration(ms))
        labels = {**ids, "sloth_window": nominal}
        rules.append(
            Recording(f"slo:sli_error:ratio_rate{nominal}", f"{errors}\n/\n{total}\n", labels)
        )
        rules.append(Recording(f"slo:sli_total:rate{nominal}", f"{total}\n", labels))
    return Group(f"sloth-slo-sli-recordings-{ids['sloth_id']}", tuple(rules))


def period_group(ctx: Context, slo: SLODefinition) -> Group:
    """The exact error ratio over the whole SLO period (30 days)."""
    ids = _ids(ctx, slo)
    nominal = format_duration(ctx.spec.period_ms)
    errors, total = slo.rates(ctx, ctx.duration(ctx.spec.period_ms))
    labels = {**ids, "sloth_window": nominal}
    match = _match(ids)
    budget = format_number(ctx.spec.objectives[slo.name].error_budget)
    # The burn rate and remaining budget live in this group, right after the ratio they read:
    # read from another group they could find it older than the 5m lookback and vanish.
    return Group(
        f"sloth-slo-period-recordings-{ids['sloth_id']}",
        (
            Recording(f"slo:sli_error:ratio_rate{nominal}", f"{errors}\n/\n{total}\n", labels),
            Recording(f"slo:sli_total:rate{nominal}", f"{total}\n", labels),
            Recording(
                "slo:period_burn_rate:ratio",
                f"slo:sli_error:ratio_rate{nominal}{match} / {budget}",
                ids,
            ),
            Recording(
                "slo:period_error_budget_remaining:ratio",
                f"1 - slo:period_burn_rate:ratio{match}",
                ids,
            ),
        ),
        interval_ms=PERIOD_EVALUATION_MS,
    )


def meta_group(ctx: Context, slo: SLODefinition) -> Group:
    """Objective, error budget, period, burn rates and remaining budget (Sloth's meta group)."""
    ids = _ids(ctx, slo)
    objective: Objective = ctx.spec.objectives[slo.name]
    match = _match(ids)
    shortest = format_duration(windows_ms(ctx)[0])
    per_budget = (
        f"/ on (sloth_id, sloth_slo, sloth_service) group_left ()\nslo:error_budget:ratio{match}\n"
    )
    info = {
        **ids,
        "sloth_mode": "cli-gen-prom",
        "sloth_objective": format_number(objective.objective_percent),
    }
    return Group(
        f"sloth-slo-meta-recordings-{ids['sloth_id']}",
        (
            Recording("slo:objective:ratio", f"vector({format_number(objective.objective)})", ids),
            Recording(
                "slo:error_budget:ratio", f"vector({format_number(objective.error_budget)})", ids
            ),
            Recording(
                "slo:time_period:days",
                f"vector({format_number(ctx.spec.period_ms // 86_400_000)})",
                ids,
            ),
            Recording(
                "slo:current_burn_rate:ratio",
                f"slo:sli_error:ratio_rate{shortest}{match}\n{per_budget}",
                ids,
            ),
            Recording("sloth_slo_info", "vector(1)", info),
        ),
    )


def _burn_expr(ctx: Context, slo: SLODefinition, policy: BurnPolicy) -> str:
    ids = _ids(ctx, slo)
    match = _match(ids)
    objective = ctx.spec.objectives[slo.name]
    budget = format_number(objective.error_budget)
    per_hour = ctx.seconds_per_hour()
    pairs = []
    for pair in policy.windows:
        short, long = format_duration(pair.short_ms), format_duration(pair.long_ms)
        threshold = f"({format_number(pair.burn_rate)} * {budget})"
        pairs.append(
            "(\n"
            f"  max without (sloth_window) (slo:sli_error:ratio_rate{short}{match} > {threshold})\n"
            "  and\n"
            f"  max without (sloth_window) (slo:sli_error:ratio_rate{long}{match} > {threshold})\n"
            "  and\n"
            f"  max without (sloth_window) (slo:sli_total:rate{long}{match} * {per_hour}"
            f" >= {objective.min_events_per_hour})\n"
            ")"
        )
    return "\nor\n".join(pairs) + "\n"


def _burn_alert(ctx: Context, slo: SLODefinition, policy: BurnPolicy) -> Alert:
    objective = ctx.spec.objectives[slo.name]
    dim = slo.dimension
    rates = say(" or ", " 或 ").join(
        f"{format_number(p.burn_rate)}× "
        f"({format_duration(p.long_ms)}/{format_duration(p.short_ms)})"
        for p in policy.windows
    )
    period = format_duration(ctx.spec.period_ms)
    target = format_number(objective.objective_percent)
    if slo.name == "receipt-latency":
        target += say(
            f" % of receipts notified within {objective.latency_seconds} s",
            f" % 的签购单在 {objective.latency_seconds} 秒内通知",
        )
    else:
        target += " %"
    return Alert(
        name=slo.alert,
        expr=_burn_expr(ctx, slo, policy),
        for_ms=policy.for_ms,
        severity=policy.severity,
        labels={"sloth_severity": policy.name},
        summary=say(
            f"The {slo.what} error budget is burning too fast.",
            f"{slo.what_zh}的错误预算消耗过快。",
        ),
        description=say(
            f"{dim.capitalize()} {{{{ $labels.{dim} }}}} is burning its {period} {slo.what} "
            f"error budget (objective {target}) at {rates}: error ratio "
            f"{{{{ $value | humanizePercentage }}}} over the short window. "
            "The cause alerts of the same "
            f"{dim} say why.",
            f"{DIMENSION_ZH[dim]} {{{{ $labels.{dim} }}}} 正以 {rates} 的速率消耗其 {period} "
            f"{slo.what_zh}错误预算（目标 {target}）：短窗口内错误率为 "
            f"{{{{ $value | humanizePercentage }}}}。"
            f"同一{DIMENSION_ZH[dim]}的原因类告警会说明原因。",
        ),
        dashboard=slo.dashboard,
    )


def alert_group(ctx: Context, slo: SLODefinition) -> Group:
    ids = _ids(ctx, slo)
    return Group(
        f"sloth-slo-alerts-{ids['sloth_id']}",
        (_burn_alert(ctx, slo, ctx.spec.page), _burn_alert(ctx, slo, ctx.spec.ticket)),
    )


def slo_groups(ctx: Context, slo: SLODefinition) -> list[Group]:
    """All groups of one SLO, in Sloth's order."""
    return [
        sli_group(ctx, slo),
        period_group(ctx, slo),
        meta_group(ctx, slo),
        alert_group(ctx, slo),
    ]

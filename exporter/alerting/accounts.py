"""Provider account alerts: the outages that announce themselves before they hit.

Credit that runs out within a day at the current burn (`predict_linear` over the balance or
the package quota left), a package quota nearly used up, and a sender signature or template
that is not approved (rejected, withdrawn, deleted, or back in review) carry `cause=gateway`:
the bank's SMS platform set-up is what fails. An account check that keeps failing is a
health warning without a cause: smswatch cannot see the account.
"""

from __future__ import annotations

from exporter.alerting.promql import Alert, Context, Group, format_duration, format_number
from exporter.catalogue import CAUSES

CAUSE = "gateway"
assert CAUSE in CAUSES


def account_alerts(ctx: Context) -> list[Alert]:
    """The alerts on each gateway's provider account."""
    alerts = ctx.spec.alerts
    credit = alerts["SMSAccountCreditRunningOut"]
    assert credit.window_ms and credit.threshold_ms
    window = ctx.window(credit.window_ms)
    horizon = ctx.seconds(credit.threshold_ms)
    quota = alerts["SMSAccountQuotaLow"]
    assert quota.ratio is not None
    balance = ctx.metric("smswatch_account_balance")
    left = ctx.metric("smswatch_account_quota_remaining")
    label = {"cause": CAUSE}
    horizon_text = format_duration(credit.threshold_ms)
    return [
        ctx.alert(
            "SMSAccountCreditRunningOut",
            (
                f"predict_linear({balance}[{window}], {horizon}) <= 0\n"
                f"or\npredict_linear({left}[{window}], {horizon}) <= 0\n"
            ),
            severity="warning",
            summary="The SMS provider account runs out of credit within a day at this burn.",
            description=(
                "At the burn rate of the last "
                f"{format_duration(credit.window_ms)}, the provider account of gateway "
                "{{ $labels.gateway }} is empty within "
                f"{horizon_text} (predicted then: {{{{ $value | humanize }}}} "
                "{{ $labels.currency }}; a package quota counts messages): once it is empty, "
                "the provider refuses every transaction SMS."
            ),
            labels=label,
            dashboard="oncall",
        ),
        ctx.alert(
            "SMSAccountQuotaLow",
            (
                f"{left}\n< {format_number(quota.ratio)} * "
                f"{ctx.metric('smswatch_account_quota_limit')}\n"
            ),
            severity="warning",
            summary="The SMS packages of a provider account are nearly used up.",
            description=(
                "Gateway {{ $labels.gateway }} has {{ $value | humanize }} messages left in its "
                f"packages in effect, under {format_number(quota.ratio * 100)} % of what they "
                "held: buy or renew a package before the provider refuses messages."
            ),
            labels=label,
            dashboard="oncall",
        ),
        ctx.alert(
            "SMSSenderNotApproved",
            (
                f"({ctx.metric('smswatch_sms_sender_approved')} == 0)\n"
                "* on (job, instance, gateway, kind, name) group_left (state)\n"
                f"({ctx.metric('smswatch_sms_sender_state')} == 1)\n"
            ),
            severity="warning",
            summary="A sender signature or message template is not approved at the provider.",
            description=(
                "The {{ $labels.kind }} {{ $labels.name }} of gateway {{ $labels.gateway }} is "
                "{{ $labels.state }} at the provider, not approved: messages sent with it are "
                "rejected (carriers require an approved signature and template)."
            ),
            labels=label,
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchAccountCheckFailing",
            f"{ctx.metric('smswatch_account_up')} == 0\n",
            severity="warning",
            summary="smswatch cannot read an SMS provider account.",
            description=(
                "The account checks of gateway {{ $labels.gateway }} have failed for "
                f"{format_duration(alerts['SmswatchAccountCheckFailing'].for_ms)}: its balance "
                "and approvals are not watched, and their alerts cannot fire."
            ),
            dashboard="oncall",
        ),
    ]


def account_groups(ctx: Context) -> list[Group]:
    """The rule file of the account alerts."""
    return [Group("smswatch-accounts", tuple(account_alerts(ctx)))]

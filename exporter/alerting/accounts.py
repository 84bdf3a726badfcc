"""Provider account alerts: the outages that announce themselves before they hit.

Credit that runs out within a day at the current burn (`predict_linear` over the balance or
the package quota left), a package quota nearly used up, and a sender signature or template
that is not approved (rejected, withdrawn, deleted, or back in review) carry `cause=gateway`:
the bank's SMS platform set-up is what fails. An account check that keeps failing is a
health warning without a cause: smswatch cannot see the account.

Annotations are said in English and Simplified Chinese (`say`); the cause alerts close with the
vocabulary's name of their cause, like every other cause alert.
"""

from __future__ import annotations

from exporter.alerting.causes import cause_named
from exporter.alerting.promql import Alert, Context, Group, format_duration, format_number
from exporter.catalogue import CAUSES
from exporter.language import say

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
    burn = format_duration(credit.window_ms)
    percent = format_number(quota.ratio * 100)
    blind_for = format_duration(alerts["SmswatchAccountCheckFailing"].for_ms)
    return [
        ctx.alert(
            "SMSAccountCreditRunningOut",
            (
                f"predict_linear({balance}[{window}], {horizon}) <= 0\n"
                f"or\npredict_linear({left}[{window}], {horizon}) <= 0\n"
            ),
            severity="warning",
            summary=say(
                "The SMS provider account runs out of credit within a day at this burn.",
                "按当前消耗速率，短信服务商账户将在一天内余额耗尽。",
            ),
            description=say(
                f"At the burn rate of the last {burn}, the provider account of gateway "
                "{{ $labels.gateway }} is empty within "
                f"{horizon_text} (predicted then: {{{{ $value | humanize }}}} "
                "{{ $labels.currency }}; a package quota counts messages): once it is empty, "
                "the provider refuses every transaction SMS.",
                f"按最近 {burn} 的消耗速率，网关 {{{{ $labels.gateway }}}} 的服务商账户将在 "
                f"{horizon_text} 内耗尽（届时预测值：{{{{ $value | humanize }}}} "
                "{{ $labels.currency }}；套餐包额度按短信条数计）：账户耗尽后，服务商将拒发"
                "所有交易短信。",
            )
            + cause_named(CAUSE),
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
            summary=say(
                "The SMS packages of a provider account are nearly used up.",
                "短信服务商账户的套餐包即将用尽。",
            ),
            description=say(
                "Gateway {{ $labels.gateway }} has {{ $value | humanize }} messages left in its "
                f"packages in effect, under {percent} % of what they "
                "held: buy or renew a package before the provider refuses messages.",
                "网关 {{ $labels.gateway }} 生效中的套餐包仅剩 {{ $value | humanize }} 条短信，"
                f"不足购买时总量的 {percent} %：请在服务商拒发短信之前购买或续订套餐包。",
            )
            + cause_named(CAUSE),
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
            summary=say(
                "A sender signature or message template is not approved at the provider.",
                "某短信签名或短信模板在服务商处未处于审核通过状态。",
            ),
            description=say(
                "The {{ $labels.kind }} {{ $labels.name }} of gateway {{ $labels.gateway }} is "
                "{{ $labels.state }} at the provider, not approved: messages sent with it are "
                "rejected (carriers require an approved signature and template).",
                "网关 {{ $labels.gateway }} 的 {{ $labels.kind }} {{ $labels.name }} 在服务商处"
                "的状态为 {{ $labels.state }}，而非审核通过：使用它发送的短信会被拒绝"
                "（运营商要求短信签名和模板均已审核通过）。",
            )
            + cause_named(CAUSE),
            labels=label,
            dashboard="oncall",
        ),
        ctx.alert(
            "SmswatchAccountCheckFailing",
            f"{ctx.metric('smswatch_account_up')} == 0\n",
            severity="warning",
            summary=say(
                "smswatch cannot read an SMS provider account.",
                "smswatch 无法读取某短信服务商账户。",
            ),
            description=say(
                "The account checks of gateway {{ $labels.gateway }} have failed for "
                f"{blind_for}: its balance and approvals are not watched, and their alerts "
                "cannot fire.",
                f"网关 {{{{ $labels.gateway }}}} 的账户检查已连续失败 {blind_for}：其余额和"
                "审核状态不再受监控，相关告警无法触发。",
            ),
            dashboard="oncall",
        ),
    ]


def account_groups(ctx: Context) -> list[Group]:
    """The rule file of the account alerts."""
    return [Group("smswatch-accounts", tuple(account_alerts(ctx)))]

"""SMS notifications — overview: the managers' dashboard.

At a glance and without PromQL: are cardholders getting their transaction SMS, how does that
compare with the objective, how much error budget is left, and why not when they are not.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dashboard_model

from exporter.dashboards import panels as p
from exporter.dashboards import queries as q
from exporter.dashboards.causes import explanation_markdown
from exporter.dashboards.layout import finish, new_dashboard
from exporter.dashboards.objectives import (
    DELIVERY_OBJECTIVE,
    NOTIFY_OBJECTIVE,
    NOTIFY_SECONDS,
    RECEIPT_OBJECTIVE,
    SLO_PERIOD,
)

UID = "smswatch-overview"
TITLE = "SMS notifications — overview"

_PCT_DELIVERY = f"{DELIVERY_OBJECTIVE:.1%}"
_PCT_RECEIPTS = f"{RECEIPT_OBJECTIVE:.1%}"
_PCT_NOTIFY = f"{NOTIFY_OBJECTIVE:.0%}"


def _service_level() -> list[p.PanelBuilder]:
    return [
        p.stat(
            "SMS delivered — now",
            f"Share of transaction SMS that reached the phone, over the last few minutes, as the "
            "alerts measure it: failures on the cardholder's side (wrong number, handset off, "
            f"carrier filter) set aside. Objective: {_PCT_DELIVERY}. Green meets it, orange "
            "burns the error budget up to twice as fast as allowed, red faster.",
            "percentunit",
            [p.query(q.sms_delivered_ratio(p.RATE_WINDOW, slo=True), "SMS delivered")],
            thresholds=p.objective_thresholds(DELIVERY_OBJECTIVE),
            sparkline=True,
            decimals=2,
        ),
        p.stat(
            "SMS delivered — selected period",
            f"Share of transaction SMS that reached the phone over the whole time range picked "
            "at the top right, cardholder-side failures set aside (the overall rate is in "
            f"'SMS not delivered'). Objective: {_PCT_DELIVERY}.",
            "percentunit",
            [
                p.query(
                    q.sms_delivered_ratio(p.RANGE_WINDOW, slo=True), "SMS delivered", instant=True
                )
            ],
            thresholds=p.objective_thresholds(DELIVERY_OBJECTIVE),
            decimals=2,
        ),
        p.stat(
            "Receipts with SMS delivered — selected period",
            "Of the card payments that should have notified the cardholder, the share whose "
            "SMS arrived (late or not), cardholder-side failures set aside. Objective: "
            f"{_PCT_RECEIPTS}.",
            "percentunit",
            [
                p.query(
                    q.receipts_delivered_ratio(p.RANGE_WINDOW, slo=True), "Receipts", instant=True
                )
            ],
            thresholds=p.objective_thresholds(RECEIPT_OBJECTIVE),
            decimals=2,
        ),
        p.stat(
            f"Receipts notified within {NOTIFY_SECONDS} s — selected period",
            f"Of the receipts whose SMS reached the cardholder, the share where it arrived "
            f"within {NOTIFY_SECONDS} seconds of the payment: how fast it feels. Objective: "
            f"{_PCT_NOTIFY}. SMS that never arrived count in the receipts figure beside it.",
            "percentunit",
            [
                p.query(
                    q.receipts_notified_in_time_ratio(p.RANGE_WINDOW),
                    "Notified in time",
                    instant=True,
                )
            ],
            thresholds=p.objective_thresholds(NOTIFY_OBJECTIVE),
            decimals=1,
        ),
        p.stat(
            f"Error budget left — SMS delivered ({SLO_PERIOD})",
            f"How much of the allowed failures ({1 - DELIVERY_OBJECTIVE:.1%} of SMS) is still "
            f"unused over the last {SLO_PERIOD}, whatever time range is picked. 100 % means no "
            "failure, 0 % means the objective is just met, below 0 it is missed.",
            "percentunit",
            [
                p.query(
                    q.error_budget_remaining(
                        q.sms_delivered_ratio(SLO_PERIOD, slo=True), DELIVERY_OBJECTIVE
                    ),
                    "Budget left",
                    instant=True,
                )
            ],
            thresholds=p.budget_thresholds(),
            decimals=0,
        ),
        p.stat(
            f"Error budget left — notified within {NOTIFY_SECONDS} s ({SLO_PERIOD})",
            f"How much of the allowed late notifications ({1 - NOTIFY_OBJECTIVE:.0%} of the "
            f"receipts notified) is still unused over the last {SLO_PERIOD}. Below 0 the "
            "objective is missed.",
            "percentunit",
            [
                p.query(
                    q.error_budget_remaining(
                        q.receipts_notified_in_time_ratio(SLO_PERIOD), NOTIFY_OBJECTIVE
                    ),
                    "Budget left",
                    instant=True,
                )
            ],
            thresholds=p.budget_thresholds(),
            decimals=0,
        ),
    ]


def _volume_stat(title: str, description: str, expr: str) -> p.PanelBuilder:
    return p.stat(title, description, "short", [p.query(expr, title, instant=True)], span=6)


def _volumes() -> list[p.PanelBuilder]:
    approved = 'result="approved"'
    return [
        _volume_stat(
            "Card payments approved",
            "Approved card payments at the POS terminals in the selected period.",
            q.sum_increase(q.TRANSACTIONS, p.RANGE_WINDOW, p.ACQUIRER_MATCHERS, approved),
        ),
        _volume_stat(
            "Receipts expecting an SMS",
            "Approved payments whose cardholder is registered for transaction SMS, once their "
            "SMS outcome is known, in the selected period.",
            q.sum_increase(q.RECEIPTS, p.RANGE_WINDOW, p.ACQUIRER_MATCHERS),
        ),
        _volume_stat(
            "SMS sent",
            "Transaction SMS accepted by the bank's SMS platform in the selected period.",
            q.sum_increase(q.SMS_SUBMITTED, p.RANGE_WINDOW, p.SMS_MATCHERS),
        ),
        _volume_stat(
            "SMS not delivered",
            "Transaction SMS that reached a final status other than delivered in the selected "
            "period (failed, expired, rejected, or no report).",
            q.sum_increase(q.SMS_MESSAGES, p.RANGE_WINDOW, p.SMS_MATCHERS, 'status!="delivered"'),
        ),
        p.timeseries(
            "Volumes per minute",
            "Card payments, receipts expecting an SMS, SMS sent and SMS delivered, per minute. "
            "The lines should move together: SMS sent falling while payments continue means SMS "
            "are not being sent.",
            "cpm",
            [
                p.query(
                    q.per_minute(q.TRANSACTIONS, p.RATE_WINDOW, p.ACQUIRER_MATCHERS, approved),
                    "Card payments approved",
                ),
                p.query(
                    q.per_minute(q.RECEIPTS, p.RATE_WINDOW, p.ACQUIRER_MATCHERS),
                    "Receipts expecting an SMS",
                ),
                p.query(q.per_minute(q.SMS_SUBMITTED, p.RATE_WINDOW, p.SMS_MATCHERS), "SMS sent"),
                p.query(
                    q.per_minute(
                        q.SMS_MESSAGES, p.RATE_WINDOW, p.SMS_MATCHERS, 'status="delivered"'
                    ),
                    "SMS delivered",
                ),
            ],
            min_value=0,
            span=24,
        ),
    ]


def _trends() -> list[p.PanelBuilder]:
    return [
        p.timeseries(
            "SMS delivered, per gateway, against the objective",
            f"Share of SMS delivered over time for each SMS platform. The dashed lines are the "
            f"objective ({_PCT_DELIVERY}) and the level where the error budget burns twice as "
            "fast as allowed.",
            "percentunit",
            [p.query(q.sms_delivered_ratio(p.RATE_WINDOW, by="gateway", slo=True), "{{gateway}}")],
            thresholds=p.objective_thresholds(DELIVERY_OBJECTIVE),
            max_value=1,
        ),
        p.timeseries(
            f"Receipts notified within {NOTIFY_SECONDS} s, per acquirer, against the objective",
            f"Of the receipts whose SMS arrived, the share that arrived within {NOTIFY_SECONDS} s "
            f"of the payment, over time, per acquirer. The dashed line is the objective "
            f"({_PCT_NOTIFY}).",
            "percentunit",
            [
                p.query(
                    q.receipts_notified_in_time_ratio(p.RATE_WINDOW, by="acquirer"),
                    "{{acquirer}}",
                )
            ],
            thresholds=p.objective_thresholds(NOTIFY_OBJECTIVE),
            max_value=1,
        ),
    ]


def _causes() -> list[p.PanelBuilder]:
    not_delivered = 'outcome!="delivered"'
    return [
        p.per_minute_breakdown(
            "Cardholders without their SMS, by cause",
            "Receipts whose SMS failed, never came or has no delivery report, per minute, "
            "stacked by cause. The causes are explained below.",
            q.per_minute(q.RECEIPTS, p.RATE_WINDOW, p.ACQUIRER_MATCHERS, not_delivered, by="cause"),
            "cause",
            overrides=p.cause_overrides(),
            span=14,
        ),
        p.bars(
            "Why SMS did not arrive — selected period",
            "Receipts without a delivered SMS in the selected period, by cause, largest first.",
            "short",
            [
                p.query(
                    "sort_desc(\n"
                    + q.sum_increase(
                        q.RECEIPTS, p.RANGE_WINDOW, p.ACQUIRER_MATCHERS, not_delivered, by="cause"
                    )
                    + "\n)",
                    "{{cause}}",
                    instant=True,
                )
            ],
            overrides=p.cause_overrides(),
            min_value=0,
            span=10,
        ),
        p.text(
            "What the causes mean",
            "Every receipt without its SMS is put down to one of these causes, from the "
            "provider's error code or, when no SMS was sent at all, from the terminal inventory.",
            explanation_markdown(),
            height=9,
        ),
    ]


def _worst(label: str, title: str, description: str, expr: str, objective: float) -> p.PanelBuilder:
    return p.bars(
        title,
        description,
        "percentunit",
        [p.query(f"sort(bottomk(5,\n{expr}\n))", f"{{{{{label}}}}}", instant=True)],
        thresholds=p.objective_thresholds(objective),
        min_value=0.9,
        max_value=1,
    )


def _worst_offenders() -> list[p.PanelBuilder]:
    return [
        _worst(
            "carrier",
            "Carriers with the lowest delivery — selected period",
            "The five mobile carriers with the lowest share of SMS delivered in the selected "
            f"period, worst first. Objective: {_PCT_DELIVERY}.",
            q.sms_delivered_ratio(p.RANGE_WINDOW, by="carrier"),
            DELIVERY_OBJECTIVE,
        ),
        _worst(
            "area",
            "Areas with the lowest delivery — selected period",
            "The five areas with the lowest share of SMS delivered in the selected period, "
            f"worst first. Objective: {_PCT_DELIVERY}.",
            q.sms_delivered_ratio(p.RANGE_WINDOW, by="area"),
            DELIVERY_OBJECTIVE,
        ),
        _worst(
            "acquirer",
            "Acquirers with the fewest receipts notified — selected period",
            "The five acquirers with the lowest share of receipts whose SMS was delivered in the "
            f"selected period, worst first. Objective: {_PCT_RECEIPTS}.",
            q.receipts_delivered_ratio(p.RANGE_WINDOW, by="acquirer"),
            RECEIPT_OBJECTIVE,
        ),
    ]


def build() -> dashboard_model.Dashboard:
    """The overview dashboard, uid `smswatch-overview`."""
    dashboard = new_dashboard(
        UID,
        TITLE,
        "Are cardholders getting their transaction SMS? Success against the objectives, error "
        "budget, volumes, causes of failure and the worst carriers, areas and acquirers.",
        time_from="now-24h",
        refresh="5m",
    )
    sections = (
        ("Are cardholders getting their SMS?", _service_level()),
        ("Trends", _trends()),
        ("Volumes", _volumes()),
        ("Why SMS did not arrive", _causes()),
        ("Where it fails — worst first", _worst_offenders()),
    )
    return finish(dashboard, sections)

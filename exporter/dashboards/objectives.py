"""Service level objectives the dashboards draw their thresholds from.

The numbers come from `exporter.objectives`, the package's one home of them (DESIGN.md §4:
99.5 % delivered, 95 % of notified receipts within 60 s, over 30 days), which a test keeps equal
to the alerting spec, `alerts/spec.yaml`.
"""

from __future__ import annotations

from exporter import objectives

#: Share of SMS (final statuses, cardholder-side failures set aside) that must be `delivered`
#: (SLI: delivery ratio per gateway, as the alerts measure it).
DELIVERY_OBJECTIVE = objectives.DELIVERY_RATIO

#: Share of receipts (cardholder-side failures set aside) whose SMS must be delivered, per
#: acquirer, as the alerts measure it.
RECEIPT_OBJECTIVE = objectives.RECEIPT_NOTIFICATION_RATIO

#: `cause!~"…"`: the events an SLO counts (the cardholder-side outcomes set aside).
SLO_EVENTS = f'cause!~"{"|".join(objectives.CARDHOLDER_SIDE_CAUSES)}"'

#: Of the receipts notified, the share whose SMS reached the cardholder within NOTIFY_SECONDS.
NOTIFY_OBJECTIVE = objectives.NOTIFY_WITHIN_RATIO

#: The latency bound of the notification objective, in seconds; it must be a histogram bucket.
NOTIFY_SECONDS = objectives.NOTIFY_WITHIN_SECONDS

#: The SLO period, as a PromQL duration: error budgets are computed over it.
SLO_PERIOD = f"{objectives.PERIOD_DAYS}d"

#: Grace before a receipt without SMS counts as missing (DESIGN.md, the exporter's default):
#: a pending message older than this is late enough to worry the on-call engineer.
MISSING_AFTER_SECONDS = 300


def warning_level(objective: float) -> float:
    """The level below which a ratio burns its error budget at least twice as fast as allowed.

    Between it and the objective a panel shows orange; below it, red. For 99.5 % it is 99 %.
    """
    return round(1 - 2 * (1 - objective), 6)

"""Service level objectives the dashboards draw their thresholds from: one home for the numbers.

DESIGN.md §4 gives the defaults (99.5 % delivered, 95 % of receipts notified within 60 s, over
30 days). The alert rules are meant to read the same numbers from `alerts/spec.yaml`; until that
spec exists these constants are the single source for the dashboards, and a test pins them so a
change is deliberate. When the spec lands, load it here instead of repeating its values.
"""

from __future__ import annotations

#: Share of SMS (final statuses) that must be `delivered` (SLI: delivery ratio per gateway).
#: The same objective applies to receipts (SLI: receipts whose SMS was delivered, per acquirer).
DELIVERY_OBJECTIVE = 0.995

#: Share of receipts whose SMS reached the cardholder within NOTIFY_SECONDS of the payment.
NOTIFY_OBJECTIVE = 0.95

#: The latency bound of the notification objective, in seconds; it must be a histogram bucket.
NOTIFY_SECONDS = 60

#: The SLO period, as a PromQL duration: error budgets are computed over it.
SLO_PERIOD = "30d"

#: Grace before a receipt without SMS counts as missing (DESIGN.md, the exporter's default):
#: a pending message older than this is late enough to worry the on-call engineer.
MISSING_AFTER_SECONDS = 300


def warning_level(objective: float) -> float:
    """The level below which a ratio burns its error budget at least twice as fast as allowed.

    Between it and the objective a panel shows orange; below it, red. For 99.5 % it is 99 %.
    """
    return round(1 - 2 * (1 - objective), 6)

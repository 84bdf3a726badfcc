"""Service level objectives: the package's one home of the default numbers (DESIGN.md §4).

The exporter config (`objectives:`), the reports and the dashboards take their defaults from
here. The alert rules are generated from `alerts/spec.yaml`, which states the same numbers as
percentages; `tests/test_objectives.py` fails when the two disagree.
"""

from __future__ import annotations

#: Share of SMS reaching a final status that must be `delivered` (per gateway), and of receipts
#: whose SMS must be delivered (per acquirer). In the alert rules both count only the outcomes
#: the bank side causes (alerts/spec.yaml, `causes:`).
DELIVERY_RATIO = 0.995

#: The alerting SLO of receipts (per acquirer): lower than DELIVERY_RATIO because receipts also
#: count terminals with SMS notice off or outdated software (alerts/spec.yaml).
RECEIPT_NOTIFICATION_RATIO = 0.975

#: Of the receipts notified, the share whose SMS must reach the cardholder within
#: NOTIFY_WITHIN_SECONDS of the transaction.
NOTIFY_WITHIN_RATIO = 0.95

#: The latency bound of that objective; a bucket bound of smswatch_receipt_notify_seconds.
NOTIFY_WITHIN_SECONDS = 60

#: The SLO period.
PERIOD_DAYS = 30

#: Causes on the cardholder's side (DESIGN.md §4): neither good nor bad for the SLOs, watched
#: against their own baseline instead. Every other cause is the bank side's and counts as bad.
#: alerts/spec.yaml (`causes:`) states the same; a test keeps them equal.
CARDHOLDER_SIDE_CAUSES: tuple[str, ...] = ("invalid_number", "unreachable", "filtered")

#: Causes on the bank's side (its SMS platform, integrations, acquirers, terminals): the bad
#: events of both SLOs, as the recording rules count them (alerts/spec.yaml, `causes:`
#: `bank_side`). A test keeps the two equal.
BANK_SIDE_CAUSES: tuple[str, ...] = (
    "gateway",
    "integration",
    "throttled",
    "terminal_config",
    "unknown",
)

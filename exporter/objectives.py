"""Service level objectives: the package's one home of the default numbers (DESIGN.md §4).

The exporter config (`objectives:`), the reports and the dashboards take their defaults from
here. The alert rules are generated from `alerts/spec.yaml`, which states the same numbers as
percentages; `tests/test_objectives.py` fails when the two disagree.
"""

from __future__ import annotations

#: Share of SMS reaching a final status that must be `delivered` (per gateway), and of receipts
#: whose SMS must be delivered (per acquirer).
DELIVERY_RATIO = 0.995

#: Of the receipts notified, the share whose SMS must reach the cardholder within
#: NOTIFY_WITHIN_SECONDS of the transaction.
NOTIFY_WITHIN_RATIO = 0.95

#: The latency bound of that objective; a bucket bound of smswatch_receipt_notify_seconds.
NOTIFY_WITHIN_SECONDS = 60

#: The SLO period.
PERIOD_DAYS = 30

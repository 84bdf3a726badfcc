"""The numbers a report is judged against: objectives and data-health limits, in one place.

The defaults come from `exporter.objectives`; `smswatch run` passes the config's `objectives:`
and the command line has `--objective.*` options.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter import objectives


@dataclass(frozen=True)
class Objectives:
    """Service level objectives for one report, as fractions (0.995 = 99.5 %)."""

    #: The SMS delivery SLO, per gateway and carrier: of the messages that reached a final
    #: status, less those failed on the cardholder's side, the share not failed on the bank's
    #: side (the recording rules' SLI, alerts/rules/slo-sms-delivery.yaml).
    delivered_ratio: float = objectives.DELIVERY_RATIO
    #: The receipt notification SLO, per acquirer: the same SLI over receipts (missing ones
    #: included), alerts/rules/slo-receipt-notification.yaml.
    receipt_notification_ratio: float = objectives.RECEIPT_NOTIFICATION_RATIO
    #: Receipts notified within `latency_seconds` ÷ receipts notified (delivered).
    within_latency_ratio: float = objectives.NOTIFY_WITHIN_RATIO
    #: The latency target; must be a bucket bound of the notify histogram (catalogue).
    latency_seconds: int = objectives.NOTIFY_WITHIN_SECONDS


DEFAULT_OBJECTIVES = Objectives()

#: A source whose event-time lag exceeds this is not current (alerts spec:
#: SmswatchSourceLagging threshold).
SOURCE_LAG_LIMIT_SECONDS = 15 * 60

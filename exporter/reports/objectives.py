"""The numbers a report is judged against: objectives and data-health limits, in one place.

Until the alerting spec (`alerts/spec.yaml`, `slo.objectives`) and the exporter config
(`objectives:`) land on main, reports take these defaults and let the command line or the
scheduler override them; when they land, the caller passes the configured values instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Objectives:
    """Service level objectives for one report, as fractions (0.995 = 99.5 %)."""

    #: Delivered ÷ all final outcomes, for SMS per gateway/carrier and receipts per acquirer.
    delivered_ratio: float = 0.995
    #: Receipts notified within `latency_seconds` ÷ receipts notified (delivered).
    within_latency_ratio: float = 0.95
    #: The latency target; must be a bucket bound of the notify histogram (catalogue).
    latency_seconds: int = 60


DEFAULT_OBJECTIVES = Objectives()

#: A source whose event-time lag exceeds this is not current (alerts spec:
#: SmswatchSourceLagging threshold).
SOURCE_LAG_LIMIT_SECONDS = 15 * 60

"""PromQL the dashboards share: the SLIs, written once over the raw catalogue metrics.

Every expression reads raw metrics (not recording rules), filtered by the dashboard variables,
over a window the caller picks: `$__rate_interval` in time series, `$__range` or the SLO period
in instant figures. Ratios divide sums of `increase()`, never average ratios (DESIGN.md §4).
"""

from __future__ import annotations

from exporter.dashboards.objectives import NOTIFY_SECONDS, SLO_EVENTS
from exporter.dashboards.panels import ACQUIRER_MATCHERS, SMS_MATCHERS

SMS_MESSAGES = "smswatch_sms_messages_total"
SMS_SUBMITTED = "smswatch_sms_submitted_total"
RECEIPTS = "smswatch_receipts_total"
TRANSACTIONS = "smswatch_pos_transactions_total"
DELIVERY_SECONDS = "smswatch_sms_delivery_seconds"
NOTIFY_SECONDS_METRIC = "smswatch_receipt_notify_seconds"

#: The histogram bucket of the latency objective. `le` is "60" or "60.0" depending on the
#: client library and on the Prometheus version (3.x normalises it to a float), so match both.
NOTIFY_BUCKET = f'le=~"{NOTIFY_SECONDS}(\\\\.0)?"'


def selector(metric: str, *matchers: str) -> str:
    """`metric{m1, m2}` with the empty matchers left out."""
    inner = ", ".join(m for m in matchers if m)
    return f"{metric}{{{inner}}}" if inner else metric


def _by(labels: str) -> str:
    return f" by ({labels})" if labels else ""


def sum_increase(metric: str, window: str, *matchers: str, by: str = "") -> str:
    """`sum by (…) (increase(metric{…}[window]))`."""
    return f"sum{_by(by)} (increase({selector(metric, *matchers)}[{window}]))"


def per_minute(metric: str, window: str, *matchers: str, by: str = "") -> str:
    """Events per minute, `60 * sum by (…) (rate(metric{…}[window]))`."""
    return f"60 * sum{_by(by)} (rate({selector(metric, *matchers)}[{window}]))"


def ratio(numerator: str, denominator: str) -> str:
    """`numerator / denominator` laid out one operand per line, as Grafana shows it."""
    return f"{numerator}\n/\n{denominator}"


def sms_delivered_ratio(window: str, by: str = "", *, slo: bool = False) -> str:
    """Delivered ÷ all final statuses of SMS, for the selected gateway/carrier/area: the overall
    delivery rate. With `slo`, SLI 1 as the alerts measure it: cardholder-side failures (wrong
    number, handset unreachable, carrier filter) set aside."""
    events = SLO_EVENTS if slo else ""
    return ratio(
        sum_increase(SMS_MESSAGES, window, SMS_MATCHERS, 'status="delivered"', by=by),
        sum_increase(SMS_MESSAGES, window, SMS_MATCHERS, events, by=by),
    )


def receipts_delivered_ratio(window: str, by: str = "", *, slo: bool = False) -> str:
    """Receipts whose SMS was delivered ÷ all receipts with a known outcome; with `slo`, SLI 2
    as the alerts measure it (cardholder-side failures set aside)."""
    events = SLO_EVENTS if slo else ""
    return ratio(
        sum_increase(RECEIPTS, window, ACQUIRER_MATCHERS, 'outcome="delivered"', by=by),
        sum_increase(RECEIPTS, window, ACQUIRER_MATCHERS, events, by=by),
    )


def receipts_notified_in_time_ratio(window: str, by: str = "") -> str:
    """SLI 3: receipts whose SMS was delivered within NOTIFY_SECONDS ÷ receipts notified.

    The denominator is the notified (delivered) receipts, as in the alert spec: receipts whose
    SMS failed or never came are SLI 2's business, not counted twice.
    """
    bucket = f"{NOTIFY_SECONDS_METRIC}_bucket"
    return ratio(
        sum_increase(bucket, window, ACQUIRER_MATCHERS, NOTIFY_BUCKET, by=by),
        sum_increase(f"{NOTIFY_SECONDS_METRIC}_count", window, ACQUIRER_MATCHERS, by=by),
    )


def error_budget_remaining(sli: str, objective: float) -> str:
    """Share of the error budget left: 1 when nothing failed, 0 when spent, < 0 when overspent."""
    allowed = round(1 - objective, 6)
    return f"1 - (1 - (\n{sli}\n)) / {allowed}"


def quantile(q: float, metric: str, window: str, *matchers: str, by: str = "") -> str:
    """`histogram_quantile(q, sum by (…, le) (rate(metric_bucket{…}[window])))`."""
    labels = f"{by}, le" if by else "le"
    bucket = selector(f"{metric}_bucket", *matchers)
    return f"histogram_quantile({q}, sum by ({labels}) (rate({bucket}[{window}])))"


def bucket_increase(metric: str, window: str, *matchers: str) -> str:
    """Bucket counts per window for a heatmap: `sum by (le) (increase(metric_bucket{…}[w]))`."""
    return sum_increase(f"{metric}_bucket", window, *matchers, by="le")

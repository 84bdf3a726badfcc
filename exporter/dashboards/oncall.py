"""SMS notifications — on-call: drill down from a page to the gateway, carrier, area, acquirer
or data source at fault, with latency, backlog, source health, firing alerts and runbook links.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dashboard_model

from exporter.dashboards import panels as p
from exporter.dashboards import queries as q
from exporter.dashboards.layout import FIRING_ALERTS, finish, new_dashboard
from exporter.dashboards.objectives import (
    DELIVERY_OBJECTIVE,
    MISSING_AFTER_SECONDS,
    NOTIFY_SECONDS,
)

UID = "smswatch-oncall"
TITLE = "SMS notifications — on-call"

SOURCE_MATCHERS = 'source=~"$source"'
_GATEWAY = 'gateway=~"$gateway"'

#: Labels an alert of ours may carry; the alerts table shows them as columns.
_ALERT_LABELS = "alertname, severity, cause, gateway, acquirer, carrier, area, source"


def _now() -> list[p.PanelBuilder]:
    late = p.ceiling_thresholds(NOTIFY_SECONDS, MISSING_AFTER_SECONDS)
    return [
        p.stat(
            "SMS delivered now, per gateway",
            f"Share of SMS delivered over the last few minutes, per gateway. Objective "
            f"{DELIVERY_OBJECTIVE:.1%}; orange burns the error budget up to twice as fast as "
            "allowed, red faster.",
            "percentunit",
            [p.query(q.sms_delivered_ratio(p.RATE_WINDOW, by="gateway"), "{{gateway}}")],
            thresholds=p.objective_thresholds(DELIVERY_OBJECTIVE),
            sparkline=True,
            decimals=2,
            span=6,
        ),
        p.stat(
            "SMS pending, per gateway",
            "Messages submitted to the SMS platform with no final status yet (as of the last "
            "poll). A growing number means delivery reports are not coming back.",
            "short",
            [p.query(f"sum by (gateway) (smswatch_sms_pending{{{_GATEWAY}}})", "{{gateway}}")],
            sparkline=True,
            span=4,
        ),
        p.stat(
            "Oldest pending SMS",
            f"Age of the oldest message without a final status, per gateway (event time). "
            f"Orange from {NOTIFY_SECONDS} s, red from {MISSING_AFTER_SECONDS} s.",
            "s",
            [
                p.query(
                    f"max by (gateway) (smswatch_sms_pending_oldest_seconds{{{_GATEWAY}}})",
                    "{{gateway}}",
                )
            ],
            thresholds=late,
            span=4,
        ),
        p.stat(
            "Receipts awaiting an SMS",
            "Approved card payments whose SMS outcome is not known yet, per acquirer. They "
            "become delivered, failed or missing once the data sources have caught up.",
            "short",
            [
                p.query(
                    f"sum by (acquirer) (smswatch_receipts_awaiting_sms{{{p.ACQUIRER_MATCHERS}}})",
                    "{{acquirer}}",
                )
            ],
            sparkline=True,
            span=5,
        ),
        p.stat(
            "Data sources",
            "Whether the last poll of each upstream API succeeded. When a source is down the "
            "other panels show stale data; see the Data sources row below.",
            "none",
            [p.query(f"min by (source) (smswatch_source_up{{{SOURCE_MATCHERS}}})", "{{source}}")],
            thresholds=p.up_thresholds(),
            mappings=p.up_down_mappings(),
            span=5,
        ),
        p.table(
            "Firing alerts — click an alert name for its runbook",
            "Alerts firing now (the always-firing Watchdog left out). The alert name links to "
            "its runbook: meaning, impact, diagnosis and mitigation.",
            "none",
            [
                p.query(
                    f"max by ({_ALERT_LABELS}) ({FIRING_ALERTS})",
                    "{{alertname}}",
                    instant=True,
                    fmt="table",
                )
            ],
            overrides=[p.runbook_link_override("alertname")],
            transformations=[p.hide_columns("Time", "Value")],
            span=24,
            height=6,
        ),
    ]


def _delivery() -> list[p.PanelBuilder]:
    objective = p.objective_thresholds(DELIVERY_OBJECTIVE)
    return [
        p.timeseries(
            "SMS delivered, by carrier",
            "Share of SMS delivered per gateway and carrier. One carrier dropping alone points "
            "at the carrier (unreachable, filtered); all dropping together at the gateway.",
            "percentunit",
            [
                p.query(
                    q.sms_delivered_ratio(p.RATE_WINDOW, by="gateway, carrier"),
                    "{{gateway}} / {{carrier}}",
                )
            ],
            thresholds=objective,
            max_value=1,
        ),
        p.timeseries(
            "SMS delivered, by area",
            "Share of SMS delivered per gateway and area. One area dropping alone points at "
            "network trouble there (unreachable).",
            "percentunit",
            [
                p.query(
                    q.sms_delivered_ratio(p.RATE_WINDOW, by="gateway, area"),
                    "{{gateway}} / {{area}}",
                )
            ],
            thresholds=p.objective_thresholds(DELIVERY_OBJECTIVE),
            max_value=1,
        ),
        p.timeseries(
            "SMS not delivered, by status and cause",
            "Messages that reached a final status other than delivered, per minute, by status "
            "and cause. The cause comes from the provider's error code.",
            "cpm",
            [
                p.query(
                    q.per_minute(
                        q.SMS_MESSAGES,
                        p.RATE_WINDOW,
                        p.SMS_MATCHERS,
                        'status!="delivered"',
                        by="status, cause",
                    ),
                    "{{status}}: {{cause}}",
                )
            ],
            stacked=True,
            min_value=0,
        ).transformations(p.cause_renames(": ", "")),
        p.timeseries(
            "SMS sent vs card payments",
            "SMS accepted by each gateway and approved card payments, per minute. Payments "
            "continuing while a gateway sends nothing is a gateway outage; a gap between the "
            "two that grows is an integration fault.",
            "cpm",
            [
                p.query(
                    q.per_minute(q.SMS_SUBMITTED, p.RATE_WINDOW, p.SMS_MATCHERS, by="gateway"),
                    "SMS sent: {{gateway}}",
                ),
                p.query(
                    q.per_minute(
                        q.TRANSACTIONS, p.RATE_WINDOW, p.ACQUIRER_MATCHERS, 'result="approved"'
                    ),
                    "Card payments approved",
                ),
            ],
            min_value=0,
        ),
    ]


def _latency() -> list[p.PanelBuilder]:
    sms = (q.DELIVERY_SECONDS, p.RATE_WINDOW, 'gateway=~"$gateway", carrier=~"$carrier"')
    notify = (q.NOTIFY_SECONDS_METRIC, p.RATE_WINDOW, p.ACQUIRER_MATCHERS)
    late = p.ceiling_thresholds(NOTIFY_SECONDS, MISSING_AFTER_SECONDS)
    return [
        p.timeseries(
            "SMS delivery latency — submit to delivered",
            "Percentiles of the time from the SMS platform accepting a message to the phone "
            "receiving it, from the provider's own timestamps. Bucket bounds limit precision.",
            "s",
            [
                p.query(q.quantile(0.5, *sms), "p50"),
                p.query(q.quantile(0.9, *sms), "p90"),
                p.query(q.quantile(0.99, *sms), "p99"),
            ],
            thresholds=late,
            min_value=0,
        ),
        p.heatmap(
            "SMS delivery latency — heatmap",
            "How many messages were delivered within each latency bucket, over time.",
            "s",
            p.query(q.bucket_increase(*sms), "{{le}}", fmt="heatmap"),
        ),
        p.timeseries(
            "Notification latency — card payment to SMS delivered, per acquirer",
            f"p50 and p95 of the time from the card payment to the SMS reaching the phone: "
            f"what the cardholder feels. The objective counts receipts notified within "
            f"{NOTIFY_SECONDS} s (dashed line).",
            "s",
            [
                p.query(q.quantile(0.5, *notify, by="acquirer"), "p50 {{acquirer}}"),
                p.query(q.quantile(0.95, *notify, by="acquirer"), "p95 {{acquirer}}"),
            ],
            thresholds=late,
            min_value=0,
        ),
        p.heatmap(
            "Notification latency — heatmap",
            "How many receipts were notified within each latency bucket, over time.",
            "s",
            p.query(q.bucket_increase(*notify), "{{le}}", fmt="heatmap"),
        ),
        p.timeseries(
            "SMS delivery latency p90, by carrier",
            "90th percentile of submit-to-delivered latency per gateway and carrier: a slow "
            "carrier stands out here before messages start to expire.",
            "s",
            [
                p.query(
                    q.quantile(0.9, *sms, by="gateway, carrier"),
                    "{{gateway}} / {{carrier}}",
                )
            ],
            thresholds=late,
            min_value=0,
            span=24,
        ),
    ]


def _backlog() -> list[p.PanelBuilder]:
    return [
        p.timeseries(
            "Pending SMS and receipts awaiting an SMS",
            "Messages without a final status per gateway, and receipts without an outcome per "
            "acquirer. Both should stay flat; a climb means reports or messages are stuck.",
            "short",
            [
                p.query(
                    f"sum by (gateway) (smswatch_sms_pending{{{_GATEWAY}}})",
                    "Pending SMS: {{gateway}}",
                ),
                p.query(
                    f"sum by (acquirer) (smswatch_receipts_awaiting_sms{{{p.ACQUIRER_MATCHERS}}})",
                    "Awaiting SMS: {{acquirer}}",
                ),
            ],
            min_value=0,
            span=8,
        ),
        p.timeseries(
            "Age of the oldest pending SMS",
            f"Per gateway, event time. Orange from {NOTIFY_SECONDS} s; from "
            f"{MISSING_AFTER_SECONDS} s receipts start to count as missing.",
            "s",
            [
                p.query(
                    f"max by (gateway) (smswatch_sms_pending_oldest_seconds{{{_GATEWAY}}})",
                    "{{gateway}}",
                )
            ],
            thresholds=p.ceiling_thresholds(NOTIFY_SECONDS, MISSING_AFTER_SECONDS),
            min_value=0,
            span=8,
        ),
        p.timeseries(
            "Receipts not notified, by acquirer, outcome and cause",
            "Receipts whose SMS failed, never came (missing) or has no report (unknown), per "
            "minute. Missing with cause terminal_config or integration: see the Receipts and "
            "terminals dashboard.",
            "cpm",
            [
                p.query(
                    q.per_minute(
                        q.RECEIPTS,
                        p.RATE_WINDOW,
                        p.ACQUIRER_MATCHERS,
                        'outcome!="delivered"',
                        by="acquirer, outcome, cause",
                    ),
                    "{{acquirer}}: {{outcome}} ({{cause}})",
                )
            ],
            stacked=True,
            min_value=0,
            span=8,
        ).transformations(p.cause_renames(" (", ")")),
    ]


def _sources() -> list[p.PanelBuilder]:
    stale = p.ceiling_thresholds(60, MISSING_AFTER_SECONDS)
    return [
        p.timeseries(
            "Source up",
            "1 when the last poll of the source succeeded, 0 when it failed.",
            "none",
            [p.query(f"min by (source) (smswatch_source_up{{{SOURCE_MATCHERS}}})", "{{source}}")],
            min_value=0,
            max_value=1,
            span=6,
        ),
        p.timeseries(
            "Source lag — how far behind the data is",
            f"Now minus the time up to which the source's data is complete. Orange from 60 s; "
            f"from {MISSING_AFTER_SECONDS} s receipts wait longer before being judged.",
            "s",
            [
                p.query(
                    f"max by (source) (smswatch_source_lag_seconds{{{SOURCE_MATCHERS}}})",
                    "{{source}}",
                )
            ],
            thresholds=stale,
            min_value=0,
            span=6,
        ),
        p.stat(
            "Since the last successful poll",
            f"Time since each source was last polled successfully. Orange from 60 s, red from "
            f"{MISSING_AFTER_SECONDS} s.",
            "s",
            [
                p.query(
                    "time() - max by (source) "
                    f"(smswatch_source_last_success_timestamp_seconds{{{SOURCE_MATCHERS}}})",
                    "{{source}}",
                )
            ],
            thresholds=stale,
            span=6,
            height=8,
        ),
        p.timeseries(
            "Source errors, by kind",
            "Failed requests to the upstream APIs per minute: timeouts, connection errors, "
            "HTTP 4xx/5xx, throttling (429) and unreadable payloads.",
            "cpm",
            [
                p.query(
                    q.per_minute(
                        "smswatch_source_errors_total",
                        p.RATE_WINDOW,
                        SOURCE_MATCHERS,
                        by="source, error",
                    ),
                    "{{source}}: {{error}}",
                )
            ],
            min_value=0,
            span=6,
        ),
        p.timeseries(
            "Poll duration p90",
            "How long a poll of each source takes (all pages). Close to the poll interval "
            "means the source cannot keep up.",
            "s",
            [
                p.query(
                    q.quantile(
                        0.9,
                        "smswatch_source_poll_seconds",
                        p.RATE_WINDOW,
                        SOURCE_MATCHERS,
                        by="source",
                    ),
                    "{{source}}",
                )
            ],
            min_value=0,
        ),
        p.timeseries(
            "Records read, by result",
            "Records read from each source per minute: accepted, duplicate (seen before), "
            "conflict (contradicts a final status) and invalid (unreadable).",
            "cpm",
            [
                p.query(
                    q.per_minute(
                        "smswatch_records_total",
                        p.RATE_WINDOW,
                        SOURCE_MATCHERS,
                        by="source, result",
                    ),
                    "{{source}}: {{result}}",
                )
            ],
            min_value=0,
        ),
    ]


def build() -> dashboard_model.Dashboard:
    """The on-call dashboard, uid `smswatch-oncall`."""
    dashboard = new_dashboard(
        UID,
        TITLE,
        "From a page to the gateway, carrier, area, acquirer or data source at fault: "
        "delivery, latency, backlog, source health, firing alerts and their runbooks.",
        time_from="now-6h",
        refresh="30s",
        extra_variables=(
            p.label_variable(
                "source",
                "Data source API",
                "smswatch_source_up",
                "The upstream APIs the exporter polls.",
            ),
        ),
    )
    sections = (
        ("Now", _now()),
        ("Delivery — gateway, carrier, area", _delivery()),
        ("Latency", _latency()),
        ("Backlog and receipts", _backlog()),
        ("Data sources — is the data fresh?", _sources()),
    )
    return finish(dashboard, sections)

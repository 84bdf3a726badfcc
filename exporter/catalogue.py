"""The metric catalogue: the one home of metric names, label names and label vocabularies.

DESIGN.md §3 is the contract this module spells out; add, don't rename.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Histogram upper bounds in seconds (DESIGN.md §3). Kept as integers: bucketing is done on
#: integer milliseconds so the exporter and the simulator's truth agree exactly.
BUCKETS_SECONDS: tuple[int, ...] = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)

#: Root causes (DESIGN.md §1). `none` is the cause of a delivered message.
CAUSES: tuple[str, ...] = (
    "gateway",
    "invalid_number",
    "unreachable",
    "terminal_config",
    "integration",
    "throttled",
    "filtered",
    "unknown",
)
CAUSE_NONE = "none"

#: Final statuses of an SMS (`status` label of smswatch_sms_messages_total).
SMS_FINAL_STATUSES: tuple[str, ...] = (
    "delivered",
    "undelivered",
    "expired",
    "rejected",
    "failed",
    "unknown",
)

#: Outcomes of a receipt (`outcome` label of smswatch_receipts_total).
RECEIPT_OUTCOMES: tuple[str, ...] = ("delivered", "failed", "missing", "unknown")

#: Results of a POS transaction record (`result` label of smswatch_pos_transactions_total).
TRANSACTION_RESULTS: tuple[str, ...] = ("approved", "declined", "reversed")

#: Source error kinds (`error` label of smswatch_source_errors_total).
SOURCE_ERRORS: tuple[str, ...] = (
    "timeout",
    "connection",
    "http_4xx",
    "http_5xx",
    "throttled",
    "bad_payload",
)

#: Record results (`result` label of smswatch_records_total).
#: `late`: older than the prune horizon, refused (what would dedup it may be pruned).
RECORD_RESULTS: tuple[str, ...] = ("accepted", "duplicate", "conflict", "invalid", "late")

#: Results of a push to a receiver (`result` label of smswatch_push_requests_total).
PUSH_RESULTS: tuple[str, ...] = ("accepted", "unauthorized", "too_large", "bad_payload")

#: Outcomes of a scheduled report's e-mail (`result` label of smswatch_report_deliveries_total).
REPORT_DELIVERY_RESULTS: tuple[str, ...] = ("sent", "failed")

#: Label value used when a value falls outside the configured, bounded set.
OTHER = "other"


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the catalogue."""

    name: str
    kind: str  # counter | gauge | histogram | info
    labels: tuple[str, ...]
    help: str


POLLED = "From polled upstream data, as of the last committed poll."

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "smswatch_sms_submitted_total",
        "counter",
        ("gateway", "carrier", "area"),
        f"Messages accepted by the SMS platform. {POLLED}",
    ),
    MetricSpec(
        "smswatch_sms_messages_total",
        "counter",
        ("gateway", "carrier", "area", "status", "cause"),
        "Messages that reached a final status (first final status wins; no final status by "
        f"submit + give_up_after counts as unknown). {POLLED}",
    ),
    MetricSpec(
        "smswatch_sms_delivery_seconds",
        "histogram",
        ("gateway", "carrier"),
        "Submit to delivered, from the provider's own timestamps (event time) where they carry "
        "a time zone; where the provider's done time has no time zone or only minute precision "
        "(SMPP/CMPP done date, Vonage scts, Jasmin donedate) the time smswatch learned the final "
        "status is used instead; not observed when the provider reports no submit time. " + POLLED,
    ),
    MetricSpec(
        "smswatch_sms_pending",
        "gauge",
        ("gateway",),
        f"Messages submitted with no final status yet. {POLLED}",
    ),
    MetricSpec(
        "smswatch_sms_pending_oldest_seconds",
        "gauge",
        ("gateway",),
        f"Age of the oldest pending message at the feed's watermark (event time). {POLLED}",
    ),
    MetricSpec(
        "smswatch_pos_transactions_total",
        "counter",
        ("acquirer", "result"),
        f"POS transaction records by result (approved, declined, reversed). {POLLED}",
    ),
    MetricSpec(
        "smswatch_receipts_total",
        "counter",
        ("acquirer", "outcome", "cause"),
        "Approved transactions that should notify the cardholder, once their SMS outcome is "
        f"known (delivered, failed, missing, unknown). {POLLED}",
    ),
    MetricSpec(
        "smswatch_receipt_notify_seconds",
        "histogram",
        ("acquirer",),
        "Transaction time to SMS delivered: what the cardholder feels (event time). " + POLLED,
    ),
    MetricSpec(
        "smswatch_receipts_awaiting_sms",
        "gauge",
        ("acquirer",),
        f"Receipts whose SMS outcome is not known yet. {POLLED}",
    ),
    MetricSpec(
        "smswatch_pos_terminals",
        "gauge",
        ("acquirer", "sms_notice", "software"),
        f"Terminal inventory by SMS notice setting and software currency. {POLLED}",
    ),
    MetricSpec(
        "smswatch_source_up",
        "gauge",
        ("source",),
        "1 when the last poll of the source succeeded, else 0.",
    ),
    MetricSpec(
        "smswatch_source_poll_seconds",
        "histogram",
        ("source",),
        "Duration of a poll of the source (all pages), in seconds.",
    ),
    MetricSpec(
        "smswatch_source_poll_overruns_total",
        "counter",
        ("source",),
        "Scheduled polls of the source that did not run on time: the previous poll was still "
        "running (it outlasted poll_interval) or the scheduler reached it too late.",
    ),
    MetricSpec(
        "smswatch_source_errors_total",
        "counter",
        ("source", "error"),
        "Failed requests to the source by kind.",
    ),
    MetricSpec(
        "smswatch_source_last_success_timestamp_seconds",
        "gauge",
        ("source",),
        "Unix time of the last successful poll of the source.",
    ),
    MetricSpec(
        "smswatch_source_lag_seconds",
        "gauge",
        ("source",),
        "Wall-clock now minus the source's watermark (the time up to which it is complete); "
        "negative when the source's clock is ahead of the exporter's.",
    ),
    MetricSpec(
        "smswatch_source_expected_lag_seconds",
        "gauge",
        ("source",),
        "The lag a healthy source has by design (from the config): 0 for a change feed; the "
        "list lag of a re-read list; push.lag for a push-only source; plus give_up_after where "
        "the provider reports outcomes only. Alerts judge smswatch_source_lag_seconds beyond it.",
    ),
    MetricSpec(
        "smswatch_source_push_only",
        "gauge",
        ("source",),
        "1 for a source that is only pushed to, never polled: its last success is its last "
        "report, so a quiet hour makes it look stale without anything being wrong.",
    ),
    MetricSpec(
        "smswatch_records_total",
        "counter",
        ("source", "result"),
        "Records read from the source by result (accepted, duplicate, conflict, invalid, late: "
        "older than the retention's prune horizon, refused).",
    ),
    MetricSpec(
        "smswatch_sms_ambiguous_total",
        "counter",
        ("gateway", "code"),
        "Final failures whose cause was inferred, not told by the provider: an ambiguous code "
        "(e.g. MOBILE_NOT_ON_SERVICE), a bare UNDELIV/EXPIRED, or a code the provider's table "
        "does not list (code=unlisted). Compare with smswatch_sms_messages_total. " + POLLED,
    ),
    MetricSpec(
        "smswatch_transactions_unjoinable_total",
        "counter",
        ("acquirer",),
        "Approved transactions that should notify the cardholder but carry no join key (RRN or "
        "the configured field): no SMS can ever be linked to them, so no receipt is opened. "
        "Stripe's network_transaction_id is null for brands other than Visa, Mastercard and "
        "Amex; Square's reference_id is what the seller set. " + POLLED,
    ),
    MetricSpec(
        "smswatch_push_requests_total",
        "counter",
        ("source", "result"),
        "Delivery-report pushes received by the exporter's push receivers, by result "
        "(accepted, unauthorized, too_large, bad_payload). Accepted ones were committed before "
        "they were acknowledged.",
    ),
    MetricSpec(
        "smswatch_source_watermark_clamped_total",
        "counter",
        ("source",),
        "Watermarks of the source (page watermark, Date header, push report time) that were "
        "ahead of the exporter's clock by more than the source's max_clock_skew and were capped "
        "at the exporter's clock plus that skew. Non-zero means the upstream's clock is ahead.",
    ),
    MetricSpec(
        "smswatch_unobserved_seconds_total",
        "counter",
        ("source",),
        "Event-time seconds (on the provider's clock) during which the exporter could not "
        "observe a push source: it was not listening, so reports pushed then may be lost.",
    ),
    MetricSpec(
        "smswatch_receipts_unobserved_total",
        "counter",
        ("acquirer",),
        "Receipts decided unknown (outcome unknown, cause unknown, also counted in "
        "smswatch_receipts_total) because their decision fell in a time the exporter could not "
        "observe the SMS push source (its own downtime, or before it first listened). " + POLLED,
    ),
    MetricSpec(
        "smswatch_source_holding_decisions",
        "gauge",
        ("source",),
        "1 when this source's watermark is the oldest of all sources, so it is what holds "
        "receipt decisions back now (ties: every source at the minimum), else 0.",
    ),
    MetricSpec(
        "smswatch_decisions_lag_seconds",
        "gauge",
        (),
        "Exporter's now minus the decision watermark (the minimum watermark over all sources "
        "and terminal inventories): how far behind receipt decisions are. Absent until every "
        "source has a watermark.",
    ),
    MetricSpec(
        "smswatch_receipt_notify_clamped_total",
        "counter",
        ("acquirer",),
        "Receipts whose SMS was delivered before the transaction time (clock skew between the "
        "acquirer and the SMS platform): their notify latency counts as 0 in "
        "smswatch_receipt_notify_seconds. " + POLLED,
    ),
    MetricSpec(
        "smswatch_report_deliveries_total",
        "counter",
        ("schedule", "result"),
        "E-mail deliveries of scheduled compliance reports by outcome, once per report after "
        "its retries (sent: every recipient accepted it; failed: some recipient did not get "
        "it, the report file is kept). Exported for every schedule that has recipients.",
    ),
    MetricSpec(
        "smswatch_account_balance",
        "gauge",
        ("gateway", "currency"),
        "Credit left on the SMS provider account, in the currency the provider names (Twilio "
        "Balance, Vonage get-balance, Alibaba QueryAccountBalance AvailableAmount). Read every "
        "account.interval; absent until a check reads it or while the last one failed. Burn "
        "rate: -deriv(smswatch_account_balance[1h]).",
    ),
    MetricSpec(
        "smswatch_account_quota_remaining",
        "gauge",
        ("gateway",),
        "Messages left in the provider's SMS packages in effect now (Tencent "
        "SmsPackagesStatistics: package amount minus usage). Read every account.interval; "
        "absent until a check reads it or while the last one failed.",
    ),
    MetricSpec(
        "smswatch_account_quota_limit",
        "gauge",
        ("gateway",),
        "Messages the provider's SMS packages in effect now hold in all (their amount), the "
        "denominator of the quota left. Read every account.interval.",
    ),
    MetricSpec(
        "smswatch_sms_sender_approved",
        "gauge",
        ("gateway", "kind", "name"),
        "1 when the sender signature (kind=signature) or message template (kind=template) is "
        "approved and usable at the provider, else 0 (in review, rejected, cancelled, deleted). "
        "Polled every account.interval; absent while the last check failed.",
    ),
    MetricSpec(
        "smswatch_sms_sender_state",
        "gauge",
        ("gateway", "kind", "name", "state"),
        "The provider's review state of a sender signature or template: 1 for its current "
        "state (approved, pending, rejected, cancelled, absent: no longer listed, unknown), 0 "
        "for the others. Polled every account.interval.",
    ),
    MetricSpec(
        "smswatch_account_up",
        "gauge",
        ("gateway",),
        "1 when every part of the last check of the gateway's provider account (balance or "
        "quota, approvals) was read, else 0.",
    ),
    MetricSpec(
        "smswatch_account_check_errors_total",
        "counter",
        ("gateway", "error"),
        "Failed requests to the gateway's provider account API by kind (timeout, connection, "
        "http_4xx, http_5xx, throttled, bad_payload: also an error answer in an HTTP 200).",
    ),
    MetricSpec(
        "smswatch_account_last_success_timestamp_seconds",
        "gauge",
        ("gateway",),
        "Unix time of the last account check of the gateway that read every part.",
    ),
    MetricSpec(
        "smswatch_build_info",
        "gauge",
        ("version",),
        "Build information of the running smswatch exporter; the value is always 1.",
    ),
    MetricSpec(
        "smswatch_probe_sent_total",
        "counter",
        ("gateway", "carrier", "area"),
        "Canary SMS sent (attempted) through the gateway's own send API to a test handset of "
        "this carrier and area. Canary traffic is never counted in the smswatch_sms_* or "
        "smswatch_receipt* metrics.",
    ),
    MetricSpec(
        "smswatch_probe_delivered_total",
        "counter",
        ("gateway", "carrier", "area"),
        "Canary SMS whose first final delivery report, through the normal report path (pull or "
        "push), said delivered.",
    ),
    MetricSpec(
        "smswatch_probe_received_total",
        "counter",
        ("gateway", "carrier", "area"),
        "Canary SMS whose nonce the test handset's inbox received (gammu-smsd inbox).",
    ),
    MetricSpec(
        "smswatch_probe_end_to_end_seconds",
        "histogram",
        ("gateway", "carrier", "area"),
        "Canary sent to its nonce received by the test handset, in seconds (the handset's "
        "inbox time has whole-second precision).",
    ),
    MetricSpec(
        "smswatch_probe_fake_reports_total",
        "counter",
        ("gateway", "carrier", "area"),
        "Canary SMS reported delivered whose nonce never reached the test handset within "
        "probes.handset_timeout: fake delivery reports (a grey route's DELIVRD).",
    ),
    MetricSpec(
        "smswatch_probe_failures_total",
        "counter",
        ("gateway", "carrier", "area", "cause"),
        "Canary SMS that failed: cause gateway (send refused, no final report within "
        "probes.report_timeout, or a rejected/failed report) or unreachable (undelivered or "
        "expired report).",
    ),
    MetricSpec(
        "smswatch_probe_last_sent_timestamp_seconds",
        "gauge",
        ("gateway",),
        "Unix time of the last canary sent through the gateway (absent before the first).",
    ),
    MetricSpec(
        "smswatch_probe_interval_seconds",
        "gauge",
        ("gateway",),
        "The configured interval between canary rounds of the gateway "
        "(probes.gateways[].interval).",
    ),
    MetricSpec(
        "smswatch_source_leader",
        "gauge",
        ("source",),
        "1 on the replica that polls the source (holds its lease), 0 on the others. Exported "
        "by every replica for every polled source: max by (source) below 1 means nobody polls it.",
    ),
    MetricSpec(
        "smswatch_primary",
        "gauge",
        (),
        "1 on the replica that holds the primary lease: it runs the singleton jobs (prune, "
        "scheduled reports, canary probes, account checks) and alone exports the series read "
        "from the shared state, so sums across replicas never count twice. 0 on the others.",
    ),
    MetricSpec(
        "smswatch_lease_changes_total",
        "counter",
        ("lease", "change"),
        "Changes of a lease (primary, source:<name>) as this replica saw them: acquired, lost "
        "(taken over, or expired before renewal) and released (spread to another replica, or "
        "at shutdown). Counted in this process only: starts at 0 at each start.",
    ),
)

#: Causes a canary probe's failure is given (`cause` of smswatch_probe_failures_total).
PROBE_FAILURE_CAUSES: tuple[str, ...] = ("gateway", "unreachable")

METRICS_BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in METRICS}

#: Histogram buckets for poll durations (seconds); a poll is the exporter's own work.
POLL_BUCKETS_SECONDS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

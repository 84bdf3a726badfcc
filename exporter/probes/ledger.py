"""What a canary's two proofs say: reports through the normal path, the handset's inbox, and
the verdict once both (or a deadline) are in.

Canary traffic never counts as cardholder traffic: the pipeline hands every SMS event to
`divert_reports` first, which takes the events of known canaries (by the gateway's message id,
or by the canary id the send passed as reference) out of the batch and records them here; the
rest goes on to reconciliation as before. A canary is recorded before it is sent, so even a
report that beats the send's answer is recognised by its reference.

Verdicts (one per canary, in one transaction with its counters):
- `delivered`: a `delivered` report and the nonce on the handset;
- `fake_report`: a `delivered` report, and no nonce on the handset within `handset_timeout`
  of the report (a grey route's fake DELIVRD);
- `failed`, cause `gateway`: the send was refused, or no final report came within
  `report_timeout` (nor the handset: with the handset but no report, the report path failed),
  or the report says rejected/failed;
- `failed`, cause `unreachable`: the report says undelivered or expired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from exporter.classify import FINAL
from exporter.reconcile import Changes, LabelKey
from exporter.records import SmsEvent
from exporter.store import CanaryRow, Store
from exporter.timestamps import format_rfc3339_ms

SENT = "smswatch_probe_sent_total"
DELIVERED = "smswatch_probe_delivered_total"
RECEIVED = "smswatch_probe_received_total"
END_TO_END = "smswatch_probe_end_to_end_seconds"
FAKE = "smswatch_probe_fake_reports_total"
FAILED = "smswatch_probe_failures_total"
LAST_SENT = "smswatch_probe_last_sent_timestamp_seconds"

#: Report statuses that say the handset could not be reached (else: the gateway's fault).
_UNREACHABLE = frozenset({"undelivered", "expired"})


def labels(canary: CanaryRow) -> tuple[str, str, str]:
    """The (gateway, carrier, area) of a canary's series."""
    return (canary.gateway, canary.carrier, canary.area)


def divert_reports(
    store: Store, gateway: str, events: Sequence[SmsEvent], now_ms: int
) -> list[SmsEvent]:
    """Record the events of canaries (inside the caller's transaction); return the others.

    A canary's report is timed when smswatch learned it (`now_ms`): the probe judges its
    deadlines on its own clock, whatever the provider's clock says (its time is kept in the
    timeline's detail when they differ by more than a second)."""
    if not events:
        return list(events)
    known = store.canaries_among(
        gateway, [e.message_id for e in events], [e.txn_ref for e in events]
    )
    if not known:
        return list(events)
    rest: list[SmsEvent] = []
    touched: dict[str, CanaryRow] = {}
    counters: Counter[LabelKey] = Counter()
    for event in events:
        found = known.get(event.message_id) or known.get(event.txn_ref)
        if found is None:
            rest.append(event)
            continue
        canary = touched.setdefault(found.canary_id, found)
        if not canary.message_id:
            canary.message_id = event.message_id
        detail = event.status + (f" ({event.error_code})" if event.error_code else "")
        if any(
            what == "report" and seen.split(",")[0] == detail for _, what, seen in canary.timeline
        ):
            continue  # a report read again (a list re-read, a provider's retry): once
        if abs(event.status_ms - now_ms) > 1000:
            detail += f", provider time {format_rfc3339_ms(event.status_ms)}"
        canary.timeline.append([now_ms, "report", detail])
        if canary.report_status is None and event.status in FINAL:
            canary.report_status = event.status
            canary.report_ms = now_ms
            if event.status == "delivered":
                counters[(DELIVERED, labels(canary))] += 1
    for canary in touched.values():
        store.update_canary(canary)
    store.add_counters(counters)
    return rest


def note_handset(
    store: Store, received: Sequence[tuple[str, int, str]], seen_ms: int | None = None
) -> int:
    """Record nonces seen on the handset: (nonce, received ms, inbox file), read from the inbox
    at `seen_ms`. Inside a transaction; returns how many canaries this proved received."""
    by_nonce = store.canaries_by_nonce([nonce for nonce, _, _ in received])
    changes = Changes()
    proved = 0
    for nonce, at_ms, name in received:
        canary = by_nonce.get(nonce)
        if canary is None or canary.handset_ms is not None:
            continue
        # The inbox tells whole seconds: a nonce received in the second it was sent is
        # taken as received at the send (never before it).
        canary.handset_ms = max(at_ms, canary.sent_ms)
        received_at = format_rfc3339_ms(at_ms)[11:19]
        canary.timeline.append(
            [
                canary.handset_ms if seen_ms is None else max(seen_ms, canary.handset_ms),
                "handset",
                f"nonce on the handset, received {received_at} UTC ({name})",
            ]
        )
        changes.counters[(RECEIVED, labels(canary))] += 1
        changes.observe(END_TO_END, labels(canary), canary.handset_ms - canary.sent_ms)
        store.update_canary(canary)
        proved += 1
    store.add_counters(changes.counters)
    return proved


def verdict(
    canary: CanaryRow, now_ms: int, handset_timeout_ms: int, report_timeout_ms: int
) -> tuple[str, str] | None:
    """(verdict, cause) once the proofs or the deadlines decide, else None (cause `none` for
    a delivered or a fake-reported canary)."""
    if canary.send_error:
        return ("failed", "gateway")
    status = canary.report_status
    if status == "delivered":
        if canary.handset_ms is not None:
            return ("delivered", "none")
        assert canary.report_ms is not None
        if now_ms >= max(canary.report_ms, canary.sent_ms) + handset_timeout_ms:
            return ("fake_report", "none")
        return None
    if status is not None:
        return ("failed", "unreachable" if status in _UNREACHABLE else "gateway")
    if now_ms >= canary.sent_ms + report_timeout_ms:
        return ("failed", "gateway")
    return None


def judge_open(store: Store, now_ms: int, handset_timeout_ms: int, report_timeout_ms: int) -> int:
    """Give every open canary whose proofs or deadlines decide its verdict (inside a
    transaction); returns how many were decided."""
    counters: Counter[LabelKey] = Counter()
    decided = 0
    for canary in store.open_canaries():
        result = verdict(canary, now_ms, handset_timeout_ms, report_timeout_ms)
        if result is None:
            continue
        canary.verdict, canary.cause = result
        if canary.verdict == "fake_report":
            counters[(FAKE, labels(canary))] += 1
            detail = "delivered reported, the handset never got the nonce"
        elif canary.verdict == "failed":
            counters[(FAILED, (*labels(canary), canary.cause))] += 1
            detail = f"failed, cause {canary.cause}"
        else:
            detail = "delivered: both proofs in"
        canary.timeline.append([now_ms, "verdict", detail])
        store.update_canary(canary)
        decided += 1
    store.add_counters(counters)
    return decided

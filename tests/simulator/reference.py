"""A tiny, independent reference implementation of the outcome rules of API.md.

It reads only what a consumer can see (the three feeds) and the reference's code table
(shared/reference/sms-providers.md §10), written out here again on purpose: the test compares
this account with the simulator's truth, which is computed from the generator's own facts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from exporter.timestamps import parse_rfc3339_ms

BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
STATUS = {
    "DELIVRD": "delivered",
    "UNDELIV": "undelivered",
    "EXPIRED": "expired",
    "DELETED": "expired",
    "REJECTD": "rejected",
    "UNKNOWN": "unknown",
}
CAUSE = {
    **dict.fromkeys(["IB:0070", "MA:0054", "MA:0051", "DB:9001"], "gateway"),
    **dict.fromkeys(["MK:0001", "DB:0101", "MI:0073", "MK:0005", "DB:0102"], "invalid_number"),
    **dict.fromkeys(["MK:0010", "MK:0023", "MI:0024", "MI:0099"], "unreachable"),
    **dict.fromkeys(["DB:9007", "IB:0008", "DB:0142", "MI:0061"], "throttled"),
    **dict.fromkeys(["MK:0115", "KEYWORD", "DB:0144"], "filtered"),
    **dict.fromkeys(["CMPPERR:1", "CMPPERR:4", "CMPPERR:13"], "integration"),
}


def _cause(stat: str, code: str) -> str:
    if stat == "DELIVRD":
        return "none"
    if stat == "UNKNOWN":
        return "unknown"
    return CAUSE[code]


def _terminal_off(terminal: dict[str, Any], at: int) -> bool:
    """SMS notice off or software < 5.0.0 at `at`, from the inventory snapshot and its history."""
    if int(terminal["software_version"].split(".")[0]) < 5:
        return True
    history = terminal.get("history", [])
    enabled = terminal["sms_notice_enabled"]
    if history:
        enabled = not history[0]["sms_notice_enabled"]  # the state before the first flip
        for flip in history:
            if parse_rfc3339_ms(flip["at"]) <= at:
                enabled = flip["sms_notice_enabled"]
    return not enabled


def _histogram(samples: list[tuple[tuple[str, ...], int]], names: tuple[str, ...]) -> list[Any]:
    out = []
    for labels in sorted({labels for labels, _ in samples}):
        values = [v for key, v in samples if key == labels]
        for le in [*BUCKETS, "+Inf"]:
            count = sum(1 for v in values if le == "+Inf" or v <= le * 1000)  # type: ignore[operator]
            if count:
                out.append(
                    {
                        "labels": {**dict(zip(names, labels, strict=True)), "le": str(le)},
                        "value": count,
                    }
                )
    return out


def usable(item: Any, key: str, times: tuple[str, ...]) -> bool:
    """Whether a feed item can be read and kept (`poison_records` serves some that cannot)."""
    if not isinstance(item, dict) or not isinstance(item.get(key), str):
        return False
    if any(not isinstance(item.get(name), str) for name in times):
        return False
    for value in item.values():
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                return False
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            return False
    return True


def expected_metrics(
    messages: list[dict[str, Any]],
    transactions: list[dict[str, Any]],
    terminals: list[dict[str, Any]],
    *,
    gateway: str,
    missing_after_ms: int,
    give_up_after_ms: int,
) -> dict[str, list[Any]]:
    """The truth's `metrics` for feeds read to the end of a complete run."""
    messages = [m for m in messages if usable(m, "message_id", ("submitted_at", "status_at"))]
    transactions = [t for t in transactions if usable(t, "txn_id", ("txn_time",))]
    transactions = list({t["txn_id"]: t for t in transactions}.values())  # duplicates count once
    by_terminal = {t["terminal_id"]: t for t in terminals}
    reversal_at: dict[str, int] = {}
    for t in transactions:
        if t["result"] == "reversed":
            at = parse_rfc3339_ms(t["txn_time"])
            reversal_at[t["original_txn_id"]] = min(at, reversal_at.get(t["original_txn_id"], at))

    # Messages: first event, first final event by event time (feed order breaks ties).
    first_event: dict[str, dict[str, Any]] = {}
    first_final: dict[str, dict[str, Any]] = {}
    for event in messages:
        mid = event["message_id"]
        first_event.setdefault(mid, event)
        if event["status"] in STATUS:
            known = first_final.get(mid)
            if known is None or parse_rfc3339_ms(event["status_at"]) < parse_rfc3339_ms(
                known["status_at"]
            ):
                first_final[mid] = event
    submitted: Counter[tuple[str, ...]] = Counter()
    finals: Counter[tuple[str, ...]] = Counter()
    delivery: list[tuple[tuple[str, ...], int]] = []
    outcome_of: dict[str, tuple[str, str, int]] = {}  # mid → (status, cause, final time)
    for mid, event in first_event.items():
        sub = parse_rfc3339_ms(event["submitted_at"])
        submitted[(gateway, event["carrier"], event["area"])] += 1
        final = first_final.get(mid)
        if final is not None and parse_rfc3339_ms(final["status_at"]) <= sub + give_up_after_ms:
            at = parse_rfc3339_ms(final["status_at"])
            status, cause = STATUS[final["status"]], _cause(final["status"], final["error_code"])
            if status == "delivered":
                delivery.append(((gateway, event["carrier"]), at - sub))
        else:
            at, status, cause = sub + give_up_after_ms, "unknown", "unknown"
        finals[(gateway, event["carrier"], event["area"], status, cause)] += 1
        outcome_of[mid] = (status, cause, at)

    # Each message belongs to the latest receipt with its RRN (and its acquirer, which the SMS
    # names) at or before its submit time if submitted by that txn_time + missing_after, else
    # to the earliest one within max_skew after it; a receipt's SMS is the first it owns.
    max_skew_ms = 60_000
    receipts_by_rrn: dict[str, list[tuple[int, str, str]]] = {}
    for t in transactions:
        if t["result"] == "approved" and t["sms_expected"]:
            receipt = (parse_rfc3339_ms(t["txn_time"]), t["txn_id"], t["acquirer"])
            receipts_by_rrn.setdefault(t["rrn"], []).append(receipt)
    first_message: dict[str, tuple[int, str]] = {}  # txn_id → (submitted, message id)
    for mid, event in first_event.items():
        sub = parse_rfc3339_ms(event["submitted_at"])
        scoped = [
            r
            for r in receipts_by_rrn.get(event["txn_ref"], [])
            if event.get("acquirer", r[2]) == r[2]
        ]
        earlier = [r for r in scoped if r[0] <= sub]
        later = [r for r in scoped if sub < r[0] <= sub + max_skew_ms]
        if earlier and sub <= max(earlier)[0] + missing_after_ms:
            owner = max(earlier)[1]
        elif later:
            owner = min(later)[1]
        else:
            continue
        known = first_message.get(owner)
        if known is None or (sub, mid) < known:
            first_message[owner] = (sub, mid)

    pos: Counter[tuple[str, ...]] = Counter()
    receipts: Counter[tuple[str, ...]] = Counter()
    notify: list[tuple[tuple[str, ...], int]] = []
    for t in transactions:
        pos[(t["acquirer"], t["result"])] += 1
        if t["result"] != "approved" or not t["sms_expected"]:
            continue
        at = parse_rfc3339_ms(t["txn_time"])
        missing_at = at + missing_after_ms
        first = first_message.get(t["txn_id"])
        if first is not None:
            status, cause, decided = outcome_of[first[1]]
            outcome = {"delivered": "delivered", "unknown": "unknown"}.get(status, "failed")
        else:
            decided, outcome = missing_at, "missing"
            off = _terminal_off(by_terminal[t["terminal_id"]], at)
            cause = "terminal_config" if off else "integration"
        if t["txn_id"] in reversal_at and reversal_at[t["txn_id"]] <= decided:
            continue
        receipts[(t["acquirer"], outcome, cause)] += 1
        if outcome == "delivered":
            notify.append(((t["acquirer"],), decided - at))

    def series(counter: Counter[tuple[str, ...]], names: tuple[str, ...]) -> list[Any]:
        return [
            {"labels": dict(zip(names, key, strict=True)), "value": value}
            for key, value in sorted(counter.items())
            if value
        ]

    out = {
        "smswatch_sms_submitted_total": series(submitted, ("gateway", "carrier", "area")),
        "smswatch_sms_messages_total": series(
            finals, ("gateway", "carrier", "area", "status", "cause")
        ),
        "smswatch_pos_transactions_total": series(pos, ("acquirer", "result")),
        "smswatch_receipts_total": series(receipts, ("acquirer", "outcome", "cause")),
        "smswatch_sms_delivery_seconds_bucket": _histogram(delivery, ("gateway", "carrier")),
        "smswatch_receipt_notify_seconds_bucket": _histogram(notify, ("acquirer",)),
    }
    return {name: value for name, value in out.items() if value}

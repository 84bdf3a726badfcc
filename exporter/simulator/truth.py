"""Ground truth: what the exporter must count, from what the simulator generated.

The outcome rules of API.md are applied here to the simulator's own account of each
transaction (`TransactionFacts`): its records, every event of its messages (duplicates and late
contradicting reports included) and what the simulator knows about its terminal. Nothing here
reads the feeds or imports the exporter's pipeline, so the two sides are independent.

Each transaction becomes a handful of `Delta`s, each due at its decision time (event time);
`TruthLedger` applies them once the simulated clock reaches that time, so it only ever holds
the deltas of transactions still in flight, plus the aggregate counters.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from exporter.catalogue import BUCKETS_SECONDS, CAUSE_NONE
from exporter.simulator.codes import FINAL_STATUSES, cause_of

SUBMITTED = "smswatch_sms_submitted_total"
MESSAGES = "smswatch_sms_messages_total"
DELIVERY = "smswatch_sms_delivery_seconds"
TRANSACTIONS = "smswatch_pos_transactions_total"
RECEIPTS = "smswatch_receipts_total"
NOTIFY = "smswatch_receipt_notify_seconds"
UNOBSERVED = "smswatch_receipts_unobserved_total"

#: Label names of each metric (histograms without `le`), in the exporter's own names.
LABELS: dict[str, tuple[str, ...]] = {
    SUBMITTED: ("gateway", "carrier", "area"),
    MESSAGES: ("gateway", "carrier", "area", "status", "cause"),
    DELIVERY: ("gateway", "carrier"),
    TRANSACTIONS: ("acquirer", "result"),
    RECEIPTS: ("acquirer", "outcome", "cause"),
    NOTIFY: ("acquirer",),
    UNOBSERVED: ("acquirer",),
}
HISTOGRAMS: tuple[str, ...] = (DELIVERY, NOTIFY)
_BOUNDS_MS: tuple[int, ...] = tuple(le * 1000 for le in BUCKETS_SECONDS)
_LE_TEXT: tuple[str, ...] = (*(str(le) for le in BUCKETS_SECONDS), "+Inf")


@dataclass(slots=True)
class MessageFacts:
    """One message as generated: its labels, submit time and every event it will emit."""

    carrier: str
    area: str
    submitted_at: int
    events: list[tuple[int, str, str]] = field(default_factory=list)  # (status_at, stat, err)
    #: Reported DELIVRD by a grey route, never delivered (`fake_delivery_reports`).
    fake: bool = False


@dataclass(slots=True)
class TransactionFacts:
    """One approved or declined transaction with everything that follows from it."""

    acquirer: str
    result: str  # approved | declined
    txn_time: int
    receipt: bool  # approved and sms_expected
    terminal_config_off: bool  # SMS notice off or software < 5.0.0 at txn_time
    messages: list[MessageFacts] = field(default_factory=list)  # txn_ref == this rrn
    reversal_time: int | None = None
    second_gateway: bool = False  # its messages went through the second gateway (id_collision)


class Delta(NamedTuple):
    """One contribution to the truth, due at `time_ms`: a counter +1 or a histogram sample."""

    time_ms: int
    metric: str
    labels: tuple[str, ...]
    value: int  # 1 for counters, the latency in ms for histograms


class MessageFinal(NamedTuple):
    """A message's final status under rule 2."""

    time_ms: int
    status: str  # status label
    cause: str
    latency_ms: int | None  # submit → DELIVRD, when delivered


#: The (`status`, `cause`) labels of a final report (stat, code) in the API shape served.
StatusLabel = Callable[[str, str], tuple[str, str]]


def told(ms: int, whole_seconds: bool) -> int:
    """A time as the provider shape tells it: whole seconds (Twilio, Vonage, Alibaba) or ms."""
    return ms - ms % 1000 if whole_seconds else ms


def second_gateway(gateway: str) -> str:
    """The `gateway` label of the second gateway feed (`/sms-2/v1/messages`)."""
    return f"{gateway}-2"


def message_final(
    message: MessageFacts,
    give_up_after_ms: int,
    label: StatusLabel | None = None,
    whole_seconds: bool = False,
) -> MessageFinal:
    """Rule 2: the first final event by event time, unless it comes after the give-up time.

    `label` tells status and cause as the provider shape served can (`shapes.py`); with
    `whole_seconds` the give-up time is judged on the seconds the shape tells."""
    deadline = told(message.submitted_at, whole_seconds) + give_up_after_ms
    first: tuple[int, str, str] | None = None
    for event in message.events:  # emission order breaks ties of equal event time
        if event[1] in FINAL_STATUSES and (first is None or event[0] < first[0]):
            first = event
    if first is None or told(first[0], whole_seconds) > deadline:
        return MessageFinal(deadline, "unknown", "unknown", None)
    at, stat, code = first
    latency = at - message.submitted_at if stat == "DELIVRD" else None
    if label is not None:
        status, cause = label(stat, code)
        return MessageFinal(at, status, cause, latency)
    return MessageFinal(at, FINAL_STATUSES[stat], cause_of(stat, code), latency)


def transaction_deltas(
    facts: TransactionFacts,
    *,
    gateway: str,
    missing_after_ms: int,
    give_up_after_ms: int,
    label: StatusLabel | None = None,
    whole_seconds: bool = False,
) -> list[Delta]:
    """Apply the outcome rules of API.md to one transaction and everything that follows it.

    `whole_seconds`: the provider shape tells times in whole seconds (Twilio, Vonage, Alibaba),
    so "submitted by txn_time + missing_after" and the give-up time are judged on those seconds,
    as the exporter reading that shape can only judge them (issue 12).

    Its messages are counted under `gateway`, or under the second gateway (`second_gateway`)
    when `id_collision` sent them there. Each message belongs to the transaction it was
    generated for, whatever RRN it carries (`rrn_reuse`).
    """
    if facts.second_gateway:
        gateway = second_gateway(gateway)
    deltas = [Delta(facts.txn_time, TRANSACTIONS, (facts.acquirer, facts.result), 1)]
    if facts.reversal_time is not None:
        deltas.append(Delta(facts.reversal_time, TRANSACTIONS, (facts.acquirer, "reversed"), 1))
    finals: list[MessageFinal] = []
    for message in facts.messages:
        final = message_final(message, give_up_after_ms, label, whole_seconds)
        finals.append(final)
        deltas.append(
            Delta(message.submitted_at, SUBMITTED, (gateway, message.carrier, message.area), 1)
        )
        labels = (gateway, message.carrier, message.area, final.status, final.cause)
        deltas.append(Delta(final.time_ms, MESSAGES, labels, 1))
        if final.latency_ms is not None:
            deltas.append(
                Delta(final.time_ms, DELIVERY, (gateway, message.carrier), final.latency_ms)
            )
    if not facts.receipt:
        return deltas

    missing_at = facts.txn_time + missing_after_ms
    first = min(
        range(len(facts.messages)),
        key=lambda i: facts.messages[i].submitted_at,
        default=None,
    )
    notify_ms: int | None = None
    if first is not None and told(facts.messages[first].submitted_at, whole_seconds) <= missing_at:
        final = finals[first]
        decided_at = final.time_ms
        if final.status == "delivered":
            outcome, cause = "delivered", CAUSE_NONE
            notify_ms = decided_at - facts.txn_time
        elif final.status == "unknown":
            outcome, cause = "unknown", "unknown"
        else:
            outcome, cause = "failed", final.cause
    else:
        decided_at = missing_at
        outcome = "missing"
        cause = "terminal_config" if facts.terminal_config_off else "integration"
    if facts.reversal_time is not None and facts.reversal_time <= decided_at:
        return deltas  # rule 6: cancelled before its outcome was decided
    deltas.append(Delta(decided_at, RECEIPTS, (facts.acquirer, outcome, cause), 1))
    if notify_ms is not None:
        deltas.append(Delta(decided_at, NOTIFY, (facts.acquirer,), notify_ms))
    return deltas


class TruthLedger:
    """Aggregate truth: deltas wait in a heap until the simulated clock reaches them."""

    def __init__(self) -> None:
        self._pending: list[tuple[int, int, Delta]] = []
        self._sequence = 0
        self._counters: dict[tuple[str, tuple[str, ...]], int] = {}
        self._buckets: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        self.horizon_ms: int | None = None  # the latest due time of any delta recorded
        #: Poisoned items served per feed (`poison_records`): the exporter counts each one
        #: `smswatch_records_total{result="invalid"}` of the source reading that feed.
        self.poisoned: dict[str, int] = {"messages": 0, "transactions": 0}

    def record(self, deltas: list[Delta]) -> None:
        """Queue deltas; each counts once the clock reaches its time."""
        for delta in deltas:
            self._sequence += 1
            heapq.heappush(self._pending, (delta.time_ms, self._sequence, delta))
            if self.horizon_ms is None or delta.time_ms > self.horizon_ms:
                self.horizon_ms = delta.time_ms

    def advance(self, now_ms: int) -> None:
        """Apply every delta due at or before `now_ms`."""
        pending = self._pending
        while pending and pending[0][0] <= now_ms:
            delta = heapq.heappop(pending)[2]
            key = (delta.metric, delta.labels)
            if delta.metric in HISTOGRAMS:
                counts = self._buckets.get(key)
                if counts is None:
                    counts = self._buckets[key] = [0] * (len(_BOUNDS_MS) + 1)
                counts[bisect_left(_BOUNDS_MS, delta.value)] += 1
            else:
                self._counters[key] = self._counters.get(key, 0) + delta.value

    @property
    def pending(self) -> int:
        """Deltas not yet due."""
        return len(self._pending)

    def submitted(self, gateway: str) -> int:
        """Messages of `gateway` submitted so far (what a provider account charges for)."""
        return sum(
            value
            for (metric, labels), value in self._counters.items()
            if metric == SUBMITTED and labels[0] == gateway
        )

    def metrics(self) -> dict[str, list[dict[str, Any]]]:
        """Non-zero series in the exporter's names; histograms as cumulative `_bucket` series."""
        out: dict[str, list[dict[str, Any]]] = {}
        for (metric, labels), value in sorted(self._counters.items()):
            out.setdefault(metric, []).append(
                {"labels": dict(zip(LABELS[metric], labels, strict=True)), "value": value}
            )
        for (metric, labels), counts in sorted(self._buckets.items()):
            series = out.setdefault(f"{metric}_bucket", [])
            total = 0
            for le, count in zip(_LE_TEXT, counts, strict=True):
                total += count
                if total:
                    named = dict(zip(LABELS[metric], labels, strict=True))
                    series.append({"labels": {**named, "le": le}, "value": total})
        return out


# --------------------------------------------------------------------------- pushing shapes


def push_evidence(
    facts: TransactionFacts,
    *,
    missing_after_ms: int,
    give_up_after_ms: int,
    whole_seconds: bool = False,
) -> tuple[int, int] | None:
    """For a receipt whose SMS an outcome-only push source never tells of (no message submitted
    by `T + missing_after`, or its first message never reaches a final status), the times
    `[T, T + missing_after + give_up_after]` in which a report of such an SMS could have been
    pushed; None for every other transaction (its report, when it comes, tells its outcome).
    `whole_seconds` judges the submission time as the shape tells it (see `transaction_deltas`).
    """
    if not facts.receipt:
        return None
    missing_at = facts.txn_time + missing_after_ms
    first = min(facts.messages, key=lambda m: m.submitted_at, default=None)
    reported = (
        first is not None
        and told(first.submitted_at, whole_seconds) <= missing_at
        and any(event[1] in FINAL_STATUSES for event in first.events)
    )
    if reported:
        return None
    return facts.txn_time, missing_at + give_up_after_ms


class PushLog:
    """What the receiver of a pushing shape could observe, from the pushes' own outcomes.

    A push carries the provider's now in its `Date` header (whole seconds). The receiver did
    not watch: before the first push it acknowledged, and from the last acknowledged push before
    a failed one until the next acknowledged push (`[from, to)`): reports of those times may be
    lost (a provider gives up retrying). A receipt that looks `missing` to the receiver and
    whose SMS report could have come in such a time is `unknown` (API.md, pushing shapes).
    """

    def __init__(self) -> None:
        self.first_ack_ms: int | None = None
        self.last_ack_ms: int | None = None
        self.failing = False
        self.windows: list[tuple[int, int]] = []

    def record(self, date_ms: int, acked: bool) -> None:
        """One push attempt: its `Date` and whether the receiver acknowledged it."""
        if not acked:
            self.failing = self.first_ack_ms is not None
            return
        if self.first_ack_ms is None or self.last_ack_ms is None:
            self.first_ack_ms = self.last_ack_ms = date_ms
            return
        if self.failing and date_ms > self.last_ack_ms:
            self.windows.append((self.last_ack_ms, date_ms))
        self.failing = False
        self.last_ack_ms = max(self.last_ack_ms, date_ms)

    @property
    def unobserved_ms(self) -> int:
        """The length of the closed windows (before the first push not counted)."""
        return sum(to - since for since, to in self.windows)

    def unobserved(self, start_ms: int, end_ms: int) -> bool | None:
        """Whether `[start_ms, end_ms]` meets a time not watched; None while not known yet."""
        if self.first_ack_ms is None or self.last_ack_ms is None:
            return None
        if start_ms < self.first_ack_ms:
            return True
        if any(start_ms < to and end_ms >= since for since, to in self.windows):
            return True
        if self.failing and end_ms >= self.last_ack_ms:
            return True
        return False if end_ms < self.last_ack_ms else None

"""The pipeline: dedup, classify and reconcile records into state changes and counter deltas.

Pure over records and state: it reads state through the `StateView` protocol and returns
`Changes`; the store applies them (and commits them with the cursor, in one transaction).
Every decision uses event time — the records' own timestamps and the feeds' watermarks —
so outcomes never depend on when a poll happened (DESIGN.md §2, outcome rules).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from exporter.catalogue import BUCKETS_SECONDS, OTHER, SMS_FINAL_STATUSES
from exporter.classify import FINAL, SMPP, CodeTable
from exporter.records import SmsEvent, Terminal, Transaction

#: One bit per normalized status: the dedup key of an event is (message_id, status).
STATUS_BITS: dict[str, int] = {
    name: 1 << i for i, name in enumerate(("submitted", "enroute", *SMS_FINAL_STATUSES))
}

#: A bit of `Message.seen` beside the status bits: the message is known from a report that
#: carried no submit time (`SmsEvent.submit_known` false).
SUBMIT_UNKNOWN = 1 << len(STATUS_BITS)

LabelKey = tuple[str, tuple[str, ...]]
_BUCKETS_MS = [bound * 1000 for bound in BUCKETS_SECONDS]


@dataclass(slots=True)
class Message:
    """The state of one message."""

    message_id: str
    gateway: str
    txn_ref: str
    carrier: str
    area: str
    phone: str
    submitted_ms: int
    seen: int = 0
    final_status: str | None = None
    final_cause: str | None = None
    final_code: str = ""
    final_ms: int | None = None
    #: Its SMS timeline: every status event that was not a duplicate (see `timeline_entry`).
    events: str = ""
    stored: bool = False  # whether a row for it exists in the store already


@dataclass(slots=True)
class Receipt:
    """The reconciliation state of one approved transaction that should notify."""

    txn_id: str
    join_key: str
    acquirer: str
    terminal_id: str
    txn_ms: int
    state: str = "open"  # open | decided | reversed
    message_id: str | None = None
    decide_ms: int | None = None
    outcome: str | None = None
    cause: str | None = None
    notify_ms: int | None = None
    reversed_ms: int | None = None


@dataclass(frozen=True, slots=True)
class TerminalState:
    """A terminal's SMS notice setting and software version from a point in time on."""

    sms_notice_enabled: bool
    software_version: str


@dataclass(frozen=True)
class Settings:
    """Reconciliation parameters (from the config)."""

    missing_after_ms: int
    give_up_after_ms: int
    join_transaction_field: str = "rrn"
    min_software_version: str = ""


class StateView(Protocol):
    """Read access to committed (and same-transaction) state, in batches."""

    def messages(self, ids: Sequence[str]) -> dict[str, Message]:
        """Messages by id (absent ids are left out)."""

    def first_messages(self, txn_refs: Sequence[str]) -> dict[str, Message]:
        """For each txn_ref, its earliest-submitted message (ties: smallest id)."""

    def open_receipts(self, join_keys: Sequence[str]) -> dict[str, list[Receipt]]:
        """Open receipts by join key."""

    def receipts(self, txn_ids: Sequence[str]) -> dict[str, Receipt]:
        """Receipts (any state) by transaction id."""

    def known_transactions(self, txn_ids: Sequence[str]) -> set[str]:
        """Which of these transaction ids were seen before."""

    def orphan_reversals(self, txn_ids: Sequence[str]) -> dict[str, int]:
        """Reversals seen before their original: original txn id → earliest reversal time."""

    def messages_to_give_up(self, gateway: str, before_ms: int, limit: int) -> list[Message]:
        """Messages of a gateway without final status submitted before `before_ms`."""

    def receipts_due(self, before_ms: int, limit: int) -> list[Receipt]:
        """Open receipts whose decision time is before `before_ms`."""

    def terminal_state_at(self, terminal_id: str, at_ms: int) -> TerminalState | None:
        """A terminal's state at an instant, from the inventory history."""

    def terminal(self, terminal_id: str) -> TerminalState | None:
        """A terminal's current state."""


@dataclass
class Changes:
    """What one step of the pipeline changes: rows to write and metric deltas."""

    messages: dict[str, Message] = field(default_factory=dict)
    receipts: dict[str, Receipt] = field(default_factory=dict)
    transactions: list[Transaction] = field(default_factory=list)
    orphan_reversals: dict[str, int] = field(default_factory=dict)
    resolved_orphans: set[str] = field(default_factory=set)
    terminals: list[Terminal] = field(default_factory=list)
    terminal_history: list[tuple[str, int, bool, str]] = field(default_factory=list)
    counters: Counter[LabelKey] = field(default_factory=Counter)
    gauges: Counter[LabelKey] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)

    def observe(self, histogram: str, labels: tuple[str, ...], latency_ms: int) -> None:
        """Add one observation to a histogram, bucketed on integer milliseconds."""
        index = bisect_left(_BUCKETS_MS, latency_ms)  # first bound >= latency: le semantics
        self.counters[(f"{histogram}:bucket", (*labels, str(index)))] += 1
        self.counters[(f"{histogram}:sum_ms", labels)] += latency_ms
        self.counters[(f"{histogram}:count", labels)] += 1


class LabelBounds:
    """Keeps label values in bounded sets: configured lists, else the first N values seen."""

    def __init__(self, allowed: Iterable[str], cap: int, seen: Iterable[str] = ()) -> None:
        self.allowed = frozenset(allowed)
        self.cap = cap
        self.seen: set[str] = set(seen) - {OTHER}

    def __call__(self, value: str) -> str:
        if self.allowed:
            return value if value in self.allowed else OTHER
        if value in self.seen:
            return value
        if len(self.seen) < self.cap:
            self.seen.add(value)
            return value
        return OTHER


@lru_cache(maxsize=1024)  # a few versions, compared for every terminal of every snapshot
def version_tuple(version: str) -> tuple[int, ...]:
    """`5.2.1` → (5, 2, 1); non-numeric parts count as 0."""
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def is_outdated(version: str, minimum: str) -> bool:
    """Whether a terminal software version is older than the configured minimum."""
    if not minimum:
        return False
    return version_tuple(version or "0") < version_tuple(minimum)


# --------------------------------------------------------------------------- messages


def _finalize(m: Message, status: str, cause: str, code: str, at_ms: int, changes: Changes) -> None:
    m.final_status, m.final_cause, m.final_code, m.final_ms = status, cause, code, at_ms
    changes.counters[
        ("smswatch_sms_messages_total", (m.gateway, m.carrier, m.area, status, cause))
    ] += 1
    changes.gauges[("smswatch_sms_pending", (m.gateway,))] -= 1
    if status == "delivered" and not m.seen & SUBMIT_UNKNOWN:
        changes.observe(
            "smswatch_sms_delivery_seconds", (m.gateway, m.carrier), at_ms - m.submitted_ms
        )
    changes.messages[m.message_id] = m


def _receipt_from_message(r: Receipt, m: Message) -> None:
    """Point a linked receipt at its message's final state (decided later, on watermarks)."""
    if m.final_status is None or m.final_ms is None:
        r.decide_ms = None
        r.outcome = r.cause = None
        r.notify_ms = None
        return
    r.decide_ms = m.final_ms
    if m.final_status == "delivered":
        r.outcome, r.cause, r.notify_ms = "delivered", "none", m.final_ms - r.txn_ms
    elif m.final_status == "unknown":
        r.outcome, r.cause = "unknown", "unknown"
    else:
        r.outcome, r.cause = "failed", m.final_cause


def _link(r: Receipt, m: Message, settings: Settings) -> bool:
    """Link a receipt with its first message if it was submitted in time."""
    if r.message_id is not None:
        return False
    if m.submitted_ms > r.txn_ms + settings.missing_after_ms and not m.seen & SUBMIT_UNKNOWN:
        return False
    r.message_id = m.message_id
    _receipt_from_message(r, m)
    return True


def _earlier(m: Message, other: Message | None) -> bool:
    """Whether `m` was submitted before `other` (ties: the smaller id), the receipts' rule."""
    return other is None or (m.submitted_ms, m.message_id) < (other.submitted_ms, other.message_id)


def ingest_sms(
    events: Sequence[SmsEvent],
    gateway: str,
    view: StateView,
    settings: Settings,
    carriers: LabelBounds,
    areas: LabelBounds,
    codes: CodeTable = SMPP,
) -> Changes:
    """Dedup and classify one page of SMS status events; link new messages to receipts.

    `codes` is the provider's code table; a failure whose cause it only infers is counted in
    `smswatch_sms_ambiguous_total`.
    """
    changes = Changes()
    known = view.messages(list({e.message_id for e in events}))
    new_refs: dict[str, Message] = {}
    finalized: dict[str, Message] = {}
    for e in events:
        m = known.get(e.message_id)
        if m is None:
            m = Message(
                message_id=e.message_id,
                gateway=gateway,
                txn_ref=e.txn_ref,
                carrier=carriers(e.carrier),
                area=areas(e.area),
                phone=e.phone,
                submitted_ms=e.submitted_ms,
            )
            if not e.submit_known:
                m.seen = SUBMIT_UNKNOWN
            known[e.message_id] = m
            changes.messages[m.message_id] = m
            changes.counters[("smswatch_sms_submitted_total", (gateway, m.carrier, m.area))] += 1
            changes.gauges[("smswatch_sms_pending", (gateway,))] += 1
            if m.txn_ref and _earlier(m, new_refs.get(m.txn_ref)):
                new_refs[m.txn_ref] = m  # pages of a re-read window are newest first
        bit = STATUS_BITS[e.status]
        if m.seen & bit:
            changes.records["duplicate"] += 1
            continue
        m.seen |= bit
        m.events = timeline_entry(m.events, e, m.submitted_ms)
        changes.messages[m.message_id] = m
        if e.status not in FINAL:
            changes.records["accepted"] += 1
            continue
        if m.final_status is not None:
            changes.records["conflict"] += 1
            continue
        give_up_ms = m.submitted_ms + settings.give_up_after_ms
        if e.status_ms > give_up_ms:
            _finalize(m, "unknown", "unknown", "", give_up_ms, changes)
            changes.records["conflict"] += 1
        else:
            _finalize(
                m, e.status, codes.cause(e.status, e.error_code), e.error_code, e.status_ms, changes
            )
            changes.records["accepted"] += 1
            if e.status != "delivered":
                code = codes.ambiguity(e.status, e.error_code)
                if code is not None:
                    changes.counters[("smswatch_sms_ambiguous_total", (gateway, code))] += 1
        finalized[m.message_id] = m
    _update_receipts(new_refs, finalized, view, settings, changes)
    return changes


def timeline_entry(events: str, e: SmsEvent, submitted_ms: int) -> str:
    """Append one status event to a message's timeline text.

    The text is compact and readable in the SQLite shell: entries `status±offset_ms[ code]`
    joined with `;`, the offset counted from the message's submit time, e.g.
    `submitted+0;enroute+812;undelivered+5321 MK:0001` (codes of only zeros, "no error", are left
    out). Later contradicting reports are kept too: the timeline records what the gateway said,
    the final status says what counted.
    """
    code = e.error_code.replace(";", ",") if e.error_code.strip("0") else ""  # "000": no error
    entry = f"{e.status}{e.status_ms - submitted_ms:+d}"
    if code:
        entry = f"{entry} {code}"
    return f"{events};{entry}" if events else entry


def parse_timeline(events: str, submitted_ms: int) -> list[tuple[str, int, str]]:
    """The inverse of `timeline_entry`: (status, status_ms, error_code), in arrival order."""
    out: list[tuple[str, int, str]] = []
    for entry in events.split(";") if events else ():
        head, _, code = entry.partition(" ")
        cut = max(head.rfind("+"), head.rfind("-"))
        if cut <= 0:
            continue
        try:
            offset = int(head[cut:])
        except ValueError:
            continue
        out.append((head[:cut], submitted_ms + offset, code))
    return out


def _update_receipts(
    new_refs: dict[str, Message],
    finalized: dict[str, Message],
    view: StateView,
    settings: Settings,
    changes: Changes,
) -> None:
    keys = set(new_refs) | {m.txn_ref for m in finalized.values() if m.txn_ref}
    if not keys:
        return
    for key, receipts in view.open_receipts(sorted(keys)).items():
        for r in receipts:
            r = changes.receipts.get(r.txn_id, r)
            m = new_refs.get(key)
            if r.message_id is None:
                if m is not None and _link(r, m, settings):
                    changes.receipts[r.txn_id] = r
                continue
            if m is not None and m.message_id != r.message_id:
                # An earlier message of the same transaction turned up after a later one (a
                # source that lists newest first): the receipt's SMS is the first submitted.
                linked = changes.messages.get(r.message_id) or view.messages([r.message_id]).get(
                    r.message_id
                )
                if _earlier(m, linked):
                    previous = r.message_id
                    r.message_id = None
                    if _link(r, m, settings):
                        changes.receipts[r.txn_id] = r
                        continue
                    r.message_id = previous
            if r.message_id in finalized:
                _receipt_from_message(r, finalized[r.message_id])
                changes.receipts[r.txn_id] = r


def give_up_messages(
    gateway: str, watermark_ms: int, view: StateView, settings: Settings, limit: int = 100_000
) -> Changes:
    """Messages with no final status by submit + give_up_after become `unknown`."""
    changes = Changes()
    due = view.messages_to_give_up(gateway, watermark_ms - settings.give_up_after_ms, limit)
    finalized: dict[str, Message] = {}
    for m in due:
        _finalize(m, "unknown", "unknown", "", m.submitted_ms + settings.give_up_after_ms, changes)
        finalized[m.message_id] = m
    _update_receipts({}, finalized, view, settings, changes)
    return changes


# --------------------------------------------------------------------------- transactions


def ingest_transactions(
    txns: Sequence[Transaction],
    acquirers: LabelBounds,
    view: StateView,
    settings: Settings,
) -> Changes:
    """Dedup one page of transactions, count them, open receipts and apply reversals."""
    changes = Changes()
    ids = list({t.txn_id for t in txns})
    seen = view.known_transactions(ids)
    fresh: list[Transaction] = []
    for t in txns:
        if t.txn_id in seen:
            changes.records["duplicate"] += 1
            continue
        seen.add(t.txn_id)
        fresh.append(t)
        changes.records["accepted"] += 1
    by_key: dict[str, list[Receipt]] = {}
    opened: dict[str, Receipt] = {}
    reversals: list[Transaction] = []
    for t in fresh:
        acquirer = acquirers(t.acquirer)
        changes.transactions.append(t)
        changes.counters[("smswatch_pos_transactions_total", (acquirer, t.result))] += 1
        if t.result == "reversed":
            reversals.append(t)
            continue
        if t.result != "approved" or not t.sms_expected:
            continue
        key = t.rrn if settings.join_transaction_field == "rrn" else t.txn_id
        r = Receipt(
            txn_id=t.txn_id,
            join_key=key,
            acquirer=acquirer,
            terminal_id=t.terminal_id,
            txn_ms=t.txn_ms,
            decide_ms=t.txn_ms + settings.missing_after_ms,
            outcome="missing",
        )
        opened[t.txn_id] = r
        changes.receipts[t.txn_id] = r
        changes.gauges[("smswatch_receipts_awaiting_sms", (acquirer,))] += 1
        if key:
            by_key.setdefault(key, []).append(r)
    if by_key:
        for key, m in view.first_messages(sorted(by_key)).items():
            for r in by_key[key]:
                _link(r, m, settings)
    if opened:
        for original, at_ms in view.orphan_reversals(sorted(opened)).items():
            opened[original].reversed_ms = at_ms
            changes.resolved_orphans.add(original)
    if reversals:
        originals = [t.original_txn_id for t in reversals if t.original_txn_id not in opened]
        existing = view.receipts(originals) if originals else {}
        for t in reversals:
            target = (
                opened.get(t.original_txn_id)
                or changes.receipts.get(t.original_txn_id)
                or existing.get(t.original_txn_id)
            )
            if target is None:
                if t.original_txn_id not in seen:  # original not seen yet: keep for later
                    previous = changes.orphan_reversals.get(t.original_txn_id, t.txn_ms)
                    changes.orphan_reversals[t.original_txn_id] = min(previous, t.txn_ms)
                continue
            if target.state != "open":
                continue
            previous_ms = target.reversed_ms
            target.reversed_ms = t.txn_ms if previous_ms is None else min(previous_ms, t.txn_ms)
            changes.receipts[target.txn_id] = target
    return changes


def _missing_cause(r: Receipt, view: StateView, settings: Settings) -> str:
    state = view.terminal_state_at(r.terminal_id, r.txn_ms) if r.terminal_id else None
    if state is None:
        return "integration"
    if not state.sms_notice_enabled or is_outdated(
        state.software_version, settings.min_software_version
    ):
        return "terminal_config"
    return "integration"


def decide_receipts(
    watermark_ms: int, view: StateView, settings: Settings, limit: int = 100_000
) -> Changes:
    """Decide every open receipt whose decision time all feeds have passed."""
    changes = Changes()
    for r in view.receipts_due(watermark_ms, limit):
        assert r.decide_ms is not None
        changes.receipts[r.txn_id] = r
        changes.gauges[("smswatch_receipts_awaiting_sms", (r.acquirer,))] -= 1
        if r.reversed_ms is not None and r.reversed_ms <= r.decide_ms:
            r.state = "reversed"
            continue
        r.state = "decided"
        if r.message_id is None:
            r.outcome, r.cause = "missing", _missing_cause(r, view, settings)
        assert r.outcome is not None and r.cause is not None
        changes.counters[("smswatch_receipts_total", (r.acquirer, r.outcome, r.cause))] += 1
        if r.outcome == "delivered" and r.notify_ms is not None:
            changes.observe("smswatch_receipt_notify_seconds", (r.acquirer,), r.notify_ms)
    return changes


# --------------------------------------------------------------------------- terminals


def ingest_terminals(
    terminals: Sequence[Terminal], view: StateView, acquirers: LabelBounds
) -> Changes:
    """Record the inventory snapshot and every state change it shows (for event-time lookups)."""
    changes = Changes()
    for t in terminals:
        changes.terminals.append(t)
        version = t.software_version
        if t.history:
            # Before the first reported flip, the setting was the opposite of that flip.
            _, first_enabled = t.history[0]
            changes.terminal_history.append((t.terminal_id, 0, not first_enabled, version))
            for at_ms, enabled in t.history:
                changes.terminal_history.append((t.terminal_id, at_ms, enabled, version))
        current = view.terminal(t.terminal_id)
        if t.history or current != TerminalState(t.sms_notice_enabled, version):
            changes.terminal_history.append(
                (t.terminal_id, t.changed_ms, t.sms_notice_enabled, version)
            )
    _ = acquirers
    return changes

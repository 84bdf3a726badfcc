"""The pipeline: dedup, classify and reconcile records into state changes and counter deltas.

Pure over records and state: it reads state through the `StateView` protocol and returns
`Changes`; the store applies them (and commits them with the cursor, in one transaction).
Every decision uses event time — the records' own timestamps and the feeds' watermarks —
so outcomes never depend on when a poll happened (DESIGN.md §2, outcome rules).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol, TypeVar

from exporter.catalogue import BUCKETS_SECONDS, OTHER, SMS_FINAL_STATUSES
from exporter.classify import FINAL, SMPP, UNLISTED, UNLISTED_CODES, CodeTable, code_text
from exporter.records import SmsEvent, Terminal, Transaction

#: One bit per normalized status: the dedup key of an event is (message_id, status).
STATUS_BITS: dict[str, int] = {
    name: 1 << i for i, name in enumerate(("submitted", "enroute", *SMS_FINAL_STATUSES))
}

#: A bit of `Message.seen` beside the status bits: the message is known from a report that
#: carried no submit time (`SmsEvent.submit_known` false).
SUBMIT_UNKNOWN = 1 << len(STATUS_BITS)

R = TypeVar("R")
LabelKey = tuple[str, tuple[str, ...]]
MessageKey = tuple[str, str]  # (gateway, message id)
ReceiptKey = tuple[str, str]  # (acquirer source, txn id)
_BUCKETS_MS = [bound * 1000 for bound in BUCKETS_SECONDS]
_BUCKET_LABELS = tuple(str(i) for i in range(len(_BUCKETS_MS) + 1))  # a bucket's index label


@lru_cache(maxsize=64)
def _histogram_series(histogram: str) -> tuple[str, str, str]:
    """The names a histogram's deltas are kept under: buckets, sum and count."""
    return f"{histogram}:bucket", f"{histogram}:sum_ms", f"{histogram}:count"


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
    #: The acquirer the gateway says the message is about ("" when it does not say).
    acquirer: str = ""
    stored: bool = False  # whether a row for it exists in the store already

    @property
    def key(self) -> MessageKey:
        """Message ids are unique per gateway only: (gateway, message id)."""
        return (self.gateway, self.message_id)


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
    #: The acquirer source that reported the transaction: transaction ids are unique per source.
    source: str = ""
    #: The gateway of the linked message (message ids are unique per gateway).
    message_gateway: str | None = None
    #: When the decision may be taken: the outcome time, held until no later transaction with
    #: the same key could still claim the linked message (its submit time + `max_skew`).
    due_ms: int | None = None
    #: The acquirer as the transaction record names it (the join's acquirer scope).
    txn_acquirer: str = ""

    @property
    def key(self) -> ReceiptKey:
        """Transaction ids are unique per acquirer source only: (source, txn id)."""
        return (self.source, self.txn_id)


@dataclass(frozen=True, slots=True)
class TerminalState:
    """A terminal's SMS notice setting and software version from a point in time on."""

    sms_notice_enabled: bool
    software_version: str


@dataclass(frozen=True, slots=True)
class StoredTerminal:
    """What the store holds of one terminal: its inventory row as `terminal_row` gives it
    (None when never stored or decommissioned) and the instants its history has a state from."""

    row: tuple[object, ...] | None
    history_since: frozenset[int]


def terminal_row(t: Terminal, source: str) -> tuple[object, ...]:
    """The inventory row of a terminal, in the store's column order after `terminal_id`."""
    return (
        source,
        t.merchant_id,
        t.acquirer,
        t.area,
        t.software_version,
        int(t.sms_notice_enabled),
        t.changed_ms,
        t.last_seen_ms,
    )


@dataclass(frozen=True)
class Settings:
    """Reconciliation parameters (from the config)."""

    missing_after_ms: int
    give_up_after_ms: int
    join_transaction_field: str = "rrn"
    min_software_version: str = ""
    #: How long before `txn_time` an SMS may be submitted and still be that transaction's
    #: (clock skew between the acquirer and the SMS platform): `reconcile.join.max_skew`.
    max_skew_ms: int = 60_000


class StateView(Protocol):
    """Read access to committed (and same-transaction) state, in batches."""

    def messages(self, gateway: str, ids: Sequence[str]) -> dict[str, Message]:
        """A gateway's messages by id (absent ids are left out)."""

    def messages_by_ref(self, txn_refs: Sequence[str]) -> dict[str, list[Message]]:
        """Every retained message (of any gateway) by txn_ref."""

    def receipts_by_key(self, join_keys: Sequence[str]) -> dict[str, list[Receipt]]:
        """Every retained receipt (any state, any source) by join key."""

    def receipts(self, source: str, txn_ids: Sequence[str]) -> dict[str, Receipt]:
        """A source's receipts (any state) by transaction id."""

    def known_transactions(self, source: str, txn_ids: Sequence[str]) -> set[str]:
        """Which of these transaction ids of a source were seen before."""

    def orphan_reversals(self, source: str, txn_ids: Sequence[str]) -> dict[str, int]:
        """A source's reversals seen before their original: original id → earliest reversal."""

    def messages_to_give_up(self, gateway: str, before_ms: int, limit: int) -> list[Message]:
        """Messages of a gateway without final status submitted before `before_ms`."""

    def receipts_due(self, before_ms: int, limit: int) -> list[Receipt]:
        """Open receipts whose decision may be taken before `before_ms`."""

    def terminal_state_at(self, terminal_id: str, at_ms: int) -> TerminalState | None:
        """A terminal's state at an instant, from the inventory history."""

    def terminal(self, terminal_id: str) -> TerminalState | None:
        """A terminal's current state."""

    def stored_terminals(self, terminal_ids: Sequence[str]) -> dict[str, StoredTerminal]:
        """What is stored of these terminals: inventory row and recorded history instants
        (terminals with neither are left out)."""


@dataclass
class Changes:
    """What one step of the pipeline changes: rows to write and metric deltas."""

    messages: dict[MessageKey, Message] = field(default_factory=dict)
    receipts: dict[ReceiptKey, Receipt] = field(default_factory=dict)
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
        bucket, total, count = _histogram_series(histogram)
        counters = self.counters
        counters[(bucket, (*labels, _BUCKET_LABELS[index]))] += 1
        counters[(total, labels)] += latency_ms
        counters[(count, labels)] += 1


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
    changes.messages[m.key] = m


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
    `smswatch_sms_ambiguous_total`. Message ids are scoped by `gateway`.
    """
    changes = Changes()
    known = view.messages(gateway, list({e.message_id for e in events}))
    touched: set[str] = set()  # join keys whose receipts may change
    # Per-event work is the ingest rate: counts are kept in locals and added once per page.
    messages, counters = changes.messages, changes.counters
    submitted: Counter[tuple[str, str]] = Counter()
    accepted = duplicate = conflict = 0
    give_up_after_ms = settings.give_up_after_ms
    for e in events:
        m = known.get(e.message_id)
        if m is None:
            m = Message(
                e.message_id,
                gateway,
                e.txn_ref,
                carriers(e.carrier),
                areas(e.area),
                e.phone,
                e.submitted_ms,
                0 if e.submit_known else SUBMIT_UNKNOWN,
                acquirer=e.acquirer,
            )
            known[e.message_id] = m
            submitted[(m.carrier, m.area)] += 1
            if m.txn_ref:
                touched.add(m.txn_ref)
        bit = STATUS_BITS[e.status]
        if m.seen & bit:
            duplicate += 1
            continue
        m.seen |= bit
        m.events = timeline_entry(m.events, e, m.submitted_ms)
        messages[(gateway, m.message_id)] = m
        if e.status not in FINAL:
            accepted += 1
            continue
        if m.final_status is not None:
            conflict += 1
            continue
        give_up_ms = m.submitted_ms + give_up_after_ms
        if e.status_ms > give_up_ms:
            _finalize(m, "unknown", "unknown", "", give_up_ms, changes)
            conflict += 1
        else:
            _finalize(
                m, e.status, codes.cause(e.status, e.error_code), e.error_code, e.status_ms, changes
            )
            accepted += 1
            if e.status != "delivered":
                code = codes.ambiguity(e.status, e.error_code)
                if code is not None:
                    changes.counters[("smswatch_sms_ambiguous_total", (gateway, code))] += 1
                if code == UNLISTED:  # which code it was: kept in the store, never a label
                    changes.counters[(UNLISTED_CODES, (gateway, code_text(e.error_code)))] += 1
        if m.txn_ref:
            touched.add(m.txn_ref)
    for (carrier, area), n in submitted.items():
        counters[("smswatch_sms_submitted_total", (gateway, carrier, area))] += n
    if submitted:
        changes.gauges[("smswatch_sms_pending", (gateway,))] += sum(submitted.values())
    for result, n in (("accepted", accepted), ("duplicate", duplicate), ("conflict", conflict)):
        if n:
            changes.records[result] += n
    relink(touched, view, settings, changes)
    return changes


def timeline_entry(events: str, e: SmsEvent, submitted_ms: int) -> str:
    """Append one status event to a message's timeline text.

    The text is compact and readable in the SQLite shell: entries `status±offset_ms[ code]`
    joined with `;`, the offset counted from the message's submit time, e.g.
    `submitted+0;enroute+812;undelivered+5321 MK:0001` (codes of only zeros, "no error", are left
    out). Later contradicting reports are kept too: the timeline records what the gateway said,
    the final status says what counted.
    """
    code = e.error_code
    if code and code.strip("0"):  # "000": no error
        entry = f"{e.status}{e.status_ms - submitted_ms:+d} {code.replace(';', ',')}"
    else:
        entry = f"{e.status}{e.status_ms - submitted_ms:+d}"
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


def _receipt_from_message(r: Receipt, m: Message | None, settings: Settings) -> None:
    """Point an open receipt at its SMS (or at none) and set when it may be decided.

    Without a message it is `missing` at `txn_time + missing_after`. With one, its outcome is
    the message's final status, at the message's final time; the decision is held until the
    feeds have passed `submitted + max_skew` too, since up to then a later transaction with
    the same key could still claim the message (`owner`).
    """
    if m is None:
        r.message_id = r.message_gateway = None
        r.decide_ms = r.due_ms = r.txn_ms + settings.missing_after_ms
        r.outcome, r.cause, r.notify_ms = "missing", None, None
        return
    r.message_id, r.message_gateway = m.message_id, m.gateway
    r.notify_ms = None
    if m.final_status is None or m.final_ms is None:
        r.decide_ms = r.due_ms = None
        r.outcome = r.cause = None
        return
    r.decide_ms = m.final_ms
    r.due_ms = max(m.final_ms, m.submitted_ms + settings.max_skew_ms)
    if m.final_status == "delivered":
        r.outcome, r.cause, r.notify_ms = "delivered", "none", m.final_ms - r.txn_ms
    elif m.final_status == "unknown":
        r.outcome, r.cause = "unknown", "unknown"
    else:
        r.outcome, r.cause = "failed", m.final_cause


def owner(m: Message, receipts: Sequence[Receipt], settings: Settings) -> Receipt | None:
    """The receipt an SMS belongs to, if any (each message satisfies at most one receipt).

    Among the receipts with the message's reference (and its acquirer, when the message names
    one): the latest transaction at or before the submit time, when the message was submitted
    by its `txn_time + missing_after` (a message with no known submit time: reported by then
    + `give_up_after`); else the earliest transaction within `max_skew` after the submit time
    (the two systems' clocks disagree). A reference reused later or by another acquirer
    therefore never links a receipt to somebody else's SMS.
    """
    grace = settings.missing_after_ms
    if m.seen & SUBMIT_UNKNOWN:
        grace += settings.give_up_after_ms
    before: Receipt | None = None
    after: Receipt | None = None
    for r in receipts:
        if m.acquirer and r.txn_acquirer and m.acquirer != r.txn_acquirer:
            continue
        rank = (r.txn_ms, r.source, r.txn_id)
        if r.txn_ms <= m.submitted_ms:
            if before is None or rank > (before.txn_ms, before.source, before.txn_id):
                before = r
        elif r.txn_ms <= m.submitted_ms + settings.max_skew_ms and (
            after is None or rank < (after.txn_ms, after.source, after.txn_id)
        ):
            after = r
    if before is not None and m.submitted_ms <= before.txn_ms + grace:
        return before
    return after


def relink(keys: set[str], view: StateView, settings: Settings, changes: Changes) -> None:
    """Recompute the SMS of every open receipt with one of these join keys.

    Reads every retained receipt and message of each key (plus this step's own changes), gives
    each message to its `owner`, and links each open receipt with the first submitted message
    it owns. Receipts whose link or outcome changed go into `changes`.
    """
    if not keys:
        return
    ordered = sorted(keys)
    receipts = view.receipts_by_key(ordered)
    for r in changes.receipts.values():
        if r.join_key in keys:
            known = receipts.setdefault(r.join_key, [])
            known[:] = [x for x in known if x.key != r.key]
            known.append(r)
    if not receipts:
        return
    messages = view.messages_by_ref([k for k in ordered if k in receipts])
    for m in changes.messages.values():
        if m.txn_ref in receipts:
            sent = messages.setdefault(m.txn_ref, [])
            sent[:] = [x for x in sent if x.message_id != m.message_id or x.gateway != m.gateway]
            sent.append(m)
    for key, group in receipts.items():
        owned: dict[ReceiptKey, Message] = {}
        for m in messages.get(key, ()):
            home = owner(m, group, settings)
            if home is None:
                continue
            first = owned.get(home.key)
            if first is None or (m.submitted_ms, m.gateway, m.message_id) < (
                first.submitted_ms,
                first.gateway,
                first.message_id,
            ):
                owned[home.key] = m
        for r in group:
            if r.state != "open":
                continue
            before = (r.message_id, r.message_gateway, r.decide_ms, r.due_ms, r.outcome, r.cause)
            _receipt_from_message(r, owned.get(r.key), settings)
            after = (r.message_id, r.message_gateway, r.decide_ms, r.due_ms, r.outcome, r.cause)
            if before != after or r.key in changes.receipts:
                changes.receipts[r.key] = r


def give_up_messages(
    gateway: str, watermark_ms: int, view: StateView, settings: Settings, limit: int = 100_000
) -> Changes:
    """Messages with no final status by submit + give_up_after become `unknown`."""
    changes = Changes()
    due = view.messages_to_give_up(gateway, watermark_ms - settings.give_up_after_ms, limit)
    for m in due:
        _finalize(m, "unknown", "unknown", "", m.submitted_ms + settings.give_up_after_ms, changes)
    relink({m.txn_ref for m in due if m.txn_ref}, view, settings, changes)
    return changes


# --------------------------------------------------------------------------- transactions


def ingest_transactions(
    txns: Sequence[Transaction],
    acquirers: LabelBounds,
    view: StateView,
    settings: Settings,
    source: str = "",
) -> Changes:
    """Dedup one page of transactions, count them, open receipts and apply reversals.

    Transaction ids (and reversals' original ids) are scoped by the acquirer `source`.
    """
    changes = Changes()
    ids = list({t.txn_id for t in txns})
    seen = view.known_transactions(source, ids)
    fresh: list[Transaction] = []
    for t in txns:
        if t.txn_id in seen:
            changes.records["duplicate"] += 1
            continue
        seen.add(t.txn_id)
        fresh.append(t)
        changes.records["accepted"] += 1
    keys: set[str] = set()
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
        if not key:  # no SMS can ever be linked to it: count it, open no receipt (issue 12)
            changes.counters[("smswatch_transactions_unjoinable_total", (acquirer,))] += 1
            continue
        r = Receipt(
            txn_id=t.txn_id,
            join_key=key,
            acquirer=acquirer,
            terminal_id=t.terminal_id,
            txn_ms=t.txn_ms,
            decide_ms=t.txn_ms + settings.missing_after_ms,
            outcome="missing",
            source=source,
            due_ms=t.txn_ms + settings.missing_after_ms,
            txn_acquirer=t.acquirer,
        )
        opened[t.txn_id] = r
        changes.receipts[r.key] = r
        changes.gauges[("smswatch_receipts_awaiting_sms", (acquirer,))] += 1
        if key:
            keys.add(key)
    if opened:
        for original, at_ms in view.orphan_reversals(source, sorted(opened)).items():
            opened[original].reversed_ms = at_ms
            changes.resolved_orphans.add(original)
    if reversals:
        originals = [t.original_txn_id for t in reversals if t.original_txn_id not in opened]
        existing = view.receipts(source, originals) if originals else {}
        for t in reversals:
            target = (
                opened.get(t.original_txn_id)
                or changes.receipts.get((source, t.original_txn_id))
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
            changes.receipts[target.key] = target
    relink(keys, view, settings, changes)
    return changes


def refuse_late(records: Sequence[R], horizon_ms: int, time_ms: Callable[[R], int]) -> list[R]:
    """The records at or after the prune horizon; older ones are refused (counted `late`).

    Before the horizon the state that dedups a record may have been pruned already, so a
    re-read record would be counted twice.
    """
    if horizon_ms < 0:
        return list(records)
    return [r for r in records if time_ms(r) >= horizon_ms]


def _missing_cause(r: Receipt, view: StateView, settings: Settings) -> str:
    state = view.terminal_state_at(r.terminal_id, r.txn_ms) if r.terminal_id else None
    if state is None:
        return "integration"
    if not state.sms_notice_enabled or is_outdated(
        state.software_version, settings.min_software_version
    ):
        return "terminal_config"
    return "integration"


def unobserved(start_ms: int, end_ms: int, windows: Sequence[tuple[int, int]]) -> bool:
    """Whether `[start_ms, end_ms]` meets a window `[from, to)` the exporter did not watch."""
    return any(start_ms < to and end_ms >= since for since, to in windows)


def decide_receipts(
    watermark_ms: int,
    view: StateView,
    settings: Settings,
    limit: int = 100_000,
    blind: Sequence[tuple[int, int]] = (),
    evidence_after_ms: int = 0,
) -> Changes:
    """Decide every open receipt whose decision time all feeds have passed.

    `blind` are the times `[from, to)` in which a push SMS source was not watched (the
    exporter's downtime, or before it first listened). A receipt with no SMS by its decision
    could have had one whose report came in such a time: from `txn_time` to `txn_time +
    missing_after + evidence_after_ms` (`give_up_after` for sources that report outcomes
    only). It is then `unknown` (counted in `smswatch_receipts_unobserved_total`), never
    `missing`.
    """
    changes = Changes()
    for r in view.receipts_due(watermark_ms, limit):
        assert r.decide_ms is not None
        changes.receipts[r.key] = r
        changes.gauges[("smswatch_receipts_awaiting_sms", (r.acquirer,))] -= 1
        if r.reversed_ms is not None and r.reversed_ms <= r.decide_ms:
            r.state = "reversed"
            continue
        r.state = "decided"
        evidence_end = r.txn_ms + settings.missing_after_ms + evidence_after_ms
        if r.message_id is None and unobserved(r.txn_ms, evidence_end, blind):
            r.outcome, r.cause = "unknown", "unknown"
            changes.counters[("smswatch_receipts_unobserved_total", (r.acquirer,))] += 1
        elif r.message_id is None:
            r.outcome, r.cause = "missing", _missing_cause(r, view, settings)
        assert r.outcome is not None and r.cause is not None
        changes.counters[("smswatch_receipts_total", (r.acquirer, r.outcome, r.cause))] += 1
        if r.outcome == "delivered" and r.notify_ms is not None:
            if r.notify_ms < 0:  # an SMS delivered before txn_time (clock skew): count, clamp
                changes.counters[("smswatch_receipt_notify_clamped_total", (r.acquirer,))] += 1
                r.notify_ms = 0
            changes.observe("smswatch_receipt_notify_seconds", (r.acquirer,), r.notify_ms)
    return changes


# --------------------------------------------------------------------------- terminals


def ingest_terminals(
    terminals: Sequence[Terminal],
    view: StateView,
    acquirers: LabelBounds,
    observed_ms: int | None = None,
    source: str | None = None,
) -> Changes:
    """Record the inventory snapshot and every state change it shows (for event-time lookups).

    History is append-only: a state once recorded keeps the software version it had, however
    often the same flips are reported again. A software version that changed since the last
    snapshot is recorded from the snapshot's time (`observed_ms`) on, unless the terminal's
    `changed_at` is later: the version it had before stays in force until then.

    What is stored of the snapshot's terminals is read in one batch, and only what differs is
    written: history rows not yet recorded and, given the `source` the rows are stored under,
    the inventory rows that changed (a terminal reported twice keeps its last row).
    """
    changes = Changes()
    stored = view.stored_terminals(list(dict.fromkeys(t.terminal_id for t in terminals)))
    nothing = StoredTerminal(None, frozenset())
    for t in terminals:
        known = stored.get(t.terminal_id, nothing)
        row = known.row
        current = None if row is None else TerminalState(bool(row[5]), str(row[4]))
        version = t.software_version
        history: list[tuple[str, int, bool, str]] = []
        if t.history and current is None:
            # First sight. Before the first reported flip, the setting was its opposite.
            _, first_enabled = t.history[0]
            history.append((t.terminal_id, 0, not first_enabled, version))
        for at_ms, enabled in t.history:  # rows already recorded stay as they are
            history.append((t.terminal_id, at_ms, enabled, version))
        if current != TerminalState(t.sms_notice_enabled, version):
            since = t.changed_ms
            upgraded = current is not None and current.software_version != version
            if upgraded and observed_ms is not None and observed_ms > since:
                since = observed_ms
            history.append((t.terminal_id, since, t.sms_notice_enabled, version))
        changes.terminal_history.extend(h for h in history if h[1] not in known.history_since)
    last = {t.terminal_id: t for t in terminals}
    changes.terminals.extend(
        t
        for terminal_id, t in last.items()
        if source is None or terminal_row(t, source) != stored.get(terminal_id, nothing).row
    )
    _ = acquirers
    return changes

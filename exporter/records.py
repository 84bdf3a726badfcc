"""Normalized records: what every source turns provider pages into.

Records are NamedTuples: immutable and cheap to build, which matters on the ingest hot path.

Timestamps are Unix milliseconds (event time). Phone and card numbers are already masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")


class SmsEvent(NamedTuple):
    """One status event of one message, as reported by an SMS gateway."""

    message_id: str
    txn_ref: str
    phone: str  # masked
    carrier: str
    area: str
    status: str  # normalized: submitted | enroute | delivered | undelivered | expired | ...
    error_code: str
    submitted_ms: int
    status_ms: int
    #: False when the provider reports no submit time (Tencent, Vonage DLR): `submitted_ms`
    #: is then the report's own time, no delivery latency is measured from it, and the
    #: message is taken as submitted in time for its receipt.
    submit_known: bool = True
    #: The acquirer the message is about, when the gateway reports it ("" when not): the RRN
    #: join is then scoped to that acquirer's receipts.
    acquirer: str = ""


class Transaction(NamedTuple):
    """One POS transaction record from an acquirer."""

    txn_id: str
    rrn: str
    terminal_id: str
    merchant_id: str
    acquirer: str
    amount: int
    currency: str
    pan: str  # masked: BIN + last 4 at most
    result: str  # approved | declined | reversed
    response_code: str
    txn_ms: int
    sms_expected: bool
    original_txn_id: str


class Terminal(NamedTuple):
    """One POS terminal of an acquirer's inventory."""

    terminal_id: str
    merchant_id: str
    acquirer: str
    area: str
    software_version: str
    sms_notice_enabled: bool
    changed_ms: int
    last_seen_ms: int
    #: Past flips of the SMS notice setting, (at_ms, enabled), oldest first, when the API
    #: reports them; they make the setting at any past instant exact.
    history: tuple[tuple[int, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a feed: its valid records, how many were invalid, and where to go next."""

    records: list[T]
    invalid: int
    next_cursor: str
    has_more: bool
    watermark_ms: int

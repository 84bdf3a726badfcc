"""Normalized records: what every source turns provider pages into.

Records are NamedTuples: immutable and cheap to build, which matters on the ingest hot path.

Timestamps are Unix milliseconds (event time). Phone and card numbers are already masked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


#: SQLite stores integers as signed 64-bit values.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def unstorable_reason(record: tuple[object, ...]) -> str:
    """Why a normalized record cannot be stored as it is, or "" when it can.

    JSON parses values that SQLite cannot hold: integers beyond 64 bits, strings with a lone
    surrogate (`"\\ud800"`), and `Infinity`/`NaN`. Such a record is refused on its own, so one
    bad item never fails the page (or push batch) it came in.
    """
    names = getattr(record, "_fields", ())
    for index, value in enumerate(record):
        name = names[index] if index < len(names) else str(index)
        problem = _value_problem(value)
        if problem:
            return f"field {name}: {problem}"
    return ""


def unstorable_records(records: Sequence[tuple[object, ...]]) -> dict[int, str]:
    """Positions of the records that cannot be stored, with `unstorable_reason` for each.

    On the ingest hot path: a page of records of one shape is checked column by column at C
    speed (one encode of each text column, the range of each integer column), and only a page
    that fails is checked record by record.
    """
    if _columns_storable(records):
        return {}
    reasons = {}
    for index, record in enumerate(records):
        reason = unstorable_reason(record)
        if reason:
            reasons[index] = reason
    return reasons


_TEXT, _WHOLE, _NONE = frozenset({str}), frozenset({int, bool}), type(None)


def _columns_storable(records: Sequence[tuple[object, ...]]) -> bool:
    """Whether every value of these records is surely storable (False: look closer)."""
    if not records or len({len(r) for r in records}) != 1:
        return not records
    for column in zip(*records, strict=True):
        kinds = set(map(type, column))
        if kinds <= _TEXT:
            try:
                "".join(column).encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif kinds <= _WHOLE:
            if min(column) < INT64_MIN or max(column) > INT64_MAX:
                return False
        elif kinds == {tuple}:
            nested = [item for value in column for item in value]
            if not _columns_storable(nested):
                return False
        elif not kinds <= {str, int, bool, _NONE} or not _values_storable(column):
            return False
    return True


def _values_storable(values: Sequence[object]) -> bool:
    """Whether a column of text, integers, booleans and None is storable."""
    texts = [v for v in values if type(v) is str]
    whole = [v for v in values if type(v) is int]
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not whole or (min(whole) >= INT64_MIN and max(whole) <= INT64_MAX)


def _value_problem(value: object) -> str:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "text that is not valid Unicode (a lone surrogate)"
        return ""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return "" if INT64_MIN <= value <= INT64_MAX else "integer outside the 64-bit range"
    if isinstance(value, float):
        return "" if math.isfinite(value) else "not a finite number"
    if isinstance(value, tuple):
        for item in value:
            problem = _value_problem(item)
            if problem:
                return problem
    return ""

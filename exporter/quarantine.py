"""Quarantined records: items that parsed but could not be stored, kept for inspection.

A record whose values SQLite cannot hold (an integer beyond 64 bits, a lone surrogate,
`Infinity`) is refused on its own: counted `smswatch_records_total{result="invalid"}` and kept
here with the reason, so the feed's cursor moves on and nothing else of its page is lost. What
is kept is safe to show: phone and card numbers masked, text made printable, length bounded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from exporter.privacy import mask_pan, mask_phone, scrub

#: At most this many characters of a quarantined record are kept.
MAX_RECORD_CHARS = 2000
_MASKS = {"phone": mask_phone, "pan": mask_pan}


@dataclass(frozen=True)
class QuarantinedRecord:
    """One refused record: when, from which source, what kind, why, and what it held."""

    at_ms: int
    source: str
    kind: str  # SmsEvent | Transaction | Terminal
    reason: str
    record: str  # JSON of the masked, printable fields


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, tuple | list):
        return [_safe(item) for item in value]
    return str(value)


def describe(record: tuple[object, ...]) -> str:
    """A record as printable JSON, phone and card numbers masked again, length bounded."""
    names = getattr(record, "_fields", ())
    fields: dict[str, Any] = {}
    for index, value in enumerate(record):
        name = names[index] if index < len(names) else str(index)
        safe = _safe(value)
        if name in _MASKS and isinstance(safe, str):
            safe = _MASKS[name](safe)
        fields[name] = safe
    # Like every stored record: phone and card fields masked, other fields (ids, times) as read.
    text = json.dumps(fields, ensure_ascii=True, separators=(",", ":"))
    return text if len(text) <= MAX_RECORD_CHARS else text[: MAX_RECORD_CHARS - 1] + "…"


def quarantined(
    record: tuple[object, ...], reason: str, source: str, at_ms: int
) -> QuarantinedRecord:
    """The quarantine entry of one refused record."""
    return QuarantinedRecord(
        at_ms, source, type(record).__name__, scrub(reason)[:500], describe(record)
    )

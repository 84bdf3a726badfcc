"""What a support agent may search by, and the validation that turns bad input into a clear 400.

Keys (exactly one per lookup):
- `rrn`: the retrieval reference number printed on the receipt (1–32 letters or digits);
- `txn_id`: the acquirer's transaction id;
- `terminal` + `at` [+ `window`]: the terminal id and the time of the payment;
- `phone_last4` + `at` [+ `window`]: the last 4 digits of the cardholder's phone and the time.

`at` is RFC 3339 with an offset (`2026-11-26T12:05:00+08:00`), or a local time without one
(`2026-11-26 12:05`) read in the configured time zone. `window` (default 10m) is ± around `at`
and may not exceed `max_window`. Error messages never repeat the value that was given: a full
phone or card number typed into the wrong field must not be echoed, logged or audited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from exporter.errors import SmswatchError
from exporter.timestamps import format_duration_ms, parse_duration_ms

KINDS: tuple[str, ...] = ("rrn", "txn_id", "terminal", "phone_last4")
TIMED_KINDS: frozenset[str] = frozenset({"terminal", "phone_last4"})
PARAMETERS: tuple[str, ...] = (*KINDS, "at", "window")

_RRN = re.compile(r"[A-Za-z0-9]{1,32}")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_LAST4 = re.compile(r"\d{4}")
_PHONE_LIKE = re.compile(r"\+?(?:86)?1[3-9]\d{9}")
_CARD_LIKE = re.compile(r"[2-6]\d{12,18}")
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?")
_PARAMETER_NAME = re.compile(r"[a-z_]{1,20}")


class BadLookup(SmswatchError):
    """A lookup request that cannot be answered as asked (HTTP 400, CLI exit code 2)."""

    exit_code = 2

    def __init__(self, message: str, kind: str = "") -> None:
        self.kind = kind  # the key kind when known (for the audit), never the value
        super().__init__(message)


@dataclass(frozen=True)
class LookupQuery:
    """A validated lookup: one key, and the time range for the timed keys."""

    kind: str
    value: str
    at_ms: int | None = None
    window_ms: int | None = None

    @property
    def from_ms(self) -> int:
        """Start of the searched time range (inclusive)."""
        assert self.at_ms is not None and self.window_ms is not None
        return self.at_ms - self.window_ms

    @property
    def to_ms(self) -> int:
        """End of the searched time range (inclusive)."""
        assert self.at_ms is not None and self.window_ms is not None
        return self.at_ms + self.window_ms

    @property
    def audit_key(self) -> str:
        """The key as the audit records it: never more of a phone number than its last 4."""
        return f"*******{self.value}" if self.kind == "phone_last4" else self.value


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _refuse_personal(kind: str, value: str) -> None:
    """Refuse a phone or card number typed into an id field (it is never stored anyway)."""
    if _PHONE_LIKE.fullmatch(value):
        raise BadLookup(
            f"{kind} looks like a phone number: search by phone_last4 and at instead", kind
        )
    if _CARD_LIKE.fullmatch(value) and _luhn(value):
        raise BadLookup(
            f"{kind} looks like a card number: card numbers are never stored; search by rrn, "
            "txn_id, or terminal and at",
            kind,
        )


def parse_at(text: str, zone: ZoneInfo) -> int:
    """An instant from RFC 3339 (with offset) or a local time in `zone`, as Unix ms."""
    value = text.strip()
    try:
        if _LOCAL_TIME.fullmatch(value):
            moment = datetime.fromisoformat(value.replace(" ", "T")).replace(tzinfo=zone)
        else:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError("no offset")
    except ValueError:
        raise BadLookup(
            "at is not a time: use e.g. 2026-11-26T12:05 (local time) or "
            "2026-11-26T04:05:00Z (RFC 3339 with an offset)"
        ) from None
    return int(moment.timestamp() * 1000)


def parse_query(
    params: Mapping[str, str],
    zone: ZoneInfo,
    *,
    default_window_ms: int,
    max_window_ms: int,
) -> LookupQuery:
    """Validate lookup parameters (values already single strings) into a `LookupQuery`."""
    for name in params:
        if name not in PARAMETERS:
            shown = f" {name!r}" if _PARAMETER_NAME.fullmatch(name) else ""
            raise BadLookup(
                f"unknown parameter{shown}: use one of rrn, txn_id, terminal (with at), "
                "phone_last4 (with at); window is optional"
            )
    given = [kind for kind in KINDS if (params.get(kind) or "").strip()]
    if not given:
        raise BadLookup(
            "say what to look up: rrn, txn_id, terminal with at, or phone_last4 with at"
        )
    if len(given) > 1:
        raise BadLookup(f"one key at a time, got {' and '.join(given)}")
    kind = given[0]
    value = params[kind].strip()
    at_text = (params.get("at") or "").strip()
    window_text = (params.get("window") or "").strip()
    if kind not in TIMED_KINDS:
        if at_text or window_text:
            raise BadLookup(f"at and window go with terminal or phone_last4, not with {kind}", kind)
        pattern = _RRN if kind == "rrn" else _IDENTIFIER
        if not pattern.fullmatch(value):
            what = (
                "1 to 32 letters or digits"
                if kind == "rrn"
                else "1 to 64 letters, digits, '.', '_', ':' or '-'"
            )
            raise BadLookup(f"{kind} is malformed: it must be {what}", kind)
        _refuse_personal(kind, value)
        return LookupQuery(kind, value)
    if kind == "phone_last4":
        if not _LAST4.fullmatch(value):
            raise BadLookup("phone_last4 must be exactly the last 4 digits of the phone", kind)
    else:
        if not _IDENTIFIER.fullmatch(value):
            raise BadLookup(
                "terminal is malformed: it must be 1 to 64 letters, digits, '.', '_', ':' or '-'",
                kind,
            )
        _refuse_personal(kind, value)
    if not at_text:
        raise BadLookup(f"{kind} needs at: the time of the payment", kind)
    at_ms = parse_at(at_text, zone)
    window_ms = default_window_ms
    if window_text:
        try:
            window_ms = parse_duration_ms(window_text)
        except ValueError:
            raise BadLookup("window is not a duration: use e.g. 10m or 1h", kind) from None
        if window_ms <= 0:
            raise BadLookup("window must be longer than 0", kind)
        if window_ms > max_window_ms:
            raise BadLookup(
                f"window {format_duration_ms(window_ms)} is too wide: at most "
                f"{format_duration_ms(max_window_ms)} either side of at (ask the cardholder "
                "for the time of the payment)",
                kind,
            )
    return LookupQuery(kind, value, at_ms, window_ms)

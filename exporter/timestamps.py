"""Event-time handling: every timestamp inside smswatch is an int of Unix milliseconds (UTC).

Integer milliseconds keep latency arithmetic and histogram bucketing exact, so the exporter
and the simulator's ground truth agree to the last message.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def parse_rfc3339_ms(value: str) -> int:
    """Parse an RFC 3339 timestamp (``2026-11-26T12:00:00.123Z``) into Unix milliseconds.

    A timestamp without a UTC offset is refused: event time must be unambiguous.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a timestamp: {value!r}")
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a UTC offset: {value!r}")
    return (parsed - _EPOCH) // _MS


def format_rfc3339_ms(ms: int) -> str:
    """Format Unix milliseconds as RFC 3339 UTC with millisecond precision."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_duration_ms(value: str | int | float) -> int:
    """Parse a Prometheus-style duration (``90s``, ``5m``, ``1h30m``, ``2d``, ``250ms``) to ms.

    A bare number is taken as seconds.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return round(value * 1000)
    text = str(value).strip()
    match = _DURATION.match(text)
    if not text or not match or not any(match.groups()):
        raise ValueError(f"not a duration (use e.g. 30s, 5m, 1h): {value!r}")
    days, hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    return (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000 + millis


def format_duration_ms(ms: int) -> str:
    """Format milliseconds as the shortest Prometheus-style duration (``5m``, ``1h30m``, ``250ms``).

    The inverse of :func:`parse_duration_ms` for non-negative integers; ``0`` is ``0s``.
    """
    if ms < 0:
        raise ValueError(f"negative duration: {ms!r}")
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    if ms:
        parts.append(f"{ms}ms")
    return "".join(parts)

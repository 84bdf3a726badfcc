"""Report periods: calendar-aligned windows in a time zone, their chart buckets and report ids.

A period is the half-open interval [start, end) of two timezone-aware instants.

- ``daily``: the last full calendar day that ended at or before `end` (local midnight to
  midnight); with `end` = 2026-03-11 01:00 the period is 2026-03-10.
- ``weekly``: the last full ISO week (Monday 00:00 to Monday 00:00) that ended at or before `end`.
- ``monthly``: the last full calendar month that ended at or before `end`.
- ``custom``: exactly [from, to).

Calendar arithmetic is done on local dates, so days are 23 or 25 hours long across a DST change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exporter.errors import ConfigError

PERIOD_KINDS: tuple[str, ...] = ("daily", "weekly", "monthly", "custom")

#: Charts and per-bucket CSV rows use hourly buckets up to this length, daily ones up to
#: `_DAILY_UP_TO`, monthly ones beyond.
_HOURLY_UP_TO = timedelta(days=2)
_DAILY_UP_TO = timedelta(days=92)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Period:
    """One report period [start, end) and the zone its calendar is read in."""

    kind: str
    start: datetime
    end: datetime
    zone: ZoneInfo

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(self.zone)

    @property
    def local_end(self) -> datetime:
        return self.end.astimezone(self.zone)

    @property
    def report_id(self) -> str:
        """A stable name of the period: ``daily-2026-03-10``, ``weekly-2026-W11``,
        ``monthly-2026-03``, ``custom-20260310T0000-20260311T1200``."""
        s = self.local_start
        if self.kind == "daily":
            return f"daily-{s:%Y-%m-%d}"
        if self.kind == "weekly":
            year, week, _ = s.isocalendar()
            return f"weekly-{year}-W{week:02d}"
        if self.kind == "monthly":
            return f"monthly-{s:%Y-%m}"
        return f"custom-{s:%Y%m%dT%H%M}-{self.local_end:%Y%m%dT%H%M}"


def load_zone(name: str, *, path: str = "--timezone") -> ZoneInfo:
    """The IANA zone `name`; an unknown zone is a `ConfigError` naming `path`."""
    try:
        if not name or name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)", path=path
        ) from exc


def parse_time(text: str, zone: ZoneInfo, *, path: str, now: datetime | None = None) -> datetime:
    """Parse a time given on the command line into an aware UTC datetime.

    Accepted: ``now``; RFC 3339 with an offset (``2026-03-10T16:00:00Z``); a local date
    (``2026-03-10``, midnight in `zone`); a local date and time (``2026-03-10T08:30``); Unix
    seconds (``1773158400``).
    """
    value = text.strip()
    try:
        if value == "now":
            return (now or datetime.now(UTC)).astimezone(UTC)
        if value.isdigit():
            return datetime.fromtimestamp(int(value), UTC)
        if _DATE.match(value):
            return _local_midnight(date.fromisoformat(value), zone)
        iso = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        parsed = datetime.fromisoformat(iso)
    except (ValueError, OverflowError) as exc:
        raise ConfigError(
            f"not a time: {text!r} (use RFC 3339, YYYY-MM-DD or YYYY-MM-DDTHH:MM)", path=path
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _first_of_month(day: date) -> date:
    return day.replace(day=1)


def _previous_month(first: date) -> date:
    return (first - timedelta(days=1)).replace(day=1)


def resolve_period(
    kind: str,
    zone: ZoneInfo,
    *,
    end: datetime | None = None,
    start: datetime | None = None,
    now: datetime | None = None,
) -> Period:
    """The period of `kind` (see the module docstring); `end` defaults to `now`.

    For ``custom``, `start` and `end` are the period itself. A period that is empty, reversed
    or not yet over at `now` is a `ConfigError`.
    """
    current = (now or datetime.now(UTC)).astimezone(UTC)
    if kind not in PERIOD_KINDS:
        raise ConfigError(
            f"must be one of {', '.join(PERIOD_KINDS)}, got {kind!r}", path="--period"
        )
    if kind == "custom":
        if start is None or end is None:
            raise ConfigError("a custom period needs both --from and --to", path="--period")
        if end <= start:
            raise ConfigError(
                f"the period ends before it starts ({_show(end, zone)} <= {_show(start, zone)})",
                path="--to",
            )
        period = Period(kind, start.astimezone(UTC), end.astimezone(UTC), zone)
    else:
        if start is not None:
            raise ConfigError(f"--from only goes with --period custom, not {kind}", path="--from")
        anchor = (end or current).astimezone(zone)
        today = anchor.date()
        if kind == "daily":
            first, last = today - timedelta(days=1), today
        elif kind == "weekly":
            monday = today - timedelta(days=today.weekday())
            first, last = monday - timedelta(days=7), monday
        else:
            this_month = _first_of_month(today)
            first, last = _previous_month(this_month), this_month
        period = Period(kind, _local_midnight(first, zone), _local_midnight(last, zone), zone)
    if period.end > current:
        raise ConfigError(
            f"the period {_show(period.start, zone)} – {_show(period.end, zone)} is not over yet",
            path="--to" if kind == "custom" else "--end",
        )
    return period


def previous_period(period: Period) -> Period:
    """The period just before `period`, of the same calendar kind (or same length if custom)."""
    zone = period.zone
    if period.kind == "custom":
        return Period("custom", period.start - (period.end - period.start), period.start, zone)
    first = period.local_start.date()
    if period.kind == "daily":
        before = first - timedelta(days=1)
    elif period.kind == "weekly":
        before = first - timedelta(days=7)
    else:
        before = _previous_month(first)
    return Period(period.kind, _local_midnight(before, zone), period.start, zone)


def bucket_size(period: Period) -> str:
    """`hour`, `day` or `month`: the size of the chart buckets of `period`."""
    length = period.end - period.start
    if length <= _HOURLY_UP_TO:
        return "hour"
    if length <= _DAILY_UP_TO:
        return "day"
    return "month"


def bucket_boundaries(period: Period) -> list[datetime]:
    """Boundaries t0 = start < t1 < … < tn = end of the chart buckets, aligned to the local
    calendar (the first and last bucket are partial when a custom period is not aligned)."""
    size = bucket_size(period)
    points = [period.start]
    if size == "hour":
        # Align to local whole hours (zones with half-hour offsets too).
        local = period.local_start
        offset = timedelta(
            minutes=local.minute, seconds=local.second, microseconds=local.microsecond
        )
        step = timedelta(hours=1)
        cursor = period.start - offset + step
        while cursor < period.end:
            points.append(cursor)
            cursor += step
    else:
        day = period.local_start.date()
        while True:
            if size == "day":
                day = day + timedelta(days=1)
            else:
                day = (_first_of_month(day) + timedelta(days=32)).replace(day=1)
            moment = _local_midnight(day, period.zone)
            if moment >= period.end:
                break
            if moment > period.start:
                points.append(moment)
    points.append(period.end)
    return points


def _show(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

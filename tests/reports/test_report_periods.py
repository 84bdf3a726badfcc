"""Report periods follow the calendar of the report's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exporter.errors import ConfigError
from exporter.reports.periods import (
    bucket_boundaries,
    bucket_size,
    load_zone,
    parse_time,
    previous_period,
    resolve_period,
)

SHANGHAI = load_zone("Asia/Shanghai")
BERLIN = load_zone("Europe/Berlin")
NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_daily_is_the_last_full_local_day_before_the_end() -> None:
    # 2026-03-11 01:00 in Shanghai is 2026-03-10T17:00Z.
    period = resolve_period("daily", SHANGHAI, end=utc("2026-03-10T17:00:00Z"), now=NOW)
    assert (period.start, period.end) == (utc("2026-03-09T16:00:00Z"), utc("2026-03-10T16:00:00Z"))
    assert period.report_id == "daily-2026-03-10"


def test_an_end_exactly_at_midnight_reports_the_day_that_just_ended() -> None:
    period = resolve_period("daily", SHANGHAI, end=utc("2026-03-10T16:00:00Z"), now=NOW)
    assert period.report_id == "daily-2026-03-10"


def test_weekly_is_the_last_full_iso_week() -> None:
    # Wednesday 2026-03-11 → the week Monday 2026-03-02 to Monday 2026-03-09.
    period = resolve_period("weekly", SHANGHAI, end=utc("2026-03-11T04:00:00Z"), now=NOW)
    assert period.local_start.date().isoformat() == "2026-03-02"
    assert period.local_end.date().isoformat() == "2026-03-09"
    assert period.local_start.weekday() == 0
    assert period.report_id == "weekly-2026-W10"


def test_monthly_is_the_last_full_calendar_month() -> None:
    period = resolve_period("monthly", SHANGHAI, end=utc("2026-03-01T00:30:00Z"), now=NOW)
    assert period.local_start.isoformat() == "2026-02-01T00:00:00+08:00"
    assert period.local_end.isoformat() == "2026-03-01T00:00:00+08:00"
    assert period.report_id == "monthly-2026-02"
    january = previous_period(period)
    assert january.report_id == "monthly-2026-01"
    assert january.end == period.start


def test_days_follow_daylight_saving_time() -> None:
    # Berlin springs forward on 2026-03-29: that day has 23 hours.
    period = resolve_period("daily", BERLIN, end=utc("2026-03-30T06:00:00Z"), now=NOW)
    assert period.report_id == "daily-2026-03-29"
    assert period.seconds == 23 * 3600
    assert len(bucket_boundaries(period)) == 24  # 23 hourly buckets


def test_custom_periods_and_their_buckets() -> None:
    start, end = utc("2026-03-10T06:30:00Z"), utc("2026-03-10T09:00:00Z")
    period = resolve_period("custom", SHANGHAI, start=start, end=end, now=NOW)
    assert period.report_id == "custom-20260310T1430-20260310T1700"
    assert bucket_size(period) == "hour"
    assert [b.astimezone(SHANGHAI).strftime("%H:%M") for b in bucket_boundaries(period)] == [
        "14:30",
        "15:00",
        "16:00",
        "17:00",
    ]
    assert previous_period(period).end == start
    assert previous_period(period).seconds == period.seconds


def test_bucket_sizes_grow_with_the_period() -> None:
    week = resolve_period("weekly", SHANGHAI, end=utc("2026-03-11T04:00:00Z"), now=NOW)
    assert bucket_size(week) == "day" and len(bucket_boundaries(week)) == 8
    year = resolve_period(
        "custom",
        SHANGHAI,
        start=utc("2025-01-01T00:00:00Z"),
        end=utc("2026-01-01T00:00:00Z"),
        now=NOW,
    )
    assert bucket_size(year) == "month"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-10", "2026-03-09T16:00:00+00:00"),
        ("2026-03-10T08:30", "2026-03-10T00:30:00+00:00"),
        ("2026-03-10T08:30:00+08:00", "2026-03-10T00:30:00+00:00"),
        ("2026-03-10T00:30:00Z", "2026-03-10T00:30:00+00:00"),
        ("1773102600", "2026-03-10T00:30:00+00:00"),
    ],
)
def test_times_are_read_in_the_report_zone(text: str, expected: str) -> None:
    assert parse_time(text, SHANGHAI, path="--end").isoformat() == expected


def test_bad_input_names_the_option() -> None:
    with pytest.raises(ConfigError, match=r"--timezone: unknown time zone 'Mars/Base'"):
        load_zone("Mars/Base")
    with pytest.raises(ConfigError, match=r"--end: not a time"):
        parse_time("yesterday-ish", SHANGHAI, path="--end")
    with pytest.raises(ConfigError, match=r"--to: the period ends before it starts"):
        resolve_period(
            "custom",
            SHANGHAI,
            start=utc("2026-03-10T00:00:00Z"),
            end=utc("2026-03-09T00:00:00Z"),
            now=NOW,
        )
    with pytest.raises(ConfigError, match=r"not over yet"):
        resolve_period(
            "custom",
            SHANGHAI,
            start=utc("2026-11-26T00:00:00Z"),
            end=utc("2026-11-27T00:00:00Z"),
            now=NOW,
        )

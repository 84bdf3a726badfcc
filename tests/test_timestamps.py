"""RFC 3339 parsing: the feeds' usual form and every other accepted form give the same instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exporter.timestamps import format_rfc3339_ms, parse_rfc3339_ms


@pytest.mark.parametrize(
    "ms", [0, 999, 1_764_115_200_007, 1_764_115_259_999, -1, -86_400_001, 253_402_300_799_999]
)
def test_the_usual_form_is_the_same_instant_as_the_general_parse(ms: int) -> None:
    text = format_rfc3339_ms(ms)
    assert len(text) == 24 and text.endswith("Z")
    assert parse_rfc3339_ms(text) == ms
    assert parse_rfc3339_ms(text[:-1] + "+00:00") == ms  # the general path
    assert parse_rfc3339_ms(f" {text} ") == ms


def test_offsets_and_other_precisions_are_read_exactly() -> None:
    assert parse_rfc3339_ms("2026-11-26T08:00:00.123+08:00") == parse_rfc3339_ms(
        "2026-11-26T00:00:00.123Z"
    )
    assert parse_rfc3339_ms("2026-11-26T00:00:00.1Z") == parse_rfc3339_ms(
        "2026-11-26T00:00:00.100Z"
    )
    at = datetime(2026, 11, 26, tzinfo=UTC) + timedelta(milliseconds=123)
    assert parse_rfc3339_ms("2026-11-26T00:00:00.123456Z") == (
        at - datetime(1970, 1, 1, tzinfo=UTC)
    ) // timedelta(milliseconds=1)


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-30T00:00:00.000Z",  # no such day
        "2026-11-26T24:00:00.000Z",
        "2026-11-26T12:00:60.000Z",
        "2026-11-26T12:00:00.000",  # no offset
        "２０26-11-26T12:00:00.000Z",  # non-ASCII digits
        "",
    ],
)
def test_impossible_or_ambiguous_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339_ms(text)

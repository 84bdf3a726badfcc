"""The push receivers' query and form decoding gives what the standard library gives.

`exporter.web.query` replaces `urllib.parse.parse_qs` on every request for speed; a provider's
callback must still mean the same thing. Compared on recorded Kannel and Jasmin callbacks, on
the edge cases the standard library defines, and on 20,000 seeded random strings built from
the characters that matter (separators, escapes valid and broken, UTF-8 split across
escapes, `+`, non-ASCII text).
"""

from __future__ import annotations

import random
from urllib.parse import parse_qs, quote

import pytest

from exporter.web.query import parse_query

KANNEL = (
    "type=1&reply=" + quote("id:0A1B2C sub:001 dlvrd:001 submit date:2611300940 "
    "done date:2611300941 stat:DELIVRD err:000 text:Your card ending 1234") +
    "&smsc=fake&msg=bank-0042&ref=612345678901&carrier=China%20Mobile&area=%E5%8C%97%E4%BA%AC"
)  # fmt: skip

EDGES = [
    "", "&", "&&", "=", "a", "a=", "=b", "a=b=c", "a=1&a=2&a=", "a+b=c+d", "%", "%2", "%zz",
    "%%41", "a=%4", "a=%41%42%4", "%C3%A9", "%C3", "%C3a%A9", "%E2%82%AC", "%E2%82", "%ff%FE",
    "é=ü", "x=%C3%A9é%C3", "a;b=c", "+=+", "%2B=%26", "a=b&&c=d&",
]  # fmt: skip

PIECES = [
    "a", "b", "Z", "0", "9", "=", "&", "+", ";", "%", "%4", "%41", "%7e", "%C3", "%A9", "%E2",
    "%82", "%AC", "%zz", "%G1", "%20", "%26", "%3D", "%2B", "é", "北", "\x00", " ", "%F0%9F",
]  # fmt: skip


def random_queries(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(PIECES, k=rng.randint(0, 16))) for _ in range(count)]


@pytest.mark.parametrize("keep_blank", [False, True])
def test_recorded_callbacks_and_edge_cases_decode_as_the_standard_library_does(
    keep_blank: bool,
) -> None:
    for text in [KANNEL, *EDGES]:
        assert parse_query(text, keep_blank) == parse_qs(text, keep_blank), text
    fields = parse_query(KANNEL)
    assert fields["reply"][0].startswith("id:0A1B2C sub:001")
    assert fields["area"] == ["北京"]


@pytest.mark.parametrize("keep_blank", [False, True])
def test_random_strings_decode_as_the_standard_library_does(keep_blank: bool) -> None:
    for text in random_queries(16, 10_000):
        assert parse_query(text, keep_blank) == parse_qs(text, keep_blank), repr(text)

"""SMPP delivery-receipt text and CMPP status reports, and the provider code tables."""

from __future__ import annotations

import random
import struct

import pytest

from exporter.classify import ALIYUN, SMPP, SMPP_8X8, SMPP_GSM_MAP, TENCENT, TWILIO, VONAGE
from exporter.sources.smpp import (
    SMPP_STATS,
    SmscTime,
    _laid_out,
    cmpp_msg_id_parts,
    parse_cmpp_report,
    parse_receipt,
    parse_smsc_date,
    scanned_fields,
)


def test_a_full_receipt_is_read_with_naive_dates() -> None:
    receipt = parse_receipt(
        "id:0123456789 sub:001 dlvrd:001 submit date:2611261200 done date:261126120105 "
        "stat:DELIVRD err:000 Text:Card *1234 spent"
    )
    assert receipt is not None
    assert (receipt.message_id, receipt.stat, receipt.err) == ("0123456789", "DELIVRD", "000")
    assert (receipt.sub, receipt.dlvrd) == (1, 1)
    assert receipt.submitted == SmscTime(2026, 11, 26, 12, 0, None)  # minute precision
    assert receipt.done == SmscTime(2026, 11, 26, 12, 1, 5)  # with seconds
    # No zone in the text: only a caller that knows the SMSC's offset makes it event time.
    assert receipt.done.to_ms(480) == receipt.done.to_ms(0) - 8 * 3_600_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ID:abc STAT:undeliv ERR:MK:0001", ("abc", "UNDELIV", "MK:0001")),  # case, CMPP err
        ("stat:EXPIRED", ("", "EXPIRED", "")),  # only the stat
        ("id:x submit_date:2611261200 stat:REJECTD err:34 text:", ("x", "REJECTD", "34")),
        ("text:id:zz stat:DELIVRD err:0 id:real", ("real", "DELIVRD", "0")),  # text first
    ],
)
def test_receipts_missing_fields_or_odd_spelling_still_parse(
    text: str, expected: tuple[str, str, str]
) -> None:
    receipt = parse_receipt(text)
    assert receipt is not None
    assert (receipt.message_id, receipt.stat, receipt.err) == expected


@pytest.mark.parametrize("text", ["", "ACK/", "id:1 stat:FOO err:0", "hello world"])
def test_text_without_a_known_stat_is_not_a_receipt(text: str) -> None:
    assert parse_receipt(text) is None


def test_bad_dates_are_dropped_not_guessed() -> None:
    assert parse_smsc_date("2613321200") is None  # month 13
    assert parse_smsc_date("26112612") is None  # too short
    assert parse_receipt("id:9 done date:2613321200 stat:UNDELIV").done is None  # type: ignore[union-attr]


def cmpp_report(stat: str, dest_len: int) -> bytes:
    msg_id = struct.pack(
        ">Q", (11 << 60) | (26 << 55) | (12 << 50) | (1 << 44) | (5 << 38) | (1234 << 16) | 7
    )
    return (
        msg_id
        + stat.encode().ljust(7, b"\0")
        + b"2611261200"
        + b"2611261201"
        + b"13812345678".ljust(dest_len, b"\0")
        + struct.pack(">I", 42)
    )


@pytest.mark.parametrize(("dest_len", "version"), [(21, 2), (32, 3)])
def test_cmpp_reports_of_both_versions(dest_len: int, version: int) -> None:
    report = parse_cmpp_report(cmpp_report("MK:0001", dest_len))
    assert report is not None
    assert (report.stat, report.version, report.smsc_sequence) == ("MK:0001", version, 42)
    assert report.destination == "138****5678"  # masked on the way in
    assert report.done == SmscTime(2026, 11, 26, 12, 1, None)
    parts = cmpp_msg_id_parts(report.message_id)
    assert (parts["month"], parts["day"], parts["gateway"], parts["sequence"]) == (11, 26, 1234, 7)
    assert SMPP.cause("undelivered", report.stat) == "invalid_number"


def test_cmpp_report_of_a_wrong_length_is_refused() -> None:
    assert parse_cmpp_report(b"\0" * 59) is None


@pytest.mark.parametrize(
    ("table", "status", "code", "cause"),
    [
        (TWILIO, "undelivered", "30003", "unreachable"),
        (TWILIO, "undelivered", "30007", "filtered"),
        (TWILIO, "failed", "21211", "invalid_number"),
        (TWILIO, "failed", "", "gateway"),  # failed without a code: Twilio never sent it
        (VONAGE, "failed", "2", "unreachable"),
        (VONAGE, "rejected", "9", "filtered"),
        (ALIYUN, "undelivered", "isv.BUSINESS_LIMIT_CONTROL", "throttled"),
        (ALIYUN, "undelivered", "MOBILE_NOT_ON_SERVICE", "unreachable"),
        (TENCENT, "rejected", "SUBFAIL", "invalid_number"),
        (TENCENT, "undelivered", "COMFAIL", "gateway"),
        (SMPP_8X8, "undelivered", "1", "unreachable"),  # 8x8: absent subscriber
        (SMPP_GSM_MAP, "undelivered", "1", "invalid_number"),  # MAP: unknown subscriber
        (SMPP, "undelivered", "", "unreachable"),  # bare UNDELIV: inferred
        (SMPP, "delivered", "000", "none"),
    ],
)
def test_each_provider_has_its_own_table(table, status, code, cause) -> None:  # type: ignore[no-untyped-def]
    assert table.cause(status, code) == cause


def test_inferred_causes_name_their_ambiguity() -> None:
    assert ALIYUN.ambiguity("undelivered", "MOBILE_NOT_ON_SERVICE") == "MOBILE_NOT_ON_SERVICE"
    assert SMPP.ambiguity("undelivered", "000") == "UNDELIV"
    assert SMPP.ambiguity("expired", "") == "EXPIRED"
    assert SMPP.ambiguity("undelivered", "ZZ:9999") == "unlisted"
    assert TENCENT.ambiguity("undelivered", "UNDELIV") == "UNDELIV"
    assert SMPP.ambiguity("undelivered", "MK:0001") is None
    assert SMPP.ambiguity("delivered", "") is None


def laid_out_receipts(seed: int, count: int) -> list[str]:
    """Receipts in the specification's layout with awkward values: ids holding colons and
    field names, texts holding other fields, newlines and nothing at all."""
    rng = random.Random(seed)
    id_pieces = ["0A1B", "9", "x", ":", "sub", "err:", "-stat:", "id:", "_", "ÉÜ", "done"]
    text_pieces = [" ", "\n", "x", "stat:UNDELIV", "err:999", "id:other", "done date:", ":", "é"]

    def date() -> str:
        return "".join(rng.choices("0123456789", k=rng.choice((10, 12))))

    receipts = []
    for _ in range(count):
        receipt_id = "".join(rng.choices(id_pieces, k=rng.randint(1, 4)))
        stat = rng.choice([*SMPP_STATS, "ABCDEFG"])
        err = "".join(rng.choices("0123456789abcdefX_", k=3))
        text = rng.choice(["", " text:", " text:" + "".join(rng.choices(text_pieces, k=6))])
        receipts.append(
            f"id:{receipt_id} sub:{rng.randint(0, 999):03d} dlvrd:{rng.randint(0, 999):03d} "
            f"submit date:{date()} done date:{date()} stat:{stat} err:{err}{text}"
        )
    return receipts


def test_receipts_in_the_specification_s_layout_read_as_a_scan_reads_them() -> None:
    for text in laid_out_receipts(7, 5_000):
        laid_out = _laid_out(text)
        assert laid_out is not None, text  # read in one match ...
        scanned = scanned_fields(text)
        assert {key: scanned.get(key) for key in laid_out} == laid_out, text  # ... alike

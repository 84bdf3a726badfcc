"""SMPP delivery-receipt text, SMPP gateways' dlr-url callbacks and CMPP status reports: pure
parsers, no I/O.

SMPP 3.4 puts the receipt in the `short_message` of a `deliver_sm` as de-facto text
(reference sms-providers.md §5 [V] 8x8): ``id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm
done date:YYMMDDhhmm stat:DDDDDDD err:E Text:…``. Vendors drop fields, change case, add seconds
to the dates, or put `text` first; the parser takes every field it finds and needs only `stat`.

Dates carry no time zone and are often minute-precise ([R]: SMSC local time). They are returned
as naive wall-clock parts (`SmscTime`); only a caller that knows the SMSC's UTC offset may turn
them into event time, and smswatch by default does not: it uses the time it learned the report
(see `exporter.catalogue`, smswatch_sms_delivery_seconds).

CMPP 2.0/3.0 status reports arrive in `CMPP_DELIVER` with `Registered_Delivery=1`; the
`Msg_Content` is ``Msg_Id(8) Stat(7) Submit_time(10) Done_time(10) Dest_terminal_Id(21|32)
SMSC_sequence(4)`` ([R] spec text; Stat values [V] huaweicloud).
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from exporter.privacy import mask_phone
from exporter.records import SmsEvent

log = logging.getLogger(__name__)

#: One `key:value` pair of a receipt; keys may contain a space (`submit date`).
_FIELD = re.compile(
    r"(?i)\b(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:\s*"
    r"(.*?)(?=\s+(?:id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:|\s*$)",
    re.DOTALL,
)
_DATE = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?$")

#: Final SMPP stat words (§5 [V] 8x8, openmarket); ACCEPTD and ENROUTE are not final.
SMPP_STATS = frozenset(
    {"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE"}
)

#: `message_state` TLV values (§5 [V] gist atkawa7) → the stat word of the same meaning.
MESSAGE_STATES: dict[int, str] = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}


@dataclass(frozen=True, slots=True)
class SmscTime:
    """A wall-clock time read from an SMSC date: no time zone, maybe no seconds."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int | None  # None: the date was minute-precise

    def to_ms(self, utc_offset_minutes: int) -> int:
        """Unix ms, for a caller that knows the SMSC's UTC offset (minute-precise dates: :00)."""
        moment = datetime(
            self.year, self.month, self.day, self.hour, self.minute, self.second or 0, tzinfo=UTC
        )
        return int(moment.timestamp() * 1000) - utc_offset_minutes * 60_000


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """One SMPP delivery receipt as far as its text tells."""

    message_id: str
    stat: str  # upper-cased, e.g. DELIVRD
    err: str  # as sent ("" when absent); vendor-specific
    submitted: SmscTime | None
    done: SmscTime | None
    sub: int | None
    dlvrd: int | None


@lru_cache(maxsize=4096)  # minute-precise dates repeat across a minute's receipts
def parse_smsc_date(text: str) -> SmscTime | None:
    """`YYMMDDhhmm` or `YYMMDDhhmmss` → its parts (years 2000–2099), or None if malformed."""
    match = _DATE.match((text or "").strip())
    if not match:
        return None
    yy, mo, dd, hh, mi, ss = match.groups()
    parts = SmscTime(2000 + int(yy), int(mo), int(dd), int(hh), int(mi), int(ss) if ss else None)
    try:
        datetime(parts.year, parts.month, parts.day, parts.hour, parts.minute, parts.second or 0)
    except ValueError:
        return None
    return parts


def _count(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


@lru_cache(maxsize=256)  # a receipt's few field names, the same in every receipt
def _field_name(key: str) -> str:
    """`Submit_Date` → `submitdate`: lower case, without spaces and underscores."""
    return key.lower().replace(" ", "").replace("_", "")


def parse_receipt(text: str) -> DeliveryReceipt | None:
    """Parse receipt text; None unless it has a known `stat` (everything else is optional)."""
    fields = _laid_out(text) or scanned_fields(text)
    stat = fields.get("stat", "").upper()
    if stat not in SMPP_STATS:
        return None
    return DeliveryReceipt(
        message_id=fields.get("id", ""),
        stat=stat,
        err=fields.get("err", ""),
        submitted=parse_smsc_date(fields.get("submitdate", "")),
        done=parse_smsc_date(fields.get("donedate", "")),
        sub=_count(fields.get("sub")),
        dlvrd=_count(fields.get("dlvrd")),
    )


def scanned_fields(text: str) -> dict[str, str]:
    """A receipt's fields wherever they stand, in any case and spacing: the first of each."""
    fields: dict[str, str] = {}
    for key, value in _FIELD.findall(text or ""):
        fields.setdefault(_field_name(key), value.strip())
    return fields


#: A receipt laid out as the SMPP specification shows it (v3.4 Appendix B): every field, in
#: order, one space apart. Read in one match, its fields are what `scanned_fields` finds
#: (tests/test_smpp.py compares them); any other layout is scanned.
_LAID_OUT = re.compile(
    r"id:(\S+) sub:(\d{3}) dlvrd:(\d{3}) submit date:(\d{10}(?:\d{2})?) "
    r"done date:(\d{10}(?:\d{2})?) stat:([A-Z]{7}) err:(\w{3})(?: text:.*)?\Z",
    re.DOTALL,
)


def _laid_out(text: str) -> dict[str, str] | None:
    match = _LAID_OUT.match(text)
    if match is None:
        return None
    receipt_id, sub, dlvrd, submitted, done, stat, err = match.groups()
    return {
        "id": receipt_id,
        "sub": sub,
        "dlvrd": dlvrd,
        "submitdate": submitted,
        "donedate": done,
        "stat": stat,
        "err": err,
    }


# --------------------------------------------------------------------------- dlr-url callbacks


def done_time_ms(done: SmscTime | None, utc_offset_minutes: int | None, received_ms: int) -> int:
    """When a final report says it was done: its SMSC done date in the configured zone
    (`smsc_utc_offset`), else — zone unknown (the default), no done date, or a done date later
    than the report reached smswatch (the zone is wrong: logged once) — when it was received.
    Done dates are often minute-precise: they are read as the start of their minute."""
    if done is None or utc_offset_minutes is None:
        return received_ms
    at = done.to_ms(utc_offset_minutes)
    if at > received_ms + 60_000:
        if not _zone_warned:
            _zone_warned.append(True)
            log.warning(
                "SMSC done dates are later than their reports arrived: check smsc_utc_offset",
                extra={"ahead_s": (at - received_ms) // 1000},
            )
        return received_ms
    return at


_zone_warned: list[bool] = []


def dlr_url_event(
    params: Mapping[str, str],
    message_id: str,
    status: str,
    code: str,
    received_ms: int,
    status_ms: int | None = None,
) -> SmsEvent:
    """The event of an SMPP gateway's `dlr-url` callback (Jasmin, Kannel).

    The bank adds its own parameters to the dlr-url it sets: `ref` (the transaction reference),
    `to`, and optionally `carrier` and `area`. An SMPP `err` of 000 or 0 is no error. The
    gateways' dates have no zone and minute precision: the event is timed when smswatch
    received it unless the SMSC's zone is configured (`status_ms`, see `done_time_ms`); only a
    submission's own time is a known submit time.
    """
    return SmsEvent(
        message_id=message_id,
        txn_ref=params.get("ref", ""),
        phone=mask_phone(params.get("to", "")),
        carrier=params.get("carrier", "") or "unknown",
        area=params.get("area", "") or "unknown",
        status=status,
        error_code="" if code in ("000", "0") else code,
        submitted_ms=received_ms,
        status_ms=received_ms if status_ms is None else status_ms,
        submit_known=status == "submitted",
    )


# --------------------------------------------------------------------------- CMPP


@dataclass(frozen=True, slots=True)
class CmppReport:
    """One CMPP status report (the `Msg_Content` of a CMPP_DELIVER with a report)."""

    message_id: str  # Msg_Id of the original CMPP_SUBMIT as 16 hex digits
    stat: str
    submitted: SmscTime | None
    done: SmscTime | None
    destination: str  # masked
    smsc_sequence: int
    version: int  # 2 or 3


CMPP2_REPORT_BYTES = 8 + 7 + 10 + 10 + 21 + 4
CMPP3_REPORT_BYTES = 8 + 7 + 10 + 10 + 32 + 4


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()


def parse_cmpp_report(content: bytes) -> CmppReport | None:
    """Parse a CMPP 2.0 (60 bytes) or 3.0 (71 bytes) status report; None if malformed.

    The carrier code (`MK:0001`, `DB:0101`, …) travels in `Stat` itself when the report is
    not `DELIVRD`; it is kept as the stat word, the classifier reads it as the error code.
    """
    if len(content) == CMPP2_REPORT_BYTES:
        dest_len, version = 21, 2
    elif len(content) == CMPP3_REPORT_BYTES:
        dest_len, version = 32, 3
    else:
        return None
    msg_id = content[:8]
    stat = _text(content[8:15])
    if not stat:
        return None
    offset = 15
    submitted = parse_smsc_date(_text(content[offset : offset + 10]))
    done = parse_smsc_date(_text(content[offset + 10 : offset + 20]))
    offset += 20
    destination = mask_phone(_text(content[offset : offset + dest_len]))
    (sequence,) = struct.unpack(">I", content[offset + dest_len : offset + dest_len + 4])
    return CmppReport(
        message_id=msg_id.hex(),
        stat=stat.upper(),
        submitted=submitted,
        done=done,
        destination=destination,
        smsc_sequence=sequence,
        version=version,
    )


def cmpp_msg_id_parts(message_id: str) -> dict[str, int]:
    """The fields packed in a CMPP Msg_Id ([R] spec): month, day, hour, minute, second,
    ISMG gateway id and sequence. Useful to tell which gateway and when a message was sent."""
    value = int(message_id, 16)
    return {
        "month": value >> 60 & 0xF,
        "day": value >> 55 & 0x1F,
        "hour": value >> 50 & 0x1F,
        "minute": value >> 44 & 0x3F,
        "second": value >> 38 & 0x3F,
        "gateway": value >> 16 & 0x3FFFFF,
        "sequence": value & 0xFFFF,
    }

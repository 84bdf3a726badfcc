"""Kannel `dlr-url` callbacks (reference sms-providers.md §6; kannel-on-this-machine.md).

Kannel calls the `dlr-url` the bank gave each message, with its escapes filled in [V userguide
escape list]: `%d` the DLR type, `%A` the SMSC's reply (for a receipt, the raw SMPP text
`id:… stat:… err:…`), `%F` the SMSC's message id, `%I` Kannel's internal id, `%i` the smsc-id,
`%T` a Unix time. smswatch expects this URL (query parameter names are ours):

    http://EXPORTER:8479/push/<source>?type=%d&reply=%A&smsc=%i&msg=<bank message id>
        &ref=<transaction reference>[&carrier=…&area=…][&secret=…]

`msg` must be the bank's own message id (or `%I`): the SMSC id `%F` is not known yet on the
first callback (observed on this machine: type 8 comes with `%A` = `ACK/` and no foreign id).

Confirmed on this machine with Debian's Kannel 1.4.5 and its fake SMSC (tests/test_kannel.py):
the escapes `%d`, `%A`, `%i` are filled in, a `dlr-mask=31` message calls back with type 8
(`%A` = `ACK/`) and then type 1, and `/cgi-bin/sendsms` answers 202 "Accepted for delivery".
Failure callbacks (types 2, 16) are not produced by the fake SMSC: they are tested on recorded
parameters (tests/test_push.py).

DLR types [V Kannel gw/dlr.h]: 1 delivered to phone, 2 not delivered, 4 queued on the SMSC, 8
SMSC ACK (accepted: the message is submitted), 16 SMSC NACK (refused). Debian's Kannel 1.4.5
sends only these. Later Kannel does define more: the Kannel 1.6.1 source imported in the
vaska94/kannel repository has, in gw/dlr.h, `DLR_EXPIRED 0x20|DLR_FAIL` and `DLR_UNKNOWN
0x40|DLR_FAIL`, and gw/smsc/smsc_smpp.c sets DLR_EXPIRED for message_state EXPIRED: types 0x22
and 0x42, which carry the not-delivered bit 2. So the type is read by its bits: bit 1
delivered, bit 2 not delivered (the stat and `err` from the receipt in `%A`; without one, 0x20
says expired and 0x40 unknown), bit 4 queued, bit 8 submitted, bit 16 refused.

A type 16 (SMSC NACK) carries the SMPP command status in `%A`: `NACK/0x00000058/Throttling
error` (gw/bb_smscconn.c inserts `NACK/` before the `0x%08lx/%s` that gw/smsc/smsc_smpp.c
writes) [V], or `NACK/Retries Exceeded` when temporary refusals were retried until
`sms-resend-retry`. The status becomes its ESME name (exporter.classify.SMPP_COMMAND_STATUSES):
ESME_RTHROTTLED → throttled, ESME_RINVDSTADR → invalid_number, ESME_RSYSERR → gateway, any
other refusal → integration; a NACK without a status is `NACK` (integration, ambiguous).

Times: the SMPP done date has no zone and minute precision, so every event is timed when
smswatch received it (latency honesty); a type 8 is the submission.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from exporter.classify import NACK, SMPP_COMMAND_STATUSES, normalize_status
from exporter.records import SmsEvent
from exporter.sources.smpp import dlr_url_event, done_time_ms, parse_receipt

DLR_SUCCESS, DLR_FAIL, DLR_BUFFERED, DLR_SMSC_SUCCESS, DLR_SMSC_FAIL = 1, 2, 4, 8, 16
_EXPIRED_BIT, _UNKNOWN_BIT = 0x20, 0x40  # later Kannel: DLR_EXPIRED / DLR_UNKNOWN with bit 2

_NACK_STATUS = re.compile(r"(?i)^\s*NACK/(0x[0-9a-f]+|\d+)\b")


def nack_code(reply: str) -> str:
    """The cause code of a Kannel SMSC NACK `%A`: the ESME name of its command status, or
    `NACK` when it carries none (for example `NACK/Retries Exceeded`)."""
    match = _NACK_STATUS.match(reply or "")
    if not match:
        return NACK
    text = match.group(1)
    value = int(text, 16) if text.lower().startswith("0x") else int(text)
    return SMPP_COMMAND_STATUSES.get(value, f"ESME_0x{value:08X}")


def _failure_status(dlr_type: int, stat: str | None) -> str:
    """The status of a not-delivered report: the receipt's stat, else what the type's bits say."""
    status = normalize_status(stat) if stat else None
    if status is None or status in ("submitted", "enroute", "delivered"):
        if dlr_type & _EXPIRED_BIT:
            return "expired"
        if dlr_type & _UNKNOWN_BIT:
            return "unknown"
        return "undelivered"
    return status


def parse_dlr(
    params: Mapping[str, str], received_ms: int, smsc_utc_offset: int | None = None
) -> SmsEvent | None:
    """One callback's parameters → an event, or None when it is not a usable DLR.

    With the SMSC's zone (`smsc_utc_offset`, minutes east of UTC) a final status is timed at
    the receipt's done date; without it (the default) when smswatch received it."""
    type_text = params.get("type", "")
    message_id = params.get("msg", "")
    if not type_text.isdigit() or not message_id:
        return None
    dlr_type = int(type_text)
    reply = params.get("reply", "")
    receipt = parse_receipt(reply) if "stat" in reply.lower() else None
    code = receipt.err if receipt else ""
    if dlr_type & DLR_SUCCESS:
        status = "delivered"
    elif dlr_type & DLR_FAIL:
        status = _failure_status(dlr_type, receipt.stat if receipt else None)
    elif dlr_type & DLR_SMSC_FAIL:
        status, code = "rejected", nack_code(reply)
    elif dlr_type & DLR_BUFFERED:
        status = "enroute"
    elif dlr_type & DLR_SMSC_SUCCESS:
        status = "submitted"
    else:
        return None
    at = None
    if status not in ("submitted", "enroute"):
        at = done_time_ms(receipt.done if receipt else None, smsc_utc_offset, received_ms)
    return dlr_url_event(params, message_id, status, code, received_ms, at)

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

DLR types [V gist atkawa7, Kannel userguide]: 1 delivered to phone, 2 not delivered, 4 queued on
the SMSC, 8 SMSC ACK (accepted: the message is submitted), 16 SMSC NACK (refused); Kannel's own
0x22 (34) expired and 0x42 (66) unknown. A type 2 takes its stat and `err` from the receipt in
`%A`. Times: the SMPP done date has no zone and minute precision, so every event is timed when
smswatch received it (latency honesty); a type 8 is the submission.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.classify import normalize_status
from exporter.records import SmsEvent
from exporter.sources.smpp import dlr_url_event, parse_receipt

#: Kannel DLR type → normalized status (None: read the stat of the receipt text).
DLR_TYPES: dict[int, str | None] = {
    1: "delivered",
    2: None,  # not delivered: the receipt's stat tells undelivered/expired/rejected
    4: "enroute",
    8: "submitted",
    16: "rejected",  # SMSC NACK: the submission was refused
    34: "expired",
    66: "unknown",
}


def parse_dlr(params: Mapping[str, str], received_ms: int) -> SmsEvent | None:
    """One callback's parameters → an event, or None when it is not a usable DLR."""
    type_text = params.get("type", "")
    message_id = params.get("msg", "")
    if not type_text.isdigit() or not message_id:
        return None
    dlr_type = int(type_text)
    reply = params.get("reply", "")
    receipt = parse_receipt(reply) if "stat" in reply.lower() else None
    if dlr_type in DLR_TYPES:
        status = DLR_TYPES[dlr_type]
    elif dlr_type & 1:
        status = "delivered"
    elif dlr_type & 2:
        status = None
    else:
        return None
    code = receipt.err if receipt else ""
    if status is None:
        status = normalize_status(receipt.stat) if receipt else "undelivered"
        if status in (None, "submitted", "enroute", "delivered"):
            status = "undelivered"
    if dlr_type == 16:
        code = code or "NACK"
    if status is None:
        return None
    return dlr_url_event(params, message_id, status, code, received_ms)

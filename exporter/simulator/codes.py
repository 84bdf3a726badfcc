"""The simulator's own code table: for each cause, the SMPP/CMPP reports it emits.

Taken from shared/reference/sms-providers.md §5 (CMPP carrier-prefixed codes, SMPP stats) and
§10 (code → cause). The simulator picks a cause first, then a `(stat, err)` pair from this table,
and its truth uses the same table backwards. It deliberately does not share code with the
exporter's classifier: two independent accounts of the same reference must agree.

| cause | stat | err codes |
|---|---|---|
| gateway | UNDELIV | IB:0070 link down, MA:0054 / MA:0051 ISMG↔SMSC, DB:9001 network |
| invalid_number | UNDELIV | MK:0001 no user, DB:0101 wrong, MI:0073 empty, MK:0005 / DB:0102 |
| unreachable | EXPIRED, UNDELIV, DELETED | MK:0010, MK:0023 / MI:0024 handset off, MI:0099 |
| throttled | REJECTD | DB:9007 / IB:0008 / MI:0061 flow control, DB:0142 daily MT cap |
| filtered | REJECTD | MK:0115 spam intercepted, KEYWORD, DB:0144 blacklist |
| integration | REJECTD | CMPPERR:1 structure, CMPPERR:4 length, CMPPERR:13 destination |
| unknown | UNKNOWN | 000 |
"""

from __future__ import annotations

from exporter.catalogue import CAUSE_NONE

#: Error code of an event without an error (SUBMITTED, ENROUTE, DELIVRD, UNKNOWN).
NO_ERROR = "000"

#: Final SMPP/CMPP stats and the `status` label they become.
FINAL_STATUSES: dict[str, str] = {
    "DELIVRD": "delivered",
    "UNDELIV": "undelivered",
    "EXPIRED": "expired",
    "DELETED": "expired",
    "REJECTD": "rejected",
    "UNKNOWN": "unknown",
}

#: Intermediate statuses: a message is still pending after them.
INTERMEDIATE_STATUSES: tuple[str, ...] = ("SUBMITTED", "ENROUTE")

#: Per failure cause, the (stat, err) reports the simulator emits, with relative weights.
REPORTS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "gateway": (
        ("UNDELIV", "IB:0070", 4),
        ("UNDELIV", "MA:0054", 3),
        ("UNDELIV", "MA:0051", 1),
        ("UNDELIV", "DB:9001", 2),
    ),
    "invalid_number": (
        ("UNDELIV", "MK:0001", 5),
        ("UNDELIV", "DB:0101", 2),
        ("UNDELIV", "MI:0073", 2),
        ("UNDELIV", "MK:0005", 1),
        ("UNDELIV", "DB:0102", 1),
    ),
    "unreachable": (
        ("EXPIRED", "MK:0010", 4),
        ("UNDELIV", "MK:0023", 3),
        ("UNDELIV", "MI:0024", 3),
        ("DELETED", "MI:0099", 1),
    ),
    "throttled": (
        ("REJECTD", "DB:9007", 3),
        ("REJECTD", "IB:0008", 3),
        ("REJECTD", "DB:0142", 1),
        ("REJECTD", "MI:0061", 2),
    ),
    "filtered": (
        ("REJECTD", "MK:0115", 3),
        ("REJECTD", "KEYWORD", 2),
        ("REJECTD", "DB:0144", 1),
    ),
    "integration": (
        ("REJECTD", "CMPPERR:1", 2),
        ("REJECTD", "CMPPERR:4", 1),
        ("REJECTD", "CMPPERR:13", 1),
    ),
    "unknown": (("UNKNOWN", NO_ERROR, 1),),
}

CAUSE_BY_CODE: dict[str, str] = {
    code: cause for cause, reports in REPORTS.items() for _, code, _ in reports if code != NO_ERROR
}


def cause_of(stat: str, error_code: str) -> str:
    """The cause of a final report: from its code, else from its stat (reference §10, note 1)."""
    if stat == "DELIVRD":
        return CAUSE_NONE
    cause = CAUSE_BY_CODE.get(error_code)
    if cause is not None:
        return cause
    if stat in ("UNDELIV", "EXPIRED", "DELETED"):
        return "unreachable"
    if stat == "REJECTD":
        return "filtered"
    return "unknown"

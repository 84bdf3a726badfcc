"""Classification of provider statuses and error codes into final statuses and root causes.

One table per provider family. This one covers the generic bank gateway, SMPP delivery receipts
and the Chinese carriers' CMPP report codes (reference: shared sms-providers.md §5 and §10).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Provider status words → normalized status. `submitted` and `enroute` are not final.
STATUS_WORDS: dict[str, str] = {
    "SUBMITTED": "submitted",
    "ACCEPTED": "submitted",
    "ENROUTE": "enroute",
    "ACCEPTD": "enroute",
    "SENT": "enroute",
    "DELIVRD": "delivered",
    "DELIVERED": "delivered",
    "UNDELIV": "undelivered",
    "UNDELIVERED": "undelivered",
    "EXPIRED": "expired",
    "DELETED": "expired",
    "REJECTD": "rejected",
    "REJECTED": "rejected",
    "FAILED": "failed",
    "UNKNOWN": "unknown",
}

STATUS_WORDS.update({word.lower(): status for word, status in list(STATUS_WORDS.items())})

FINAL = frozenset({"delivered", "undelivered", "expired", "rejected", "failed", "unknown"})

#: Error code → cause for SMPP/CMPP-style gateways. Codes are compared upper-cased.
CODE_CAUSES: dict[str, str] = {
    # gateway: the bank SMS platform or its carrier links (C1), or its own setup (C4)
    "IB:0070": "gateway",  # link down
    "MA:0051": "gateway",  # ISMG to SMSC not connected
    "MA:0054": "gateway",  # ISMG to SMSC timeout
    "DB:9001": "gateway",  # network error inside the platform
    "DB:0107": "gateway",  # service code missing (sender configuration)
    "SIGFAIL": "gateway",  # signature blocked (sender configuration)
    "NOROUTE": "gateway",
    # invalid_number (C2)
    "MK:0001": "invalid_number",  # user does not exist
    "MK:0005": "invalid_number",  # suspended
    "MK:0013": "invalid_number",  # suspended
    "DB:0102": "invalid_number",  # suspended
    "DB:0101": "invalid_number",  # wrong number
    "MI:0073": "invalid_number",  # empty number
    # unreachable (C3)
    "MK:0010": "unreachable",  # off until expiry
    "MK:0023": "unreachable",  # handset off
    "MI:0024": "unreachable",  # handset off
    "MI:0099": "unreachable",  # terminal memory full
    # throttled (T)
    "DB:9007": "throttled",
    "IB:0008": "throttled",
    "MI:0061": "throttled",
    "DB:0142": "throttled",  # daily MT cap
    "BEYONDM": "throttled",
    "BEYONDH": "throttled",
    "BEYONDD": "throttled",
    "CMPPERR:8": "throttled",  # flow control
    # filtered (F)
    "MK:0115": "filtered",  # spam intercepted
    "DB:0144": "filtered",  # blacklist
    "MBBLACK": "filtered",
    "DBBLACK": "filtered",
    "KEYWORD": "filtered",
}
for _n in range(1, 14):
    CODE_CAUSES.setdefault(f"CMPPERR:{_n}", "integration")  # protocol errors (C5)

#: Cause when the code says nothing (none, `000`, or a code not in the table).
STATUS_DEFAULT_CAUSES: dict[str, str] = {
    "undelivered": "unreachable",  # reference note 1: UNDELIV/EXPIRED without err → C3, inferred
    "expired": "unreachable",
    "rejected": "filtered",
    "failed": "unknown",
    "unknown": "unknown",
}

_NO_CODE = frozenset({"", "0", "00", "000", "0000", "NONE"})


@dataclass(frozen=True, slots=True)
class Classification:
    """What a status event means: its normalized status and, when final, its cause."""

    status: str
    final: bool
    cause: str


def normalize_status(word: str) -> str | None:
    """Map a provider status word to the normalized status, or None when unknown."""
    return STATUS_WORDS.get((word or "").strip().upper())


def cause_for(status: str, error_code: str) -> str:
    """The cause of a final status with its provider error code (`none` when delivered)."""
    if status == "delivered":
        return "none"
    if status == "unknown":
        return "unknown"
    code = (error_code or "").strip().upper()
    if code not in _NO_CODE and code in CODE_CAUSES:
        return CODE_CAUSES[code]
    return STATUS_DEFAULT_CAUSES.get(status, "unknown")

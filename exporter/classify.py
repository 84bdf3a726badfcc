"""Classification of provider statuses and error codes into final statuses and root causes.

One table per provider family (reference: shared sms-providers.md §1–7 and §10): the generic
bank gateway with SMPP delivery receipts and the Chinese carriers' CMPP report codes, Twilio,
Vonage, Alibaba Cloud, Tencent Cloud, and the numeric SMPP `err` dialects (8x8, GSM MAP) that
Kannel and Jasmin pass through. Each fact carries its provenance from the reference: `[V]`
confirmed in the cited source, `[R]` secondary source only, still unconfirmed.

Some codes do not tell the cause for sure (Alibaba `MOBILE_NOT_ON_SERVICE` mixes a dead number
with a switched-off handset; a bare `UNDELIV`/`EXPIRED` gives an outcome, not a cause). They get
the cause the reference recommends and are *counted* (`smswatch_sms_ambiguous_total`) so their
share stays visible next to the cause they were given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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


#: `code` label of smswatch_sms_ambiguous_total for a failure without any code.
NO_CODE_LABELS: dict[str, str] = {"undelivered": "UNDELIV", "expired": "EXPIRED"}
#: `code` label for a failure whose code is not in the provider's table.
UNLISTED = "unlisted"


@dataclass(frozen=True)
class CodeTable:
    """One provider family's code → cause table, with the codes that only suggest a cause."""

    name: str
    codes: Mapping[str, str]  # upper-cased code → cause
    ambiguous: frozenset[str] = frozenset()  # upper-cased codes whose cause is a best guess
    defaults: Mapping[str, str] = field(default_factory=lambda: STATUS_DEFAULT_CAUSES)

    def cause(self, status: str, error_code: str) -> str:
        """The cause of a final status with this provider's error code (`none` if delivered)."""
        if status == "delivered":
            return "none"
        if status == "unknown":
            return "unknown"
        code = (error_code or "").strip().upper()
        if code not in _NO_CODE and code in self.codes:
            return self.codes[code]
        return self.defaults.get(status, "unknown")

    def ambiguity(self, status: str, error_code: str) -> str | None:
        """The `code` label when the cause of a failure is inferred rather than told, else None.

        Bounded by construction: an ambiguous code of the table, `UNDELIV`/`EXPIRED` for a bare
        failure, or `unlisted` for a code the table does not know.
        """
        if status in ("delivered", "unknown"):
            return None
        code = (error_code or "").strip().upper()
        if code in _NO_CODE:
            return NO_CODE_LABELS.get(status)
        if code in self.ambiguous:
            return code
        if code not in self.codes:
            return UNLISTED
        return None


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


# --------------------------------------------------------------------------- provider tables

#: The generic gateway / SMPP stat / CMPP carrier codes above (sms-providers.md §5 [V]).
SMPP = CodeTable("smpp", CODE_CAUSES)

#: 8x8's numeric SMPP `err` values (§5, [V] developer.8x8.com delivery-receipts-error-codes),
#: on top of the CMPP codes: for Kannel/Jasmin routes through an 8x8-style SMSC.
SMPP_8X8 = CodeTable(
    "8x8",
    {
        **CODE_CAUSES,
        "1": "unreachable",  # absent subscriber
        "11": "throttled",  # flooding
        "12": "gateway",  # HLR error
        "14": "gateway",  # internal error
        "15": "invalid_number",  # invalid destination
        "19": "gateway",  # invalid source address (sender configuration, C4)
        "23": "unreachable",  # network failure
        "34": "filtered",  # screening
        "35": "throttled",  # SC congestion
        "36": "unreachable",  # expired
        "42": "gateway",  # no credit (C4)
        "43": "filtered",  # spam filter
        "46": "unreachable",  # not reachable
        "48": "gateway",  # system failure
        "50": "throttled",  # throttling
    },
)

#: GSM MAP-style numeric `err` values (§5, [V] gist dynax60), on top of the CMPP codes.
SMPP_GSM_MAP = CodeTable(
    "gsm_map",
    {
        **CODE_CAUSES,
        "1": "invalid_number",  # unknown subscriber
        "5": "invalid_number",  # unidentified subscriber
        "13": "filtered",  # call barred
        "21": "invalid_number",  # facility (SMS) not supported
        "31": "unreachable",  # subscriber busy for MT SMS
        "34": "gateway",  # system failure
        "40": "unreachable",  # memory capacity exceeded
    },
)

#: Twilio `error_code` (§1, §10): [V] chekkit/sleekflow/twilio error pages unless marked [R].
TWILIO = CodeTable(
    "twilio",
    {
        "30001": "gateway",  # queue overflow
        "30002": "gateway",  # account suspended (C4)
        "30010": "gateway",  # price exceeds MaxPrice (C4)
        "21601": "gateway",  # sender not SMS-capable (C4)
        "21608": "gateway",  # sender not SMS-capable (C4)
        "30032": "gateway",  # [R] toll-free number not verified
        "30034": "gateway",  # [R] unregistered 10DLC number
        "30005": "invalid_number",  # unknown handset, inactive number
        "30006": "invalid_number",  # landline or unreachable carrier
        "21211": "invalid_number",  # invalid To
        "30003": "unreachable",  # handset off, no signal, roaming
        "20003": "integration",  # authentication failed
        "20429": "throttled",  # too many requests
        "30022": "throttled",  # [R] 10DLC rate cap
        "30023": "throttled",  # [R] 10DLC daily cap
        "30007": "filtered",  # carrier filter (spam/fraud)
        "30004": "filtered",  # message blocked
        "21610": "filtered",  # recipient opted out
        "30008": "unknown",  # unknown error
    },
    # 30006 mixes landlines (a wrong number on file) with carriers that cannot be reached.
    ambiguous=frozenset({"30006"}),
    defaults={**STATUS_DEFAULT_CAUSES, "failed": "gateway"},  # Twilio never sent it
)

#: Vonage DLR `err-code` (§2 [V] api.support.vonage.com 204014733, 15+ [R]).
VONAGE = CodeTable(
    "vonage",
    {
        "1": "unknown",  # unknown (a weak hint of a platform fault)
        "2": "unreachable",  # absent subscriber, temporary
        "3": "invalid_number",  # absent subscriber, permanent
        "4": "filtered",  # call barred by user
        "5": "invalid_number",  # portability error (weak)
        "6": "filtered",  # anti-spam rejection
        "7": "unreachable",  # handset busy
        "8": "unreachable",  # network error
        "9": "filtered",  # illegal number (user opted out)
        "10": "integration",  # illegal message
        "12": "invalid_number",  # destination unreachable (the reference files it under C2)
        "14": "filtered",  # blocked by carrier
        "15": "gateway",  # [R] illegal sender address (C4)
        "50": "filtered",  # [R] entity filter
        "51": "filtered",  # [R] header filter
        "52": "filtered",  # [R] content filter
        "53": "filtered",  # [R] consent filter
        "99": "unknown",  # [R] general error
    },
    ambiguous=frozenset({"1", "5", "12"}),
)

#: Alibaba Cloud receipt ErrCode and API codes (§3: receipt codes [V mirror, R official];
#: API codes [V] alibabacloud error-codes). Compared upper-cased.
ALIYUN = CodeTable(
    "aliyun",
    {
        "ISP.SYSTEM_ERROR": "gateway",
        "ISP.GATEWAY_ERROR": "gateway",
        "IS_CLOSE": "gateway",  # channel closed
        "ISV.SMS_SIGN_NAME_ILLEGAL": "gateway",  # C4
        "ISV.SMS_CONTENT_CODE_ILLEGAL": "gateway",  # C4
        "ISV.SMS_TEMPLATE_ILLEGAL": "gateway",  # C4
        "ISV.OUT_OF_SERVICE": "gateway",  # C4
        "ISV.AMOUNT_NOT_ENOUGH": "gateway",  # C4
        "SIGNATURE_BLACKLIST": "gateway",  # C4
        "CONTENT_ERROR": "gateway",  # C4: no opt-out line
        "INVALID_NUMBER": "invalid_number",
        "ISV.MOBILE_NUMBER_ILLEGAL": "invalid_number",
        "MOBILE_ACCOUNT_ABNORMAL": "invalid_number",  # arrears or ported
        "MOBILE_NOT_ON_SERVICE": "unreachable",  # 停机/空号/关机/不在服务区: C2 and C3 mixed
        "MOBLLE_TERMINAL_ERROR": "unreachable",  # (sic) memory or SIM full
        "MOBILE_TERMINAL_ERROR": "unreachable",  # the same, spelt right, should it be fixed
        "ISV.INVALID_PARAMETERS": "integration",
        "ISV.INVALID_JSON_PARAM": "integration",
        "PARAMS_ILLEGAL": "integration",
        "ISP.RAM_PERMISSION_DENY": "integration",
        "REQUEST_SUCCESS": "integration",  # no carrier receipt came back
        "ISV.BUSINESS_LIMIT_CONTROL": "throttled",
        "MOBILE_SEND_LIMIT": "throttled",
        "THROTTLING.USER": "throttled",
        "CONTENT_KEYWORD": "filtered",
        "MOBILE_IN_BLACK": "filtered",
        "USER_REJECT": "filtered",
        "ISV.BLACK_KEY_CONTROL_LIMIT": "filtered",
        "SP_UNKNOWN_ERROR": "unknown",
    },
    # Reference §10 note 2: split by repetition would need the raw number; smswatch keeps
    # only masked numbers, so the code stays `unreachable` and its share is counted instead.
    ambiguous=frozenset({"MOBILE_NOT_ON_SERVICE"}),
)

#: Tencent Cloud receipt `Description` codes and legacy send errors (§4 [V] 382/35462, 382/3771).
TENCENT = CodeTable(
    "tencent",
    {
        **CODE_CAUSES,  # [R] the carriers' CMPP codes, passed through in Description
        "UNDELIV": "unreachable",  # off, out of service, number abnormal
        "EXPIRED": "unreachable",  # cannot reach the terminal, weak signal
        "DELETED": "unreachable",
        "WTNFAIL": "unreachable",  # carrier network jitter
        "002": "unreachable",  # off, suspended, out of area
        "SUBFAIL": "invalid_number",  # carrier rejected, e.g. bad number
        "1016": "invalid_number",
        "REJECTD": "filtered",  # sensitive words, unregistered sender
        "-106": "filtered",  # keyword interception
        "1015": "filtered",  # blacklisted
        "COMFAIL": "gateway",  # carrier connection abnormal
        "1008": "gateway",  # timeout
        "1012": "gateway",  # signature not approved (C4)
        "1014": "gateway",  # template not approved (C4)
        "1020": "gateway",  # app disabled (C4)
        "1031": "gateway",  # package exhausted (C4)
        "1033": "gateway",  # arrears (C4)
        "1021": "integration",  # clock skew
        "1013": "throttled",  # frequency limit
        "1022": "throttled",
        "1023": "throttled",
        "1024": "throttled",
        "1025": "throttled",
        "1026": "throttled",
        "UNKNOWN": "unknown",
    },
    # A bare UNDELIV/EXPIRED is an outcome, not a cause (§10 note 1): inferred, counted.
    ambiguous=frozenset({"UNDELIV", "EXPIRED"}),
)

#: Jasmin level-1 `message_status` (SMPP `submit_sm_resp` command status) → cause of a
#: rejected submission (§7, §10: ESME_R* ≠ ESME_ROK is C5; ESME_RTHROTTLED [R] is T).
JASMIN = CodeTable(
    "jasmin",
    {
        **CODE_CAUSES,
        "ESME_RTHROTTLED": "throttled",
        "ESME_RMSGQFUL": "throttled",
        "ESME_RSYSERR": "gateway",
        "ESME_RINVDSTADR": "invalid_number",
    },
    defaults={**STATUS_DEFAULT_CAUSES, "rejected": "integration"},
)

TABLES: dict[str, CodeTable] = {
    t.name: t for t in (SMPP, SMPP_8X8, SMPP_GSM_MAP, TWILIO, VONAGE, ALIYUN, TENCENT, JASMIN)
}

#: Twilio message `status` (§1 [V] MessageEnumStatus) → normalized status; inbound ones absent.
TWILIO_STATUSES: dict[str, str] = {
    "queued": "submitted",
    "accepted": "submitted",
    "scheduled": "submitted",
    "sending": "enroute",
    "sent": "enroute",  # handed to the carrier, awaiting its receipt
    "delivered": "delivered",
    "read": "delivered",
    "partially_delivered": "delivered",  # some segments arrived: the cardholder got a text
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}

#: Vonage DLR and Reports `status` (§2 [V] delivery-receipts guide) → normalized status.
VONAGE_STATUSES: dict[str, str] = {
    "submitted": "submitted",
    "accepted": "enroute",  # accepted by the carrier
    "buffered": "enroute",
    "delivered": "delivered",
    "expired": "expired",
    "failed": "failed",
    "rejected": "rejected",
    "unknown": "unknown",
}

#: Alibaba QuerySendDetails `SendStatus` (§3 [V]): 1 awaiting receipt, 2 failed, 3 delivered.
ALIYUN_SEND_STATUS: dict[int, str] = {1: "enroute", 2: "undelivered", 3: "delivered"}


def tencent_status(report_status: str, description: str) -> str | None:
    """Tencent `ReportStatus` + `Description` (§4 [V]) → normalized status (None: unknown)."""
    status = (report_status or "").strip().upper()
    if status == "SUCCESS":
        return "delivered"
    if status != "FAIL":
        return None
    word = (description or "").strip().upper()
    if word in ("EXPIRED", "DELETED"):
        return "expired"
    if word in ("REJECTD", "SUBFAIL", "-106"):
        return "rejected"
    if word == "UNKNOWN":
        return "unknown"
    return "undelivered"

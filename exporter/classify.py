"""Classification of provider statuses and error codes into final statuses and root causes.

One table per provider family (reference: shared sms-providers.md §1–7 and §10): the generic
bank gateway with SMPP delivery receipts and the Chinese carriers' CMPP report codes, Twilio,
Vonage, Alibaba Cloud, Tencent Cloud, and the numeric SMPP `err` dialects (8x8, GSM MAP) that
Kannel and Jasmin pass through, plus the SMPP command statuses that Kannel's NACKs and
Jasmin's level-1 DLRs carry. Each entry carries its provenance: `[V]` confirmed in the cited
provider document, API specification or official SDK/source file, `[R]` secondary source only,
still unconfirmed. Checked against the providers' own documentation (issue 12); where a
provider publishes its whole table (Vonage receipts, Tencent send errors, SMPP command
statuses) it is taken whole.

Some codes do not tell the cause for sure (Alibaba `MOBILE_NOT_ON_SERVICE` mixes a dead number
with a switched-off handset; a bare `UNDELIV`/`EXPIRED` gives an outcome, not a cause). They get
the cause the reference recommends and are *counted* (`smswatch_sms_ambiguous_total`) so their
share stays visible next to the cause they were given.
"""

from __future__ import annotations

import re
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
    # NOROUTE: usually a busy network or an empty number rather than the sender's platform
    # (sms-providers.md §5/§10, corrected): a best guess, counted as ambiguous.
    "NOROUTE": "unreachable",
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


#: SMPP command statuses (`submit_sm_resp`/`generic_nack` command_status), taken whole from
#: Kannel's `gw/smsc/smpp_pdu.h` (enum SMPP_ERROR_MESSAGES, SMPP 3.4 + 5.0 values) [V]. Jasmin
#: names them the same (`jasmin/vendor/smpp/pdu/constants.py`, CommandStatus) [V].
SMPP_COMMAND_STATUSES: dict[int, str] = {
    0x00: "ESME_ROK",
    0x01: "ESME_RINVMSGLEN",
    0x02: "ESME_RINVCMDLEN",
    0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS",
    0x05: "ESME_RALYBND",
    0x06: "ESME_RINVPRTFLG",
    0x07: "ESME_RINVREGDLVFLG",
    0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR",
    0x0C: "ESME_RINVMSGID",
    0x0D: "ESME_RBINDFAIL",
    0x0E: "ESME_RINVPASWD",
    0x0F: "ESME_RINVSYSID",
    0x11: "ESME_RCANCELFAIL",
    0x13: "ESME_RREPLACEFAIL",
    0x14: "ESME_RMSGQFUL",
    0x15: "ESME_RINVSERTYP",
    0x33: "ESME_RINVNUMDESTS",
    0x34: "ESME_RINVDLNAME",
    0x40: "ESME_RINVDESTFLAG",
    0x42: "ESME_RINVSUBREP",
    0x43: "ESME_RINVESMCLASS",
    0x44: "ESME_RCNTSUBDL",
    0x45: "ESME_RSUBMITFAIL",
    0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI",
    0x50: "ESME_RINVDSTTON",
    0x51: "ESME_RINVDSTNPI",
    0x53: "ESME_RINVSYSTYP",
    0x54: "ESME_RINVREPFLAG",
    0x55: "ESME_RINVNUMMSGS",
    0x58: "ESME_RTHROTTLED",
    0x61: "ESME_RINVSCHED",
    0x62: "ESME_RINVEXPIRY",
    0x63: "ESME_RINVDFTMSGID",
    0x64: "ESME_RX_T_APPN",
    0x65: "ESME_RX_P_APPN",
    0x66: "ESME_RX_R_APPN",
    0x67: "ESME_RQUERYFAIL",
    0xC0: "ESME_RINVTLVSTREAM",
    0xC1: "ESME_RTLVNOTALLWD",
    0xC2: "ESME_RINVTLVLEN",
    0xC3: "ESME_RMISSINGTLV",
    0xC4: "ESME_RINVTLVVAL",
    0xFE: "ESME_RDELIVERYFAILURE",
    0xFF: "ESME_RUNKNOWNERR",
    0x100: "ESME_RSERTYPUNAUTH",
    0x101: "ESME_RPROHIBITED",
    0x102: "ESME_RSERTYPUNAVAIL",
    0x103: "ESME_RSERTYPDENIED",
    0x104: "ESME_RINVDCS",
    0x105: "ESME_RINVSRCADDRSUBUNIT",
    0x106: "ESME_RINVDSTADDRSUBUNIT",
    0x107: "ESME_RINVBCASTFREQINT",
    0x108: "ESME_RINVBCASTALIAS_NAME",
    0x109: "ESME_RINVBCASTAREAFMT",
    0x10A: "ESME_RINVNUMBCAST_AREAS",
    0x10B: "ESME_RINVBCASTCNTTYPE",
    0x10C: "ESME_RINVBCASTMSGCLASS",
    0x10D: "ESME_RBCASTFAIL",
    0x10E: "ESME_RBCASTQUERYFAIL",
    0x10F: "ESME_RBCASTCANCELFAIL",
    0x110: "ESME_RINVBCAST_REP",
    0x111: "ESME_RINVBCASTSRVGRP",
    0x112: "ESME_RINVBCASTCHANIND",
}

#: A refused submission's command status → cause (issue 12; sms-providers.md §10: ESME_R* is
#: C5 integration, except the SMSC's own throttling, its system error and a bad destination).
ESME_CAUSES: dict[str, str] = {
    **{name: "integration" for name in SMPP_COMMAND_STATUSES.values() if name != "ESME_ROK"},
    "ESME_RTHROTTLED": "throttled",  # Kannel smsc_smpp.c: the SMSC throttles the bind
    "ESME_RMSGQFUL": "throttled",  # the SMSC's message queue is full
    "ESME_RSYSERR": "gateway",  # the SMSC's own system error
    "ESME_RINVDSTADR": "invalid_number",
}
#: Kannel's SMSC NACK without a command status (`NACK/Retries Exceeded`: a temporary refusal,
#: ESME_RTHROTTLED/RMSGQFUL/RSYSERR/RX_T_APPN, retried until `sms-resend-retry`, Kannel
#: bb_smscconn.c): the refusal is told, its cause is a guess.
NACK = "NACK"

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
#: The store's own (not exported) counter of each unlisted code seen, per gateway: the landing
#: page lists them; a metric label would be unbounded (issue 12, "an unknown code is news").
UNLISTED_CODES = "smswatch:unlisted_code"

_PHONE_LIKE = re.compile(r"\d{7,}")


def code_text(code: str) -> str:
    """A provider code fit to store and show: digit runs long enough to be a phone number are
    masked, and the text is cut to 40 characters."""
    return _PHONE_LIKE.sub("#######", (code or "").strip())[:40]


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
SMPP = CodeTable("smpp", CODE_CAUSES, ambiguous=frozenset({"NOROUTE"}))

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
    ambiguous=SMPP.ambiguous,
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
    ambiguous=SMPP.ambiguous,
)

#: Twilio `error_code` (§1, §10). Each entry cites the error page it comes from
#: (twilio.com/docs/api/errors/<code>); [R] where only a secondary source was found.
TWILIO = CodeTable(
    "twilio",
    {
        "30001": "throttled",  # queue overflow: sent faster than the account's rate [V] /30001
        "30002": "gateway",  # account suspended (C4) [V] /30002
        "30010": "gateway",  # price exceeds MaxPrice (C4) [V] /30010
        "21601": "gateway",  # From is not an SMS-capable number of the account (C4) [V] /21601
        "21608": "gateway",  # the To number is not verified for a trial/unprofiled account:
        #                      account set-up (C4) [V] /21608
        "30024": "gateway",  # sender id not provisioned with the carrier (C4) [V] /30024
        "30032": "gateway",  # [R] toll-free number not verified
        "30034": "gateway",  # [R] unregistered 10DLC number
        "30005": "invalid_number",  # unknown handset, inactive number [V] /30005
        "30006": "invalid_number",  # landline or unreachable carrier [V] /30006
        "21211": "invalid_number",  # invalid To [V] /21211
        "30003": "unreachable",  # handset off, no signal, roaming [V] /30003
        "20003": "integration",  # authentication failed [V] /20003
        "20429": "throttled",  # too many requests [V] /20429
        "30022": "throttled",  # [R] 10DLC rate cap
        "30023": "throttled",  # [R] 10DLC daily cap
        "63038": "throttled",  # the account's daily message limit [V issue 12; R error page]
        "30007": "filtered",  # carrier filter (spam/fraud) [V] /30007
        "30004": "filtered",  # message blocked [V] /30004
        "21610": "filtered",  # recipient opted out [V] /21610
        "30450": "filtered",  # blocked by SMS pumping protection [V issue 12; R error page]
        "30008": "unknown",  # unknown error [V] /30008
    },
    # 30006 mixes landlines (a wrong number on file) with carriers that cannot be reached.
    ambiguous=frozenset({"30006"}),
    defaults={**STATUS_DEFAULT_CAUSES, "failed": "gateway"},  # Twilio never sent it
)

#: Vonage DLR `err-code`, the whole published table (§2 [V] api.support.vonage.com 204014733,
#: developer.vonage.com/messaging/sms/guides/delivery-receipts). This is the *receipt* table:
#: the submit-time API status (where 15 is "invalid sender") is another one.
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
        "11": "gateway",  # unroutable: Vonage has no route to the network (weak)
        "12": "invalid_number",  # destination unreachable (the reference files it under C2)
        "13": "filtered",  # age restriction (the handset's own barring)
        "14": "filtered",  # blocked by carrier
        "15": "unreachable",  # prepaid insufficient funds: the *recipient's* prepaid credit
        "16": "throttled",  # gateway quota exceeded [V issue 12]
        "29": "gateway",  # non-whitelisted destination: the account's own restriction (C4)
        "50": "filtered",  # entity filter
        "51": "filtered",  # header filter
        "52": "filtered",  # content filter
        "53": "filtered",  # consent filter
        "54": "filtered",  # regulation error
        "99": "unknown",  # general error
    },
    ambiguous=frozenset({"1", "5", "11", "12"}),
)

#: Alibaba Cloud receipt ErrCode and API codes (§3: receipt codes [V mirror, R official];
#: API codes [V] alibabacloud.com/help/en/sms/developer-reference/error-codes). Compared
#: upper-cased.
ALIYUN = CodeTable(
    "aliyun",
    {
        "ISP.SYSTEM_ERROR": "gateway",
        "ISP.GATEWAY_ERROR": "gateway",
        "IS_CLOSE": "gateway",  # channel closed
        "NO_ROUTE": "gateway",  # no channel for the destination (issue 12) [V error-codes]
        "ISV.SMS_SIGN_NAME_ILLEGAL": "gateway",  # C4
        "ISV.SMS_SIGN_ILLEGAL": "gateway",  # C4: signature not approved [V error-codes]
        "ISV.SMS_SIGNATURE_SCENE_ILLEGAL": "gateway",  # C4: signature scene [V error-codes]
        "ISV.SMS_CONTENT_CODE_ILLEGAL": "gateway",  # C4
        "ISV.SMS_TEMPLATE_ILLEGAL": "gateway",  # C4
        "ISV.OUT_OF_SERVICE": "gateway",  # C4
        "ISV.AMOUNT_NOT_ENOUGH": "gateway",  # C4
        "SIGNATURE_BLACKLIST": "gateway",  # C4
        "CONTENT_ERROR": "gateway",  # C4: no opt-out line
        "ISV.MOBILE_NUMBER_ILLEGAL": "invalid_number",
        "MOBILE_ACCOUNT_ABNORMAL": "invalid_number",  # arrears or ported
        # INVALID_NUMBER also covers switched-off and out-of-service handsets (issue 12):
        # like MOBILE_NOT_ON_SERVICE, a best guess, counted as ambiguous.
        "INVALID_NUMBER": "invalid_number",
        "MOBILE_NOT_ON_SERVICE": "unreachable",  # 停机/空号/关机/不在服务区: C2 and C3 mixed
        "MOBLLE_TERMINAL_ERROR": "unreachable",  # (sic) memory or SIM full
        "MOBILE_TERMINAL_ERROR": "unreachable",  # the same, spelt right, should it be fixed
        # No carrier receipt came back: most likely a recipient-side state (off, out of
        # coverage), not the bank's request (issue 12): unreachable, ambiguous.
        "REQUEST_SUCCESS": "unreachable",
        # NOROUTE in a receipt: usually a busy network or an empty number (issue 12).
        "NOROUTE": "unreachable",
        "ISV.INVALID_PARAMETERS": "integration",
        "ISV.INVALID_JSON_PARAM": "integration",
        "PARAMS_ILLEGAL": "integration",
        "ISP.RAM_PERMISSION_DENY": "integration",
        "ISV.BUSINESS_LIMIT_CONTROL": "throttled",
        "ISV.DAY_LIMIT_CONTROL": "throttled",  # daily cap [V error-codes]
        "ISV.MONTH_LIMIT_CONTROL": "throttled",  # monthly cap [V error-codes]
        "MOBILE_SEND_LIMIT": "throttled",
        "THROTTLING.USER": "throttled",
        "CONTENT_KEYWORD": "filtered",
        "ISV.SMS_CONTENT_ILLEGAL": "filtered",  # content refused [V error-codes]
        "MOBILE_IN_BLACK": "filtered",
        "USER_REJECT": "filtered",
        "ISV.BLACK_KEY_CONTROL_LIMIT": "filtered",
        "SP_UNKNOWN_ERROR": "unknown",
    },
    # Reference §10 note 2: split by repetition would need the raw number; smswatch keeps
    # only masked numbers, so these keep their best-guess cause and their share is counted.
    ambiguous=frozenset({"MOBILE_NOT_ON_SERVICE", "INVALID_NUMBER", "REQUEST_SUCCESS", "NOROUTE"}),
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
        # The rest of the send-error table, taken whole (cloud.tencent.com/document/product/
        # 382/3771, 短信发送错误码) [V]:
        "1001": "integration",  # sig verification failed
        "1002": "filtered",  # sensitive words in the content
        "1003": "integration",  # no sig
        "1004": "integration",  # request not parseable
        "1006": "integration",  # no permission
        "1007": "unknown",  # other errors
        "1009": "integration",  # source IP not on the allow-list
        "1011": "integration",  # no such REST API
        "1017": "integration",  # content too long
        "1019": "integration",  # sdkappid does not exist
        "1029": "filtered",  # marketing SMS outside 8:00–22:00
        "1030": "integration",  # request not supported
        "1032": "gateway",  # a personal account may not send marketing SMS (C4)
        "1034": "integration",  # mainland and international numbers in one request
        "1036": "integration",  # template variable over 12 characters
        "1038": "integration",  # verification-code variable not 0–6 digits
        "1045": "gateway",  # region not supported (C4)
        "1046": "integration",  # over 200 numbers in one request
        "1047": "throttled",  # international daily cap
        "1048": "integration",  # URL in a template variable
        "60008": "gateway",  # processing timed out
        "UNKNOWN": "unknown",
    },
    # A bare UNDELIV/EXPIRED is an outcome, not a cause (§10 note 1): inferred, counted.
    ambiguous=frozenset({"UNDELIV", "EXPIRED"}),
)

#: Jasmin level-1 `message_status` (SMPP `submit_sm_resp` command status) → cause of a
#: refused submission (§7, §10), on top of every `err` dialect: whichever `error_codes` a
#: Jasmin source uses, the ESME_* entries and the `rejected → integration` default stay.
_JASMIN_DEFAULTS = {**STATUS_DEFAULT_CAUSES, "rejected": "integration"}
JASMIN = CodeTable("jasmin", {**CODE_CAUSES, **ESME_CAUSES}, SMPP.ambiguous, _JASMIN_DEFAULTS)
JASMIN_8X8 = CodeTable(
    "jasmin_8x8", {**SMPP_8X8.codes, **ESME_CAUSES}, SMPP.ambiguous, _JASMIN_DEFAULTS
)
JASMIN_GSM_MAP = CodeTable(
    "jasmin_gsm_map", {**SMPP_GSM_MAP.codes, **ESME_CAUSES}, SMPP.ambiguous, _JASMIN_DEFAULTS
)

#: Kannel: the SMSC NACK (type 16) carries the command status in `%A` (`NACK/0x…/…`,
#: Kannel gw/bb_smscconn.c + gw/smsc/smsc_smpp.c) [V]; the adapter turns it into its ESME
#: name. Every dialect keeps those entries; a NACK without a status is a guess (`NACK`).
_KANNEL_EXTRA = {**ESME_CAUSES, NACK: "integration"}
_KANNEL_AMBIGUOUS = SMPP.ambiguous | {NACK}
KANNEL = CodeTable("kannel", {**CODE_CAUSES, **_KANNEL_EXTRA}, _KANNEL_AMBIGUOUS)
KANNEL_8X8 = CodeTable("kannel_8x8", {**SMPP_8X8.codes, **_KANNEL_EXTRA}, _KANNEL_AMBIGUOUS)
KANNEL_GSM_MAP = CodeTable(
    "kannel_gsm_map", {**SMPP_GSM_MAP.codes, **_KANNEL_EXTRA}, _KANNEL_AMBIGUOUS
)

TABLES: dict[str, CodeTable] = {
    t.name: t
    for t in (
        SMPP,
        SMPP_8X8,
        SMPP_GSM_MAP,
        TWILIO,
        VONAGE,
        ALIYUN,
        TENCENT,
        JASMIN,
        JASMIN_8X8,
        JASMIN_GSM_MAP,
        KANNEL,
        KANNEL_8X8,
        KANNEL_GSM_MAP,
    )
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

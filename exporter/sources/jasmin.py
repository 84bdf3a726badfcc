"""Jasmin SMS gateway DLR pushes (reference sms-providers.md §7).

Facts used:
- [V] the bank sends with `dlr=yes&dlr-url=…&dlr-level=1|2|3&dlr-method=GET|POST`; the receiver
  must answer 200 with the body `ACK/Jasmin`, else Jasmin retries (`retry_delay=30`,
  `max_retries=3`); level 1 carries `id, message_status` (the `submit_sm_resp` status, e.g.
  `ESME_ROK`) and `level`; levels 2/3 add `id_smsc, subdate, donedate` (YYMMDDhhmm), `sub,
  dlvrd, err, text` (jookies/jasmin misc/doc/sources/apis/ja-http/receiving-dlr.rst);
- [V] level-1 DLRs for retried refusals (below; jasmin/managers/listeners.py);
- [R] that on levels 2/3 `message_status` is the SMPP stat (DELIVRD, UNDELIV, …); smswatch
  reads it so, and an unknown word makes the DLR unusable (counted invalid), never a guess;
- [R] the SMSC's zone for `donedate` (option `smsc_utc_offset`, unset by default: timed on
  receipt).

Jasmin retries a submission refused with one of the `submit_error_retrial` statuses (default
ESME_RSYSERR ×2, ESME_RTHROTTLED ×20, ESME_RMSGQFUL ×2, ESME_RINVSCHED ×2) and sends a level-1
DLR for *every* `submit_sm_resp`, the retried ones included [V jookies/jasmin
jasmin/managers/listeners.py `submit_sm_resp_event`, jasmin/managers/configs.py]. Such a
status is therefore not the message's final one: it is taken as a pending submission (the
option `submit_error_retrial` lists the statuses, as Jasmin's `[sm-listener]` does). When every
retry fails, Jasmin's last DLR looks the same, so such a message is given up as `unknown` after
`give_up_after` — never counted as a refusal that was later delivered.

Jasmin's `id` is its own message id, the same on every level: it is the message id here. The
bank adds its transaction reference to the dlr-url it sets (`?ref=…`, optionally `carrier`,
`area`). Level 1 `ESME_ROK` is the submission (timed on receipt); any other `ESME_R*` is a
refused submission (status rejected, the ESME status as code). Done dates have no zone and
minute precision: finals are timed when smswatch received them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from exporter.classify import normalize_status
from exporter.records import SmsEvent
from exporter.sources.smpp import dlr_url_event, done_time_ms, parse_smsc_date

#: The acknowledgement Jasmin waits for [V].
ACK = b"ACK/Jasmin"

#: The refusals Jasmin retries by default (jasmin/managers/configs.py `submit_error_retrial`).
RETRIED_BY_DEFAULT: tuple[str, ...] = (
    "ESME_RSYSERR",
    "ESME_RTHROTTLED",
    "ESME_RMSGQFUL",
    "ESME_RINVSCHED",
)


def parse_dlr(
    params: Mapping[str, str],
    received_ms: int,
    retried: Collection[str] = RETRIED_BY_DEFAULT,
    smsc_utc_offset: int | None = None,
) -> SmsEvent | None:
    """One DLR's parameters → an event, or None when it is not a usable DLR.

    A level-1 refusal in `retried` is a submission Jasmin will try again: pending, not final.
    With the SMSC's zone (`smsc_utc_offset`) a final status is timed at its `donedate`.
    """
    message_id = params.get("id", "")
    word = params.get("message_status", "").strip()
    if not message_id or not word:
        return None
    code = params.get("err", "")
    upper = word.upper()
    if upper == "ESME_ROK" or upper in retried:
        status: str | None = "submitted"
        code = ""
    elif upper.startswith("ESME_"):
        status, code = "rejected", upper
    else:
        status = normalize_status(word)
        if status is None:
            return None
    if status is None:
        return None
    at = None
    if status != "submitted":
        done = parse_smsc_date(params.get("donedate", ""))
        at = done_time_ms(done, smsc_utc_offset, received_ms)
    return dlr_url_event(params, message_id, status, code, received_ms, at)

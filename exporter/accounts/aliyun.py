"""Alibaba Cloud: signature and template review states (Dysmsapi 2017-05-25) and the account
balance (BSS OpenAPI 2017-12-14).

Facts used, with their provenance (aliyun/alibabacloud-python-sdk):
- [V] `QuerySmsSignList` takes `PageIndex` (default 1) and `PageSize` (1–50) and answers
  `{Code: "OK", TotalCount, SmsSignList[]{SignName, AuditStatus, Reason{RejectInfo}}}`;
  `AuditStatus` AUDIT_STATE_INIT under review, AUDIT_STATE_PASS approved,
  AUDIT_STATE_NOT_PASS rejected, AUDIT_STATE_CANCEL review cancelled
  (dysmsapi-20170525/alibabacloud_dysmsapi20170525/models/_query_sms_sign_list_request.py,
  _query_sms_sign_list_response_body.py);
- [V] `QuerySmsTemplateList` answers `SmsTemplateList[]{TemplateCode, TemplateName,
  AuditStatus}` with the same states, the cancelled one spelled `AUDIT_SATE_CANCEL` there
  (models/_query_sms_template_list_response_body.py): both spellings are read;
  [R] that it pages with `PageIndex`/`PageSize` like the signature list;
- [V] Dysmsapi has no balance or package action (models/__init__.py lists none); the balance
  that pays for SMS is the account's: BSS OpenAPI `QueryAccountBalance` answers
  `{Code, Success, Data{AvailableAmount, Currency (CNY, USD, JPY)}}` with amounts as strings
  (bssopenapi-20171214/alibabacloud_bssopenapi20171214/models/
  _query_account_balance_response_body.py); [R] its host business.aliyuncs.com and that an
  amount may carry thousands separators ("1,000.00");
- [V] both are RPC-style APIs signed with the AccessKey (HMAC-SHA1), the source adapter's
  signer (exporter.sources.aliyun.signed_params);
- [V] API error codes: `Code` other than OK (Dysmsapi error codes, help.aliyun.com 101346).

A signature is exported under its `SignName`, a template under its `TemplateCode`: what SendSms
takes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from exporter.accounts.readings import Balance, Sender, read_answer
from exporter.accounts.settings import AccountSettings
from exporter.config import SourceConfig
from exporter.sources.aliyun import API_VERSION, ApiError, signed_params
from exporter.sources.client import BadPayload, SourceClient

BSS_VERSION = "2017-12-14"
PAGE_SIZE = 50  # [V] 1 to 50
MAX_PAGES = 100

#: AuditStatus → state [V] aliyun/alibabacloud-python-sdk dysmsapi-20170525/
#: alibabacloud_dysmsapi20170525/models/_query_sms_sign_list_response_body.py and
#: _query_sms_template_list_response_body.py (`audit_status`).
STATES: dict[str, str] = {
    "AUDIT_STATE_INIT": "pending",
    "AUDIT_STATE_PASS": "approved",
    "AUDIT_STATE_NOT_PASS": "rejected",
    "AUDIT_STATE_CANCEL": "cancelled",
    "AUDIT_SATE_CANCEL": "cancelled",  # sic, the template list's spelling
}
#: Each list action: kind → (action, list key, name key).
LISTS: dict[str, tuple[str, str, str]] = {
    "signature": ("QuerySmsSignList", "SmsSignList", "SignName"),
    "template": ("QuerySmsTemplateList", "SmsTemplateList", "TemplateCode"),
}


def parse_senders(payload: Any, kind: str) -> tuple[list[Sender], int]:
    """A QuerySmsSignList (`signature`) or QuerySmsTemplateList (`template`) answer →
    (its senders, TotalCount)."""
    _, key, name_key = LISTS[kind]
    if not isinstance(payload, dict):
        raise BadPayload("not a JSON object")
    if payload.get("Code") != "OK":
        raise ApiError(str(payload.get("Code")), str(payload.get("Message", "")))
    items = payload.get(key)
    if not isinstance(items, list):
        raise BadPayload(f"no '{key}' list")
    senders = []
    for item in items:
        name = item.get(name_key) if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise BadPayload(f"an item without '{name_key}'")
        senders.append(Sender(kind, name, STATES.get(str(item.get("AuditStatus")), "unknown")))
    total = payload.get("TotalCount", len(items))
    return senders, int(total) if isinstance(total, int) else len(items)


def parse_balance(payload: Any) -> Balance:
    """A QueryAccountBalance answer → the available amount in its currency."""
    if not isinstance(payload, dict):
        raise BadPayload("not a JSON object")
    if payload.get("Success") is not True:
        raise ApiError(str(payload.get("Code")), str(payload.get("Message", "")))
    data = payload.get("Data")
    amount = data.get("AvailableAmount") if isinstance(data, dict) else None
    currency = data.get("Currency") if isinstance(data, dict) else None
    if not isinstance(currency, str) or not currency:
        raise BadPayload("no Data.Currency")
    try:
        return Balance(float(str(amount).replace(",", "")), currency.upper())
    except ValueError as exc:
        raise BadPayload(f"Data.AvailableAmount is not a number: {amount!r}") from exc


class AliyunAccount:
    """Signed RPC calls of the account actions with the source's AccessKey."""

    def __init__(self, source: SourceConfig, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.clock = clock

    def call(
        self,
        client: SourceClient,
        action: str,
        params: dict[str, str | int],
        deadline: float,
        version: str = API_VERSION,
    ) -> Any:
        """GET one signed action; its answer's payload."""
        auth = self.source.auth

        def sign(method: str, query: dict[str, str | int], body: bytes) -> Any:
            signed = signed_params(
                action,
                {k: str(v) for k, v in query.items()},
                auth.username,
                auth.secret,
                now=self.clock(),
                nonce=str(uuid.uuid4()),
                method=method,
                version=version,
            )
            return signed, {}

        return client.request("GET", "/", params, deadline, sign=sign).payload

    def read_balance(
        self, client: SourceClient, settings: AccountSettings, deadline: float
    ) -> Balance:
        """The account's available balance (BSS OpenAPI; `client` speaks to `balance_url`)."""
        payload = self.call(client, "QueryAccountBalance", {}, deadline, version=BSS_VERSION)
        return read_answer(client, lambda: parse_balance(payload))

    def read_senders(
        self, client: SourceClient, settings: AccountSettings, deadline: float
    ) -> list[Sender]:
        """Every signature and template the account lists, with its review state."""
        senders: list[Sender] = []
        for kind, (action, _, _) in LISTS.items():
            seen = 0
            for page in range(1, MAX_PAGES + 1):
                params: dict[str, str | int] = {"PageIndex": page, "PageSize": PAGE_SIZE}
                payload = self.call(client, action, params, deadline)
                found, total = read_answer(client, partial(parse_senders, payload, kind))
                senders.extend(found)
                seen += len(found)
                if not found or seen >= total:
                    break
        return senders

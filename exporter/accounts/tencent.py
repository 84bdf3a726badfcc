"""Tencent Cloud SMS (API 3.0, 2021-01-11): package quota and signature/template review states.

Facts used, with their provenance (TencentCloud/tencentcloud-sdk-python
tencentcloud/sms/v20210111/models.py and sms_client.py):
- [V] `SmsPackagesStatistics` "统计用户套餐包数据" takes `SmsSdkAppId`, `Limit` (at most 500),
  `Offset`, `BeginTime` and `EndTime` as `yyyymmddhh`, and answers for the packages *created*
  between them; `EndTime` must be later than `BeginTime` and before now
  (`SmsPackagesStatisticsRequest`). Each `SmsPackagesStatisticsSet[]` item has
  `PackageAmount` and `CurrentUsage` (条, messages), `PackageEffectiveTime` and
  `PackageExpiredTime` (Unix s) (`SmsPackagesStatistics`). Remaining quota = Σ(amount − usage)
  over the packages in effect now. The same parameters, 10 requests/s, and an answer with
  Unix-second times: [V] cloud.tencent.com/document/api/382/55964. [R] the zone of
  `yyyymmddhh`: taken as Beijing time. The international site (sms.intl) has no such action
  (tencentcloud.com/document/product/382/40470, release 2 deleted it).
- [V] `DescribeSmsSignList` takes `International` (0/1), `Limit` (at most 100) and `Offset`
  (used when `SignIdSet` is empty) and answers `DescribeSignListStatusSet[]{SignId, SignName,
  StatusCode, ReviewReply}`; domestic `StatusCode` 0 usable, 1 in review, 2 approved and not
  in effect yet, -1 not approved, failed or unusable (`DescribeSignListStatus`).
- [V] `DescribeSmsTemplateList` likewise (`TemplateIdSet` empty: `Limit`/`Offset`) answers
  `DescribeTemplateStatusSet[]{TemplateId, TemplateName, StatusCode}`; `StatusCode` 0 approved
  and in effect, 1 in review, 2 approved and not in effect, -1 rejected; "only 0 can be used"
  (`DescribeTemplateListStatus`).
- [V] personally verified accounts cannot query signatures or templates by API
  (sms_client.py, DescribeSmsSignList docstring): the answer is an error, the check fails.
- Signing: TC3-HMAC-SHA256, the source adapter's signer (exporter.sources.tencent).

A signature is exported under its `SignName`, a template under its `TemplateId`: what SendSms
takes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from exporter.accounts.readings import Quota, Sender, read_answer
from exporter.accounts.settings import AccountSettings
from exporter.config import SourceConfig
from exporter.sources.client import BadPayload, SourceClient
from exporter.sources.pulling import BEIJING
from exporter.sources.tencent import ApiError, tc3_headers

PACKAGES_LIMIT = 500  # [V] Limit 默认最大值为500
LIST_LIMIT = 100  # [V] 最多100
MAX_PAGES = 100

#: StatusCode → state, the same for signatures and templates [V] TencentCloud/
#: tencentcloud-sdk-python tencentcloud/sms/v20210111/models.py `DescribeSignListStatus`,
#: `DescribeTemplateListStatus`: 0 usable (approved and in effect), 1 in review, 2 approved
#: and not in effect yet, -1 not approved, failed or unusable.
STATES: dict[int, str] = {0: "approved", 1: "pending", 2: "pending", -1: "rejected"}


def hour_text(unix_s: float) -> str:
    """`yyyymmddhh` of a moment, Beijing time."""
    return datetime.fromtimestamp(unix_s, BEIJING).strftime("%Y%m%d%H")


def response_of(payload: Any) -> dict[str, Any]:
    """The `Response` object of an answer (ApiError on `Response.Error`)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("Response"), dict):
        raise BadPayload("no 'Response' object")
    response: dict[str, Any] = payload["Response"]
    error = response.get("Error")
    if isinstance(error, dict):
        raise ApiError(str(error.get("Code", "")), str(error.get("Message", "")))
    return response


def parse_packages(payload: Any, now_s: float) -> tuple[list[tuple[int, int]], int]:
    """One SmsPackagesStatistics answer → ((amount, left) of each package in effect at
    `now_s`, packages in the answer)."""
    items = response_of(payload).get("SmsPackagesStatisticsSet")
    if not isinstance(items, list):
        raise BadPayload("no 'SmsPackagesStatisticsSet' list")
    live: list[tuple[int, int]] = []
    for item in items:
        if not isinstance(item, dict):
            raise BadPayload("a package is not an object")
        try:
            amount = int(item["PackageAmount"])
            used = int(item["CurrentUsage"])
            effective = int(item.get("PackageEffectiveTime") or 0)
            expires = int(item["PackageExpiredTime"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadPayload(f"a package without its amount, usage or expiry: {exc}") from exc
        if effective <= now_s < expires:
            live.append((amount, max(0, amount - used)))
    return live, len(items)


def parse_senders(payload: Any, kind: str) -> list[Sender]:
    """A DescribeSmsSignList (`signature`) or DescribeSmsTemplateList (`template`) answer."""
    key, name_key = (
        ("DescribeSignListStatusSet", "SignName")
        if kind == "signature"
        else ("DescribeTemplateStatusSet", "TemplateId")
    )
    items = response_of(payload).get(key)
    if not isinstance(items, list):
        raise BadPayload(f"no '{key}' list")
    senders = []
    for item in items:
        name = item.get(name_key) if isinstance(item, dict) else None
        if name is None or name == "" or isinstance(name, bool):
            raise BadPayload(f"an item without '{name_key}'")
        code = item.get("StatusCode")
        state = STATES.get(code, "unknown") if isinstance(code, int) else "unknown"
        senders.append(Sender(kind, str(name), state))
    return senders


class TencentAccount:
    """Signed calls of the account actions with the source's SecretId/SecretKey."""

    def __init__(self, source: SourceConfig, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.clock = clock

    def call(self, client: SourceClient, action: str, body: dict[str, Any], deadline: float) -> Any:
        """POST one action; its answer's payload."""
        data = json.dumps(body, separators=(",", ":")).encode()

        def sign(
            method: str, params: dict[str, str | int], payload: bytes
        ) -> tuple[dict[str, str | int], dict[str, str]]:
            return params, tc3_headers(client.source, action, payload, int(self.clock()))

        return client.request("POST", "/", {}, deadline, body=data, sign=sign).payload

    def read_balance(
        self, client: SourceClient, settings: AccountSettings, deadline: float
    ) -> Quota:
        """Σ over the packages in effect: messages left, and their size."""
        now = self.clock()
        window = {
            "SmsSdkAppId": str(self.source.options["sms_sdk_app_id"]),
            "BeginTime": hour_text(now - settings.package_lookback_ms / 1000),
            "EndTime": hour_text(now),
        }
        live: list[tuple[int, int]] = []
        for page in range(MAX_PAGES):
            body = {**window, "Limit": PACKAGES_LIMIT, "Offset": page * PACKAGES_LIMIT}
            payload = self.call(client, "SmsPackagesStatistics", body, deadline)
            packages, count = read_answer(client, partial(parse_packages, payload, now))
            live.extend(packages)
            if count < PACKAGES_LIMIT:
                break
        return Quota(remaining=sum(left for _, left in live), total=sum(a for a, _ in live))

    def read_senders(
        self, client: SourceClient, settings: AccountSettings, deadline: float
    ) -> list[Sender]:
        """Every signature and template the account lists, with its review state."""
        senders: list[Sender] = []
        for kind, action in (
            ("signature", "DescribeSmsSignList"),
            ("template", "DescribeSmsTemplateList"),
        ):
            for page in range(MAX_PAGES):
                body = {
                    "International": 1 if settings.international else 0,
                    "Limit": LIST_LIMIT,
                    "Offset": page * LIST_LIMIT,
                }
                payload = self.call(client, action, body, deadline)
                found = read_answer(client, partial(parse_senders, payload, kind))
                senders.extend(found)
                if len(found) < LIST_LIMIT:
                    break
        return senders

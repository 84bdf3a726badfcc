"""The provider account the simulator serves beside its SMS feeds: a balance that burns down as
messages are sent, a package quota that is used up the same way, and approved senders (a
`sender_revoked` fault lists one rejected while it lasts).

Every run answers the account calls of all four provider shapes (API.md, "Provider accounts"),
whatever `--sms-api` says, so `account:` can be tried against any of them. The messages sent
are the simulation's own submissions (its truth), so a test can compare the balance the
exporter shows with `start − price × sent` exactly: amounts are kept in integer millionths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Actions (and shapes) the simulator answers, by the provider's action name.
TENCENT_ACTIONS = ("SmsPackagesStatistics", "DescribeSmsSignList", "DescribeSmsTemplateList")
ALIYUN_ACTIONS = ("QuerySmsSignList", "QuerySmsTemplateList", "QueryAccountBalance")

MICRO = 1_000_000


@dataclass(frozen=True)
class Credit:
    """A prepaid balance: what it starts at and what one message costs, in millionths."""

    currency: str
    start_micros: int
    price_micros: int

    def left_micros(self, sent: int) -> int:
        """What is left after `sent` messages (negative once overdrawn)."""
        return self.start_micros - self.price_micros * sent

    def left(self, sent: int) -> float:
        """The balance after `sent` messages, as the provider shows it."""
        return self.left_micros(sent) / MICRO


#: Each shape's balance: a price close to the provider's list price for a Chinese number.
CREDITS: dict[str, Credit] = {
    "twilio": Credit("USD", 500 * MICRO, 7_900),
    "vonage": Credit("EUR", 500 * MICRO, 6_800),
    "aliyun": Credit("CNY", 5_000 * MICRO, 45_000),
}
#: Tencent's package: this many messages, created 30 days before the run, valid a year.
PACKAGE_MESSAGES = 100_000
DAY_S = 86_400
#: The senders every shape lists, all approved: (signature, template id, template code).
SIGNATURE = "某银行"
TEMPLATE_ID = 1110
TEMPLATE_CODE = "SMS_15305001"


def balances(sent: int) -> dict[str, dict[str, Any]]:
    """Every shape's balance after `sent` messages (the truth document's `account`)."""
    return {
        shape: {"amount": credit.left(sent), "currency": credit.currency}
        for shape, credit in CREDITS.items()
    }


def twilio_balance(account_sid: str, sent: int) -> dict[str, Any]:
    """Balance.json (twilio-python BalanceInstance: `balance` is a string)."""
    credit = CREDITS["twilio"]
    return {"account_sid": account_sid, "balance": str(credit.left(sent)), "currency": "USD"}


def vonage_balance(sent: int) -> dict[str, Any]:
    """get-balance (vonage-python-sdk account/tests/data/get_balance.json)."""
    return {"value": CREDITS["vonage"].left(sent), "autoReload": False}


def aliyun_answer(
    action: str, sent: int, request_id: str, revoked: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """QuerySmsSignList, QuerySmsTemplateList (Dysmsapi) or QueryAccountBalance (BSS);
    `revoked` holds the senders (`signature`, `template`) a fault has revoked."""
    if action == "QueryAccountBalance":
        amount = f"{CREDITS['aliyun'].left(sent):,.6f}"
        return {
            "Code": "200",
            "Message": "Successful!",
            "RequestId": request_id,
            "Success": True,
            "Data": {"AvailableAmount": amount, "AvailableCashAmount": amount, "Currency": "CNY"},
        }
    kind = "signature" if action == "QuerySmsSignList" else "template"
    state = "AUDIT_STATE_NOT_PASS" if kind in revoked else "AUDIT_STATE_PASS"
    item: dict[str, Any]
    if kind == "signature":
        key, item = "SmsSignList", {"SignName": SIGNATURE, "AuditStatus": state}
    else:
        key = "SmsTemplateList"
        item = {"TemplateCode": TEMPLATE_CODE, "TemplateName": "交易提醒", "AuditStatus": state}
    if kind in revoked:
        item["Reason"] = {"RejectInfo": "资质已过期", "RejectSubInfo": "请重新提交资质"}
    return {"Code": "OK", "Message": "OK", "RequestId": request_id, "TotalCount": 1, key: [item]}


def tencent_answer(
    action: str,
    sent: int,
    start_s: int,
    request_id: str,
    revoked: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """SmsPackagesStatistics, DescribeSmsSignList or DescribeSmsTemplateList (`Response`);
    a revoked sender has `StatusCode` -1 (not approved, unusable)."""
    if action == "SmsPackagesStatistics":
        created = start_s - 30 * DAY_S
        body: dict[str, Any] = {
            "SmsPackagesStatisticsSet": [
                {
                    "PackageCreateTime": created,
                    "PackageEffectiveTime": created,
                    "PackageExpiredTime": created + 365 * DAY_S,
                    "PackageAmount": PACKAGE_MESSAGES,
                    "PackageType": 1,
                    "PackageId": 1001,
                    "CurrentUsage": min(sent, PACKAGE_MESSAGES),
                }
            ]
        }
    elif action == "DescribeSmsSignList":
        code = -1 if "signature" in revoked else 0
        sign = {"SignId": 1211, "International": 0, "StatusCode": code, "SignName": SIGNATURE}
        body = {"DescribeSignListStatusSet": [sign]}
    else:
        template = {
            "TemplateId": TEMPLATE_ID,
            "International": 0,
            "StatusCode": -1 if "template" in revoked else 0,
            "TemplateName": "交易提醒",
        }
        body = {"DescribeTemplateStatusSet": [template]}
    return {"Response": {**body, "RequestId": request_id}}


def quota_left(sent: int) -> int:
    """Messages left in the Tencent-shaped package after `sent` messages."""
    return max(0, PACKAGE_MESSAGES - sent)

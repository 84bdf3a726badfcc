"""Twilio: the account balance (Balance resource).

Facts used, with their provenance:
- [V] `GET /2010-04-01/Accounts/{AccountSid}/Balance.json` (twilio/twilio-python
  twilio/rest/api/v2010/account/balance.py, `BalanceList._uri` under the v2010 base);
- [V] answer fields `account_sid`, `balance` (a string: "The balance of the Account, in units
  specified by the unit parameter"; subaccounts carry none) and `currency` (same file,
  `BalanceInstance`);
- [V] HTTP Basic auth AccountSid:AuthToken, as for the Messages list (exporter.sources.twilio);
- [V] errors are HTTP 4xx/5xx with a JSON body `{code, message, more_info, status}`
  (twilio-python twilio/base/version.py `exception`): counted by the shared client.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from exporter.accounts.readings import Balance, read_answer
from exporter.accounts.settings import AccountSettings
from exporter.config import SourceConfig
from exporter.sources.client import BadPayload, SourceClient

BALANCE_PATH = "/2010-04-01/Accounts/{account_sid}/Balance.json"


def parse_balance(payload: Any) -> Balance:
    """A Balance answer → its balance (BadPayload without a numeric `balance` or `currency`)."""
    if not isinstance(payload, dict):
        raise BadPayload("Balance answer is not an object")
    amount, currency = payload.get("balance"), payload.get("currency")
    if not isinstance(currency, str) or not currency:
        raise BadPayload("Balance answer without 'currency' (a subaccount has no balance)")
    try:
        return Balance(float(str(amount)), currency.upper())
    except ValueError as exc:
        raise BadPayload(f"'balance' is not a number: {amount!r}") from exc


class TwilioAccount:
    """The Balance resource of the source's account."""

    def __init__(self, source: SourceConfig) -> None:
        self.source = source

    def read_balance(
        self, client: SourceClient, settings: AccountSettings, deadline: float
    ) -> Balance:
        """Fetch and read the account balance."""
        sid = quote(str(self.source.options["account_sid"]), safe="")
        payload = client.request("GET", BALANCE_PATH.format(account_sid=sid), {}, deadline).payload
        return read_answer(client, lambda: parse_balance(payload))

"""Vonage: the account balance (Account API get-balance).

Facts used, with their provenance:
- [V] `GET https://rest.nexmo.com/account/get-balance` with HTTP Basic auth api_key:api_secret
  (Vonage/vonage-python-sdk account/src/vonage_account/account.py `Account.get_balance`:
  `rest_host`, '/account/get-balance', `auth_type='basic'`; account/tests/test_account.py);
- [V] answer `{"value": 29.18202293, "autoReload": false}` (account/tests/data/get_balance.json)
  and `value` is "The balance of the account in EUR" (account/src/vonage_account/responses.py
  `Balance`): the answer names no currency, so the `currency` option (default EUR) labels it;
- [V] errors are HTTP 4xx with a problem body `{type, title, detail, instance}`
  (http_client/tests/data/401.json): counted by the shared client.
"""

from __future__ import annotations

from typing import Any

from exporter.accounts.readings import Balance, read_answer
from exporter.accounts.settings import AccountSettings
from exporter.config import SourceConfig
from exporter.sources.client import BadPayload, SourceClient

BALANCE_PATH = "/account/get-balance"


def parse_balance(payload: Any, currency: str) -> Balance:
    """A get-balance answer → its balance in `currency` (BadPayload without a numeric value)."""
    value = payload.get("value") if isinstance(payload, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadPayload("get-balance answer without a numeric 'value'")
    return Balance(float(value), currency)


class VonageAccount:
    """The get-balance answer of the source's account."""

    def __init__(self, source: SourceConfig) -> None:
        self.source = source

    def read_balance(
        self, client: SourceClient, settings: AccountSettings, deadline: float
    ) -> Balance:
        """Fetch and read the account balance."""
        payload = client.request("GET", BALANCE_PATH, {}, deadline).payload
        return read_answer(client, lambda: parse_balance(payload, settings.currency))

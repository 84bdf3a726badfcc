"""The `account:` section of an SMS gateway source: what to check on the provider account and
how often.

```yaml
sources:
  - name: tencent
    provider: tencent
    ...
    account:
      interval: 10m             # its own slow schedule (default 10m; at least 1m)
      base_url: https://sms.tencentcloudapi.com   # default: the provider's account API
      balance: true             # credit balance or package quota, where the provider has one
      approvals: true           # signature and template review states (aliyun, tencent)
      signatures: [某银行]       # watch these (default: every one the API lists)
      templates: ["1110"]       # Tencent TemplateId / Alibaba TemplateCode (default: all)
      international: false      # tencent: International=1 lists the international ones
      package_lookback: 400d    # tencent: packages created this far back are summed
      currency: EUR             # vonage: the balance's currency (the API gives none)
      balance_url: https://business.aliyuncs.com  # aliyun: BSS OpenAPI QueryAccountBalance
```
The account API is called with the source's own `auth` (and Tencent's `region`, Twilio's
`account_sid`). Errors name the field path (`sources[2].account.interval`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from exporter.errors import ConfigError
from exporter.timestamps import parse_duration_ms

if TYPE_CHECKING:
    from exporter.config import Auth

#: Providers with an account API smswatch reads, and which parts each one has.
ACCOUNT_PARTS: dict[str, tuple[str, ...]] = {
    "twilio": ("balance",),
    "vonage": ("balance",),
    "aliyun": ("balance", "approvals"),
    "tencent": ("balance", "approvals"),
}

#: Provider options an account needs, beyond its auth (`account.provider` sets them itself).
ACCOUNT_OPTIONS: dict[str, tuple[str, ...]] = {
    "twilio": ("account_sid",),
    "tencent": ("sms_sdk_app_id", "region"),
}

#: Default account API base URL per provider ("" = the source's own base_url).
DEFAULT_BASE_URLS: dict[str, str] = {
    # Vonage's account API lives on the REST host, not the Reports API host [V]
    # Vonage/vonage-python-sdk account/src/vonage_account/account.py `get_balance`:
    # `self._http_client.rest_host` + '/account/get-balance' (tests: https://rest.nexmo.com).
    "vonage": "https://rest.nexmo.com",
}
#: Alibaba's balance is the account's, read from the BSS OpenAPI (QueryAccountBalance) [R]
#: host; Dysmsapi has no balance or package action [V] aliyun/alibabacloud-python-sdk
#: dysmsapi-20170525/alibabacloud_dysmsapi20170525/models/__init__.py (no such model).
ALIYUN_BALANCE_URL = "https://business.aliyuncs.com"

_COMMON_KEYS = {"interval", "base_url", "balance"}
_PROVIDER_KEYS: dict[str, set[str]] = {
    "twilio": set(),
    "vonage": {"currency"},
    "aliyun": {"approvals", "signatures", "templates", "balance_url"},
    "tencent": {"approvals", "signatures", "templates", "international", "package_lookback"},
}
MIN_INTERVAL_MS = 60_000
DAY_MS = 86_400_000


@dataclass(frozen=True)
class AccountSettings:
    """What to check on one gateway's provider account, and how often."""

    interval_ms: int = 600_000
    base_url: str = ""  # the account API (already defaulted)
    balance: bool = True  # read the balance or package quota
    approvals: bool = False  # read signature and template review states
    signatures: tuple[str, ...] = ()  # () = every signature the API lists
    templates: tuple[str, ...] = ()  # () = every template the API lists
    international: bool = False  # tencent
    package_lookback_ms: int = 400 * DAY_MS  # tencent
    currency: str = "EUR"  # vonage
    balance_url: str = ALIYUN_BALANCE_URL  # aliyun
    #: Whose account, and how to sign in: the source's provider, auth and options, or the
    #: section's own (`account.provider`, `account.auth`); set by the config's reader.
    provider: str = ""
    auth: Auth | None = field(default=None, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)


def parse_account(
    raw: Any,
    path: str,
    provider: str,
    source_base_url: str,
    expand: Callable[[str, str], str],
) -> AccountSettings:
    """Validate one `account:` mapping; `expand(text, path)` resolves `${ENV}` references."""
    if provider not in ACCOUNT_PARTS:
        supported = ", ".join(sorted(ACCOUNT_PARTS))
        raise ConfigError(
            f"provider {provider} has no account API smswatch reads (one of: {supported})",
            path=path,
        )
    data: Mapping[str, Any] = {} if raw is None else raw
    if not isinstance(data, Mapping):
        raise ConfigError(f"must be a mapping, got {type(raw).__name__}", path=path)
    allowed = _COMMON_KEYS | _PROVIDER_KEYS[provider]
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})", path=path
            )
    read = _Fields(data, path, expand)
    interval = read.duration("interval", 600_000)
    if interval < MIN_INTERVAL_MS:
        raise ConfigError(
            "must be at least 1m: account APIs are slow, rate-limited and watched for trends",
            path=f"{path}.interval",
        )
    base_url = read.url("base_url", DEFAULT_BASE_URLS.get(provider) or source_base_url)
    has_approvals = "approvals" in ACCOUNT_PARTS[provider]
    settings = AccountSettings(
        interval_ms=interval,
        base_url=base_url,
        balance=read.flag("balance", True),
        approvals=read.flag("approvals", has_approvals),
        signatures=read.names("signatures"),
        templates=read.names("templates"),
        international=read.flag("international", False),
        package_lookback_ms=read.duration("package_lookback", 400 * DAY_MS),
        currency=read.text("currency", "EUR"),
        balance_url=read.url("balance_url", ALIYUN_BALANCE_URL),
    )
    if not (settings.balance or settings.approvals):
        raise ConfigError("checks nothing: balance and approvals are both false", path=path)
    return settings


class _Fields:
    """Reads the keys of one mapping, each error naming its field path."""

    def __init__(
        self, data: Mapping[str, Any], path: str, expand: Callable[[str, str], str]
    ) -> None:
        self.data = data
        self.path = path
        self.expand = expand

    def here(self, key: str) -> str:
        return f"{self.path}.{key}"

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            raise ConfigError("must be a non-empty string", path=self.here(key))
        return self.expand(str(value), self.here(key))

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"must be true or false, got {value!r}", path=self.here(key))
        return value

    def duration(self, key: str, default: int) -> int:
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, str):
            value = self.expand(value, self.here(key))
        try:
            ms = parse_duration_ms(value)
        except ValueError as exc:
            raise ConfigError(str(exc), path=self.here(key)) from exc
        if ms <= 0:
            raise ConfigError("must be greater than zero", path=self.here(key))
        return ms

    def url(self, key: str, default: str) -> str:
        value = self.text(key, default) if key in self.data else default
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"not an http(s) URL: {value!r}", path=self.here(key))
        if parsed.username or parsed.password:
            raise ConfigError("credentials in the URL are not allowed", path=self.here(key))
        return value.rstrip("/")

    def names(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            raise ConfigError("must be a list of names", path=self.here(key))
        out: list[str] = []
        for i, item in enumerate(value):
            here = f"{self.here(key)}[{i}]"
            if isinstance(item, bool) or not isinstance(item, str | int) or item == "":
                raise ConfigError("must be a non-empty string", path=here)
            name = self.expand(str(item), here)
            if name in out:
                raise ConfigError(f"duplicate value {name!r}", path=here)
            out.append(name)
        return tuple(out)

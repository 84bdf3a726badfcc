"""The YAML configuration: loading, `${ENV}` expansion, validation with field paths.

Every error names the file, the field path (``sources[1].auth.token_file``) and the problem,
and is raised as `ConfigError` (exit code 2). Secrets never live in the file itself: they come
from `${ENV}` references or `*_file` paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from exporter import objectives as defaults
from exporter.accounts.settings import (
    ACCOUNT_OPTIONS,
    ACCOUNT_PARTS,
    AccountSettings,
    parse_account,
)
from exporter.dialect import BACKENDS
from exporter.errors import ConfigError
from exporter.lookup.settings import LookupSettings, parse_lookup
from exporter.probes.settings import ProbeSettings, parse_probes
from exporter.reports.schedule import ReportsConfig, parse_reports_section
from exporter.timestamps import format_duration_ms, parse_duration_ms

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")

SOURCE_KINDS = ("sms_gateway", "acquirer")

#: The adapter (`provider:`) each source kind may use; `generic` is the configurable feed.
PROVIDERS: dict[str, tuple[str, ...]] = {
    "sms_gateway": ("generic", "twilio", "aliyun", "tencent", "vonage", "kannel", "jasmin"),
    "acquirer": ("generic", "stripe", "square"),
}
#: Providers that can be pulled (polled) and that can push; `generic` pulls only.
PULL_PROVIDERS = frozenset({"generic", "twilio", "aliyun", "tencent", "vonage", "stripe", "square"})
PUSH_PROVIDERS = frozenset({"aliyun", "tencent", "vonage", "kannel", "jasmin"})
#: Providers whose reports tell outcomes only: a message is known once its final status is,
#: so such a source is complete up to its clock − lag − give_up_after (Kannel and Jasmin push
#: the submission too: SMSC ACK `type=8`, level-1 `ESME_ROK`).
OUTCOME_ONLY_PROVIDERS = frozenset({"aliyun", "tencent", "vonage"})
#: Public API endpoints and the list path of each provider (base_url and path defaults).
PROVIDER_ENDPOINTS: dict[str, tuple[str, str]] = {
    "twilio": ("https://api.twilio.com", "/2010-04-01/Accounts/{account_sid}/Messages.json"),
    "aliyun": ("https://dysmsapi.aliyuncs.com", "/"),
    "tencent": ("https://sms.tencentcloudapi.com", "/"),
    "vonage": ("https://api.nexmo.com", "/v2/reports/records"),
    "stripe": ("https://api.stripe.com", "/v1/payment_intents"),
    "square": ("https://connect.squareup.com", "/v2/payments"),
}
#: Largest page each provider's API answers (its documented maximum).
PROVIDER_MAX_PAGE: dict[str, int] = {
    "twilio": 1000,  # PageSize max 1000 [V] CRAN twilio
    "aliyun": 50,  # PageSize 1..50 [V] QuerySendDetails
    "tencent": 100,  # Limit <= 100 [V] PullSmsSendStatus
    "vonage": 1000,  # [R] Reports API page size
    "stripe": 100,  # limit 1..100 [V] docs.stripe.com list
    "square": 100,  # [V] ListPayments max 100
}

#: Normalized record fields each source kind produces, with the default upstream field names
#: (those of the built-in simulator). `fields:` in a source maps ours → theirs (dotted paths).
SMS_FIELDS: dict[str, str] = {
    "message_id": "message_id",
    "txn_ref": "txn_ref",
    "phone": "phone",
    "carrier": "carrier",
    "area": "area",
    "status": "status",
    "error_code": "error_code",
    "submitted_at": "submitted_at",
    "status_at": "status_at",
    "acquirer": "acquirer",  # optional: scopes the RRN join to that acquirer's receipts
}
TRANSACTION_FIELDS: dict[str, str] = {
    "txn_id": "txn_id",
    "rrn": "rrn",
    "terminal_id": "terminal_id",
    "merchant_id": "merchant_id",
    "acquirer": "acquirer",
    "amount": "amount",
    "currency": "currency",
    "pan": "pan",
    "result": "result",
    "response_code": "response_code",
    "txn_time": "txn_time",
    "sms_expected": "sms_expected",
    "original_txn_id": "original_txn_id",
}
TERMINAL_FIELDS: dict[str, str] = {
    "terminal_id": "terminal_id",
    "merchant_id": "merchant_id",
    "acquirer": "acquirer",
    "area": "area",
    "software_version": "software_version",
    "sms_notice_enabled": "sms_notice_enabled",
    "changed_at": "changed_at",
    "last_seen": "last_seen",
    "history": "history",  # optional: [{"at": ts, "sms_notice_enabled": bool}, ...]
}


@dataclass(frozen=True)
class Auth:
    """How to authenticate to a source; secret values are already resolved."""

    type: str  # none | bearer | basic | header | aliyun | tc3
    username: str = ""  # basic: user; aliyun: AccessKeyId; tc3: SecretId
    secret: str = field(default="", repr=False)  # token, password or header value
    header: str = ""


@dataclass(frozen=True)
class FeedShape:
    """Where a paged feed keeps its items and paging fields (envelope keys)."""

    items: str
    cursor_param: str = "cursor"
    limit_param: str = "limit"
    next_cursor: str = "next_cursor"
    has_more: str = "has_more"
    watermark: str = "watermark"


@dataclass(frozen=True)
class SourceConfig:
    """One polled upstream API."""

    name: str
    kind: str
    base_url: str
    path: str
    poll_interval_ms: int = 15_000
    page_size: int = 500
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    deadline_ms: int = 60_000
    retries: int = 3
    backoff_ms: int = 500
    max_pages: int = 1000
    auth: Auth = field(default_factory=lambda: Auth("none"))
    fields: Mapping[str, str] = field(default_factory=dict)
    feed: FeedShape = field(default_factory=lambda: FeedShape(items="messages"))
    gateway: str = ""  # sms_gateway: the `gateway` label of everything this source reads
    acquirers: tuple[str, ...] = ()  # acquirer: the `acquirer` label values it may produce
    terminals_path: str = ""  # acquirer: the terminal inventory endpoint, if any
    terminal_fields: Mapping[str, str] = field(default_factory=dict)
    terminals_feed: FeedShape = field(default_factory=lambda: FeedShape(items="terminals"))
    provider: str = "generic"  # the adapter: see PROVIDERS
    pull: bool = True  # whether the source is polled (push-only providers: false)
    push: PushConfig | None = None  # the push receiver, for providers that push reports
    options: Mapping[str, Any] = field(default_factory=dict)  # provider-specific, validated
    #: How far ahead of the exporter's clock a watermark (page, `Date` header, push report)
    #: may be before it is capped at our clock + this much (`max_clock_skew`).
    max_clock_skew_ms: int = 60_000
    #: sms_gateway: the provider account checks (balance, approvals), if configured.
    account: AccountSettings | None = None

    @property
    def push_only(self) -> bool:
        """An SMS source that is only pushed to, never polled."""
        return self.kind == "sms_gateway" and self.push is not None and not self.pull

    def expected_lag_ms(self, give_up_after_ms: int) -> int:
        """The lag this source has when healthy, by design: its watermark trails the clock by
        push.lag (push-only), report_lag (Tencent's pull queue) or list_lag (re-read lists),
        and by give_up_after more where the provider reports outcomes only and the watermark
        waits for them (push-only sources, Tencent's pull). Alerts judge lag beyond it."""
        if self.push_only:
            assert self.push is not None
            outcome_only = self.provider in OUTCOME_ONLY_PROVIDERS
            return self.push.lag_ms + (give_up_after_ms if outcome_only else 0)
        if self.provider == "tencent":
            return int(self.options["report_lag"]) + give_up_after_ms
        return int(self.options.get("list_lag", 0))


@dataclass(frozen=True)
class PushConfig:
    """A push receiver on the exporter's HTTP server for one source."""

    path: str
    secret: str = field(default="", repr=False)  # shared secret or signing key; "" = no check
    max_body_bytes: int = 262_144
    lag_ms: int = 60_000  # the watermark of a push-only source is now − lag
    allow_from: tuple[IPv4Network | IPv6Network, ...] = ()  # peers allowed to push; () = any
    insecure: bool = False  # neither secret nor allow_from, on purpose: anyone may push


@dataclass(frozen=True)
class Objectives:
    """Service level objectives; the alert spec and reports read the same numbers."""

    sms_delivery_ratio: float = defaults.DELIVERY_RATIO
    receipt_notify_within_60s_ratio: float = defaults.NOTIFY_WITHIN_RATIO
    period_days: int = defaults.PERIOD_DAYS
    receipt_notification_ratio: float = defaults.RECEIPT_NOTIFICATION_RATIO


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    sources: tuple[SourceConfig, ...]
    state_path: str = "smswatch-state.sqlite"
    missing_after_ms: int = 300_000
    give_up_after_ms: int = 1_800_000
    join_transaction_field: str = "rrn"
    carriers: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    max_label_values: int = 50
    min_software_version: str = ""
    objectives: Objectives = field(default_factory=Objectives)
    retention_ms: int = 35 * 86_400_000
    #: How often retained records older than the retention are pruned (`state.prune_interval`).
    prune_interval_ms: int = 3_600_000
    #: How long before `txn_time` an SMS may be submitted and still be that transaction's
    #: (`reconcile.join.max_skew`).
    join_max_skew_ms: int = 60_000
    reports: ReportsConfig | None = None
    lookup: LookupSettings = field(default_factory=LookupSettings)
    source_file: str = ""
    #: Canary SMS probes (`probes:`), None when not configured.
    probes: ProbeSettings | None = None
    #: Where the state lives (`state.backend`): "sqlite" (the file `state_path`) or
    #: "postgresql" (the database `state_dsn`, with `state_password` when given).
    state_backend: str = "sqlite"
    state_dsn: str = ""
    state_password: str = field(default="", repr=False)
    #: How long a replica's lease on a source or on the primary role lasts without renewal
    #: (`leases.ttl`): the failover bound is about this plus two poll intervals.
    lease_ttl_ms: int = 15_000

    @property
    def gateways(self) -> tuple[str, ...]:
        """Every configured gateway label value."""
        return tuple(s.gateway for s in self.sources if s.kind == "sms_gateway")

    @property
    def acquirers(self) -> tuple[str, ...]:
        """Every configured acquirer label value."""
        out: list[str] = []
        for s in self.sources:
            if s.kind == "acquirer":
                out.extend(a for a in s.acquirers if a not in out)
        return tuple(out)


# --------------------------------------------------------------------------- expansion


def expand_env(text: str, path: str, env: Mapping[str, str] | None = None) -> str:
    """Expand `${NAME}` and `${NAME:-default}`; an unset NAME without default is an error."""
    environ = os.environ if env is None else env

    def _sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set", path=path)

    return _ENV_REF.sub(_sub, text)


class _Reader:
    """Walks the raw YAML tree with field paths, expanding env references in strings."""

    def __init__(self, env: Mapping[str, str] | None) -> None:
        self.env = env

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"must be a mapping, got {type(value).__name__}", path=path)
        return value

    def known(self, raw: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in raw:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                raise ConfigError(f"unknown key {key!r} (allowed: {hint})", path=path)

    def string(
        self, raw: Mapping[str, Any], key: str, path: str, default: str | None = None
    ) -> str:
        here = f"{path}.{key}" if path else key
        if key not in raw or raw[key] is None:
            if default is None:
                raise ConfigError("is required", path=here)
            return default
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"must be a string, got {type(value).__name__}", path=here)
        return expand_env(str(value), here, self.env)

    def duration(self, raw: Mapping[str, Any], key: str, path: str, default: int) -> int:
        here = f"{path}.{key}" if path else key
        if key not in raw:
            return default
        value = raw[key]
        if isinstance(value, str):
            value = expand_env(value, here, self.env)
        try:
            ms = parse_duration_ms(value)
        except ValueError as exc:
            raise ConfigError(str(exc), path=here) from exc
        if ms <= 0:
            raise ConfigError("must be greater than zero", path=here)
        return ms

    def integer(
        self, raw: Mapping[str, Any], key: str, path: str, default: int, lo: int, hi: int
    ) -> int:
        here = f"{path}.{key}" if path else key
        value = raw.get(key, default)
        if isinstance(value, str):
            value = expand_env(value, here, self.env)
            if not value.strip().lstrip("-").isdigit():
                raise ConfigError(f"must be an integer, got {value!r}", path=here)
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"must be an integer, got {value!r}", path=here)
        if not lo <= value <= hi:
            raise ConfigError(f"must be between {lo} and {hi}, got {value}", path=here)
        return int(value)

    def ratio(self, raw: Mapping[str, Any], key: str, path: str, default: float) -> float:
        here = f"{path}.{key}" if path else key
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"must be a number, got {value!r}", path=here)
        if not 0 < float(value) < 1:
            raise ConfigError(f"must be between 0 and 1 (exclusive), got {value}", path=here)
        return float(value)

    def names(self, raw: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        here = f"{path}.{key}" if path else key
        value = raw.get(key) or []
        if not isinstance(value, list):
            raise ConfigError("must be a list of names", path=here)
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise ConfigError("must be a non-empty string", path=f"{here}[{i}]")
            name = expand_env(item, f"{here}[{i}]", self.env)
            if name in out:
                raise ConfigError(f"duplicate value {name!r}", path=f"{here}[{i}]")
            out.append(name)
        return tuple(out)

    def secret(self, raw: Mapping[str, Any], key: str, path: str, base: Path) -> str:
        """A secret from `${ENV}` (in `key`) or from a file (`key_file`); never a literal."""
        file_key = f"{key}_file"
        here = f"{path}.{key}"
        if key in raw and file_key in raw:
            raise ConfigError(f"set either {key} or {file_key}, not both", path=path)
        if file_key in raw:
            file_path = self.string(raw, file_key, path)
            target = Path(file_path) if Path(file_path).is_absolute() else base / file_path
            try:
                return target.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read secret file {target}: {exc.strerror}", path=f"{path}.{file_key}"
                ) from exc
        if key in raw:
            value = raw[key]
            if not isinstance(value, str) or not _ENV_REF.search(value):
                raise ConfigError(
                    "secrets must not be written in the config file: use ${ENV_VAR} "
                    f"or {file_key}",
                    path=here,
                )
            return expand_env(value, here, self.env)
        raise ConfigError(f"is required (or {file_key})", path=here)


def _auth(reader: _Reader, raw: Any, path: str, base: Path) -> Auth:
    data = reader.mapping(raw, path)
    if not data:
        return Auth("none")
    kind = reader.string(data, "type", path)
    if kind == "none":
        reader.known(data, {"type"}, path)
        return Auth("none")
    if kind == "bearer":
        reader.known(data, {"type", "token", "token_file"}, path)
        return Auth("bearer", secret=reader.secret(data, "token", path, base))
    if kind == "basic":
        reader.known(data, {"type", "username", "password", "password_file"}, path)
        return Auth(
            "basic",
            username=reader.string(data, "username", path),
            secret=reader.secret(data, "password", path, base),
        )
    if kind == "header":
        reader.known(data, {"type", "name", "value", "value_file"}, path)
        return Auth(
            "header",
            header=reader.string(data, "name", path),
            secret=reader.secret(data, "value", path, base),
        )
    if kind == "aliyun":  # Alibaba Cloud RPC signature: AccessKey id and secret
        reader.known(
            data, {"type", "access_key_id", "access_key_secret", "access_key_secret_file"}, path
        )
        return Auth(
            "aliyun",
            username=reader.string(data, "access_key_id", path),
            secret=reader.secret(data, "access_key_secret", path, base),
        )
    if kind == "tc3":  # Tencent Cloud TC3-HMAC-SHA256: SecretId and SecretKey
        reader.known(data, {"type", "secret_id", "secret_key", "secret_key_file"}, path)
        return Auth(
            "tc3",
            username=reader.string(data, "secret_id", path),
            secret=reader.secret(data, "secret_key", path, base),
        )
    raise ConfigError(
        f"unknown auth type {kind!r} (one of: none, bearer, basic, header, aliyun, tc3)",
        path=f"{path}.type",
    )


def _fields(reader: _Reader, raw: Any, path: str, defaults: Mapping[str, str]) -> dict[str, str]:
    data = reader.mapping(raw, path)
    reader.known(data, set(defaults), path)
    merged = dict(defaults)
    for key in data:
        merged[key] = reader.string(data, key, path)
    return merged


def _feed(reader: _Reader, raw: Any, path: str, items: str) -> FeedShape:
    data = reader.mapping(raw, path)
    keys = {"items", "cursor_param", "limit_param", "next_cursor", "has_more", "watermark"}
    reader.known(data, keys, path)
    return FeedShape(
        items=reader.string(data, "items", path, items),
        cursor_param=reader.string(data, "cursor_param", path, "cursor"),
        limit_param=reader.string(data, "limit_param", path, "limit"),
        next_cursor=reader.string(data, "next_cursor", path, "next_cursor"),
        has_more=reader.string(data, "has_more", path, "has_more"),
        watermark=reader.string(data, "watermark", path, "watermark"),
    )


_SOURCE_KEYS = {
    "name",
    "kind",
    "base_url",
    "path",
    "poll_interval",
    "page_size",
    "timeout",
    "deadline",
    "retries",
    "backoff",
    "max_pages",
    "auth",
    "fields",
    "feed",
    "gateway",
    "acquirers",
    "terminals_path",
    "terminal_fields",
    "terminals_feed",
    "provider",
    "pull",
    "push",
    "max_clock_skew",
    "account",
}

#: Provider-specific keys: name → (kind of value, default). Kinds: str, duration, int, regex,
#: names, enum:<a|b>. Every one is validated with its field path.
PROVIDER_OPTIONS: dict[str, dict[str, tuple[str, Any]]] = {
    "twilio": {
        "account_sid": ("str", None),
        "lookback": ("duration", 86_400_000),  # how far back the first poll reads
        "list_lag": ("duration", 60_000),  # how long a status change takes to show in the list
        "txn_ref_pattern": ("regex", r"\b(?:RRN|[Rr]ef)\b[\s:#.]*(\w+)"),  # in the message body
        # SID order is only close to creation order: read this far past the window's horizon
        "order_margin": ("duration", 600_000),
    },
    "aliyun": {
        # the zone of Alibaba's `yyyy-MM-dd HH:mm:ss` dates: Beijing time, as documented
        "time_zone": ("offset", "+08:00"),
        "phone_numbers": ("names", ()),  # QuerySendDetails answers one number at a time
        "phone_numbers_file": ("str", ""),
        "send_date_days": ("int", 1),  # how many days back (SendDate) each number is read
    },
    "tencent": {
        "sms_sdk_app_id": ("str", ""),
        "region": ("str", "ap-guangzhou"),
        "report_lag": ("duration", 60_000),  # how long a receipt takes to reach the pull queue
    },
    "vonage": {
        "account_id": ("str", None),  # the API key the records belong to
        "lookback": ("duration", 86_400_000),
        "list_lag": ("duration", 60_000),
        "slice": ("duration", 3_600_000),  # a window is read in slices, committed each
    },
    "kannel": {
        "error_codes": ("enum:cmpp|8x8|gsm_map", "cmpp"),
        # the SMSC's zone for receipt done dates; "" (default): unknown, timed on receipt
        "smsc_utc_offset": ("offset", ""),
    },
    "jasmin": {
        "error_codes": ("enum:cmpp|8x8|gsm_map", "cmpp"),
        # the SMSC's zone for `donedate`; "" (default): unknown, timed on receipt
        "smsc_utc_offset": ("offset", ""),
        # the refusals Jasmin retries ([sm-listener] submit_error_retrial; its default set)
        "submit_error_retrial": (
            "names",
            ("ESME_RSYSERR", "ESME_RTHROTTLED", "ESME_RMSGQFUL", "ESME_RINVSCHED"),
        ),
    },
    "stripe": {
        "terminals": ("enum:true|false", "true"),  # read /v1/terminal/readers
        "join_field": (
            "str",
            "latest_charge.payment_method_details.card_present.network_transaction_id",
        ),
        # brands without a network transaction id (all but Visa, Mastercard, Amex): none
        "fallback_join_field": ("str", ""),
        "terminal_field": ("str", "metadata.terminal_id"),
        "lookback": ("duration", 86_400_000),
        "list_lag": ("duration", 30_000),
        "slice": ("duration", 3_600_000),  # a window is read in slices, committed each
    },
    "square": {
        "location_id": ("str", ""),
        "location_ids": ("names", ()),  # none: every location ListLocations returns
        "join_field": ("str", "reference_id"),
        "lookback": ("duration", 86_400_000),
        "list_lag": ("duration", 60_000),  # "usually available within a few minutes" [V] v1 docs
        "slice": ("duration", 3_600_000),  # a window is read in slices, committed each
    },
}


_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def utc_offset_minutes(text: str, path: str) -> int | None:
    """`+08:00` → 480 minutes east of UTC; "" → None (unknown). ConfigError otherwise."""
    if not text:
        return None
    match = _OFFSET.match(text.strip())
    if not match or int(match.group(2)) > 14 or int(match.group(3)) > 59:
        raise ConfigError(f"not a UTC offset like +08:00: {text!r}", path=path)
    minutes = int(match.group(2)) * 60 + int(match.group(3))
    return minutes if match.group(1) == "+" else -minutes


def _provider_options(
    reader: _Reader, data: Mapping[str, Any], path: str, provider: str, base: Path
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, (kind, default) in PROVIDER_OPTIONS.get(provider, {}).items():
        here = f"{path}.{key}"
        if kind == "str":  # a None default: required when the source is pulled
            options[key] = reader.string(data, key, path, "" if default is None else default)
        elif kind == "duration":
            options[key] = reader.duration(data, key, path, default)
        elif kind == "int":
            options[key] = reader.integer(data, key, path, default, 1, 30)
        elif kind == "offset":  # a UTC offset such as +08:00; "" = unknown
            options[key] = utc_offset_minutes(reader.string(data, key, path, default), here)
        elif kind == "names":
            options[key] = reader.names(data, key, path) if key in data else tuple(default)
        elif kind == "regex":
            pattern = reader.string(data, key, path, default)
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"not a regular expression: {exc}", path=here) from exc
            if compiled.groups < 1:
                raise ConfigError("needs one capturing group (the reference)", path=here)
            options[key] = pattern
        elif kind.startswith("enum:"):
            allowed = kind[5:].split("|")
            value = data.get(key, default)
            value = (
                str(value).lower()
                if isinstance(value, bool)
                else reader.string(data, key, path, default)
            )
            if value not in allowed:
                raise ConfigError(f"must be one of {', '.join(allowed)}, got {value!r}", path=here)
            options[key] = value
    if provider == "aliyun" and options.get("phone_numbers_file"):
        file_path = Path(options["phone_numbers_file"])
        target = file_path if file_path.is_absolute() else base / file_path
        try:
            lines = target.read_text(encoding="utf-8").split()
        except OSError as exc:
            raise ConfigError(
                f"cannot read {target}: {exc.strerror}", path=f"{path}.phone_numbers_file"
            ) from exc
        options["phone_numbers"] = tuple(options["phone_numbers"]) + tuple(lines)
    return options


def _push(reader: _Reader, raw: Any, path: str, name: str, base: Path) -> PushConfig:
    data = reader.mapping(raw, path)
    allowed = {"path", "secret", "secret_file", "max_body", "lag", "allow_from", "insecure"}
    reader.known(data, allowed, path)
    push_path = reader.string(data, "path", path, f"/push/{name}")
    if not push_path.startswith("/push/"):
        raise ConfigError("must start with '/push/'", path=f"{path}.path")
    secret = ""
    if "secret" in data or "secret_file" in data:
        secret = reader.secret(data, "secret", path, base)
    max_body = reader.integer(data, "max_body", path, 262_144, 1024, 1_048_576)
    allow_from = _networks(reader.names(data, "allow_from", path), f"{path}.allow_from")
    insecure = data.get("insecure", False)
    if not isinstance(insecure, bool):
        raise ConfigError("must be true or false", path=f"{path}.insecure")
    if insecure and (secret or allow_from):
        raise ConfigError(
            "insecure: true goes with neither a secret nor allow_from", path=f"{path}.insecure"
        )
    if not (secret or allow_from or insecure):
        raise ConfigError(
            "a push receiver needs a secret (secret: ${ENV} or secret_file) or allow_from; "
            "insecure: true accepts anyone's reports",
            path=f"{path}.secret",
        )
    return PushConfig(
        path=push_path,
        secret=secret,
        max_body_bytes=max_body,
        lag_ms=reader.duration(data, "lag", path, 60_000),
        allow_from=allow_from,
        insecure=insecure,
    )


def _networks(values: tuple[str, ...], path: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """Addresses or CIDR networks (`203.0.113.0/24`, `2001:db8::/32`)."""
    out = []
    for i, value in enumerate(values):
        try:
            out.append(ip_network(value, strict=True))
        except ValueError as exc:
            raise ConfigError(f"not an address or network: {exc}", path=f"{path}[{i}]") from exc
    return tuple(out)


def _source(reader: _Reader, raw: Any, path: str, base: Path) -> SourceConfig:
    data = reader.mapping(raw, path)
    provider = reader.string(data, "provider", path, "generic")
    kind_raw = data.get("kind")
    choices = PROVIDERS.get(kind_raw, ()) if isinstance(kind_raw, str) else ()
    if choices and provider not in choices:
        raise ConfigError(
            f"unknown provider {provider!r} for kind {kind_raw} (one of: {', '.join(choices)})",
            path=f"{path}.provider",
        )
    reader.known(data, _SOURCE_KEYS | set(PROVIDER_OPTIONS.get(provider, {})), path)
    name = reader.string(data, "name", path)
    if not _NAME.match(name):
        raise ConfigError(
            f"{name!r} is not a valid name (lowercase letters, digits, '-', '_')",
            path=f"{path}.name",
        )
    kind = reader.string(data, "kind", path)
    if kind not in SOURCE_KINDS:
        raise ConfigError(
            f"unknown kind {kind!r} (one of: {', '.join(SOURCE_KINDS)})", path=f"{path}.kind"
        )
    if provider not in PROVIDERS[kind]:
        raise ConfigError(
            f"unknown provider {provider!r} for kind {kind} (one of: {', '.join(PROVIDERS[kind])})",
            path=f"{path}.provider",
        )
    options = _provider_options(reader, data, path, provider, base)
    pull_default = provider in PULL_PROVIDERS and not (
        provider == "aliyun" and not options.get("phone_numbers")
    )
    pull_raw = data.get("pull", pull_default)
    if not isinstance(pull_raw, bool):
        raise ConfigError("must be true or false", path=f"{path}.pull")
    if pull_raw and provider not in PULL_PROVIDERS:
        raise ConfigError(f"provider {provider} only pushes reports", path=f"{path}.pull")
    if "push" in data and provider not in PUSH_PROVIDERS:
        raise ConfigError(f"provider {provider} has no push receiver", path=f"{path}.push")
    push = _push(reader, data.get("push"), f"{path}.push", name, base) if "push" in data else None
    if not pull_raw and push is None:
        raise ConfigError("a source that is not pulled needs a push receiver", path=f"{path}.push")
    for key, (_, default) in PROVIDER_OPTIONS.get(provider, {}).items():
        if default is None and pull_raw and not options[key]:
            raise ConfigError(f"is required to pull from {provider}", path=f"{path}.{key}")
    if provider == "aliyun" and pull_raw and not options.get("phone_numbers"):
        raise ConfigError(
            "QuerySendDetails reads one number at a time: list phone_numbers to pull",
            path=f"{path}.phone_numbers",
        )
    default_base, default_api_path = PROVIDER_ENDPOINTS.get(provider, ("", ""))
    if not pull_raw:
        default_base = default_base or "http://push.invalid"  # never requested
    base_url = reader.string(data, "base_url", path, default_base or None).rstrip("/")
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"not an http(s) URL: {base_url!r}", path=f"{path}.base_url")
    if parsed.username or parsed.password:
        raise ConfigError(
            "credentials in the URL are not allowed: use auth", path=f"{path}.base_url"
        )
    default_path = "/sms/v1/messages" if kind == "sms_gateway" else "/acquirer/v1/transactions"
    api_path = reader.string(data, "path", path, default_api_path or default_path)
    if "{account_sid}" in api_path:
        api_path = api_path.replace("{account_sid}", str(options.get("account_sid", "")))
    max_page = PROVIDER_MAX_PAGE.get(provider, 10_000)
    if not api_path.startswith("/"):
        raise ConfigError("must start with '/'", path=f"{path}.path")
    interval = reader.duration(data, "poll_interval", path, 15_000)
    timeout = reader.mapping(data.get("timeout"), f"{path}.timeout")
    reader.known(timeout, {"connect", "read"}, f"{path}.timeout")
    connect_ms = reader.duration(timeout, "connect", f"{path}.timeout", 3_000)
    read_ms = reader.duration(timeout, "read", f"{path}.timeout", 10_000)
    deadline = reader.duration(data, "deadline", path, max(interval * 4, 60_000))
    if deadline < connect_ms + read_ms:
        raise ConfigError(
            "must be at least timeout.connect + timeout.read", path=f"{path}.deadline"
        )
    common: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "base_url": base_url,
        "path": api_path,
        "poll_interval_ms": interval,
        "page_size": reader.integer(data, "page_size", path, min(500, max_page), 1, max_page),
        "connect_timeout_s": connect_ms / 1000,
        "read_timeout_s": read_ms / 1000,
        "deadline_ms": deadline,
        "retries": reader.integer(data, "retries", path, 3, 0, 20),
        "backoff_ms": reader.duration(data, "backoff", path, 500),
        "max_pages": reader.integer(data, "max_pages", path, 1000, 1, 1_000_000),
        "auth": _auth(reader, data.get("auth"), f"{path}.auth", base),
        "provider": provider,
        "pull": pull_raw,
        "push": push,
        "options": options,
        "max_clock_skew_ms": reader.duration(data, "max_clock_skew", path, 60_000),
    }
    _check_provider_auth(common["auth"], provider, pull_raw, f"{path}.auth")
    if kind == "sms_gateway":
        for key in ("acquirers", "terminals_path", "terminal_fields", "terminals_feed"):
            if key in data:
                raise ConfigError("only for kind acquirer", path=f"{path}.{key}")
        gateway = reader.string(data, "gateway", path, name)
        if not _NAME.match(gateway):
            raise ConfigError(f"{gateway!r} is not a valid label value", path=f"{path}.gateway")
        account = None
        if "account" in data:
            account = _account(reader, data, path, common, base)
        return SourceConfig(
            **common,
            gateway=gateway,
            account=account,
            fields=_fields(reader, data.get("fields"), f"{path}.fields", SMS_FIELDS),
            feed=_feed(reader, data.get("feed"), f"{path}.feed", "messages"),
        )
    for key in ("gateway", "account"):
        if key in data:
            raise ConfigError("only for kind sms_gateway", path=f"{path}.{key}")
    acquirers = reader.names(data, "acquirers", path) or (name,)
    default_terminals = (
        "/v1/terminal/readers" if provider == "stripe" and options["terminals"] == "true" else ""
    )
    terminals_path = reader.string(data, "terminals_path", path, default_terminals)
    if terminals_path and not terminals_path.startswith("/"):
        raise ConfigError("must start with '/'", path=f"{path}.terminals_path")
    return SourceConfig(
        **common,
        acquirers=acquirers,
        fields=_fields(reader, data.get("fields"), f"{path}.fields", TRANSACTION_FIELDS),
        feed=_feed(reader, data.get("feed"), f"{path}.feed", "transactions"),
        terminals_path=terminals_path,
        terminal_fields=_fields(
            reader, data.get("terminal_fields"), f"{path}.terminal_fields", TERMINAL_FIELDS
        ),
        terminals_feed=_feed(
            reader, data.get("terminals_feed"), f"{path}.terminals_feed", "terminals"
        ),
    )


def _account(
    reader: _Reader, data: Mapping[str, Any], path: str, common: dict[str, Any], base: Path
) -> AccountSettings:
    """The `account:` of an SMS gateway source. It speaks to the source's own provider with
    the source's auth and options, or (`account.provider`, for a bank platform in front of a
    provider) to another one with an `auth` and provider options of its own."""
    here = f"{path}.account"
    raw = reader.mapping(data["account"], here)
    provider = common["provider"]
    auth, options = common["auth"], common["options"]
    base_url = common["base_url"] if common["pull"] or "base_url" in data else ""
    own = "provider" in raw or "auth" in raw
    if own:
        provider = reader.string(raw, "provider", here, provider)
        if provider not in ACCOUNT_PARTS:
            supported = ", ".join(sorted(ACCOUNT_PARTS))
            raise ConfigError(
                f"provider {provider} has no account API smswatch reads (one of: {supported})",
                path=f"{here}.provider",
            )
        if "auth" not in raw:
            raise ConfigError("is required with account.provider", path=f"{here}.auth")
        auth = _auth(reader, raw["auth"], f"{here}.auth", base)
        options = _provider_options(reader, raw, here, provider, base)
        for key in ACCOUNT_OPTIONS.get(provider, ()):
            if not options.get(key):
                raise ConfigError(
                    f"is required to check a {provider} account", path=f"{here}.{key}"
                )
        base_url = ""
    settings_raw = {
        k: v
        for k, v in raw.items()
        if not own or k not in {"provider", "auth", *ACCOUNT_OPTIONS.get(provider, ())}
    }
    settings = parse_account(
        settings_raw,
        here,
        provider,
        base_url or PROVIDER_ENDPOINTS.get(provider, ("",))[0],
        lambda text, at: expand_env(text, at, reader.env),
    )
    _check_provider_auth(auth, provider, True, f"{here}.auth" if own else f"{path}.auth")
    return replace(settings, provider=provider, auth=auth, options=options)


#: The auth type each provider's API needs when it is pulled.
_PROVIDER_AUTH: dict[str, tuple[str, ...]] = {
    "twilio": ("basic",),  # AccountSid:AuthToken or ApiKeySid:Secret [R]
    "vonage": ("basic",),  # api_key:api_secret [V]
    "aliyun": ("aliyun",),
    "tencent": ("tc3",),
    "stripe": ("bearer", "basic"),  # secret key as bearer token, or as basic user
    "square": ("bearer",),
}


def _check_provider_auth(auth: Auth, provider: str, pull: bool, path: str) -> None:
    allowed = _PROVIDER_AUTH.get(provider)
    if pull and allowed and auth.type not in allowed:
        raise ConfigError(
            f"provider {provider} needs auth type {' or '.join(allowed)}", path=f"{path}.type"
        )


_TOP_KEYS = {
    "state",
    "reconcile",
    "labels",
    "terminals",
    "objectives",
    "sources",
    "reports",
    "lookup",
    "probes",
    "leases",
}


#: Provider options that say how far back a source re-reads: option → its length in ms.
_REREAD_OPTIONS: dict[str, Any] = {
    "lookback": lambda value: value,
    "send_date_days": lambda value: value * 86_400_000,
}


def _check_retention(
    retention_ms: int, decisions_ms: int, sources: tuple[SourceConfig, ...]
) -> None:
    """Refuse a retention shorter than what a source can re-read or a decision can take.

    Records older than the prune horizon are refused as late: a retention shorter than a
    source's re-read window (`lookback`, `send_date_days`) would refuse records every poll,
    and one shorter than `missing_after + give_up_after + max_skew` would prune state that
    open decisions still need.
    """
    if retention_ms < decisions_ms:
        raise ConfigError(
            f"must be at least reconcile.missing_after + reconcile.give_up_after + "
            f"reconcile.join.max_skew ({format_duration_ms(decisions_ms)}), "
            f"got {format_duration_ms(retention_ms)}",
            path="state.retention",
        )
    for i, source in enumerate(sources):
        for option, length in _REREAD_OPTIONS.items():
            if option in source.options and retention_ms < length(source.options[option]):
                reread = format_duration_ms(length(source.options[option]))
                raise ConfigError(
                    f"must be at least sources[{i}].{option} ({reread}): that source re-reads "
                    f"{reread} back, got {format_duration_ms(retention_ms)}",
                    path="state.retention",
                )


def _state_database(reader: _Reader, state: dict[str, Any], base: Path) -> tuple[str, str, str]:
    """(backend, DSN, password) of `state`; the password never in the DSN nor the file."""
    from psycopg.conninfo import conninfo_to_dict

    backend = reader.string(state, "backend", "state", "sqlite")
    if backend not in BACKENDS:
        raise ConfigError(
            f"must be one of {', '.join(BACKENDS)}, got {backend!r}", path="state.backend"
        )
    if backend == "sqlite":
        for key in ("dsn", "password", "password_file"):
            if key in state:
                raise ConfigError("only with backend: postgresql", path=f"state.{key}")
        return backend, "", ""
    dsn = reader.string(state, "dsn", "state")
    try:
        params = conninfo_to_dict(dsn)
    except Exception as exc:  # psycopg.ProgrammingError: not a connection string
        raise ConfigError(f"not a PostgreSQL connection string: {exc}", path="state.dsn") from None
    if params.get("password"):
        raise ConfigError(
            "must not hold a password: use state.password (${ENV_VAR}) or state.password_file",
            path="state.dsn",
        )
    password = ""
    if "password" in state or "password_file" in state:
        password = reader.secret(state, "password", "state", base)
    return backend, dsn, password


def parse_config(
    raw: Any,
    *,
    source_file: str = "",
    env: Mapping[str, str] | None = None,
    state_path: str | None = None,
) -> Config:
    """Validate a parsed YAML document into a `Config`; errors carry the field path."""
    base = Path(source_file).parent if source_file else Path.cwd()
    reader = _Reader(env)
    try:
        top = reader.mapping(raw, "")
        reader.known(top, _TOP_KEYS, "(top level)")
        state = reader.mapping(top.get("state"), "state")
        reader.known(
            state,
            {"path", "retention", "prune_interval", "backend", "dsn", "password", "password_file"},
            "state",
        )
        state_backend, state_dsn, state_password = _state_database(reader, state, base)
        recon = reader.mapping(top.get("reconcile"), "reconcile")
        reader.known(recon, {"missing_after", "give_up_after", "join"}, "reconcile")
        join = reader.mapping(recon.get("join"), "reconcile.join")
        reader.known(join, {"transaction_field", "max_skew"}, "reconcile.join")
        join_field = reader.string(join, "transaction_field", "reconcile.join", "rrn")
        if join_field not in ("rrn", "txn_id"):
            raise ConfigError(
                f"must be rrn or txn_id, got {join_field!r}",
                path="reconcile.join.transaction_field",
            )
        labels = reader.mapping(top.get("labels"), "labels")
        reader.known(labels, {"carriers", "areas", "max_values"}, "labels")
        terminals = reader.mapping(top.get("terminals"), "terminals")
        reader.known(terminals, {"min_software_version"}, "terminals")
        min_version = reader.string(terminals, "min_software_version", "terminals", "")
        if min_version and not re.match(r"^\d+(\.\d+)*$", min_version):
            raise ConfigError(
                f"must be a dotted version such as 5.0.0, got {min_version!r}",
                path="terminals.min_software_version",
            )
        objectives_raw = reader.mapping(top.get("objectives"), "objectives")
        reader.known(
            objectives_raw,
            {
                "sms_delivery_ratio",
                "receipt_notify_within_60s_ratio",
                "period_days",
                "receipt_notification_ratio",
            },
            "objectives",
        )
        objectives = Objectives(
            sms_delivery_ratio=reader.ratio(
                objectives_raw, "sms_delivery_ratio", "objectives", defaults.DELIVERY_RATIO
            ),
            receipt_notify_within_60s_ratio=reader.ratio(
                objectives_raw,
                "receipt_notify_within_60s_ratio",
                "objectives",
                defaults.NOTIFY_WITHIN_RATIO,
            ),
            period_days=reader.integer(
                objectives_raw, "period_days", "objectives", defaults.PERIOD_DAYS, 1, 366
            ),
            receipt_notification_ratio=reader.ratio(
                objectives_raw,
                "receipt_notification_ratio",
                "objectives",
                defaults.RECEIPT_NOTIFICATION_RATIO,
            ),
        )
        raw_sources = top.get("sources")
        if not isinstance(raw_sources, list) or not raw_sources:
            raise ConfigError("at least one source is required", path="sources")
        sources = tuple(
            _source(reader, item, f"sources[{i}]", base) for i, item in enumerate(raw_sources)
        )
        seen: set[str] = set()
        for i, source in enumerate(sources):
            if source.name in seen:
                raise ConfigError(
                    f"duplicate source name {source.name!r}", path=f"sources[{i}].name"
                )
            seen.add(source.name)
        push_paths = [s.push.path for s in sources if s.push is not None]
        if len(set(push_paths)) != len(push_paths):
            raise ConfigError("two sources share a push path", path="sources")
        gateways = [s.gateway for s in sources if s.kind == "sms_gateway"]
        if len(set(gateways)) != len(gateways):
            raise ConfigError("two sms_gateway sources share a gateway label", path="sources")
        if not gateways:
            raise ConfigError("at least one source of kind sms_gateway is required", path="sources")
        if not any(s.kind == "acquirer" for s in sources):
            raise ConfigError("at least one source of kind acquirer is required", path="sources")
        reports_raw = top.get("reports")
        reports = (
            parse_reports_section(reports_raw, "reports", base=base, env=env)
            if reports_raw is not None
            else None
        )
        retention_ms = reader.duration(state, "retention", "state", 35 * 86_400_000)
        missing_after_ms = reader.duration(recon, "missing_after", "reconcile", 300_000)
        give_up_after_ms = reader.duration(recon, "give_up_after", "reconcile", 1_800_000)
        max_skew_ms = reader.duration(join, "max_skew", "reconcile.join", 60_000)
        _check_retention(retention_ms, missing_after_ms + give_up_after_ms + max_skew_ms, sources)
        leases = reader.mapping(top.get("leases"), "leases")
        reader.known(leases, {"ttl"}, "leases")
        lease_ttl_ms = reader.duration(leases, "ttl", "leases", 15_000)
        if not 1_000 <= lease_ttl_ms <= 600_000:
            raise ConfigError(
                f"must be between 1s and 10m, got {format_duration_ms(lease_ttl_ms)}",
                path="leases.ttl",
            )
        return Config(
            sources=sources,
            state_path=state_path or reader.string(state, "path", "state", "smswatch-state.sqlite"),
            retention_ms=retention_ms,
            prune_interval_ms=reader.duration(state, "prune_interval", "state", 3_600_000),
            state_backend=state_backend,
            state_dsn=state_dsn,
            state_password=state_password,
            join_max_skew_ms=max_skew_ms,
            missing_after_ms=missing_after_ms,
            give_up_after_ms=give_up_after_ms,
            join_transaction_field=join_field,
            carriers=reader.names(labels, "carriers", "labels"),
            areas=reader.names(labels, "areas", "labels"),
            max_label_values=reader.integer(labels, "max_values", "labels", 50, 1, 1000),
            min_software_version=min_version,
            objectives=objectives,
            reports=reports,
            lookup=parse_lookup(
                top.get("lookup"), base, lambda text, here: expand_env(text, here, env)
            ),
            source_file=source_file,
            probes=parse_probes(top.get("probes"), reader, base, tuple(gateways)),
            lease_ttl_ms=lease_ttl_ms,
        )
    except ConfigError as exc:
        if source_file and not exc.source_file:
            raise ConfigError(str(exc), source=source_file) from None
        raise


def load_config(path: str, *, state_path: str | None = None) -> Config:
    """Read and validate a YAML config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", source=path) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"not valid YAML{where}", source=path) from exc
    return parse_config(raw, source_file=path, state_path=state_path)


SIMULATOR_ACQUIRERS = ("acq-north", "acq-south", "acq-east")
SIMULATOR_CARRIERS = ("china-mobile", "china-unicom", "china-telecom")
SIMULATOR_AREAS = ("north", "south", "east", "west", "central")


def simulator_config_document(simulator_url: str, poll_interval: str = "15s") -> dict[str, Any]:
    """The config document for the built-in simulator (`examples/simulator.yaml` says the same;
    a test keeps the two in step)."""
    return {
        "state": {"path": "smswatch-state.sqlite", "retention": "35d"},
        "reconcile": {"missing_after": "5m", "give_up_after": "30m"},
        "labels": {"carriers": list(SIMULATOR_CARRIERS), "areas": list(SIMULATOR_AREAS)},
        "terminals": {"min_software_version": "5.0.0"},
        "objectives": {"sms_delivery_ratio": 0.995, "receipt_notify_within_60s_ratio": 0.95},
        "sources": [
            {
                "name": "sms",
                "kind": "sms_gateway",
                "gateway": "bank-sms",
                "base_url": simulator_url,
                "path": "/sms/v1/messages",
                "poll_interval": poll_interval,
                "page_size": 1000,
            },
            {
                "name": "acquirer",
                "kind": "acquirer",
                "base_url": simulator_url,
                "path": "/acquirer/v1/transactions",
                "terminals_path": "/acquirer/v1/terminals",
                "acquirers": list(SIMULATOR_ACQUIRERS),
                "poll_interval": poll_interval,
                "page_size": 1000,
            },
        ],
    }


def demo_config(
    simulator_url: str,
    *,
    state_path: str | None,
    speed: float,
    missing_after_ms: int,
    give_up_after_ms: int,
) -> Config:
    """The config `smswatch demo` uses: the simulator config, polling often enough that
    simulated time between two polls stays about 15 s at `speed`."""
    interval_ms = int(max(250.0, min(15_000.0, 15_000.0 / max(speed, 1.0))))
    raw = simulator_config_document(simulator_url, f"{interval_ms}ms")
    raw["reconcile"] = {
        "missing_after": f"{missing_after_ms}ms",
        "give_up_after": f"{give_up_after_ms}ms",
    }
    # The simulated bank platform sends through an Alibaba-shaped account the simulator also
    # serves: its balance burns down with the messages, its signature and template are approved.
    raw["sources"][0]["account"] = {
        "provider": "aliyun",
        "interval": "1m",
        "base_url": simulator_url,
        "balance_url": simulator_url,
        "auth": {
            "type": "aliyun",
            "access_key_id": "demo",
            "access_key_secret": "${SMSWATCH_DEMO_ACCESS_KEY_SECRET:-demo}",
        },
    }
    if state_path is None:
        import tempfile

        state_path = str(Path(tempfile.mkdtemp(prefix="smswatch-demo-")) / "state.sqlite")
    return parse_config(raw, source_file="(demo)", state_path=state_path)

"""The `probes:` section of the config: canary SMS per gateway, the handset's inbox, deadlines.

```yaml
probes:
  handset_timeout: 5m          # DELIVRD reported, no nonce on the handset by then: fake report
  report_timeout: 15m          # no final report by sent + this: the probe failed
  check_interval: 10s          # how often the inbox is read and open canaries are judged
  inbox:
    gammu_dir: /var/spool/gammu/inbox   # gammu-smsd files backend (InboxPath)
    timezone: Asia/Shanghai             # the zone of its file names (default: this machine's)
    webhook:                            # and/or a provider's inbound-message webhook
      path: /probe/inbox
      secret: ${PROBE_INBOX_SECRET}     # or secret_file; and/or allow_from: [203.0.113.0/24]
  gateways:
    - gateway: kannel          # the `gateway` label of an sms_gateway source
      interval: 15m            # one canary to every number each interval
      text: "smswatch canary {nonce}"
      numbers:
        - {number: "+8613800138000", carrier: china-mobile, area: north}
      send:
        kind: kannel           # http | kannel | jasmin | twilio | aliyun | tencent | vonage
        url: http://127.0.0.1:13013/cgi-bin/sendsms
        username: smswatch
        password: ${KANNEL_SENDSMS_PASSWORD}   # or password_file
        dlr_url: http://exporter:8479/push/kannel?type=%d&reply=%A&smsc=%i&msg={canary_id}&ref={canary_id}&secret=${KANNEL_DLR_SECRET}
```

Secrets (`password`, `auth_token`, `access_key_secret`, `secret_key`, `api_secret`, header
values) come from `${ENV}` or a `*_file`, never from the file itself. Templates take `{to}`,
`{text}`, `{nonce}` and `{canary_id}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exporter.errors import ConfigError

SEND_KINDS = ("http", "kannel", "jasmin", "twilio", "aliyun", "tencent", "vonage")

#: Per send kind: its keys beside `kind`, `url` and `timeout`, the secret key (read from
#: `${ENV}` or `<key>_file`), and the default URL of the provider's API.
_KIND_KEYS: dict[str, tuple[frozenset[str], str, str]] = {
    "http": (frozenset({"method", "headers", "body", "content_type", "message_id"}), "", ""),
    "kannel": (frozenset({"username", "dlr_url", "from", "smsc"}), "password", ""),
    "jasmin": (frozenset({"username", "dlr_url", "from"}), "password", ""),
    "twilio": (
        frozenset({"account_sid", "from", "messaging_service_sid", "status_callback"}),
        "auth_token",
        "https://api.twilio.com",
    ),
    "aliyun": (
        frozenset({"access_key_id", "sign_name", "template_code", "template_param"}),
        "access_key_secret",
        "https://dysmsapi.aliyuncs.com",
    ),
    "tencent": (
        frozenset({"secret_id", "sms_sdk_app_id", "sign_name", "template_id", "region"}),
        "secret_key",
        "https://sms.tencentcloudapi.com",
    ),
    "vonage": (frozenset({"api_key", "from", "callback"}), "api_secret", "https://rest.nexmo.com"),
}
#: Keys each kind cannot do without.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "http": ("body",),
    "kannel": ("username", "dlr_url"),
    "jasmin": ("username", "dlr_url"),
    "twilio": ("account_sid",),
    "aliyun": ("access_key_id", "sign_name", "template_code"),
    "tencent": ("secret_id", "sms_sdk_app_id", "sign_name", "template_id"),
    "vonage": ("api_key", "from"),
}
_DEFAULTS: dict[str, dict[str, str]] = {
    "http": {"method": "POST", "content_type": "application/json", "message_id": ""},
    "aliyun": {"template_param": "code"},
    "tencent": {"region": "ap-guangzhou"},
}


class FieldReader(Protocol):
    """What the config module's reader offers a feature's section (field paths in errors)."""

    def mapping(self, value: Any, path: str) -> dict[str, Any]: ...

    def known(self, raw: Mapping[str, Any], allowed: set[str], path: str) -> None: ...

    def string(
        self, raw: Mapping[str, Any], key: str, path: str, default: str | None = None
    ) -> str: ...

    def duration(self, raw: Mapping[str, Any], key: str, path: str, default: int) -> int: ...

    def secret(self, raw: Mapping[str, Any], key: str, path: str, base: Path) -> str: ...


@dataclass(frozen=True)
class CanaryNumber:
    """A test SIM that receives canaries, with the labels its series carry."""

    number: str = field(repr=False)
    carrier: str
    area: str


@dataclass(frozen=True)
class SendApi:
    """How canaries are sent through one gateway's own send API."""

    kind: str
    url: str
    secret: str = field(default="", repr=False)
    options: Mapping[str, str] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    timeout_s: float = 10.0


@dataclass(frozen=True)
class GatewayProbe:
    """Canaries for one gateway: schedule, numbers, send API, body."""

    gateway: str
    interval_ms: int
    numbers: tuple[CanaryNumber, ...]
    send: SendApi
    text: str = "smswatch canary {nonce}"


@dataclass(frozen=True)
class HandsetWebhook:
    """A provider's inbound-message webhook as the test handset's inbox (a virtual number)."""

    path: str = "/probe/inbox"
    secret: str = field(default="", repr=False)
    allow_from: tuple[IPv4Network | IPv6Network, ...] = ()
    insecure: bool = False
    max_body_bytes: int = 65_536


@dataclass(frozen=True)
class ProbeSettings:
    """The whole `probes:` section."""

    gateways: tuple[GatewayProbe, ...]
    handset_timeout_ms: int = 300_000
    report_timeout_ms: int = 900_000
    check_interval_ms: int = 10_000
    inbox_dir: str = ""
    inbox_timezone: str = ""  # "" = this machine's local time, as gammu-smsd writes it
    webhook: HandsetWebhook | None = None

    def gateway(self, name: str) -> GatewayProbe | None:
        """The probe settings of one gateway, if it has any."""
        return next((g for g in self.gateways if g.gateway == name), None)


_TOP = {"handset_timeout", "report_timeout", "check_interval", "inbox", "gateways"}
_GATEWAY = {"gateway", "interval", "text", "numbers", "send"}


def parse_probes(
    raw: Any, reader: FieldReader, base: Path, gateways: tuple[str, ...]
) -> ProbeSettings | None:
    """Validate the `probes:` section (None when absent); errors name the field path."""
    if raw is None:
        return None
    top = reader.mapping(raw, "probes")
    reader.known(top, _TOP, "probes")
    inbox = reader.mapping(top.get("inbox"), "probes.inbox")
    reader.known(inbox, {"gammu_dir", "timezone", "webhook"}, "probes.inbox")
    zone = reader.string(inbox, "timezone", "probes.inbox", "")
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {zone!r}", path="probes.inbox.timezone") from exc
    inbox_dir = reader.string(inbox, "gammu_dir", "probes.inbox", "")
    if inbox_dir and not Path(inbox_dir).is_absolute():
        inbox_dir = str(base / inbox_dir)
    items = top.get("gateways")
    if not isinstance(items, list) or not items:
        raise ConfigError("must list at least one gateway to probe", path="probes.gateways")
    probes = tuple(
        _gateway(reader, item, f"probes.gateways[{i}]", base, gateways)
        for i, item in enumerate(items)
    )
    names = [p.gateway for p in probes]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"gateway {name!r} listed twice", path=f"probes.gateways[{i}]")
    return ProbeSettings(
        gateways=probes,
        handset_timeout_ms=reader.duration(top, "handset_timeout", "probes", 300_000),
        report_timeout_ms=reader.duration(top, "report_timeout", "probes", 900_000),
        check_interval_ms=reader.duration(top, "check_interval", "probes", 10_000),
        inbox_dir=inbox_dir,
        inbox_timezone=zone,
        webhook=_webhook(reader, inbox.get("webhook"), "probes.inbox.webhook", base),
    )


def _webhook(reader: FieldReader, raw: Any, path: str, base: Path) -> HandsetWebhook | None:
    """The handset's webhook: guarded like a push receiver (secret and/or allow_from)."""
    if raw is None:
        return None
    data = reader.mapping(raw, path)
    reader.known(data, {"path", "secret", "secret_file", "allow_from", "insecure"}, path)
    route = reader.string(data, "path", path, "/probe/inbox")
    if not route.startswith("/") or route.startswith("/push/"):
        raise ConfigError("must start with / and not with /push/", path=f"{path}.path")
    secret = (
        reader.secret(data, "secret", path, base)
        if "secret" in data or "secret_file" in data
        else ""
    )
    allowed = data.get("allow_from") or []
    if not isinstance(allowed, list):
        raise ConfigError("must be a list of addresses or networks", path=f"{path}.allow_from")
    networks = []
    for i, item in enumerate(allowed):
        try:
            networks.append(ip_network(str(item), strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"not an address or network: {item!r}", path=f"{path}.allow_from[{i}]"
            ) from exc
    insecure = data.get("insecure", False)
    if not isinstance(insecure, bool):
        raise ConfigError("must be true or false", path=f"{path}.insecure")
    if not (secret or networks or insecure):
        raise ConfigError(
            "needs secret (or secret_file) and/or allow_from; insecure: true to go without",
            path=path,
        )
    return HandsetWebhook(route, secret, tuple(networks), insecure)


def _gateway(
    reader: FieldReader, raw: Any, path: str, base: Path, gateways: tuple[str, ...]
) -> GatewayProbe:
    data = reader.mapping(raw, path)
    reader.known(data, _GATEWAY, path)
    gateway = reader.string(data, "gateway", path)
    if gateway not in gateways:
        raise ConfigError(
            f"no sms_gateway source has gateway {gateway!r} (known: {', '.join(gateways)})",
            path=f"{path}.gateway",
        )
    numbers_raw = data.get("numbers")
    if not isinstance(numbers_raw, list) or not numbers_raw:
        raise ConfigError("must list at least one canary number", path=f"{path}.numbers")
    numbers = []
    for i, item in enumerate(numbers_raw):
        here = f"{path}.numbers[{i}]"
        entry = reader.mapping(item, here)
        reader.known(entry, {"number", "carrier", "area"}, here)
        number = reader.string(entry, "number", here)
        if not number.lstrip("+").isdigit():
            raise ConfigError("must be a phone number (digits, optional +)", path=f"{here}.number")
        numbers.append(
            CanaryNumber(
                number,
                reader.string(entry, "carrier", here, "other"),
                reader.string(entry, "area", here, "other"),
            )
        )
    text = reader.string(data, "text", path, "smswatch canary {nonce}")
    if "{nonce}" not in text:
        raise ConfigError("must carry {nonce}", path=f"{path}.text")
    return GatewayProbe(
        gateway=gateway,
        interval_ms=reader.duration(data, "interval", path, 900_000),
        numbers=tuple(numbers),
        send=_send(reader, data.get("send"), f"{path}.send", base),
        text=text,
    )


def _send(reader: FieldReader, raw: Any, path: str, base: Path) -> SendApi:
    data = reader.mapping(raw, path)
    kind = reader.string(data, "kind", path)
    if kind not in SEND_KINDS:
        raise ConfigError(
            f"unknown send kind {kind!r} (one of: {', '.join(SEND_KINDS)})", path=f"{path}.kind"
        )
    keys, secret_key, default_url = _KIND_KEYS[kind]
    allowed = {"kind", "url", "timeout"} | set(keys)
    if secret_key:
        allowed |= {secret_key, f"{secret_key}_file"}
    reader.known(data, allowed, path)
    options = dict(_DEFAULTS.get(kind, {}))
    for key in sorted(keys - {"headers"}):
        if key in data:
            options[key] = reader.string(data, key, path)
    for key in _REQUIRED[kind]:
        if not options.get(key):
            raise ConfigError("is required", path=f"{path}.{key}")
    if kind == "twilio" and not (options.get("from") or options.get("messaging_service_sid")):
        raise ConfigError("needs from or messaging_service_sid", path=path)
    if kind == "http" and options["method"] not in ("POST", "PUT", "GET"):
        raise ConfigError("must be POST, PUT or GET", path=f"{path}.method")
    url = reader.string(data, "url", path, default_url or None)
    if not url.startswith(("http://", "https://")):
        raise ConfigError("must be an http(s) URL", path=f"{path}.url")
    headers: list[tuple[str, str]] = []
    header_raw = reader.mapping(data.get("headers"), f"{path}.headers")
    for name in header_raw:
        value = header_raw[name]
        here = f"{path}.headers.{name}"
        if not isinstance(value, str):
            raise ConfigError("must be a string", path=here)
        headers.append((str(name), reader.string(header_raw, name, f"{path}.headers")))
    return SendApi(
        kind=kind,
        url=url.rstrip("/") if default_url else url,
        secret=reader.secret(data, secret_key, path, base) if secret_key else "",
        options=options,
        headers=tuple(headers),
        timeout_s=reader.duration(data, "timeout", path, 10_000) / 1000,
    )

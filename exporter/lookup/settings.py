"""The `lookup:` section of the config: who may look up, time zone, limits, alert history.

```yaml
lookup:
  tokens_file: /etc/smswatch/lookup-tokens.yml  # bearer tokens (sha256 hashes), re-read on change
  basic_auth_users: [alice]     # users of --web.config.file who may look up (bcrypt lives there)
  timezone: Asia/Shanghai       # how the page and the CLI show times, and read times without offset
  default_window: 10m           # ± around `at` for terminal and phone searches
  max_window: 2h                # a wider window is refused (400), never scanned
  max_results: 100              # more matches: the first ones and `truncated: true`
  audit_retention: 400d         # lookup audit records are kept this long
  session_ttl: 8h               # page sign-ins expire after this
  prometheus:                   # optional: which alerts were firing at the time
    url: http://prometheus:9090
    timeout: 3s
    lookback: 6h                # how far back an alert firing at the time may have started
    after: 15m                  # alerts that fired up to this long after the outcome count too
```
Without `tokens_file` and `basic_auth_users` nobody can sign in: the API and page answer 401.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exporter.errors import ConfigError
from exporter.timestamps import parse_duration_ms

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

_KEYS = {
    "tokens_file",
    "basic_auth_users",
    "timezone",
    "default_window",
    "max_window",
    "max_results",
    "audit_retention",
    "session_ttl",
    "prometheus",
}
_PROMETHEUS_KEYS = {"url", "timeout", "lookback", "after"}


@dataclass(frozen=True)
class PrometheusSettings:
    """Where to read the history of firing alerts (`ALERTS`)."""

    url: str
    timeout_s: float = 3.0
    lookback_ms: int = 6 * HOUR_MS
    after_ms: int = 15 * 60_000


@dataclass(frozen=True)
class LookupSettings:
    """The support-desk lookup's settings (defaults: nobody may sign in, times in UTC)."""

    tokens_file: str = ""
    basic_auth_users: tuple[str, ...] = ()
    timezone: str = "UTC"
    default_window_ms: int = 10 * 60_000
    max_window_ms: int = 2 * HOUR_MS
    max_results: int = 100
    audit_retention_ms: int = 400 * DAY_MS
    session_ttl_ms: int = 8 * HOUR_MS
    prometheus: PrometheusSettings | None = field(default=None)

    @property
    def zone(self) -> ZoneInfo:
        """The display time zone."""
        return ZoneInfo(self.timezone)


Expand = Callable[[str, str], str]


def _no_expansion(text: str, path: str) -> str:
    return text


def _mapping(value: Any, path: str, allowed: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"must be a mapping, got {type(value).__name__}", path=path)
    for key in value:
        if key not in allowed:
            hint = ", ".join(sorted(allowed))
            raise ConfigError(f"unknown key {key!r} (allowed: {hint})", path=path)
    return value


def _text(raw: Mapping[str, Any], key: str, path: str, default: str, expand: Expand) -> str:
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"must be a string, got {type(value).__name__}", path=f"{path}.{key}")
    return expand(str(value), f"{path}.{key}")


def _duration(raw: Mapping[str, Any], key: str, path: str, default: int, expand: Expand) -> int:
    if key not in raw:
        return default
    value = raw[key]
    if isinstance(value, str):
        value = expand(value, f"{path}.{key}")
    try:
        ms = parse_duration_ms(value)
    except ValueError as exc:
        raise ConfigError(str(exc), path=f"{path}.{key}") from exc
    if ms <= 0:
        raise ConfigError("must be greater than zero", path=f"{path}.{key}")
    return ms


def check_timezone(name: str, path: str) -> str:
    """An IANA time zone name, checked (ConfigError naming `path` otherwise)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)", path=path
        ) from exc
    return name


def parse_lookup(raw: Any, base: Path, expand: Expand = _no_expansion) -> LookupSettings:
    """Validate the `lookup:` mapping; relative paths are relative to `base` (the config's dir)."""
    data = _mapping(raw, "lookup", _KEYS)
    tokens_file = _text(data, "tokens_file", "lookup", "", expand)
    if tokens_file and not Path(tokens_file).is_absolute():
        tokens_file = str(base / tokens_file)
    users = data.get("basic_auth_users") or []
    if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
        raise ConfigError("must be a list of user names", path="lookup.basic_auth_users")
    timezone = check_timezone(_text(data, "timezone", "lookup", "UTC", expand), "lookup.timezone")
    default_window = _duration(data, "default_window", "lookup", 10 * 60_000, expand)
    max_window = _duration(data, "max_window", "lookup", 2 * HOUR_MS, expand)
    if default_window > max_window:
        raise ConfigError("must not exceed max_window", path="lookup.default_window")
    if max_window > DAY_MS:
        raise ConfigError("must be at most 1d: lookups never scan more", path="lookup.max_window")
    max_results = data.get("max_results", 100)
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise ConfigError("must be an integer", path="lookup.max_results")
    if not 1 <= max_results <= 1000:
        raise ConfigError("must be between 1 and 1000", path="lookup.max_results")
    prometheus = None
    if data.get("prometheus") is not None:
        prom = _mapping(data["prometheus"], "lookup.prometheus", _PROMETHEUS_KEYS)
        url = _text(prom, "url", "lookup.prometheus", "", expand).rstrip("/")
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"not an http(s) URL: {url!r}", path="lookup.prometheus.url")
        prometheus = PrometheusSettings(
            url=url,
            timeout_s=_duration(prom, "timeout", "lookup.prometheus", 3000, expand) / 1000,
            lookback_ms=_duration(prom, "lookback", "lookup.prometheus", 6 * HOUR_MS, expand),
            after_ms=_duration(prom, "after", "lookup.prometheus", 15 * 60_000, expand),
        )
    return LookupSettings(
        tokens_file=tokens_file,
        basic_auth_users=tuple(users),
        timezone=timezone,
        default_window_ms=default_window,
        max_window_ms=max_window,
        max_results=max_results,
        audit_retention_ms=_duration(data, "audit_retention", "lookup", 400 * DAY_MS, expand),
        session_ttl_ms=_duration(data, "session_ttl", "lookup", 8 * HOUR_MS, expand),
        prometheus=prometheus,
    )

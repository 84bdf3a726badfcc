"""The web config file: TLS and basic-auth users in the exporter-toolkit format of Go exporters.

`--web.config.file` takes the same YAML as Go exporters (prometheus/exporter-toolkit):
`tls_server_config` (`cert_file`, `key_file`, `client_auth_type`, `client_ca_file`) and
`basic_auth_users` (user → bcrypt hash). Relative paths are read from the file's folder.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.errors import ConfigError

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


@dataclass(frozen=True)
class WebConfig:
    """TLS and basic-auth settings."""

    cert_file: str = ""
    key_file: str = ""
    client_auth_type: str = "NoClientCert"
    client_ca_file: str = ""
    users: dict[str, str] = field(default_factory=dict)


def load_web_config(path: str) -> WebConfig:
    """Read and validate an exporter-toolkit web config file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=path) from exc
    except yaml.YAMLError as exc:
        raise ConfigError("not valid YAML", source=path) from exc
    if not isinstance(raw, dict):
        raise ConfigError("must be a mapping", source=path)
    for key in raw:
        if key not in ("tls_server_config", "basic_auth_users", "http_server_config"):
            raise ConfigError(f"unknown key {key!r}", source=path, path=str(key))
    tls = raw.get("tls_server_config") or {}
    users = raw.get("basic_auth_users") or {}
    if not isinstance(tls, dict):
        raise ConfigError("must be a mapping", source=path, path="tls_server_config")
    if not isinstance(users, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in users.items()
    ):
        raise ConfigError(
            "must map user names to bcrypt hashes", source=path, path="basic_auth_users"
        )
    for user, hashed in users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")) or bcrypt_cost(hashed) is None:
            raise ConfigError("is not a bcrypt hash", source=path, path=f"basic_auth_users.{user}")
    client_auth = str(tls.get("client_auth_type", "NoClientCert"))
    if client_auth not in CLIENT_AUTH:
        raise ConfigError(
            f"unknown client_auth_type {client_auth!r}",
            source=path,
            path="tls_server_config.client_auth_type",
        )
    base = Path(path).parent

    def _resolve(value: Any) -> str:
        if not value:
            return ""
        p = Path(str(value))
        return str(p if p.is_absolute() else base / p)

    config = WebConfig(
        cert_file=_resolve(tls.get("cert_file")),
        key_file=_resolve(tls.get("key_file")),
        client_auth_type=client_auth,
        client_ca_file=_resolve(tls.get("client_ca_file")),
        users=dict(users),
    )
    if bool(config.cert_file) != bool(config.key_file):
        raise ConfigError(
            "cert_file and key_file go together", source=path, path="tls_server_config"
        )
    return config


def bcrypt_cost(hashed: str) -> int | None:
    """The cost (log2 rounds) of a bcrypt hash such as `$2b$12$…`, None when it has none."""
    cost = hashed[4:6]
    if len(hashed) < 7 or hashed[6] != "$" or not cost.isdigit() or not 4 <= int(cost) <= 31:
        return None
    return int(cost)


def tls_context(config: WebConfig) -> ssl.SSLContext | None:
    """The server's TLS context per the web config (None when it has no certificate)."""
    if not config.cert_file:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.cert_file, config.key_file)
    context.verify_mode = CLIENT_AUTH[config.client_auth_type]
    if config.client_ca_file:
        context.load_verify_locations(config.client_ca_file)
    return context

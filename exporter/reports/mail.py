"""The `reports.mail:` block: who sends scheduled reports, through which SMTP server, how.

::

    reports:
      mail:
        from: "smswatch <smswatch@bank.example>"
        to: [compliance@bank.example]           # default recipients; a schedule's mail_to wins
        attach: [pdf, csv]                      # the PDF always; csv: every CSV table too
        smtp:
          host: smtp.bank.example
          port: 587                             # default 587 (starttls), 465 (tls), 25 (none)
          security: starttls                    # starttls | tls | none
          ca_file: /etc/ssl/certs/bank-ca.pem   # CA that signs the server's certificate
          username: smswatch                    # optional
          password_env: SMSWATCH_SMTP_PASSWORD  # or password_file; never the password itself
          timeout: 30s                          # per SMTP step
        retry: {attempts: 5, backoff: 1m, max_backoff: 30m}   # waits 1, 2, 4, 8 minutes

The server's certificate is always verified (against `ca_file`, else the system's CAs) and its
name checked; there is no switch to turn that off. `security: none` sends in clear text and is
only accepted for a loopback host (a local relay) with `allow_plaintext: true`.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from exporter.errors import ConfigError
from exporter.privacy import remember_secret
from exporter.reports.fields import duration_field, refuse_unknown_keys, string_field

SECURITY_MODES: tuple[str, ...] = ("starttls", "tls", "none")
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
ATTACHMENTS: tuple[str, ...] = ("pdf", "csv")
MAX_ATTEMPTS = 20

_MAIL_KEYS = {"from", "to", "attach", "smtp", "retry"}
_SMTP_KEYS = {
    "host",
    "port",
    "security",
    "allow_plaintext",
    "ca_file",
    "username",
    "password_env",
    "password_file",
    "timeout",
}
_RETRY_KEYS = {"attempts", "backoff", "max_backoff"}
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to hand reports over: host, port, transport security and login."""

    host: str
    port: int
    security: str = "starttls"  # starttls | tls | none
    ca_file: Path | None = None  # None: the system's CAs
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential back-off between them."""

    attempts: int = 5
    backoff_seconds: float = 60.0
    max_backoff_seconds: float = 1800.0

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1-based)."""
        return float(min(self.backoff_seconds * 2 ** (attempt - 1), self.max_backoff_seconds))


@dataclass(frozen=True)
class MailSettings:
    """The validated `reports.mail:` block."""

    sender: str
    smtp: SmtpSettings
    recipients: tuple[str, ...] = ()
    attach_csv: bool = False
    retry: RetryPolicy = RetryPolicy()

    @property
    def sender_address(self) -> str:
        """The bare address of `sender` (the envelope sender)."""
        return parseaddr(self.sender)[1]


def parse_mail_section(
    raw: object, path: str, *, base: Path | None = None, env: Mapping[str, str] | None = None
) -> MailSettings:
    """Validate `reports.mail`; errors name the field path (``reports.mail.smtp.port``).
    The password is read now from the environment (`env`, default the process's) or a file,
    and registered with the log scrubber."""
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a mapping with from and smtp", path=path)
    refuse_unknown_keys(raw, _MAIL_KEYS, path)
    sender = string_field(raw, "from", path, required=True)
    if not _ADDRESS.match(parseaddr(sender)[1]):
        raise ConfigError(f"must be an e-mail address, got {sender!r}", path=f"{path}.from")
    attach = raw.get("attach", ["pdf"])
    if isinstance(attach, str):
        attach = [part.strip() for part in attach.split(",")]
    if not isinstance(attach, list) or not set(attach) <= set(ATTACHMENTS) or "pdf" not in attach:
        raise ConfigError(f"must be [pdf] or [pdf, csv], got {attach!r}", path=f"{path}.attach")
    return MailSettings(
        sender=sender,
        smtp=_smtp(raw.get("smtp"), f"{path}.smtp", base, os.environ if env is None else env),
        recipients=parse_recipients(raw.get("to"), f"{path}.to"),
        attach_csv="csv" in attach,
        retry=_retry(raw.get("retry"), f"{path}.retry"),
    )


def parse_recipients(value: object, path: str) -> tuple[str, ...]:
    """A list of e-mail addresses (or one address, or comma-separated ones), each once."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError("must be a list of e-mail addresses", path=path)
    out: list[str] = []
    for index, item in enumerate(items):
        text = item.strip() if isinstance(item, str) else item
        if not isinstance(text, str) or not _ADDRESS.match(text):
            raise ConfigError(f"must be an e-mail address, got {item!r}", path=f"{path}[{index}]")
        if text not in out:
            out.append(text)
    return tuple(out)


def is_loopback(host: str) -> bool:
    """True for `localhost` and addresses in 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _smtp(raw: object, path: str, base: Path | None, env: Mapping[str, str]) -> SmtpSettings:
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a mapping with at least host", path=path)
    if "password" in raw:
        raise ConfigError(
            "the password is never written in the config file: use password_env (the name "
            "of an environment variable) or password_file",
            path=f"{path}.password",
        )
    refuse_unknown_keys(raw, _SMTP_KEYS, path)
    host = string_field(raw, "host", path, required=True)
    security = string_field(raw, "security", path, default="starttls")
    if security not in SECURITY_MODES:
        raise ConfigError(
            f"must be one of {', '.join(SECURITY_MODES)}, got {security!r}",
            path=f"{path}.security",
        )
    plaintext = raw.get("allow_plaintext", False)
    if not isinstance(plaintext, bool):
        raise ConfigError(
            f"must be true or false, got {plaintext!r}", path=f"{path}.allow_plaintext"
        )
    if security == "none" and not (plaintext and is_loopback(host)):
        raise ConfigError(
            "security none sends reports and the login in clear text: only to a relay on "
            "loopback (127.0.0.1, ::1, localhost) with allow_plaintext: true; use starttls or tls",
            path=f"{path}.security",
        )
    if plaintext and security != "none":
        raise ConfigError("only goes with security: none", path=f"{path}.allow_plaintext")
    port = raw.get("port", DEFAULT_PORTS[security])
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"must be a port number 1..65535, got {port!r}", path=f"{path}.port")
    ca_file: Path | None = None
    if raw.get("ca_file") is not None:
        ca_file = Path(string_field(raw, "ca_file", path, required=True))
        if not ca_file.is_absolute() and base is not None:
            ca_file = base / ca_file
        if not ca_file.is_file():
            raise ConfigError(f"no such file: {ca_file}", path=f"{path}.ca_file")
    username = string_field(raw, "username", path, default="")
    password = _password(raw, path, base, env)
    if password and not username:
        raise ConfigError("a password needs a username", path=f"{path}.username")
    if username and not password:
        raise ConfigError("a username needs password_env or password_file", path=f"{path}.username")
    if password:  # what AUTH PLAIN and LOGIN put on the wire, should a server echo it
        for wire in (f"\0{username}\0{password}", password):
            remember_secret(base64.b64encode(wire.encode()).decode())
    timeout = duration_field(raw.get("timeout", "30s"), f"{path}.timeout")
    return SmtpSettings(
        host=host,
        port=port,
        security=security,
        ca_file=ca_file,
        username=username,
        password=password,
        timeout_seconds=timeout,
    )


def _password(raw: Mapping[str, Any], path: str, base: Path | None, env: Mapping[str, str]) -> str:
    if "password_env" in raw and "password_file" in raw:
        raise ConfigError("set either password_env or password_file, not both", path=path)
    if raw.get("password_env") is not None:
        name = string_field(raw, "password_env", path, required=True)
        if not env.get(name):
            raise ConfigError(
                f"environment variable {name} is not set", path=f"{path}.password_env"
            )
        password = env[name]
    elif raw.get("password_file") is not None:
        target = Path(string_field(raw, "password_file", path, required=True))
        if not target.is_absolute() and base is not None:
            target = base / target
        try:
            password = target.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read {target}: {exc.strerror}", path=f"{path}.password_file"
            ) from exc
        if not password:
            raise ConfigError(f"{target} is empty", path=f"{path}.password_file")
    else:
        return ""
    remember_secret(password)
    return password


def _retry(raw: object, path: str) -> RetryPolicy:
    if raw is None:
        return RetryPolicy()
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a mapping such as {attempts: 5, backoff: 1m}", path=path)
    refuse_unknown_keys(raw, _RETRY_KEYS, path)
    attempts = raw.get("attempts", RetryPolicy.attempts)
    if isinstance(attempts, bool) or not isinstance(attempts, int):
        raise ConfigError(f"must be a whole number, got {attempts!r}", path=f"{path}.attempts")
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise ConfigError(
            f"must be from 1 to {MAX_ATTEMPTS}, got {attempts}", path=f"{path}.attempts"
        )
    backoff = duration_field(raw.get("backoff", "1m"), f"{path}.backoff")
    ceiling = max(backoff, RetryPolicy.max_backoff_seconds)
    if raw.get("max_backoff") is not None:
        ceiling = duration_field(raw["max_backoff"], f"{path}.max_backoff")
    if ceiling < backoff:
        raise ConfigError("must not be shorter than backoff", path=f"{path}.max_backoff")
    return RetryPolicy(attempts=attempts, backoff_seconds=backoff, max_backoff_seconds=ceiling)

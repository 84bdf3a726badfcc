"""Who may look up: bearer tokens from a file (with revocation), or basic auth, and page sessions.

Tokens file (`lookup.tokens_file`), re-read whenever it changes, so adding or revoking a token
needs no restart; only SHA-256 hashes are stored (`smswatch lookup-token NAME` makes one):

```yaml
tokens:
  - name: alice                 # who: recorded in the audit
    sha256: 9f2c...             # sha256 of the token, hex
  - name: bob
    sha256: 41d0...
    revoked: 2026-11-20         # any value but false/null revokes; the entry stays as a record
```
Basic auth: a user named in `lookup.basic_auth_users` whose password matches the bcrypt hash of
the exporter-toolkit web config (`--web.config.file`). Other users of the web config (say, the
one Prometheus scrapes with) cannot look up. The page signs in once with either credential and
then carries a session cookie (HttpOnly, SameSite=Strict), checked again on every request
against the current tokens file and web config, so a revocation also ends open sessions.

Every refusal is the same 401 whatever the reason; the reason goes to the log (never the token).
A user who may not look up costs the same bcrypt check as a wrong password, so timing does not
tell who may. Failed sign-ins back off per client address (`exporter.web.throttle`), shared with
the web config's basic auth: past a few, credentials from that address get 429 unchecked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exporter.errors import ConfigError
from exporter.web.basic_auth import basic_credentials
from exporter.web.throttle import SignInThrottle

log = logging.getLogger(__name__)

TOKEN_PREFIX = "smsw_"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")  # a token holder's name
_HEX64 = re.compile(r"[0-9a-f]{64}")
SESSION_COOKIE = "smswatch_session"
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Identity:
    """An authenticated support agent."""

    user: str
    method: str  # token | basic


@dataclass(frozen=True)
class TokenEntry:
    """One line of the tokens file."""

    name: str
    sha256: str
    revoked: bool


def new_token() -> tuple[str, str]:
    """A fresh random token and its sha256 hex (what the tokens file holds)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    """The sha256 hex of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_tokens(path: str) -> list[TokenEntry]:
    """Read and validate a tokens file (ConfigError naming the entry at fault)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read tokens file: {exc.strerror}", source=path) from exc
    except yaml.YAMLError as exc:
        raise ConfigError("not valid YAML", source=path) from exc
    if not isinstance(raw, dict) or set(raw) - {"tokens"}:
        raise ConfigError("must be a mapping with one key, tokens", source=path)
    items = raw.get("tokens") or []
    if not isinstance(items, list):
        raise ConfigError("must be a list", source=path, path="tokens")
    out: list[TokenEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"tokens[{i}]"
        if not isinstance(item, dict) or set(item) - {"name", "sha256", "revoked"}:
            raise ConfigError("must be a mapping of name, sha256, revoked", source=path, path=where)
        name, digest = str(item.get("name") or ""), str(item.get("sha256") or "").lower()
        if not NAME.fullmatch(name):
            raise ConfigError(
                "name must be 1-64 letters, digits, '.', '_', '@', '-'", source=path, path=where
            )
        if not _HEX64.fullmatch(digest):
            raise ConfigError("sha256 must be 64 hex digits", source=path, path=where)
        if digest in seen:
            raise ConfigError("the same token is listed twice", source=path, path=where)
        seen.add(digest)
        revoked = item.get("revoked")
        out.append(TokenEntry(name, digest, revoked is not None and revoked is not False))
    return out


class TokenFile:
    """The tokens file, re-read when its modification time or size changes (fails closed)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: list[TokenEntry] = []
        self._stamp: tuple[float, int] | None = None
        if path:
            self._entries = load_tokens(path)
            self._stamp = self._stat()

    def _stat(self) -> tuple[float, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime, st.st_size)

    def entries(self) -> list[TokenEntry]:
        """The current entries (none when the file is gone: nobody gets in)."""
        if not self.path:
            return []
        stamp = self._stat()
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                if stamp is None:
                    log.error("lookup tokens file is gone: refusing every token")
                    self._entries = []
                else:
                    try:
                        self._entries = load_tokens(self.path)
                        log.info("lookup tokens reloaded", extra={"tokens": len(self._entries)})
                    except ConfigError as exc:
                        log.error(
                            "lookup tokens file invalid, keeping the previous",
                            extra={"error": str(exc)},
                        )
            return self._entries

    def check(self, token: str) -> tuple[TokenEntry | None, str]:
        """The entry of a valid token, else None and the reason (for the log)."""
        digest = token_hash(token)
        found = None
        for entry in self.entries():
            if hmac.compare_digest(entry.sha256, digest):
                found = entry
        if found is None:
            return None, "unknown token"
        if found.revoked:
            return None, f"revoked token of {found.name}"
        return found, ""

    def valid_hash(self, digest: str) -> bool:
        """Whether a token hash is still listed and not revoked (sessions re-check this)."""
        return any(e.sha256 == digest and not e.revoked for e in self.entries())


@dataclass
class _Session:
    identity: Identity
    credential: str  # token hash, or the user's bcrypt hash at sign-in
    expires: float


class Sessions:
    """Page sign-ins: random ids in memory (a restart signs everyone out)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}

    def create(self, identity: Identity, credential: str) -> str:
        """A new session id for a signed-in agent."""
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                for key in [k for k, s in self._sessions.items() if s.expires <= now]:
                    del self._sessions[key]
                while len(self._sessions) >= MAX_SESSIONS:
                    del self._sessions[next(iter(self._sessions))]
            self._sessions[sid] = _Session(identity, credential, now + self.ttl_s)
        return sid

    def get(self, sid: str) -> tuple[Identity, str] | None:
        """The identity and credential of a live session."""
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if session.expires <= self._clock():
                del self._sessions[sid]
                return None
            return session.identity, session.credential

    def drop(self, sid: str) -> None:
        """Sign out."""
        with self._lock:
            self._sessions.pop(sid, None)


class BasicAuth:
    """What access needs from the exporter's web config: check a header, read a user's hash."""

    def __init__(
        self, check: Callable[[str | None], str | None], user_hash: Callable[[str], str | None]
    ) -> None:
        self.check = check
        self.user_hash = user_hash


def session_id(cookie_header: str) -> str:
    """The session id in a Cookie header ("" when none)."""
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE:
            return value
    return ""


class Access:
    """Authenticates lookup requests: Authorization header, or the page's session cookie."""

    def __init__(
        self,
        tokens: TokenFile,
        allowed_users: tuple[str, ...],
        basic: BasicAuth | None,
        sessions: Sessions,
        throttle: SignInThrottle | None = None,
    ) -> None:
        self.tokens = tokens
        self.allowed_users = frozenset(allowed_users)
        self.basic = basic
        self.sessions = sessions
        self.throttle = throttle or SignInThrottle()

    @property
    def configured(self) -> bool:
        """Whether anyone at all can sign in."""
        return bool(self.tokens.path) or bool(self.allowed_users and self.basic)

    def _bearer(self, token: str) -> tuple[Identity | None, str, str]:
        entry, reason = self.tokens.check(token)
        if entry is None:
            return None, "", reason
        return Identity(entry.name, "token"), entry.sha256, ""

    def _basic(self, header: str) -> tuple[Identity | None, str, str]:
        if self.basic is None or not self.allowed_users:
            return None, "", "basic auth not enabled for lookups"
        credentials = basic_credentials(header)
        if credentials is None:
            return None, "", "malformed basic auth"
        user = credentials[0]
        checked = self.basic.check(header)  # bcrypt for every user, allowed or not
        if user not in self.allowed_users:
            return None, "", "user not allowed to look up"
        if checked != user:
            return None, "", "wrong password"
        return Identity(user, "basic"), self.basic.user_hash(user) or "", ""

    def _checked(
        self, remote: str, check: Callable[[], tuple[Identity | None, str, str]]
    ) -> tuple[Identity | None, str, str]:
        """Run a credential check unless `remote` is backing off (SignInsThrottled); a
        refusal counts as a failure of that address."""
        self.throttle.check(remote)
        identity, credential, reason = check()
        if identity is None:
            self.throttle.failed(remote)
        return identity, credential, reason

    def authenticate(
        self, authorization: str | None, remote: str = ""
    ) -> tuple[Identity | None, str, str]:
        """(identity, credential fingerprint, refusal reason) from an Authorization header;
        raises SignInsThrottled while the client's address backs off."""
        header = (authorization or "").strip()
        if not header:
            return None, "", "no credentials"
        if header[:7].lower() == "bearer ":
            return self._checked(remote, lambda: self._bearer(header[7:].strip()))
        if header[:6].lower() == "basic ":
            return self._checked(remote, lambda: self._basic("Basic " + header[6:].strip()))
        return None, "", "unsupported authorization scheme"

    def from_session(self, cookie_header: str) -> Identity | None:
        """The identity of a live session whose credential is still valid."""
        sid = session_id(cookie_header)
        found = self.sessions.get(sid) if sid else None
        if found is None:
            return None
        identity, credential = found
        if identity.method == "token":
            still = self.tokens.valid_hash(credential)
        else:
            still = (
                self.basic is not None
                and identity.user in self.allowed_users
                and bool(credential)
                and self.basic.user_hash(identity.user) == credential
            )
        if not still:
            self.sessions.drop(sid)
            log.info("lookup session ended: credential revoked", extra={"user": identity.user})
            return None
        return identity

    def sign_in(self, form: dict[str, Any], remote: str = "") -> tuple[Identity | None, str, str]:
        """Check a sign-in form (token, or username and password): (identity, session id, why);
        raises SignInsThrottled while the client's address backs off."""
        token = str(form.get("token") or "").strip()
        if token:
            identity, credential, reason = self._checked(remote, lambda: self._bearer(token))
        else:
            user = str(form.get("username") or "")
            password = str(form.get("password") or "")
            if not user or not password:
                return None, "", "empty sign-in form"
            header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            identity, credential, reason = self._checked(remote, lambda: self._basic(header))
        if identity is None:
            return None, "", reason
        return identity, self.sessions.create(identity, credential), ""

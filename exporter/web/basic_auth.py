"""Basic auth against the bcrypt hashes of the web config, re-read when its file changes.

Every refused check costs the same bcrypt comparison, whether the user exists or not: an unknown
user is checked against a dummy hash of the configured users' cost, so the answer's timing does
not tell which users exist. Successful checks are remembered (bcrypt is slow by design and
Prometheus sends the same credentials every scrape) under a keyed digest of user, password and
hash, never under the password itself; failures are never remembered, so each guess costs bcrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import threading

import bcrypt

from exporter.errors import ConfigError
from exporter.web.settings import WebConfig, bcrypt_cost, load_web_config

log = logging.getLogger(__name__)

MAX_REMEMBERED = 1000
_DEFAULT_COST = 12  # bcrypt's own default, for the dummy hash when no user is configured


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of a `Basic …` Authorization header, None when it is not one."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        user, sep, password = (
            base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class BasicAuthUsers:
    """The web config's users; `check` answers who a Basic header authenticates."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._mtime = 0.0
        self._config = WebConfig()
        self._dummy = b""
        self._key = secrets.token_bytes(32)  # keys the digests of remembered sign-ins
        self._known: set[bytes] = set()
        self._lock = threading.Lock()
        if path:
            self._config = load_web_config(path)
            self._mtime = os.stat(path).st_mtime

    @property
    def config(self) -> WebConfig:
        """The current web config (re-read when its file changed; a bad edit keeps the old)."""
        if self.path:
            try:
                mtime = os.stat(self.path).st_mtime
            except OSError:
                return self._config
            if mtime != self._mtime:
                with self._lock:
                    try:
                        self._config = load_web_config(self.path)
                        self._known.clear()
                        self._dummy = b""
                    except ConfigError as exc:
                        log.error(
                            "web config reload failed, keeping the previous",
                            extra={"error": str(exc)},
                        )
                    self._mtime = mtime
        return self._config

    def hash_of(self, user: str) -> str | None:
        """A user's current bcrypt hash (None when there is no such user)."""
        return self.config.users.get(user)

    def check(self, header: str | None) -> str | None:
        """The authenticated user, "" when no auth is configured, None when refused."""
        users = self.config.users
        if not users:
            return ""
        credentials = basic_credentials(header)
        if credentials is None:
            return None
        user, password = credentials
        hashed = users.get(user)
        if hashed is None:
            bcrypt.checkpw(password.encode("utf-8"), self._dummy_hash(users))
            return None
        digest = hmac.new(
            self._key, b"\0".join(s.encode("utf-8") for s in (user, password, hashed)), "sha256"
        ).digest()
        with self._lock:
            if digest in self._known:
                return user
        if not bcrypt.checkpw(password.encode("utf-8"), hashed.encode("utf-8")):
            return None
        with self._lock:
            if len(self._known) >= MAX_REMEMBERED:
                self._known.clear()
            self._known.add(digest)
        return user

    def _dummy_hash(self, users: dict[str, str]) -> bytes:
        """A hash of a random password at the highest cost among the users."""
        dummy = self._dummy
        if not dummy:  # two threads may both make one: either will do
            cost = max((bcrypt_cost(h) or _DEFAULT_COST for h in users.values()), default=12)
            password = hashlib.sha256(secrets.token_bytes(16)).hexdigest().encode()
            dummy = self._dummy = bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost))
        return dummy

"""One account check of one gateway: read each part, keep the latest reading, count failures.

The parts (balance or quota; signatures and templates) are read independently: one that fails
is counted and logged (with the gateway, the part and the error kind, never a credential) and
left out of the reading, the others are still exported. Requests go through the sources'
shared HTTP client (timeouts, retries, `Retry-After`, credentials only to the account API's
own origin), with the source's auth and signer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

import requests

from exporter.accounts.aliyun import AliyunAccount
from exporter.accounts.readings import AccountReading, Balance, Quota, Sender, watched
from exporter.accounts.settings import AccountSettings
from exporter.accounts.tencent import TencentAccount
from exporter.accounts.twilio import TwilioAccount
from exporter.accounts.vonage import VonageAccount
from exporter.config import SourceConfig
from exporter.errors import SourceError
from exporter.sources.client import SourceClient

log = logging.getLogger(__name__)


class ProviderAccount(Protocol):
    """What every provider module offers: the balance (or package quota)."""

    def read_balance(
        self, client: SourceClient, settings: AccountSettings, deadline: float
    ) -> Balance | Quota: ...


@runtime_checkable
class ApprovalsAccount(ProviderAccount, Protocol):
    """A provider that also tells the review state of signatures and templates."""

    def read_senders(
        self, client: SourceClient, settings: AccountSettings, deadline: float
    ) -> list[Sender]: ...


def provider_account(source: SourceConfig, clock: Callable[[], float]) -> ProviderAccount:
    """The account reader of the source's provider."""
    if source.provider == "twilio":
        return TwilioAccount(source)
    if source.provider == "vonage":
        return VonageAccount(source)
    if source.provider == "tencent":
        return TencentAccount(source, clock)
    if source.provider == "aliyun":
        return AliyunAccount(source, clock)
    raise ValueError(f"provider {source.provider} has no account API")


@dataclass
class AccountHealth:
    """The latest check of one gateway's account, for /metrics."""

    up: bool = False
    checks: int = 0
    last_success_s: float | None = None
    errors: Counter[str] = field(default_factory=Counter)
    reading: AccountReading = field(default_factory=AccountReading)


class AccountChecker:
    """Checks one gateway's provider account; `check()` is the scheduled job."""

    def __init__(
        self,
        source: SourceConfig,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ) -> None:
        if source.account is None:
            raise ValueError(f"source {source.name} has no account section")
        settings: AccountSettings = source.account
        # Whose account: the source's provider and keys, or the section's own.
        source = replace(
            source,
            provider=settings.provider or source.provider,
            auth=settings.auth or source.auth,
            options=settings.options or source.options,
        )
        self.source = source
        self.settings = settings
        self.gateway = source.gateway
        self.clock = clock
        self.account = provider_account(source, clock)
        self._lock = threading.Lock()
        self._health = AccountHealth()
        stop = stop or threading.Event()
        self.client = SourceClient(
            replace(source, base_url=self.settings.base_url), self._count, stop, session
        )
        # Alibaba's balance comes from another API host (BSS OpenAPI), with the same key.
        self.balance_client = (
            SourceClient(
                replace(source, base_url=self.settings.balance_url), self._count, stop, session
            )
            if source.provider == "aliyun"
            else self.client
        )
        self._approved: dict[tuple[str, str], bool] = {}

    def _count(self, kind: str) -> None:
        with self._lock:
            self._health.errors[kind] += 1

    def close(self) -> None:
        """Release pooled connections."""
        self.client.close()
        self.balance_client.close()

    def health(self) -> AccountHealth:
        """A copy of the latest check's health (safe to read while a check runs)."""
        with self._lock:
            health = self._health
            return replace(health, errors=Counter(health.errors))

    def check(self) -> AccountReading:
        """Read every configured part once; the reading replaces the previous one."""
        deadline = time.monotonic() + self.source.deadline_ms / 1000
        settings = self.settings
        balance: Balance | None = None
        quota: Quota | None = None
        senders: tuple[Sender, ...] | None = None
        failed: list[str] = []
        if settings.balance:
            try:
                amount = self.account.read_balance(self.balance_client, settings, deadline)
            except SourceError as exc:
                failed.append(self._failed("balance", exc))
            else:
                if isinstance(amount, Quota):
                    quota = amount
                else:
                    balance = amount
        if settings.approvals and isinstance(self.account, ApprovalsAccount):
            try:
                listed = self.account.read_senders(self.client, settings, deadline)
            except SourceError as exc:
                failed.append(self._failed("approvals", exc))
            else:
                senders = tuple(
                    watched(listed, "signature", settings.signatures)
                    + watched(listed, "template", settings.templates)
                )
                self._note_changes(senders)
        reading = AccountReading(balance, quota, senders, tuple(failed))
        with self._lock:
            self._health.checks += 1
            self._health.up = not failed
            self._health.reading = reading
            if not failed:
                self._health.last_success_s = self.clock()
        return reading

    def _failed(self, part: str, exc: SourceError) -> str:
        log.warning(
            "account check failed",
            extra={
                "source": self.source.name,
                "gateway": self.gateway,
                "part": part,
                "error": exc.kind,
            },
        )
        return part

    def _note_changes(self, senders: tuple[Sender, ...]) -> None:
        """Log a sender that lost (or gained) its approval since the last check."""
        for sender in senders:
            key = (sender.kind, sender.name)
            before = self._approved.get(key)
            if before is not None and before != sender.approved:
                log.warning(
                    "sender approval changed",
                    extra={
                        "gateway": self.gateway,
                        "kind": sender.kind,
                        "name": sender.name,
                        "state": sender.state,
                    },
                )
            self._approved[key] = sender.approved

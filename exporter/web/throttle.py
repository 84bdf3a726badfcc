"""Back-off for failed sign-ins, per client address, shared by every credential check.

A client address gets a few free failures; each further one locks the address out for twice as
long as the one before (1 s, 2 s, 4 s, … up to five minutes), and while locked every credential
from it is refused with 429 and `Retry-After` without being checked, so guessing passwords or
tokens online is slow and costs the server nothing. Failures are forgotten a while after the
last one. A success does not wipe them: otherwise one known credential (say, the scrape user's)
would reset the back-off for guessing another.

Locking the address and not the user name means an attacker cannot lock Prometheus or an agent
out by failing their names from elsewhere. An IPv6 client counts by its /64 network, which one
host commonly holds whole.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network


class SignInsThrottled(Exception):
    """Refused without checking: too many failed sign-ins from this address lately."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many failed sign-ins, retry after {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s

    @property
    def retry_after(self) -> str:
        """The `Retry-After` header value (whole seconds, at least 1)."""
        return str(max(1, int(self.retry_after_s + 0.999)))


@dataclass
class _Failures:
    count: int
    last: float
    locked_until: float


class SignInThrottle:
    """Failed sign-ins per client address, and the lock-out that follows them."""

    def __init__(
        self,
        free_failures: int = 10,
        first_lockout_s: float = 1.0,
        max_lockout_s: float = 300.0,
        forget_after_s: float = 900.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.first_lockout_s = first_lockout_s
        self.max_lockout_s = max_lockout_s
        self.forget_after_s = forget_after_s
        self.max_addresses = max_addresses
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def check(self, address: str) -> None:
        """Raise SignInsThrottled while `address` is locked out."""
        now, address = self.clock(), _client(address)
        with self._lock:
            entry = self._current(address, now)
            if entry is not None and entry.locked_until > now:
                raise SignInsThrottled(entry.locked_until - now)

    def failed(self, address: str) -> None:
        """Record a failed sign-in from `address` (locking it out past the free failures)."""
        now, address = self.clock(), _client(address)
        with self._lock:
            entry = self._current(address, now) or _Failures(0, now, 0.0)
            entry.count += 1
            entry.last = now
            beyond = entry.count - self.free_failures
            if beyond > 0:
                lockout = min(self.max_lockout_s, self.first_lockout_s * 2 ** min(beyond - 1, 30))
                entry.locked_until = now + lockout
            self._failures[address] = entry
            self._failures.move_to_end(address)
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)

    def _current(self, address: str, now: float) -> _Failures | None:
        entry = self._failures.get(address)
        forgotten = entry is not None and now - entry.last > self.forget_after_s
        if entry is not None and forgotten and entry.locked_until <= now:
            del self._failures[address]
            return None
        return entry


def _client(address: str) -> str:
    """What counts as one client: an IPv4 address (also IPv4-mapped), or an IPv6 /64."""
    try:
        parsed = ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ip_network(f"{parsed}/64", strict=False))
    return str(parsed)

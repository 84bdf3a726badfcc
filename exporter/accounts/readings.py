"""What one account check read: the normalized shape every provider's answer is turned into."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from exporter.sources.client import BadPayload, SourceClient

T = TypeVar("T")

#: The `kind` label of a sender: the signature (sign name, sender id) or a message template.
SENDER_KINDS: tuple[str, ...] = ("signature", "template")

#: The `state` label of a sender, the providers' review states brought to one vocabulary:
#: `approved` (usable), `pending` (in review, or approved and not in effect yet), `rejected`
#: (refused or unusable), `cancelled` (its review was withdrawn), `absent` (configured in
#: smswatch but the provider no longer lists it: deleted) and `unknown` (a state value the
#: provider's documentation does not list: not taken as approved).
SENDER_STATES: tuple[str, ...] = (
    "approved",
    "pending",
    "rejected",
    "cancelled",
    "absent",
    "unknown",
)


@dataclass(frozen=True)
class Balance:
    """Credit left on the account, in `currency` (ISO 4217 code as the provider spells it)."""

    amount: float
    currency: str


@dataclass(frozen=True)
class Quota:
    """Messages left in the account's packages that are in effect, and their size."""

    remaining: int
    total: int


@dataclass(frozen=True)
class Sender:
    """One signature or template and its review state (one of SENDER_STATES)."""

    kind: str
    name: str
    state: str

    @property
    def approved(self) -> bool:
        """Messages can be sent with it now."""
        return self.state == "approved"


@dataclass(frozen=True)
class AccountReading:
    """The parts of one check that were read; a part whose request failed is None (its
    series are not exported until a later check reads it)."""

    balance: Balance | None = None
    quota: Quota | None = None
    senders: tuple[Sender, ...] | None = None
    failed_parts: tuple[str, ...] = field(default_factory=tuple)


def watched(senders: list[Sender], kind: str, names: tuple[str, ...]) -> list[Sender]:
    """The senders of `kind` to export: all the provider listed when `names` is empty, else
    exactly `names`, each one the provider does not list as `absent`."""
    of_kind = [s for s in senders if s.kind == kind]
    if not names:
        return of_kind
    by_name = {s.name: s for s in of_kind}
    return [by_name.get(name, Sender(kind, name, "absent")) for name in names]


def read_answer(client: SourceClient, parse: Callable[[], T]) -> T:
    """Run the parse of an answer; an error answer (a provider's `ApiError`, with its error
    kind) or a shape the parse does not know fails the check, counted like a source error."""
    try:
        return parse()
    except BadPayload as exc:
        raise client.fail(str(getattr(exc, "kind", "bad_payload")), str(exc)) from exc

"""The simulated world: carriers, areas, acquirers, merchants, terminals and card numbers.

Everything here is built once per run from the seed; nothing changes afterwards except what the
fault schedule says about terminals (see `scenario.py` and `traffic.py`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Mobile carriers with their share of cardholders and their number prefixes (first 3 digits).
CARRIERS: tuple[str, ...] = ("china-mobile", "china-unicom", "china-telecom")
CARRIER_SHARES: tuple[float, ...] = (0.60, 0.22, 0.18)
PHONE_PREFIXES: dict[str, tuple[str, ...]] = {
    "china-mobile": ("134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158",
                     "159", "178", "182", "183", "184", "187", "188", "198"),
    "china-unicom": ("130", "131", "132", "145", "155", "156", "166", "175", "176", "185", "186"),
    "china-telecom": ("133", "149", "153", "173", "177", "180", "181", "189", "199"),
}  # fmt: skip

#: Areas (the `area` label): where the terminal, and so the cardholder's handset, is.
AREAS: tuple[str, ...] = ("north", "south", "east", "west", "central")

#: Acquirers (the `acquirer` label) and their share of merchants.
ACQUIRERS: tuple[str, ...] = ("acq-north", "acq-south", "acq-east")
ACQUIRER_SHARES: tuple[float, ...] = (0.40, 0.35, 0.25)

#: Card BINs (8 digits) of the issuing bank's UnionPay cards.
BINS: tuple[str, ...] = ("62258800", "62258801", "62284800", "62170033", "62148300")

MERCHANT_COUNT = 50
TERMINAL_COUNT = 300
OUTDATED_SHARE = 0.03  # terminals on 4.x software from the start
NOTICE_OFF_SHARE = 0.01  # terminals with SMS notice switched off from the start
CURRENT_VERSIONS: tuple[str, ...] = ("5.2.1", "5.2.1", "5.2.1", "5.1.4", "5.0.3")
OUTDATED_VERSIONS: tuple[str, ...] = ("4.8.2", "4.6.0")


@dataclass(frozen=True)
class Merchant:
    """A shop with one or more terminals, contracted with one acquirer, in one area."""

    merchant_id: str
    acquirer: str
    area: str


@dataclass(frozen=True)
class Terminal:
    """A POS terminal as it is at the start of the run."""

    terminal_id: str
    merchant_id: str
    acquirer: str
    area: str
    software_version: str
    sms_notice_enabled: bool
    weight: float  # relative share of the traffic

    @property
    def outdated(self) -> bool:
        """True when the software is older than 5.0.0 (it then never triggers an SMS)."""
        return int(self.software_version.split(".", 1)[0]) < 5


@dataclass(frozen=True)
class World:
    """The static population of one run."""

    merchants: tuple[Merchant, ...]
    terminals: tuple[Terminal, ...]  # sorted by terminal_id
    cumulative_weights: tuple[float, ...]  # for weighted terminal picks

    def terminals_of(self, acquirer: str) -> list[Terminal]:
        """The terminals of one acquirer, in terminal id order."""
        return [t for t in self.terminals if t.acquirer == acquirer]


def build_world(seed: int) -> World:
    """Build the merchants and terminals of a run; the same seed gives the same world."""
    rng = random.Random(f"world/{seed}")
    merchants = tuple(
        Merchant(
            merchant_id=f"M{100 + i * 7:06d}",
            acquirer=rng.choices(ACQUIRERS, weights=ACQUIRER_SHARES)[0],
            area=rng.choice(AREAS),
        )
        for i in range(MERCHANT_COUNT)
    )
    # Shop sizes vary a lot: terminals per merchant and traffic per terminal are skewed.
    sizes = [rng.lognormvariate(0, 0.8) for _ in merchants]
    scale = TERMINAL_COUNT / sum(sizes)
    counts = [max(1, round(size * scale)) for size in sizes]
    counts[-1] = max(1, counts[-1] + TERMINAL_COUNT - sum(counts))
    terminals: list[Terminal] = []
    number = 1000
    for merchant, count in zip(merchants, counts, strict=True):
        for _ in range(count):
            number += rng.randint(1, 40)
            outdated = rng.random() < OUTDATED_SHARE
            notice_on = rng.random() >= NOTICE_OFF_SHARE
            weight = rng.lognormvariate(0, 0.6)
            terminals.append(
                Terminal(
                    terminal_id=f"T{number:07d}",
                    merchant_id=merchant.merchant_id,
                    acquirer=merchant.acquirer,
                    area=merchant.area,
                    software_version=rng.choice(
                        OUTDATED_VERSIONS if outdated else CURRENT_VERSIONS
                    ),
                    sms_notice_enabled=notice_on,
                    # Old or misconfigured terminals sit in quiet shops: less traffic.
                    weight=weight * (1.0 if notice_on and not outdated else 0.3),
                )
            )
    terminals.sort(key=lambda t: t.terminal_id)
    cumulative: list[float] = []
    total = 0.0
    for terminal in terminals:
        total += terminal.weight
        cumulative.append(total)
    return World(tuple(merchants), tuple(terminals), tuple(cumulative))


class Inventory:
    """The terminals over time: their state at the start plus the SMS-notice-off windows.

    Only `sms_notice_enabled` changes during a run (software versions are fixed), so a
    terminal's history is the list of instants where its notice flips.
    """

    def __init__(self, world: World, start_ms: int) -> None:
        self.world = world
        self.start_ms = start_ms
        self._off: list[list[tuple[int, int]]] = [[] for _ in world.terminals]
        self._outdated = [t.outdated for t in world.terminals]
        self._always_off = [not t.sms_notice_enabled for t in world.terminals]
        #: Time of each terminal's latest published transaction (the start until it has one).
        self.last_seen: list[int] = [start_ms] * len(world.terminals)

    def switch_off(self, index: int, start_ms: int, end_ms: int) -> None:
        """Switch a terminal's SMS notice off for `start_ms <= t < end_ms`."""
        self._off[index].append((start_ms, end_ms))

    def notice_enabled(self, index: int, at_ms: int) -> bool:
        """The terminal's SMS notice setting at `at_ms`."""
        if self._always_off[index]:
            return False
        return not any(start <= at_ms < end for start, end in self._off[index])

    def sms_capable(self, index: int, at_ms: int) -> bool:
        """True when a receipt printed at `at_ms` triggers an SMS: notice on, software current."""
        return not self._outdated[index] and self.notice_enabled(index, at_ms)

    def changes(self, index: int, until_ms: int) -> list[tuple[int, bool]]:
        """The `(time, sms_notice_enabled)` flips of a terminal up to and including `until_ms`."""
        if self._always_off[index]:
            return []
        flips: list[tuple[int, bool]] = []
        enabled = True
        points = sorted({p for window in self._off[index] for p in window})
        for point in points:
            if point > until_ms:
                break
            now_enabled = self.notice_enabled(index, point)
            if now_enabled != enabled:
                flips.append((point, now_enabled))
                enabled = now_enabled
        return flips

    def pick(self, acquirer: str | None, count: int, at_ms: int, rng: random.Random) -> list[int]:
        """Choose up to `count` terminals (of `acquirer`) able to send SMS at `at_ms`."""
        candidates = [
            i
            for i, terminal in enumerate(self.world.terminals)
            if (acquirer is None or terminal.acquirer == acquirer) and self.sms_capable(i, at_ms)
        ]
        return sorted(rng.sample(candidates, min(count, len(candidates))))

"""Seeded, deterministic traffic: card transactions and the whole future of each.

Transactions arrive as a Poisson process whose rate follows a diurnal curve (Beijing time),
peaking at `settings.rate` per simulated second. Each transaction is generated in `txn_time`
order, and at that moment its whole future is drawn from the one seeded `random.Random`: its
reversal, its SMS messages and every status event of them (duplicates and late contradicting
reports included). The result therefore depends only on (seed, settings, faults), never on
when or how often the HTTP API is polled.

Items are rendered to compact JSON here, once; the feeds store them as bytes.
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any

from exporter.simulator.codes import NO_ERROR, REPORTS
from exporter.simulator.scenario import Fault
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.truth import MessageFacts, TransactionFacts
from exporter.simulator.world import (
    BINS,
    CARRIER_SHARES,
    CARRIERS,
    PHONE_PREFIXES,
    Inventory,
)

#: Share of the peak rate for each local hour 0..23 (interpolated linearly in between).
DIURNAL: tuple[float, ...] = (
    0.25, 0.15, 0.10, 0.08, 0.08, 0.10, 0.20, 0.40, 0.60, 0.75, 0.85, 0.95,
    1.00, 0.90, 0.80, 0.80, 0.85, 0.90, 0.97, 1.00, 0.95, 0.80, 0.60, 0.40,
)  # fmt: skip
LOCAL_OFFSET_MS = 8 * 3_600_000  # the carriers are Chinese: the day follows Beijing time

DECLINE_SHARE = 0.08
DECLINE_CODES: tuple[str, ...] = ("05", "51", "51", "55", "14", "61", "54")
SMS_EXPECTED_SHARE = 0.90
REVERSAL_SHARE = 0.015
DUPLICATE_RECORD_SHARE = 0.002  # the acquirer repeats a transaction record
BASELINE_DROP_SHARE = 0.001  # receipts that never reach the SMS platform (integration)
SUBMIT_DELAY_MS = (200, 3000)
ENROUTE_SHARE = 0.3
DUPLICATE_EVENT_SHARE = 0.004  # the gateway repeats an event at once
LATE_REPEAT_SHARE = 0.003  # the gateway repeats a final report later
CONFLICT_SHARE = 0.002  # a late final report contradicting the first one
RETRY_SHARE = 0.3  # the bank resends after a throttled or gateway failure

#: Baseline outcome of a message when no fault hits it: cause → probability.
BASELINE: tuple[tuple[str, float], ...] = (
    ("invalid_number", 0.004),
    ("unreachable", 0.005),
    ("throttled", 0.001),
    ("filtered", 0.001),
    ("gateway", 0.0005),
    ("integration", 0.0005),
    ("unknown", 0.001),
    ("silent", 0.001),  # submitted, then no report ever: unknown after give_up_after
)
_BASELINE_CUMULATIVE = tuple(
    zip((c for c, _ in BASELINE), accumulate(p for _, p in BASELINE), strict=True)
)

#: Time from submit to the final report of a failure, per cause (or stat), in ms.
FAILURE_DELAY_MS: dict[str, tuple[int, int]] = {
    "gateway": (1_000, 15_000),
    "invalid_number": (1_000, 8_000),
    "unreachable": (10_000, 120_000),  # UNDELIV
    "EXPIRED": (480_000, 1_500_000),  # validity period runs out
    "DELETED": (480_000, 1_500_000),
    "throttled": (300, 3_000),
    "filtered": (1_000, 6_000),
    "integration": (200, 2_000),
    "unknown": (30_000, 600_000),
}

#: Message-level fault kinds and the cause of the messages they hit.
MESSAGE_FAULTS: dict[str, str] = {
    "gateway_outage": "gateway",
    "invalid_numbers": "invalid_number",
    "weak_signal": "unreachable",
    "throttling": "throttled",
    "carrier_filtering": "filtered",
}
TRANSACTION_FAULTS: tuple[str, ...] = ("integration_drop", "sync_delay")
#: Faults about whose feeds and keys a transaction's records use.
IDENTITY_FAULTS: tuple[str, ...] = ("id_collision", "rrn_reuse")
#: A grey route's fake DELIVRD: the message is reported delivered and never reaches the handset.
FAKE_REPORTS = "fake_delivery_reports"

_REPORT_PICKS = {
    cause: (tuple(accumulate(w for _, _, w in reports)), tuple((s, c) for s, c, _ in reports))
    for cause, reports in REPORTS.items()
}
_CARRIER_CUMULATIVE = tuple(accumulate(CARRIER_SHARES))
_LN_FAST = math.log(3_000)  # median delivery latency 3 s
_LN_SLOW = math.log(45_000)  # a slow tail, 2 % of messages, median 45 s
_LN_AMOUNT = math.log(8_800)  # median ticket 88.00 CNY


@lru_cache(maxsize=8192)
def _second_text(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))


def timestamp_text(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, as `format_rfc3339_ms` but cached per second (hot path)."""
    return f"{_second_text(ms // 1000)}{ms % 1000:03d}Z"


def diurnal_share(at_ms: int) -> float:
    """The share of the peak rate at `at_ms` (Beijing time of day)."""
    hour = ((at_ms + LOCAL_OFFSET_MS) % 86_400_000) / 3_600_000
    low = int(hour)
    fraction = hour - low
    return DIURNAL[low] * (1 - fraction) + DIURNAL[(low + 1) % 24] * fraction


@dataclass(slots=True)
class Generated:
    """One transaction's whole future: feed items to publish and the facts for the truth."""

    facts: TransactionFacts
    terminal_index: int
    records: list[tuple[int, bytes]]  # transactions feed items (time, JSON), emission order
    events: list[tuple[int, bytes]]  # messages feed items (time, JSON), emission order
    #: Which feeds carry them: 0 the first acquirer / gateway, 1 the second (`id_collision`).
    acquirer_feed: int = 0
    sms_feed: int = 0


class TrafficGenerator:
    """Generates transactions in `txn_time` order up to a requested simulated time."""

    def __init__(
        self,
        settings: SimulatorSettings,
        inventory: Inventory,
        faults: Sequence[Fault] = (),
    ) -> None:
        self._settings = settings
        self._inventory = inventory
        self._rng = random.Random(f"traffic/{settings.seed}")
        self._peak_per_ms = settings.rate / 1000.0
        self._clock = float(settings.start_ms)
        self._end_ms = (
            settings.start_ms + settings.traffic_for_ms
            if settings.traffic_for_ms is not None
            else None
        )
        self._txn_count = 0
        self._message_count = 0
        self._message_faults: list[tuple[int, int, Fault, str]] = []
        self._transaction_faults: list[tuple[int, int, Fault]] = []
        self._identity_faults: list[Fault] = []
        self._fake_faults: list[Fault] = []
        #: Draws of `fake_delivery_reports`: their own stream.
        self._fake_rng = random.Random(f"fake/{settings.seed}")
        #: Draws of the identity faults: their own stream, so the rest of the traffic stays
        #: the same with or without them.
        self._identity_rng = random.Random(f"identity/{settings.seed}")
        #: The second feeds' own id counters (`id_collision`): they repeat the first ones' ids.
        self._second_txn_count = 0
        self._second_message_count = 0
        #: Earlier transactions whose RRN `rrn_reuse` may take: times, [rrn, acquirer, taken].
        self._rrn_times: list[int] = []
        self._rrn_history: list[list[Any]] = []
        terminals = inventory.world.terminals
        self._terminal_prefix = [
            f'"terminal_id":"{t.terminal_id}","merchant_id":"{t.merchant_id}",'
            f'"acquirer":"{t.acquirer}"'
            for t in terminals
        ]
        self._cumulative = inventory.world.cumulative_weights
        self._total_weight = self._cumulative[-1]
        self.next_ms = self._draw_next()
        for fault in faults:
            self.add_fault(fault)

    @property
    def exhausted(self) -> bool:
        """True once no transaction will ever start again (`traffic_for` has elapsed)."""
        return self._end_ms is not None and self.next_ms >= self._end_ms

    def add_fault(self, fault: Fault) -> None:
        """Take a fault into account for everything generated from now on."""
        if fault.kind in MESSAGE_FAULTS:
            entry = (fault.start_ms, fault.end_ms, fault, MESSAGE_FAULTS[fault.kind])
            self._message_faults.append(entry)
        elif fault.kind in TRANSACTION_FAULTS:
            self._transaction_faults.append((fault.start_ms, fault.end_ms, fault))
        elif fault.kind in IDENTITY_FAULTS:
            self._identity_faults.append(fault)
        elif fault.kind == FAKE_REPORTS:
            self._fake_faults.append(fault)

    def _draw_next(self) -> int:
        """The time of the next transaction: a Poisson process thinned by the diurnal curve."""
        rng = self._rng
        while True:
            self._clock += rng.expovariate(self._peak_per_ms)
            at = int(self._clock)
            if self._end_ms is not None and at >= self._end_ms:
                return at
            if rng.random() < diurnal_share(at):
                return at

    def generate(self, until_ms: int) -> Iterator[Generated]:
        """Every transaction with `txn_time <= until_ms` not generated yet, in time order."""
        while self.next_ms <= until_ms and not self.exhausted:
            at = self.next_ms
            yield self._transaction(at)
            self.next_ms = self._draw_next()

    # -- one transaction ------------------------------------------------------------------

    def _ids(self, at: int, second: bool = False) -> tuple[str, str]:
        self._txn_count += 1
        n = self._txn_count
        day = time.gmtime(at // 1000)
        rrn = f"{day.tm_year % 10}{day.tm_yday:03d}{n % 100_000_000:08d}"
        if second:  # the second acquirer's own counter: ids the first one uses too
            self._second_txn_count += 1
            return f"t-{self._second_txn_count:08d}", rrn
        return f"t-{n:08d}", rrn

    def _identity(self, at: int, acquirer: str) -> tuple[int, int, str | None]:
        """(acquirer feed, sms feed, reused RRN or None) of a transaction, from the faults."""
        acquirer_feed = sms_feed = 0
        reused: str | None = None
        random_ = self._identity_rng.random
        for fault in self._identity_faults:
            if not fault.active(at) or not fault.matches(acquirer=acquirer):
                continue
            if fault.kind == "id_collision" and random_() < fault.share:
                acquirer_feed = max(acquirer_feed, int(fault.target in ("acquirer", "both")))
                sms_feed = max(sms_feed, int(fault.target in ("sms", "both")))
            elif fault.kind == "rrn_reuse" and reused is None and random_() < fault.share:
                reused = self._take_rrn(at - fault.min_age_ms, acquirer, fault.reuse)
        return acquirer_feed, sms_feed, reused

    def _take_rrn(self, before_ms: int, acquirer: str, reuse: str) -> str | None:
        """The RRN of the latest earlier transaction at or before `before_ms` that `reuse`
        allows and whose RRN was not reused yet (each RRN is reused at most once)."""
        index = bisect(self._rrn_times, before_ms)
        for entry in reversed(self._rrn_history[max(0, index - 200) : index]):
            rrn, owner, taken = entry
            if taken or (reuse == "same_acquirer" and owner != acquirer):
                continue
            if reuse == "other_acquirer" and owner == acquirer:
                continue
            entry[2] = True
            return str(rrn)
        return None

    def _transaction(self, at: int) -> Generated:
        rng = self._rng
        random_ = rng.random
        index = bisect(self._cumulative, random_() * self._total_weight)
        index = min(index, len(self._cumulative) - 1)
        terminal = self._inventory.world.terminals[index]
        acquirer_feed, sms_feed, reused = (
            self._identity(at, terminal.acquirer) if self._identity_faults else (0, 0, None)
        )
        txn_id, rrn = self._ids(at, bool(acquirer_feed))
        if reused is not None:
            rrn = reused
        elif any(f.kind == "rrn_reuse" for f in self._identity_faults):
            self._rrn_times.append(at)
            self._rrn_history.append([rrn, terminal.acquirer, False])
        amount = max(100, int(rng.lognormvariate(_LN_AMOUNT, 0.9)) // 10 * 10)
        pan = f"{BINS[int(random_() * len(BINS))]}****{int(random_() * 10_000):04d}"
        approved = random_() >= DECLINE_SHARE
        expected = approved and random_() < SMS_EXPECTED_SHARE
        code = "00" if approved else DECLINE_CODES[int(random_() * len(DECLINE_CODES))]
        common = f'{self._terminal_prefix[index]},"amount":{amount},"currency":"CNY","pan":"{pan}"'
        record = (
            f'{{"txn_id":"{txn_id}","rrn":"{rrn}",{common},'
            f'"result":"{"approved" if approved else "declined"}","response_code":"{code}",'
            f'"txn_time":"{timestamp_text(at)}","sms_expected":{"true" if expected else "false"},'
            f'"original_txn_id":null}}'
        ).encode()
        records = [(at, record)]
        if random_() < DUPLICATE_RECORD_SHARE:
            records.append((at, record))
        facts = TransactionFacts(
            acquirer=terminal.acquirer,
            result="approved" if approved else "declined",
            txn_time=at,
            receipt=expected,
            terminal_config_off=not self._inventory.sms_capable(index, at),
        )
        events: list[tuple[int, bytes]] = []
        if approved and random_() < REVERSAL_SHARE:
            if random_() < 0.5:
                reversed_at = at + rng.randint(3_000, 60_000)
            else:
                reversed_at = at + rng.randint(60_000, 1_200_000)
            reversal_id, reversal_rrn = self._ids(reversed_at, bool(acquirer_feed))
            records.append(
                (
                    reversed_at,
                    (
                        f'{{"txn_id":"{reversal_id}","rrn":"{reversal_rrn}",{common},'
                        f'"result":"reversed","response_code":"00",'
                        f'"txn_time":"{timestamp_text(reversed_at)}","sms_expected":false,'
                        f'"original_txn_id":"{txn_id}"}}'
                    ).encode(),
                )
            )
            facts.reversal_time = reversed_at
        if expected and not facts.terminal_config_off and not self._dropped(at, terminal.acquirer):
            carrier = CARRIERS[bisect(_CARRIER_CUMULATIVE, random_() * _CARRIER_CUMULATIVE[-1])]
            prefixes = PHONE_PREFIXES[carrier]
            phone = f"{prefixes[int(random_() * len(prefixes))]}****{int(random_() * 10_000):04d}"
            head = (
                f'"txn_ref":"{rrn}","phone":"{phone}","carrier":"{carrier}",'
                f'"area":"{terminal.area}","acquirer":"{terminal.acquirer}"'
            )
            submit = at + self._submit_delay(at, terminal.acquirer)
            self._message(
                facts,
                events,
                head,
                submit,
                terminal.acquirer,
                carrier,
                terminal.area,
                second=bool(sms_feed),
            )
        facts.second_gateway = bool(sms_feed)
        return Generated(facts, index, records, events, acquirer_feed, sms_feed)

    def _dropped(self, at: int, acquirer: str) -> bool:
        """True when the receipt never reaches the SMS platform (integration)."""
        random_ = self._rng.random
        for start, end, fault in self._transaction_faults:
            if (
                fault.kind == "integration_drop"
                and start <= at < end
                and fault.matches(acquirer=acquirer)
                and random_() < fault.share
            ):
                return True
        return random_() < BASELINE_DROP_SHARE

    def _submit_delay(self, at: int, acquirer: str) -> int:
        rng = self._rng
        for start, end, fault in self._transaction_faults:
            if (
                fault.kind == "sync_delay"
                and start <= at < end
                and fault.matches(acquirer=acquirer)
                and rng.random() < fault.share
            ):
                return fault.delay_ms + rng.randint(0, fault.jitter_ms)
        return rng.randint(*SUBMIT_DELAY_MS)

    # -- one message ----------------------------------------------------------------------

    def _plan(self, at: int, acquirer: str, carrier: str, area: str) -> tuple[str, float]:
        """The outcome of a message submitted at `at` (a cause, or delivered/silent)."""
        random_ = self._rng.random
        factor = 1.0
        for start, end, fault, cause in self._message_faults:
            if start <= at < end and fault.matches(acquirer=acquirer, carrier=carrier, area=area):
                if random_() < fault.share:
                    return cause, factor
                if fault.kind == "weak_signal":
                    factor = max(factor, fault.latency_factor)
        if self._fake_faults and self.fake_report(at, acquirer, carrier, area):
            return "fake", factor
        u = random_()
        for cause, cumulative in _BASELINE_CUMULATIVE:
            if u < cumulative:
                return cause, factor
        return "delivered", factor

    def fake_report(self, at: int, acquirer: str | None, carrier: str, area: str | None) -> bool:
        """True when a `fake_delivery_reports` fault takes this message: DELIVRD reported,
        the handset never gets it."""
        return any(
            fault.active(at)
            and fault.matches(acquirer=acquirer, carrier=carrier, area=area)
            and self._fake_rng.random() < fault.share
            for fault in self._fake_faults
        )

    def _message(
        self,
        facts: TransactionFacts,
        events: list[tuple[int, bytes]],
        head: str,
        submit: int,
        acquirer: str,
        carrier: str,
        area: str,
        *,
        retry: bool = False,
        second: bool = False,
    ) -> None:
        rng = self._rng
        random_ = rng.random
        if second:  # the second gateway's own counter: ids the first one uses too
            self._second_message_count += 1
            number = self._second_message_count
        else:
            self._message_count += 1
            number = self._message_count
        prefix = f'{{"message_id":"m-{number:08d}",{head},"status":"'
        outcome, factor = self._plan(submit, acquirer, carrier, area)
        final: tuple[int, str, str] | None = None
        if outcome in ("delivered", "fake"):
            if random_() < 0.02:
                latency = rng.lognormvariate(_LN_SLOW, 0.8)
            else:
                latency = rng.lognormvariate(_LN_FAST, 0.9)
            final = (submit + max(300, int(latency * factor)), "DELIVRD", NO_ERROR)
        elif outcome != "silent":
            cumulative, reports = _REPORT_PICKS[outcome]
            stat, code = reports[bisect(cumulative, random_() * cumulative[-1])]
            low, high = FAILURE_DELAY_MS.get(stat, FAILURE_DELAY_MS[outcome])
            final = (submit + rng.randint(low, high), stat, code)

        timeline: list[tuple[int, str, str]] = [(submit, "SUBMITTED", NO_ERROR)]
        if random_() < ENROUTE_SHARE:
            if final is None:
                timeline.append((submit + rng.randint(500, 5_000), "ENROUTE", NO_ERROR))
            elif final[0] - submit > 1_500:
                enroute_at = submit + rng.randint(500, min(final[0] - submit - 1, 5_000))
                timeline.append((enroute_at, "ENROUTE", NO_ERROR))
        if final is not None:
            timeline.append(final)
            if random_() < LATE_REPEAT_SHARE:
                timeline.append((final[0] + rng.randint(5_000, 600_000), final[1], final[2]))
            if random_() < CONFLICT_SHARE:
                if final[1] == "DELIVRD":
                    _, reports = _REPORT_PICKS["unreachable"]
                    stat, code = reports[int(random_() * len(reports))]
                else:
                    stat, code = "DELIVRD", NO_ERROR
                timeline.append((final[0] + rng.randint(30_000, 1_200_000), stat, code))
        submitted_text = timestamp_text(submit)
        emitted: list[tuple[int, str, str]] = []
        for event in timeline:
            at, stat, code = event
            item = (
                f'{prefix}{stat}","error_code":"{code}","submitted_at":"{submitted_text}",'
                f'"status_at":"{timestamp_text(at)}"}}'
            ).encode()
            events.append((at, item))
            emitted.append(event)
            if random_() < DUPLICATE_EVENT_SHARE:
                events.append((at, item))
                emitted.append(event)
        facts.messages.append(MessageFacts(carrier, area, submit, emitted, outcome == "fake"))
        if (
            not retry
            and final is not None
            and outcome in ("throttled", "gateway")
            and random_() < RETRY_SHARE
        ):
            resend = final[0] + rng.randint(30_000, 120_000)
            self._message(
                facts, events, head, resend, acquirer, carrier, area, retry=True, second=second
            )

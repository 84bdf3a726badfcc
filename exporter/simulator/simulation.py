"""The running simulation: its clock, lazy generation, the release of events into the feeds,
the fault schedule and the ground truth. Thread-safe; the HTTP server is a thin layer on top.

`advance()` brings everything up to the simulated now: it generates every transaction whose
`txn_time` has come (with its whole future), keeps future items in two heaps, and moves the
items whose event time has come into the append-only feeds, in `(event time, generation order)`
order. Because a transaction's items are never earlier than its `txn_time`, the released
sequence is the same whatever the pattern of calls: only the simulated time matters.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from exporter.simulator import account
from exporter.simulator.canaries import CanaryDesk, HandsetDelivery
from exporter.simulator.feeds import (
    Cursors,
    FeedRequestError,
    ItemLog,
    Page,
    log_page,
    render_page,
    snapshot_page,
)
from exporter.simulator.scenario import Fault, parse_fault_json, scenario_faults
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.shapes import (
    PROJECTIONS,
    SHAPE_TABLES,
    WHOLE_SECOND_SHAPES,
    ListView,
    ReportQueue,
)
from exporter.simulator.traffic import TrafficGenerator, timestamp_text
from exporter.simulator.truth import (
    RECEIPTS,
    UNOBSERVED,
    Delta,
    PushLog,
    TruthLedger,
    push_evidence,
    transaction_deltas,
)
from exporter.simulator.world import Inventory, build_world
from exporter.timestamps import format_duration_ms, format_rfc3339_ms

#: `complete` needs the clock strictly past every event and decision by this much, so that a
#: consumer whose watermark is the simulated now can decide everything.
COMPLETE_MARGIN_MS = 1000


class SimClock:
    """`sim_now = start + (wall_now − wall_start) × speed`, in integer ms, never going back."""

    def __init__(
        self, start_ms: int, speed: float, wall: Callable[[], float] = time.monotonic
    ) -> None:
        self.start_ms = start_ms
        self.speed = speed
        self._wall = wall
        self._wall_start: float | None = None

    def start(self) -> None:
        """Start the clock (the simulated start is now)."""
        if self._wall_start is None:
            self._wall_start = self._wall()

    def now_ms(self) -> int:
        """The simulated now (the start until the clock is started)."""
        if self._wall_start is None:
            return self.start_ms
        return self.start_ms + int((self._wall() - self._wall_start) * self.speed * 1000)


@dataclass(frozen=True)
class ApiFaultHit:
    """A request that an `api_errors` fault spoils, and how."""

    fault: Fault
    mode: str


def poisoned_item(feed: str, item: bytes, mode: str, number: int) -> bytes:
    """A copy of a released item, made unusable the way `mode` says, with ids of its own.

    `big_integer`, `lone_surrogate` and `infinity` parse as JSON but hold a value no store
    can keep; `invalid_item` misses its required fields. A poisoned transaction is a decline
    without SMS, a poisoned message has no transaction reference: were one taken in anyway,
    the counted transactions or messages would differ from the truth.
    """
    data = json.loads(item)
    key = "message_id" if feed == "messages" else "txn_id"
    data[key] = f"poison-{number:06d}"
    if feed == "messages":
        data["txn_ref"] = ""
    else:
        data.update(rrn=f"poison-{number:06d}", result="declined", sms_expected=False)
        data.update(response_code="05", original_txn_id=None)
    if mode == "invalid_item":
        del data[key]
        return json.dumps(data, separators=(",", ":")).encode()
    if mode == "lone_surrogate":
        data[key] += "@poison@"
        text = json.dumps(data, separators=(",", ":")).replace("@poison@", "\\ud800")
    elif mode == "big_integer":
        field = "status_at" if feed == "messages" else "amount"
        data[field] = 2**64
        text = json.dumps(data, separators=(",", ":"))
    else:  # infinity
        field = "status_at" if feed == "messages" else "txn_time"
        data[field] = "@poison@"
        text = json.dumps(data, separators=(",", ":")).replace('"@poison@"', "Infinity")
    return text.encode()


class Simulation:
    """One simulator run: world, traffic, feeds, faults and truth behind one lock."""

    def __init__(self, settings: SimulatorSettings, clock: SimClock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SimClock(settings.start_ms, settings.speed)
        self.world = build_world(settings.seed)
        self.inventory = Inventory(self.world, settings.start_ms)
        self.messages = ItemLog()
        self.transactions = ItemLog()
        #: The second gateway's and acquirer's feeds (`id_collision`), empty without that fault.
        self.second_messages = ItemLog()
        self.second_transactions = ItemLog()
        self._logs = {
            "messages": self.messages,
            "transactions": self.transactions,
            "messages-2": self.second_messages,
            "transactions-2": self.second_transactions,
        }
        self.truth = TruthLedger()
        identity = (
            f"{settings.seed}/{settings.start_ms}/{settings.rate}/{settings.traffic_for_ms}/"
            f"{settings.scenario}/{settings.gateway}"
        )
        self.cursors = Cursors(hashlib.sha256(identity.encode()).hexdigest()[:8])
        self._lock = threading.Lock()
        self._now = settings.start_ms
        self._sequence = 0
        self._message_heap: list[tuple[int, int, int, bytes]] = []  # (at, seq, feed, item)
        self._transaction_heap: list[tuple[int, int, int, int, bytes]] = []  # + terminal
        self._cursor_rng = random.Random(f"cursor/{settings.seed}")
        self._event_horizon = settings.start_ms
        self._generated = 0
        self._api_rng = random.Random(f"api/{settings.seed}")
        #: One stream per feed: each feed's release order is fixed, their interleaving is not.
        self._poison_rngs = {
            feed: random.Random(f"poison/{feed}/{settings.seed}")
            for feed in ("messages", "transactions")
        }
        self._faults: list[Fault] = []
        self._fault_terminals: dict[int, list[str]] = {}
        self.canaries = CanaryDesk(settings.seed, settings.handset_dir)
        self._handset_heap: list[tuple[int, int, HandsetDelivery]] = []
        #: Cardholder messages reported DELIVRD by a grey route (`fake_delivery_reports`).
        self.fake_reports = 0
        self.traffic = TrafficGenerator(settings, self.inventory)
        shape = SHAPE_TABLES.get(settings.sms_api)
        self.view = ListView(shape) if shape is not None else None
        self.reports = (
            ReportQueue(settings.sms_api) if settings.sms_api in ("tencent", "aliyun") else None
        )
        self._label = PROJECTIONS.get(settings.sms_api)
        #: A pushing shape: what its receiver could observe, and the receipts that wait for it.
        self.push_log = PushLog() if settings.push_url and self.reports is not None else None
        self._deferred: list[tuple[tuple[int, int], str, list[Delta]]] = []
        self.receipts_untold: dict[str, int] = {}
        for fault in scenario_faults(
            settings.scenario, sim_start_ms=settings.start_ms, gateway=settings.gateway
        ):
            self._add_fault(fault)

    # -- time -----------------------------------------------------------------------------

    def advance(self, now_ms: int | None = None) -> int:
        """Bring the run up to the simulated now (or `now_ms`, for tests); returns that time."""
        with self._lock:
            return self._advance(now_ms)

    def _advance(self, now_ms: int | None) -> int:
        now = max(self._now, self.clock.now_ms() if now_ms is None else now_ms)
        settings = self.settings
        for generated in self.traffic.generate(now):
            self._generated += 1
            self.fake_reports += sum(m.fake for m in generated.facts.messages)
            for at, item in generated.records:
                self._sequence += 1
                heapq.heappush(
                    self._transaction_heap,
                    (at, self._sequence, generated.terminal_index, generated.acquirer_feed, item),
                )
                self._event_horizon = max(self._event_horizon, at)
            for at, item in generated.events:
                self._sequence += 1
                heapq.heappush(self._message_heap, (at, self._sequence, generated.sms_feed, item))
                self._event_horizon = max(self._event_horizon, at)
            deltas = transaction_deltas(
                generated.facts,
                gateway=settings.gateway,
                missing_after_ms=settings.missing_after_ms,
                give_up_after_ms=settings.give_up_after_ms,
                label=self._label,
                whole_seconds=settings.sms_api in WHOLE_SECOND_SHAPES,
            )
            evidence = (
                push_evidence(
                    generated.facts,
                    missing_after_ms=settings.missing_after_ms,
                    give_up_after_ms=settings.give_up_after_ms,
                    whole_seconds=settings.sms_api in WHOLE_SECOND_SHAPES,
                )
                if self.push_log is not None
                else None
            )
            if evidence is not None:  # its outcome waits for what the receiver observed
                receipt = [d for d in deltas if d.metric == RECEIPTS]
                deltas = [d for d in deltas if d.metric != RECEIPTS]
                if receipt:
                    self._deferred.append((evidence, generated.facts.acquirer, receipt))
            self.truth.record(deltas)
        heap = self._transaction_heap
        last_seen = self.inventory.last_seen
        while heap and heap[0][0] <= now:
            at, _, terminal, feed, item = heapq.heappop(heap)
            (self.second_transactions if feed else self.transactions).append(at, item)
            if not feed:
                self._poison("transactions", at, item)
            last_seen[terminal] = max(last_seen[terminal], at)
        message_heap = self._message_heap
        while message_heap and message_heap[0][0] <= now:
            at, _, feed, item = heapq.heappop(message_heap)
            if feed:
                self.second_messages.append(at, item)
                continue
            self.messages.append(at, item)
            self._poison("messages", at, item)
            if self.view is not None:
                self.view.add(at, item)
            if self.reports is not None:
                self.reports.add(at, item)
        handsets = self._handset_heap
        while handsets and handsets[0][0] <= now:
            self.canaries.receive(heapq.heappop(handsets)[2])
        self._settle_deferred()
        self.truth.advance(now)
        self._now = now
        return now

    def _settle_deferred(self) -> None:
        """Receipts a pushing shape's receiver sees as missing: `unknown` when a report of
        their SMS could have come while it did not watch, else their own outcome."""
        if self.push_log is None or not self._deferred:
            return
        waiting = []
        for evidence, acquirer, receipt in self._deferred:
            unobserved = self.push_log.unobserved(*evidence)
            if unobserved is None:
                waiting.append((evidence, acquirer, receipt))
            elif unobserved:
                at = receipt[0].time_ms
                self.truth.record(
                    [
                        Delta(at, RECEIPTS, (acquirer, "unknown", "unknown"), 1),
                        Delta(at, UNOBSERVED, (acquirer,), 1),
                    ]
                )
            else:
                self.truth.record(receipt)
                if receipt[0].labels[1] != "missing":  # never reported: seen as missing
                    self.receipts_untold[acquirer] = self.receipts_untold.get(acquirer, 0) + 1
        self._deferred = waiting

    @property
    def complete(self) -> bool:
        """Traffic has ended and the clock is past every event and decision (with a margin)."""
        horizon = max(self._event_horizon, self.truth.horizon_ms or self.settings.start_ms)
        return (
            self.traffic.exhausted
            and self._now > horizon + COMPLETE_MARGIN_MS
            and not self._deferred
        )

    # -- feeds ----------------------------------------------------------------------------

    def page(self, feed: str, cursor: str | None, limit: int, reset: bool = False) -> bytes:
        """One page of `messages`, `transactions`, their second feeds (`messages-2`,
        `transactions-2`) or `terminals` (FeedRequestError on bad input).

        `reset` (a `cursor_reset` fault) answers with an empty `next_cursor`."""
        with self._lock:
            now = self._advance(None)
            page: Page
            if feed == "terminals":
                items = [
                    json.dumps(item, separators=(",", ":")).encode()
                    for item in self._terminal_items(now)
                ]
                page = snapshot_page(
                    items, self.cursors.decode(feed, cursor, len(items)), limit, now
                )
            else:
                log = self._logs[feed]
                page = log_page(log, self.cursors.decode(feed, cursor, len(log)), limit, now)
            offset = self._clock_offset("sms" if feed == "messages" else "acquirer", now)
            if offset:
                page = replace(page, watermark_ms=page.watermark_ms + offset)
            return render_page(feed, page, self.cursors, reset)

    def shaped_page(self, shape: str, **query: Any) -> tuple[bytes, int]:
        """A page of a provider-shaped list and the simulated now it shows (FeedRequestError)."""
        if self.view is None or self.view.shape.name != shape:
            raise FeedRequestError(f"the simulator does not serve the {shape} shape (--sms-api)")
        with self._lock:
            now = self._advance(None)
            try:
                if shape == "twilio":
                    document = self.view.twilio_page(query["page_size"], query["token"])
                else:
                    document = self.view.vonage_records(
                        query["start_ms"], min(query["end_ms"], now + 1), query["cursor"]
                    )
            except ValueError as exc:
                raise FeedRequestError(str(exc)) from exc
            body = json.dumps(document, separators=(",", ":")).encode()
            return body, now + self._clock_offset("sms", now)

    def pull_reports(self, limit: int) -> tuple[bytes, int]:
        """Tencent's PullSmsSendStatus: pop up to `limit` reports (a consuming read)."""
        if self.reports is None or self.settings.sms_api != "tencent":
            raise FeedRequestError("the simulator does not serve the tencent shape (--sms-api)")
        with self._lock:
            now = self._advance(None)
            taken = self.reports.take(limit)
            request_id = f"sim-{now}-{len(taken)}"
            document = {"Response": {"PullSmsSendStatusSet": taken, "RequestId": request_id}}
            body = json.dumps(document, separators=(",", ":")).encode()
            return body, now + self._clock_offset("sms", now)

    def reports_to_push(self, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Alibaba's SmsReport: the next batch to push (given back if the push fails) and the
        provider's now for its `Date` header (whole seconds, shifted by a clock_skew fault)."""
        with self._lock:
            now = self._advance(None)
            batch = self.reports.take(limit) if self.reports is not None else []
            date_ms = now + self._clock_offset("sms", now)
            return batch, date_ms - date_ms % 1000

    def push_done(self, batch: list[dict[str, Any]], date_ms: int, acked: bool) -> None:
        """The outcome of one push: a batch not acknowledged is pushed again, first; what the
        receiver could observe follows from the outcomes (`PushLog`)."""
        with self._lock:
            if not acked and self.reports is not None:
                self.reports.give_back(batch)
            if self.push_log is not None:  # a `Date` ahead is heard at a right clock's now
                now = max(self._now, self.clock.now_ms())
                self.push_log.record(min(date_ms, now), acked)

    def _terminal_items(self, now: int) -> list[dict[str, Any]]:
        inventory = self.inventory
        items = []
        for index, terminal in enumerate(self.world.terminals):
            changes = inventory.changes(index, now)
            items.append(
                {
                    "terminal_id": terminal.terminal_id,
                    "merchant_id": terminal.merchant_id,
                    "acquirer": terminal.acquirer,
                    "area": terminal.area,
                    "software_version": terminal.software_version,
                    "sms_notice_enabled": inventory.notice_enabled(index, now),
                    "changed_at": timestamp_text(changes[-1][0] if changes else inventory.start_ms),
                    "last_seen": timestamp_text(inventory.last_seen[index]),
                    # Beyond API.md: every flip so far, so that a consumer polling less often
                    # than the flips can still tell the state at any past instant.
                    "history": [
                        {"at": timestamp_text(at), "sms_notice_enabled": enabled}
                        for at, enabled in changes
                    ],
                }
            )
        return items

    # -- faults ---------------------------------------------------------------------------

    def _add_fault(self, fault: Fault) -> None:
        self._faults.append(fault)
        if fault.kind == "terminal_sms_off":
            rng = random.Random(f"fault/{self.settings.seed}/{fault.fault_id}")
            chosen = self.inventory.pick(fault.acquirer, fault.terminals, fault.start_ms, rng)
            for index in chosen:
                self.inventory.switch_off(index, fault.start_ms, fault.end_ms)
            self._fault_terminals[fault.fault_id] = [
                self.world.terminals[i].terminal_id for i in chosen
            ]
        self.traffic.add_fault(fault)

    def _poison(self, feed: str, at: int, item: bytes) -> None:
        """After a released item, maybe publish a poisoned one (`poison_records`)."""
        target = "sms" if feed == "messages" else "acquirer"
        rng = self._poison_rngs[feed]
        for fault in self._faults:
            if (
                fault.kind == "poison_records"
                and fault.active(at)
                and fault.target in (target, "both")
                and rng.random() < fault.share
            ):
                self.truth.poisoned[feed] += 1
                mode = rng.choice(fault.modes)
                number = self.truth.poisoned[feed]
                log = self.messages if feed == "messages" else self.transactions
                log.append(at, poisoned_item(feed, item, mode, number))
                return

    def start_fault(self, body: bytes) -> dict[str, Any]:
        """`POST /sim/v1/faults`: validate a fault (ConfigError) and start it now.

        "Now" is the next simulated millisecond: every transaction up to the current instant
        is already generated, so the fault must not reach back to any of them (a terminal
        switched off at an instant whose receipts were already drawn would contradict them).
        """
        with self._lock:
            now = self._advance(None)
            fault = parse_fault_json(
                body,
                now_ms=now + 1,
                sim_start_ms=self.settings.start_ms,
                gateway=self.settings.gateway,
                fault_id=len(self._faults) + 1,
            )
            self._add_fault(fault)
            return self._fault_dict(fault, fault.start_ms)

    def faults(self) -> list[dict[str, Any]]:
        """Every fault of the run, with its state (`scheduled`, `active`, `ended`)."""
        with self._lock:
            now = self._advance(None)
            return [self._fault_dict(f, now) for f in self._faults]

    def _fault_dict(self, fault: Fault, now: int) -> dict[str, Any]:
        out = fault.to_dict()
        out["state"] = fault.state(now)
        if fault.fault_id in self._fault_terminals:
            out["terminal_ids"] = self._fault_terminals[fault.fault_id]
        return out

    def _clock_offset(self, target: str, now: int) -> int:
        """How far the `sms` or `acquirer` upstream's clock is off at `now` (clock_skew)."""
        return sum(
            f.offset_ms
            for f in self._faults
            if f.kind == "clock_skew" and f.active(now) and f.target in (target, "both")
        )

    def cursor_fault(self, target: str) -> bool:
        """Whether an active `cursor_reset` fault empties this answer's `next_cursor`."""
        with self._lock:
            now = max(self._now, self.clock.now_ms())
            return any(
                fault.kind == "cursor_reset"
                and fault.active(now)
                and fault.target in (target, "both")
                and self._cursor_rng.random() < fault.share
                for fault in self._faults
            )

    def api_fault(self, target: str) -> ApiFaultHit | None:
        """Whether an active `api_errors` fault spoils this request to `sms` or `acquirer`."""
        with self._lock:
            now = max(self._now, self.clock.now_ms())
            for fault in self._faults:
                if (
                    fault.kind == "api_errors"
                    and fault.active(now)
                    and fault.target in (target, "both")
                    and self._api_rng.random() < fault.share
                ):
                    return ApiFaultHit(fault, self._api_rng.choice(fault.modes))
            return None

    # -- truth and status -----------------------------------------------------------------

    def send_canary(self, body: bytes) -> dict[str, Any]:
        """`POST /sms/v1/send`: take a canary SMS (simulator/canaries.py); `ConfigError` when
        the request is bad."""
        with self._lock:
            now = self._advance(None)
            message_id, events, delivery = self.canaries.accept(body, now, self._faults)
            for at, item in events:
                self._sequence += 1
                heapq.heappush(self._message_heap, (at, self._sequence, 0, item))
                self._event_horizon = max(self._event_horizon, at)
            if delivery is not None:
                self._sequence += 1
                heapq.heappush(self._handset_heap, (delivery.at_ms, self._sequence, delivery))
            return {"message_id": message_id}

    def truth_document(self) -> dict[str, Any]:
        """`GET /sim/v1/truth`: the non-zero truth series decided so far, and `complete`."""
        with self._lock:
            now = self._advance(None)
            settings = self.settings
            return {
                "complete": self.complete,
                "sim_time": format_rfc3339_ms(now),
                "parameters": {
                    "missing_after": format_duration_ms(settings.missing_after_ms),
                    "give_up_after": format_duration_ms(settings.give_up_after_ms),
                    "seed": settings.seed,
                    "gateway": settings.gateway,
                    **({"sms_api": settings.sms_api} if settings.sms_api != "generic" else {}),
                },
                "metrics": self.truth.metrics(),
                "records": {
                    feed: {"invalid": count} for feed, count in self.truth.poisoned.items()
                },
                "fake_delivery_reports": self.fake_reports,
                "canaries": self.canaries.document(),
                **({"push": self._push_document()} if self.push_log is not None else {}),
                "account": self._account_document(now),
            }

    def account_answer(self, shape: str, action: str, account_sid: str = "") -> bytes:
        """The simulated provider account's answer to one call (account.py): balances burn
        down with the messages the run has submitted by now."""
        with self._lock:
            now = self._advance(None)
            sent = self.truth.submitted(self.settings.gateway)
            request_id = f"sim-{now}"
            revoked = self._revoked(now)
            document: dict[str, Any]
            if shape == "twilio":
                document = account.twilio_balance(account_sid, sent)
            elif shape == "vonage":
                document = account.vonage_balance(sent)
            elif shape == "aliyun":
                document = account.aliyun_answer(action, sent, request_id, revoked)
            else:
                start_s = self.settings.start_ms // 1000
                document = account.tencent_answer(action, sent, start_s, request_id, revoked)
            return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

    def _revoked(self, now: int) -> frozenset[str]:
        """The senders an active `sender_revoked` fault revokes now (caller holds the lock)."""
        return frozenset(
            f.sender for f in self._faults if f.kind == "sender_revoked" and f.active(now)
        )

    def _account_document(self, now: int) -> dict[str, Any]:
        """The truth of the simulated provider account (caller holds the lock)."""
        sent = self.truth.submitted(self.settings.gateway)
        revoked = self._revoked(now)
        return {
            "messages_sent": sent,
            "balances": account.balances(sent),
            "quota_remaining": account.quota_left(sent),
            "senders": {
                kind: "rejected" if kind in revoked else "approved"
                for kind in ("signature", "template")
            },
        }

    def _push_document(self) -> dict[str, Any]:
        """What the receiver of a pushing shape could observe (API.md, pushing shapes)."""
        assert self.push_log is not None
        log = self.push_log
        return {
            "first_acknowledged": (
                format_rfc3339_ms(log.first_ack_ms) if log.first_ack_ms is not None else None
            ),
            "unobserved": [
                {"from": format_rfc3339_ms(since), "to": format_rfc3339_ms(to)}
                for since, to in log.windows
            ],
            "unobserved_seconds": log.unobserved_ms / 1000,
            "receipts_untold": dict(sorted(self.receipts_untold.items())),
        }

    def status(self) -> dict[str, Any]:
        """A summary for the landing page and logs."""
        with self._lock:
            now = self._advance(None)
            settings = self.settings
            return {
                "sim_time": format_rfc3339_ms(now),
                "start": format_rfc3339_ms(settings.start_ms),
                "speed": settings.speed,
                "seed": settings.seed,
                "rate": settings.rate,
                "traffic_for": (
                    format_duration_ms(settings.traffic_for_ms)
                    if settings.traffic_for_ms is not None
                    else None
                ),
                "complete": self.complete,
                "transactions_generated": self._generated,
                "messages_published": len(self.messages),
                "transactions_published": len(self.transactions),
                "feed_bytes": self.messages.stored_bytes() + self.transactions.stored_bytes(),
                "faults": [self._fault_dict(f, now) for f in self._faults],
            }

"""Sends canaries on their schedule and reads the handset's inbox: the probe's moving parts.

`send_one` records a canary (and counts it sent) before it goes out, then sends it through the
gateway's own API; `check` reads the inbox for nonces and gives open canaries their verdict.
The exporter runs both on its scheduler; `smswatch probe` runs them once, in the foreground.
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

import requests

from exporter.privacy import mask_phone, remember_secret
from exporter.probes import ledger
from exporter.probes.inbox import GammuInbox, nonces_in
from exporter.probes.senders import Canary, SendRefused, send
from exporter.probes.settings import CanaryNumber, GatewayProbe, ProbeSettings
from exporter.reconcile import LabelKey
from exporter.store import CanaryRow, Store

log = logging.getLogger(__name__)


def new_nonce() -> str:
    """A fresh nonce: `SW` and ten base32 characters (50 random bits)."""
    return "SW" + base64.b32encode(secrets.token_bytes(10)).decode()[:10]


def ours(probe: GatewayProbe) -> bool:
    """True when the canary's message id is ours, known before the send: Kannel's `dlr-url`
    carries it, and a bank API without a `message_id` answer field is given it in the body."""
    send = probe.send
    return send.kind == "kannel" or (send.kind == "http" and not send.options.get("message_id"))


class Prober:
    """Canary sends and checks for every probed gateway, over one state store."""

    def __init__(
        self,
        settings: ProbeSettings,
        store: Store,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.session = session or requests.Session()
        self.inbox = (
            GammuInbox(settings.inbox_dir, settings.inbox_timezone) if settings.inbox_dir else None
        )
        self._check_lock = threading.Lock()
        for probe in settings.gateways:
            remember_secret(probe.send.secret)
            for _, value in probe.send.headers:
                remember_secret(value)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def send_round(self, gateway: str) -> list[CanaryRow]:
        """One canary to every number of a gateway (the scheduled job); none while the state
        database is down (a canary is recorded before it is sent)."""
        probe = self.settings.gateway(gateway)
        if probe is None or not self.store.writable():
            return []
        return [self.send_one(probe, number) for number in probe.numbers]

    def send_one(self, probe: GatewayProbe, number: CanaryNumber) -> CanaryRow:
        """Record, count and send one canary now; returns it as recorded after the send."""
        nonce = new_nonce()
        canary_id = f"canary-{uuid.uuid4().hex[:16]}"
        text = probe.text.replace("{nonce}", nonce)
        sent_ms = self._now_ms()
        row = CanaryRow(
            canary_id=canary_id,
            gateway=probe.gateway,
            message_id=canary_id if ours(probe) else "",
            carrier=number.carrier,
            area=number.area,
            phone=mask_phone(number.number),
            nonce=nonce,
            sent_ms=sent_ms,
            timeline=[[sent_ms, "sent", f"through {probe.send.kind}"]],
        )
        counters: Counter[LabelKey] = Counter({(ledger.SENT, ledger.labels(row)): 1})
        with self.store.transaction():
            self.store.add_canary(row)
            self.store.add_counters(counters)
            self.store.set_gauge(ledger.LAST_SENT, (probe.gateway,), sent_ms / 1000)
        try:
            message_id = send(
                probe.send, Canary(canary_id, number.number, text, nonce), self.session
            )
            refused = ""
        except SendRefused as exc:
            message_id, refused = "", exc.reason
        with self.store.transaction():
            stored = self.store.canaries_by_nonce([nonce])[nonce]
            answered_ms = self._now_ms()
            if refused:
                stored.send_error = refused
                stored.timeline.append([answered_ms, "refused", refused])
                log.warning(
                    "canary send refused",
                    extra={"gateway": probe.gateway, "reason": refused},
                )
            else:
                if not stored.message_id or stored.message_id == canary_id:
                    stored.message_id = message_id  # the provider's id (ours for Kannel)
                stored.timeline.append([answered_ms, "accepted", f"message id {message_id}"])
            self.store.update_canary(stored)
            if refused:
                ledger.judge_open(
                    self.store,
                    answered_ms,
                    self.settings.handset_timeout_ms,
                    self.settings.report_timeout_ms,
                )
        log.info(
            "canary sent",
            extra={"gateway": probe.gateway, "canary": canary_id, "to": row.phone},
        )
        return self.store.canary(canary_id) or stored

    def take_webhook(self, nonces: list[str]) -> int:
        """Nonces a provider's inbound-message webhook brought, received now; returns how
        many canaries they proved received."""
        now_ms = self._now_ms()
        with self.store.transaction():
            return ledger.note_handset(
                self.store, [(nonce, now_ms, "inbound webhook") for nonce in nonces], now_ms
            )

    def check(self) -> int:
        """Read the handset's inbox, then judge open canaries; returns verdicts given. Not while
        the state database is down: what is read from the inbox could not be recorded."""
        if not self.store.writable():
            return 0
        with self._check_lock:
            received: list[tuple[str, int, str]] = []
            if self.inbox is not None:
                for message in self.inbox.read_new():
                    received.extend(
                        (nonce, message.received_ms, message.name)
                        for nonce in nonces_in(message.text)
                    )
            with self.store.transaction():
                if received:
                    ledger.note_handset(self.store, received, self._now_ms())
                return ledger.judge_open(
                    self.store,
                    self._now_ms(),
                    self.settings.handset_timeout_ms,
                    self.settings.report_timeout_ms,
                )

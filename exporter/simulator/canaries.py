"""Canary SMS in the simulator: a send endpoint and a test handset.

`POST /sms/v1/send` with `{"to": "+8613800138000", "text": "...", "ref": "canary-…"}` takes a
canary like the bank's own send API would: it answers `{"message_id": "c-00000001"}` and the
message appears in the SMS feed (`txn_ref` = `ref`) as SUBMITTED and, after a log-normal
latency, DELIVRD. Its carrier follows the number's prefix (area `north`). When it is delivered
for real, the handset receives it: a gammu-smsd files-backend inbox file
`IN<YYYYMMDD>_<HHMMSS>_<serial>_<sender>_00.txt` (UTF-16, InboxFormat=unicode) in
`handset_dir`, named by the wall clock in UTC (the handset is a phone with a real clock). A
`fake_delivery_reports` fault that matches the canary's carrier and area takes it with its
`share`: DELIVRD is reported all the same, and the handset gets nothing.

Canaries are never part of the truth's metrics (they are not cardholder traffic); the truth
document counts them apart. Their draws come from their own random stream, so the cardholder
traffic is the same with or without them.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

from exporter.errors import ConfigError
from exporter.privacy import mask_phone
from exporter.simulator.scenario import Fault
from exporter.simulator.traffic import FAKE_REPORTS, timestamp_text
from exporter.simulator.world import PHONE_PREFIXES

SENDER = "10690000"  # the bank's short code, as the handset sees it
_LN_LATENCY = math.log(2_500)


@dataclass(frozen=True)
class HandsetDelivery:
    """A canary the handset will receive at `at_ms` (simulated time)."""

    at_ms: int
    text: str


def carrier_of(number: str) -> str:
    """The carrier of a Chinese mobile number by its prefix ("other" when none matches)."""
    digits = number.lstrip("+")
    national = digits[2:] if digits.startswith("86") and len(digits) == 13 else digits
    for carrier, prefixes in PHONE_PREFIXES.items():
        if national[:3] in prefixes:
            return carrier
    return "other"


class CanaryDesk:
    """Takes canary sends, plans their reports, and plays the handset."""

    def __init__(self, seed: int, handset_dir: str | None) -> None:
        self._rng = random.Random(f"canary/{seed}")
        self._handset_dir = Path(handset_dir) if handset_dir else None
        self._count = 0
        self._serial = 0
        self.sent = 0
        self.faked = 0
        self.handset = 0

    def accept(
        self, body: bytes, now_ms: int, faults: list[Fault]
    ) -> tuple[str, list[tuple[int, bytes]], HandsetDelivery | None]:
        """A canary send: its message id, its feed events, and its handset delivery (None
        when a fake-report fault takes it). `ConfigError` for a bad request."""
        try:
            request = json.loads(body)
        except ValueError as exc:
            raise ConfigError("body must be JSON", path="body") from exc
        if not isinstance(request, dict):
            raise ConfigError("body must be a JSON object", path="body")
        to, text, ref = (request.get(k) for k in ("to", "text", "ref"))
        for name, value in (("to", to), ("text", text), ("ref", ref)):
            if not isinstance(value, str) or not value:
                raise ConfigError("must be a non-empty string", path=name)
        assert isinstance(to, str) and isinstance(text, str) and isinstance(ref, str)
        self._count += 1
        self.sent += 1
        message_id = f"c-{self._count:08d}"
        carrier, area = carrier_of(to), "north"
        delivered_at = now_ms + max(300, int(self._rng.lognormvariate(_LN_LATENCY, 0.5)))
        fake = any(
            f.kind == FAKE_REPORTS and f.active(now_ms) and f.matches(carrier=carrier, area=area)
            and self._rng.random() < f.share
            for f in faults
        )  # fmt: skip
        self.faked += fake
        head = (
            f'{{"message_id":"{message_id}","txn_ref":{json.dumps(ref)},'
            f'"phone":"{mask_phone(to)}","carrier":"{carrier}","area":"{area}","status":"'
        )
        submitted = timestamp_text(now_ms)
        events = [
            (
                at,
                (
                    f'{head}{stat}","error_code":"0","submitted_at":"{submitted}",'
                    f'"status_at":"{timestamp_text(at)}"}}'
                ).encode(),
            )
            for at, stat in ((now_ms, "SUBMITTED"), (delivered_at, "DELIVRD"))
        ]
        return message_id, events, None if fake else HandsetDelivery(delivered_at, text)

    def receive(self, delivery: HandsetDelivery) -> None:
        """The handset receives a canary: one inbox file, as gammu-smsd writes it."""
        self.handset += 1
        if self._handset_dir is None:
            return
        stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
        name = f"IN{stamp}_{self._serial % 100:02d}_{SENDER}_00.txt"
        self._serial += 1
        target = self._handset_dir / name
        partial = target.with_suffix(".part")
        partial.write_bytes("\ufeff".encode("utf-16-le") + delivery.text.encode("utf-16-le"))
        partial.rename(target)  # never read half written

    def document(self) -> dict[str, int]:
        """What the truth document says of canaries."""
        return {"sent": self.sent, "fake_reports": self.faked, "handset": self.handset}

"""The test handset's inbox as a provider's inbound-message webhook (a virtual number).

Where the test SIM is a provider's virtual number, the provider posts each message it receives
to a webhook; the nonce in its text proves the canary reached a handset. Accepted shapes:
Twilio's incoming message webhook (`application/x-www-form-urlencoded`, text in `Body`;
twilio.com/docs/messaging/guides/webhook-request) and Vonage's inbound SMS webhook (GET query,
form or JSON, text in `text`, answered 200 or Vonage retries for 24 hours;
developer.vonage.com/messaging/sms/guides/inbound-sms); any other sender may post `text` or
`Body` the same way. The path is open to the web config's basic auth (providers cannot send it)
and guarded like a push receiver: a shared secret (`?secret=` or `X-Smswatch-Secret`) and/or
`allow_from`. The message is timed when it arrives here. The sender's number is never kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from exporter.privacy import remember_secret
from exporter.probes.inbox import nonces_in
from exporter.probes.settings import HandsetWebhook
from exporter.push import refusal
from exporter.sources.payloads import form_fields
from exporter.web import Request, Response

log = logging.getLogger(__name__)

TEXT_FIELDS = ("Body", "text")
_TWIML_EMPTY = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def message_text(request: Request) -> str:
    """The text of an inbound-message webhook request (query, form or JSON)."""
    fields: dict[str, Any] = {k: v[-1] for k, v in request.query.items() if v}
    if request.body:
        if "json" in request.headers.get("content-type", ""):
            try:
                document = json.loads(request.body)
            except ValueError:
                document = None
            if isinstance(document, dict):
                fields.update(document)
        else:
            fields.update(form_fields(request.body))
    return " ".join(str(fields[k]) for k in TEXT_FIELDS if isinstance(fields.get(k), str))


class HandsetWebhookRoute:
    """The route of the handset's webhook: nonces in, `take` records them."""

    def __init__(self, settings: HandsetWebhook, take: Callable[[list[str]], int]) -> None:
        self.settings = settings
        self.take = take
        remember_secret(settings.secret)
        if settings.insecure:
            log.warning(
                "canary handset webhook is insecure (no secret, no allow_from)",
                extra={"path": settings.path},
            )

    def admit(self, request: Request) -> Response | None:
        """Check the head before the body is read: method, sender, announced size."""
        if request.method not in ("GET", "POST"):
            return Response(405, b"method not allowed\n", headers={"Allow": "GET, POST"})
        why = refusal(request, self.settings.secret, self.settings.allow_from)
        if why:
            log.warning("handset webhook refused", extra={"why": why, "remote": request.remote})
            return Response(403, b"forbidden\n")
        announced = request.headers.get("content-length", "0")
        size = max(len(request.body), int(announced) if announced.isdigit() else 0)
        if size > self.settings.max_body_bytes:
            return Response(413, b"request body too large\n")
        return None

    def __call__(self, request: Request) -> Response:
        refused = self.admit(request)
        if refused is not None:
            return refused
        nonces = nonces_in(message_text(request))
        if nonces:
            self.take(nonces)
        return Response(200, _TWIML_EMPTY, "text/xml")

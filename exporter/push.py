"""Push receivers: delivery reports that providers push to the exporter's HTTP server.

One receiver per source with a `push:` block, at `/push/<source>` by default, for Alibaba
SmsReport, Tencent callbacks, Vonage DLR webhooks, Jasmin DLRs and Kannel `dlr-url` calls.

The order is what makes a push safe: secret and size check on the request head (before the
server reads the body: `admit`), parse, **commit to the state store**, and only then the
acknowledgement the provider waits for. A crash after the commit and before the answer makes the
provider retry; the retry is a duplicate `(message id, status)` and counts once. A report the
receiver cannot read is refused with 400 so the provider keeps it. While the state database is
down nothing can be committed: the push is answered 503 with `Retry-After`, so the provider keeps
it and sends it again (counted `state_down` once the database is back).

Push paths are open to the web config's basic auth (providers cannot all send it); each is
protected on its own instead, by a shared secret (`?secret=…` in the URL the bank configures,
or an `X-Smswatch-Secret` header, compared in constant time), by the provider's addresses
(`allow_from`), or both. A receiver with neither starts only with `insecure: true`, and says so
in the log at every start. A forged push is refused with 403 and counted `unauthorized`.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

from exporter.config import SourceConfig
from exporter.dialect import STATE_ERRORS
from exporter.poller import Pipeline
from exporter.privacy import remember_secret
from exporter.records import SmsEvent
from exporter.sources.client import BadPayload, date_header_ms
from exporter.sources.payloads import form_fields
from exporter.web import Request, Response

log = logging.getLogger(__name__)

#: Test hook: when set, the process exits right after a push is committed, before it is
#: acknowledged — the crash window the design must survive (tests/test_push.py).
CRASH_AFTER_COMMIT_ENV = "SMSWATCH_TEST_CRASH_AFTER_PUSH_COMMIT"

Parsed = tuple[list[SmsEvent], int]

#: `Retry-After` (seconds) of a push refused while the state database is down.
STATE_DOWN_RETRY_AFTER_S = 10


def _params(request: Request) -> dict[str, str]:
    """Query and form parameters of a request (form wins), last value of each."""
    params = {k: v[-1] for k, v in request.query.items() if v}
    content_type = request.headers.get("content-type", "")
    if request.body and "json" not in content_type:
        params.update(form_fields(request.body))
    return params


def _address_in(remote: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    """Whether a peer address (IPv4-mapped IPv6 read as IPv4) lies in one of the networks."""
    try:
        address = ip_address(remote)
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def refusal(
    request: Request, secret: str, allow_from: tuple[IPv4Network | IPv6Network, ...]
) -> str:
    """Why a request to an open path (a push receiver, the canary handset's webhook) is refused:
    its peer is not in `allow_from`, or it lacks the shared `secret` (`?secret=` or the
    `X-Smswatch-Secret` header, compared in constant time); "" when it may come in."""
    if allow_from and not _address_in(request.remote, allow_from):
        return "address not in allow_from"
    if not secret:
        return ""
    given = request.headers.get("x-smswatch-secret") or (request.query.get("secret") or [""])[-1]
    if not hmac.compare_digest(given.encode(), secret.encode()):
        return "wrong secret" if given else "no secret"
    return ""


def _single(event: SmsEvent | None) -> Parsed:
    return ([event], 0) if event is not None else ([], 1)


def parser_for(
    provider: str, options: Mapping[str, Any] | None = None
) -> tuple[Callable[[Request, int], Parsed], bytes, str]:
    """(parse(request, received_ms), acknowledgement body, its content type) of a provider,
    with the source's provider options (config.PROVIDER_OPTIONS)."""
    options = options or {}
    if provider == "aliyun":
        from exporter.sources import aliyun

        zone = aliyun.zone_of(options.get("time_zone"))
        return (
            lambda r, now: aliyun.parse_sms_report(r.body, zone, now),
            aliyun.REPORT_ACK,
            "application/json",
        )
    if provider == "tencent":
        from exporter.sources import tencent

        return (
            lambda r, _now: tencent.parse_callback(r.body),
            tencent.CALLBACK_ACK,
            "application/json",
        )
    if provider == "vonage":
        from exporter.sources import vonage

        def _vonage(r: Request, now: int) -> Parsed:
            fields = vonage.dlr_fields(r.body, r.query, r.headers.get("content-type", ""))
            return _single(vonage.parse_dlr(fields, now))

        return _vonage, b"", "text/plain; charset=utf-8"
    if provider == "jasmin":
        from exporter.sources import jasmin

        return (
            lambda r, now: _single(
                jasmin.parse_dlr(
                    _params(r),
                    now,
                    options.get("submit_error_retrial", jasmin.RETRIED_BY_DEFAULT),
                    options.get("smsc_utc_offset"),
                )
            ),
            jasmin.ACK,
            "text/plain; charset=utf-8",
        )
    if provider == "kannel":
        from exporter.sources import kannel

        return (
            lambda r, now: _single(
                kannel.parse_dlr(_params(r), now, options.get("smsc_utc_offset"))
            ),
            b"ok\n",
            "text/plain; charset=utf-8",
        )
    raise ValueError(f"provider {provider} has no push receiver")


class PushReceiver:
    """The route of one source's push receiver."""

    def __init__(
        self,
        source: SourceConfig,
        pipeline: Pipeline,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        assert source.push is not None
        self.source = source
        self.push = source.push
        self.pipeline = pipeline
        self.clock = clock
        self.parse, self.ack, self.ack_type = parser_for(source.provider, source.options)
        self.crash_after_commit = bool(environ.get(CRASH_AFTER_COMMIT_ENV))
        #: Counted with the push's records, in its commit.
        self._accepted = Counter({("smswatch_push_requests_total", (source.name, "accepted")): 1})
        remember_secret(self.push.secret)
        if self.push.insecure:
            log.warning(
                "push receiver is insecure (no secret, no allow_from): anyone who can reach it "
                "can post reports",
                extra={"source": source.name, "path": self.push.path},
            )

    def _count(self, result: str) -> None:
        """Count a push (while the state database is down: when it is back, `Store.tally`)."""
        self.pipeline.store.tally(
            Counter({("smswatch_push_requests_total", (self.source.name, result)): 1})
        )

    def _refusal(self, request: Request) -> str:
        """Why a request may not push ("" when it may)."""
        return refusal(request, self.push.secret, self.push.allow_from)

    def admit(self, request: Request) -> Response | None:
        """Check a push's head before its body is read: method, sender, announced size."""
        if request.method not in ("GET", "POST"):
            return Response(405, b"method not allowed\n", headers={"Allow": "GET, POST"})
        refusal = self._refusal(request)
        if refusal:
            self._count("unauthorized")
            log.warning(
                "push refused",
                extra={"source": self.source.name, "why": refusal, "remote": request.remote},
            )
            return Response(403, b"forbidden\n")
        announced = request.headers.get("content-length", "0")
        size = max(len(request.body), int(announced) if announced.isdigit() else 0)
        if size > self.push.max_body_bytes:
            self._count("too_large")
            return Response(413, b"request body too large\n")
        return None

    def __call__(self, request: Request) -> Response:
        # the server ran the admission check on the head already; other callers may not have
        refused = None if request.admitted else self.admit(request)
        if refused is not None:
            return refused
        received_ms = int(self.clock() * 1000)
        try:
            events, invalid = self.parse(request, received_ms)
        except BadPayload as exc:
            self._count("bad_payload")
            log.warning("push refused", extra={"source": self.source.name, "detail": str(exc)})
            return Response(400, f"bad report: {exc}\n".encode())
        if not events and invalid:
            self._count("bad_payload")
            return Response(400, b"no readable report\n")
        provider_ms = date_header_ms(request.headers.get("date"))
        try:
            self.pipeline.commit_push(self.source, events, invalid, provider_ms, self._accepted)
        except STATE_ERRORS as exc:  # not committed: never acknowledged, the provider retries
            self._count("state_down")
            log.warning(
                "push refused: state database down",
                extra={"source": self.source.name, "error": type(exc).__name__},
            )
            return Response(
                503,
                b"state database unavailable, retry later\n",
                headers={"Retry-After": str(STATE_DOWN_RETRY_AFTER_S)},
            )
        if self.crash_after_commit:
            log.error("test hook: exiting after commit, before the acknowledgement")
            os._exit(70)
        log.debug(
            "push committed",
            extra={"source": self.source.name, "events": len(events), "invalid": invalid},
        )
        return Response(200, self.ack, self.ack_type)

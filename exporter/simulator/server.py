"""The simulator's HTTP server (stdlib `http.server`), a thin layer over `Simulation`.

Endpoints: the three feeds of API.md, `/sim/v1/truth`, `GET`/`POST /sim/v1/faults`, a landing
page at `/` and `/healthz`. Active `api_errors` faults spoil a share of feed requests (500, 429
with `Retry-After`, a slow answer, a non-JSON body, truncated JSON); the data stays the same.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import math
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from exporter.errors import ConfigError
from exporter.simulator.account import ALIYUN_ACTIONS, TENCENT_ACTIONS
from exporter.simulator.feeds import FeedRequestError, parse_limit
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.simulation import ApiFaultHit, Simulation
from exporter.timestamps import parse_rfc3339_ms

log = logging.getLogger(__name__)

#: The Vonage-shaped Reports API records (`--sms-api vonage`).
VONAGE_RECORDS = "/v2/reports/records"
#: The Twilio-shaped Messages list (`--sms-api twilio`), for any account sid.
TWILIO_LIST = re.compile(r"^/2010-04-01/Accounts/[A-Za-z0-9]+/Messages\.json$")

#: The provider account calls (account.py), served whatever `--sms-api` says.
TWILIO_BALANCE = re.compile(r"^/2010-04-01/Accounts/([A-Za-z0-9]+)/Balance\.json$")
VONAGE_BALANCE = "/account/get-balance"

#: Path → (feed name, `api_errors` target).
FEEDS: dict[str, tuple[str, str]] = {
    "/sms/v1/messages": ("messages", "sms"),
    "/acquirer/v1/transactions": ("transactions", "acquirer"),
    "/acquirer/v1/terminals": ("terminals", "acquirer"),
    "/sms-2/v1/messages": ("messages-2", "sms"),  # the second gateway (`id_collision`)
    "/acquirer-2/v1/transactions": ("transactions-2", "acquirer"),  # the second acquirer
}
TICK_SECONDS = 0.05  # how often the background ticker generates traffic
SHUTDOWN_POLL_SECONDS = 0.05  # how quickly `stop()` is noticed by the serving loop
MAX_BODY_BYTES = 65_536
MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1><p>upstream timed out</p></body></html>"


@dataclass(frozen=True)
class FeedAnswer:
    """What the simulator answers to a request of a generic feed (HTTP or in-process)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay_ms: int = 0  # a `slow` fault: the answer comes this late


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def fault_answer(hit: ApiFaultHit | None) -> FeedAnswer | None:
    """The answer an `api_errors` fault gives instead of the data (None: the data is served)."""
    if hit is None:
        return None
    if hit.mode == "500":
        return FeedAnswer(500, _error_body("simulated internal server error"))
    if hit.mode == "429":
        retry_after = str(max(1, math.ceil(hit.fault.retry_after_ms / 1000)))
        return FeedAnswer(429, _error_body("simulated rate limit"), {"Retry-After": retry_after})
    if hit.mode == "malformed":
        return FeedAnswer(200, MALFORMED_BODY)
    return None


def answer_feed(simulation: Simulation, path: str, query: str) -> FeedAnswer:
    """Answer `GET <path>?<query>` of a generic feed (FEEDS), `api_errors` faults included."""
    feed, target = FEEDS[path]
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=False)
        limit = parse_limit(params.get("limit", [None])[-1])
        cursor = params.get("cursor", [None])[-1]
    except (FeedRequestError, ValueError) as exc:
        return FeedAnswer(400, _error_body(str(exc)))
    hit = simulation.api_fault(target)
    spoiled = fault_answer(hit)
    if spoiled is not None:
        return spoiled
    reset = feed != "terminals" and simulation.cursor_fault(target)
    try:
        body = simulation.page(feed, cursor, limit, reset)
    except FeedRequestError as exc:
        return FeedAnswer(400, _error_body(str(exc)))
    if hit is not None and hit.mode == "truncated":
        body = body[: max(1, len(body) // 2)]
    return FeedAnswer(200, body, delay_ms=hit.fault.slow_ms if hit and hit.mode == "slow" else 0)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    simulation: Simulation


class _HTTPServerV6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "smswatch-simulator"
    _answered = False  # whether the current request got its response
    _date_ms: int | None = None  # the simulated now a provider-shaped answer was computed at

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header: the simulated now for provider-shaped answers (their clock)."""
        if self._date_ms is not None:
            return formatdate(self._date_ms // 1000, usegmt=True)
        return super().date_time_string(timestamp)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("request", extra={"client": self.client_address[0], "line": format % args})

    # -- responses ------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self._answered = True
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client went away", extra={"path": self.path})

    def _json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(document).encode(), headers=headers)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": message}, headers)

    # -- routing --------------------------------------------------------------------------

    def handle_one_request(self) -> None:
        self._answered = False
        self._date_ms = None
        try:
            super().handle_one_request()
        except Exception:  # a bug answers 500 and is logged; the server keeps serving
            log.exception("request failed", extra={"path": getattr(self, "path", "")})
            self.close_connection = True
            if not self._answered:
                with contextlib.suppress(OSError):
                    self._error(500, "internal error in the simulator")

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        simulation = self.server.simulation
        if url.path in FEEDS:
            self._feed(url.path, url.query)
        elif TWILIO_LIST.match(url.path) and simulation.settings.sms_api == "twilio":
            self._twilio(url.query)
        elif url.path == VONAGE_RECORDS and simulation.settings.sms_api == "vonage":
            self._vonage(url.query)
        elif match := TWILIO_BALANCE.match(url.path):
            self._account("twilio", "Balance", basic=True, account_sid=match.group(1))
        elif url.path == VONAGE_BALANCE:
            self._account("vonage", "get-balance", basic=True)
        elif url.path == "/" and (action := _query_value(url.query, "Action")) in ALIYUN_ACTIONS:
            self._aliyun_account(url.query, action)
        elif url.path == "/sim/v1/truth":
            self._json(200, simulation.truth_document())
        elif url.path == "/sim/v1/faults":
            self._json(200, {"faults": simulation.faults()})
        elif url.path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif url.path == "/":
            self._send(200, landing_page(simulation.status()), "text/html; charset=utf-8")
        else:
            self._error(404, f"no such endpoint: {url.path}")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if (
            url.path == "/"
            and self.headers.get("X-TC-Action") == "PullSmsSendStatus"
            and self.server.simulation.settings.sms_api == "tencent"
        ):
            self._tencent()
            return
        if url.path == "/" and self.headers.get("X-TC-Action") in TENCENT_ACTIONS:
            self._tencent_account(self.headers["X-TC-Action"])
            return
        if url.path not in ("/sim/v1/faults", "/sms/v1/send"):
            self._method_not_allowed(url.path)
            return
        length_text = self.headers.get("Content-Length", "0")
        if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be taken for a request
            self._error(400, f"Content-Length must be a number up to {MAX_BODY_BYTES}")
            return
        body = self.rfile.read(int(length_text))
        if url.path == "/sms/v1/send":
            try:
                self._json(202, self.server.simulation.send_canary(body))
            except ConfigError as exc:
                self._error(400, str(exc))
            return
        try:
            fault = self.server.simulation.start_fault(body)
        except ConfigError as exc:
            self._error(400, str(exc))
            return
        log.info("fault started", extra={"kind": fault["kind"], "fault_id": fault["id"]})
        self._json(201, fault)

    def _method_not_allowed(self, path: str) -> None:
        known = path in FEEDS or path in ("/", "/healthz", "/sim/v1/truth", "/sim/v1/faults")
        if known:
            self._error(405, f"method {self.command} not allowed on {path}", {"Allow": "GET"})
        else:
            self._error(404, f"no such endpoint: {path}")

    def do_PUT(self) -> None:
        self._method_not_allowed(urlsplit(self.path).path)

    def do_DELETE(self) -> None:
        self._method_not_allowed(urlsplit(self.path).path)

    def do_PATCH(self) -> None:
        self._method_not_allowed(urlsplit(self.path).path)

    # -- feeds ----------------------------------------------------------------------------

    def _fault(self, target: str) -> tuple[bool, str | None]:
        """Apply an active `api_errors` fault: (answered already, mode for the body)."""
        hit = self.server.simulation.api_fault(target)
        mode = hit.mode if hit else None
        spoiled = fault_answer(hit)
        if spoiled is not None:
            self._send(spoiled.status, spoiled.body, headers=spoiled.headers)
            return True, mode
        if hit and mode == "slow":
            time.sleep(hit.fault.slow_ms / 1000)
        return False, mode

    def _page(self, body: bytes, mode: str | None, now_ms: int | None = None) -> None:
        """Answer with a page, cut in half by a `truncated` fault; `now_ms` dates a
        provider-shaped answer (its `Date` header)."""
        if mode == "truncated":
            body = body[: max(1, len(body) // 2)]
        if now_ms is not None:
            self._date_ms = now_ms
        self._send(200, body)

    def _feed(self, path: str, query: str) -> None:
        answer = answer_feed(self.server.simulation, path, query)
        if answer.delay_ms:
            time.sleep(answer.delay_ms / 1000)
        self._send(answer.status, answer.body, headers=answer.headers)

    def _tencent(self) -> None:
        length_text = self.headers.get("Content-Length", "0")
        if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
            self.close_connection = True
            self._error(400, "bad Content-Length")
            return
        body = self.rfile.read(int(length_text))
        auth = self.headers.get("Authorization", "")
        try:
            limit = json.loads(body)["Limit"]
        except (ValueError, KeyError, TypeError):
            limit = None
        if not auth.startswith("TC3-HMAC-SHA256 ") or not isinstance(limit, int):
            error = {"Code": "AuthFailure.SignatureFailure" if limit else "InvalidParameter"}
            self._json(200, {"Response": {"Error": {**error, "Message": "bad request"}}})
            return
        if not 1 <= limit <= 100:
            self._json(
                200,
                {
                    "Response": {
                        "Error": {
                            "Code": "InvalidParameterValue",
                            "Message": "Limit must be 1..100",
                        }
                    }
                },
            )
            return
        answered, mode = self._fault("sms")
        if answered:
            return
        payload, now_ms = self.server.simulation.pull_reports(limit)
        self._page(payload, mode, now_ms)  # truncated: consumed all the same, as upstream

    # -- provider accounts ------------------------------------------------------------------

    def _account(self, shape: str, action: str, *, basic: bool, account_sid: str = "") -> None:
        """A Twilio or Vonage account call: HTTP Basic auth, else 401 as the providers answer."""
        if basic and not self.headers.get("Authorization", "").startswith("Basic "):
            self._json(401, {"status": 401, "message": "Authenticate", "code": 20003})
            return
        body = self.server.simulation.account_answer(shape, action, account_sid)
        self._send(200, body)

    def _aliyun_account(self, query: str, action: str) -> None:
        if not _query_value(query, "Signature"):
            self._json(400, {"Code": "MissingSignature", "Message": "Signature is mandatory"})
            return
        self._send(200, self.server.simulation.account_answer("aliyun", action))

    def _tencent_account(self, action: str) -> None:
        length_text = self.headers.get("Content-Length", "0")
        if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
            self.close_connection = True
            self._error(400, "bad Content-Length")
            return
        self.rfile.read(int(length_text))
        if not self.headers.get("Authorization", "").startswith("TC3-HMAC-SHA256 "):
            error = {"Code": "AuthFailure.SignatureFailure", "Message": "bad signature"}
            self._json(200, {"Response": {"Error": error}})
            return
        self._send(200, self.server.simulation.account_answer("tencent", action))

    def _vonage(self, query: str) -> None:
        try:
            window = _vonage_query(query)
        except FeedRequestError as exc:
            self._error(400, str(exc))
            return
        answered, mode = self._fault("sms")
        if answered:
            return
        try:
            body, now_ms = self.server.simulation.shaped_page("vonage", **window)
        except FeedRequestError as exc:
            self._error(400, str(exc))
            return
        self._page(body, mode, now_ms)

    def _twilio(self, query: str) -> None:
        params = parse_qs(query, keep_blank_values=True)
        size_text = params.get("PageSize", ["50"])[-1]
        if not size_text.isdigit() or not 1 <= int(size_text) <= 1000:
            self._error(400, "PageSize must be 1..1000")
            return
        answered, mode = self._fault("sms")
        if answered:
            return
        try:
            body, now_ms = self.server.simulation.shaped_page(
                "twilio", page_size=int(size_text), token=params.get("PageToken", [None])[-1]
            )
        except FeedRequestError as exc:
            self._error(400, str(exc))
            return
        self._page(body, mode, now_ms)


def _query_value(query: str, name: str) -> str:
    """The last value of a query parameter, "" when absent."""
    return parse_qs(query, keep_blank_values=True).get(name, [""])[-1]


def _vonage_query(query: str) -> dict[str, int]:
    """`date_start`, `date_end` (ISO 8601, at most 24 h apart) and `cursor` of a records call."""
    params = parse_qs(query, keep_blank_values=True)
    try:
        start = parse_rfc3339_ms(params["date_start"][-1])
        end = parse_rfc3339_ms(params["date_end"][-1])
    except (KeyError, ValueError) as exc:
        raise FeedRequestError("date_start and date_end must be ISO 8601 times") from exc
    if not 0 < end - start <= 86_400_000:
        raise FeedRequestError("the window must be at most 24 hours, date_start < date_end")
    cursor = params.get("cursor", ["0"])[-1]
    if not cursor.isdigit():
        raise FeedRequestError("bad cursor")
    return {"start_ms": start, "end_ms": end, "cursor": int(cursor)}


def _push_batch(url: str, batch: list[dict[str, Any]], date_ms: int) -> bool:
    """POST one SmsReport batch dated `date_ms`; whether the receiver acknowledged it."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(batch).encode(),
        headers={
            "Content-Type": "application/json",
            "Date": formatdate(date_ms // 1000, usegmt=True),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return bool(json.loads(response.read()).get("code") == 0)
    except (OSError, ValueError, urllib.error.URLError):
        return False


def landing_page(status: dict[str, Any]) -> bytes:
    """A small HTML page: simulated time, run parameters, links and the fault timeline."""
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(fault.get(k, '')))}</td>"
            for k in ("id", "kind", "start", "duration", "state")
        )
        + "</tr>"
        for fault in status["faults"]
    )
    links = "".join(
        f'<li><a href="{path}">{path}</a></li>'
        for path in (*FEEDS, "/sim/v1/truth", "/sim/v1/faults", "/healthz")
    )
    facts = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(status[k]))}</td></tr>"
        for k in (
            "sim_time",
            "start",
            "speed",
            "seed",
            "rate",
            "traffic_for",
            "complete",
            "transactions_published",
            "messages_published",
            "feed_bytes",
        )
    )
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>smswatch simulator</title></head>
<body>
<h1>smswatch simulator</h1>
<p>A simulated bank SMS gateway and POS acquirer, with injected faults.</p>
<table>{facts}</table>
<h2>Endpoints</h2><ul>{links}</ul>
<h2>Faults</h2>
<table><tr><th>id</th><th>kind</th><th>start</th><th>duration</th><th>state</th></tr>{rows}</table>
</body></html>
"""
    return page.encode()


class SimulatorServer:
    """Serves a `Simulation` over HTTP in background threads."""

    def __init__(self, settings: SimulatorSettings, host: str = "127.0.0.1", port: int = 0):
        self.simulation = Simulation(settings)
        self._host = host
        self._requested_port = port
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._stopped = False
        #: Held around each push (request and answer): a test that holds it knows that no
        #: push is in flight, e.g. while it kills the receiver.
        self.push_lock = threading.Lock()

    def start(self) -> None:
        """Bind, start the simulated clock and serve; returns once listening."""
        if self._httpd is not None:
            return
        server_class = _HTTPServerV6 if ":" in self._host else _HTTPServer
        httpd = server_class((self._host, self._requested_port), _Handler)
        httpd.simulation = self.simulation
        self._httpd = httpd
        self.simulation.clock.start()
        self._threads = [
            threading.Thread(
                target=httpd.serve_forever,
                args=(SHUTDOWN_POLL_SECONDS,),
                name="sim-http",
                daemon=True,
            ),
            threading.Thread(target=self._tick, name="sim-ticker", daemon=True),
        ]
        if self.simulation.settings.push_url:
            self._threads.append(threading.Thread(target=self._push, name="sim-push", daemon=True))
        for thread in self._threads:
            thread.start()
        log.info(
            "simulator started",
            extra={"url": self.url, "seed": self.simulation.settings.seed},
        )

    def _tick(self) -> None:
        """Generate traffic in the background so that requests find it ready; log faults."""
        states: dict[int, str] = {}
        while not self._stopping.wait(TICK_SECONDS):
            try:
                for fault in self.simulation.faults():  # advances the simulation too
                    if states.get(fault["id"], "scheduled") != fault["state"]:
                        log.info(
                            f"fault {fault['state']}",
                            extra={"fault_id": fault["id"], "kind": fault["kind"]},
                        )
                    states[fault["id"]] = fault["state"]
            except Exception:  # keep serving; the next request shows the same error
                log.exception("simulation tick failed")

    def _push(self) -> None:
        """Push queued delivery reports to the configured URL, as the provider does: batches,
        retried until acknowledged (`{"code":0}` for SmsReport), each with the provider's now in
        its `Date` header. A tick with nothing to report pushes an empty batch (a keep-alive),
        so the receiver hears the provider's clock in quiet times too."""
        url = self.simulation.settings.push_url
        assert url
        while not self._stopping.wait(TICK_SECONDS):
            first = True
            while True:
                with self.push_lock:
                    batch, date_ms = self.simulation.reports_to_push(100)
                    if not batch and not first:
                        break
                    first = False
                    acked = _push_batch(url, batch, date_ms)
                    self.simulation.push_done(batch, date_ms, acked)
                if not acked:
                    break

    @property
    def port(self) -> int:
        """The bound port (after `start`)."""
        if self._httpd is None:
            raise RuntimeError("simulator not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL to reach the server; a wildcard bind is reached over loopback."""
        host = self._host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving and the clock's ticker; safe to call more than once."""
        if self._stopped or self._httpd is None:
            self._stopped = True
            return
        self._stopped = True
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        log.info("simulator stopped")

"""The exporter's HTTP server: routes, and the order in which a request is let in.

For every request: its framing is checked (a `Content-Length` that is not a plain number is
refused with 400, `Transfer-Encoding` with 411, a body over 1 MiB with 413), then the web
config's basic auth on protected paths (with a back-off on failures), then the route's own
admission check on the request head (a push receiver's secret), and only then is the body read
and the route called. A request refused before its body was read closes the connection.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from exporter.web.basic_auth import BasicAuthUsers
from exporter.web.connections import ConnectionHandler, ConnectionLimits, ConnectionServer
from exporter.web.query import parse_query
from exporter.web.settings import tls_context
from exporter.web.throttle import SignInsThrottled, SignInThrottle

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_048_576
_QUERY = re.compile(r"\?[^\s\"]*")
_DIGITS = re.compile(r"[0-9]{1,16}")


@dataclass(frozen=True)
class Request:
    """What a route sees of an HTTP request (an admission check sees it without its body)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    user: str = ""
    remote: str = ""  # the client's address
    #: The server ran the route's admission check on this request's head already.
    admitted: bool = False


@dataclass
class Response:
    """What a route answers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[Request], Response]
#: Checks a request head before its body is read: a refusal, or None to go on.
Admission = Callable[[Request], Response | None]


def body_length(headers: Any) -> int | Response:
    """The announced body length of a request, or the refusal of a framing we do not read."""
    if headers.get("Transfer-Encoding") is not None:
        return Response(411, b"Transfer-Encoding is not accepted: send a Content-Length\n")
    values = {v.strip() for v in headers.get_all("Content-Length") or []}
    if not values:
        return 0
    value = values.pop()
    if values or not _DIGITS.fullmatch(value):
        return Response(400, b"bad Content-Length\n")
    length = int(value)
    if length > MAX_BODY_BYTES:
        return Response(413, b"request body too large\n")
    return length


class WebServer:
    """A threaded HTTP(S) server with a route table; routes may be added before `start`.

    `open_paths` skip the web config's basic auth (their routes check on their own);
    `admission` holds per-path checks of the request head that run before the body is read.
    """

    def __init__(
        self,
        host: str,
        port: int,
        web_config_file: str | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.routes: dict[str, Route] = {}
        self.open_paths: set[str] = {"/healthz"}
        self.admission: dict[str, Admission] = {}
        self.sign_ins = SignInThrottle()
        self._users = BasicAuthUsers(web_config_file)
        context = tls_context(self._users.config)
        self.tls = context is not None
        server_self = self

        class Handler(ConnectionHandler):
            server_version = "smswatch"

            def log_message(self, format: str, *args: Any) -> None:
                # without query strings: lookup keys never reach the log
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("http", extra={"request": _QUERY.sub("", format % args)})

            def _serve(self) -> None:
                server_self._dispatch(self)

            do_GET = _serve
            do_POST = _serve
            do_HEAD = _serve

        self._httpd = ConnectionServer((host, port), Handler, context, limits or ConnectionLimits())

    def basic_auth_user(self, header: str | None) -> str | None:
        """The user of a valid basic-auth header per the web config; None when refused or when
        the web config has no users. Unknown users cost the same bcrypt check as known ones."""
        return self._users.check(header) or None

    def basic_auth_hash(self, user: str) -> str | None:
        """A web-config user's current bcrypt hash (None when there is no such user)."""
        return self._users.hash_of(user)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._httpd.server_address[1])

    @property
    def open_connections(self) -> int:
        """Connections open now (at most `ConnectionLimits.max_connections`)."""
        return self._httpd.open_connections

    def start(self) -> None:
        """Serve in a background thread."""
        thread = threading.Thread(
            target=self._httpd.serve_forever, name="smswatch-http", daemon=True
        )
        thread.start()

    def stop(self) -> None:
        """Stop serving, close the socket and every open connection."""
        self._httpd.shutdown()
        self._httpd.server_close()

    # ------------------------------------------------------------------ one request

    def _authenticate(self, head: Request) -> str | Response:
        """The web-config user of a request to a protected path, or the refusal."""
        if not self._users.config.users:
            return ""
        try:
            self.sign_ins.check(head.remote)
        except SignInsThrottled as exc:
            return Response(
                429, b"too many failed sign-ins\n", headers={"Retry-After": exc.retry_after}
            )
        header = head.headers.get("authorization")
        user = self._users.check(header)
        if user is None:
            if header:  # no header at all is a first try, not a failure
                self.sign_ins.failed(head.remote)
            return Response(
                401, b"Unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="smswatch"'}
            )
        return user

    def _dispatch(self, handler: ConnectionHandler) -> None:
        handler.client.receive_body()
        parts = urlsplit(handler.path)
        head = Request(
            method=handler.command,
            path=parts.path,
            query=parse_query(parts.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=b"",
            remote=str(handler.client_address[0]),
        )
        length = body_length(handler.headers)
        if isinstance(length, Response):
            self._send(handler, length, close=True)
            return
        try:
            admitted = self._admit(head)
        except Exception:
            log.exception("admission failed", extra={"path": parts.path})
            admitted = Response(500, b"internal error\n")
        if isinstance(admitted, Response):
            self._send(handler, admitted, close=length > 0)
            return
        try:
            body = self._read_body(handler, length)
        except TimeoutError:
            self._send(handler, Response(408, b"request body too slow\n"), close=True)
            return
        if body is None:  # the client closed before sending it all: nobody to answer
            handler.close_connection = True
            return
        handler.client.work()
        request = Request(
            head.method, head.path, head.query, head.headers, body, admitted, head.remote, True
        )
        try:
            response = self.routes[parts.path](request)
        except Exception:
            log.exception("route failed", extra={"path": parts.path})
            response = Response(500, b"internal error\n")
        self._send(handler, response)

    def _admit(self, head: Request) -> str | Response:
        """Whether a request may go on, judged on its head alone (before its body is read):
        the web-config user ("" on open paths or without users), or the refusal."""
        user = ""
        if head.path not in self.open_paths:
            authenticated = self._authenticate(head)
            if isinstance(authenticated, Response):
                return authenticated
            user = authenticated
        if head.path not in self.routes:
            return Response(404, b"not found\n")
        admission = self.admission.get(head.path)
        refusal = admission(head) if admission is not None else None
        return user if refusal is None else refusal

    @staticmethod
    def _read_body(handler: ConnectionHandler, length: int) -> bytes | None:
        """The body, read by the connection's body deadline (None when it ended short)."""
        if not length:
            return b""
        handler.continue_body()
        body = handler.rfile.read(length)
        return body if len(body) == length else None

    @staticmethod
    def _send(handler: ConnectionHandler, response: Response, close: bool = False) -> None:
        """Write the answer; `close` when the request's body was left unread."""
        head = handler.command == "HEAD"
        handler.client.start_writing()
        if close:
            handler.close_connection = True
            handler.client.body_unread = True
        try:
            handler.send_response(response.status)
            handler.send_header("Content-Type", response.content_type)
            handler.send_header("Content-Length", str(len(response.body)))
            for key, value in response.headers.items():
                handler.send_header(key, value)
            if close:
                handler.send_header("Connection", "close")
            handler.end_headers()
            if not head:
                handler.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

"""Connections of the exporter's HTTP server: TLS in each connection's own thread, deadlines on
reading requests, and a bound on open connections.

- The listening socket stays plain. Each accepted connection does its TLS handshake in its own
  thread, within `handshake_timeout_s`: a client that connects and says nothing holds only its
  own connection, never the accept loop (and with it `/metrics`, the push receivers and the
  lookup page).
- A request head must arrive whole within `head_timeout_s` of the connection being ready (or of
  the previous answer, on a kept-alive connection). The deadline is for the whole head, not for
  each read, so a client that sends a byte now and then is cut off all the same. A body has
  `body_timeout_s`, an answer `write_timeout_s`.
- At most `max_connections` are open. When one more arrives at the limit, the connection that
  has waited longest on its client (idle, handshaking, sending its request slowly or reading
  the answer slowly) is closed to make room; a connection whose request the server is working
  on never is. Slow clients therefore cannot crowd out a Prometheus scrape, which sends its
  request at once. When the server is working on every open connection, the new one is closed
  and its client retries.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import logging
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, cast

log = logging.getLogger(__name__)

Clock = Callable[[], float]

#: The standard library's bounds on a request's header block (`http.client`).
_MAX_LINE, _MAX_HEADERS = 65536, 100
#: A header line as the email parser reads it with no defect and no folding: a name of
#: printable ASCII without `:`, then `:` and a value on this line alone.
_PLAIN_HEADER = re.compile(rb"[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n")
#: The `Date` header of answers in the current second: (Unix second, formatted).
_date = (0, "")


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections the server holds open, and how long it waits on each."""

    max_connections: int = 64
    handshake_timeout_s: float = 10.0
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    write_timeout_s: float = 30.0


class ClientConnection:
    """One accepted connection: its socket, its read deadline, and since when it has been
    waiting on its client (for a handshake, a request head or body, or to take an answer).
    A connection waiting on its client may be closed to make room; one whose request the server
    is working on (its route running) may not."""

    def __init__(self, sock: socket.socket, limits: ConnectionLimits, clock: Clock) -> None:
        self.sock = sock
        self.limits = limits
        self._clock = clock
        # A second handle on the same socket, so another thread can shut it down at any time
        # (also while this one is being wrapped for TLS, which detaches `sock`).
        self._handle = sock.dup()
        self._lock = threading.Lock()
        now = clock()
        self.waiting_since: float | None = now  # None while the server works on a request
        self.deadline = now + limits.handshake_timeout_s
        self.requests = 0
        self.closed = False
        self.body_unread = False  # answered without reading the request's body

    def secure(self, context: ssl.SSLContext) -> None:
        """The TLS handshake, within the handshake deadline."""
        self.sock.settimeout(self.limits.handshake_timeout_s)
        wrapped = context.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
        self.sock = wrapped
        wrapped.do_handshake()

    def wait_for_request(self) -> None:
        """Ready for a request head: it has `head_timeout_s` from now. (The first one keeps
        its connection's age: a client that connected and said nothing is the oldest.)"""
        self._wait(self.limits.head_timeout_s, keep_age=self.requests == 0)
        self.requests += 1

    def receive_body(self) -> None:
        """A whole request head arrived: its body has `body_timeout_s` from now."""
        self._wait(self.limits.body_timeout_s)

    def work(self) -> None:
        """The server works on the request: the connection is not closed to make room."""
        with self._lock:
            if self.closed:
                raise ConnectionAbortedError("closed to make room")
            self.waiting_since = None

    def start_writing(self) -> None:
        """The answer goes out, within `write_timeout_s`."""
        self._wait(0.0)
        self.sock.settimeout(self.limits.write_timeout_s)

    def _wait(self, timeout_s: float, keep_age: bool = False) -> None:
        with self._lock:
            if self.closed:
                raise ConnectionAbortedError("closed to make room")
            now = self._clock()
            if not (keep_age and self.waiting_since is not None):
                self.waiting_since = now
            self.deadline = now + timeout_s

    def close_if_waiting(self) -> bool:
        """Close the connection if it is waiting on its client; whether it did."""
        with self._lock:
            if self.waiting_since is None or self.closed:
                return False
            self.closed = True
        self.shut()
        return True

    def linger(self, seconds: float = 1.0, limit: int = 1_048_576) -> None:
        """After answering a request whose body was not read: stop sending, then discard what
        the client still sends for a moment, so that closing does not reset the connection
        before the client has read the answer. Meanwhile it may be closed to make room."""
        with self._lock:
            if self.closed:
                return
            self.waiting_since = self._clock()
        try:
            self._handle.shutdown(socket.SHUT_WR)
            deadline, drained = self._clock() + seconds, 0
            while drained < limit and (remaining := deadline - self._clock()) > 0:
                self._handle.settimeout(remaining)
                chunk = self._handle.recv(65_536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass

    def shut(self) -> None:
        """Shut the socket down both ways (the thread reading it sees its end)."""
        with contextlib.suppress(OSError):  # already gone
            self._handle.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close both handles."""
        with self._lock:
            self.closed = True
        for sock in (self.sock, self._handle):
            with contextlib.suppress(OSError):
                sock.close()


class DeadlineReader(io.RawIOBase):
    """Socket reads that give up at the connection's deadline, however the bytes trickle in."""

    def __init__(self, connection: ClientConnection, clock: Clock) -> None:
        super().__init__()
        self.connection = connection
        self._clock = clock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.connection.deadline - self._clock()
        if remaining <= 0:
            raise TimeoutError("read deadline passed")
        sock = self.connection.sock
        sock.settimeout(remaining)
        return sock.recv_into(buffer)


class PlainHeaders(http.client.HTTPMessage):
    """Headers read from plain `Name: value` lines, answered as stored, by name at once.

    The email policy's fetch returns such values unchanged (text decoded from ISO-8859-1 has
    no surrogates to escape), so skipping it changes no answer; with a scan of every header
    for each fetch it was a tenth of a small push's handling. The index by lower-case name is
    made for the headers as they are, and made again if a `Message` method changed them."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        self._headers = pairs
        self._index: dict[str, list[str]] = {}
        self._indexed: list[tuple[str, str]] | None = None  # the headers the index is for

    def _by_name(self) -> dict[str, list[str]]:
        if self._indexed != self._headers:
            index: dict[str, list[str]] = {}
            for key, value in self._headers:
                index.setdefault(key.lower(), []).append(value)
            self._index, self._indexed = index, list(self._headers)
        return self._index

    def get(self, name: str, failobj: Any = None) -> Any:
        values = self._by_name().get(name.lower())
        return values[0] if values else failobj

    def items(self) -> list[tuple[str, Any]]:
        return list(self._headers)

    def get_all(self, name: str, failobj: Any = None) -> Any:
        return list(self._by_name().get(name.lower(), ())) or failobj


class ConnectionHandler(BaseHTTPRequestHandler):
    """A request handler reading through the connection's deadline."""

    protocol_version = "HTTP/1.1"
    server: ConnectionServer
    client: ClientConnection
    raw_requestline: bytes

    def setup(self) -> None:
        self.client = cast(ClientConnection, self.request)
        self.connection = self.client.sock
        self.rfile = io.BufferedReader(DeadlineReader(self.client, self.server.clock))
        self.wfile = self.connection.makefile("wb")

    def handle_one_request(self) -> None:
        self.client.wait_for_request()
        super().handle_one_request()

    def parse_request(self) -> bool:
        """The request line and headers, by the rules of `BaseHTTPRequestHandler.parse_request`.

        A header block of plain `Name: value` lines (what clients send) is read directly; any
        other (folded lines, a line that is not a header) goes to the email parser as in the
        standard library, which costs a third of a small push's handling."""
        self.command = None  # type: ignore[assignment]  # set in case of error on the first line
        self.request_version = version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if not words:
            return False
        if len(words) >= 3:  # enough to determine the protocol version
            version = words[-1]
            number = version[5:].split(".") if version.startswith("HTTP/") else []
            if len(number) != 2 or not all(n.isdigit() and len(n) <= 10 for n in number):
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return False
            if (int(number[0]), int(number[1])) >= (1, 1) and self.protocol_version >= "HTTP/1.1":
                self.close_connection = False
            if int(number[0]) >= 2:
                self.send_error(
                    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({version[5:]})"
                )
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
                return False
        self.command, self.path = command, path
        if self.path.startswith("//"):  # gh-87389: no open redirect through `//host`
            self.path = "/" + self.path.lstrip("/")
        headers = self._read_headers()
        if headers is None:
            return False
        self.headers = headers
        connection = headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        if (
            headers.get("Expect", "").lower() == "100-continue"
            and self.protocol_version >= "HTTP/1.1"
            and self.request_version >= "HTTP/1.1"
        ):
            return self.handle_expect_100()
        return True

    def _read_headers(self) -> Message | None:
        """The header block (None when refused: a line too long, too many lines)."""
        lines = []
        while True:
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                too_long = http.client.LineTooLong("header line")
                self.send_error(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(too_long)
                )
                return None
            lines.append(line)
            if len(lines) > _MAX_HEADERS:
                self.send_error(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "Too many headers",
                    f"got more than {_MAX_HEADERS} headers",
                )
                return None
            if line in (b"\r\n", b"\n", b""):
                break
        pairs = []
        for line in lines[:-1]:
            if not _PLAIN_HEADER.fullmatch(line):  # the email parser's rules for the rest
                block = io.BytesIO(b"".join(lines))
                return cast(Message, http.client.parse_headers(block, _class=self.MessageClass))
            name, _, value = line.decode("iso-8859-1").partition(":")
            pairs.append((name, value.lstrip(" \t").rstrip("\r\n")))
        return PlainHeaders(pairs)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` of an answer, formatted once a second."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        global _date
        now = int(time.time())
        if _date[0] != now:
            _date = (now, formatdate(now, usegmt=True))
        return _date[1]

    def handle_expect_100(self) -> bool:
        # `100 Continue` is sent once the request is admitted (auth first): see `continue_body`.
        return True

    def continue_body(self) -> None:
        """Tell a client that waits for `100 Continue` to send its body now."""
        if (
            self.headers.get("Expect", "").lower() == "100-continue"
            and self.request_version >= "HTTP/1.1"
        ):
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()


class ConnectionServer(HTTPServer):
    """An HTTP(S) server with one thread per connection, within `ConnectionLimits`."""

    # The kernel's queue of connections not yet accepted: a burst of clients must not make a
    # scrape's connection wait for a SYN retransmit (1 s) as with socketserver's default of 5.
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[ConnectionHandler],
        tls: ssl.SSLContext | None,
        limits: ConnectionLimits,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(address, handler)
        self.tls = tls
        self.limits = limits
        self.clock = clock
        self._lock = threading.Lock()
        self._open: list[ClientConnection] = []
        self._last_full_warning = -1e9

    @property
    def open_connections(self) -> int:
        """Connections open now."""
        with self._lock:
            return len(self._open)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Admit the connection (making room if needed) and serve it in its own thread."""
        connection = self._admit(request)
        if connection is None:
            self.shutdown_request(request)
            return
        thread = threading.Thread(
            target=self._serve,
            args=(connection, client_address),
            name="smswatch-http-connection",
            daemon=True,
        )
        thread.start()

    def _admit(self, sock: socket.socket) -> ClientConnection | None:
        with self._lock:
            if len(self._open) >= self.limits.max_connections and not self._make_room():
                self._warn_full("connection limit reached, every connection busy: refusing one")
                return None
            connection = ClientConnection(sock, self.limits, self.clock)
            self._open.append(connection)
            return connection

    def _make_room(self) -> bool:
        """Close the connection that has waited longest on its client (lock held)."""
        waiting = sorted(
            (c for c in self._open if c.waiting_since is not None),
            key=lambda c: c.waiting_since or 0.0,
        )
        for candidate in waiting:
            if candidate.close_if_waiting():
                self._open.remove(candidate)
                self._warn_full("connection limit reached: closed the longest-waiting idle one")
                return True
        return False

    def _warn_full(self, message: str) -> None:
        now = self.clock()
        if now - self._last_full_warning >= 60:  # once a minute at most, under attack too
            self._last_full_warning = now
            log.warning(message, extra={"max_connections": self.limits.max_connections})

    def _serve(self, connection: ClientConnection, client_address: Any) -> None:
        try:
            if self.tls is not None:
                connection.secure(self.tls)
            self.finish_request(connection, client_address)  # type: ignore[arg-type]
        except OSError as exc:  # handshake refused or timed out, client gone, closed for room
            log.debug("connection ended", extra={"error": type(exc).__name__})
        except Exception:
            log.exception("connection failed")
        finally:
            if connection.body_unread:
                connection.linger()
            with self._lock:
                if connection in self._open:
                    self._open.remove(connection)
            connection.shut()
            connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log (never print) what went wrong with a connection."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("connection error", extra={"error": type(exc).__name__})
        else:
            log.exception("connection failed")

    def server_close(self) -> None:
        """Stop listening and end every open connection."""
        super().server_close()
        with self._lock:
            open_now, self._open = self._open, []
        for connection in open_now:
            connection.shut()

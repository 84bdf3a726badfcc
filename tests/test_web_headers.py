"""The server reads plain header blocks without the email parser; every block, plain or not,
comes out as the standard library reads it (`http.client.parse_headers`)."""

from __future__ import annotations

import http.client
import io
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exporter.web import Response, WebServer
from exporter.web.connections import ConnectionHandler

BLOCKS = [
    b"Host: a\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n",
    b"Host:a\nX-Empty:\n\n",  # bare LF, no space, an empty value
    b"Content-Length: 5\r\nContent-Length:  7 \t\r\n\r\n",  # repeated, padded
    b"X-Folded: one\r\n two\r\n\tthree\r\nHost: a\r\n\r\n",  # obsolete line folding
    b"Host: a\r\nno colon here\r\nX-After: lost\r\n\r\n",  # a line that is not a header
    b": no name\r\nHost: a\r\n\r\n",
    b"From someone\r\nHost: a\r\n\r\n",
    b"Host: a\rX-Bare-CR: b\r\n\r\n",
    b"X-Latin: caf\xe9\r\nX-Ctl: a\x00b\x7f\r\n\r\n",
    b" leading continuation\r\nHost: a\r\n\r\n",
    b"Host: a\r\nX-Partial: no end",  # the client stopped mid-line
    b"\r\n",
]


@pytest.mark.parametrize("block", BLOCKS)
def test_header_blocks_read_as_the_standard_library_reads_them(block: bytes) -> None:
    handler = ConnectionHandler.__new__(ConnectionHandler)
    handler.rfile = io.BytesIO(block)  # type: ignore[assignment]
    ours = handler._read_headers()
    theirs = http.client.parse_headers(io.BytesIO(block))
    assert ours is not None
    assert ours.items() == theirs.items()
    assert ours.get_all("Content-Length") == theirs.get_all("Content-Length")
    assert ours.get("host") == theirs.get("host")
    assert ours["HOST"] == theirs["HOST"]
    assert ours.get("X-Missing", "none") == theirs.get("X-Missing", "none")
    assert ours.get_all("x-missing") == theirs.get_all("x-missing")
    assert ours.get("x-latin") == theirs.get("x-latin")
    assert dict(ours) == dict(theirs) and len(ours) == len(theirs)
    for headers in (ours, theirs):  # changed after reading: still answered alike
        headers["X-Added"] = "1"
        headers.add_header("X-Added", "2", part="a")
        del headers["host"]
    assert ours.items() == theirs.items()
    assert ours.get_all("x-added") == theirs.get_all("x-added")
    assert ours.get("host") is None and ours.get("X-ADDED") == "1"


REQUEST_LINES = [
    b"GET /healthz HTTP/1.1\r\n",
    b"GET /healthz HTTP/1.0\r\n",
    b"GET /healthz HTTP/2.0\r\n",
    b"GET /healthz HTTP/1.x\r\n",
    b"GET /healthz FTP/1.1\r\n",
    b"GET /healthz HTTP/1.1 extra\r\n",
    b"POST /healthz\r\n",
    b"GET\r\n",
]


class _Stdlib(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[int, int]]:
    ours = WebServer("127.0.0.1", 0)
    ours.routes["/healthz"] = lambda _request: Response(200, b"")
    ours.start()
    theirs = ThreadingHTTPServer(("127.0.0.1", 0), _Stdlib)
    threading.Thread(target=theirs.serve_forever, daemon=True).start()
    yield ours.port, theirs.server_address[1]
    ours.stop()
    theirs.shutdown()
    theirs.server_close()


def _status(port: int, request: bytes) -> int:
    """The status of the answer (0 when the server closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        answer = sock.makefile("rb").readline()
    return int(answer.split()[1]) if answer.startswith(b"HTTP/") else 0


@pytest.mark.parametrize("line", REQUEST_LINES)
def test_request_lines_are_judged_as_the_standard_library_judges_them(
    servers: tuple[int, int], line: bytes
) -> None:
    request = line + b"Host: a\r\nConnection: close\r\n\r\n"
    ours, theirs = servers
    assert _status(ours, request) == _status(theirs, request)

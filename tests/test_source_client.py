"""The upstream client against real HTTP servers on loopback: credentials never leave the
source's own host, and an oversized body is dropped while it streams.

`127.0.0.1` and `localhost` are different hosts to an HTTP client: the source is configured
on one, the other plays a foreign host that a redirect or a next-page link points to.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from exporter.errors import SourceError
from exporter.sources import client as client_module
from exporter.sources.client import SourceClient

from harness import config_with, wait_until

SECRET_VALUE = "s3cret"  # what config_with resolves ${SECRET} to
AUTHS: dict[str, dict[str, str]] = {
    "bearer": {"type": "bearer", "token": "${SECRET}"},
    "basic": {"type": "basic", "username": "smswatch", "password": "${SECRET}"},
    "header": {"type": "header", "name": "X-Api-Key", "value": "${SECRET}"},
}


class Upstream:
    """A loopback HTTP server whose answer is a function of the request; it records requests."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.requests: list[dict[str, str]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.requests.append({k.lower(): v for k, v in self.headers.items()})
                answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send_json(handler: BaseHTTPRequestHandler, document: Any) -> None:
    body = json.dumps(document).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def foreign() -> Iterator[Upstream]:
    """The other host (reached as `localhost`): it answers every request with JSON."""
    server = Upstream(lambda h: send_json(h, {"items": []}))
    yield server
    server.stop()


def source_client(base_url: str, auth: dict[str, str]) -> tuple[SourceClient, list[str]]:
    config = config_with(sms={"base_url": base_url, "path": "/feed", "auth": auth, "retries": 0})
    errors: list[str] = []
    return SourceClient(config.sources[0], errors.append), errors


def credentials_in(headers: dict[str, str]) -> bool:
    return "authorization" in headers or "x-api-key" in headers


@pytest.mark.parametrize("auth", sorted(AUTHS))
def test_a_redirect_to_another_host_carries_no_credentials(auth: str, foreign: Upstream) -> None:
    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", f"http://localhost:{foreign.port}/elsewhere?x=1")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    own = Upstream(redirect)
    try:
        client, _ = source_client(f"http://127.0.0.1:{own.port}", AUTHS[auth])
        assert client.get_json("/feed", {}, time.monotonic() + 10) == {"items": []}
        assert credentials_in(own.requests[0]), "the source's own host gets its credentials"
        assert len(foreign.requests) == 1
        assert not credentials_in(foreign.requests[0]), foreign.requests[0]
        assert SECRET_VALUE not in json.dumps(foreign.requests[0])
    finally:
        own.stop()


@pytest.mark.parametrize("auth", sorted(AUTHS))
def test_a_next_link_to_another_host_is_not_followed(auth: str, foreign: Upstream) -> None:
    own = Upstream(lambda h: send_json(h, {"items": []}))
    try:
        client, errors = source_client(f"http://127.0.0.1:{own.port}", AUTHS[auth])
        client.get_json(f"http://127.0.0.1:{own.port}/feed?page=2", {}, time.monotonic() + 10)
        with pytest.raises(SourceError) as raised:
            client.get_json(f"http://localhost:{foreign.port}/feed?page=2", {}, 1e12)
        assert raised.value.kind == "bad_payload" and errors == ["bad_payload"]
        assert foreign.requests == []
    finally:
        own.stop()


def test_an_oversized_body_is_dropped_while_it_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[int] = []
    total = 64 * 1024 * 1024

    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()  # no Content-Length: the size is only known by reading
        chunk = b"[" + b"0," * (512 * 1024)
        written = 0
        try:
            while written < total:
                handler.wfile.write(chunk)
                written += len(chunk)
        except OSError:
            pass
        finally:
            sent.append(written)
            handler.close_connection = True

    monkeypatch.setattr(client_module, "MAX_BODY_BYTES", 1024 * 1024)
    own = Upstream(endless)
    try:
        client, errors = source_client(f"http://127.0.0.1:{own.port}", AUTHS["bearer"])
        with pytest.raises(SourceError) as raised:
            client.get_json("/feed", {}, time.monotonic() + 30)
        assert raised.value.kind == "bad_payload" and errors == ["bad_payload"]
        client.close()

        wait_until(lambda: bool(sent), 20, "the upstream to stop sending")
        assert sent and sent[0] < total // 2, f"the client read {sent} bytes of a capped body"
    finally:
        own.stop()

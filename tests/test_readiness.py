"""`/healthz` and `/ready` of a running exporter, as a Kubernetes probe sees them over HTTP."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from exporter.app import Exporter
from exporter.config import parse_config, simulator_config_document
from exporter.web import Request

from harness import LoopbackServer, http_get, wait_until


class HeldUpstream:
    """A real HTTP API on 127.0.0.1 that holds every request until released, then answers 503."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = threading.Event()
        held = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                held.arrived.set()
                held.release.wait(30)
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = LoopbackServer(Handler)
        self.url = self.http.url

    def close(self) -> None:
        self.release.set()
        self.http.close()


@pytest.fixture
def upstream() -> Iterator[HeldUpstream]:
    held = HeldUpstream()
    yield held
    held.close()


def document(base_url: str, state: Path) -> dict[str, Any]:
    doc = simulator_config_document(base_url, "1h")  # one poll per source in the test's life
    for source in doc["sources"]:
        source.update({"retries": 0, "timeout": {"connect": "1s", "read": "20s"}})
    doc["state"]["path"] = str(state)
    return doc


def started(
    doc: dict[str, Any], env: dict[str, str] | None = None, web_config: str | None = None
) -> Exporter:
    exporter = Exporter(parse_config(doc, env=env or {}), "127.0.0.1", 0, web_config)
    exporter.start()
    return exporter


def test_ready_waits_for_the_first_polls_and_a_down_source_keeps_it_ready(
    upstream: HeldUpstream, tmp_path: Path
) -> None:
    exporter = started(document(upstream.url, tmp_path / "state.sqlite"))
    try:
        base = f"http://127.0.0.1:{exporter.port}"
        assert upstream.arrived.wait(10), "the first poll reached the upstream"
        assert http_get(f"{base}/healthz") == (200, "ok\n")  # alive while polls are in flight
        status, body = http_get(f"{base}/ready")
        assert status == 503
        assert body.splitlines()[0] == "not ready"
        assert "state: open" in body
        assert "source sms: first poll not finished" in body

        upstream.release.set()  # the upstream answers 503: the first polls end, failed
        status, body = wait_until(
            lambda: (r := http_get(f"{base}/ready"))[0] == 200 and r, 20, "the first polls"
        )
        assert body.splitlines() == [
            "ready",
            "state: open",
            "source sms: polled, down (http_5xx)",
            "source acquirer: polled, down (http_5xx)",
        ]
        # the outage is exported for its own alert instead
        assert 'smswatch_source_up{source="sms"} 0.0' in http_get(f"{base}/metrics")[1]
    finally:
        exporter.stop()


def test_a_push_only_source_is_ready_while_its_receiver_listens(tmp_path: Path) -> None:
    doc = document("http://127.0.0.1:9", tmp_path / "state.sqlite")  # port 9: refused
    push = {"path": "/push/aliyun", "secret": "${PUSH_SECRET}", "lag": "30s"}
    doc["sources"][0] = {
        "name": "aliyun",
        "kind": "sms_gateway",
        "provider": "aliyun",
        "pull": False,
        "push": push,
    }
    exporter = started(doc, {"PUSH_SECRET": "s3cret"})
    try:
        base = f"http://127.0.0.1:{exporter.port}"
        _, body = wait_until(
            lambda: (r := http_get(f"{base}/ready"))[0] == 200 and r, 20, "the acquirer's poll"
        )
        assert body.splitlines()[1:] == [
            "state: open",
            "source aliyun: push receiver listening at /push/aliyun",
            "source acquirer: polled, down (connection)",
        ]
    finally:
        exporter.stop()


def test_an_unreadable_state_keeps_it_ready_serving_the_last_metrics_and_stopping_does_not(
    upstream: HeldUpstream, tmp_path: Path
) -> None:
    """Every replica shares the state database: unready together, the Service would have no
    endpoints, pushes would be refused instead of answered 503, scrapes would fail."""
    upstream.release.set()
    exporter = started(document(upstream.url, tmp_path / "state.sqlite"))
    base = f"http://127.0.0.1:{exporter.port}"
    try:
        wait_until(lambda: http_get(f"{base}/ready")[0] == 200, 20, "the first polls")
        ready = exporter.web.routes["/ready"]
        before = http_get(f"{base}/metrics")[1]
        exporter.store.close()  # e.g. the volume went away under the process
        status, body = http_get(f"{base}/ready")
        assert status == 200
        assert "state: down for" in body and "ProgrammingError" in body
        assert "serving the metrics read at" in body and "pushes answered 503" in body
        status, metrics = http_get(f"{base}/metrics")
        assert status == 200 and "smswatch_state_up 0.0" in metrics
        assert _records(metrics) == _records(before) != []
        # liveness never depends on the state: a database outage must not restart every replica
        assert http_get(f"{base}/healthz")[0] == 200
    finally:
        exporter.stop()
    response = ready(Request("GET", "/ready", {}, {}, b""))
    assert (response.status, response.body) == (503, b"not ready\nexporter: stopping\n")


def _records(metrics: str) -> list[str]:
    return [line for line in metrics.splitlines() if line.startswith("smswatch_records_total")]


def test_probes_need_no_credentials_when_basic_auth_guards_the_rest(
    upstream: HeldUpstream, tmp_path: Path
) -> None:
    upstream.release.set()
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
    exporter = started(document(upstream.url, tmp_path / "state.sqlite"), web_config=str(web))
    try:
        base = f"http://127.0.0.1:{exporter.port}"
        wait_until(lambda: http_get(f"{base}/ready")[0] == 200, 20, "ready without credentials")
        assert http_get(f"{base}/healthz")[0] == 200
        assert http_get(f"{base}/metrics")[0] == 401
    finally:
        exporter.stop()

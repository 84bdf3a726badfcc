"""A poll that outlasts its interval is counted per source and logged once, not warned about by
the scheduler on every tick (`smswatch demo` polls four times a second)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from exporter.app import Exporter
from exporter.config import parse_config, simulator_config_document

from harness import free_port, http_get, parse_exposition, wait_until


@pytest.fixture
def hung_upstream() -> Iterator[tuple[str, threading.Event]]:
    """A feed that answers nothing until the test lets it go (an upstream slower than the
    poll interval)."""
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            release.wait(30)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", release
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_poll_outlasting_its_interval_is_counted_not_warned_every_tick(
    hung_upstream: tuple[str, threading.Event],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, release = hung_upstream
    doc = simulator_config_document(url, "100ms")
    for source in doc["sources"]:
        source.update({"timeout": {"connect": "1s", "read": "20s"}, "retries": 0})
    config = parse_config(doc, state_path=str(tmp_path / "state.sqlite"))
    exporter = Exporter(config, "127.0.0.1", free_port())
    caplog.set_level(logging.INFO)
    exporter.start()
    try:
        metrics = f"http://127.0.0.1:{exporter.port}/metrics"

        def overruns() -> dict[str, float]:
            exposition = parse_exposition(http_get(metrics)[1])
            counts = {
                dict(labels)["source"]: value
                for (name, labels), value in exposition.items()
                if name == "smswatch_source_poll_overruns_total"
            }
            return counts if min(counts.values()) >= 5 else {}

        counted = wait_until(overruns, 20, "five overruns of each hung source")
        assert set(counted) == {"sms", "acquirer"}
    finally:
        release.set()
        exporter.stop()

    scheduler_warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("apscheduler") and r.levelno >= logging.WARNING
    ]
    assert scheduler_warnings == []
    overrun_lines = [r for r in caplog.records if r.name == "exporter.overruns"]
    # One line per source for the first overruns; the next comes a minute later at the soonest.
    assert sorted(getattr(r, "source", "") for r in overrun_lines) == ["acquirer", "sms"]
    assert all(getattr(r, "poll_interval_s", None) == 0.1 for r in overrun_lines)

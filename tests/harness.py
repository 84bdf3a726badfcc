"""Shared test harness: free ports, polling with a deadline, scraping, and real processes."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from exporter.collector import POLLER_SERIES, REPLICA_SERIES

T = TypeVar("T")

Series = tuple[str, frozenset[tuple[str, str]]]

#: Series that live in one exporter process only (each restart begins them again, and every
#: replica has its own): never held monotonic across restarts nor compared across replicas.
#: Prefixes of exposition names.
PROCESS_LOCAL: tuple[str, ...] = tuple(sorted(REPLICA_SERIES | POLLER_SERIES))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1
) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the thing may not be up yet
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last_error})")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET a URL; returns (status, body) for any status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def raw_exchange(
    port: int, data: bytes, context: ssl.SSLContext | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """Send `data` as it is (a request head, perhaps without the body it announces) on a new
    connection that stays open, and read one answer: (status, headers lower-cased, body).
    Raises when no answer comes within `timeout` (what a server waiting for more looks like)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if context is not None:
        sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
    with sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def closed_by_peer(sock: socket.socket, wait: float = 0.0) -> bool:
    """Whether the other end closed `sock` (waiting up to `wait` seconds for it to happen)."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return False
    try:
        return sock.recv(1024) == b""
    except (ConnectionError, ssl.SSLError):
        return True
    except (BlockingIOError, ssl.SSLWantReadError, TimeoutError):
        return False


def spy_on_bcrypt(monkeypatch: Any) -> list[bytes]:
    """The hashes `bcrypt.checkpw` is called with from now on (it still checks for real)."""
    import bcrypt

    checked: list[bytes] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    return checked


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET a URL and decode its JSON body."""
    status, body = http_get(url, timeout)
    assert status == 200, f"{url}: HTTP {status}: {body[:200]}"
    return json.loads(body)


def scrape(url: str) -> dict[Series, float]:
    """Scrape a /metrics URL into {(sample name, labels): value}."""
    status, body = http_get(url)
    assert status == 200, f"{url}: HTTP {status}"
    return parse_exposition(body)


def parse_exposition(text: str) -> dict[Series, float]:
    """Parse exposition text into {(sample name, labels): value}."""
    out: dict[Series, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def truth_series(truth: dict[str, Any]) -> dict[Series, float]:
    """The simulator's truth in the same shape as `scrape`."""
    out: dict[Series, float] = {}
    for name, series in truth["metrics"].items():
        for item in series:
            labels = dict(item["labels"])
            if "le" in labels:
                labels["le"] = _le(labels["le"])
            out[(name, frozenset(labels.items()))] = float(item["value"])
    return out


def finished_truth(simulator_url: str) -> dict[str, Any]:
    """The simulator's ground truth, once its traffic is over (`complete`)."""
    truth: dict[str, Any] = wait_until(
        lambda: (t := get_json(f"{simulator_url}/sim/v1/truth"))["complete"] and t,
        120,
        "the simulator to finish its traffic",
        interval=0.5,
    )
    return truth


def _le(text: str) -> str:
    return "+Inf" if text in ("+Inf", "inf") else repr(float(text))


def exported_like(exported: dict[Series, float], names: Sequence[str]) -> dict[Series, float]:
    """The non-zero exported series of the given sample names, `le` normalized."""
    out: dict[Series, float] = {}
    for (name, labels), value in exported.items():
        if name in names and value:
            fixed = frozenset((k, _le(v) if k == "le" else v) for k, v in labels)
            out[(name, fixed)] = value
    return out


def diff(expected: dict[Series, float], actual: dict[Series, float]) -> list[str]:
    """Human-readable differences between two series maps (empty when equal)."""
    lines = []
    for key in sorted(set(expected) | set(actual), key=str):
        if expected.get(key) != actual.get(key):
            name, labels = key
            shown = ",".join(f"{k}={v}" for k, v in sorted(labels))
            lines.append(f"{name}{{{shown}}}: truth={expected.get(key)} exported={actual.get(key)}")
    return lines


def stop_processes(*processes: subprocess.Popen[bytes]) -> None:
    """SIGTERM every process, then wait for each; one still running after 10 s is killed."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Process:
    """A real `smswatch` process, its output captured to a file."""

    def __init__(self, args: Sequence[str], log_path: Path, env: dict[str, str] | None = None):
        self.args = list(args)
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exporter", *self.args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")


class LoopbackServer:
    """A threaded HTTP server on a free 127.0.0.1 port serving `handler` until `close`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def config_with(sms: dict[str, Any] | None = None, acquirer: dict[str, Any] | None = None) -> Any:
    """A validated config whose first SMS and/or acquirer source is replaced (provider tests)."""
    from exporter.config import parse_config, simulator_config_document

    doc = simulator_config_document("http://sim.test")
    if sms is not None:
        doc["sources"][0] = {"name": "sms", "kind": "sms_gateway", "gateway": "bank-sms", **sms}
    if acquirer is not None:
        doc["sources"][1] = {"name": "acquirer", "kind": "acquirer", **acquirer}
    return parse_config(doc, state_path=":memory:", env={"SECRET": "s3cret", "KEY": "k"})


class StateBackend:
    """Where an end-to-end test's exporter keeps its state: a SQLite file in the test's
    directory, or a fresh schema on the session's PostgreSQL server (`dsn`)."""

    def __init__(self, name: str, dsn: str = "") -> None:
        self.name = name
        self.dsn = dsn

    def __repr__(self) -> str:
        return f"StateBackend({self.name})"

    def document(self, directory: Path) -> dict[str, Any]:
        """The config's `state:` section (SQLite: `directory`/state.sqlite)."""
        if self.name == "sqlite":
            return {"path": str(directory / "state.sqlite")}
        return {"backend": "postgresql", "dsn": self.dsn}

    def rows(self, directory: Path, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a query on the state (written for both dialects)."""
        if self.name == "sqlite":
            with sqlite3.connect(directory / "state.sqlite") as db:
                return [tuple(row) for row in db.execute(sql)]
        with psycopg.connect(self.dsn) as db:
            return [tuple(row) for row in db.execute(sql)]

    def dump(self, directory: Path) -> str:
        """Every stored value as text (what the privacy checks search for raw numbers)."""
        if self.name == "sqlite":
            with sqlite3.connect(directory / "state.sqlite") as db:
                return "\n".join(db.iterdump())
        lines: list[str] = []
        with psycopg.connect(self.dsn) as db:
            tables = [
                row[0]
                for row in db.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            ]
            for table in tables:
                lines += [repr(row) for row in db.execute(f'SELECT * FROM "{table}"')]
        return "\n".join(lines)

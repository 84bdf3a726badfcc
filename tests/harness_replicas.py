"""Parts of the replica tests: a front that spreads a provider's pushes over the replicas (as a
load balancer or a Kubernetes Service does), and a watcher that scrapes one replica all along."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from harness import PROCESS_LOCAL, Series, http_get, parse_exposition


class PushFront:
    """An HTTP front on 127.0.0.1 for several push receivers: each request goes to the next
    replica in turn (round robin); one that does not answer 2xx is tried on the next one. When
    none does, the front answers 502 and the provider pushes again later."""

    def __init__(self, timeout: float = 3.0) -> None:
        """A front with no replica behind it yet (`aim`): it answers 502."""
        self.targets: list[str] = []
        self.timeout = timeout
        self.taken: list[int] = []  # acknowledged pushes per replica
        self.refused = 0  # pushes no replica acknowledged
        self._next = 0
        self._lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test prints what matters."""

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer, kind = front.forward(self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The front's base URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def aim(self, targets: list[str]) -> None:
        """Spread from now on over `targets`: the base URLs of the replicas."""
        with self._lock:
            self.targets = list(targets)
            self.taken = [0] * len(targets)
            self._next = 0

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        """POST to the replicas, the next one first; the first 2xx answer, else 502."""
        with self._lock:
            targets, first = self.targets, self._next
            self._next = (self._next + 1) % max(1, len(targets))
        for i in range(len(targets)):
            index = (first + i) % len(targets)
            parts = urlsplit(targets[index])
            conn = http.client.HTTPConnection(
                parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout
            )
            try:
                keep = {k: v for k, v in headers.items() if k.lower() in ("date", "content-type")}
                conn.request("POST", path, body, keep)
                response = conn.getresponse()
                answer = response.read()
                if 200 <= response.status < 300:
                    with self._lock:
                        self.taken[index] += 1
                    return response.status, answer, response.getheader("Content-Type", "")
            except (OSError, http.client.HTTPException):
                pass  # down, paused past the timeout, or cut: the next replica
            finally:
                conn.close()
        with self._lock:
            self.refused += 1
        return 502, b"no replica answered\n", "text/plain"


@dataclass
class Scrape:
    """One successful scrape: when it ended (Unix s) and what it read."""

    at: float
    series: dict[Series, float]


@dataclass
class CounterWatch:
    """Scrapes one replica's /metrics every `interval` seconds in a thread, through its
    deaths and restarts, and notes every counter series that went down between two scrapes
    (what Prometheus would read as a counter reset)."""

    url: str
    interval: float = 0.1
    scrapes: list[Scrape] = field(default_factory=list)
    decreases: list[str] = field(default_factory=list)
    failures: int = 0
    _last: dict[Series, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin scraping."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop scraping (after the scrape under way)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                status, body = http_get(self.url, timeout=2.0)
            except OSError:
                self.failures += 1  # down or paused
                continue
            if status != 200:
                self.failures += 1
                continue
            self.observe(parse_exposition(body))

    def observe(self, series: dict[Series, float]) -> None:
        """Hold one scrape against the previous ones."""
        for key, value in series.items():
            name = key[0]
            if not name.endswith(("_total", "_bucket", "_count", "_sum")):
                continue
            if name.startswith(PROCESS_LOCAL):
                continue
            before = self._last.get(key)
            if before is not None and value < before:
                labels = ",".join(f"{k}={v}" for k, v in sorted(key[1]))
                self.decreases.append(f"{name}{{{labels}}}: {before} -> {value}")
            self._last[key] = max(value, before or value)
        self.scrapes.append(Scrape(time.time(), series))

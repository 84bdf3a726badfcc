"""The demo's webhook receiver: Alertmanager posts its notifications here, and each alert that
fires or resolves becomes one line in the terminal.

Alertmanager resends a group's alerts on every `group_interval` and `repeat_interval`, and a
critical alert reaches two receivers (pager and chat): an alert is printed once per state it
enters (firing, resolved), keyed by its fingerprint and start, however often it arrives.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

log = logging.getLogger(__name__)

#: Labels that say where an alert is, in the order they are printed.
WHERE_LABELS = ("gateway", "acquirer", "carrier", "area", "source")

#: The runbooks' folder in the repository; a `runbook_url` is shown from there on.
RUNBOOKS_PATH = "alerts/runbooks/"


def runbook_path(url: str) -> str:
    """The runbook's path in the repository (`alerts/runbooks/X.md`), else the URL as is."""
    at = url.find(RUNBOOKS_PATH)
    return url[at:] if at >= 0 else url


def format_offset(ms: int) -> str:
    """Simulated time since the simulation's start, as the scenario writes it: +1h05m."""
    minutes, _ = divmod(max(0, ms), 60_000)
    hours, minutes = divmod(minutes, 60)
    return f"+{hours}h{minutes:02d}m" if hours else f"+{minutes}m"


def format_alert(
    alert: Mapping[str, Any], wall_s: float, sim_offset_ms: int | None, *, brief: bool = False
) -> str:
    """One alert of a notification as one line: wall time (and simulated time), state, alert,
    severity, cause, where, summary, runbook. `brief`: a resolved alert whose firing was never
    notified (it fired and resolved between two notifications of its group)."""
    labels: Mapping[str, str] = alert.get("labels") or {}
    annotations: Mapping[str, str] = alert.get("annotations") or {}
    when = datetime.fromtimestamp(wall_s, UTC).strftime("%H:%M:%S")
    if sim_offset_ms is not None:
        when += f" sim {format_offset(sim_offset_ms):>6}"
    state = "RESOLVED" if alert.get("status") == "resolved" else "FIRING"
    where = " ".join(f"{k}={labels[k]}" for k in WHERE_LABELS if labels.get(k))
    parts = [
        when,
        f"{state:8}",
        labels.get("alertname", "?"),
        labels.get("severity", "-"),
        f"cause={labels.get('cause') or '-'}",
    ]
    if where:
        parts.append(where)
    parts.append(f"| {annotations.get('summary', '').strip()}")
    if annotations.get("runbook_url"):
        parts.append(f"| runbook {runbook_path(annotations['runbook_url'])}")
    if brief:
        parts.append("| fired and resolved between two notifications")
    return "  ".join(parts)


class NotificationPrinter:
    """An HTTP server on loopback that takes Alertmanager's webhook notifications and prints
    one line per alert state change to `out`."""

    def __init__(
        self,
        out: TextIO,
        token: str,
        sim_offset_ms: Callable[[], int | None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`token` is the bearer token Alertmanager sends (others get 401); `sim_offset_ms`
        tells the simulated time since the start, printed beside the wall time."""
        self.out = out
        self.token = token
        self.sim_offset_ms = sim_offset_ms
        self.clock = clock
        self.lines: list[str] = []
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL Alertmanager's webhooks post to (a receiver's name may follow)."""
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def take(self, payload: Mapping[str, Any]) -> list[str]:
        """Print the alerts of one webhook payload that entered a state not printed yet;
        return the lines printed."""
        printed = []
        now = self.clock()
        offset = self.sim_offset_ms()
        for alert in payload.get("alerts") or []:
            key = (
                str(alert.get("fingerprint", "")),
                str(alert.get("status", "")),
                str(alert.get("startsAt", "")),
            )
            with self._lock:
                if key in self._seen:
                    continue
                self._seen.add(key)
                brief = key[1] == "resolved" and (key[0], "firing", key[2]) not in self._seen
                line = format_alert(alert, now, offset, brief=brief)
                self.lines.append(line)
                print(line, file=self.out, flush=True)
            printed.append(line)
        return printed

    def start(self) -> None:
        """Listen on a free loopback port and serve in a daemon thread."""
        printer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                given = self.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {printer.token}".encode()):
                    self._answer(401)
                    return
                try:
                    payload = json.loads(body)
                    if not isinstance(payload, dict):
                        raise ValueError("not a JSON object")
                    printer.take(payload)
                except (ValueError, AttributeError, TypeError) as exc:
                    log.warning("bad webhook payload", extra={"error": str(exc)})
                    self._answer(400)
                    return
                self._answer(200)

            def _answer(self, code: int) -> None:
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.1),
            name="demo-receiver",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

"""Real Alertmanager and Prometheus processes, and a webhook receiver, for the alerting tests.

Every process listens on 127.0.0.1 on a free port and is stopped by its context manager; the
shipped alerts/alertmanager.yml is used with its webhook URLs pointed at the test's receiver.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from alert_files import ALERTMANAGER_CONFIG

from harness import free_port, http_get, stop_processes, wait_until


@dataclass
class Notification:
    """One webhook call from Alertmanager."""

    at: float  # time.monotonic() when received
    receiver: str  # the URL path: /oncall-pager, /ticket-queue, ...
    payload: dict[str, Any]
    authorization: str

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.payload["alerts"]
        return alerts


@dataclass
class Webhook:
    """A stdlib HTTP server that records every notification it gets."""

    url: str
    received: list[Notification] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> list[Notification]:
        with self.lock:
            return list(self.received)


@contextmanager
def webhook_server() -> Iterator[Webhook]:
    hook = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            note = Notification(
                time.monotonic(),
                self.path,
                json.loads(body),
                self.headers.get("Authorization", ""),
            )
            with hook.lock:
                hook.received.append(note)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def local_alertmanager_config(
    webhook_url: str, secrets: Path, *, any_time: bool = False
) -> dict[str, Any]:
    """The shipped config, every webhook pointed at the test, timers of a second.

    `any_time` drops the business-hours restriction of warnings (the end-to-end test runs at
    any hour).
    """
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    token = secrets / "relay-token"
    token.write_text("s3cret\n")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook_url}/{receiver['name']}"
            hook["http_config"]["authorization"]["credentials_file"] = str(token)
    for route in [config["route"], *config["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="1s")
        if any_time:
            route.pop("active_time_intervals", None)
    return config


@contextmanager
def _serve(
    name: str,
    binary: str,
    config: dict[str, Any],
    workdir: Path,
    flags: list[str],
    ready_s: int,
    port: int = 0,
) -> Iterator[str]:
    """Start `binary` on a loopback port (`port`, or a free one) with `config` written to
    `workdir/<name>.yml` and its output in `workdir/<name>.log`; yields its base URL once
    `/-/ready` answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / f"{name}.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with open(workdir / f"{name}.log", "wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--web.listen-address=127.0.0.1:{port}",
                *flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            ready = f"{name.capitalize()} ready"
            wait_until(lambda: http_get(f"{url}/-/ready")[0] == 200, ready_s, ready)
            yield url
        finally:
            stop_processes(proc)


@contextmanager
def alertmanager(binary: str, config: dict[str, Any], workdir: Path) -> Iterator[str]:
    """Start Alertmanager (no cluster) with `config`; yields its base URL."""
    flags = [f"--storage.path={workdir / 'data'}", "--cluster.listen-address="]
    with _serve("alertmanager", binary, config, workdir, flags, 20) as url:
        yield url


@contextmanager
def prometheus(
    binary: str,
    rule_dir: Path,
    targets: list[str],
    alertmanager_url: str,
    workdir: Path,
    port: int = 0,
) -> Iterator[str]:
    """Start Prometheus (on `port`, or a free one) scraping `targets` as job smswatch every
    second, with the rules of `rule_dir` evaluated every second and alerts resent every
    second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rule_dir / "*.yaml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager_url.removeprefix("http://")]}]}
            ]
        },
        "scrape_configs": [{"job_name": "smswatch", "static_configs": [{"targets": targets}]}],
    }
    flags = [f"--storage.tsdb.path={workdir / 'data'}", "--rules.alert.resend-delay=1s"]
    with _serve("prometheus", binary, config, workdir, flags, 30, port) as url:
        yield url


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def post_json(url: str, document: Any) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(document).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body.strip() else None

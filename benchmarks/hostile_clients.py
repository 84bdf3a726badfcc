"""Hostile clients benchmark (run by hand, not a test): `python benchmarks/hostile_clients.py`.

Starts a real `smswatch run` with TLS and basic auth (web config with a bcrypt cost-12 user), and
measures what a Prometheus scrape (a new TLS connection each time, as Prometheus does after an
idle close) costs:
1. scrape_ms: median and p99 of `GET /metrics` with nobody else connected;
2. scrape_ms_under_attack: the same while `--idle` clients hold TCP connections without ever
   saying hello and `--slow` TLS clients keep sending request heads that never end, all opened
   before and re-opened during the scrapes; `failed_scrapes` counts scrapes that got no 200.
3. refusal_ms: median time of a refused basic-auth check (in process, no back-off) for an
   unknown user and for a known user with a wrong password: they should be the same.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.config import simulator_config_document  # noqa: E402
from exporter.web.basic_auth import BasicAuthUsers  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(url: str, context: ssl.SSLContext, auth: str) -> tuple[bool, float]:
    started = time.perf_counter()
    request = urllib.request.Request(url, headers={"Authorization": auth})
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as response:
            ok = response.status == 200 and b"smswatch_build_info" in response.read()
    except (urllib.error.URLError, OSError):
        ok = False
    return ok, (time.perf_counter() - started) * 1000


def scrapes(url: str, context: ssl.SSLContext, auth: str, n: int) -> tuple[list[float], int]:
    times, failed = [], 0
    for _ in range(n):
        ok, ms = scrape(url, context, auth)
        times.append(ms)
        failed += not ok
    return times, failed


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median": round(statistics.median(ordered), 1),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
    }


class Attack:
    """Idle TCP clients and slow TLS heads, re-opened as the server closes them."""

    def __init__(self, port: int, context: ssl.SSLContext, idle: int, slow: int) -> None:
        self.port, self.context, self.idle, self.slow = port, context, idle, slow
        self.stop = threading.Event()
        self.opened = 0

    def _idle(self) -> None:
        while not self.stop.is_set():
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock,
            ):
                self.opened += 1
                sock.recv(1)  # returns when the server closes it
            self.stop.wait(0.05)

    def _slow(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(OSError):
                raw = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                with self.context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                    self.opened += 1
                    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    while not self.stop.wait(1.0):
                        sock.sendall(b"X-a: b\r\n")  # a byte now and then
            self.stop.wait(0.05)

    def start(self) -> None:
        for target, count in ((self._idle, self.idle), (self._slow, self.slow)):
            for _ in range(count):
                threading.Thread(target=target, daemon=True).start()


def refusal_ms(rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        web = Path(tmp) / "web.yml"
        hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=12)).decode()
        web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
        users = BasicAuthUsers(str(web))
        out = {}
        for name, user in (("unknown_user", "nobody"), ("wrong_password", "prometheus")):
            header = "Basic " + base64.b64encode(f"{user}:guess".encode()).decode()
            users.check(header)  # the first makes the dummy hash
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                assert users.check(header) is None
                times.append((time.perf_counter() - started) * 1000)
            out[name] = round(statistics.median(times), 1)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=100, help="idle TCP clients")
    parser.add_argument("--slow", type=int, default=100, help="slow TLS head clients")
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cert, key = tmp / "server.crt", tmp / "server.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        hashed = bcrypt.hashpw(b"scrape-pw", bcrypt.gensalt(rounds=12)).decode()
        web = tmp / "web.yml"
        web.write_text(
            yaml.safe_dump(
                {
                    "tls_server_config": {"cert_file": cert.name, "key_file": key.name},
                    "basic_auth_users": {"prometheus": hashed},
                }
            )
        )
        doc = simulator_config_document("http://127.0.0.1:9", "1h")
        doc["state"]["path"] = str(tmp / "state.sqlite")
        config = tmp / "smswatch.yaml"
        config.write_text(yaml.safe_dump(doc))
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "run", "--config.file", str(config),
             "--web.config.file", str(web), "--web.listen-address", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            context = ssl.create_default_context(cafile=str(cert))
            auth = "Basic " + base64.b64encode(b"prometheus:scrape-pw").decode()
            url = f"https://127.0.0.1:{port}/metrics"
            deadline = time.monotonic() + 30
            while not scrape(url, context, auth)[0]:
                if time.monotonic() > deadline:
                    raise SystemExit("the exporter did not start")
                time.sleep(0.2)
            quiet, quiet_failed = scrapes(url, context, auth, args.scrapes)
            attack = Attack(port, context, args.idle, args.slow)
            attack.start()
            time.sleep(2)  # let the attackers connect
            loud, loud_failed = scrapes(url, context, auth, args.scrapes)
            attack.stop.set()
        finally:
            process.terminate()
            process.wait(timeout=30)

    result = {
        "scrape_ms": summary(quiet),
        "scrape_ms_under_attack": summary(loud),
        "failed_scrapes": quiet_failed + loud_failed,
        "attack_connections_opened": attack.opened,
        "refusal_ms": refusal_ms(10),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

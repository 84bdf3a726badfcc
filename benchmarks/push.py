"""Push receiver benchmark (run by hand, not a test): `python benchmarks/push.py`.

A real exporter (its HTTP server, receivers, pipeline and SQLite state at synchronous=FULL, as
shipped) takes delivery reports the way providers push them: many connections posting at once
(`--connections`, spread over `--client-processes` processes), each waiting for its
acknowledgement and posting the same push again when the answer is not 2xx. Per provider shape
(Alibaba and Tencent: 50 reports a push; Vonage, Jasmin, Kannel: one report a request) it prints
reports/s, the acknowledgement latency (median, p99), retries, and the durable transactions the
exporter committed: how many, requests per transaction, their latency (median, p99).

The exporter runs in this process, pinned to the first core; the clients on the second.
Requests are rendered once before timing, and the clients read answers with plain sockets, so
the figure is the exporter's. `--fresh-connections` opens a connection per request (as a
provider without keep-alive does). `--py-spy FILE` records the exporter with py-spy
(`pip install py-spy`) while the providers post; `--rounds N` repeats each provider N times,
interleaved, and prints the median. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.config import parse_config, simulator_config_document  # noqa: E402

SECRET = "bench-secret"

PROVIDERS = ("aliyun", "tencent", "vonage", "jasmin", "kannel")
#: Reports per push: Alibaba and Tencent push JSON arrays, the others one report a request.
BATCH = {"aliyun": 50, "tencent": 50, "vonage": 1, "jasmin": 1, "kannel": 1}


def push_request(provider: str, base: str, n: int) -> urllib.request.Request:
    """Push number `n` of a provider, as it sends it (each report a new message)."""
    batch = BATCH[provider]
    if provider == "aliyun":
        body = [
            {
                "phone_number": "13800000000", "send_time": "2026-11-26 12:00:00",
                "report_time": "2026-11-26 12:00:03", "success": True,
                "err_code": "DELIVERED", "biz_id": f"b{n}-{i}", "out_id": f"r{n}-{i}",
            }
            for i in range(batch)
        ]  # fmt: skip
        return urllib.request.Request(
            base, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
    if provider == "tencent":
        body = [
            {
                "user_receive_time": "2026-11-26 12:00:03", "nationcode": "86",
                "mobile": "13800000000", "report_status": "SUCCESS", "errmsg": "DELIVRD",
                "description": "ok", "sid": f"s{n}-{i}",
            }
            for i in range(batch)
        ]  # fmt: skip
        return urllib.request.Request(
            base, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
    if provider == "vonage":
        dlr = {
            "msisdn": "8613800000000", "to": "BANKX", "messageId": f"v{n}",
            "status": "delivered", "err-code": "0", "client-ref": f"r{n}",
            "message-timestamp": "2026-11-26 12:00:05",
        }  # fmt: skip
        return urllib.request.Request(
            base, json.dumps(dlr).encode(), {"Content-Type": "application/json"}
        )
    if provider == "jasmin":
        fields = {
            "id": f"j{n}", "id_smsc": "0A000001", "message_status": "DELIVRD", "level": "2",
            "subdate": "2611261200", "donedate": "2611261201", "sub": "001", "dlvrd": "001",
            "err": "000", "text": "",
        }  # fmt: skip
        return urllib.request.Request(
            base + f"&ref=r{n}",
            urlencode(fields).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
    receipt = (
        "id:0A1B sub:001 dlvrd:001 submit date:2611261200 done date:2611261201 "
        "stat:DELIVRD err:000 text:x"
    )
    query = urlencode({"type": "1", "reply": receipt, "msg": f"k{n}", "ref": f"r{n}"})
    return urllib.request.Request(f"{base}&{query}")


def pin(core: int) -> None:
    """Pin this process to one core when the machine has more than one."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1:
        os.sched_setaffinity(0, {cores[core % len(cores)]})


def render(provider: str, n: int) -> bytes:
    """Push number `n` of a provider (as `push_request` builds it) as raw HTTP/1.1."""
    request = push_request(provider, f"http://127.0.0.1/push/{provider}?secret={SECRET}", n)
    body = request.data if isinstance(request.data, bytes) else b""
    head = f"{request.get_method()} {request.selector} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for name, value in request.header_items():
        head += f"{name}: {value}\r\n"
    if request.get_method() == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


class Connection:
    """One provider connection: sends a request, reads the answer (status, keep-alive)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def exchange(self, request: bytes) -> int:
        """Send one request, return the answer's status (0: the connection broke)."""
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        try:
            self.sock.sendall(request)
            while b"\r\n\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                self.buffer += chunk
        except OSError:
            self.close()
            return 0
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.lower().split(b":", 1) for line in lines[1:])
        length = int(headers.get(b"content-length", b"0"))
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        self.buffer = rest[length:]
        if headers.get(b"connection", b"").strip() == b"close":
            self.close()
        return status

    def close(self) -> None:
        """Close the socket (the next request opens a new one)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _post(port: int, requests: list[bytes], fresh: bool, out: list[Any]) -> None:
    """One connection posting its pushes one after the other, retrying non-2xx answers."""
    connection = Connection(port)
    timings, retries = [], 0
    for request in requests:
        started = time.perf_counter()
        while True:
            status = connection.exchange(request)
            if 200 <= status < 300:
                break
            retries += 1
            if status:
                time.sleep(0.01)  # a provider waits before it retries
        timings.append((time.perf_counter() - started) * 1000)
        if fresh:
            connection.close()
    connection.close()
    out.append((timings, retries))


def client(port: int, shares: list[list[bytes]], fresh: bool) -> tuple[list[float], int]:
    """A provider's process: one thread per connection; (ack times in ms, retries)."""
    pin(1)
    out: list[Any] = []
    threads = [threading.Thread(target=_post, args=(port, s, fresh, out)) for s in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [t for timings, _ in out for t in timings], sum(r for _, r in out)


class Profiles:
    """cProfile (CPU time) of every request the exporter serves, from reading its head to
    writing the answer (one profiler per connection thread)."""

    def __init__(self, web: Any) -> None:
        self.profiles: list[cProfile.Profile] = []
        local = threading.local()
        handler = web._httpd.RequestHandlerClass
        serve = handler.handle_one_request

        def profiled(connection: Any) -> None:
            profile = getattr(local, "profile", None)
            if profile is None:
                profile = local.profile = cProfile.Profile(time.thread_time)
                self.profiles.append(profile)
            profile.enable()
            try:
                serve(connection)
            finally:
                profile.disable()

        handler.handle_one_request = profiled

    def save(self, path: str) -> None:
        """Write the merged profile and print its top lines."""
        stats = pstats.Stats(*self.profiles)
        stats.dump_stats(path)
        stats.sort_stats("cumulative").print_stats(60)


class Transactions:
    """Times every store transaction of the exporter (the durable push commits)."""

    def __init__(self, store: Any) -> None:
        self.durations_ms: list[float] = []
        original = store.transaction

        @contextmanager
        def timed() -> Iterator[Any]:
            with original() as inner:
                started = time.perf_counter()
                yield inner
            self.durations_ms.append((time.perf_counter() - started) * 1000)

        store.transaction = timed


def quantile(values: list[float], q: float) -> float:
    """The q-quantile of values (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * q) - 1)] if ordered else float("nan")


def run_provider(
    pool: Any,
    port: int,
    provider: str,
    first: int,
    reports: int,
    connections: int,
    processes: int,
    fresh: bool,
    transactions: Transactions,
) -> dict[str, float]:
    """Post `reports` reports of one provider shape; its figures."""
    pushes = max(connections, reports // BATCH[provider])
    rendered = [render(provider, n) for n in range(first, first + pushes)]
    shares = [rendered[i::connections] for i in range(connections)]
    per_process = [shares[p::processes] for p in range(processes)]
    transactions.durations_ms.clear()
    started, cpu = time.perf_counter(), time.process_time()
    results = pool.starmap(client, [(port, s, fresh) for s in per_process])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    acks = [t for timings, _ in results for t in timings]
    commits = list(transactions.durations_ms)
    return {
        "reports_per_s": round(pushes * BATCH[provider] / elapsed),
        "requests_per_s": round(pushes / elapsed),
        "ack_ms_median": round(statistics.median(acks), 2),
        "ack_ms_p99": round(quantile(acks, 0.99), 2),
        "retries": sum(r for _, r in results),
        "exporter_cores": round(cpu / elapsed, 2),
        "exporter_cpu_us_per_report": round(cpu * 1e6 / (pushes * BATCH[provider])),
        "transactions": len(commits),
        "requests_per_transaction": round(pushes / max(1, len(commits)), 1),
        "commit_ms_median": round(statistics.median(commits), 2) if commits else float("nan"),
        "commit_ms_p99": round(quantile(commits, 0.99), 2),
    }


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", default=",".join(PROVIDERS))
    parser.add_argument("--reports", type=int, default=20_000, help="per provider and round")
    parser.add_argument("--connections", type=int, default=32, help="posting at once")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--fresh-connections", action="store_true")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--py-spy", default="", help="record the exporter to this file")
    parser.add_argument("--profile", default="", help="cProfile the requests to this file")
    args = parser.parse_args()
    providers = [p for p in args.providers.split(",") if p]

    from exporter.app import Exporter

    pin(0)
    with tempfile.TemporaryDirectory() as tmp:
        doc = simulator_config_document("http://127.0.0.1:9")
        doc["state"]["path"] = str(Path(tmp) / "push.sqlite")
        push = {"secret": "${PUSH_SECRET}", "lag": "30s", "max_body": 1_048_576}
        doc["sources"] = [
            {"name": p, "kind": "sms_gateway", "provider": p, "pull": False, "push": push}
            for p in PROVIDERS
        ] + [doc["sources"][1]]
        exporter = Exporter(parse_config(doc, env={"PUSH_SECRET": SECRET}), "127.0.0.1", 0)
        transactions = Transactions(exporter.store)
        profiles = Profiles(exporter.web) if args.profile else None
        exporter.web.start()
        spy = None
        figures: dict[str, list[dict[str, float]]] = {p: [] for p in providers}
        context = multiprocessing.get_context("spawn")
        try:
            with context.Pool(args.client_processes) as pool:
                pool.starmap(pin, [(1,)] * args.client_processes)  # started before timing
                if args.py_spy:
                    spy = subprocess.Popen(
                        [
                            *("py-spy", "record", "-p", str(os.getpid()), "-o", args.py_spy),
                            *("--format", "raw" if args.py_spy.endswith(".txt") else "flamegraph"),
                        ],
                        stdout=subprocess.DEVNULL,
                    )
                    time.sleep(1)
                for round_ in range(args.rounds):
                    for provider in providers:
                        result = run_provider(
                            pool,
                            exporter.port,
                            provider,
                            round_ * 10_000_000,
                            args.reports,
                            args.connections,
                            args.client_processes,
                            args.fresh_connections,
                            transactions,
                        )
                        figures[provider].append(result)
                        print(f"push {provider} round {round_ + 1}: {result}", flush=True)
        finally:
            if spy is not None:
                spy.send_signal(2)
                spy.wait(timeout=120)
            exporter.web.stop()
            exporter.store.close()
            if profiles is not None:
                profiles.save(args.profile)
    summary = {
        p: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for p, runs in figures.items()
        if runs
    }
    print(
        json.dumps(
            {
                "connections": args.connections,
                "fresh_connections": args.fresh_connections,
                "rounds": args.rounds,
                "median": summary,
            }
        )
    )


if __name__ == "__main__":
    main()

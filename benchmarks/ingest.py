"""Ingest benchmark (run by hand, not a test): `python benchmarks/ingest.py [--rate 150]`.

Measures, with the exporter pinned to one core and the simulator on another:
1. records_per_second: the whole path for SMS status records — HTTP page from a real simulator
   process → parse → dedup → classify → reconcile → commit to SQLite — draining the feed of an
   hour of simulated traffic (the acquirer feed is drained first, so receipts get linked).
2. rss_mb_with_1m_pending: resident memory of an exporter process holding 1,000,000 receipts
   awaiting their SMS (committed through the same pipeline, in pages of 5,000).
3. scrape_ms: median and p99 time of `GET /metrics` over HTTP with that state.

Targets: ≥ 30,000 records/s, ≤ 250 MB, ≤ 50 ms. The last line printed is one JSON object.

`--push N` measures instead what durable push commits cost: N Alibaba SmsReport pushes over
HTTP to a real receiver, one client posting one after the other (each waits for its
acknowledgement, as a provider does), with the push commit at synchronous=FULL (as shipped)
and at NORMAL (for comparison), for batches of 1 and of 50 reports. It prints pushes/s,
reports/s and the acknowledgement latency (median, p99) of each; then the same comparison for
pulled pages of 1,000 events (N / 20 pages), which stay at NORMAL since a feed can be re-read.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.config import parse_config, simulator_config_document  # noqa: E402
from exporter.poller import Pipeline, Poller  # noqa: E402
from exporter.records import Page, SmsEvent, Transaction  # noqa: E402
from exporter.store import Store  # noqa: E402

START = "2026-11-26T00:00:00Z"


def pin(pid: int, core: int) -> None:
    """Pin a process to one core when the machine has more than one."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1:
        os.sched_setaffinity(pid, {cores[core % len(cores)]})


def rss_mb() -> float:
    """Current resident set size of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return dict(json.load(response))


def throughput(rate: float, workdir: Path) -> dict[str, float]:
    """Drain an hour of simulated traffic through the whole path; records per second."""
    port = free_port()
    sim = subprocess.Popen(
        [
            sys.executable, "-m", "exporter", "simulate",
            "--web.listen-address", f"127.0.0.1:{port}",
            "--speed", "1000000", "--start", START, "--traffic-for", "1h",
            "--rate", str(rate), "--scenario", "none", "--seed", "1",
            "--log.level", "warning",
        ],
        cwd=ROOT,
    )  # fmt: skip
    try:
        pin(sim.pid, 1)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if get_json(f"{url}/sim/v1/truth")["complete"]:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        doc = simulator_config_document(url)
        for source in doc["sources"]:
            source.update({"page_size": 5000, "max_pages": 100000, "deadline": "1h"})
        config = parse_config(doc, state_path=str(workdir / "throughput.sqlite"))
        store = Store(config.state_path)
        pipeline = Pipeline(config, store)
        import threading

        stop = threading.Event()
        sms, acquirer = (Poller(s, pipeline, stop) for s in config.sources)
        started = time.perf_counter()
        acquirer.poll()
        txn_seconds = time.perf_counter() - started
        started = time.perf_counter()
        sms.poll()
        sms_seconds = time.perf_counter() - started
        assert sms.health.up and acquirer.health.up, "a poll failed"
        return {
            "status_records": sms.health.last_records,
            "records_per_second": round(sms.health.last_records / sms_seconds),
            "transactions": acquirer.health.last_records,
            "transactions_per_second": round(acquirer.health.last_records / txn_seconds),
        }
    finally:
        sim.terminate()
        sim.wait()


def pending_child(workdir: str, count: int) -> None:
    """In a fresh process: commit `count` receipts that await their SMS, report RSS and scrape."""
    from exporter.app import Exporter

    doc = simulator_config_document("http://127.0.0.1:9")
    config = parse_config(doc, state_path=str(Path(workdir) / "pending.sqlite"))
    exporter = Exporter(config, "127.0.0.1", 0)
    pipeline, source = exporter.pipeline, config.sources[1]
    base_ms = 1_800_000_000_000
    page_size = 5000
    for start in range(0, count, page_size):
        txns = [
            Transaction(
                txn_id=f"t{i:09d}", rrn=f"6{i:011d}", terminal_id=f"T{i % 3000:07d}",
                merchant_id=f"M{i % 500:06d}", acquirer=("acq-north", "acq-south")[i % 2],
                amount=1000 + i % 9000, currency="CNY", pan="62258800****1234",
                result="approved", response_code="00", txn_ms=base_ms + i * 10,
                sms_expected=True, original_txn_id="",
            )
            for i in range(start, min(count, start + page_size))
        ]  # fmt: skip
        pipeline.commit_transactions(source, Page(txns, 0, str(start), True, base_ms))
    exporter.web.start()
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    timings = []
    body = b""
    for _ in range(50):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
        timings.append((time.perf_counter() - started) * 1000)
    awaiting = sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.decode().splitlines()
        if line.startswith("smswatch_receipts_awaiting_sms{")
    )
    print(
        json.dumps(
            {
                "awaiting": awaiting,
                "rss_mb": round(rss_mb(), 1),
                "scrape_ms_median": round(statistics.median(timings), 2),
                "scrape_ms_p99": round(sorted(timings)[int(len(timings) * 0.99) - 1], 2),
                "state_mb": round(Path(config.state_path).stat().st_size / 1e6, 1),
            }
        )
    )
    exporter.web.stop()


def push_cost(count: int, workdir: Path) -> dict[str, dict[str, float]]:
    """Pushes/s and ack latency of the push receiver, durable (FULL) against NORMAL commits."""
    from contextlib import nullcontext

    from exporter.app import Exporter

    results: dict[str, dict[str, float]] = {}
    for mode in ("full", "normal"):
        for batch in (1, 50):
            doc = simulator_config_document("http://127.0.0.1:9")
            doc["state"]["path"] = str(workdir / f"push-{mode}-{batch}.sqlite")
            push = {"secret": "${PUSH_SECRET}", "lag": "30s", "max_body": 1_048_576}
            doc["sources"] = [
                {"name": "aliyun", "kind": "sms_gateway", "provider": "aliyun", "pull": False}
                | {"push": push},
                doc["sources"][1],
            ]
            exporter = Exporter(parse_config(doc, env={"PUSH_SECRET": "bench-secret"}), "", 0)
            if mode == "normal":
                exporter.store.durable = nullcontext  # type: ignore[method-assign,assignment]
            exporter.web.start()
            url = f"http://127.0.0.1:{exporter.port}/push/aliyun?secret=bench-secret"
            timings: list[float] = []
            started = time.perf_counter()
            for n in range(count):
                reports = [
                    {
                        "phone_number": "13800000000",
                        "send_time": "2026-11-26 12:00:00",
                        "report_time": "2026-11-26 12:00:03",
                        "success": True,
                        "err_code": "DELIVERED",
                        "biz_id": f"b{n}-{i}",
                        "out_id": f"r{n}-{i}",
                    }
                    for i in range(batch)
                ]
                request = urllib.request.Request(
                    url,
                    data=json.dumps(reports).encode(),
                    headers={"Content-Type": "application/json"},
                    method="POST",
                )
                t0 = time.perf_counter()
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                timings.append((time.perf_counter() - t0) * 1000)
            elapsed = time.perf_counter() - started
            exporter.web.stop()
            exporter.store.close()
            timings.sort()
            results[f"{mode}_batch{batch}"] = {
                "pushes_per_s": round(count / elapsed, 1),
                "reports_per_s": round(count * batch / elapsed, 1),
                "ack_ms_median": round(statistics.median(timings), 2),
                "ack_ms_p99": round(timings[int(len(timings) * 0.99) - 1], 2),
            }
            print(f"{mode} batch {batch}: {results[f'{mode}_batch{batch}']}", flush=True)
    return results


def page_commit_cost(pages: int, workdir: Path) -> dict[str, dict[str, float]]:
    """Pulled pages of 1,000 SMS events committed at NORMAL (as shipped) against FULL: what
    making re-readable feeds durable too would cost."""
    from contextlib import nullcontext

    results: dict[str, dict[str, float]] = {}
    for mode in ("normal", "full"):
        doc = simulator_config_document("http://127.0.0.1:9")
        config = parse_config(doc, state_path=str(workdir / f"pages-{mode}.sqlite"))
        store = Store(config.state_path)
        pipeline = Pipeline(config, store)
        source = config.sources[0]
        base_ms = 1_764_144_000_000
        started = time.perf_counter()
        for n in range(pages):
            events = [
                SmsEvent(
                    f"m{n}-{i}",
                    f"r{n}-{i}",
                    "138****0000",
                    "china-mobile",
                    "east",
                    "delivered",
                    "",
                    base_ms + n * 1000 + i,
                    base_ms + n * 1000 + i + 500,
                )
                for i in range(1000)
            ]
            page = Page(events, 0, f"c{n}", True, base_ms + n * 1000)
            with store.durable() if mode == "full" else nullcontext():
                pipeline.commit_sms(source, page)
        elapsed = time.perf_counter() - started
        store.close()
        results[f"pages_{mode}"] = {
            "records_per_s": round(pages * 1000 / elapsed),
            "ms_per_page": round(elapsed / pages * 1000, 2),
        }
        print(f"pages {mode}: {results[f'pages_{mode}']}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=150.0, help="simulated peak tx/s")
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--child", default="")
    parser.add_argument("--push", type=int, default=0, help="measure N durable pushes instead")
    args = parser.parse_args()
    if args.push:
        with tempfile.TemporaryDirectory(prefix="smswatch-bench-") as tmp:
            result = push_cost(args.push, Path(tmp))
            result.update(page_commit_cost(max(20, args.push // 20), Path(tmp)))
            print(json.dumps(result))
        return
    if args.child:
        pin(0, 0)
        pending_child(args.child, args.pending)
        return
    pin(0, 0)
    with tempfile.TemporaryDirectory(prefix="smswatch-bench-") as tmp:
        workdir = Path(tmp)
        result: dict[str, object] = dict(throughput(args.rate, workdir))
        print(f"throughput: {result}", flush=True)
        child = subprocess.run(
            [sys.executable, __file__, "--child", tmp, "--pending", str(args.pending)],
            capture_output=True,
            text=True,
            check=True,
        )
        pending = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"pending: {pending}", flush=True)
    result.update(
        {
            "rss_mb_with_1m_pending": pending["rss_mb"],
            "scrape_ms": pending["scrape_ms_median"],
            "scrape_ms_p99": pending["scrape_ms_p99"],
            "pending_receipts": pending["awaiting"],
            "state_mb_with_1m_pending": pending["state_mb"],
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

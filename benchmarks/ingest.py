"""Ingest benchmark (run by hand, not a test): `python benchmarks/ingest.py`.

Measures, with the exporter pinned to one core and the page server on another:
1. records_per_second: the whole path for SMS status records — HTTP page → parse → dedup →
   classify → reconcile → commit to SQLite — draining the feed of an hour of simulated traffic
   (`--rate` at the peak; the acquirer feed is drained first, so receipts get linked). The
   simulator renders the pages once (cached under `--cache`); a trivial server then serves
   them as they are, so the figure is the exporter's, not the simulator's. Beside it, measured
   in the same run on the same core: the bare parse rate of the same pages with the JSON
   library the exporter uses, and the ratio of the two; and SQLite's own CPU seconds within
   the path (`database_seconds`), with the rate they alone allow (`records_per_database_second`:
   the ceiling if our Python took no time).
2. catch_up_s: how long the exporter takes to reach the present after a one-hour outage at
   5,000 transactions per second (`--catchup-rate`). A slice of that traffic
   (`--catchup-slice`, 2 simulated minutes at the daily peak) is rendered and ingested through
   the whole path (both feeds); its records per transaction give the backlog of the hour and
   the live arrival rate, its records per second the ingest rate: catching up takes
   backlog / (ingest rate − arrival rate).
3. rss_mb_with_1m_pending: resident memory of an exporter process holding 1,000,000 receipts
   awaiting their SMS (committed through the same pipeline, in pages of 5,000).
4. scrape_ms: median and p99 time of `GET /metrics` over HTTP with that state.
5. push_reports_per_s: each push receiver's durable reports per second over HTTP, and the
   exporter's CPU per report, measured by `benchmarks/push.py` (`--push-clients` connections).

Targets: ≥ 100,000 records/s, ≤ 250 MB, ≤ 50 ms, ≥ 5,000 reports/s. The last line printed is
one JSON object.
`--upstream-ms` makes the page server take that long per page, as a real upstream does (the
simulator takes about 60 ms for a page of 5,000): the poller reads the next page while one
commits, so this latency hides behind the commits. `--cores 2` lets the exporter's threads
use both cores instead of one.
`--profile FILE` keeps a cProfile of the SMS drain (and prints its top lines).

`--backend postgresql` compares the state backends instead: the same slice of traffic
(`--backend-rate` transactions/s at the peak for `--backend-slice`, pages of
`--backend-page-size`) drained through the whole path into SQLite and into PostgreSQL, the
runs interleaved (`--repeat` times each; medians), printing records per second, records per
CPU second (the exporter's, plus the throwaway server's processes for PostgreSQL: the figure a
loaded machine disturbs least) and the page commit latency (each page's transaction, BEGIN to
COMMIT returned: median and p95) of both.
PostgreSQL is `--dsn` (a fresh schema in it per run, dropped after), or when none is given a
throwaway server (Debian's binaries, as an unprivileged user on a free loopback port, fsync
on as shipped). `--profile FILE` then keeps a cProfile of the first PostgreSQL run.

`--push N` measures instead what durable push commits cost: N Alibaba SmsReport pushes over
HTTP to a real receiver, one client posting one after the other (each waits for its
acknowledgement, as a provider does), with the push commit at synchronous=FULL (as shipped)
and at NORMAL (for comparison), for batches of 1 and of 50 reports. It prints pushes/s,
reports/s and the acknowledgement latency (median, p99) of each; then the same comparison for
pulled pages of 1,000 events (N / 20 pages), which stay at NORMAL since a feed can be re-read.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import multiprocessing
import os
import pickle
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.config import parse_config, simulator_config_document  # noqa: E402
from exporter.poller import Pipeline, Poller  # noqa: E402
from exporter.records import Page, SmsEvent, Transaction  # noqa: E402
from exporter.sources import client as source_client  # noqa: E402
from exporter.store import Store, open_store  # noqa: E402

START = "2026-11-26T00:00:00Z"
PEAK_START = "2026-11-26T04:00:00Z"  # 12:00 in Beijing: the diurnal curve's peak
FEEDS = ("/acquirer/v1/terminals", "/acquirer/v1/transactions", "/sms/v1/messages")
ITEMS = {"/acquirer/v1/terminals": "terminals", "/acquirer/v1/transactions": "transactions"}
PAGE_SIZE = 5000

Pages = dict[tuple[str, str], bytes]


def pin(pid: int, core: int) -> None:
    """Pin a process to one core when the machine has more than one."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1:
        os.sched_setaffinity(pid, {cores[core % len(cores)]})


def pin_exporter(cores: int) -> None:
    """Pin this process (the exporter) to the first core, unless it may use more."""
    if cores == 1:
        pin(0, 0)


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
    with urllib.request.urlopen(url, timeout=600) as response:
        return dict(json.load(response))


def capture(
    rate: float, duration: str, start: str, cache: Path, page_size: int = PAGE_SIZE
) -> Pages:
    """Every page of the simulator's feeds for `duration` of traffic at `rate`, rendered once
    by a real simulator process and kept in `cache` for the next runs."""
    key = hashlib.sha256(f"{rate}|{duration}|{start}|1|{page_size}".encode()).hexdigest()[:16]
    path = cache / f"pages-{key}.pickle"
    if path.exists():
        pages: Pages = pickle.loads(path.read_bytes())
        return pages
    port = free_port()
    sim = subprocess.Popen(
        [
            sys.executable, "-m", "exporter", "simulate",
            "--web.listen-address", f"127.0.0.1:{port}",
            "--speed", "1000000", "--start", start, "--traffic-for", duration,
            "--rate", str(rate), "--scenario", "none", "--seed", "1",
            "--log.level", "warning",
        ],
        cwd=ROOT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            try:
                if get_json(f"{url}/sim/v1/truth")["complete"]:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        pages = {}
        for feed in FEEDS:
            cursor = ""
            while True:
                query = f"?limit={page_size}" + (f"&cursor={cursor}" if cursor else "")
                with urllib.request.urlopen(f"{url}{feed}{query}", timeout=600) as response:
                    body = response.read()
                pages[(feed, cursor)] = body
                doc = json.loads(body)
                if not doc["has_more"]:
                    break
                cursor = doc["next_cursor"]
    finally:
        sim.terminate()
        sim.wait()
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(pages))
    return pages


def items_of(pages: Pages, feed: str) -> list[bytes]:
    """The page bodies of one feed, in feed order."""
    return [body for (path, _), body in pages.items() if path == feed]


class _PageHandler(BaseHTTPRequestHandler):
    """Answers a feed request with its pre-rendered page, nothing else."""

    protocol_version = "HTTP/1.1"
    pages: ClassVar[Pages] = {}
    #: How long the upstream takes to produce a page (`--upstream-ms`), slept before answering.
    latency_s: ClassVar[float] = 0.0

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        cursor = parse_qs(parts.query).get("cursor", [""])[-1]
        body = self.pages.get((parts.path, cursor))
        if body is None:
            self.send_error(404)
            return
        if self.latency_s:
            time.sleep(self.latency_s)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(pages: Pages, ready: multiprocessing.connection.Connection) -> None:
    pin(0, 1)
    _PageHandler.pages = pages
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    ready.send(server.server_address[1])
    server.serve_forever()


def serve_pages(pages: Pages) -> tuple[multiprocessing.Process, str]:
    """A page server in its own process (on the other core); returns it and its URL."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_serve, args=(pages, send), daemon=True)
    process.start()
    port = receive.recv()
    return process, f"http://127.0.0.1:{port}"


def parse_rate(bodies: list[bytes]) -> tuple[float, float]:
    """Records per second (wall, CPU) that the exporter's JSON library decodes from these page
    bodies (best of three), nothing else done with them."""
    decode = getattr(source_client, "decode_json", json.loads)  # older trees: the stdlib's
    records = sum(len(decode(b)["messages"]) for b in bodies)
    best = best_cpu = float("inf")
    for _ in range(3):
        started, cpu = time.perf_counter(), time.process_time()
        for body in bodies:
            decode(body)
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return records / best, records / best_cpu


def timed(
    transaction: Callable[[], AbstractContextManager[Store]], into: list[float]
) -> Callable[[], AbstractContextManager[Store]]:
    """`Store.transaction` that appends each transaction's milliseconds to `into`."""

    @contextmanager
    def timing() -> Iterator[Store]:
        started = time.perf_counter()
        with transaction() as store:
            yield store
        into.append((time.perf_counter() - started) * 1000)

    return timing


class _TimedCursor:
    """A cursor whose fetching counts into its connection's database seconds."""

    def __init__(self, cursor: sqlite3.Cursor, owner: DatabaseClock) -> None:
        self._cursor, self._owner = cursor, owner

    def fetchall(self) -> list[Any]:
        with self._owner.timing():
            return self._cursor.fetchall()

    def fetchone(self) -> Any:
        with self._owner.timing():
            return self._cursor.fetchone()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class DatabaseClock:
    """Stands in for the store's SQLite connection and adds up the CPU seconds spent inside
    the database library (statements, fetches, commits), on the calling thread's clock (a
    wait for the interpreter lock is not the database's): what the path would cost if our
    own Python took no time at all."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.__dict__.update(_db=db, seconds=0.0)

    @contextmanager
    def timing(self) -> Iterator[None]:
        started = time.thread_time()
        try:
            yield
        finally:
            self.__dict__["seconds"] += time.thread_time() - started

    def execute(self, sql: str, *args: Any) -> _TimedCursor:
        with self.timing():
            return _TimedCursor(self._db.execute(sql, *args), self)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        rows = list(rows)  # the rows are ours to build, not the database's
        with self.timing():
            return self._db.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._db, name, value)


def ingest(
    pages: Pages,
    workdir: Path,
    name: str,
    profile: str = "",
    page_size: int = PAGE_SIZE,
    dsn: str = "",
    commits: list[float] | None = None,
    server_cpu: Callable[[], float] = lambda: 0.0,
) -> dict[str, float]:
    """Drain the pages through the whole path: the acquirer's feeds first, then the SMS feed;
    records and seconds of each. `dsn`: the state on PostgreSQL (else a SQLite file);
    `commits` collects each transaction's milliseconds (BEGIN to COMMIT returned);
    `server_cpu` (the database server's CPU seconds) counts into the CPU seconds."""
    server, url = serve_pages(pages)
    try:
        doc = simulator_config_document(url)
        for source in doc["sources"]:
            source.update({"page_size": page_size, "max_pages": 1_000_000, "deadline": "4h"})
        config = parse_config(doc, state_path=str(workdir / f"{name}.sqlite"))
        if dsn:
            config = replace(config, state_backend="postgresql", state_dsn=dsn)
        store = open_store(config)
        clock = None if dsn else DatabaseClock(store._db)
        if clock is not None:
            store._db = clock  # type: ignore[assignment]
        if commits is not None:
            store.transaction = timed(store.transaction, commits)  # type: ignore[method-assign]
        pipeline = Pipeline(config, store)
        stop = threading.Event()
        sms, acquirer = (Poller(s, pipeline, stop) for s in config.sources)
        started, cpu = time.perf_counter(), time.process_time() + server_cpu()
        acquirer.poll()
        txn_seconds = time.perf_counter() - started
        txn_cpu = time.process_time() + server_cpu() - cpu
        profiler = cProfile.Profile() if profile else None
        started, cpu = time.perf_counter(), time.process_time() + server_cpu()
        database_before = 0.0 if clock is None else clock.seconds
        if profiler is not None:
            profiler.enable()
        sms.poll()
        if profiler is not None:
            profiler.disable()
        sms_seconds = time.perf_counter() - started
        sms_database = 0.0 if clock is None else clock.seconds - database_before
        sms_cpu = time.process_time() + server_cpu() - cpu
        assert sms.health.up and acquirer.health.up, "a poll failed"
        store.close()
        if profiler is not None:
            profiler.dump_stats(profile)
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return {
            "status_records": sms.health.last_records,
            "sms_seconds": sms_seconds,
            "sms_database_seconds": sms_database,
            "sms_cpu_seconds": sms_cpu,
            "transactions": acquirer.health.last_records,
            "transaction_seconds": txn_seconds,
            "transaction_cpu_seconds": txn_cpu,
        }
    finally:
        server.terminate()
        server.join()


def throughput(rate: float, workdir: Path, cache: Path, profile: str) -> dict[str, float]:
    """An hour of simulated traffic through the whole path; records per second, and the bare
    parse rate of the same SMS pages beside it."""
    pages = capture(rate, "1h", START, cache)
    run = ingest(pages, workdir, "throughput", profile)
    path_rate = run["status_records"] / run["sms_seconds"]
    cpu_rate = run["status_records"] / run["sms_cpu_seconds"]
    bare, bare_cpu = parse_rate(items_of(pages, "/sms/v1/messages"))
    return {
        "status_records": run["status_records"],
        "records_per_second": round(path_rate),
        "records_per_cpu_second": round(cpu_rate),
        "bare_parse_records_per_second": round(bare),
        "bare_parse_records_per_cpu_second": round(bare_cpu),
        "path_to_parse_ratio": round(path_rate / bare, 3),
        "path_to_parse_ratio_cpu": round(cpu_rate / bare_cpu, 3),
        # SQLite's own share: the rate if every line of our Python took no time
        "database_seconds": round(run["sms_database_seconds"], 2),
        "database_share_cpu": round(run["sms_database_seconds"] / run["sms_cpu_seconds"], 3),
        "records_per_database_second": round(run["status_records"] / run["sms_database_seconds"]),
        "transactions": run["transactions"],
        "transactions_per_second": round(run["transactions"] / run["transaction_seconds"]),
        "transactions_per_cpu_second": round(run["transactions"] / run["transaction_cpu_seconds"]),
    }


def catch_up(rate: float, slice_: str, workdir: Path, cache: Path) -> dict[str, float]:
    """Seconds to reach the present after an hour of backlog at `rate` transactions/s,
    estimated from a slice of that traffic ingested through the whole path."""
    pages = capture(rate, slice_, PEAK_START, cache)
    run = ingest(pages, workdir, "catchup")
    records = run["status_records"] + run["transactions"]
    txns = sum(
        len(json.loads(body)["transactions"])
        for body in items_of(pages, "/acquirer/v1/transactions")
    )
    ingest_rate = records / (run["sms_seconds"] + run["transaction_seconds"])
    cpu_rate = records / (run["sms_cpu_seconds"] + run["transaction_cpu_seconds"])
    per_txn = records / txns
    arrival = rate * per_txn  # records per second of live traffic
    backlog = arrival * 3600
    return {
        "slice_records": records,
        "slice_records_per_second": round(ingest_rate),
        "slice_records_per_cpu_second": round(cpu_rate),
        "records_per_transaction": round(per_txn, 3),
        "backlog_records": round(backlog),
        "arrival_records_per_second": round(arrival),
        "backlog_alone_s": round(backlog / ingest_rate),
        "catch_up_s": round(backlog / (ingest_rate - arrival)) if ingest_rate > arrival else -1,
        "catch_up_cpu_s": round(backlog / (cpu_rate - arrival)) if cpu_rate > arrival else -1,
    }


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its children (those that
    ended counted in its own figures once it reaped them)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if stat.parent.name == str(pid):  # itself, and its children that ended
            total += sum(int(f) for f in fields[11:15])
        elif fields[1] == str(pid):  # a child still running
            total += int(fields[11]) + int(fields[12])
    return total / tick


@contextmanager
def postgresql(dsn: str) -> Iterator[tuple[Callable[[], str], Callable[[], float]]]:
    """Fresh PostgreSQL states: each call of the first function gives the DSN of a new, empty
    schema (in `dsn`'s database, or on a throwaway server when `dsn` is empty); all are
    dropped at the end. The second gives the throwaway server's CPU seconds so far (all its
    processes), or 0 for a server given by `dsn` (maybe on another machine)."""
    import psycopg
    import psycopg.conninfo

    sys.path.insert(0, str(ROOT / "tests"))
    from postgresql_server import Server, binaries

    server = None
    if not dsn:
        bindir = binaries()
        if bindir is None:
            raise SystemExit("no PostgreSQL installed (Debian package postgresql): give --dsn")
        server = Server(bindir)
        # the test server skips fsync (durability is not under test there); measure as shipped
        command, off = server._command, {"fsync=off", "full_page_writes=off"}
        following = [*command[1:], ""]
        server._command = [
            c
            for c, after in zip(command, following, strict=True)
            if c not in off and after not in off
        ]
        server.restart()
        dsn = server.admin_dsn
    schemas: list[str] = []

    def fresh() -> str:
        name = f"smswatch_bench_{os.getpid()}_{len(schemas)}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        schemas.append(name)
        return psycopg.conninfo.make_conninfo(dsn, options=f"-csearch_path={name}")

    def cpu() -> float:
        return 0.0 if server is None else tree_cpu_seconds(server._process.pid)

    try:
        yield fresh, cpu
    finally:
        if server is not None:
            server.stop()
        else:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for name in schemas:
                    conn.execute(f"DROP SCHEMA {name} CASCADE")


def backends(args: argparse.Namespace, workdir: Path, cache: Path) -> dict[str, object]:
    """The same slice of traffic through the whole path into SQLite and into PostgreSQL,
    interleaved `args.repeat` times: records per second and page commit latency of each
    (medians over the runs)."""
    pages = capture(
        args.backend_rate, args.backend_slice, PEAK_START, cache, args.backend_page_size
    )
    runs: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgresql": []}
    with postgresql(args.dsn) as (fresh, pg_cpu):
        for n in range(args.repeat):
            for backend in ("sqlite", "postgresql"):
                commits: list[float] = []
                profile = args.profile if backend == "postgresql" and n == 0 else ""
                run = ingest(
                    pages,
                    workdir,
                    f"{backend}-{n}",
                    profile,
                    args.backend_page_size,
                    fresh() if backend == "postgresql" else "",
                    commits,
                    pg_cpu if backend == "postgresql" else lambda: 0.0,
                )
                records = run["status_records"] + run["transactions"]
                seconds = run["sms_seconds"] + run["transaction_seconds"]
                commits.sort()
                figures = {
                    "records": records,
                    "records_per_second": records / seconds,
                    "records_per_cpu_second": records
                    / (run["sms_cpu_seconds"] + run["transaction_cpu_seconds"]),
                    "sms_records_per_second": run["status_records"] / run["sms_seconds"],
                    "transactions_per_second": run["transactions"] / run["transaction_seconds"],
                    "commit_ms_median": statistics.median(commits),
                    "commit_ms_p95": commits[max(0, int(len(commits) * 0.95) - 1)],
                    "commits": len(commits),
                }
                runs[backend].append(figures)
                print(f"{backend} run {n + 1}: {json.dumps(_rounded(figures))}", flush=True)
    result: dict[str, object] = {
        backend: _rounded({key: statistics.median(r[key] for r in figures) for key in figures[0]})
        for backend, figures in runs.items()
    }
    sqlite, pg = (result[b] for b in ("sqlite", "postgresql"))
    result["postgresql_to_sqlite_ratio"] = round(
        pg["records_per_second"] / sqlite["records_per_second"],
        3,  # type: ignore[index]
    )
    # a server given by --dsn may be elsewhere: its CPU is not counted then
    result["postgresql_cpu_counted"] = "exporter" if args.dsn else "exporter + server"
    return result


def _rounded(figures: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 1) if k.startswith("commit_ms") else round(v) for k, v in figures.items()}


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


def push_receivers(reports: int, connections: int) -> dict[str, dict[str, float]]:
    """Each push receiver's durable reports per second over HTTP (synchronous=FULL, commit
    before acknowledge), as `benchmarks/push.py` measures them: `connections` kept-alive
    connections from client processes, one round. (Clients of urllib in this process's pool,
    pinned to one core, spent more CPU a request than the receiver: they measured
    themselves.)"""
    run = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "push.py"),
            "--reports", str(reports), "--connections", str(connections),
        ],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, range(os.cpu_count() or 1)),  # both cores
    )  # fmt: skip
    figures: dict[str, dict[str, float]] = json.loads(run.stdout.strip().splitlines()[-1])["median"]
    return figures


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
    parser.add_argument("--catchup-rate", type=float, default=5000.0, help="outage tx/s")
    parser.add_argument("--catchup-slice", default="2m", help="simulated traffic ingested")
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--child", default="")
    parser.add_argument("--push", type=int, default=0, help="measure N durable pushes instead")
    parser.add_argument("--profile", default="", help="cProfile of the SMS drain to this file")
    parser.add_argument(
        "--cache",
        default=str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "smswatch"),
        help="where rendered pages are kept between runs",
    )
    parser.add_argument("--push-reports", type=int, default=20_000, help="per receiver")
    parser.add_argument("--push-clients", type=int, default=32, help="connections at once")
    parser.add_argument(
        "--only", choices=("throughput", "catchup", "pending", "receivers"), default=""
    )
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="postgresql: compare the state backends (PostgreSQL beside SQLite) instead",
    )
    parser.add_argument("--dsn", default="", help="PostgreSQL to use (default: a throwaway one)")
    parser.add_argument("--backend-rate", type=float, default=100.0, help="peak tx/s of the slice")
    parser.add_argument("--backend-slice", default="4m", help="simulated traffic compared")
    parser.add_argument("--backend-page-size", type=int, default=500)
    parser.add_argument(
        "--cores",
        type=int,
        choices=(1, 2),
        default=1,
        help="cores the exporter may use (2: unpinned, sharing them with the page server)",
    )
    parser.add_argument(
        "--upstream-ms",
        type=float,
        default=0.0,
        help="time the page server takes per page, as a real upstream does (0: none)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each backend, interleaved")
    args = parser.parse_args()
    _PageHandler.latency_s = args.upstream_ms / 1000  # the page servers are forked from here
    if args.backend == "postgresql":
        pin_exporter(args.cores)
        with tempfile.TemporaryDirectory(prefix="smswatch-bench-") as tmp:
            print(json.dumps(backends(args, Path(tmp), Path(args.cache))))
        return
    if args.push:
        with tempfile.TemporaryDirectory(prefix="smswatch-bench-") as tmp:
            result = push_cost(args.push, Path(tmp))
            result.update(page_commit_cost(max(20, args.push // 20), Path(tmp)))
            print(json.dumps(result))
        return
    if args.child:
        pin_exporter(args.cores)
        pending_child(args.child, args.pending)
        return
    pin_exporter(args.cores)
    cache = Path(args.cache)
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="smswatch-bench-") as tmp:
        workdir = Path(tmp)
        if args.only in ("", "throughput"):
            result.update(throughput(args.rate, workdir, cache, args.profile))
            print(f"throughput: {result}", flush=True)
        if args.only in ("", "catchup"):
            up = catch_up(args.catchup_rate, args.catchup_slice, workdir, cache)
            print(f"catch-up: {up}", flush=True)
            result.update(up)
        if args.only in ("", "pending"):
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
        if args.only in ("", "receivers"):
            receivers = push_receivers(args.push_reports, args.push_clients)
            result["push_reports_per_s"] = {p: r["reports_per_s"] for p, r in receivers.items()}
            result["push_cpu_us_per_report"] = {
                p: r["exporter_cpu_us_per_report"] for p, r in receivers.items()
            }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

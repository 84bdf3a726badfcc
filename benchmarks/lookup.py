"""Lookup benchmark (run by hand, not a test): `python benchmarks/lookup.py [--transactions N]`.

1. Fills a state file with N retained transactions spread over 35 days (the default retention)
   by direct bulk inserts through SQLite (not through HTTP, not through the pipeline): ~83 % are
   receipts with their message and its timeline text, like the simulator's traffic; terminals
   follow a skewed popularity (a few busy shops, many quiet ones). Secondary indexes are dropped
   during the load and rebuilt by opening the store, as an exporter would find them.
2. Serves the lookup API on a real HTTP server (token auth, audit on) and times, from a client:
   lookups by RRN, by terminal and time (±10 min), by phone last 4 and time, each a random key
   of an existing transaction; p50, p99 and max in milliseconds. Each series runs twice: `cold`
   right after dropping the state file from the OS page cache (every key read from disk), then
   `warm` with the same keys.
3. Reports the state file size, per million transactions, and the server's resident memory.

Target: p99 ≤ 20 ms for RRN and terminal+time lookups with 10 million transactions.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.lookup.access import new_token  # noqa: E402
from exporter.lookup.routes import build_lookup  # noqa: E402
from exporter.lookup.settings import LookupSettings  # noqa: E402
from exporter.store import Store  # noqa: E402
from exporter.web import WebServer  # noqa: E402

START_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z
SPAN_MS = 35 * 86_400_000
TERMINALS = 20_000
ACQUIRERS = ("acq-north", "acq-south", "acq-east")
CARRIERS = ("china-mobile", "china-unicom", "china-telecom")
AREAS = ("north", "south", "east", "west", "central")
BINS = ("62258800", "62170033", "62148300", "622848", "436742")
#: The columns the generated rows fill, in their order.
TRANSACTION_COLUMNS = (
    "txn_id, rrn, terminal_id, merchant_id, acquirer, amount, currency, pan, result, "
    "response_code, txn_ms, sms_expected, original_txn_id, join_key, receipt_acquirer, state, "
    "message_id, decide_ms, outcome, cause, notify_ms, reversed_ms, source, message_gateway, "
    "due_ms"
)
MESSAGE_COLUMNS = (
    "message_id, gateway, txn_ref, carrier, area, phone, submitted_ms, seen, final_status, "
    "final_cause, final_code, final_ms, events"
)
INDEXES = (
    "receipts_by_key",
    "receipts_due",
    "transactions_by_id",
    "transactions_by_rrn",
    "transactions_by_terminal",
    "transactions_by_time",
    "messages_by_ref",
    "messages_by_time_phone",
    "messages_pending",
)


def rss_mb() -> float:
    """Resident memory of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def terminal_of(rng: random.Random) -> int:
    """A terminal index: 1 % of the terminals take about a third of the payments."""
    if rng.random() < 0.33:
        return rng.randrange(TERMINALS // 100)
    return rng.randrange(TERMINALS)


def rows(n: int, seed: int) -> Iterator[tuple[tuple[object, ...], tuple[object, ...] | None]]:
    """(transaction row, message row or None) for n transactions in time order."""
    rng = random.Random(seed)
    step = SPAN_MS / n
    for i in range(n):
        at = START_MS + int(i * step)
        day = (at - START_MS) // 86_400_000
        txn_id = f"t-{i:09d}"
        rrn = f"{6 + day // 1000}{day % 1000:03d}{i % 100_000_000:08d}"
        terminal = terminal_of(rng)
        acquirer = ACQUIRERS[terminal % 3]
        pan = f"{BINS[i % 5]}****{rng.randrange(10_000):04d}"
        u = rng.random()
        result = "declined" if u < 0.08 else "approved"
        receipt = result == "approved" and rng.random() < 0.9
        message = None
        state = outcome = cause = message_id = decide = notify = join = None
        if receipt:
            join, state = rrn, "decided"
            v = rng.random()
            if v < 0.004:
                outcome, cause, decide = "missing", "integration", at + 300_000
            else:
                message_id = f"m-{i:09d}"
                submitted = at + rng.randint(200, 3000)
                latency = rng.randint(800, 9000)
                phone = f"1{rng.choice('3589')}{rng.randrange(10)}****{rng.randrange(10_000):04d}"
                if v < 0.02:
                    outcome, cause, final, code = (
                        "failed",
                        "invalid_number",
                        "undelivered",
                        "MK:0001",
                    )
                    events = f"submitted+0;undelivered+{latency} MK:0001"
                else:
                    outcome, cause, final, code = "delivered", "none", "delivered", "000"
                    events = f"submitted+0;enroute+{latency // 3};delivered+{latency}"
                    notify = submitted + latency - at
                decide = submitted + latency
                message = (message_id, "bank-sms", rrn, CARRIERS[i % 3], AREAS[terminal % 5],
                           phone, submitted, 0, final, cause, code, decide, events)  # fmt: skip
        txn = (txn_id, rrn, f"T{terminal:07d}", f"M{terminal // 4:06d}", acquirer,
               rng.randint(100, 99_900), "CNY", pan, result, "00" if result == "approved" else "51",
               at, int(receipt), "", join, acquirer if receipt else None, state, message_id,
               decide, outcome, cause, notify, None,
               "acquirer", "bank-sms" if message_id else None, decide)  # fmt: skip
        yield txn, message


def fill(path: str, n: int) -> dict[str, float]:
    """Bulk-load n transactions (and their messages) into a fresh state file."""
    Store(path).close()  # the schema, as the exporter creates it
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-400000")
    for index in INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {index}")
    started = time.perf_counter()
    batch_t: list[tuple[object, ...]] = []
    batch_m: list[tuple[object, ...]] = []

    def flush() -> None:
        db.execute("BEGIN")
        db.executemany(
            f"INSERT INTO transactions ({TRANSACTION_COLUMNS}) VALUES ({','.join('?' * 25)})",
            batch_t,
        )
        db.executemany(
            f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({','.join('?' * 13)})", batch_m
        )
        db.execute("COMMIT")
        batch_t.clear()
        batch_m.clear()

    messages = 0
    for txn, message in rows(n, seed=7):
        batch_t.append(txn)
        if message is not None:
            batch_m.append(message)
            messages += 1
        if len(batch_t) >= 200_000:
            flush()
            print(f"  {txn[0]} loaded", flush=True, end="\r")
    flush()
    db.executemany(
        "INSERT INTO terminal_history VALUES (?, 0, 1, '5.2.1')",
        [(f"T{t:07d}",) for t in range(TERMINALS)],
    )
    loaded = time.perf_counter() - started
    db.close()
    started = time.perf_counter()
    Store(path).close()  # rebuilds the dropped indexes (CREATE INDEX IF NOT EXISTS)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {
        "messages": messages,
        "load_seconds": round(loaded, 1),
        "index_seconds": round(time.perf_counter() - started, 1),
    }


def evict(path: str) -> None:
    """Drop the state file (and its WAL) from the OS page cache, nothing else."""
    for name in (path, f"{path}-wal"):
        if Path(name).exists():
            fd = os.open(name, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 2),
        "max_ms": round(ordered[-1], 2),
    }


def measure(path: str, n: int, count: int) -> dict[str, object]:
    """Time lookups over HTTP against the filled store."""
    workdir = Path(path).parent
    token, digest = new_token()
    (workdir / "tokens.yml").write_text(f"tokens:\n  - name: bench\n    sha256: {digest}\n")
    settings = LookupSettings(tokens_file=str(workdir / "tokens.yml"), timezone="Asia/Shanghai")
    store = Store(path)
    routes = build_lookup(settings, store)
    web = WebServer("127.0.0.1", 0)
    routes.mount(web)
    web.start()
    base = f"http://127.0.0.1:{web.port}/api/v1/receipts?"
    opener = urllib.request.build_opener()
    opener.addheaders = [("Authorization", f"Bearer {token}")]
    sample = random.Random(time.time_ns())  # fresh keys each run
    db = sqlite3.connect(path)
    picks = [sample.randrange(n) for _ in range(count)]
    chosen = [
        db.execute(
            "SELECT t.rrn, t.terminal_id, t.txn_ms, m.phone FROM transactions t "
            "LEFT JOIN messages m ON m.gateway = t.message_gateway "
            "AND m.message_id = t.message_id WHERE t.txn_id = ?",
            (f"t-{i:09d}",),
        ).fetchone()
        for i in picks
    ]
    db.close()

    def timed(query: str) -> tuple[float, int]:
        started = time.perf_counter()
        with opener.open(base + query, timeout=30) as response:
            body = json.loads(response.read())
        return (time.perf_counter() - started) * 1000, int(body["count"])

    def iso(ms: int) -> str:
        from exporter.timestamps import format_rfc3339_ms

        return format_rfc3339_ms(ms)

    results: dict[str, object] = {}
    for name, make in (
        ("rrn", lambda c: f"rrn={c[0]}"),
        ("terminal_at", lambda c: f"terminal={c[1]}&at={iso(c[2])}"),
        ("phone_last4_at", lambda c: f"phone_last4={c[3][-4:]}&at={iso(c[2])}"),
    ):
        usable = [c for c in chosen if c[3] is not None or name != "phone_last4_at"]
        timed(make(usable[0]))  # connection and code warm-up
        for cache in ("cold", "warm"):
            if cache == "cold":
                evict(path)  # this file only: every key read from disk first
            times, found = [], []
            for c in usable:
                ms, hits = timed(make(c))
                times.append(ms)
                found.append(hits)
            results[f"{name}_{cache}"] = {
                **percentiles(times),
                "lookups": len(times),
                "mean_results": round(sum(found) / len(found), 2),
                "misses": sum(1 for f in found if f == 0),
            }
            print(f"{name} {cache}: {results[f'{name}_{cache}']}", flush=True)
    busiest = "T0000000"
    wide = [timed(f"terminal={busiest}&at={iso(START_MS + SPAN_MS // 2)}&window=2h")[0]]
    wide += [timed(f"terminal={busiest}&at={iso(START_MS + d * 86_400_000)}&window=2h")[0]
             for d in range(1, 34)]  # fmt: skip
    results["terminal_widest_window"] = percentiles(wide)
    results["server_rss_mb"] = round(rss_mb(), 1)
    web.stop()
    store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=10_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--state", default="", help="reuse (or keep) this state file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smswatch-lookup-bench-") as tmp:
        path = args.state or str(Path(tmp) / "state.sqlite")
        load: dict[str, float] = {}
        if not Path(path).exists():
            load = fill(path, args.transactions)
            print(f"\nloaded: {load}", flush=True)
        size = Path(path).stat().st_size
        result: dict[str, object] = {
            "transactions": args.transactions,
            **load,
            "state_mb": round(size / 1e6, 1),
            "state_mb_per_million_transactions": round(size / 1e6 / (args.transactions / 1e6), 1),
        }
        result.update(measure(path, args.transactions, args.lookups))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

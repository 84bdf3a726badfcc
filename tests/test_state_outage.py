"""What an exporter does while its state database is down, on real parts: a real PostgreSQL
server stopped and started again (and frozen) under a running exporter, a locked SQLite file,
a polled HTTP feed on 127.0.0.1 and pushes over HTTP.

While down: /metrics serves the last numbers read (never an error, never zeros, never a counter
going down) with `smswatch_state_up 0`, within the read bound; a push is answered 503 with
Retry-After and nothing is acknowledged that was not committed; a poll fetches nothing and
leaves the source's health alone. When the database is back the provider's retried push is
taken, polls resume, and the counters equal those of the same traffic without an outage.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import sqlite3
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from postgresql_server import Server
from prometheus_client import CollectorRegistry, generate_latest
from test_push import post

from exporter.app import Exporter
from exporter.collector import SmswatchCollector
from exporter.config import parse_config, simulator_config_document
from exporter.dialect import Backend, PostgreSQL, StateUnavailable
from exporter.poller import Pipeline
from exporter.push import PushReceiver
from exporter.snapshots import LastSnapshot
from exporter.state_health import READ, WRITE, StateHealth
from exporter.store import Store
from exporter.web import Response, WebServer

from harness import LoopbackServer, Series, http_get, parse_exposition, wait_until

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "s3cret"
#: The families whose numbers must come out exactly as without an outage.
COUNTED = (
    "smswatch_records_total",
    "smswatch_sms_submitted_total",
    "smswatch_sms_messages_total",
    "smswatch_sms_delivery_seconds_bucket",
    "smswatch_push_requests_total",
    "smswatch_source_errors_total",
)


def _message(mid: str, status: str, at: str, code: str = "000") -> dict[str, str]:
    return {
        "message_id": mid,
        "txn_ref": f"ref-{mid}",
        "phone": "138****1234",
        "carrier": "china-mobile",
        "area": "east",
        "status": status,
        "error_code": code,
        "submitted_at": "2026-11-26T12:00:00.000Z",
        "status_at": at,
    }


#: A generic SMS feed, page by cursor: two pages, then nothing new.
PAGES: dict[str, dict[str, Any]] = {
    "": {
        "messages": [
            _message("m-1", "SUBMITTED", "2026-11-26T12:00:00.000Z"),
            _message("m-1", "DELIVRD", "2026-11-26T12:00:04.000Z"),
            _message("m-2", "UNDELIV", "2026-11-26T12:00:09.000Z", "MK:0001"),
        ],
        "next_cursor": "1",
        "has_more": False,
        "watermark": "2026-11-26T12:00:09.000Z",
    },
    "1": {
        "messages": [_message("m-3", "DELIVRD", "2026-11-26T12:00:12.000Z")],
        "next_cursor": "2",
        "has_more": False,
        "watermark": "2026-11-26T12:00:12.000Z",
    },
    "2": {"messages": [], "next_cursor": "2", "has_more": False},
}


class Feed:
    """The polled SMS API on 127.0.0.1; counts the requests it gets."""

    def __init__(self) -> None:
        self.requests = 0
        feed = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                feed.requests += 1
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                body = json.dumps(PAGES[query.get("cursor", [""])[0]]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = LoopbackServer(Handler)
        self.url = self.http.url

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def feed() -> Iterator[Feed]:
    served = Feed()
    yield served
    served.close()


def document(feed_url: str, state: dict[str, Any]) -> dict[str, Any]:
    """One polled SMS feed, one Alibaba push receiver, the acquirer unreachable (polled once)."""
    doc = simulator_config_document("http://127.0.0.1:9", "1h")  # polls: at start, then by hand
    doc["state"] = state
    sms, acquirer = doc["sources"]
    sms.update({"base_url": feed_url, "path": "/sms", "retries": 0})
    acquirer.update({"retries": 0, "timeout": {"connect": "1s", "read": "1s"}})
    push = {"secret": "${PUSH_SECRET}", "lag": "30s"}
    aliyun = {"name": "aliyun", "kind": "sms_gateway", "provider": "aliyun", "pull": False}
    doc["sources"] = [sms, acquirer, {**aliyun, "push": push}]
    return doc


def reports(batch: int) -> bytes:
    """An Alibaba SmsReport batch; each `batch` number has its own messages."""
    text = (FIXTURES / "aliyun" / "sms_report.json").read_text()
    return text.replace("93270230408041535", f"9327023040804153{batch}").encode()


def counted(exposition: str) -> dict[Series, float]:
    return {s: v for s, v in parse_exposition(exposition).items() if s[0] in COUNTED}


class Run:
    """A started exporter (polls at start only; the test polls by hand) and its push URL."""

    def __init__(self, doc: dict[str, Any]) -> None:
        config = parse_config(doc, env={"PUSH_SECRET": SECRET})
        self.exporter = Exporter(config, "127.0.0.1", 0)
        self.exporter.snapshots.wait_s = 0.5  # the read bound (2 s by default)
        self.exporter.start()
        self.base = f"http://127.0.0.1:{self.exporter.port}"
        self.push_url = f"{self.base}/push/aliyun?secret={SECRET}"
        wait_until(
            lambda: all(p.health.polls for p in self.exporter.pollers.values() if p.source.pull),
            20,
            "the first polls",
        )
        self.seen: dict[Series, float] = {}

    def scrape(self) -> str:
        """/metrics (an HTTP error or a wait past the client's 5 s fails the test), checking
        that no counter went down since the last scrape."""
        status, body = http_get(f"{self.base}/metrics")
        assert status == 200
        now = counted(body)
        assert all(now.get(s, 0.0) >= v for s, v in self.seen.items()), "a counter went down"
        self.seen = now
        return body

    def poll(self) -> None:
        self.exporter.pollers["sms"].poll()

    def close(self) -> None:
        self.exporter.stop()


def reference(feed_url: str, tmp_path: Path) -> dict[Series, float]:
    """The numbers of the same traffic without an outage (SQLite)."""
    run = Run(document(feed_url, {"path": str(tmp_path / "reference.sqlite")}))
    try:
        for batch in (1, 2):
            assert post(run.push_url, reports(batch))[0] == 200
        run.poll()
        return counted(run.scrape())
    finally:
        run.close()


def _postgres_processes(server: Server) -> list[int]:
    """The server's postmaster and its children."""
    root = server._process.pid
    children = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            if entry.name.isdigit():
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == root:
                    children.append(int(entry.name))
    return [root, *children]


@contextlib.contextmanager
def frozen(server: Server) -> Iterator[None]:
    """The server's processes stopped (SIGSTOP): connections stay open, nothing answers."""
    pids = _postgres_processes(server)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def stopped(server: Server) -> Iterator[None]:
    """The server shut down (its clients' connections cut), started again at the end."""
    server._shut_down()
    try:
        yield
    finally:
        server._start()


def test_a_postgresql_outage_serves_the_last_numbers_refuses_pushes_pauses_polls_loses_nothing(
    postgresql_server: Server, postgresql_dsn: str, feed: Feed, tmp_path: Path
) -> None:
    doc = document(feed.url, {"backend": "postgresql", "dsn": postgresql_dsn})
    doc["leases"] = {"ttl": "1s"}  # the outage outlasts the primary's lease
    run = Run(doc)
    store = run.exporter.store
    try:
        assert post(run.push_url, reports(1))[0] == 200
        before = run.scrape()
        assert "smswatch_state_up 1.0" in before
        assert counted(before)[("smswatch_records_total", _labels(source="sms", result="accepted"))]

        with frozen(postgresql_server):  # a read that never answers: the scrape does not wait
            frozen_scrape = run.scrape()
        assert "smswatch_state_up 0.0" in frozen_scrape
        assert counted(frozen_scrape) == counted(before)
        wait_until(lambda: "smswatch_state_up 1.0" in run.scrape(), 20, "the read to answer")

        with stopped(postgresql_server):
            down = run.scrape()
            assert "smswatch_state_up 0.0" in down
            assert counted(down) == counted(before)  # the last numbers, not zeros
            status, headers, _ = _post_with_headers(run.push_url, reports(2))
            assert status == 503 and headers["Retry-After"] == "10"
            requests, polls = feed.requests, run.exporter.pollers["sms"].health.polls
            run.poll()
            run.poll()
            assert feed.requests == requests  # nothing fetched that could not be committed
            health = run.exporter.pollers["sms"].health
            assert (health.polls, health.up) == (polls, True)  # our outage is not the source's
            assert "polls paused" in http_get(f"{run.base}/ready")[1]
            assert http_get(f"{run.base}/")[0] == 503  # the landing page says so, no 500
            keeper = run.exporter.keeper
            wait_until(lambda: not keeper.is_primary(), 20, "the primary lease to run out")
            assert counted(run.scrape()) == counted(before)  # served still, not vanished
            polled = {n: p for n, p in run.exporter.pollers.items() if p.source.pull}
            polls = {name: p.health.polls for name, p in polled.items()}

        wait_until(store.writable, 20, "commits to work again")
        wait_until(lambda: keeper.polls("sms") and keeper.is_primary(), 20, "leases taken again")
        assert post(run.push_url, reports(2))[0] == 200  # the provider's retry
        wait_until(  # a lease taken again polls its source at once, from the committed cursor
            lambda: all(p.health.polls > polls[n] for n, p in polled.items()),
            20,
            "the polls of the leases taken again",
        )
        after = run.scrape()
        assert "smswatch_state_up 1.0" in after
    finally:
        run.close()
    expected = reference(feed.url, tmp_path)
    refused = ("smswatch_push_requests_total", _labels(source="aliyun", result="state_down"))
    assert counted(after)[refused] == 1
    unreachable = ("smswatch_source_errors_total", _labels(source="acquirer", error="connection"))
    again = expected[unreachable] + 1  # the unreachable acquirer polled once more, at its lease
    assert counted(after) == {**expected, refused: 1.0, unreachable: again}


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def _post_with_headers(url: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_a_locked_sqlite_file_answers_pushes_503_and_counts_them_once_it_is_free(
    tmp_path: Path,
) -> None:
    """Another process holds the state file's write lock past the busy timeout: the store, the
    collector and a push receiver on a real HTTP server."""
    path = str(tmp_path / "state.sqlite")
    config = parse_config(
        document("http://127.0.0.1:9", {"path": path}), env={"PUSH_SECRET": SECRET}
    )
    store = Store(path, backend=Backend(path, busy_timeout_ms=100))
    source = next(s for s in config.sources if s.name == "aliyun")
    assert source.push is not None
    receiver = PushReceiver(source, Pipeline(config, store))
    registry = CollectorRegistry()
    registry.register(SmswatchCollector(config, store, {}, snapshots=LastSnapshot(store, 0.5)))
    web = WebServer("127.0.0.1", 0)
    web.routes["/metrics"] = lambda request: Response(200, generate_latest(registry))
    web.routes[source.push.path] = receiver
    web.open_paths.add(source.push.path)
    web.start()
    url = f"http://127.0.0.1:{web.port}{source.push.path}?secret={SECRET}"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        assert post(url, reports(1))[0] == 200
        before = counted(http_get(f"http://127.0.0.1:{web.port}/metrics")[1])
        holder.execute("BEGIN EXCLUSIVE")  # e.g. a backup tool, a second exporter on the file
        refused = [post(url, reports(2))[0] for _ in range(3)]
        assert refused == [503, 503, 503]
        status, metrics = http_get(f"http://127.0.0.1:{web.port}/metrics")
        assert status == 200 and "smswatch_state_up 0.0" in metrics  # reads work, commits not
        assert counted(metrics) == before
        holder.execute("ROLLBACK")
        wait_until(store.writable, 20, "commits to work again")
        assert post(url, reports(2))[0] == 200
        metrics = http_get(f"http://127.0.0.1:{web.port}/metrics")[1]
    finally:
        holder.close()
        web.stop()
        store.close()
    assert "smswatch_state_up 1.0" in metrics
    after = counted(metrics)
    pushes = Counter(
        {dict(labels)["result"]: v for (name, labels), v in after.items() if "push" in name}
    )
    assert (pushes["accepted"], pushes["state_down"]) == (2, 3)
    accepted = ("smswatch_records_total", _labels(source="aliyun", result="accepted"))
    assert after[accepted] == 2 * before[accepted]


def test_postgresql_connections_are_bounded_and_a_dsn_keeps_its_own_settings() -> None:
    bounded = psycopg.conninfo.conninfo_to_dict(PostgreSQL("postgresql://u@db/s").conninfo())
    assert bounded["connect_timeout"] == "3" and bounded["tcp_user_timeout"] == "10000"
    assert "-c statement_timeout=60000" in bounded["options"]
    assert "-c idle_in_transaction_session_timeout=30000" in bounded["options"]
    own = PostgreSQL(
        "postgresql://u@db/s?connect_timeout=7&options=-csearch_path%3Dx", password="pw"
    ).conninfo()
    settings = psycopg.conninfo.conninfo_to_dict(own)
    assert settings["connect_timeout"] == "7" and settings["password"] == "pw"
    assert settings["options"].endswith("-csearch_path=x")  # after ours: the DSN's win


def test_while_the_state_is_down_one_attempt_a_second_reaches_it_and_reads_do_not_hide_it() -> None:
    now = [100.0]
    health = StateHealth(retry_s=1.0, clock=lambda: now[0])
    ran: list[str] = []
    for refused in (sqlite3.IntegrityError("NOT NULL"), psycopg.errors.RaiseException("fenced")):
        with pytest.raises(type(refused)), health.attempt(WRITE):
            raise refused  # a value it cannot hold, a commit refused on purpose: not an outage
    assert health.up
    with pytest.raises(sqlite3.OperationalError), health.attempt(WRITE):
        raise sqlite3.OperationalError("attempt to write a readonly database")
    assert not health.up and health.why() == "OperationalError"  # the words go to the log
    with pytest.raises(StateUnavailable), health.attempt(WRITE):
        ran.append("refused at once")  # a burst of pushes: none waits on the database
    with health.attempt(READ):
        ran.append("read")  # the file still reads: commits are still down
    assert ran == ["read"] and not health.up
    now[0] += 1.0
    with health.attempt(WRITE), health.attempt(WRITE):  # a transaction inside durable(): one
        ran.append("probe")
    assert ran == ["read", "probe"] and health.up and health.down_for() is None


def test_a_state_back_without_its_last_commits_never_moves_a_served_counter_down(
    tmp_path: Path,
) -> None:
    """A failover to a standby that missed the last (asynchronous) commits: the counters read
    are lower than those served; serving them would look like a reset to every rate()."""
    path = str(tmp_path / "state.sqlite")
    store = Store(path)
    snapshots = LastSnapshot(store)
    accepted = ("smswatch_records_total", "sms\x1faccepted")
    try:
        store.add_counters(Counter({("smswatch_records_total", ("sms", "accepted")): 5}))
        assert _served(snapshots, accepted) == 5
        with sqlite3.connect(path) as standby:  # the database as the standby had it
            standby.execute("UPDATE counters SET value = 3 WHERE metric = ?", (accepted[0],))
        assert _served(snapshots, accepted) == 5
        store.add_counters(Counter({("smswatch_records_total", ("sms", "accepted")): 4}))
        assert _served(snapshots, accepted) == 7  # the re-read feed brought it past
    finally:
        store.close()


def _served(snapshots: LastSnapshot, key: tuple[str, str]) -> float:
    snapshot = snapshots.read()
    assert snapshot is not None
    return next(value for metric, labels, value in snapshot[0] if (metric, labels) == key)

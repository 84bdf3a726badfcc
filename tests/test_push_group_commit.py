"""Group commit of pushes: providers post in parallel; the pushes that arrive while a commit is
in flight are committed together in one durable transaction, and each is acknowledged only once
its own records are committed. A push that fails fails alone; a database error fails every push
of its group with the same exception. Real HTTP on 127.0.0.1, a real SQLite state file."""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_push import SECRET, document

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.dialect import STATE_ERRORS
from exporter.records import SmsEvent

from harness import scrape, wait_until

PUSHES = 12


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Exporter]:
    config = parse_config(document(tmp_path / "state.sqlite"), env={"PUSH_SECRET": SECRET})
    exporter = Exporter(config, "127.0.0.1", 0)
    exporter.web.start()  # the receivers only: no polling
    yield exporter
    exporter.web.stop()
    exporter.store.close()


def commits(app: Exporter) -> list[int]:
    """Counts the COMMITs of the exporter's write connection from now on."""
    counted = [0]

    def trace(statement: str) -> None:
        if statement.strip().upper() == "COMMIT":
            counted[0] += 1

    app.store._db.set_trace_callback(trace)
    return counted


def vonage_dlr(n: int) -> bytes:
    return json.dumps(
        {
            "msisdn": "8613800000000",
            "to": "BANKX",
            "messageId": f"v{n}",
            "status": "delivered",
            "err-code": "0",
            "client-ref": f"r{n}",
            "message-timestamp": "2026-11-26 12:00:05",
        }
    ).encode()


def post(url: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(url, body, {"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def in_parallel(calls: list[Callable[[], object]]) -> list[object]:
    """Run each call in its own thread; their results (or exceptions) in order."""
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # the outcome under test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def messages_committed(state: Path) -> int:
    """Messages in the state file as another connection (another process) reads them."""
    with sqlite3.connect(state) as db:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])


def test_parallel_pushes_over_http_commit_together_and_are_on_disk_when_acknowledged(
    app: Exporter, tmp_path: Path
) -> None:
    """Twelve providers' requests (two receivers) arrive while the state's writer is busy (a
    poll's page): they are committed in one transaction, not twelve, and each acknowledged
    push's report is in the state file when its answer arrives."""
    base = f"http://127.0.0.1:{app.port}/push"
    calls: list[Callable[[], object]] = []
    for n in range(PUSHES):
        if n % 2:
            calls.append(
                lambda n=n: post(
                    f"{base}/vonage?secret={SECRET}", vonage_dlr(n), "application/json"
                )
            )
        else:
            form = f"id=j{n}&message_status=DELIVRD&level=2&donedate=2611261201&err=000"
            calls.append(
                lambda form=form, n=n: post(
                    f"{base}/jasmin?secret={SECRET}&ref=r{n}",
                    form.encode(),
                    "application/x-www-form-urlencoded",
                )
            )
    counted = commits(app)
    with app.store.transaction():  # the writer is busy: every push queues behind it
        answers: list[object] = []
        poster = threading.Thread(target=lambda: answers.extend(in_parallel(calls)))
        poster.start()
        wait_until(lambda: app.pipeline.push_commits.queued == PUSHES, 30, "the pushes queued")
    poster.join(timeout=60)
    assert answers == [200] * PUSHES
    assert counted[0] == 2  # the held transaction's, then one for the twelve pushes
    assert messages_committed(tmp_path / "state.sqlite") == PUSHES
    exported = scrape(f"http://127.0.0.1:{app.port}/metrics")
    accepted = {
        dict(labels)["source"]: value
        for (name, labels), value in exported.items()
        if name == "smswatch_push_requests_total" and dict(labels)["result"] == "accepted" and value
    }
    assert accepted == {"vonage": PUSHES / 2, "jasmin": PUSHES / 2}


def report(n: int, submitted_ms: object = 1_764_158_400_000) -> SmsEvent:
    return SmsEvent(
        f"m{n}",
        f"r{n}",
        "138****0000",
        "",
        "",
        "delivered",
        "DELIVRD",
        submitted_ms,  # type: ignore[arg-type]
        1_764_158_405_000,
        True,
    )


def grouped(app: Exporter, calls: list[Callable[[], object]]) -> list[object]:
    """Run the calls in parallel while the writer is busy, so that they form one group."""
    results: list[object] = []
    with app.store.transaction():
        runner = threading.Thread(target=lambda: results.extend(in_parallel(calls)))
        runner.start()
        wait_until(lambda: app.pipeline.push_commits.queued == len(calls), 30, "the pushes queued")
    runner.join(timeout=60)
    return results


def test_a_push_that_fails_fails_alone_and_the_rest_of_its_group_is_committed(
    app: Exporter, tmp_path: Path
) -> None:
    """One push of a group holds a record the pipeline cannot take (a submit time that is not
    a number: a parser's bug); it fails with its own error, the other pushes are committed."""
    source = next(s for s in app.config.sources if s.name == "kannel")
    good = [lambda n=n: app.pipeline.commit_push(source, [report(n)], 0) for n in range(PUSHES - 1)]
    bad = [lambda: app.pipeline.commit_push(source, [report(99, "soon")], 0)]
    counted = commits(app)
    outcomes = grouped(app, [*good[:5], *bad, *good[5:]])
    assert isinstance(outcomes[5], TypeError)
    assert [o for i, o in enumerate(outcomes) if i != 5] == [None] * (PUSHES - 1)
    assert counted[0] == 2  # the held transaction, then the group's
    assert messages_committed(tmp_path / "state.sqlite") == PUSHES - 1


def test_a_database_error_fails_every_push_of_the_group_with_that_error(
    app: Exporter, tmp_path: Path
) -> None:
    """The state cannot be written (a read-only volume): every waiting push gets the database's
    own exception, unchanged (what the receiver turns into its answer), and nothing is
    committed."""
    source = next(s for s in app.config.sources if s.name == "vonage")
    calls = [lambda n=n: app.pipeline.commit_push(source, [report(n)], 0) for n in range(PUSHES)]
    outcomes: list[object] = []
    with app.store.transaction():
        runner = threading.Thread(target=lambda: outcomes.extend(in_parallel(calls)))
        runner.start()
        wait_until(lambda: app.pipeline.push_commits.queued == PUSHES, 30, "the pushes queued")
        app.store._db.execute("PRAGMA query_only=ON")
    runner.join(timeout=60)
    app.store._db.execute("PRAGMA query_only=OFF")
    assert all(isinstance(o, sqlite3.OperationalError) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == 1  # the same exception for each
    assert messages_committed(tmp_path / "state.sqlite") == 0

    def pushed_again() -> bool:  # writable again: a retried push goes on (once the state
        try:  # health lets the next attempt reach the database, within a second)
            app.pipeline.commit_push(source, [report(1)], 0)
        except STATE_ERRORS:
            return False
        return True

    wait_until(pushed_again, 10, "a push committed once the state is writable")
    assert messages_committed(tmp_path / "state.sqlite") == 1

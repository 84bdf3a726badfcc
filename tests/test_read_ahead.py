"""A backlog drains while the next page is already being read (issue 16).

A generic feed's poll reads page N+1 while page N commits, so the upstream's latency and the
database's work overlap instead of adding up. What must not change: pages commit in feed
order, each from the cursor its predecessor stored, and a page read ahead is never committed
when its predecessor's commit failed. Real parts: an in-process simulator on 127.0.0.1, a
SQLite file, the real poller and pipeline.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter import poller as poller_module
from exporter.config import parse_config, simulator_config_document
from exporter.poller import Pipeline, Poller
from exporter.records import Page, SmsEvent
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.simulator.simulation import SimClock
from exporter.store import Store, decode_labels, open_store

from harness import StateBackend

T0 = 1_780_000_000_000
PAGE = 40


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    """The simulator, 20 minutes into its traffic: several pages of SMS reports waiting."""
    settings = settings_from_options(seed=3, speed=1.0, start_ms=T0, scenario="none", rate=2.0)
    server = SimulatorServer(settings)
    wall = [0.0]
    server.simulation.clock = SimClock(T0, 1.0, wall=lambda: wall[0])
    server.start()
    wall[0] = 20 * 60
    try:
        yield server
    finally:
        server.stop()


def sms_poller(server: SimulatorServer, store: Store) -> tuple[Poller, list[str]]:
    """The SMS source's poller (pages of `PAGE`) and the cursors of its requests, in order."""
    doc = simulator_config_document(server.url)
    for source in doc["sources"]:
        source["page_size"] = PAGE
    config = parse_config(doc, state_path=":memory:")
    poller = Poller(config.sources[0], Pipeline(config, store), threading.Event())
    requested: list[str] = []
    send = poller.client.session.request

    def request(method: str, url: str, params: Any = None, **kwargs: Any) -> Any:
        requested.append(str(dict(params or {}).get("cursor", "")))
        return send(method, url, params=params, **kwargs)

    poller.client.session.request = request  # type: ignore[method-assign]
    return poller, requested


def requests_reach(requested: list[str], count: int, seconds: float = 10) -> bool:
    """Whether the poller has sent `count` requests, waiting up to `seconds` for them."""
    deadline = time.monotonic() + seconds
    while len(requested) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(requested) >= count


def served_reports(server: SimulatorServer) -> int:
    """Every SMS report the feed holds now, read straight from the simulator."""
    cursor, total = "", 0
    while True:
        query = f"?limit=500&cursor={cursor}" if cursor else "?limit=500"
        with urllib.request.urlopen(f"{server.url}/sms/v1/messages{query}") as response:
            doc = json.load(response)
        total += len(doc["messages"])
        if not doc["has_more"]:
            return total
        cursor = doc["next_cursor"]


def status_records(store: Store) -> int:
    """SMS status records the exporter counted (accepted, duplicate or conflicting)."""
    rows, _, _ = store.snapshot()
    return int(
        sum(
            value
            for metric, labels, value in rows
            if metric == "smswatch_records_total" and decode_labels(labels)[0] == "sms"
        )
    )


def test_the_next_page_is_read_while_a_page_commits(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    store = Store(str(tmp_path / "state.sqlite"))
    poller, requested = sms_poller(simulator, store)
    commit = poller.pipeline.commit_sms
    overlapped: list[bool] = []

    def slow_commit(source: Any, page: Page[SmsEvent], read_from: str | None = None) -> None:
        # the commit of the first page waits (10 s at most) for the second page's request
        overlapped.append(bool(overlapped) or requests_reach(requested, 2))
        commit(source, page, read_from)

    poller.pipeline.commit_sms = slow_commit  # type: ignore[method-assign]
    try:
        poller.poll()
        assert poller.health.up
        assert overlapped[0], "the second page was only requested after the first committed"
        assert len(overlapped) >= 3
        # every report was committed exactly once, in feed order
        assert status_records(store) == served_reports(simulator)
    finally:
        store.close()


def test_a_page_read_ahead_is_not_committed_when_its_predecessor_fails(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    store = Store(str(tmp_path / "state.sqlite"))
    poller, requested = sms_poller(simulator, store)
    commit = poller.pipeline.commit_sms
    commits: list[str | None] = []

    def failing_second(source: Any, page: Page[SmsEvent], read_from: str | None = None) -> None:
        commits.append(read_from)
        if len(commits) == 2:  # once the third page is being read (10 s at most)
            requests_reach(requested, 3)
            raise RuntimeError("the database refused the page")
        commit(source, page, read_from)

    poller.pipeline.commit_sms = failing_second  # type: ignore[method-assign]
    try:
        poller.poll()
        assert not poller.health.up  # the poll failed on the second page ...
        assert len(commits) == 2  # ... and the third, read ahead meanwhile, was not committed
        assert len(requested) == 3
        after_first = store.source_state("sms").cursor
        assert after_first == commits[1]  # the cursor stayed where the first page left it
        assert status_records(store) == PAGE
        poller.pipeline.commit_sms = commit  # type: ignore[method-assign]
        poller.poll()  # the next poll reads on from there: nothing lost, nothing twice
        assert poller.health.up
        assert requested[3] == after_first
        assert status_records(store) == served_reports(simulator)
    finally:
        store.close()


def open_state(backend: StateBackend, directory: Path) -> Store:
    """The state on `backend` (a SQLite file in `directory`, or a fresh PostgreSQL schema)."""
    doc = simulator_config_document("http://127.0.0.1:9")
    doc["state"] = backend.document(directory)
    return open_store(parse_config(doc))


def commits(store: Store) -> int:
    """Database commits of the store's write connection so far."""
    return sum(store.health.commit_histogram()[0])


def upstream_faster_than_commits(poller: Poller, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each page commits only once its successor has been read, as when a fast upstream
    serves a backlog (here the pages are small and the simulator slower than a commit)."""
    read: list[object] = []
    fetch = poller_module.fetch_page

    def counted(*args: Any, **kwargs: Any) -> Any:
        page = fetch(*args, **kwargs)
        read.append(page)
        return page

    monkeypatch.setattr(poller_module, "fetch_page", counted)
    commit = poller.pipeline.commit_sms
    committed: list[object] = []

    def commit_once_next_is_read(
        source: Any, page: Page[SmsEvent], read_from: str | None = None
    ) -> None:
        committed.append(page)
        deadline = time.monotonic() + 10
        while page.has_more and len(read) <= len(committed) and time.monotonic() < deadline:
            time.sleep(0.005)
        commit(source, page, read_from)

    poller.pipeline.commit_sms = commit_once_next_is_read  # type: ignore[method-assign]


@pytest.fixture
def backlog(
    simulator: SimulatorServer,
    tmp_path: Path,
    state_backend: StateBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Store, Poller, list[str]]:
    """A state on each backend, and the SMS poller of a backlog served faster than it
    commits (with the cursors of its requests)."""
    store = open_state(state_backend, tmp_path)
    poller, requested = sms_poller(simulator, store)
    upstream_faster_than_commits(poller, monkeypatch)
    return store, poller, requested


def test_a_backlog_s_pages_share_commits_and_stay_exact(
    simulator: SimulatorServer, backlog: tuple[Store, Poller, list[str]]
) -> None:
    store, poller, requested = backlog
    try:
        before = commits(store)
        poller.poll()
        assert poller.health.up
        pages = len(requested)
        assert pages >= 6
        # the pages read ahead were ready at once: several share each commit (one by one,
        # each page is a commit of its own)
        assert commits(store) - before <= pages // 2
        assert status_records(store) == served_reports(simulator)
    finally:
        store.close()


def test_a_page_that_fails_inside_a_batch_leaves_the_pages_before_it_committed(
    simulator: SimulatorServer, backlog: tuple[Store, Poller, list[str]]
) -> None:
    store, poller, requested = backlog
    apply = store.apply
    applied: list[int] = []

    def apply_then_fail_third(changes: Any, source: str, at_ms: int | None = None) -> None:
        apply(changes, source, at_ms)  # the third page's rows are written, then it fails
        if source != "sms":
            return  # the decisions a page allows
        applied.append(len(changes.messages))
        if len(applied) == 3:
            requests_reach(requested, 4)  # its successor was read: the batch was still open
            raise RuntimeError("the third page failed after writing its rows")

    store.apply = apply_then_fail_third  # type: ignore[method-assign]
    try:
        poller.poll()
        assert not poller.health.up
        # the two pages before it committed, the third left nothing behind, not even a cursor
        assert status_records(store) == 2 * PAGE
        after_second = store.source_state("sms").cursor
        assert after_second == requested[2]
        store.apply = apply  # type: ignore[method-assign]
        poller.poll()
        assert poller.health.up
        assert requested[4] == after_second
        assert status_records(store) == served_reports(simulator)
    finally:
        store.close()

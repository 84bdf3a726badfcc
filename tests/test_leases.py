"""Leases between replicas sharing one state: fencing, spread, takeover, local deadlines, and
the singleton jobs and shared series of the primary only (exporter/leases.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_exporter_end_to_end import start_simulator
from test_reconcile import counters, ms, sms

from exporter.app import Exporter
from exporter.config import Config, parse_config, simulator_config_document
from exporter.dialect import STATE_ERRORS, PostgreSQL
from exporter.errors import ConfigError
from exporter.leases import PRIMARY, LeaseKeeper, LeaseLost, source_lease
from exporter.poller import Pipeline, Poller
from exporter.records import Page
from exporter.store import Store, open_store

from harness import get_json, http_get, scrape, wait_until


def simulator_config(tmp_path: Path, extra: dict[str, object] | None = None) -> Config:
    raw = simulator_config_document("http://127.0.0.1:1")  # nothing listens: polls fail at once
    for source in raw["sources"]:
        source.update({"retries": 0, "backoff": "10ms"})
    raw.update(extra or {})
    return parse_config(raw, state_path=str(tmp_path / "state.sqlite"))


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def two_stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two connections to one SQLite file, as two processes have."""
    path = str(tmp_path / "state.sqlite")
    a, b = Store(path), Store(path)
    yield a, b
    a.close()
    b.close()


def test_a_stale_token_commits_nothing_of_its_page(
    tmp_path: Path, on_backend: Callable[[Config], Config]
) -> None:
    """A replica that paused past its lease wakes up with a page in hand: another replica took
    the source over meanwhile, so the page's own transaction refuses it, whole."""
    config = on_backend(simulator_config(tmp_path))
    paused_store, other_store = open_store(config), open_store(config)
    try:
        pipeline = Pipeline(config, paused_store, clock=lambda: ms(5) / 1000)
        source = config.sources[0]
        paused = LeaseKeeper(paused_store, [source.name], 60_000, "replica-a")
        paused.round()
        fence = paused.by_source[source.name].fence()
        assert fence is not None
        with pipeline.gate.fenced(fence):  # its own lease: the page commits
            pipeline.commit_sms(
                source, Page([sms("m1", "r1", "submitted", 0, 0)], 0, "c1", False, ms(1))
            )
        assert counters(pipeline, "smswatch_records_total") == {(source.name, "accepted"): 1.0}

        with other_store.transaction():  # the other replica finds the holder gone and takes over
            token = other_store.take_lease(
                source_lease(source.name), "replica-b", other_store.db_now_ms(), 60_000, True
            )
        assert token == fence.token + 1
        late = Page([sms("m2", "r2", "submitted", 1, 1)], 0, "c2", False, ms(2))
        with pipeline.gate.fenced(fence), pytest.raises(LeaseLost, match="stale"):
            pipeline.commit_sms(source, late)
        assert counters(pipeline, "smswatch_records_total") == {(source.name, "accepted"): 1.0}
        state = paused_store.source_state(source.name)
        assert (state.cursor, state.watermark_ms) == ("c1", ms(1))
        assert paused_store.messages(source.gateway, ["m2"]) == {}
        pipeline.commit_sms(source, late)  # unfenced (a push, or the new holder): it commits
        assert paused_store.messages(source.gateway, ["m2"]) != {}
    finally:
        paused_store.close()
        other_store.close()


def test_two_keepers_split_the_sources_and_one_is_primary(two_stores: tuple[Store, Store]) -> None:
    names = ["s1", "s2", "s3"]
    a = LeaseKeeper(two_stores[0], names, 60_000, "replica-a")
    b = LeaseKeeper(two_stores[1], names, 60_000, "replica-b")
    a.round()  # alone: it takes everything
    assert [a.polls(n) for n in names] == [True, True, True] and a.is_primary()
    b.round()  # two live replicas: a share is 2, and nothing is free yet
    a.round()  # a holds more than its share: releases one
    b.round()  # and b takes it
    assert sorted(n for n in names if a.polls(n)) == ["s1", "s2"]
    assert [n for n in names if b.polls(n)] == ["s3"]
    assert a.is_primary() and not b.is_primary()
    for _ in range(2):  # stable: nothing moves any more
        a.round()
        b.round()
    assert a.changes()[(source_lease("s3"), "released")] == 1
    assert b.changes() == {(source_lease("s3"), "acquired"): 1}
    a.stop()  # a stops: it releases, and b's next round takes everything
    b.round()
    assert [b.polls(n) for n in names] == [True, True, True] and b.is_primary()


def test_a_dead_holders_leases_are_taken_over_after_they_expire(
    two_stores: tuple[Store, Store],
) -> None:
    a = LeaseKeeper(two_stores[0], ["s1"], 300, "replica-a")
    b = LeaseKeeper(two_stores[1], ["s1"], 300, "replica-b")
    a.round()
    b.round()
    assert not b.polls("s1") and not b.is_primary()
    started = time.monotonic()  # a dies: it renews no more
    wait_until(lambda: (b.round(), b.polls("s1") and b.is_primary())[1], 5, "takeover")
    assert time.monotonic() - started >= 0.25  # not before the lease ran out
    with two_stores[1].transaction():
        leases = two_stores[1].leases()
    assert {n: (r.holder, r.token) for n, r in leases.items()} == {
        PRIMARY: ("replica-b", 2),
        source_lease("s1"): ("replica-b", 2),
    }
    a.round()  # a wakes up: its leases are b's now, and counted lost
    assert not a.polls("s1") and not a.is_primary()
    assert a.changes()[(PRIMARY, "lost")] == a.changes()[(source_lease("s1"), "lost")] == 1


def test_a_lease_runs_out_on_the_local_clock_without_asking_the_database(
    tmp_path: Path,
) -> None:
    """SIGSTOP keeps CLOCK_MONOTONIC running: once ttl has passed since the round that renewed
    it, the replica neither polls nor exports as primary, before it talks to the database."""
    ticks = Ticks()
    store = Store(str(tmp_path / "state.sqlite"))
    keeper = LeaseKeeper(store, ["s1"], 15_000, "replica-a", monotonic=ticks)
    keeper.round()
    fence = keeper.by_source["s1"].fence()
    assert fence is not None and keeper.is_primary()
    ticks.now += 14.9
    assert keeper.polls("s1") and keeper.is_primary()
    store.close()  # any question to the database would fail from here on
    ticks.now += 0.2
    assert not keeper.polls("s1") and not keeper.is_primary()
    assert keeper.by_source["s1"].fence() is None
    with pytest.raises(LeaseLost, match="expired locally"):
        fence.check(store)


def test_lease_ttl_is_validated_with_its_field_path(tmp_path: Path) -> None:
    assert simulator_config(tmp_path, {"leases": {"ttl": "20s"}}).lease_ttl_ms == 20_000
    with pytest.raises(ConfigError, match=r"leases\.ttl.*between 1s and 10m"):
        simulator_config(tmp_path, {"leases": {"ttl": "500ms"}})
    with pytest.raises(ConfigError, match=r"leases.*unknown key 'tll'"):
        simulator_config(tmp_path, {"leases": {"tll": "20s"}})


def test_two_exporters_export_each_series_once_and_run_singleton_jobs_on_the_primary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_backend: Callable[[Config], Config]
) -> None:
    """Two replicas on one state: the primary alone exports the shared state's series and runs
    prune; each source's leader and its in-memory series come from one replica; both are
    ready, the one that polls nothing too."""
    pruned: list[Exporter] = []
    monkeypatch.setattr(Exporter, "_prune", lambda self: pruned.append(self))
    config = on_backend(simulator_config(tmp_path))
    first = Exporter(config, "127.0.0.1", 0)
    first.start()
    second = Exporter(config, "127.0.0.1", 0)
    try:
        second.start()
        first.keeper.round()  # two live replicas: the first releases the second's share
        second.keeper.round()
        for app in (first, second):
            app.scheduler.get_job("prune").func()
        assert pruned == [first]

        apps = (first, second)
        one, two = (scrape(f"http://127.0.0.1:{app.port}/metrics") for app in apps)
        leaders = {
            dict(labels)["source"]: (one[(n, labels)], two[(n, labels)])
            for (n, labels) in one
            if n == "smswatch_source_leader"
        }
        assert sorted(leaders.values()) == [(0.0, 1.0), (1.0, 0.0)]
        assert one[("smswatch_primary", frozenset())] == 1.0
        assert two[("smswatch_primary", frozenset())] == 0.0
        replica_series = ("smswatch_source_leader", "smswatch_primary", "smswatch_lease_changes")
        in_both = {
            key
            for key in set(one) & set(two)
            if not key[0].startswith(replica_series) and key[0] != "smswatch_build_info"
        }
        assert in_both == set()
        assert (
            "smswatch_records_total",
            frozenset({("source", "sms"), ("result", "accepted")}),
        ) in one
        polled_by_second = next(s for s, (_, on) in leaders.items() if on)
        # its up-ness as the primary exports it (as committed), its poll times from its poller
        assert ("smswatch_source_up", frozenset({("source", polled_by_second)})) in one
        count = ("smswatch_source_poll_seconds_count", frozenset({("source", polled_by_second)}))
        assert count in two and count not in one
        wait_until(
            lambda: all(
                http_get(f"http://127.0.0.1:{a.port}/ready")[0] == 200 for a in (first, second)
            ),
            10,
            "both replicas ready",
        )
        # the landing page shows the source another replica polls as committed
        for app in apps:
            page = http_get(f"http://127.0.0.1:{app.port}/")[1]
            assert "not polled yet" not in page and page.count("down") >= 2
    finally:
        second.stop()
        first.stop()


def test_a_replica_paused_inside_a_transaction_does_not_hold_the_others_up(
    postgresql_dsn: str,
) -> None:
    """PostgreSQL ends the paused replica's transaction (and its write lock) once it has waited
    on its client too long: the other replica takes the lease, the paused one commits nothing."""
    paused, other = Store(postgresql_dsn, backend=PostgreSQL(postgresql_dsn)), None
    try:
        other = Store(postgresql_dsn, backend=PostgreSQL(postgresql_dsn))
        paused.limit_idle_transactions(500)
        with pytest.raises(STATE_ERRORS), paused.transaction():
            paused.set_gauge("smswatch_sms_pending", ("bank-sms",), 1.0)  # then it pauses
            keeper = LeaseKeeper(other, ["sms"], 60_000, "replica-b")
            keeper.round()  # waits for the write lock until the server ends the paused one's
            assert keeper.polls("sms") and keeper.is_primary()
        _, gauges, _ = other.snapshot()
        assert gauges == []
    finally:
        paused.close()
        if other is not None:
            other.close()


def test_a_poller_whose_lease_was_taken_over_stops_at_its_first_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The poller of a replica that woke up still believing it holds the source polls, reads a
    page, and its commit is refused: nothing of the page, and no poll, is recorded."""
    sim = start_simulator(None, speed=600, traffic="10m")
    try:
        doc = simulator_config_document(sim.url)
        config = parse_config(doc, state_path=str(tmp_path / "state.sqlite"))
        store, other = Store(config.state_path), Store(config.state_path)
        source = config.sources[0]
        keeper = LeaseKeeper(store, [source.name], 60_000, "replica-a")
        keeper.round()
        poller = Poller(
            source, Pipeline(config, store), threading.Event(), lease=keeper.by_source[source.name]
        )
        with other.transaction():
            other.take_lease(
                source_lease(source.name), "replica-b", other.db_now_ms(), 60_000, True
            )
        wait_until(lambda: get_json(f"{sim.url}/sim/v1/truth")["metrics"], 10, "traffic")
        poller.poll()
        assert "lease lost: page not committed, poll stopped" in caplog.text
        state = store.source_state(source.name)
        assert (state.cursor, state.last_poll_ms) == ("", None)
        rows, _, _ = store.snapshot()
        assert [r for r in rows if r[0] == "smswatch_records_total" and r[2]] == []
        poller.client.close()
        store.close()
        other.close()
    finally:
        sim.stop()

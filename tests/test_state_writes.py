"""How the state writes on both backends: many rows at once keep every value and the order of
their rows exactly (PostgreSQL writes them in one statement over arrays), tables that grow get
their statistics, and `Store.foreign_writes` tells another connection's commits from this
store's own (the terminal inventory's cache rests on it)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from test_reconcile import T0, feed_terminals, gauges, ms, terminal

from exporter.config import Config, parse_config, simulator_config_document
from exporter.dialect import ANALYZE_AFTER_ROWS, BACKENDS, Backend, Connection, PostgreSQL
from exporter.poller import Pipeline
from exporter.records import Terminal
from exporter.store import Store, open_store

_TABLES = """
CREATE TABLE IF NOT EXISTS v (k TEXT PRIMARY KEY, i INTEGER, r REAL, b BLOB, t TEXT);
CREATE TABLE IF NOT EXISTS n (k TEXT PRIMARY KEY, total INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS logged (id INTEGER PRIMARY KEY, what TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
"""


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Backend, Connection]]:
    """A connection to a new state with the tables above, on each backend."""
    if request.param == "sqlite":
        backend = Backend(str(tmp_path / "s.sqlite"))
    else:
        backend = PostgreSQL(request.getfixturevalue("postgresql_dsn"))
    conn = backend.connect()
    backend.prepare_writer(conn)
    backend.create_schema(conn, _TABLES)
    yield backend, conn
    conn.close()


def _rows(conn: Connection, sql: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in conn.execute(sql).fetchall()]


def test_many_rows_keep_every_value_exactly(db: tuple[Backend, Connection]) -> None:
    _, conn = db
    rows = [
        ("a", 2**40 + 1, 0.1, b"\x00\xff\x10", "é漢字😀"),
        ("b", -(2**63), 1e300, b"", ""),
        ("c", 2**63 - 1, 3, None, None),  # an int in a REAL column: stored as 3.0
        ("d", None, None, b"x", "line\nbreak 'quoted' \"double\" \\ {braces},"),
        ("e", 0, -0.5, None, "NULL"),
    ]
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO v (k, i, r, b, t) VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    stored = _rows(conn, "SELECT k, i, r, b, t FROM v ORDER BY k")
    assert stored == [
        (k, i, None if r is None else float(r), None if b is None else bytes(b), t)
        for k, i, r, b, t in rows
    ]
    assert [type(r) for _, _, r, _, _ in stored[:3]] == [float, float, float]


def test_rows_that_repeat_a_key_apply_in_their_order(db: tuple[Backend, Connection]) -> None:
    _, conn = db
    conn.execute("BEGIN IMMEDIATE")
    add = (
        "INSERT INTO n (k, total) VALUES (?, ?) "
        "ON CONFLICT (k) DO UPDATE SET total = total + excluded.total"
    )
    conn.executemany(add, [("a", 1), ("a", 2), ("b", 5), ("a", 4)])
    conn.executemany("INSERT OR IGNORE INTO n (k, total) VALUES (?, ?)", [("c", 1), ("c", 2)])
    replace = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
    conn.executemany(replace, [("x", "1"), ("y", "1"), ("x", "2")])
    conn.executemany(
        "UPDATE n SET total = ? WHERE k = ?", [(10, "b"), (20, "b"), (30, "c"), (7, "none")]
    )
    conn.executemany("INSERT INTO logged (what) VALUES (?)", [("first",), ("second",), ("third",)])
    conn.executemany(
        "DELETE FROM logged WHERE id = ? AND what = ?", [(2, "second"), (2, "second"), (3, "no")]
    )
    conn.execute("COMMIT")
    assert _rows(conn, "SELECT k, total FROM n ORDER BY k") == [("a", 7), ("b", 20), ("c", 30)]
    assert _rows(conn, "SELECT key, value FROM meta ORDER BY key") == [("x", "2"), ("y", "1")]
    assert _rows(conn, "SELECT id, what FROM logged ORDER BY id") == [(1, "first"), (3, "third")]


def test_a_column_added_later_is_written_too(db: tuple[Backend, Connection]) -> None:
    _, conn = db
    conn.executemany("INSERT INTO v (k, t) VALUES (?, ?)", [("a", "1"), ("b", "2")])
    conn.execute("ALTER TABLE v ADD COLUMN extra TEXT")
    conn.executemany("INSERT INTO v (k, extra) VALUES (?, ?)", [("c", "x"), ("d", None)])
    rows = _rows(conn, "SELECT k, t, extra FROM v ORDER BY k")
    assert rows == [("a", "1", None), ("b", "2", None), ("c", None, "x"), ("d", None, None)]


def test_lookups_by_lists_of_keys_find_the_same_rows(db: tuple[Backend, Connection]) -> None:
    """PostgreSQL takes an IN list of parameters as one array: the same rows, whatever the
    values (a list of mixed or NULL values is sent as it is)."""
    _, conn = db
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO n (k, total) VALUES (?, ?)", [("a", 1), ("b", 2), ("c", 2**40)])
    conn.execute("COMMIT")

    def keys(sql: str, *parameters: object) -> list[object]:
        return sorted(row[0] for row in conn.execute(sql, parameters).fetchall())

    by_key = "SELECT k FROM n WHERE k IN (?, ?, ?, ?) AND total >= ?"
    assert keys(by_key, "a", "c", "c", "zz", 0) == ["a", "c"]
    assert keys(by_key, "a", None, "b", "é", 2) == ["b"]
    both = "SELECT k FROM n WHERE total IN (?, ?) AND k IN (?, ?)"
    assert keys(both, 2, 2**40, "b", "c") == ["b", "c"]
    assert keys(both, 2, 1.0, "a", "b") == ["a", "b"]


def test_a_failed_page_leaves_nothing_and_the_next_one_goes_in(
    db: tuple[Backend, Connection],
) -> None:
    _, conn = db
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
        conn.executemany("INSERT INTO n (k, total) VALUES (?, ?)", [("a", 1), ("b", None)])
    conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO n (k, total) VALUES (?, ?)", [("a", 1), ("b", 2)])
    conn.execute("COMMIT")
    assert _rows(conn, "SELECT k, total FROM n ORDER BY k") == [("a", 1), ("b", 2)]


@pytest.mark.parametrize("row", [("a", 2**63, 1.0), ("b", 1, 10**400)])
def test_a_number_postgresql_cannot_hold_is_refused_as_a_data_error(
    postgresql_dsn: str, row: tuple[object, ...]
) -> None:
    """As row by row: the page is refused with a DataError, which sends it record by record
    to the quarantine (`UNSTORABLE_ERRORS`)."""
    backend = PostgreSQL(postgresql_dsn)
    conn = backend.connect()
    backend.create_schema(conn, _TABLES)
    with pytest.raises(psycopg.DataError):
        conn.executemany("INSERT INTO v (k, i, r) VALUES (?, ?, ?)", [("z", 1, 2.0), row])
    conn.close()


def test_a_table_that_grows_gets_its_statistics_on_postgresql(postgresql_dsn: str) -> None:
    """Without statistics PostgreSQL scans a table for an IN list of keys (a page's lookups),
    seconds a page once the table is large; a growing table is analyzed as it grows."""
    backend = PostgreSQL(postgresql_dsn)
    conn = backend.connect()
    backend.prepare_writer(conn)
    backend.create_schema(conn, _TABLES)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO logged (what) VALUES (?)", [(f"w{i}",) for i in range(ANALYZE_AFTER_ROWS + 1)]
    )
    conn.execute("COMMIT")
    analyzed = _rows(
        conn,
        "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() "
        "AND tablename = 'logged'",
    )
    conn.close()
    assert analyzed[0][0] > 0


@pytest.fixture
def config(tmp_path: Path, on_backend: Callable[[Config], Config]) -> Config:
    raw = simulator_config_document("http://127.0.0.1:1")
    return on_backend(parse_config(raw, state_path=str(tmp_path / "state.sqlite")))


def _commit(store: Store, n: int = 1) -> None:
    with store.transaction():
        store.add_counters(Counter({("smswatch_records_total", ("s", "ok")): n}))


def test_foreign_writes_change_with_another_connections_commits_only(config: Config) -> None:
    store, other = open_store(config), open_store(config)
    try:
        seen = store.foreign_writes()
        assert store.foreign_writes() == seen  # nothing committed
        _commit(store)
        with pytest.raises(RuntimeError), store.transaction():
            store.add_counters(Counter({("smswatch_records_total", ("s", "ok")): 5}))
            raise RuntimeError("rolled back")
        _commit(store)
        assert store.foreign_writes() == seen  # its own commits (and rollback) only
        _commit(other)
        changed = store.foreign_writes()
        assert changed != seen
        _commit(store)
        assert store.foreign_writes() == changed
        _commit(other)
        _commit(store)  # its own commit after another's: the other's still shows
        assert store.foreign_writes() != changed
    finally:
        store.close()
        other.close()


def _inventory(n: int) -> list[Terminal]:
    return [terminal(f"T{i}", i % 3 != 0, -30)._replace(last_seen_ms=ms(-5)) for i in range(n)]


def test_an_unchanged_inventory_is_not_read_back_on_either_backend(config: Config) -> None:
    """The inventory cache of this process serves on PostgreSQL as on SQLite; another
    process's commit (a replica's poll) sends it back to the stored rows."""
    pipeline = Pipeline(config, open_store(config), clock=lambda: T0 / 1000 + 86_400)
    other = Pipeline(config, open_store(config), clock=pipeline.clock)
    asked: list[str] = []
    read = pipeline.store.stored_terminals

    def spy(ids: list[str]) -> object:
        asked.extend(ids)
        return read(ids)

    pipeline.store.stored_terminals = spy  # type: ignore[assignment,method-assign]
    try:
        feed_terminals(pipeline, _inventory(20), 1)
        asked.clear()
        feed_terminals(pipeline, _inventory(20), 2)
        assert asked == []
        off = _inventory(20)
        off[1] = off[1]._replace(sms_notice_enabled=False, changed_ms=ms(1.5))
        feed_terminals(other, off, 3)
        feed_terminals(pipeline, _inventory(20), 4)  # T1 on again, as this process saw it
        assert len(asked) == 20
        assert pipeline.store.terminal("T1").sms_notice_enabled is True  # type: ignore[union-attr]
        assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "disabled", "current")] == 7
    finally:
        pipeline.store.close()
        other.store.close()


def test_a_commit_cut_off_by_the_server_counts_as_foreign(postgresql_dsn: str) -> None:
    """A write whose COMMIT never answered may have committed or not: the cache is dropped."""
    store = Store(postgresql_dsn, backend=PostgreSQL(postgresql_dsn))
    try:
        seen = store.foreign_writes()
        pid = store._db.execute("SELECT pg_backend_pid()").fetchone()[0]
        store._db.execute("BEGIN IMMEDIATE")
        with psycopg.connect(postgresql_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))  # waits till gone
        with pytest.raises(psycopg.OperationalError):
            store._db.execute("COMMIT")
        assert store.foreign_writes() != seen
        assert store.foreign_writes() == store.foreign_writes()  # connected again
    finally:
        store.close()

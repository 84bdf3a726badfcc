"""The PostgreSQL state backend: its configuration, and moving a SQLite state into it
(`smswatch state migrate`), on a real PostgreSQL server."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from postgresql_server import Server
from test_reconcile import T0, feed_sms, feed_terminals, feed_txns, ms, sms, terminal, txn

from exporter import cli
from exporter.config import load_config, parse_config, simulator_config_document
from exporter.dialect import PostgreSQL
from exporter.errors import ConfigError
from exporter.poller import Pipeline
from exporter.store import AuditEntry, Store, decode_labels, open_store


def _document(state: dict[str, Any]) -> dict[str, Any]:
    raw = simulator_config_document("http://127.0.0.1:1")
    raw["state"] = state
    return raw


def test_postgresql_state_takes_its_password_from_the_environment() -> None:
    config = parse_config(
        _document(
            {
                "backend": "postgresql",
                "dsn": "postgresql://smswatch@db.internal:5432/smswatch",
                "password": "${SMSWATCH_STATE_PASSWORD}",
            }
        ),
        env={"SMSWATCH_STATE_PASSWORD": "s3cret"},
    )
    assert config.state_backend == "postgresql"
    assert config.state_dsn == "postgresql://smswatch@db.internal:5432/smswatch"
    assert config.state_password == "s3cret"
    assert "s3cret" not in repr(config)
    assert parse_config(_document({})).state_backend == "sqlite"


@pytest.mark.parametrize(
    ("state", "path", "words"),
    [
        ({"backend": "mysql"}, "state.backend", "sqlite, postgresql"),
        ({"backend": "postgresql"}, "state.dsn", "is required"),
        (
            {"backend": "postgresql", "dsn": "postgresql://u:pw@db/smswatch"},
            "state.dsn",
            "must not hold a password",
        ),
        (
            {"backend": "postgresql", "dsn": "host=db password=pw"},
            "state.dsn",
            "must not hold a password",
        ),
        (
            {"backend": "postgresql", "dsn": "postgresql://u@db/s", "password": "pw"},
            "state.password",
            "must not be written in the config file",
        ),
        ({"dsn": "postgresql://u@db/smswatch"}, "state.dsn", "only with backend: postgresql"),
        ({"backend": "postgresql", "dsn": "host=db =x"}, "state.dsn", "not a PostgreSQL"),
    ],
)
def test_state_database_errors_name_the_field(state: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_document(state))
    assert caught.value.field_path == path
    assert words in str(caught.value)
    assert "pw" not in str(caught.value).replace(path, "")


def _sqlite_pipeline(tmp_path: Path) -> Pipeline:
    raw = simulator_config_document("http://127.0.0.1:1")
    config = parse_config(raw, state_path=str(tmp_path / "state.sqlite"))
    return Pipeline(config, open_store(config), clock=lambda: T0 / 1000 + 86_400)


def _counters(store: Store) -> dict[tuple[str, tuple[str, ...]], float]:
    rows, _, _ = store.snapshot()
    return {(m, decode_labels(labels)): v for m, labels, v in rows}


def test_state_migrate_moves_a_sqlite_state_into_postgresql(
    tmp_path: Path, postgresql_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite = _sqlite_pipeline(tmp_path)
    feed_terminals(sqlite, [terminal("T1", True, -60)], 1)
    feed_sms(sqlite, [sms("m1", "rrn1", "delivered", 0, 0.2)], 1)
    feed_txns(sqlite, [txn(1, 0), txn(2, 0.5), txn(3, 1)], 1)  # open until their due time
    sqlite.store.add_audit(
        AuditEntry(ms(2), "alice", "token", "api", "", "rrn", "rrn1", None, None, 1, "ok")
    )
    counters, open_receipts = _counters(sqlite.store), sqlite.store.open_receipts()
    assert len(open_receipts) == 3 and counters
    sqlite.store.close()

    assert (
        cli.main(["state", "migrate", "--from", sqlite.config.state_path, "--to", postgresql_dsn])
        == 0
    )
    assert "3 open receipts), verified equal" in capsys.readouterr().out

    config = replace(sqlite.config, state_backend="postgresql", state_dsn=postgresql_dsn)
    moved = Pipeline(config, open_store(config), clock=sqlite.clock)
    assert _counters(moved.store) == counters
    assert moved.store.open_receipts() == open_receipts
    # what dedups lives on (the same transaction again is a duplicate), and the moved open
    # receipts are decided once each: two delivered, one missing
    feed_terminals(moved, [terminal("T1", True, -60)], 30)
    feed_sms(moved, [sms("m2", "rrn2", "delivered", 0.5, 0.6)], 30)
    feed_txns(moved, [txn(2, 0.5)], 30)
    after = _counters(moved.store)
    assert after[("smswatch_records_total", ("acquirer", "duplicate"))] == 1
    decided = {k[1]: v for k, v in after.items() if k[0] == "smswatch_receipts_total"}
    assert sorted((labels[1], v) for labels, v in decided.items()) == [
        ("delivered", 2.0),
        ("missing", 1.0),
    ]
    assert moved.store.open_receipts() == []
    # new rows' ids follow the copied ones
    moved.store.add_audit(
        AuditEntry(ms(3), "bob", "token", "api", "", "rrn", "rrn2", None, None, 1, "ok")
    )
    assert [e.user for e in moved.store.audit_entries(0, ms(10))] == ["alice", "bob"]
    moved.store.close()

    # a second migration into the now filled database is refused, and changes nothing
    assert (
        cli.main(["state", "migrate", "--from", sqlite.config.state_path, "--to", postgresql_dsn])
        == 1
    )
    assert "already holds data" in capsys.readouterr().err
    again = open_store(config)
    assert _counters(again) == after
    again.close()


def test_state_migrate_refuses_a_password_in_the_dsn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        ["state", "migrate", "--from", str(tmp_path / "s.sqlite"), "--to", "postgresql://u:pw@h/db"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "--to" in err and "must not hold a password" in err and "pw@" not in err


def test_run_refuses_a_state_file_when_the_state_is_on_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--state.path` names a SQLite file: with `state.backend: postgresql` it would be silently
    ignored, and the operator would believe the exporter writes where it does not."""
    raw = _document({"backend": "postgresql", "dsn": "host=127.0.0.1 port=1 dbname=none"})
    config_file = tmp_path / "smswatch.yaml"
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    state_file = tmp_path / "elsewhere.sqlite"
    code = cli.main(["run", "--config.file", str(config_file), "--state.path", str(state_file)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--state.path" in err and "postgresql" in err
    assert not state_file.exists()


def test_lookup_and_quarantine_read_the_configured_postgresql_state(
    tmp_path: Path, postgresql_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _document({"backend": "postgresql", "dsn": postgresql_dsn})
    config_file = tmp_path / "smswatch.yaml"
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = load_config(str(config_file))
    p = Pipeline(config, open_store(config), clock=lambda: T0 / 1000 + 86_400)
    feed_txns(p, [txn(1, 0), txn(2, 0)._replace(merchant_id="M\x001")], 1)
    p.store.close()
    assert cli.main(["lookup", "--config.file", str(config_file), "--rrn", "rrn1"]) == 0
    assert "t1" in capsys.readouterr().out
    assert cli.main(["state", "quarantine", "--config.file", str(config_file)]) == 0
    assert "source=acquirer  Transaction  DataError" in capsys.readouterr().out


def test_write_transactions_on_one_postgresql_state_take_turns(postgresql_dsn: str) -> None:
    """As on SQLite (BEGIN IMMEDIATE), a second writer (another process, a replica) waits for
    the first one's commit before it reads: what it decides on is what was committed."""
    first = Store(postgresql_dsn, backend=PostgreSQL(postgresql_dsn))
    second = Store(postgresql_dsn, backend=PostgreSQL(postgresql_dsn))
    entered = threading.Event()

    def write_second() -> None:
        with second.transaction():
            entered.set()
            second.add_counters(Counter({("smswatch_records_total", ("sms", "accepted")): 1}))

    thread = threading.Thread(target=write_second)
    with psycopg.connect(postgresql_dsn) as watcher, first.transaction():
        first.add_counters(Counter({("smswatch_records_total", ("sms", "accepted")): 1}))
        thread.start()
        deadline = time.monotonic() + 30
        while not watcher.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone():
            assert time.monotonic() < deadline, "the second writer never waited"
            watcher.rollback()
            time.sleep(0.01)
        assert not entered.is_set()
    thread.join()
    assert entered.is_set()
    assert _counters(first)[("smswatch_records_total", ("sms", "accepted"))] == 2
    first.close()
    second.close()


def test_postgresql_commits_wait_for_disk_only_inside_durable(postgresql_dsn: str) -> None:
    """Pushes and consuming pulls (`Store.durable`) commit at synchronous_commit = on, like
    SQLite's synchronous=FULL; re-readable feeds at off, like NORMAL."""
    store = Store(postgresql_dsn, backend=PostgreSQL(postgresql_dsn))

    def mode() -> str:
        return str(store._db.execute("SHOW synchronous_commit").fetchone()[0])

    assert mode() == "off"
    with store.durable(), store.transaction():
        assert mode() == "on"
    assert mode() == "off"
    store.close()


def test_a_store_connects_again_after_the_postgresql_server_restarted(
    postgresql_server: Server, postgresql_dsn: str
) -> None:
    """A transaction that begins after the server came back runs on a new connection, with
    the same settings; what was committed before is there, and nothing counts twice."""
    store = Store(postgresql_dsn, backend=PostgreSQL(postgresql_dsn))
    accepted = Counter({("smswatch_records_total", ("sms", "accepted")): 1})
    with store.transaction():
        store.add_counters(accepted)
    postgresql_server.restart()
    with store.transaction():
        store.add_counters(accepted)
    assert _counters(store)[("smswatch_records_total", ("sms", "accepted"))] == 2
    assert store._db.execute("SHOW synchronous_commit").fetchone()[0] == "off"
    store.close()

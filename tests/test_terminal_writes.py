"""The terminal inventory is polled in full on every poll: a snapshot that shows nothing new
writes nothing (no inventory row, no history row, no gauge series), the snapshot's stored state
is read in one query per table, not once per terminal, and what a snapshot does show is stored
exactly as before."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_reconcile import feed_terminals, gauges, ms, terminal

from exporter.config import parse_config, simulator_config_document
from exporter.poller import Pipeline
from exporter.records import Terminal
from exporter.sources.generic import _parse_items, _terminal, parse_terminal_page
from exporter.store import Store

T0 = ms(0)
INVENTORY_TABLES = ("terminals", "terminal_history", "gauges")


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    raw = simulator_config_document("http://127.0.0.1:1")
    config = parse_config(raw, state_path=str(tmp_path / "state.sqlite"))
    return Pipeline(config, Store(config.state_path), clock=lambda: T0 / 1000 + 86_400)


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """Every SQL statement the store's writer connection runs inside the block."""
    seen: list[str] = []
    store._db.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        store._db.set_trace_callback(None)


def writes_to(seen: list[str], tables: tuple[str, ...]) -> list[str]:
    """The INSERT/UPDATE/DELETE statements among `seen` that touch one of `tables`."""
    pattern = re.compile(
        r"^\s*(INSERT( OR \w+)? INTO|UPDATE|DELETE FROM)\s+(" + "|".join(tables) + r")\b", re.I
    )
    return [s for s in seen if pattern.match(s)]


def inventory(n: int, *, version: str = "5.2.1") -> list[Terminal]:
    """`n` terminals with a flip history each, as an acquirer reports them on every poll."""
    return [
        terminal(f"T{i}", i % 3 != 0, -30, version)._replace(
            history=((ms(-60), i % 3 == 0), (ms(-30), i % 3 != 0)), last_seen_ms=ms(-5)
        )
        for i in range(n)
    ]


def history_rows(p: Pipeline) -> list[tuple[object, ...]]:
    return list(p.store._db.execute("SELECT * FROM terminal_history ORDER BY 1, 2"))


def test_an_unchanged_inventory_writes_nothing_of_it(pipeline: Pipeline) -> None:
    feed_terminals(pipeline, inventory(50), 1)
    before = history_rows(pipeline), gauges(pipeline, "smswatch_pos_terminals")
    with statements(pipeline.store) as seen:
        feed_terminals(pipeline, inventory(50), 2)
    assert writes_to(seen, INVENTORY_TABLES) == []
    assert (history_rows(pipeline), gauges(pipeline, "smswatch_pos_terminals")) == before


def test_the_stored_inventory_is_read_in_one_query_per_table(pipeline: Pipeline) -> None:
    feed_terminals(pipeline, inventory(300), 1)
    with statements(pipeline.store) as seen:
        feed_terminals(pipeline, inventory(300), 2)
    reads = [s for s in seen if re.match(r"^\s*SELECT\b.*\bFROM (terminals|terminal_history)\b", s)]
    assert len(reads) <= 4, reads[:5]


def test_only_what_changed_is_written(pipeline: Pipeline) -> None:
    feed_terminals(pipeline, inventory(20), 1)
    changed = inventory(20)
    changed[4] = changed[4]._replace(last_seen_ms=ms(1))  # a transaction since: no gauge change
    with statements(pipeline.store) as seen:
        feed_terminals(pipeline, changed, 2)
    assert [s for s in writes_to(seen, INVENTORY_TABLES) if "T4" not in s] == []
    assert len(writes_to(seen, ("terminals",))) == 1
    row = pipeline.store._db.execute(
        "SELECT last_seen_ms FROM terminals WHERE terminal_id = 'T4'"
    ).fetchone()
    assert row == (ms(1),)


def test_a_notice_switched_off_moves_the_gauge_and_is_recorded_from_its_time(
    pipeline: Pipeline,
) -> None:
    feed_terminals(pipeline, inventory(6), 1)
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "enabled", "current")] == 4
    off = inventory(6)
    off[1] = off[1]._replace(
        sms_notice_enabled=False, changed_ms=ms(1.5), history=(*off[1].history, (ms(1.5), False))
    )
    feed_terminals(pipeline, off, 2)
    counts = gauges(pipeline, "smswatch_pos_terminals")
    assert counts[("acq-north", "enabled", "current")] == 3
    assert counts[("acq-north", "disabled", "current")] == 3
    assert pipeline.store.terminal_state_at("T1", ms(1)).sms_notice_enabled is True  # type: ignore[union-attr]
    assert pipeline.store.terminal_state_at("T1", ms(2)).sms_notice_enabled is False  # type: ignore[union-attr]


def test_a_terminal_reported_twice_in_a_snapshot_keeps_its_last_row(pipeline: Pipeline) -> None:
    feed_terminals(pipeline, [terminal("T1", True, -60)], 1)
    twice = [terminal("T1", False, 1.5), terminal("T1", True, -60)]  # the second as stored
    feed_terminals(pipeline, twice, 2)
    row = pipeline.store._db.execute(
        "SELECT sms_notice_enabled, changed_ms FROM terminals WHERE terminal_id = 'T1'"
    ).fetchone()
    assert row == (1, ms(-60))
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "enabled", "current")] == 1
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "disabled", "current")] == 0


def test_a_decommissioned_terminal_that_comes_back_keeps_its_history(pipeline: Pipeline) -> None:
    feed_terminals(pipeline, inventory(3), 1)
    recorded = history_rows(pipeline)
    feed_terminals(pipeline, inventory(3)[1:], 2)  # T0 leaves the inventory
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "disabled", "current")] == 0
    feed_terminals(pipeline, inventory(3), 3)  # and comes back as it was
    assert history_rows(pipeline) == recorded
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "disabled", "current")] == 1


def test_a_new_minimum_version_is_applied_to_the_gauge_of_an_unchanged_inventory(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    feed_terminals(pipeline, inventory(4, version="5.1.0"), 1)
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "enabled", "current")] == 2
    pipeline.store.close()
    raw = simulator_config_document("http://127.0.0.1:1")
    raw["terminals"] = {"min_software_version": "5.2.0"}
    config = parse_config(raw, state_path=pipeline.config.state_path)
    restarted = Pipeline(config, Store(config.state_path), clock=pipeline.clock)
    feed_terminals(restarted, inventory(4, version="5.1.0"), 2)
    counts = gauges(restarted, "smswatch_pos_terminals")
    assert counts[("acq-north", "enabled", "outdated")] == 2
    assert counts[("acq-north", "enabled", "current")] == 0


def test_a_terminal_that_cannot_be_stored_is_quarantined_and_left_out_of_the_gauge(
    pipeline: Pipeline,
) -> None:
    beyond = terminal("T8", True, -60)._replace(history=((2**70, True),))  # nested: still checked
    feed_terminals(pipeline, [*inventory(3), beyond, terminal("T\ud800", True, -60)], 1)
    assert sorted(q.reason for q in pipeline.store.quarantined()) == [
        "field history: integer outside the 64-bit range",
        "field terminal_id: text that is not valid Unicode (a lone surrogate)",
    ]
    counts = gauges(pipeline, "smswatch_pos_terminals")
    assert counts[("acq-north", "enabled", "current")] == 2
    assert counts[("acq-north", "disabled", "current")] == 1


def test_a_snapshot_whose_commit_failed_is_recorded_by_the_next_poll(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.store.health.retry_s = 0  # after the failure, no pause before the next attempt
    feed_terminals(pipeline, inventory(3), 1)
    off = inventory(3)
    off[1] = off[1]._replace(sms_notice_enabled=False, changed_ms=ms(1.5))
    real = pipeline.store.set_terminals_watermark

    def locked(name: str, watermark_ms: int) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(pipeline.store, "set_terminals_watermark", locked)
    with pytest.raises(sqlite3.OperationalError):
        feed_terminals(pipeline, off, 2)  # rolled back: nothing of it stays
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "disabled", "current")] == 1
    monkeypatch.setattr(pipeline.store, "set_terminals_watermark", real)
    feed_terminals(pipeline, off, 3)  # the same snapshot again
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "disabled", "current")] == 2
    assert pipeline.store.terminal_state_at("T1", ms(2)).sms_notice_enabled is False  # type: ignore[union-attr]


def test_the_inventory_reads_every_item_as_the_field_rules_say() -> None:
    source = next(
        s for s in parse_config(simulator_config_document("http://x")).sources if s.terminals_path
    )
    usual = {
        "terminal_id": "T1",
        "merchant_id": "M1",
        "acquirer": "acq-north",
        "area": "east",
        "software_version": "5.2.1",
        "sms_notice_enabled": True,
        "changed_at": "2026-11-02T00:00:00Z",
        "last_seen": "2026-11-02T00:05:00.250Z",
        "history": [{"at": "2026-11-01T23:00:00Z", "sms_notice_enabled": True}],
    }
    odd: list[dict[str, object]] = [
        {},
        {"terminal_id": 42},
        {"terminal_id": ""},
        {"terminal_id": True},
        {"merchant_id": None, "acquirer": 7, "area": ""},
        {"sms_notice_enabled": "yes"},
        {"sms_notice_enabled": 0},
        {"sms_notice_enabled": None},
        {"changed_at": 1_790_000_000},
        {"changed_at": 1_790_000_000_123},
        {"changed_at": "yesterday"},
        {"last_seen": ""},
        {"last_seen": None},
        {"last_seen": 1_790_000_000.5},
        {"history": None},
        {"history": []},
        {"history": "often"},
        {"history": [{"at": "2026-11-01T23:00:00Z"}]},
        {"software_version": ["5"]},
    ]
    items = [usual, *({**usual, **change} for change in odd)]
    for missing in usual:
        items.append({k: v for k, v in usual.items() if k != missing})
    payload = {
        "terminals": items,
        "next_cursor": "",
        "has_more": False,
        "watermark": "2026-11-02T00:06:00Z",
    }
    by_rules = _parse_items(payload, source.terminals_feed, _terminal, source.terminal_fields)
    assert parse_terminal_page(payload, source) == by_rules
    assert by_rules.invalid > 5 and len(by_rules.records) > 10


def test_an_inventory_another_process_changed_is_written_again(pipeline: Pipeline) -> None:
    feed_terminals(pipeline, inventory(3), 1)
    other = Pipeline(pipeline.config, Store(pipeline.config.state_path), clock=pipeline.clock)
    off = inventory(3)
    off[1] = off[1]._replace(sms_notice_enabled=False, changed_ms=ms(1.5))
    feed_terminals(other, off, 2)  # another exporter process (a replica) polled the source
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "disabled", "current")] == 2
    feed_terminals(pipeline, inventory(3), 3)  # switched on again, as this process saw it last
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "disabled", "current")] == 1
    assert pipeline.store.terminal("T1") == other.store.terminal("T1")
    assert pipeline.store.terminal("T1").sms_notice_enabled is True  # type: ignore[union-attr]

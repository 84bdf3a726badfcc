"""Identity and joins on a real SQLite store: ids scoped by gateway and acquirer source, the
bounded one-to-one RRN join, the prune horizon, empty cursors and the schema migration."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from exporter.config import Config, parse_config, simulator_config_document
from exporter.errors import ConfigError
from exporter.lookup.commands import render_text
from exporter.lookup.query import parse_query
from exporter.lookup.service import LookupService
from exporter.lookup.settings import LookupSettings
from exporter.poller import Pipeline, Poller
from exporter.records import Page, SmsEvent, Terminal, Transaction
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.simulator.simulation import SimClock
from exporter.sources.generic import parse_sms_page
from exporter.store import SCHEMA_VERSION, Store, decode_labels, open_store

MIN = 60_000
DAY = 1440 * MIN
T0 = 1_800_000_000_000
FIXTURE_V1 = Path(__file__).parent / "fixtures" / "state" / "v1.sql"


def exporter_clock() -> float:
    """The exporter's now in these tests: a month after T0, so no watermark is capped."""
    return T0 / 1000 + 30 * 86_400


def ms(minutes: float) -> int:
    return T0 + int(minutes * MIN)


def txn(
    txn_id: str, rrn: str, at: float, *, acquirer: str = "acq-north", result: str = "approved"
) -> Transaction:
    return Transaction(txn_id, rrn, "T1", "M1", acquirer, 1000, "CNY", "62258800****1234",
                       result, "00", ms(at), result == "approved", "")  # fmt: skip


def sms(
    msg: str,
    ref: str,
    status: str,
    submitted: float,
    at: float,
    *,
    code: str = "000",
    acquirer: str = "",
) -> SmsEvent:
    return SmsEvent(msg, ref, "138****1234", "china-mobile", "east", status, code,
                    ms(submitted), ms(at), acquirer=acquirer)  # fmt: skip


def two_of_each(state_path: str, **extra: Any) -> Config:
    """The simulator config plus a second gateway and a second acquirer source."""
    raw = simulator_config_document("http://127.0.0.1:1")
    raw["sources"] += [
        {"name": "sms-2", "kind": "sms_gateway", "gateway": "bank-sms-2",
         "base_url": "http://127.0.0.1:1"},
        {"name": "acquirer-2", "kind": "acquirer", "base_url": "http://127.0.0.1:1",
         "acquirers": ["acq-north", "acq-south", "acq-east"]},
    ]  # fmt: skip
    raw.update(extra)
    return parse_config(raw, state_path=state_path)


@pytest.fixture
def pipeline(tmp_path: Path, on_backend: Callable[[Config], Config]) -> Pipeline:
    config = on_backend(two_of_each(str(tmp_path / "state.sqlite")))
    return Pipeline(config, open_store(config), clock=exporter_clock)


def source(p: Pipeline, name: str) -> Any:
    return next(s for s in p.config.sources if s.name == name)


def feed_sms(p: Pipeline, events: list[SmsEvent], watermark: float, name: str = "sms") -> None:
    p.commit_sms(source(p, name), Page(events, 0, "c", False, ms(watermark)))


def feed_txns(
    p: Pipeline, txns: list[Transaction], watermark: float, name: str = "acquirer"
) -> None:
    p.commit_transactions(source(p, name), Page(txns, 0, "c", False, ms(watermark)))


def settle_all(p: Pipeline, watermark: float) -> None:
    """Move every feed (and the terminal inventory) to `watermark`."""
    terminal = Terminal("T1", "M1", "acq-north", "east", "5.2.1", True, ms(-60), ms(-60))
    p.commit_terminals(source(p, "acquirer"), [terminal], 0, ms(watermark))
    for s in p.config.sources:
        if s.kind == "sms_gateway":
            feed_sms(p, [], watermark, s.name)
        else:
            feed_txns(p, [], watermark, s.name)


def counters(p: Pipeline, metric: str) -> dict[tuple[str, ...], float]:
    rows, _, _ = p.store.snapshot()
    return {decode_labels(labels): v for m, labels, v in rows if m == metric and v}


def delivered(msg: str, ref: str, sent: float, **kw: Any) -> list[SmsEvent]:
    return [sms(msg, ref, "submitted", sent, sent, **kw),
            sms(msg, ref, "delivered", sent, sent + 0.1, **kw)]  # fmt: skip


# --------------------------------------------------------------------------- item 10: ids


def test_two_gateways_reusing_message_ids_keep_their_own_messages(pipeline: Pipeline) -> None:
    feed_txns(pipeline, [txn("t1", "r1", 0), txn("t2", "r2", 0)], 1)
    feed_sms(pipeline, delivered("m-1", "r1", 0.01), 1, "sms")
    feed_sms(
        pipeline,
        [
            sms("m-1", "r2", "submitted", 0.02, 0.02),
            sms("m-1", "r2", "undelivered", 0.02, 0.2, code="MK:0001"),
        ],
        1,
        "sms-2",
    )
    settle_all(pipeline, 10)
    assert counters(pipeline, "smswatch_sms_submitted_total") == {
        ("bank-sms", "china-mobile", "east"): 1,
        ("bank-sms-2", "china-mobile", "east"): 1,
    }
    assert counters(pipeline, "smswatch_sms_messages_total") == {
        ("bank-sms", "china-mobile", "east", "delivered", "none"): 1,
        ("bank-sms-2", "china-mobile", "east", "undelivered", "invalid_number"): 1,
    }
    assert counters(pipeline, "smswatch_receipts_total") == {
        ("acq-north", "delivered", "none"): 1,
        ("acq-north", "failed", "invalid_number"): 1,
    }
    records = counters(pipeline, "smswatch_records_total")
    assert ("sms-2", "duplicate") not in records and ("sms-2", "conflict") not in records
    # a resend through the second gateway that happens to get the same id: shown, not counted
    feed_txns(pipeline, [txn("t3", "r3", 11)], 12)
    feed_sms(pipeline, delivered("m-3", "r3", 11.01), 12, "sms")
    feed_sms(pipeline, delivered("m-3", "r3", 11.5), 12, "sms-2")
    settle_all(pipeline, 20)
    found = LookupService(pipeline.store, LookupSettings(timezone="UTC")).find(
        parse_query({"rrn": "r3"}, ZoneInfo("UTC"), default_window_ms=MIN, max_window_ms=MIN)
    )
    (shown,) = [r.to_json() for r in found.results]
    assert [(m["gateway"], m["message_id"], m["counts_for_receipt"]) for m in shown["sms"]] == [
        ("bank-sms", "m-3", True),
        ("bank-sms-2", "m-3", False),
    ]


def test_two_acquirer_sources_reusing_transaction_ids_keep_both(pipeline: Pipeline) -> None:
    feed_txns(pipeline, [txn("t-1", "r1", 0)], 1, "acquirer")
    feed_txns(pipeline, [txn("t-1", "r2", 0.5, acquirer="acq-south")], 1, "acquirer-2")
    feed_txns(pipeline, [txn("t-1", "r2", 0.5, acquirer="acq-south")], 1, "acquirer-2")
    feed_sms(pipeline, delivered("m-1", "r1", 0.01) + delivered("m-2", "r2", 0.51), 1)
    settle_all(pipeline, 10)
    assert counters(pipeline, "smswatch_pos_transactions_total") == {
        ("acq-north", "approved"): 1,
        ("acq-south", "approved"): 1,
    }
    assert counters(pipeline, "smswatch_receipts_total") == {
        ("acq-north", "delivered", "none"): 1,
        ("acq-south", "delivered", "none"): 1,
    }
    assert counters(pipeline, "smswatch_records_total")[("acquirer-2", "duplicate")] == 1
    # the support desk sees both transactions, each with its own SMS
    found = LookupService(pipeline.store, LookupSettings(timezone="UTC")).find(
        parse_query({"txn_id": "t-1"}, ZoneInfo("UTC"), default_window_ms=MIN, max_window_ms=MIN)
    )
    shown = [r.to_json() for r in found.results]
    assert sorted(r["source"] for r in shown) == ["acquirer", "acquirer-2"]
    linked = {
        r["rrn"]: [m["message_id"] for m in r["sms"] if m["counts_for_receipt"]] for r in shown
    }
    assert linked == {"r1": ["m-1"], "r2": ["m-2"]}
    text = render_text(found, LookupSettings(timezone="UTC"), "en")
    assert "t-1 (acquirer)" in text and "t-1 (acquirer-2)" in text


def test_a_state_file_written_by_schema_1_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as db:  # the dump of a file written by the version 1 code
        db.executescript(FIXTURE_V1.read_text(encoding="utf-8"))
    raw = simulator_config_document("http://127.0.0.1:1")
    config = parse_config(raw, state_path=str(path))
    p = Pipeline(config, Store(str(path)), clock=exporter_clock)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        sources = set(db.execute("SELECT source FROM transactions"))
        assert sources == {("acquirer",)}
    assert counters(p, "smswatch_receipts_total") == {("acq-north", "delivered", "none"): 1}
    sms_source, acquirer = config.sources
    # a re-read of the old records is still a duplicate, in the migrated scopes
    p.commit_transactions(
        acquirer, Page([txn("t-1", "600000000001", 0)], 0, "t2", False, T0 + 3 * MIN)
    )
    p.commit_sms(
        sms_source,
        Page(delivered("m-1", "600000000001", 1 / 60), 0, "m2", False, T0 + 3 * MIN),
    )
    # the reversal seen before its original (t-9) still cancels it once the original arrives
    p.commit_transactions(acquirer, Page([txn("t-9", "600000000009", 1)], 0, "t3", False, ms(3)))
    # the open receipt linked with the pending m-2 is decided with it; t-3 has no SMS
    p.commit_sms(
        sms_source,
        Page([sms("m-2", "600000000002", "delivered", 1 + 1 / 60, 1.2)], 0, "m3", False, ms(3)),
    )
    terminal = Terminal("T1", "M1", "acq-north", "east", "5.2.1", True, T0 - MIN, T0)
    p.commit_terminals(acquirer, [terminal], 0, ms(20))
    p.commit_transactions(acquirer, Page([], 0, "t4", False, ms(20)))
    p.commit_sms(sms_source, Page([], 0, "m4", False, ms(20)))
    assert counters(p, "smswatch_receipts_total") == {
        ("acq-north", "delivered", "none"): 2,
        ("acq-north", "missing", "integration"): 1,
    }
    assert counters(p, "smswatch_records_total")[("acquirer", "duplicate")] == 1
    assert counters(p, "smswatch_records_total")[("sms", "duplicate")] == 2
    assert counters(p, "smswatch_sms_submitted_total") == {("bank-sms", "china-mobile", "east"): 2}
    found = p.store.lookup("rrn", "600000000002")
    assert [t.message_gateway for t in found.transactions] == ["bank-sms"]
    assert [m.message_id for m in found.messages["600000000002"]] == ["m-2"]


# --------------------------------------------------------------------------- item 11: join


def test_a_reused_rrn_never_links_to_an_sms_from_days_earlier(pipeline: Pipeline) -> None:
    feed_txns(pipeline, [txn("t1", "r1", 0)], 1)
    feed_sms(pipeline, delivered("m1", "r1", 0.01), 1)
    settle_all(pipeline, 10)
    feed_txns(pipeline, [txn("t2", "r1", DAY / MIN)], DAY / MIN + 10)  # reused a day later
    settle_all(pipeline, DAY / MIN + 10)
    assert counters(pipeline, "smswatch_receipts_total") == {
        ("acq-north", "delivered", "none"): 1,
        ("acq-north", "missing", "integration"): 1,
    }
    assert counters(pipeline, "smswatch_receipt_notify_seconds:sum_ms") == {("acq-north",): 6600}


def test_an_rrn_reused_by_another_acquirer_is_joined_within_its_acquirer(
    pipeline: Pipeline,
) -> None:
    feed_txns(pipeline, [txn("t1", "r1", 0), txn("t2", "r1", 0.1, acquirer="acq-south")], 1)
    feed_sms(pipeline, delivered("m1", "r1", 0.02, acquirer="acq-north"), 1)
    settle_all(pipeline, 10)
    assert counters(pipeline, "smswatch_receipts_total") == {
        ("acq-north", "delivered", "none"): 1,
        ("acq-south", "missing", "integration"): 1,
    }


def test_one_sms_satisfies_one_receipt_the_latest_before_it(pipeline: Pipeline) -> None:
    feed_txns(pipeline, [txn("t1", "r1", 0)], 1)
    feed_sms(pipeline, delivered("m2", "r1", 2.02), 2.5)  # the SMS of the next one
    feed_txns(pipeline, [txn("t2", "r1", 2)], 2.5)  # the same RRN, 2 minutes later
    settle_all(pipeline, 10)
    assert counters(pipeline, "smswatch_receipts_total") == {
        ("acq-north", "delivered", "none"): 1,
        ("acq-north", "missing", "integration"): 1,
    }
    rows = pipeline.store.lookup("rrn", "r1").transactions
    assert [(t.txn_id, t.outcome, t.message_id) for t in rows] == [
        ("t1", "missing", None),
        ("t2", "delivered", "m2"),
    ]


def test_an_sms_delivered_before_txn_time_is_clamped_and_counted(pipeline: Pipeline) -> None:
    feed_txns(pipeline, [txn("t1", "r1", 1)], 2)
    feed_sms(pipeline, delivered("m1", "r1", 0.8), 2)  # clocks 12 s apart: delivered at 0.9
    settle_all(pipeline, 10)
    assert counters(pipeline, "smswatch_receipts_total") == {("acq-north", "delivered", "none"): 1}
    assert counters(pipeline, "smswatch_receipt_notify_clamped_total") == {("acq-north",): 1}
    assert counters(pipeline, "smswatch_receipt_notify_seconds:bucket") == {("acq-north", "0"): 1}
    assert counters(pipeline, "smswatch_receipt_notify_seconds:sum_ms") == {}  # 0, never < 0


def test_an_sms_beyond_the_skew_tolerance_is_not_the_receipts(tmp_path: Path) -> None:
    config = two_of_each(
        str(tmp_path / "state.sqlite"),
        reconcile={"missing_after": "5m", "give_up_after": "30m", "join": {"max_skew": "10s"}},
    )
    p = Pipeline(config, Store(config.state_path), clock=exporter_clock)
    feed_txns(p, [txn("t1", "r1", 1)], 2)
    feed_sms(p, delivered("m1", "r1", 0.8), 2)  # 12 s before txn_time: beyond 10 s
    settle_all(p, 10)
    assert counters(p, "smswatch_receipts_total") == {("acq-north", "missing", "integration"): 1}


# --------------------------------------------------------------------------- item 12


def test_records_older_than_the_prune_horizon_are_refused_as_late(pipeline: Pipeline) -> None:
    feed_txns(pipeline, [txn("t1", "r1", 0)], 1)
    feed_sms(pipeline, delivered("m1", "r1", 0.01), 1)
    settle_all(pipeline, 60)
    assert pipeline.store.prune(ms(50)) == 2  # the decided receipt and its message
    feed_txns(pipeline, [txn("t1", "r1", 0), txn("t2", "r2", 55)], 61)  # t1 re-read
    feed_sms(pipeline, delivered("m1", "r1", 0.01), 61)
    settle_all(pipeline, 70)
    assert counters(pipeline, "smswatch_pos_transactions_total") == {("acq-north", "approved"): 2}
    assert counters(pipeline, "smswatch_sms_submitted_total") == {
        ("bank-sms", "china-mobile", "east"): 1
    }
    assert counters(pipeline, "smswatch_receipts_total") == {
        ("acq-north", "delivered", "none"): 1,
        ("acq-north", "missing", "integration"): 1,
    }
    records = counters(pipeline, "smswatch_records_total")
    assert records[("acquirer", "late")] == 1 and records[("sms", "late")] == 2
    pipeline.store.close()
    reopened = open_store(pipeline.config)
    assert reopened.prune_horizon_ms() == ms(50)  # the horizon survives a restart


def test_an_empty_next_cursor_stays_where_the_feed_was(pipeline: Pipeline) -> None:
    acquirer = source(pipeline, "acquirer")
    pipeline.commit_transactions(acquirer, Page([txn("t1", "r1", 0)], 0, "c-7", True, ms(0)))
    pipeline.commit_transactions(acquirer, Page([], 0, "", False, ms(1)))
    state = pipeline.store.source_state("acquirer")
    assert (state.cursor, state.watermark_ms) == ("c-7", ms(1))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"state": {"retention": "20m"}}, "missing_after + reconcile.give_up_after"),
        (
            {"sources": [{"name": "tw", "kind": "sms_gateway", "provider": "twilio",
                          "account_sid": "AC1", "auth": {"type": "basic", "username": "AC1",
                          "password": "${SECRET}"}, "lookback": "2d"}],
             "state": {"retention": "1d"}},
            "sources[2].lookback (2d)",
        ),
        (
            {"sources": [{"name": "ali", "kind": "sms_gateway", "provider": "aliyun",
                          "phone_numbers": ["13800001234"], "send_date_days": 3,
                          "auth": {"type": "aliyun", "access_key_id": "k",
                                   "access_key_secret": "${SECRET}"}}],
             "state": {"retention": "2d"}},
            "sources[2].send_date_days (3d)",
        ),
    ],
)  # fmt: skip
def test_a_retention_shorter_than_a_source_rereads_is_refused(
    change: dict[str, Any], message: str
) -> None:
    raw = simulator_config_document("http://127.0.0.1:1")
    raw["sources"] += change.pop("sources", [])
    raw.update(change)
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, env={"SECRET": "s"})
    assert "state.retention" in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize("fields", [{}, {"acquirer": "meta.acquirer", "message_id": "id"}])
def test_a_generic_sms_feed_may_name_the_acquirer(fields: dict[str, str]) -> None:
    raw = simulator_config_document("http://127.0.0.1:1")
    raw["sources"][0]["fields"] = fields
    source = parse_config(raw, state_path=":memory:").sources[0]
    at = "2026-11-26T08:00:00Z"
    item = {"message_id": "m-1", "id": "m-1", "txn_ref": "r1", "status": "DELIVRD",
            "submitted_at": at, "status_at": at}  # fmt: skip
    named = {**item, "acquirer": "acq-south", "meta": {"acquirer": "acq-south"}}
    page = parse_sms_page(
        {"messages": [named, item], "next_cursor": "c", "has_more": False,
         "watermark": "2026-11-26T08:01:00Z"},
        source,
    )  # fmt: skip
    assert [e.acquirer for e in page.records] == ["acq-south", ""]


def test_a_feed_answering_without_next_cursor_is_not_read_again_from_the_start(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("faults: [{kind: cursor_reset, start: 20m, duration: 2m, share: 1.0}]")
    wall = [0.0]  # the simulated clock moves only when the test says so
    settings = settings_from_options(
        seed=3, speed=1.0, start_ms=T0, scenario=str(scenario), rate=1.0
    )
    server = SimulatorServer(settings)
    server.simulation.clock = SimClock(T0, 1.0, wall=lambda: wall[0])
    server.start()
    try:
        raw = simulator_config_document(server.url)
        config = parse_config(raw, state_path=str(tmp_path / "state.sqlite"))
        pipeline = Pipeline(config, Store(config.state_path), clock=exporter_clock)
        poller = Poller(config.sources[0], pipeline, threading.Event())
        wall[0] = 19.9 * 60  # up to just before the reset: read everything
        poller.poll()
        before = counters(pipeline, "smswatch_records_total")[("sms", "accepted")]
        cursor = pipeline.store.source_state("sms").cursor
        for minutes in (20.5, 21, 21.5):  # answers without next_cursor: stay and ask again
            wall[0] = minutes * 60
            poller.poll()
            assert poller.health.up and pipeline.store.source_state("sms").cursor == cursor
        wall[0] = 23 * 60  # the feed gives cursors again
        poller.poll()
        records = counters(pipeline, "smswatch_records_total")
        assert pipeline.store.source_state("sms").cursor != cursor
        # re-read: only what came after the cursor (under 2 minutes of events, three times),
        # never the 20 minutes before it
        assert records[("sms", "duplicate")] < before / 2
        assert records[("sms", "accepted")] > before
    finally:
        server.stop()

"""Records that parse but cannot be stored never stall a feed nor fail a push batch forever.

End to end: the simulator's `poison_records` fault serves, after a share of the records,
poisoned items (an integer above 2^63, a lone surrogate, `Infinity`, items missing their id).
The exporter runs as a real `smswatch run` process: every valid record is still counted
exactly as the truth says, every poisoned one is counted `invalid`, and the refused records
are kept masked in the quarantine, listed by `smswatch state quarantine`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from test_exporter_end_to_end import (
    RAW_PHONE,
    start_exporter,
    start_simulator,
    wait_for_exact_agreement,
    write_config,
)
from test_identity import T0, counters, exporter_clock
from test_push import SECRET, document, post

from exporter.app import Exporter
from exporter.config import parse_config, simulator_config_document
from exporter.poller import Pipeline, Poller
from exporter.records import Page, Transaction
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.simulator.simulation import SimClock
from exporter.store import Store

from harness import StateBackend, config_with, free_port, scrape, wait_until

POISON_SCENARIO = """
faults:
  - {kind: poison_records, start: 0m, duration: 25m, target: both, share: 0.08,
     mode: [big_integer, lone_surrogate, infinity, invalid_item]}
  - {kind: invalid_numbers, start: 5m, duration: 10m, share: 0.3}
"""


def invalid_records(
    metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], source: str
) -> float:
    return metrics.get(
        ("smswatch_records_total", frozenset({("source", source), ("result", "invalid")})), 0.0
    )


def test_poisoned_feeds_never_stall_and_valid_records_stay_exact(
    tmp_path: Path, state_backend: StateBackend
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(POISON_SCENARIO)
    sim = start_simulator(str(scenario), speed=600, traffic="30m")
    port = free_port()
    config = write_config(tmp_path, sim.url, state_backend)
    try:
        exporter = start_exporter(tmp_path, config, port)
        try:
            truth = wait_for_exact_agreement(sim, f"http://127.0.0.1:{port}/metrics")
            poisoned = truth["records"]
            assert poisoned["messages"]["invalid"] > 10
            assert poisoned["transactions"]["invalid"] > 10
            metrics_url = f"http://127.0.0.1:{port}/metrics"
            wait_until(
                lambda: (
                    invalid_records(scrape(metrics_url), "sms") == poisoned["messages"]["invalid"]
                    and invalid_records(scrape(metrics_url), "acquirer")
                    == poisoned["transactions"]["invalid"]
                ),
                30,
                "every poisoned item counted invalid",
            )
        finally:
            assert exporter.stop() == 0, exporter.output()[-2000:]
    finally:
        sim.stop()
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "state",
            "quarantine",
            *(
                ("--state.path", str(tmp_path / "state.sqlite"))
                if state_backend.name == "sqlite"
                else ("--config.file", str(config))
            ),
            "--output",
            "json",
            "--limit",
            "100000",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    entries = json.loads(listing.stdout)["quarantined"]
    reasons = {e["reason"] for e in entries}
    assert any("64-bit" in r for r in reasons) and any("surrogate" in r for r in reasons)
    assert all(e["source"] in ("sms", "acquirer") and "poison-" in e["record"] for e in entries)
    assert not RAW_PHONE.search(listing.stdout)


def aliyun_report(biz_id: str, phone: str = "13812341234") -> dict[str, object]:
    return {
        "phone_number": phone,
        "send_time": "2026-11-26 12:00:00",
        "report_time": "2026-11-26 12:00:05",
        "success": True,
        "err_code": "DELIVERED",
        "err_msg": "ok",
        "sms_size": "1",
        "biz_id": biz_id,
        "out_id": "rrn-1",
    }


def test_a_push_batch_with_an_unstorable_report_is_acknowledged_once(tmp_path: Path) -> None:
    config = parse_config(document(tmp_path / "state.sqlite"), env={"PUSH_SECRET": SECRET})
    app = Exporter(config, "127.0.0.1", 0)
    app.web.start()
    try:
        batch = [aliyun_report("biz-1"), aliyun_report("biz-2\ud800"), aliyun_report("biz-3")]
        body = json.dumps(batch).encode()  # the lone surrogate travels as `\\ud800`
        url = f"http://127.0.0.1:{app.port}/push/aliyun?secret={SECRET}"
        assert post(url, body)[0] == 200
        assert post(url, body)[0] == 200  # the provider's retry: acknowledged, counted once
        exported = scrape(f"http://127.0.0.1:{app.port}/metrics")
        records = {
            dict(labels)["result"]: value
            for (name, labels), value in exported.items()
            if name == "smswatch_records_total" and dict(labels)["source"] == "aliyun" and value
        }
        assert records == {"accepted": 2, "duplicate": 2, "invalid": 2}
        entries = app.store.quarantined()
        assert len(entries) == 2 and all("surrogate" in e.reason for e in entries)
        assert all("13812341234" not in e.record and "138****1234" in e.record for e in entries)
    finally:
        app.web.stop()
        app.store.close()


def test_a_page_that_fails_to_apply_is_applied_record_by_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backstop alone (screening switched off): the bad record is quarantined, the rest of
    the page and the cursor commit."""
    monkeypatch.setattr("exporter.poller.unstorable_records", lambda records: {})
    config = config_with()
    source = config.sources[1]
    store = Store(str(tmp_path / "state.sqlite"))
    try:
        pipeline = Pipeline(config, store)

        def txn(txn_id: str, amount: int) -> Transaction:
            return Transaction(
                txn_id, "r-" + txn_id, "T1", "M1", "acq-north", amount, "CNY",
                "622202******1234", "declined", "05", 1_764_144_000_000, False, "",
            )  # fmt: skip

        page = Page([txn("a", 100), txn("b", 2**64), txn("c", 300)], 1, "c-3", False, 1_000)
        pipeline.commit_transactions(source, page)
        assert store.known_transactions(source.name, ["a", "b", "c"]) == {"a", "c"}
        assert store.source_state(source.name).cursor == "c-3"
        entries = store.quarantined()
        assert [e.kind for e in entries] == ["Transaction"] and "OverflowError" in entries[0].reason
        counters, _, _ = store.snapshot()
        invalid = [v for m, labels, v in counters if labels == f"{source.name}\x1finvalid"]
        assert invalid == [2.0]  # the one the page counted, and the quarantined one
    finally:
        store.close()


def test_a_poisoned_page_read_again_after_an_empty_cursor_counts_its_items_once(
    tmp_path: Path,
) -> None:
    """An answer without `next_cursor` makes the exporter ask again from where it was: the
    poisoned items of that page come again, and are still counted `invalid` (and kept) once."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "faults:\n"
        "  - {kind: poison_records, start: 0m, duration: 30m, target: both, share: 0.2,\n"
        "     mode: [big_integer, lone_surrogate, infinity, invalid_item]}\n"
        "  - {kind: cursor_reset, start: 10m, duration: 3m, target: both, share: 1.0}\n"
    )
    wall = [0.0]  # the simulated clock moves only when the test says so
    settings = settings_from_options(
        seed=5, speed=1.0, start_ms=T0, scenario=str(scenario), rate=1.0
    )
    server = SimulatorServer(settings)
    server.simulation.clock = SimClock(T0, 1.0, wall=lambda: wall[0])
    server.start()
    store = Store(str(tmp_path / "state.sqlite"))
    try:
        raw = simulator_config_document(server.url)
        config = parse_config(raw, state_path=str(tmp_path / "state.sqlite"))
        pipeline = Pipeline(config, store, clock=exporter_clock)
        pollers = [Poller(s, pipeline, threading.Event()) for s in config.sources]
        for minutes in (9.5, 10.5, 11, 11.5, 12, 12.5, 14, 16):
            wall[0] = minutes * 60
            for poller in pollers:
                poller.poll()
                assert poller.health.up
        truth = json.loads(urllib.request.urlopen(f"{server.url}/sim/v1/truth").read())
        poisoned = truth["records"]
        assert poisoned["messages"]["invalid"] > 5 and poisoned["transactions"]["invalid"] > 5
        invalid = {k[0]: v for k, v in counters(pipeline, "smswatch_records_total").items()
                   if k[1] == "invalid"}  # fmt: skip
        assert invalid == {
            "sms": poisoned["messages"]["invalid"],
            "acquirer": poisoned["transactions"]["invalid"],
        }
        kept = [e.record for e in store.quarantined(limit=100_000)]
        assert len(kept) == len(set(kept)), "a quarantined record kept twice"
    finally:
        store.close()
        server.stop()


def test_a_whole_page_check_finds_each_unstorable_value_wherever_it_sits() -> None:
    """The page-at-once check (column by column) refuses exactly the records that the
    record-by-record rules refuse: text, integer, nested history and mixed columns."""
    from exporter.records import SmsEvent, Terminal, unstorable_reason, unstorable_records

    good = SmsEvent("m-1", "r-1", "138****0000", "cm", "east", "delivered", "", 1, 2)
    terminal = Terminal("T1", "M1", "acq", "east", "5.0.0", True, 1, 2, ((1, False), (2, True)))
    pages: list[list[tuple[object, ...]]] = [
        [good, good._replace(carrier="\ud800"), good],
        [good, good._replace(status_ms=2**63)],
        [good._replace(submitted_ms=-(2**63) - 1), good],
        [terminal, terminal._replace(history=((2**64, True),))],
        [terminal, terminal._replace(history=((1, True, "x\udfff"),))],
        [good, good._replace(error_code=None), good._replace(error_code=2**70)],  # type: ignore[arg-type]
        [good, good._replace(status_ms=float("nan"))],  # type: ignore[arg-type]
        [good, ("m-2", "\ud800")],
        [good, terminal, ("m-2", "\ud800")],
    ]
    for page in pages:
        expected = {i: unstorable_reason(r) for i, r in enumerate(page) if unstorable_reason(r)}
        assert expected and unstorable_records(page) == expected, page
    assert unstorable_records([good, good._replace(error_code=None), terminal]) == {}
    assert unstorable_records([terminal, terminal._replace(history=())]) == {}
    assert unstorable_records([good, terminal]) == {}
    assert unstorable_records([]) == {}

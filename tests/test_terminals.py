"""The terminal inventory over time: history stays as it was, decommissioned terminals leave
the gauge, reversals whose original never came are pruned with the retention."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_reconcile import (
    T0,
    counters,
    feed_sms,
    feed_terminals,
    feed_txns,
    gauges,
    ms,
    terminal,
    txn,
)

from exporter.config import Config, parse_config, simulator_config_document
from exporter.poller import Pipeline
from exporter.records import Terminal
from exporter.store import open_store


@pytest.fixture
def pipeline(tmp_path: Path, on_backend: Callable[[Config], Config]) -> Pipeline:
    raw = simulator_config_document("http://127.0.0.1:1")
    config = on_backend(parse_config(raw, state_path=str(tmp_path / "state.sqlite")))
    return Pipeline(config, open_store(config), clock=lambda: T0 / 1000 + 86_400)


def with_history(version: str) -> Terminal:
    """T1, SMS notice switched on at -10 min, reported with its full flip history."""
    return terminal("T1", True, -10, version)._replace(history=((ms(-10), True),))


def test_an_upgrade_does_not_rewrite_the_software_version_of_the_past(
    pipeline: Pipeline,
) -> None:
    feed_terminals(pipeline, [with_history("4.9.0")], 0.5)  # below min 5.0.0: outdated
    feed_txns(pipeline, [txn(1, 1)], 2)
    for at in (3, 4, 5):  # upgraded between polls; every poll reports the same flips again
        feed_terminals(pipeline, [with_history("5.2.1")], at)
    feed_txns(pipeline, [txn(2, 6)], 20)
    feed_terminals(pipeline, [with_history("5.2.1")], 20)
    feed_sms(pipeline, [], 20)
    # the receipt of minute 1 was printed by the old software, the one of minute 6 by the new
    assert counters(pipeline, "smswatch_receipts_total") == {
        ("acq-north", "missing", "terminal_config"): 1,
        ("acq-north", "missing", "integration"): 1,
    }
    found = pipeline.store.lookup("txn_id", "t1").transactions[0]
    assert found.terminal_software == "4.9.0" and found.terminal_notice is True
    assert pipeline.store.lookup("txn_id", "t2").transactions[0].terminal_software == "5.2.1"


def test_decommissioned_terminals_leave_the_gauge(pipeline: Pipeline) -> None:
    feed_terminals(pipeline, [terminal("T1", True, -60), terminal("T2", True, -60)], 1)
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "enabled", "current")] == 2
    feed_txns(pipeline, [txn(1, 1.5, terminal="T2")], 2)
    feed_terminals(pipeline, [terminal("T1", True, -60)], 3)  # T2 is gone from the inventory
    assert gauges(pipeline, "smswatch_pos_terminals")[("acq-north", "enabled", "current")] == 1
    # its history stays: a receipt it printed before is still judged by its state then
    assert pipeline.store.lookup("txn_id", "t1").transactions[0].terminal_notice is True


def test_reversals_without_their_original_are_pruned_with_the_retention(
    pipeline: Pipeline,
) -> None:
    reversal = txn(9, 1, result="reversed", expected=False, original="t-never-seen")
    feed_txns(pipeline, [reversal], 2)
    assert pipeline.store.orphan_reversals(pipeline.config.sources[1].name, ["t-never-seen"]) == {
        "t-never-seen": ms(1)
    }
    pipeline.store.prune(ms(30))
    assert pipeline.store.orphan_reversals(pipeline.config.sources[1].name, ["t-never-seen"]) == {}

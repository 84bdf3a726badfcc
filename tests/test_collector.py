"""The /metrics exposition: a golden file of the full output, and the catalogue's rules.

Regenerate the golden file after an intended change with `SMSWATCH_UPDATE_GOLDEN=1 pytest
tests/test_collector.py` and review the diff: the catalogue is a contract (add, don't rename).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_reconcile import feed_sms, feed_terminals, feed_txns, sms, terminal, txn

from exporter import __version__
from exporter.accounts.checker import AccountHealth
from exporter.accounts.readings import AccountReading, Balance, Quota, Sender
from exporter.catalogue import METRICS
from exporter.collector import SmswatchCollector
from exporter.config import parse_config, simulator_config_document
from exporter.poller import Pipeline, PollHealth
from exporter.state_health import StateHealth
from exporter.store import Store

GOLDEN = Path(__file__).parent / "golden" / "metrics.txt"
FORBIDDEN_LABELS = {"type", "region", "zone", "cluster", "env", "service", "msisdn", "phone",
                    "message_id", "terminal", "terminal_id", "card", "pan", "rrn"}  # fmt: skip


def exposition(tmp_path: Path) -> str:
    config = parse_config(
        simulator_config_document("http://127.0.0.1:1"),
        state_path=str(tmp_path / "state.sqlite"),
    )
    pipeline = Pipeline(config, Store(config.state_path), clock=lambda: 1_800_000_300.0)
    feed_terminals(pipeline, [terminal("T1", True, -60), terminal("T9", False, -60, "4.8.0")], 2)
    feed_txns(pipeline, [txn(1, 0), txn(2, 0.5), txn(3, 1, terminal="T9")], 2)
    feed_sms(
        pipeline,
        [
            sms("m1", "rrn1", "submitted", 0.01, 0.01),
            sms("m2", "rrn2", "submitted", 0.51, 0.51),
            sms("m1", "rrn1", "delivered", 0.01, 0.11),
            sms("m2", "rrn2", "undelivered", 0.51, 0.6, "MK:0010"),
        ],
        2,
    )
    pipeline.store.health = StateHealth()  # commit durations of its own: a fixed exposition
    pipeline.store.health.observe_commit(0.0003)
    pipeline.store.health.observe_commit(0.02)
    health = {"sms": PollHealth(), "acquirer": PollHealth()}
    health["sms"].up = True
    health["sms"].observe(0.3)
    registry = CollectorRegistry()
    account = AccountHealth(
        up=True,
        checks=2,
        last_success_s=1_800_000_000.0,
        reading=AccountReading(
            balance=Balance(1234.56, "CNY"),
            quota=Quota(remaining=4250, total=101_000),
            senders=(
                Sender("signature", "BankNotice", "approved"),
                Sender("template", "1111", "rejected"),
            ),
        ),
    )
    account.errors["timeout"] += 1
    collector = SmswatchCollector(
        config,
        pipeline.store,
        health,
        clock=lambda: 1_800_000_300.0,
        accounts={"bank-sms": lambda: account},
    )
    registry.register(collector)
    return generate_latest(registry).decode()


def test_full_exposition_matches_the_golden_file(tmp_path: Path) -> None:
    text = exposition(tmp_path).replace(f'version="{__version__}"', 'version="VERSION"')
    if os.environ.get("SMSWATCH_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "exposition changed: see the module docstring"


def test_catalogue_rules_hold(tmp_path: Path, promtool: str) -> None:
    text = exposition(tmp_path)
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for spec in METRICS:
        name = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
        family = families[name]
        assert family.type == ("gauge" if spec.kind == "info" else spec.kind), spec.name
        assert family.documentation, spec.name
        for sample in family.samples:
            assert re.fullmatch(r"smswatch_[a-z0-9_]+", sample.name)
            labels = set(sample.labels) - {"le"}
            assert labels == set(spec.labels), (spec.name, labels)
            assert not labels & FORBIDDEN_LABELS
    polled = [
        s
        for s in METRICS
        if s.name.startswith(("smswatch_sms", "smswatch_receipt", "smswatch_pos"))
    ]
    assert all("polled" in s.help.lower() for s in polled), "HELP says the values are cached"


@pytest.mark.parametrize("metric", ["smswatch_receipts_total", "smswatch_sms_messages_total"])
def test_series_are_sorted_for_stable_output(tmp_path: Path, metric: str) -> None:
    spec = next(s for s in METRICS if s.name == metric)
    family = next(
        f for f in text_string_to_metric_families(exposition(tmp_path)) if metric.startswith(f.name)
    )
    keys = [tuple(sample.labels[label] for label in spec.labels) for sample in family.samples]
    assert keys == sorted(keys) and len(keys) == len(set(keys))

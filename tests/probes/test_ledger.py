"""Canary reports through the normal ingest path go to the probe, never to the cardholder
counters; the handset's inbox proves receipt; verdicts (delivered, fake report, failed with
its cause) are given once, with their counters. Real SQLite, real pipeline."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import responses

from exporter.config import parse_config, simulator_config_document
from exporter.dialect import Backend
from exporter.poller import Pipeline
from exporter.probes import ledger
from exporter.probes.prober import Prober
from exporter.records import Page, SmsEvent
from exporter.store import CanaryRow, Store, decode_labels

from harness import wait_until

T0 = 1_800_000_000_000


def config_document(tmp_path: Path, send: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = simulator_config_document("http://127.0.0.1:1")
    doc["state"]["path"] = str(tmp_path / "state.sqlite")
    doc["probes"] = {
        "handset_timeout": "5m",
        "report_timeout": "15m",
        "inbox": {"gammu_dir": str(tmp_path / "inbox"), "timezone": "UTC"},
        "gateways": [
            {
                "gateway": "bank-sms",
                "numbers": [{"number": "13800138000", "carrier": "china-mobile", "area": "north"}],
                "send": send
                or {
                    "kind": "http",
                    "url": "https://sms-gw.bank/sms/v1/send",
                    "body": '{"to": "{to}", "text": "{text}", "ref": "{canary_id}"}',
                },
            }
        ],
    }
    return doc


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    config = parse_config(config_document(tmp_path))
    return Pipeline(config, Store(config.state_path), clock=lambda: T0 / 1000 + 3600)


def counters(store: Store, prefix: str) -> dict[tuple[str, tuple[str, ...]], float]:
    rows, _, _ = store.snapshot()
    return {(m, decode_labels(ls)): v for m, ls, v in rows if m.startswith(prefix) and v}


def event(msg: str, ref: str, status: str, at_s: float) -> SmsEvent:
    return SmsEvent(msg, ref, "138****8000", "china-mobile", "north", status, "",
                    T0, T0 + int(at_s * 1000))  # fmt: skip


def handset_reply(tmp_path: Path, nonce: str) -> None:
    """The handset's inbox (gammu-smsd's file backend) holds the canary with `nonce`,
    received at 2027-01-15T08:00:03Z: T0 + 3 s (UTC, as configured)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "IN20270115_080003_00_+8613800138000_00.txt").write_bytes(
        "\ufeffsmswatch canary ".encode("utf-16-le") + nonce.encode("utf-16-le")
    )


def canary(store: Store, canary_id: str, message_id: str, nonce: str) -> CanaryRow:
    row = CanaryRow(canary_id, "bank-sms", message_id, "china-mobile", "north", "138****8000",
                    nonce, T0)  # fmt: skip
    store.add_canary(row)
    return row


def test_canary_reports_never_reach_the_cardholder_counters(pipeline: Pipeline) -> None:
    store = pipeline.store
    canary(store, "canary-a", "gw-1", "SWAAAAAAAAAA")
    canary(store, "canary-b", "", "SWBBBBBBBBBB")  # its report beats the send's answer
    pipeline.commit_sms(
        pipeline.config.sources[0],
        Page(
            [
                event("gw-1", "", "submitted", 0),
                event("m-1", "633012345678", "submitted", 0),
                event("gw-1", "", "delivered", 2),
                event("gw-2", "canary-b", "undelivered", 3),  # known by its reference only
                event("m-1", "633012345678", "delivered", 4),
            ],
            0,
            "c1",
            False,
            T0 + 10_000,
        ),
    )
    sms = counters(store, "smswatch_sms_")
    assert sms == {
        ("smswatch_sms_submitted_total", ("bank-sms", "china-mobile", "north")): 1,
        (
            "smswatch_sms_messages_total",
            ("bank-sms", "china-mobile", "north", "delivered", "none"),
        ): 1,
        ("smswatch_sms_delivery_seconds:bucket", ("bank-sms", "china-mobile", "2")): 1,  # 4 s: le=5
        ("smswatch_sms_delivery_seconds:sum_ms", ("bank-sms", "china-mobile")): 4000,
        ("smswatch_sms_delivery_seconds:count", ("bank-sms", "china-mobile")): 1,
    }
    assert counters(store, "smswatch_records_total") == {
        ("smswatch_records_total", ("sms", "accepted")): 2
    }
    assert counters(store, "smswatch_probe_") == {
        ("smswatch_probe_delivered_total", ("bank-sms", "china-mobile", "north")): 1
    }
    pipeline.commit_sms(  # a list re-read brings the same reports again: nothing changes
        pipeline.config.sources[0],
        Page([event("gw-1", "", "delivered", 2)], 0, "c2", False, T0 + 10_000),
    )
    a = store.canary("canary-a")
    b = store.canary("canary-b")
    assert a is not None and [w for _, w, _ in a.timeline] == ["report", "report"]
    # timed when smswatch learned it (the pipeline clock), not by the provider clock
    assert a is not None and (a.report_status, a.report_ms) == ("delivered", T0 + 3_600_000)
    assert b is not None and (b.report_status, b.message_id) == ("undelivered", "gw-2")


def test_verdicts_and_their_counters(pipeline: Pipeline) -> None:
    store = pipeline.store
    rows = {
        "fake": canary(store, "c-fake", "g1", "SWFAKEAAAAAA"),
        "both": canary(store, "c-both", "g2", "SWBOTHAAAAAA"),
        "gone": canary(store, "c-gone", "g3", "SWGONEAAAAAA"),
        "expired": canary(store, "c-exp", "g4", "SWEXPAAAAAAA"),
        "waiting": canary(store, "c-wait", "g5", "SWWAITAAAAAA"),
    }
    for key, status in (("fake", "delivered"), ("both", "delivered"), ("expired", "expired")):
        rows[key].report_status, rows[key].report_ms = status, T0 + 5_000
        store.update_canary(rows[key])
    rows["waiting"].report_status, rows["waiting"].report_ms = "delivered", T0 + 200_000
    store.update_canary(rows["waiting"])
    with store.transaction():
        assert ledger.note_handset(store, [("SWBOTHAAAAAA", T0 + 7_000, "IN…")]) == 1
        assert ledger.note_handset(store, [("SWBOTHAAAAAA", T0 + 9_000, "IN…")]) == 0  # once
        decided = ledger.judge_open(store, T0 + 305_000, 300_000, 900_000)
    assert decided == 3  # fake (report + 5 min, no handset), both, expired
    labels = ("bank-sms", "china-mobile", "north")
    assert counters(store, "smswatch_probe_") == {
        ("smswatch_probe_received_total", labels): 1,
        ("smswatch_probe_end_to_end_seconds:bucket", (*labels, "3")): 1,  # 7 s: le=10
        ("smswatch_probe_end_to_end_seconds:sum_ms", labels): 7000,
        ("smswatch_probe_end_to_end_seconds:count", labels): 1,
        ("smswatch_probe_fake_reports_total", labels): 1,
        ("smswatch_probe_failures_total", (*labels, "unreachable")): 1,
    }
    with store.transaction():
        assert ledger.judge_open(store, T0 + 900_000, 300_000, 900_000) == 2
    assert (
        counters(store, "smswatch_probe_failures_total")[
            ("smswatch_probe_failures_total", (*labels, "gateway"))
        ]
        == 1
    )  # no report at all within report_timeout
    assert (
        counters(store, "smswatch_probe_fake_reports_total")[
            ("smswatch_probe_fake_reports_total", labels)
        ]
        == 2
    )  # the one reported at +200 s, judged at +900 s


@pytest.mark.parametrize(
    ("status", "cause"),
    [("rejected", "gateway"), ("failed", "gateway"), ("undelivered", "unreachable"),
     ("unknown", "gateway")],
)  # fmt: skip
def test_a_failed_report_names_what_failed(status: str, cause: str) -> None:
    row = CanaryRow("c", "g", "m", "c", "a", "p", "n", T0, report_status=status, report_ms=T0)
    assert ledger.verdict(row, T0, 300_000, 900_000) == ("failed", cause)


@responses.activate
def test_a_refused_send_counts_sent_and_failed_gateway(tmp_path: Path) -> None:
    responses.post("https://sms-gw.bank/sms/v1/send", status=503)
    config = parse_config(config_document(tmp_path))
    assert config.probes is not None
    store = Store(config.state_path)
    prober = Prober(config.probes, store, clock=lambda: T0 / 1000)
    [sent] = prober.send_round("bank-sms")
    assert (sent.verdict, sent.cause) == ("failed", "gateway")
    assert "HTTP 503" in sent.send_error
    labels = ("bank-sms", "china-mobile", "north")
    assert counters(store, "smswatch_probe_") == {
        ("smswatch_probe_sent_total", labels): 1,
        ("smswatch_probe_failures_total", (*labels, "gateway")): 1,
    }


@responses.activate
def test_the_handset_inbox_proves_receipt(tmp_path: Path) -> None:
    responses.post("https://sms-gw.bank/sms/v1/send", json={"ok": True})
    config = parse_config(config_document(tmp_path))
    assert config.probes is not None
    store = Store(config.state_path)
    prober = Prober(config.probes, store, clock=lambda: T0 / 1000)
    [sent] = prober.send_round("bank-sms")
    handset_reply(tmp_path, sent.nonce)
    prober.check()
    got = store.canary(sent.canary_id)
    assert got is not None and got.handset_ms == T0 + 3000 and got.verdict is None
    assert counters(store, "smswatch_probe_received_total") == {
        ("smswatch_probe_received_total", ("bank-sms", "china-mobile", "north")): 1
    }


@responses.activate
def test_the_providers_id_from_the_answer_keys_its_reports(tmp_path: Path) -> None:
    responses.post("https://sms-gw.bank/sms/v1/send", json={"data": {"id": "gw-77"}})
    send = {
        "kind": "http",
        "url": "https://sms-gw.bank/sms/v1/send",
        "body": '{"to": "{to}", "text": "{text}"}',
        "message_id": "data.id",
    }
    config = parse_config(config_document(tmp_path, send))
    assert config.probes is not None
    pipeline = Pipeline(config, Store(config.state_path), clock=lambda: T0 / 1000 + 3600)
    [sent] = Prober(config.probes, pipeline.store, clock=lambda: T0 / 1000).send_round("bank-sms")
    assert sent.message_id == "gw-77"
    pipeline.commit_sms(
        config.sources[0],
        Page([event("gw-77", "", "delivered", 1)], 0, "c1", False, T0 + 10_000),
    )  # a report that carries only the gateway's id
    assert counters(pipeline.store, "smswatch_sms_") == {}
    assert counters(pipeline.store, "smswatch_probe_delivered_total") == {
        ("smswatch_probe_delivered_total", ("bank-sms", "china-mobile", "north")): 1
    }


@responses.activate
def test_while_the_state_is_down_no_canary_is_sent_and_the_inbox_waits(tmp_path: Path) -> None:
    """A canary is recorded before it is sent, and what the inbox shows is recorded when read:
    neither can be while the state file is locked, so neither happens until it is free."""
    responses.post("https://sms-gw.bank/sms/v1/send", json={"ok": True})
    config = parse_config(config_document(tmp_path))
    assert config.probes is not None
    store = Store(config.state_path, backend=Backend(config.state_path, busy_timeout_ms=50))
    prober = Prober(config.probes, store, clock=lambda: T0 / 1000)
    [sent] = prober.send_round("bank-sms")
    handset_reply(tmp_path, sent.nonce)
    holder = sqlite3.connect(config.state_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the file
    with pytest.raises(sqlite3.OperationalError), store.transaction():
        pass  # the state learns it is down
    assert prober.send_round("bank-sms") == [] and prober.check() == 0
    assert len(responses.calls) == 1
    holder.execute("ROLLBACK")
    holder.close()
    wait_until(store.writable, 10, "the state to take commits again")
    prober.check()
    got = store.canary(sent.canary_id)
    assert got is not None and got.handset_ms == T0 + 3000

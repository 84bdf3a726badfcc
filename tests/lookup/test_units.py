"""The lookup's parts on their own: key validation, the timeline text, the store's lookups and
their indexes, the wording, alert runs, tokens and sessions, the audit CSV, the settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from exporter.catalogue import CAUSES
from exporter.config import parse_config, simulator_config_document
from exporter.errors import ConfigError
from exporter.lookup.access import Access, Identity, Sessions, TokenFile, load_tokens, new_token
from exporter.lookup.advice import LANGUAGES, SITUATIONS, advice_for
from exporter.lookup.alerts import (
    AlertHistory,
    AlertsUnavailable,
    FiringAlert,
    Window,
    concerning,
    runs,
)
from exporter.lookup.explain import WORDS, duration_text
from exporter.lookup.query import BadLookup, parse_at, parse_query
from exporter.lookup.service import Caller, LookupService, audit_csv
from exporter.lookup.settings import LookupSettings, PrometheusSettings, parse_lookup
from exporter.poller import Pipeline
from exporter.reconcile import parse_timeline, timeline_entry
from exporter.records import Page, SmsEvent, Terminal, Transaction
from exporter.store import AuditEntry, Store

UTC = ZoneInfo("UTC")
SHANGHAI = ZoneInfo("Asia/Shanghai")
MIN = 60_000
T0 = 1_800_000_000_000


def q(**params: str) -> Any:
    return parse_query(params, SHANGHAI, default_window_ms=10 * MIN, max_window_ms=120 * MIN)


# --------------------------------------------------------------------------- keys


def test_times_without_offset_are_local_and_windows_are_either_side() -> None:
    query = q(terminal="T0001234", at="2026-11-25 12:05")
    assert query.at_ms == parse_at("2026-11-25T04:05:00Z", UTC)
    assert (query.to_ms - query.from_ms) == 20 * MIN
    assert q(phone_last4="1234", at="2026-11-25T12:05+08:00", window="1h").window_ms == 60 * MIN
    assert q(phone_last4="1234", at="2026-11-25T04:05Z").audit_key == "*******1234"
    assert q(rrn="633012345678").audit_key == "633012345678"


@pytest.mark.parametrize(
    "params",
    [
        {"rrn": "13812345678"},
        {"rrn": "+8613812345678"},
        {"txn_id": "4111111111111111"},
        {"terminal": "6225880012341237", "at": "2026-11-25T04:05Z"},
    ],
)
def test_a_phone_or_card_number_in_an_id_field_is_refused_without_echo(
    params: dict[str, str],
) -> None:
    with pytest.raises(BadLookup) as caught:
        q(**params)
    assert "looks like a" in str(caught.value) or "malformed" in str(caught.value)
    assert not any(value in str(caught.value) for value in params.values())


def test_ids_that_merely_look_numeric_are_fine() -> None:
    assert q(rrn="633012345678").value == "633012345678"  # 12-digit RRN
    assert q(txn_id="8815329842815468").value == "8815329842815468"  # an Adyen pspReference


# --------------------------------------------------------------------------- timeline text


def event(
    status: str, at: int, code: str = "000", submitted: int = T0, ref: str = "r1"
) -> SmsEvent:
    return SmsEvent("m1", ref, "138****1234", "china-mobile", "east", status, code, submitted, at)


def test_the_timeline_text_round_trips() -> None:
    text = ""
    for e in (
        event("submitted", T0),
        event("enroute", T0 + 812),
        event("undelivered", T0 + 5321, "MK:0001"),
        event("delivered", T0 - 5, ""),
        event("rejected", T0 + 9, "A;B"),
    ):
        text = timeline_entry(text, e, T0)
    assert text.startswith("submitted+0;enroute+812;undelivered+5321 MK:0001;delivered-5;")
    assert parse_timeline(text, T0) == [
        ("submitted", T0, ""),
        ("enroute", T0 + 812, ""),
        ("undelivered", T0 + 5321, "MK:0001"),
        ("delivered", T0 - 5, ""),
        ("rejected", T0 + 9, "A,B"),
    ]
    assert parse_timeline("", T0) == [] and parse_timeline("garbage;x+y", T0) == []


# --------------------------------------------------------------------------- the store


def txn(n: int, at: int, terminal: str = "T1") -> Transaction:
    return Transaction(f"t{n}", f"60000000000{n}", terminal, "M1", "acq-north", 12800, "CNY",
                       "62258800****1234", "approved", "00", at, True, "")  # fmt: skip


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    raw = simulator_config_document("http://127.0.0.1:1")
    config = parse_config(raw, state_path=str(tmp_path / "state.sqlite"))
    return Pipeline(config, Store(config.state_path), clock=lambda: T0 / 1000 + 86_400)


def feed(
    p: Pipeline,
    txns: list[Transaction],
    events: list[SmsEvent],
    watermark: int,
    inventory: bool = False,
) -> None:
    sms, acquirer = p.config.sources
    if inventory:  # lets receipts be decided (the inventory's watermark counts too)
        terminal = Terminal("T1", "M1", "acq-north", "east", "5.2.1", True, T0 - 1, T0)
        p.commit_terminals(acquirer, [terminal], 0, watermark)
    p.commit_transactions(acquirer, Page(txns, 0, "c1", False, watermark))
    p.commit_sms(sms, Page(events, 0, "c1", False, watermark))


def service(store: Store) -> LookupService:
    return LookupService(store, LookupSettings(timezone="Asia/Shanghai"))


def test_the_timeline_keeps_later_reports_but_not_duplicates(pipeline: Pipeline) -> None:
    rrn = "600000000001"
    sent = T0 + 1000
    events = [
        event("submitted", sent, submitted=sent, ref=rrn),
        event("submitted", sent, submitted=sent, ref=rrn),  # a duplicate
        event("undelivered", T0 + 4000, "MK:0001", submitted=sent, ref=rrn),
        event("delivered", T0 + 9000, submitted=sent, ref=rrn),  # contradicts: a conflict
    ]
    feed(pipeline, [txn(1, T0)], events, T0 + 3_600_000)
    result = service(pipeline.store).find(q(rrn=rrn))
    r = result.results[0]
    assert r.situation == "invalid_number"
    kinds = [s.kind for s in r.steps]
    assert kinds == ["payment", "sms_submitted", "sms_status", "sms_later_report"]
    assert (
        "(code MK:0001)" in r.steps[2].text and "the first final report counts" in r.steps[3].text
    )
    assert (
        r.summary
        == "SMS to 138****1234 not delivered: The carrier could not deliver it (code MK:0001)."
    )


def test_open_receipts_are_on_their_way_or_not_sent_yet(pipeline: Pipeline) -> None:
    sent = SmsEvent("m2", "600000000002", "138****1234", "c", "a", "submitted", "000", T0, T0)
    feed(pipeline, [txn(1, T0), txn(2, T0)], [sent], T0 + 1000)
    s = service(pipeline.store)
    assert s.find(q(rrn="600000000001")).results[0].situation == "awaiting"
    on_way = s.find(q(rrn="600000000002"), "zh").results[0]
    assert on_way.situation == "on_its_way" and on_way.summary.startswith("发往 138****1234")


def test_a_message_without_report_is_given_up(pipeline: Pipeline) -> None:
    sent = SmsEvent("m1", "600000000001", "138****1234", "c", "a", "submitted", "000", T0, T0)
    feed(pipeline, [txn(1, T0)], [sent], T0 + 40 * MIN)
    r = service(pipeline.store).find(q(rrn="600000000001")).results[0]
    assert r.situation == "unknown" and r.steps[-1].kind == "sms_gave_up"
    assert r.steps[-1].text == "No delivery report within 30 min of sending: the result is unknown."


def test_lookups_use_indexes_never_a_table_scan(pipeline: Pipeline) -> None:
    from exporter.store import _LOOKUP_SQL

    db = sqlite3.connect(pipeline.store.path)
    params = {
        "rrn": ("x", 1),
        "txn_id": ("x", 1),
        "terminal": ("x", 0, 1, 1),
        "phone_last4": (0, 1, "1234", 1, 1),
    }
    for kind, sql in _LOOKUP_SQL.items():
        plan = " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params[kind]))
        assert (
            "USING" in plan and "SCAN transactions" not in plan and "SCAN messages" not in plan
        ), (
            kind,
            plan,
        )


def test_an_older_state_file_gets_the_timeline_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE messages (message_id TEXT PRIMARY KEY, gateway TEXT NOT NULL, "
            "txn_ref TEXT NOT NULL, carrier TEXT NOT NULL, area TEXT NOT NULL, "
            "phone TEXT NOT NULL, submitted_ms INTEGER NOT NULL, seen INTEGER NOT NULL, "
            "final_status TEXT, final_cause TEXT, final_code TEXT NOT NULL DEFAULT '', "
            "final_ms INTEGER)"
        )
        db.execute(
            "INSERT INTO messages VALUES ('m1','g','r','c','a','138****1234',1,1,NULL,NULL,'',NULL)"
        )
    store = Store(str(path))
    assert store.messages("g", ["m1"])["m1"].events == ""
    store.close()


def test_retention_prunes_what_lookups_would_find(pipeline: Pipeline) -> None:
    sent = SmsEvent("m1", "600000000001", "138****1234", "c", "a", "submitted", "000", T0, T0)
    done = SmsEvent("m1", "600000000001", "138****1234", "c", "a", "delivered", "000", T0, T0 + 5)
    feed(pipeline, [txn(1, T0), txn(2, T0 + 60 * MIN)], [sent, done], T0 + 61 * MIN, True)
    s = service(pipeline.store)
    assert s.find(q(rrn="600000000001")).results[0].situation == "delivered"
    assert pipeline.store.prune(T0 + 30 * MIN) == 2  # the decided receipt and its message
    assert s.find(q(rrn="600000000001")).results == []
    assert s.find(q(rrn="600000000002")).results[0].situation == "awaiting"  # open: kept


def test_audit_entries_are_pruned_on_their_own_schedule(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s.sqlite"))
    for at in (1000, 2000, 3000):
        store.add_audit(
            AuditEntry(at, "alice", "token", "api", "", "rrn", "1", None, None, 0, "ok")
        )
    assert [e.at_ms for e in store.audit_entries(0, 10_000)] == [1000, 2000, 3000]
    assert store.prune_audit(2500) == 2
    assert [e.at_ms for e in store.audit_entries(0, 10_000)] == [3000]
    store.close()


# --------------------------------------------------------------------------- wording


def test_every_cause_and_situation_has_its_words_in_both_languages() -> None:
    assert set(CAUSES) <= set(SITUATIONS)
    for situation in SITUATIONS:
        for lang in LANGUAGES:
            words = advice_for(situation, lang)
            assert words.title and words.explanation and words.advice, (situation, lang)
            assert not any(ch.isdigit() for ch in words.advice + words.explanation)
            if lang == "zh":  # folded YAML lines must not leave spaces between sentences
                assert "。 " not in words.advice + words.explanation
    assert set(WORDS["en"]) == set(WORDS["zh"])
    advice = (Path(__file__).parents[2] / "exporter/lookup/advice.yaml").read_text()
    assert set(yaml.safe_load(advice)["situations"]) == set(SITUATIONS)


def test_durations_read_naturally() -> None:
    assert [duration_text(ms, "en") for ms in (400, 6_000, 300_000, 381_000, 3_780_000)] == [
        "0 s",
        "6 s",
        "5 min",
        "6 min 21 s",
        "1 h 3 min",
    ]
    assert duration_text(381_000, "zh") == "6 分 21 秒"


# --------------------------------------------------------------------------- alerts


def test_alert_samples_make_runs_split_by_gaps() -> None:
    series = [
        {
            "metric": {"alertname": "SMSGatewayErrors", "alertstate": "firing", "gateway": "g"},
            "values": [[t, "1"] for t in (100, 115, 130, 1000, 1015)],
        }
    ]
    found = runs(series, start_ms=90_000, end_ms=1_100_000)
    assert [(a.firing_from_ms, a.firing_until_ms) for a in found] == [
        (100_000, 130_000),
        (1_000_000, 1_015_000),
    ]
    assert found[0].started_earlier and not found[0].continues
    assert found[1].continues and not found[1].started_earlier
    assert found[0].labels == {"gateway": "g"}


def test_alerts_concern_a_transaction_by_acquirer_or_gateway() -> None:
    def alert(**labels: str) -> FiringAlert:
        return FiringAlert("A", labels, 1000, 2000)

    window = Window(1500, 5000, "acq-north", frozenset({"bank-sms"}))
    kept = concerning(
        [alert(acquirer="acq-north"), alert(acquirer="acq-south"), alert(gateway="bank-sms"),
         alert(gateway="other-sms"), alert(severity="none")],
        window,
    )  # fmt: skip
    assert [a.labels for a in kept] == [{"acquirer": "acq-north"}, {"gateway": "bank-sms"}]
    no_sms = Window(1500, 5000, "acq-north", frozenset())
    assert len(concerning([alert(gateway="other-sms")], no_sms)) == 1
    assert (
        concerning([alert(acquirer="acq-north")], Window(2001, 5000, "acq-north", frozenset()))
        == []
    )


def test_an_unreachable_prometheus_leaves_the_lookup_working(pipeline: Pipeline) -> None:
    history = AlertHistory(PrometheusSettings("http://127.0.0.1:9", timeout_s=0.5))
    with pytest.raises(AlertsUnavailable):
        history.firing([Window(0, 1, "a", frozenset())], 10)
    feed(pipeline, [txn(1, T0)], [], T0 + 10 * MIN)
    settings = LookupSettings(prometheus=history.settings)
    result = LookupService(pipeline.store, settings, history).find(q(rrn="600000000001"))
    assert result.alerts_status == "unavailable" and result.results[0].alerts is None
    assert result.results[0].situation == "awaiting"  # not decided: no terminal inventory yet
    assert result.to_json()["results"][0]["alerts"] is None


# --------------------------------------------------------------------------- access


def tokens_file(path: Path, entries: list[dict[str, Any]]) -> str:
    path.write_text(yaml.safe_dump({"tokens": entries}))
    return str(path)


def test_tokens_are_checked_by_hash_and_revocation_is_read_at_once(tmp_path: Path) -> None:
    token, digest = new_token()
    path = tokens_file(tmp_path / "t.yml", [{"name": "alice", "sha256": digest}])
    tokens = TokenFile(path)
    assert tokens.check(token)[0] is not None
    assert tokens.check(token + "x") == (None, "unknown token")
    tokens_file(tmp_path / "t.yml", [{"name": "alice", "sha256": digest, "revoked": "2026-11-20"}])
    assert tokens.check(token) == (None, "revoked token of alice")
    (tmp_path / "t.yml").unlink()
    assert tokens.check(token) == (None, "unknown token")  # file gone: nobody gets in


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"name": "a b", "sha256": "0" * 64}], "name must be"),
        ([{"name": "a", "sha256": "xyz"}], "sha256 must be 64 hex"),
        ([{"name": "a", "sha256": "0" * 64}, {"name": "b", "sha256": "0" * 64}], "listed twice"),
        ([{"name": "a", "sha256": "0" * 64, "role": "admin"}], "must be a mapping of"),
    ],
)
def test_a_bad_tokens_file_names_the_entry(
    tmp_path: Path, entries: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_tokens(tokens_file(tmp_path / "t.yml", entries))


def test_sessions_expire_and_end_with_their_token(tmp_path: Path) -> None:
    token, digest = new_token()
    path = tokens_file(tmp_path / "t.yml", [{"name": "alice", "sha256": digest}])
    now = [0.0]
    access = Access(TokenFile(path), (), None, Sessions(60, clock=lambda: now[0]))
    identity, sid, _ = access.sign_in({"token": token})
    assert identity == Identity("alice", "token")
    assert access.from_session(f"other=1; smswatch_session={sid}") == identity
    now[0] = 61
    assert access.from_session(f"smswatch_session={sid}") is None
    _, sid, _ = access.sign_in({"token": token})
    tokens_file(tmp_path / "t.yml", [{"name": "alice", "sha256": digest, "revoked": True}])
    assert access.from_session(f"smswatch_session={sid}") is None
    assert (
        access.sign_in({"username": "x", "password": "y"})[2]
        == "basic auth not enabled for lookups"
    )


def test_the_audit_csv_defuses_spreadsheet_formulas() -> None:
    entry = AuditEntry(0, "=cmd()", "token", "api", "10.0.0.1", "rrn", "1", None, None, 2, "ok")
    lines = audit_csv([entry]).splitlines()
    assert lines[0] == "time,user,method,channel,remote,key_kind,key,from,to,results,status"
    assert lines[1] == "1970-01-01T00:00:00.000Z,'=cmd(),token,api,10.0.0.1,rrn,1,,,2,ok"


def test_the_service_audits_refusals_without_their_value(pipeline: Pipeline) -> None:
    s = service(pipeline.store)
    with pytest.raises(BadLookup):
        s.run({"rrn": "13812345678"}, Caller("alice", "token", "api", "10.0.0.1"))
    [entry] = pipeline.store.audit_entries(0, 2**62)
    assert (entry.key_kind, entry.key, entry.status) == ("rrn", "", "bad_request")


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "lookup.timezone: unknown time zone"),
        ({"max_window": "2d"}, "lookup.max_window: must be at most 1d"),
        ({"default_window": "3h"}, "lookup.default_window: must not exceed max_window"),
        ({"prometheus": {"url": "ftp://x"}}, "lookup.prometheus.url: not an http"),
        ({"tokens": "x"}, "lookup: unknown key 'tokens'"),
        ({"basic_auth_users": "dora"}, "lookup.basic_auth_users: must be a list"),
    ],
)
def test_lookup_settings_errors_name_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_lookup(raw, Path("/etc/smswatch"))


def test_lookup_settings_resolve_the_tokens_file_next_to_the_config() -> None:
    settings = parse_lookup({"tokens_file": "tokens.yml"}, Path("/etc/smswatch"))
    assert settings.tokens_file == "/etc/smswatch/tokens.yml"

"""The lookup (API and CLI) on a state store filled by a real simulator run, checked against the
simulator's own account of each transaction; authentication, bad input, audit and privacy."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import subprocess
import sys
import urllib.parse
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from exporter.cli import build_parser
from exporter.lookup.advice import advice_for
from exporter.lookup.explain import local_time
from exporter.timestamps import parse_rfc3339_ms

from .conftest import ALERT_DELAY_MS, Run, TruthTxn, ts

FIVE_CAUSES = {"gateway", "invalid_number", "unreachable", "terminal_config", "integration"}
RAW_PHONE = re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)")
RAW_PAN = re.compile(r"(?<![\d*])\d{15,19}(?![\d*])")  # 13-digit runs are Unix ms times
SHANGHAI = ZoneInfo("Asia/Shanghai")

#: Every body the API answered in these tests, for the privacy scan at the end.
SEEN: list[str] = []


def api(run: Run, query: str, token: str | None = "alice") -> tuple[int, Any, dict[str, str]]:
    status, body, headers = run.api(query, run.tokens.get(token or "", token))
    SEEN.append(json.dumps(body, ensure_ascii=False))
    return status, body, headers


def cli(run: Run, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`smswatch lookup …` in this process (the command function, as `main` would call it)."""
    parsed = build_parser().parse_args([*args, "--config.file", str(run.config_path)])
    code = parsed.func(parsed)
    out = capsys.readouterr()
    SEEN.append(out.out + out.err)
    return code, out.out + out.err


def picks(items: list[TruthTxn]) -> list[TruthTxn]:
    """First, middle and last of a group."""
    return list({t.rrn: t for t in (items[0], items[len(items) // 2], items[-1])}.values())


def situation(outcome: str, cause: str) -> str:
    return "delivered" if outcome == "delivered" else cause


def test_the_run_has_every_cause(run: Run) -> None:
    causes = {cause for (_, cause) in run.by_outcome()}
    assert causes >= FIVE_CAUSES | {"throttled", "filtered", "unknown", "none"}
    kinds = {t.kind for t in run.truth.values()}
    assert kinds == {"receipt", "reversed", "declined", "not_registered"}


def test_each_cause_through_the_api_has_the_right_outcome_cause_and_advice(run: Run) -> None:
    for (outcome, cause), items in sorted(run.by_outcome().items()):
        for t in picks(items):
            status, body, _ = api(run, f"rrn={t.rrn}")
            assert status == 200, body
            assert body["count"] == 1 and body["truncated"] is False
            r = body["results"][0]
            assert (r["txn_id"], r["rrn"], r["terminal_id"]) == (t.txn_id, t.rrn, t.terminal_id)
            assert parse_rfc3339_ms(r["txn_time"]) == t.txn_ms
            assert r["receipt"]["state"] == "decided"
            assert (r["receipt"]["outcome"], r["receipt"]["cause"]) == (outcome, cause), t
            expected = advice_for(situation(outcome, cause))
            assert r["situation"] == situation(outcome, cause)
            assert (r["title"], r["explanation"], r["advice"]) == (
                expected.title,
                expected.explanation,
                expected.advice,
            )
            own = [s for s in r["timeline"] if not s["kind"].startswith("alert_")]
            assert own[0]["kind"] == "payment"  # an incident may have started before
            linked = [m for m in r["sms"] if m["counts_for_receipt"]]
            if outcome == "missing":
                assert not linked and any(s["kind"] == "missing" for s in r["timeline"])
            else:
                assert len(linked) == 1 and linked[0]["events"][0]["status"] == "submitted"
                final = {"delivered": "good", "failed": "bad", "unknown": "bad"}[outcome]
                assert any(s["tone"] == final for s in r["timeline"][1:])
            assert r["alerts"] is not None and body["alerts"] == "ok"


def test_transactions_that_need_no_sms_say_why(run: Run) -> None:
    for kind, expected in (
        ("declined", "declined"),
        ("not_registered", "not_registered"),
        ("reversed", "reversed"),
    ):
        t = next(t for t in run.truth.values() if t.kind == kind)
        status, body, _ = api(run, f"txn_id={t.txn_id}")
        assert status == 200 and body["count"] == 1
        r = body["results"][0]
        assert r["situation"] == expected and r["advice"] == advice_for(expected).advice
        assert r["alerts"] == []  # no incident is relevant when no SMS was due


def test_each_cause_through_the_cli(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    for (outcome, cause), items in sorted(run.by_outcome().items()):
        t = items[len(items) // 2]
        code, out = cli(run, capsys, "lookup", "--rrn", t.rrn, "--output", "json")
        assert code == 0
        r = json.loads(out)["results"][0]
        assert (r["receipt"]["outcome"], r["receipt"]["cause"]) == (outcome, cause)
        assert r["advice"] == advice_for(situation(outcome, cause)).advice
        code, text = cli(run, capsys, "lookup", "--rrn", t.rrn)
        words = advice_for(situation(outcome, cause))
        assert code == 0 and words.title in text and "Timeline:" in text
        assert local_time(t.txn_ms, SHANGHAI) in text  # times in the configured zone
        assert " ".join(words.advice.split()[:6]) in " ".join(text.split())
    t = run.by_outcome()[("failed", "invalid_number")][0]
    code, text = cli(run, capsys, "lookup", "--rrn", t.rrn, "--lang", "zh")
    assert code == 0 and advice_for("invalid_number", "zh").title in text


def test_unknown_keys_give_an_empty_result(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    for query in (
        "rrn=000000000000",
        "txn_id=t-99999999",
        f"terminal=T9999999&at={ts(run.by_outcome()[('delivered', 'none')][0].txn_ms)}",
        "phone_last4=0000&at=2020-01-01T00:00:00Z",
    ):
        status, body, _ = api(run, query)
        assert (status, body["count"], body["results"]) == (200, 0, []), query
    code, text = cli(run, capsys, "lookup", "--rrn", "000000000000")
    assert code == 0 and "No transaction found" in text


def test_terminal_and_time_find_the_receipts_of_a_terminal_with_sms_notice_off(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    fault = next(f for f in run.faults if f["kind"] == "terminal_sms_off")
    hit = set(fault["terminal_ids"])
    start, end = parse_rfc3339_ms(fault["start"]), parse_rfc3339_ms(fault["end"])
    victims = [
        t
        for t in run.by_outcome()[("missing", "terminal_config")]
        if t.terminal_id in hit and start <= t.txn_ms < end
    ]
    assert victims, "the fault switched off terminals that had receipts"
    t = victims[0]
    at = local_time(t.txn_ms + 90_000, SHANGHAI)[:16]  # "2026-11-25 12:15": local, no offset
    status, body, _ = api(run, urllib.parse.urlencode({"terminal": t.terminal_id, "at": at}))
    assert status == 200
    found = {r["rrn"]: r for r in body["results"]}
    assert t.rrn in found and found[t.rrn]["situation"] == "terminal_config"
    assert all(r["terminal_id"] == t.terminal_id for r in body["results"])
    assert all(
        abs(parse_rfc3339_ms(r["txn_time"]) - t.txn_ms) <= 11 * 60_000 for r in found.values()
    )
    r = found[t.rrn]
    assert r["terminal"] == {
        "sms_notice_enabled": False,
        "software_version": r["terminal"]["software_version"],
    }
    assert any("SMS notice setting was switched off" in s["text"] for s in r["timeline"])
    alerts = {(a["alertname"], a["acquirer"]) for a in r["alerts"]}
    assert ("ReceiptsWithoutSMSTerminalConfig", "acq-south") in alerts
    assert ("ReceiptsWithoutSMSTerminalConfig", "acq-north") not in alerts  # another acquirer
    assert not any(a[0] == "Watchdog" for a in alerts)
    code, out = cli(
        run,
        capsys,
        "lookup",
        "--terminal",
        t.terminal_id,
        "--at",
        at,
        "--window",
        "2m",
        "--output",
        "json",
    )
    assert code == 0 and t.rrn in {x["rrn"] for x in json.loads(out)["results"]}


def test_a_gateway_failure_shows_the_incident_with_its_start_time(run: Run) -> None:
    fault = next(f for f in run.faults if f["kind"] == "gateway_outage")
    start = parse_rfc3339_ms(fault["start"])
    t = next(t for t in run.by_outcome()[("failed", "gateway")] if start + 60_000 <= t.txn_ms)
    _, body, _ = api(run, f"rrn={t.rrn}")
    r = body["results"][0]
    incident = r["alerts"][0]
    assert incident["alertname"] == "SMSGatewayErrors" and incident["gateway"] == "bank-sms"
    assert incident["firing_from"] == ts(start + ALERT_DELAY_MS)  # exact: raw samples
    assert incident["firing_until"] == ts(parse_rfc3339_ms(fault["end"]) + ALERT_DELAY_MS)
    assert any(s["kind"] == "alert_started" for s in r["timeline"])


def test_phone_last4_and_time_find_the_payment(run: Run) -> None:
    t = run.by_outcome()[("delivered", "none")][5]
    _, body, _ = api(run, f"rrn={t.rrn}")
    phone = body["results"][0]["sms"][0]["phone"]
    assert re.fullmatch(r"\d{3}\*{4}\d{4}", phone)
    status, found, _ = api(run, f"phone_last4={phone[-4:]}&at={ts(t.txn_ms)}&window=5m")
    assert status == 200 and t.rrn in {r["rrn"] for r in found["results"]}
    assert all(any(m["phone"].endswith(phone[-4:]) for m in r["sms"]) for r in found["results"])


BAD = [
    ("rrn=12%2034", "rrn is malformed"),
    ("rrn=" + "9" * 40, "rrn is malformed"),
    ("rrn=13812345678", "looks like a phone number"),
    ("txn_id=6225880012341237", "looks like a card number"),
    ("txn_id=a%27%20OR%201%3D1--", "txn_id is malformed"),
    ("terminal=T0001234", "terminal needs at"),
    ("terminal=T0001234&at=yesterday", "at is not a time"),
    ("terminal=T0001234&at=2026-02-30T12:00", "at is not a time"),  # no such day
    ("terminal=T0001234&at=2026-11-25T04:00:00Z&window=3h", "window 3h is too wide: at most 2h"),
    ("terminal=T0001234&at=2026-11-25T04:00:00Z&window=soon", "window is not a duration"),
    ("phone_last4=13812345678&at=2026-11-25T04:00:00Z", "exactly the last 4 digits"),
    ("rrn=1&txn_id=2", "one key at a time"),
    ("rrn=1&rrn=2", "give each parameter once"),
    ("rrn=1&at=2026-11-25T04:00:00Z", "at and window go with terminal or phone_last4"),
    ("rnn=123", "unknown parameter 'rnn'"),
    ("", "say what to look up"),
]


@pytest.mark.parametrize(("query", "message"), BAD)
def test_bad_input_is_a_400_with_a_clear_message(run: Run, query: str, message: str) -> None:
    status, body, _ = api(run, query)
    assert status == 400 and message in body["error"], body
    for value in re.findall(r"=([^&]+)", urllib.parse.unquote(query)):
        if len(value) > 4 and value not in ("2026-11-25T04:00:00Z",):
            assert value not in body["error"]  # the input itself is never echoed


def test_the_cli_refuses_bad_input_with_exit_code_2(run: Run) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "lookup", "--config.file", str(run.config_path),
         "--terminal", "T0001234", "--at", "2026-11-25T04:00:00Z", "--window", "1d"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and "window 1d is too wide" in result.stderr
    nothing = str(run.tmp / "nothing.sqlite")
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "lookup", "--state.path", nothing, "--rrn", "1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and "no state file" in result.stderr


def test_no_wrong_or_revoked_token_is_a_bare_401(run: Run) -> None:
    good = run.tokens["alice"]
    for token in (None, "smsw_wrong", good + "x", run.tokens["bob"]):  # bob's is revoked
        status, body, headers = api(run, "rrn=000000000000", token)
        assert (status, body) == (401, {"error": "unauthorized"}), token
        assert headers["WWW-Authenticate"].startswith("Bearer")
    assert api(run, "rrn=000000000000", "carol")[0] == 200
    tokens = yaml.safe_load(run.tokens_file.read_text())
    for entry in tokens["tokens"]:
        if entry["name"] == "carol":
            entry["revoked"] = True
    run.tokens_file.write_text(yaml.safe_dump(tokens))  # revocation needs no restart
    status, body, _ = api(run, "rrn=000000000000", "carol")
    assert (status, body) == (401, {"error": "unauthorized"})
    assert api(run, "rrn=000000000000")[0] == 200  # alice's token is unaffected


def test_only_get_reads(run: Run) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"{run.exporter_url}/api/v1/receipts?rrn=1", method="POST", data=b""
    )
    request.add_header("Authorization", f"Bearer {run.tokens['alice']}")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 405


def audit_rows(run: Run, capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    code, text = cli(run, capsys, "audit", "export", "--from", "2000-01-01T00:00:00Z",
                     "--to", "2100-01-01T00:00:00Z")  # fmt: skip
    assert code == 0
    return list(csv.DictReader(io.StringIO(text)))


def test_the_audit_records_each_lookup(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    before = len(audit_rows(run, capsys))
    t = run.by_outcome()[("failed", "unreachable")][0]
    api(run, f"rrn={t.rrn}")
    api(run, f"phone_last4=1234&at={ts(t.txn_ms)}&window=1m")
    api(run, "rrn=13812345678")  # refused: a phone number in the rrn field
    api(run, f"rrn={t.rrn}", "smsw_wrong")  # not authenticated: nothing looked up
    cli(run, capsys, "lookup", "--txn-id", t.txn_id)
    rows = audit_rows(run, capsys)[before:]
    assert [
        (r["user"], r["channel"], r["key_kind"], r["key"], r["results"], r["status"]) for r in rows
    ] == [
        ("alice", "api", "rrn", t.rrn, "1", "ok"),
        ("alice", "api", "phone_last4", "*******1234", rows[1]["results"], "ok"),
        ("alice", "api", "rrn", "", "0", "bad_request"),
        (rows[3]["user"], "cli", "txn_id", t.txn_id, "1", "ok"),
    ]
    assert rows[0]["method"] == "token" and rows[0]["remote"] == "127.0.0.1"
    assert rows[3]["method"] == "cli" and rows[3]["user"]
    assert parse_rfc3339_ms(rows[1]["to"]) - parse_rfc3339_ms(rows[1]["from"]) == 120_000
    assert not rows[0]["from"] and not rows[0]["to"]
    out = run.tmp / "audit.csv"
    code, _ = cli(run, capsys, "audit", "export", "--from", "2000-01-01 00:00", "--to",
                  "2100-01-01 00:00", "--output", str(out))  # fmt: skip
    assert code == 0 and out.read_text().startswith("time,user,method,channel,remote,key_kind")


def test_no_raw_phone_or_card_number_anywhere(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """Responses, CLI output, log lines, audit rows and the state itself: masked only."""
    for query in ("rrn=13912345678", "txn_id=4111111111111111", "phone_last4=13912345678&at=x"):
        api(run, query)  # raw numbers typed into the wrong fields: refused, never echoed
    api(run, "terminal=15912345678&at=2026-11-25T04:00:00Z")
    texts = {
        "responses": "\n".join(SEEN),
        "log": run.log_path.read_text(errors="replace"),
        "audit": "\n".join(",".join(r.values()) for r in audit_rows(run, capsys)),
    }
    with sqlite3.connect(run.state_path) as db:
        texts["state"] = "\n".join(db.iterdump())
    assert len(SEEN) > 50 and "62" in texts["responses"] and "****" in texts["responses"]
    for where, text in texts.items():
        assert not RAW_PHONE.search(text), (where, RAW_PHONE.search(text))
        assert not RAW_PAN.search(text), (where, RAW_PAN.search(text))
    assert "lookup refused" in texts["log"]  # the 401s were logged, without their tokens
    for token in run.tokens.values():
        assert token not in texts["log"]

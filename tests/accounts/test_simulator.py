"""The simulator's provider accounts over real HTTP on 127.0.0.1: every provider's account check
against it reads a balance that burned down with exactly the messages the run submitted, and
approved senders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.accounts.checker import AccountChecker
from exporter.app import Exporter
from exporter.config import parse_config, simulator_config_document
from exporter.simulator import account
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import SimulatorSettings
from exporter.timestamps import parse_rfc3339_ms

from .test_providers import ALIYUN, TENCENT, TWILIO, VONAGE, checked, source_config
from harness import finished_truth, scrape, wait_until

START_MS = parse_rfc3339_ms("2026-11-26T04:00:00Z")  # noon in Beijing: traffic at its peak


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    server = SimulatorServer(
        SimulatorSettings(
            seed=7,
            speed=3600.0,
            start_ms=START_MS,
            traffic_for_ms=20 * 60_000,
            scenario="none",
            sms_api="twilio",
        ),
        "127.0.0.1",
        0,
    )
    server.start()
    yield server
    server.stop()


def sent_by_truth(document: Any) -> int:
    """Messages submitted, from the truth's own counter series."""
    return sum(
        series["value"]
        for series in document["metrics"].get("smswatch_sms_submitted_total", [])
        if series["labels"]["gateway"] == document["parameters"]["gateway"]
    )


def account_of(provider: dict[str, Any], server: SimulatorServer) -> dict[str, Any]:
    extra = {"balance_url": server.url} if provider is ALIYUN else {}
    return {"base_url": server.url, **extra}


@pytest.mark.parametrize("name", ["twilio", "vonage", "aliyun", "tencent"])
def test_account_checks_read_the_simulated_burn_exactly(
    simulator: SimulatorServer, tmp_path: Path, name: str
) -> None:
    provider = {"twilio": TWILIO, "vonage": VONAGE, "aliyun": ALIYUN, "tencent": TENCENT}[name]
    config = source_config({**provider, "base_url": simulator.url}, account_of(provider, simulator))
    document = finished_truth(simulator.url)
    checker: AccountChecker
    checker, series = checked(config, tmp_path)
    assert checker.health().up, checker.health().reading.failed_parts
    sent = document["account"]["messages_sent"]
    assert sent == sent_by_truth(document) > 0
    if name == "tencent":
        left = series[("smswatch_account_quota_remaining", "gateway=bank-sms")]
        assert left == document["account"]["quota_remaining"] == account.PACKAGE_MESSAGES - sent
        assert series[("smswatch_account_quota_limit", "gateway=bank-sms")] == 100_000
    else:
        credit = account.CREDITS[name]
        key = ("smswatch_account_balance", f"currency={credit.currency}", "gateway=bank-sms")
        assert series[key] == document["account"]["balances"][name]["amount"]
        assert series[key] == (credit.start_micros - credit.price_micros * sent) / 1_000_000
        assert series[key] < credit.start_micros / 1_000_000
    if name in ("aliyun", "tencent"):
        approved = {k[2:]: v for k, v in series.items() if k[0] == "smswatch_sms_sender_approved"}
        template = account.TEMPLATE_CODE if name == "aliyun" else str(account.TEMPLATE_ID)
        assert approved == {
            ("kind=signature", f"name={account.SIGNATURE}"): 1,
            ("kind=template", f"name={template}"): 1,
        }


def test_the_exporter_schedules_account_checks_and_serves_them_on_metrics(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    doc = simulator_config_document(simulator.url)
    doc["sources"][0] = {
        "name": "sms",
        "kind": "sms_gateway",
        "gateway": "bank-sms",
        **TWILIO,
        "base_url": simulator.url,
        "account": {"interval": "10m"},
    }
    doc["state"]["path"] = str(tmp_path / "state.sqlite")
    app = Exporter(parse_config(doc, env={"SECRET": "s3cret"}), "127.0.0.1", 0)
    app.start()
    try:
        metrics = f"http://127.0.0.1:{app.port}/metrics"
        up = ("smswatch_account_up", frozenset({("gateway", "bank-sms")}))
        wait_until(lambda: scrape(metrics).get(up) == 1, 20, "the first account check")
        exported = scrape(metrics)
    finally:
        app.stop()
    balances = [k for k in exported if k[0] == "smswatch_account_balance"]
    assert balances == [
        ("smswatch_account_balance", frozenset({("currency", "USD"), ("gateway", "bank-sms")}))
    ]


def test_account_check_command_prints_each_gateway_and_exits_by_health(
    simulator: SimulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from exporter.cli import main

    doc = simulator_config_document(simulator.url)
    doc["sources"][0]["account"] = {
        "provider": "tencent",
        "base_url": simulator.url,
        "sms_sdk_app_id": "1400006666",
        "templates": ["1110", "9999"],  # 9999 is not listed: absent
        "auth": {"type": "tc3", "secret_id": "AKIDEXAMPLE", "secret_key": "${SECRET}"},
    }
    path = tmp_path / "smswatch.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    argv = ["account", "check", "--config.file", str(path), "--output", "json"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SECRET", "s3cret")
        code = main(argv)
    result = json.loads(capsys.readouterr().out)["accounts"][0]
    assert code == 1  # a watched template is not approved
    assert result["gateway"] == "bank-sms" and result["provider"] == "tencent"
    assert result["quota"]["limit"] == account.PACKAGE_MESSAGES
    assert result["senders"] == [
        {"kind": "signature", "name": account.SIGNATURE, "state": "approved"},
        {"kind": "template", "name": "1110", "state": "approved"},
        {"kind": "template", "name": "9999", "state": "absent"},
    ]
    assert main(["account", "check", "--config.file", str(path), "--gateway", "nope"]) == 2


# Last in the module: the revocation stays in force on the module's simulator.
def test_a_revoked_signature_is_exported_rejected_as_the_truth_says(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    import urllib.request

    fault = {"kind": "sender_revoked", "duration": "1000h", "sender": "signature"}
    request = urllib.request.Request(
        f"{simulator.url}/sim/v1/faults", data=json.dumps(fault).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
    truth = finished_truth(simulator.url)["account"]["senders"]
    assert truth == {"signature": "rejected", "template": "approved"}
    for provider in (ALIYUN, TENCENT):
        config = source_config(
            {**provider, "base_url": simulator.url}, account_of(provider, simulator)
        )
        _, series = checked(config, tmp_path)
        key = ("gateway=bank-sms", "kind=signature", f"name={account.SIGNATURE}")
        assert series[("smswatch_sms_sender_approved", *key)] == 0
        assert series[("smswatch_sms_sender_state", *key, "state=rejected")] == 1

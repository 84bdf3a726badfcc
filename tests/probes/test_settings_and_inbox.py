"""The `probes:` config section (errors name the field path; secrets only from the environment
or files) and the gammu-smsd files-backend inbox (file names per gammu-smsd-files(7))."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import parse_config, simulator_config_document
from exporter.errors import ConfigError
from exporter.probes.inbox import GammuInbox, file_time_ms, masked_name, nonces_in

KANNEL = {
    "kind": "kannel",
    "url": "http://127.0.0.1:13013/cgi-bin/sendsms",
    "username": "smswatch",
    "password": "${SENDSMS_PASSWORD}",
    "dlr_url": "http://exporter:8479/push/kannel?msg={canary_id}",
}


def document(**gateway: Any) -> dict[str, Any]:
    doc = simulator_config_document("http://127.0.0.1:1")
    entry: dict[str, Any] = {
        "gateway": "bank-sms",
        "interval": "10m",
        "numbers": [{"number": "+8613800138000", "carrier": "china-mobile", "area": "north"}],
        "send": copy.deepcopy(KANNEL),
    }
    entry.update(gateway)
    doc["probes"] = {"gateways": [entry]}
    return doc


def test_a_valid_section_is_read_with_its_secret_from_the_environment() -> None:
    config = parse_config(document(), env={"SENDSMS_PASSWORD": "pw-from-env"})
    assert config.probes is not None
    [probe] = config.probes.gateways
    assert (probe.gateway, probe.interval_ms, probe.send.kind) == ("bank-sms", 600_000, "kannel")
    assert probe.send.secret == "pw-from-env"
    assert "pw-from-env" not in repr(config.probes) and "8613800138000" not in repr(config.probes)
    assert (config.probes.handset_timeout_ms, config.probes.report_timeout_ms) == (300_000, 900_000)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"gateway": "nope"}, "probes.gateways[0].gateway"),
        ({"numbers": []}, "probes.gateways[0].numbers"),
        ({"numbers": [{"number": "call-me"}]}, "probes.gateways[0].numbers[0].number"),
        ({"text": "no nonce here"}, "probes.gateways[0].text"),
        ({"send": {**KANNEL, "kind": "carrier-pigeon"}}, "probes.gateways[0].send.kind"),
        (
            {"send": {**KANNEL, "password": "written-in-the-file"}},
            "probes.gateways[0].send.password",
        ),
        (
            {"send": {k: v for k, v in KANNEL.items() if k != "dlr_url"}},
            "probes.gateways[0].send.dlr_url",
        ),
        ({"send": {**KANNEL, "api_key": "x"}}, "probes.gateways[0].send"),
        ({"interval": "soon"}, "probes.gateways[0].interval"),
    ],
)
def test_errors_name_the_field(change: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(document(**change), env={"SENDSMS_PASSWORD": "pw"})
    assert caught.value.field_path == path, str(caught.value)


def test_a_secret_file_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("tok-from-file\n")
    send = {
        "kind": "twilio",
        "account_sid": "AC1",
        "from": "+15550001",
        "auth_token_file": str(secret),
    }
    config = parse_config(document(send=send))
    assert config.probes is not None
    assert config.probes.gateways[0].send.secret == "tok-from-file"
    assert config.probes.gateways[0].send.url == "https://api.twilio.com"


def test_inbox_reads_each_message_once_parts_joined(tmp_path: Path) -> None:
    (tmp_path / "IN20261130_021531_00_+8613800138000_00.txt").write_bytes(
        "\ufeffsmswatch canary SWABCD".encode("utf-16-le")
    )
    (tmp_path / "IN20261130_021531_00_+8613800138000_01.txt").write_bytes(
        "\ufeffEFGHIJ 你好".encode("utf-16-le")
    )
    (tmp_path / "IN20261130_021540_01_10086_00.txt").write_text("plain SWKLMNOPQRST", "utf-8")
    (tmp_path / "OUTA_13800138000_00.txt").write_text("an outbox file SWZZZZZZZZZZ")
    inbox = GammuInbox(str(tmp_path), "Asia/Shanghai")
    first = inbox.read_new()
    assert [m.text for m in first] == ["smswatch canary SWABCDEFGHIJ 你好", "plain SWKLMNOPQRST"]
    assert first[0].received_ms == file_time_ms("20261130", "021531", "Asia/Shanghai")
    assert first[0].received_ms == 1_795_976_131_000  # 2026-11-29T18:15:31Z
    assert first[0].name == "IN20261130_021531_00_**********8000_00.txt"
    assert [nonces_in(m.text) for m in first] == [["SWABCDEFGHIJ"], ["SWKLMNOPQRST"]]
    assert inbox.read_new() == []


def test_masked_name_hides_the_sender() -> None:
    assert masked_name("IN20021130_021531_00_+45409000931640979_00.txt") == (
        "IN20021130_021531_00_**************0979_00.txt"
    )


def test_the_shipped_example_is_valid() -> None:
    example = Path(__file__).parents[2] / "examples" / "probes.yaml"
    env = {
        name: "13800138000" if name.startswith("CANARY") else f"{name.lower()}-value"
        for name in (
            "KANNEL_DLR_SECRET",
            "KANNEL_SENDSMS_PASSWORD",
            "TENCENT_SECRET_ID",
            "TENCENT_SECRET_KEY",
            "CANARY_CMCC_NORTH",
            "CANARY_CUCC_SOUTH",
            "CANARY_CTCC_EAST",
        )
    }
    config = parse_config(yaml.safe_load(example.read_text()), env=env)
    assert config.probes is not None
    assert [(g.gateway, g.send.kind, len(g.numbers)) for g in config.probes.gateways] == [
        ("kannel", "kannel", 2),
        ("tencent", "tencent", 1),
    ]

"""The demo's alerting files: the generated rules time-scaled to the demo's speed, and the shipped
Alertmanager routing with its timers scaled and its webhooks pointed at the demo's receiver."""

from __future__ import annotations

import shutil
import subprocess
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.demo.command import FAULT_CAUSES, busy_start_ms, demo_scenario_path
from exporter.demo.stack import demo_alertmanager_config, find_binaries, write_demo_rules
from exporter.simulator.scenario import load_scenario
from exporter.timestamps import parse_rfc3339_ms

ALERTS = Path(__file__).resolve().parents[2] / "alerts"


def _alerts(rule_dir: Path) -> dict[str, dict[str, Any]]:
    return {
        rule["alert"]: rule
        for path in sorted(rule_dir.glob("*.yaml"))
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_rules_at_the_demo_speed_are_the_shipped_rules_sixty_times_faster(
    tmp_path: Path, promtool: str
) -> None:
    files = write_demo_rules(ALERTS / "spec.yaml", tmp_path, 60)
    check = subprocess.run(
        [promtool, "check", "rules", *map(str, files)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr

    shipped, scaled = _alerts(ALERTS / "rules"), _alerts(tmp_path)
    assert set(scaled) == set(shipped)
    gateway, receipts = scaled["SMSGatewayOutage"], scaled["ReceiptsWithoutSMS"]
    assert (shipped["SMSGatewayOutage"]["for"], gateway["for"]) == ("30s", "500ms")
    assert (shipped["SMSGatewayOutage"]["keep_firing_for"], gateway["keep_firing_for"]) == (
        "35m",
        "35s",
    )
    assert (shipped["ReceiptsWithoutSMS"]["for"], receipts["for"]) == ("2m", "2s")
    assert "[30m]" in shipped["ReceiptsWithoutSMS"]["expr"]
    assert "[30s]" in receipts["expr"] and "[30m]" not in receipts["expr"]
    # A 2m window is 2s at 60x, but never fewer than four of the demo's 1s scrapes.
    assert "[2m]" in shipped["SMSGatewayOutage"]["expr"]
    assert "[4s]" in gateway["expr"] and "[2s]" not in gateway["expr"]


def test_rules_at_an_odd_speed_keep_valid_durations(tmp_path: Path, promtool: str) -> None:
    files = write_demo_rules(ALERTS / "spec.yaml", tmp_path, 7)  # 30s / 7 = 4s286ms
    check = subprocess.run(
        [promtool, "check", "rules", *map(str, files)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert _alerts(tmp_path)["SMSGatewayOutage"]["for"] == "4s286ms"


def test_alertmanager_routing_is_the_shipped_one_scaled_and_sent_to_the_receiver(
    tmp_path: Path,
) -> None:
    shipped = yaml.safe_load((ALERTS / "alertmanager.yml").read_text(encoding="utf-8"))
    token = tmp_path / "token"
    config = demo_alertmanager_config(shipped, 60, "http://127.0.0.1:9", token)

    route = config["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
        "500ms",
        "5s",
        "4m",
    )
    tickets = next(r for r in route["routes"] if r["receiver"] == "ticket-queue")
    assert tickets["group_wait"] == "5s" and "active_time_intervals" not in tickets
    assert "time_intervals" not in config
    assert config["inhibit_rules"] == shipped["inhibit_rules"]
    hooks = {
        r["name"]: [h["url"] for h in r.get("webhook_configs", [])] for r in config["receivers"]
    }
    assert hooks["oncall-pager"] == ["http://127.0.0.1:9/oncall-pager"]
    assert hooks["blackhole"] == []
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            assert hook["http_config"]["authorization"]["credentials_file"] == str(token)

    amtool = shutil.which("amtool")
    assert amtool, "amtool not found: install Debian's prometheus-alertmanager package"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    token.write_text("t\n")
    check = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_binaries_take_debian_names_first_and_upstream_alertmanager_too() -> None:
    debian = {"prometheus": "/usr/bin/prometheus", "prometheus-alertmanager": "/usr/bin/pa"}
    found = find_binaries(debian.get)
    assert found is not None and found.alertmanager == "/usr/bin/pa"
    upstream = {"prometheus": "/opt/prometheus", "alertmanager": "/opt/alertmanager"}
    found = find_binaries(upstream.get)
    assert found is not None and found.alertmanager == "/opt/alertmanager"
    assert find_binaries({"prometheus": "/usr/bin/prometheus"}.get) is None


@pytest.mark.parametrize(
    ("now", "start"),
    [
        ("2026-11-30T02:30:00Z", "2026-11-30T02:30:00Z"),  # 10:30 in Beijing: now
        ("2026-11-30T00:05:00Z", "2026-11-30T02:00:00Z"),  # 08:05: this morning's 10:00
        ("2026-11-30T06:00:00Z", "2026-12-01T02:00:00Z"),  # 14:00: tomorrow's 10:00
    ],
)
def test_the_demo_day_starts_on_busy_traffic_never_before_now(now: str, start: str) -> None:
    assert busy_start_ms(parse_rfc3339_ms(now) / 1000) == parse_rfc3339_ms(start)


def test_the_paced_scenario_plays_each_cause_once_one_at_a_time_gateway_first() -> None:
    faults = load_scenario(demo_scenario_path(), sim_start_ms=0, gateway="bank-sms")
    assert [FAULT_CAUSES[f.kind] for f in faults] == [
        "gateway",
        "invalid_number",
        "unreachable",
        "integration",
        "terminal_config",
    ]
    assert faults[0].start_ms >= 45 * 60_000  # the warm-up: every cause's normal known
    for before, after in pairwise(faults):
        assert before.end_ms < after.start_ms
    # The receipt faults come after the gateway page's tail (keep_firing_for 35m), which
    # silences receipt pages (alertmanager.yml inhibit rule 3).
    receipts = [f for f in faults if f.kind in ("integration_drop", "terminal_sms_off")]
    assert min(f.start_ms for f in receipts) > faults[0].end_ms + 35 * 60_000
    # At the demo's 60x, the last fault starts within three minutes of wall time.
    assert faults[-1].start_ms / 60 <= 180_000

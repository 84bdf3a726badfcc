"""A short backtest through the real pipeline, promtool, Prometheus and the repository's rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.cli import main
from exporter.timestamps import parse_rfc3339_ms

ROOT = Path(__file__).resolve().parents[2]
#: Midnight in Beijing: night volume.
START = "2026-11-02T16:00:00Z"
OUTAGE_START_MS = parse_rfc3339_ms("2026-11-02T17:30:00Z")
OUTAGE_END_MS = parse_rfc3339_ms("2026-11-02T17:50:00Z")


def backtest_args(tmp: Path, *extra: str) -> list[str]:
    """Three simulated hours at night: healthy for 90 minutes, then a 20-minute gateway outage."""
    scenario = tmp / "outage.yaml"
    scenario.write_text(
        yaml.safe_dump({"faults": [{"kind": "gateway_outage", "start": "90m", "duration": "20m"}]})
    )
    return [
        "backtest",
        "--days",
        "0.125",
        "--start",
        START,
        "--scenario",
        str(scenario),
        "--rules.dir",
        str(ROOT / "alerts" / "rules"),
        "--alertmanager.config",
        str(ROOT / "alerts" / "alertmanager.yml"),
        "--work-dir",
        str(tmp / "work"),
        "--log.level",
        "warning",
        *extra,
    ]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backtest")


@pytest.fixture(scope="module")
def report(workspace: Path) -> dict[str, Any]:
    assert main(backtest_args(workspace, "--out", str(workspace / "out"))) == 0
    document: dict[str, Any] = json.loads((workspace / "out" / "backtest.json").read_text())
    assert (workspace / "out" / "backtest.txt").read_text().startswith("Backtest ")
    return document


def test_the_gateway_outage_is_detected_with_cause_gateway(report: dict[str, Any]) -> None:
    (fault,) = report["faults"]
    assert fault["kind"] == "gateway_outage"
    assert fault["detected"]
    assert fault["cause"] == "gateway"
    assert 0 <= fault["cause_after_seconds"] <= 20 * 60
    assert any(a["cause"] == "gateway" and a["severity"] == "critical" for a in fault["alerts"])


def test_the_healthy_window_before_the_outage_pages_nobody(report: dict[str, Any]) -> None:
    early = [p for p in report["false_pages"] if parse_rfc3339_ms(p["start"]) < OUTAGE_START_MS]
    assert early == []
    early_episodes = [
        e
        for e in report["episodes"]
        if e["severity"] == "critical" and parse_rfc3339_ms(e["start"]) < OUTAGE_START_MS
    ]
    assert early_episodes == []


def test_every_scrape_of_the_run_was_backfilled_and_evaluated(report: dict[str, Any]) -> None:
    run = report["run"]
    assert run["scrapes"] == 180
    assert run["samples_written"] > 180 * 100
    assert run["recording_levels"][0] > 0 and run["alerting_rules"] > 0
    assert [Path(p).name for p in run["rule_files"]] == sorted(
        p.name for p in (ROOT / "alerts" / "rules").glob("*.yaml")
    )
    watchdog = [a for a in report["alerts"] if a["alert"] == "Watchdog"]
    assert watchdog and watchdog[0]["episodes"] == 1


def test_the_report_keys_are_stable(report: dict[str, Any]) -> None:
    assert report["version"] == 1
    assert set(report) == {
        "version",
        "run",
        "timings_seconds",
        "summary",
        "alerts",
        "faults",
        "false_pages",
        "episodes",
    }
    assert set(report["faults"][0]) >= {
        "id",
        "kind",
        "start",
        "end",
        "detected",
        "first_alert",
        "detect_after_seconds",
        "cause_alert",
        "cause",
        "cause_after_seconds",
        "first_page",
        "page_after_seconds",
        "resolved_after_end_seconds",
        "alerts",
        "pages",
    }
    assert set(report["timings_seconds"]) >= {
        "simulate_ingest",
        "exposition",
        "backfill",
        "evaluation",
        "total",
    }


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--scrape-interval", "soon"], "--scrape-interval"),
        (["--days", "0"], "--days"),
        (["--scenario", "/nonexistent/scenario.yaml"], "--scenario"),
        (["--rules.dir", "/nonexistent"], "--rules.dir"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    flags: list[str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", *flags]) == 2
    assert field in capsys.readouterr().err


def test_a_kept_replay_is_evaluated_again_with_the_same_result(
    report: dict[str, Any], workspace: Path
) -> None:
    out = workspace / "again"
    assert main(backtest_args(workspace, "--reuse-replay", "--out", str(out))) == 0
    again = json.loads((out / "backtest.json").read_text())
    assert again["run"]["replay_reused"] and not report["run"]["replay_reused"]
    assert again["faults"] == report["faults"]
    assert again["episodes"] == report["episodes"]


def test_a_kept_replay_of_other_options_is_refused(
    report: dict[str, Any], workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(backtest_args(workspace, "--reuse-replay", "--seed", "7")) == 2
    assert "--reuse-replay" in capsys.readouterr().err

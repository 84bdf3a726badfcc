"""promtool on the committed rules: syntax, and the unit tests of alerts/tests/ for every alert."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_files import RULE_TESTS, alerting_rules, rule_files, rule_test_files


@pytest.mark.parametrize("path", rule_files(), ids=lambda p: p.name)
def test_promtool_check_rules(promtool: str, path: Path) -> None:
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def unit_test_runs(promtool: str) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """Start every `promtool test rules` file at once: they are CPU-bound and independent."""

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [promtool, "test", "rules", path.name],
            cwd=RULE_TESTS,
            capture_output=True,
            text=True,
            timeout=300,
        )

    with ThreadPoolExecutor(max_workers=len(rule_test_files())) as pool:
        yield {path.name: pool.submit(run, path) for path in rule_test_files()}


@pytest.mark.parametrize("path", rule_test_files(), ids=lambda p: p.name)
def test_promtool_unit_tests_pass(
    unit_test_runs: dict[str, Future[subprocess.CompletedProcess[str]]], path: Path
) -> None:
    result = unit_test_runs[path.name].result()
    assert result.returncode == 0, result.stdout + result.stderr


def _alert_tests() -> list[dict[str, Any]]:
    cases = []
    for path in rule_test_files():
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


def test_every_alert_is_tested_firing_and_silent() -> None:
    """Each alert (and each severity of it) fires in some test and is asserted silent in another."""
    fires: set[tuple[str, str]] = set()
    silent: set[str] = set()
    for case in _alert_tests():
        expected = case.get("exp_alerts") or []
        if not expected:
            silent.add(case["alertname"])
        for alert in expected:
            fires.add((case["alertname"], alert["exp_labels"]["severity"]))
    for rule in alerting_rules():
        name, severity = rule["alert"], rule["labels"]["severity"]
        assert (name, severity) in fires, f"no promtool test sees {name} ({severity}) fire"
        if name != "Watchdog":
            assert name in silent, f"no promtool test asserts {name} silent"


def test_every_rule_file_is_under_test() -> None:
    covered: set[str] = set()
    for path in rule_test_files():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        covered.update(Path(f).name for f in doc["rule_files"])
    assert covered == {path.name for path in rule_files()}

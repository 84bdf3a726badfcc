"""promtool on the committed rules: syntax, and the unit tests of alerts/tests/ for every alert;
the same for the zh-CN rule set (alerts/rules/zh-CN/, alerts/tests/zh-CN/)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_files import LANGS, alerting_rules, rule_files, rule_test_files

ALL_RULE_FILES = [path for lang in LANGS for path in rule_files(lang)]
ALL_TEST_FILES = [path for lang in LANGS for path in rule_test_files(lang)]


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.mark.parametrize("path", ALL_RULE_FILES, ids=_id)
def test_promtool_check_rules(promtool: str, path: Path) -> None:
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def unit_test_runs(promtool: str) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """Start every `promtool test rules` file at once: they are CPU-bound and independent."""

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [promtool, "test", "rules", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=300,
        )

    with ThreadPoolExecutor(max_workers=len(ALL_TEST_FILES)) as pool:
        yield {_id(path): pool.submit(run, path) for path in ALL_TEST_FILES}


@pytest.mark.parametrize("path", ALL_TEST_FILES, ids=_id)
def test_promtool_unit_tests_pass(
    unit_test_runs: dict[str, Future[subprocess.CompletedProcess[str]]], path: Path
) -> None:
    result = unit_test_runs[_id(path)].result()
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


@pytest.mark.parametrize("lang", LANGS)
def test_every_rule_file_is_under_test(lang: str) -> None:
    covered: set[Path] = set()
    for path in rule_test_files(lang):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        covered.update((path.parent / f).resolve() for f in doc["rule_files"])
    assert covered == {path.resolve() for path in rule_files(lang)}


def test_every_chinese_annotation_is_seen_rendered_with_its_labels() -> None:
    """Each zh-CN alert fires in a promtool test of the zh-CN set that asserts its Chinese
    summary, description (its labels filled in) and its Chinese runbook: one per alert, so
    every alert group is covered."""
    seen: set[str] = set()
    for path in rule_test_files("zh-CN"):
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    annotations = alert.get("exp_annotations", {})
                    if not annotations:
                        continue
                    assert "/runbooks/zh-CN/" in annotations["runbook_url"]
                    assert annotations["summary"].endswith("。"), annotations["summary"]
                    for label, value in alert["exp_labels"].items():
                        if label in ("gateway", "acquirer", "carrier", "area", "source"):
                            assert str(value) in annotations["description"], (label, case)
                    assert "{{" not in annotations["description"]
                    seen.add(case["alertname"])
    assert seen == {rule["alert"] for rule in alerting_rules("zh-CN")}

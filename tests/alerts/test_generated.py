"""The generator: committed rule files match it, time scaling is right, the spec is validated."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_files import REPO, RULES, SPEC, alerting_rules

from exporter.alerting.generate import drift, render
from exporter.alerting.promql import format_duration
from exporter.alerting.spec import load_spec, parse_spec
from exporter.catalogue import CAUSES, METRICS_BY_NAME
from exporter.errors import ConfigError
from exporter.timestamps import parse_duration_ms


def _groups(text: str) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(text)["groups"]
    return groups


def test_committed_rule_files_match_the_generator() -> None:
    problems = drift(render(load_spec(SPEC)), RULES)
    assert not problems, "run `smswatch rules generate` and commit:\n" + "\n".join(problems)


def test_check_mode_exits_1_when_a_file_drifted(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "exporter", "rules", "generate", "--spec", str(SPEC)]
    out = tmp_path / "rules"
    subprocess.run([*command, "--out", str(out)], cwd=REPO, check=True, capture_output=True)
    ok = subprocess.run([*command, "--out", str(out), "--check"], cwd=REPO, capture_output=True)
    assert ok.returncode == 0, ok.stderr
    (out / "health.yaml").write_text("groups: []\n")
    bad = subprocess.run(
        [*command, "--out", str(out), "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "health.yaml: differs from the generator" in bad.stderr


def test_every_metric_in_the_rules_is_in_the_catalogue() -> None:
    names = set()
    for path in RULES.glob("*.yaml"):
        names.update(re.findall(r"\b(smswatch_[a-z_]+)\{", path.read_text()))
    assert names
    known = set(METRICS_BY_NAME)
    for name in names:
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        assert name in known or base in known, name


def test_cause_labels_are_design_causes() -> None:
    causes = {r["labels"]["cause"] for r in alerting_rules() if "cause" in r["labels"]}
    assert causes == {
        "gateway",
        "integration",
        "terminal_config",
        "invalid_number",
        "unreachable",
        "throttled",
        "filtered",
    }
    assert causes <= set(CAUSES)


def test_time_scale_divides_wall_clock_durations_only() -> None:
    spec = load_spec(SPEC)
    plain = {name: _groups(text) for name, text in render(spec).items()}
    scaled = {name: _groups(text) for name, text in render(spec, 60).items()}
    assert plain.keys() == scaled.keys()

    def rules(files: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str, str], Any]:
        found = {}
        for groups in files.values():
            for group in groups:
                for rule in group["rules"]:
                    key = rule.get("alert") or rule["record"]
                    severity = rule.get("labels", {}).get("severity", "")
                    found[(key, rule.get("labels", {}).get("sloth_window", ""), severity)] = rule
        return found

    before, after = rules(plain), rules(scaled)
    assert before.keys() == after.keys()
    # `for:` and `keep_firing_for:` 5m -> 5s, 30s -> 500ms; rule names and sloth_window labels
    # keep nominal values.
    for key, rule in before.items():
        for field in ("for", "keep_firing_for"):
            if field in rule:
                assert parse_duration_ms(after[key][field]) * 60 == parse_duration_ms(rule[field])
    ratio_1h = after[("slo:sli_error:ratio_rate1h", "1h", "")]["expr"]
    assert "[1m]" in ratio_1h and "[1h]" not in ratio_1h
    ratio_30d = after[("slo:sli_error:ratio_rate30d", "30d", "")]["expr"]
    assert "[12h]" in ratio_30d
    period = next(g for g in scaled["slo-sms-delivery.yaml"] if "period" in g["name"])
    assert period["interval"] == "5s"
    # The traffic guard counts events per simulated hour: 60 wall seconds at 60x.
    page = after[("SMSDeliveryErrorBudgetBurn", "", "critical")]["expr"]
    assert "* 60 >= 60" in page and "* 3600" not in page
    # Stale: 3 polls of 15 s = 45 s wall -> 0.75 s. Event-time thresholds do not scale.
    assert "> 0.75" in after[("SmswatchSourceStale", "", "warning")]["expr"]
    assert "> 900" in after[("SmswatchSourceLagging", "", "warning")]["expr"]
    assert 'le=~"60|60\\\\.0"' in after[("slo:sli_error:ratio_rate5m", "5m", "")]["expr"]


def test_scaled_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    for name, text in render(load_spec(SPEC), 60).items():
        (tmp_path / name).write_text(text)
    files = sorted(str(p) for p in tmp_path.glob("*.yaml"))
    result = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("ms", "text"),
    [(300_000, "5m"), (90_000, "1m30s"), (2_592_000_000, "30d"), (750, "750ms"), (1, "1ms")],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text


def _spec_with(change: str, value: Any) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(SPEC.read_text())
    node = raw
    *path, last = change.split(".")
    for key in path:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize(
    ("change", "value", "field"),
    [
        ("alerts.SMSThrottled.ratio", 5, "alerts.SMSThrottled.ratio"),
        ("alerts.SMSThrottled.window", "soon", "alerts.SMSThrottled.window"),
        ("alerts.SMSThrottled.min_events", None, "alerts.SMSThrottled.min_events"),
        ("alerts.SMSThrottled.colour", "red", "alerts.SMSThrottled.colour"),
        ("alerts.NoSuchAlert", {"for": "1m"}, "alerts.NoSuchAlert"),
        ("slo.objectives.receipt-latency.latency_seconds", 45, "latency_seconds"),
        ("slo.objectives.sms-delivery.objective", 100, "sms-delivery.objective"),
        ("slo.page.severity", "urgent", "slo.page.severity"),
        ("slo.page.windows", [{"long": "5m", "short": "1h", "burn_rate": 14.4}], "short"),
        ("version", "v0", "version"),
    ],
)
def test_spec_errors_name_the_field(change: str, value: Any, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec(_spec_with(change, value), source="alerts/spec.yaml")
    assert field in str(caught.value)
    assert str(caught.value).startswith("alerts/spec.yaml: ")


def test_bad_spec_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "spec.yaml"
    bad.write_text("version: smswatch/alerts/v1\nservice: [\n")
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "rules", "generate", "--spec", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert str(bad) in result.stderr


def test_scaled_windows_and_staleness_never_go_below_the_scrape_interval() -> None:
    """Time-scaled for a Prometheus that scrapes every wall second, a source is stale only after
    3 scrapes without a good poll (not after 0.75 s, shorter than one scrape), and no range
    window holds fewer than 4 scrapes."""
    files = render(load_spec(SPEC), 60, scrape_ms=1000)
    rules = {
        rule.get("alert") or rule["record"]: rule
        for text in files.values()
        for group in _groups(text)
        for rule in group["rules"]
    }
    assert "> 3\n" in rules["SmswatchSourceStale"]["expr"]
    for text in files.values():
        for window in re.findall(r"\[(\d+(?:ms|s|m|h|d))[]:]", text):
            assert parse_duration_ms(window) >= 4000, window


def test_cause_alerts_that_inhibit_pages_fire_first_and_cover_their_tail() -> None:
    """The for: race: a critical cause alert is never slower than the burn-rate page it
    inhibits, and keeps firing at least the longest page short window plus the receipt grace."""
    spec = load_spec(SPEC)
    tail = max(w.short_ms for w in spec.page.windows) + spec.missing_after_ms
    causes = [r for r in alerting_rules() if "cause" in r["labels"]]
    paging = [r for r in causes if r["labels"]["severity"] == "critical"]
    assert paging
    for rule in paging:
        assert parse_duration_ms(rule.get("for", "0s")) <= spec.page.for_ms, rule["alert"]
        assert parse_duration_ms(rule.get("keep_firing_for", "0s")) >= tail, rule["alert"]


@pytest.mark.parametrize(
    ("sides", "message"),
    [
        ({"bank_side": ["gateway"], "cardholder_side": ["unreachable"]}, "neither side"),
        (
            {"bank_side": ["gateway", "unreachable"], "cardholder_side": ["unreachable"]},
            "both sides",
        ),
        ({"bank_side": ["gateway", "nonsense"], "cardholder_side": []}, "not a cause"),
    ],
)
def test_every_cause_is_on_exactly_one_side(sides: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec(_spec_with("causes", sides), source="alerts/spec.yaml")
    assert "causes." in str(caught.value) and message in str(caught.value)

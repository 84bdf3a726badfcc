"""Every alert speaks the mixin style and links to a runbook that exists and is complete."""

from __future__ import annotations

import re

import pytest
import yaml
from alert_files import RUNBOOKS, SPEC, alerting_rules, rule_test_files

from exporter.alerting.spec import load_spec

RULES = alerting_rules()
NAMES = sorted({rule["alert"] for rule in RULES})
SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation", "## Emergency response")
DASHBOARDS = ("smswatch-overview", "smswatch-oncall", "smswatch-receipts")


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_has_severity_summary_description_and_links(rule: dict[str, object]) -> None:
    labels = rule["labels"]
    annotations = rule["annotations"]
    assert isinstance(labels, dict) and isinstance(annotations, dict)
    assert labels["severity"] in ("critical", "warning", "info")
    assert annotations["summary"].endswith(".")
    assert "{{" in annotations["description"] or rule["alert"] == "Watchdog"
    spec = load_spec(SPEC)
    assert annotations["runbook_url"] == f"{spec.runbook_base_url}/{rule['alert']}.md"
    if "dashboard_url" in annotations:
        base, _, uid = annotations["dashboard_url"].rpartition("/")
        assert base == spec.dashboard_base_url and uid in DASHBOARDS


def test_descriptions_name_the_gateway_acquirer_carrier_and_area() -> None:
    """Whatever an alert is per (as seen firing in the promtool tests), its description names."""
    checked = set()
    for path in rule_test_files():
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    rule = next(  # the rule of that severity (one alert may have two)
                        r
                        for r in RULES
                        if r["alert"] == case["alertname"]
                        and r["labels"]["severity"] == alert["exp_labels"]["severity"]
                    )
                    for label in ("gateway", "acquirer", "carrier", "area", "source"):
                        if label in alert["exp_labels"]:
                            assert f"$labels.{label}" in rule["annotations"]["description"], (
                                f"{case['alertname']}: description does not name its {label}"
                            )
                    checked.add(case["alertname"])
    assert checked == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_runbook_url_resolves_to_a_complete_runbook(name: str) -> None:
    spec = load_spec(SPEC)
    url = next(r["annotations"]["runbook_url"] for r in RULES if r["alert"] == name)
    relative = url.removeprefix(spec.runbook_base_url + "/")
    path = RUNBOOKS / relative
    assert path.is_file(), f"{url} -> {path} does not exist"
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith(f"# {name}"), "the title must name the alert"
    for section in SECTIONS:
        assert section in text, f"{path.name}: missing {section}"
    assert not re.search(r"\bTODO\b|\bTBD\b|FIXME", text), f"{path.name}: unfinished"
    assert "```promql" in text, f"{path.name}: no PromQL to run"


def test_no_orphan_runbooks() -> None:
    names = {p.name.split(".")[0] for p in RUNBOOKS.glob("*.md")} - {"README"}
    assert names == set(NAMES)

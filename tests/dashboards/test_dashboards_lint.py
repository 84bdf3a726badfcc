"""Lint rules in the spirit of grafana/dashboard-linter, over the generated dashboards, plus the
contract checks that tie them to the metric catalogue and the objectives."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter import catalogue
from exporter.dashboards import FOLDER_UID, RUNBOOKS_URL, TAG, causes, generate, objectives
from exporter.dashboards.layout import FIRING_ALERTS
from exporter.vocabulary import cause_words

UIDS = ("smswatch-overview", "smswatch-oncall", "smswatch-receipts")
LABEL_VARIABLES = ("gateway", "carrier", "area", "acquirer")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

_RANGE = re.compile(r"\[([^\]]+)\]")
_RATE_CALL = re.compile(r"\b(rate|irate|increase)\(")
_SELECTOR = re.compile(r"\b(smswatch_\w+)(?:\{([^}]*)\})?")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"")
_BY = re.compile(r"\bby \(([^)]*)\)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(generate.panels(dashboard))


def _query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in _panels(dashboard) if panel.get("targets")]


@pytest.fixture(params=UIDS)
def dashboard(request: pytest.FixtureRequest, dashboards: dict[str, Any]) -> dict[str, Any]:
    board: dict[str, Any] = dashboards[request.param]
    return board


def test_the_three_dashboards_have_stable_uids(dashboards: dict[str, Any]) -> None:
    assert tuple(dashboards) == UIDS
    for uid, board in dashboards.items():
        assert board["uid"] == uid
        assert len(uid) <= 40  # Grafana's limit


def test_dashboard_header(dashboard: dict[str, Any]) -> None:
    assert TAG in dashboard["tags"], "the tag is push's creator marker"
    assert dashboard["title"].startswith("SMS notifications — ")
    assert dashboard["description"]
    assert dashboard["editable"] is False, "generated: edit the code, not the UI"
    assert dashboard["refresh"] and dashboard["time"]["to"] == "now"


def test_datasource_variable_is_the_only_datasource(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"

    def refs(node: Any) -> list[Any]:
        if isinstance(node, dict):
            found = [node["datasource"]] if "datasource" in node else []
            return found + [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for value in node for ref in refs(value)]
        return []

    all_refs = refs(dashboard)
    assert all_refs, "no datasource reference at all"
    assert all(ref == DATASOURCE for ref in all_refs), {json.dumps(r) for r in all_refs}


def test_every_panel_and_target_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    for panel in _query_panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, (panel["title"], target["refId"])


def test_every_panel_has_title_description_and_unit(dashboard: dict[str, Any]) -> None:
    for panel in _panels(dashboard):
        assert panel.get("title"), panel
        if panel["type"] == "row":
            continue
        assert panel.get("description"), f"{panel['title']}: no description"
        if panel.get("targets"):
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
            assert unit, f"{panel['title']}: no unit"
        else:
            assert panel["type"] == "text", f"{panel['title']}: no query"


def test_panel_ids_are_unique_and_positive(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in _panels(dashboard)]
    assert len(ids) == len(set(ids)), ids
    assert all(isinstance(i, int) and i > 0 for i in ids)


def test_panels_do_not_overlap_and_fit_the_grid(dashboard: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in _panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_every_target_has_a_unique_ref_id_and_a_legend(dashboard: dict[str, Any]) -> None:
    for panel in _query_panels(dashboard):
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)) and all(refs), panel["title"]
        for target in panel["targets"]:
            assert target.get("legendFormat"), (panel["title"], target["refId"])


def test_rates_use_rate_interval_and_instant_figures_a_declared_window(
    dashboard: dict[str, Any],
) -> None:
    """Time series rate over `$__rate_interval`; instant "selected period" figures over
    `$__range`; error budgets over the SLO period. No other window anywhere."""
    for panel in _query_panels(dashboard):
        for target in panel["targets"]:
            expr, where = target["expr"], f"{panel['title']} / {target['refId']}"
            windows = set(_RANGE.findall(expr))
            if target.get("instant"):
                allowed = {"$__range", objectives.SLO_PERIOD}
            else:
                allowed = {"$__rate_interval"}
            assert windows <= allowed, f"{where}: windows {windows}"
            calls = len(_RATE_CALL.findall(expr))
            assert calls == len(_RANGE.findall(expr)), f"{where}: a range outside rate/increase"


def test_every_query_uses_catalogue_metrics_and_labels(dashboard: dict[str, Any]) -> None:
    for panel in _query_panels(dashboard):
        for target in panel["targets"]:
            expr, where = target["expr"], f"{panel['title']} / {target['refId']}"
            for name, matchers in _SELECTOR.findall(expr):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                spec = catalogue.METRICS_BY_NAME.get(name) or catalogue.METRICS_BY_NAME.get(base)
                assert spec, f"{where}: {name} is not in the catalogue"
                labels = set(spec.labels) | ({"le"} if name.endswith("_bucket") else set())
                used = set(_MATCHER.findall(matchers))
                assert used <= labels, f"{where}: {name} has no label(s) {used - labels}"
            for group in _BY.findall(expr):
                by = {label.strip() for label in group.split(",")}
                known = {label for spec in catalogue.METRICS for label in spec.labels}
                assert by <= known | {"le", "alertname", "severity"}, f"{where}: by {by}"


def test_label_variables_are_multi_value_with_all(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(LABEL_VARIABLES) <= set(variables)
    for variable in variables.values():
        if variable["type"] != "query":
            continue
        assert variable["datasource"] == DATASOURCE, variable["name"]
        assert variable["query"].startswith("label_values("), variable["name"]
        assert variable["multi"] and variable["includeAll"], variable["name"]
        assert variable["allValue"] == ".*", variable["name"]
        assert variable["refresh"] == 2, f"{variable['name']}: refresh on time range change"
        assert variable["current"] == {"selected": True, "text": "All", "value": "$__all"}


def test_every_variable_is_used_and_every_used_variable_exists(dashboard: dict[str, Any]) -> None:
    variables = [v["name"] for v in dashboard["templating"]["list"]]
    text = json.dumps(dashboard)
    for name in variables:
        own = next(v for v in dashboard["templating"]["list"] if v["name"] == name)
        rest = text.replace(json.dumps(own), "")
        assert f"${name}" in rest or f"${{{name}}}" in rest, f"${name} is never used"
    builtins = {"__rate_interval", "__range", "__interval", "__all", "__value", "__data"}
    # `$1` is a capture group of a renameByRegex pattern, not a variable.
    used = {a or b for a, b in _VARIABLE.findall(text)} - {"1"}
    assert used <= set(variables) | builtins, used - set(variables) - builtins


def test_label_filters_follow_the_variables(dashboard: dict[str, Any]) -> None:
    """Every SMS series is filtered by gateway/carrier/area (as far as it has those labels) and
    every acquirer series by acquirer, so the variables act on every panel."""
    for panel in _query_panels(dashboard):
        for target in panel["targets"]:
            for name, matchers in _SELECTOR.findall(target["expr"]):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                spec = catalogue.METRICS_BY_NAME.get(name) or catalogue.METRICS_BY_NAME[base]
                needed = [label for label in (*LABEL_VARIABLES, "source") if label in spec.labels]
                if name == "smswatch_pos_terminals" and "unless" in target["expr"]:
                    # `x{acquirer=~…} unless x{compliant}`: the right side only removes series.
                    continue
                for label in needed:
                    if label == "source" and dashboard["uid"] != "smswatch-oncall":
                        continue
                    assert f'{label}=~"${label}"' in matchers, (
                        f"{panel['title']}: {name} not filtered by ${label}"
                    )


def test_objectives_are_pinned_and_drive_the_thresholds(dashboards: dict[str, Any]) -> None:
    assert objectives.DELIVERY_OBJECTIVE == 0.995
    assert objectives.NOTIFY_OBJECTIVE == 0.95
    assert objectives.NOTIFY_SECONDS in catalogue.BUCKETS_SECONDS
    assert objectives.SLO_PERIOD == "30d"
    steps = {
        step["value"]
        for board in dashboards.values()
        for panel in _panels(board)
        for step in panel.get("fieldConfig", {})
        .get("defaults", {})
        .get("thresholds", {})
        .get("steps", [])
    }
    assert {objectives.DELIVERY_OBJECTIVE, objectives.NOTIFY_OBJECTIVE} <= steps
    assert objectives.warning_level(0.995) == 0.99


def test_alerts_are_annotations(dashboard: dict[str, Any]) -> None:
    (annotation,) = dashboard["annotations"]["list"]
    assert annotation["expr"] == FIRING_ALERTS
    assert annotation["datasource"] == DATASOURCE and annotation["enable"]
    assert annotation["titleFormat"] == "{{alertname}}"


def test_runbooks_are_linked(dashboards: dict[str, Any]) -> None:
    for board in dashboards.values():
        assert any(link["url"] == "${runbooks}" for link in board["links"] if "url" in link)
    (table,) = [p for p in _panels(dashboards["smswatch-oncall"]) if p["type"] == "table"]
    (override,) = table["fieldConfig"]["overrides"]
    (link,) = override["properties"][0]["value"]
    assert link["url"] == "${runbooks}/${__value.text}.md"  # alerts/runbooks/<AlertName>.md


def test_causes_are_all_explained_in_plain_words(dashboards: dict[str, Any]) -> None:
    overview = dashboards["smswatch-overview"]
    (text,) = [p for p in _panels(overview) if p["type"] == "text"]
    for cause in catalogue.CAUSES:
        words = cause_words(cause, "en")
        assert (
            f"**{words.name}** | {words.meaning} | {causes.who_fixes(cause)}"
            in (text["options"]["content"])
        )
    by_cause = [
        panel
        for board in dashboards.values()
        for panel in _query_panels(board)
        if any("by (cause)" in t["expr"] for t in panel["targets"])
    ]
    assert by_cause
    for panel in by_cause:
        renamed = {o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]}
        assert set(catalogue.CAUSES) <= renamed, panel["title"]


def test_folder_is_the_one_push_and_provisioning_use() -> None:
    assert FOLDER_UID == "smswatch"


def test_objectives_and_runbooks_agree_with_the_alert_spec(repo_root: Path) -> None:
    """alerts/spec.yaml is the one home of the objectives; the dashboards mirror it."""
    path = repo_root / "alerts" / "spec.yaml"
    if not path.is_file():
        pytest.skip("alerts/spec.yaml is not in the tree yet")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    slo = spec["slo"]
    assert slo["period"] == objectives.SLO_PERIOD
    wanted = slo["objectives"]
    assert wanted["sms-delivery"]["objective"] / 100 == objectives.DELIVERY_OBJECTIVE
    assert wanted["receipt-notification"]["objective"] / 100 == objectives.RECEIPT_OBJECTIVE
    assert wanted["receipt-latency"]["objective"] / 100 == objectives.NOTIFY_OBJECTIVE
    assert wanted["receipt-latency"]["latency_seconds"] == objectives.NOTIFY_SECONDS
    assert spec["runbook_base_url"] == RUNBOOKS_URL
    assert set(spec["dashboards"].values()) == set(UIDS)


def test_each_panel_quotes_the_objective_its_thresholds_judge(
    dashboards: dict[str, Any],
) -> None:
    """A panel that says "Objective: X %" turns green at X, and a panel of receipts judges
    receipts by their own objective, not by the SMS delivery one."""
    quoted = 0
    boards = [*dashboards.values(), *generate.dashboards("zh-CN").values()]
    for board in boards:
        for panel in _panels(board):
            said = re.search(r"(?:Objective: |目标：)([\d.]+) ?%", panel.get("description", ""))
            if said is None:
                continue
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            green = max(step["value"] for step in steps if step["value"] is not None)
            assert round(float(said.group(1)) / 100, 6) == green, panel["title"]
            if "eceipt" in panel["title"] and "60 s" not in panel["title"]:
                assert green == objectives.RECEIPT_OBJECTIVE, panel["title"]
            quoted += 1
    assert quoted >= 14  # seven panels, in both languages

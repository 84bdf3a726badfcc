"""The zh-CN dashboards are the English ones in Simplified Chinese: same panels, queries and
layout, every word a person reads translated, cause names from the vocabulary."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter import catalogue
from exporter.dashboards import RUNBOOKS_URL, causes, generate
from exporter.dashboards.translation import (
    READABLE_KEYS,
    MissingTranslation,
    needs_translation,
    translate,
)
from exporter.dashboards.translation import (
    catalogue as zh_catalogue,
)
from exporter.language import speaking
from exporter.vocabulary import cause_words

_CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def chinese() -> dict[str, dict[str, Any]]:
    return generate.dashboards("zh-CN")


def _readable(node: Any, key: str = "") -> list[str]:
    """Every text of a dashboard a person reads."""
    if isinstance(node, dict):
        if node.get("id") == "displayName":
            return [node["value"]]
        found = []
        for k, v in node.items():
            found += [v] if isinstance(v, str) and k in READABLE_KEYS else _readable(v, k)
        return found
    if isinstance(node, list):
        return [text for item in node for text in _readable(item, key)]
    return []


def _without_words(node: Any) -> Any:
    """A dashboard with its readable texts, uid, language tag and runbook base taken out."""
    if isinstance(node, dict):
        if node.get("id") == "displayName":
            return {**node, "value": ""}
        skip = (
            READABLE_KEYS | {"tags", "renamePattern"} | ({"name"} if "iconColor" in node else set())
        )
        skip |= {"query"} if node.get("type") == "constant" else set()
        return {k: _without_words(v) for k, v in node.items() if k not in skip}
    if isinstance(node, list):
        return [_without_words(item) for item in node]
    return node


def test_chinese_dashboards_have_their_own_uids_and_the_english_structure(
    dashboards: dict[str, dict[str, Any]], chinese: dict[str, dict[str, Any]]
) -> None:
    assert list(chinese) == [f"{uid}-zh-cn" for uid in dashboards]
    for uid, english in dashboards.items():
        board = chinese[f"{uid}-zh-cn"]
        assert board["uid"] == f"{uid}-zh-cn" and len(board["uid"]) <= 40
        assert "zh-CN" in board["tags"] and "en" in english["tags"]
        # Same panels, grid, queries, thresholds and variables: only the words differ.
        english_shape = _without_words({**english, "uid": ""})
        assert _without_words({**board, "uid": ""}) == english_shape, uid
        exprs = [t["expr"] for p in generate.panels(english) for t in p.get("targets", [])]
        assert exprs == [t["expr"] for p in generate.panels(board) for t in p.get("targets", [])]
        runbooks = {v["name"]: v for v in board["templating"]["list"]}["runbooks"]
        assert runbooks["query"] == f"{RUNBOOKS_URL}/zh-CN"


def test_every_text_a_person_reads_is_chinese(chinese: dict[str, dict[str, Any]]) -> None:
    for uid, board in chinese.items():
        assert _CJK.search(board["title"]) and _CJK.search(board["description"])
        left = [t for t in _readable(board) if needs_translation(t)]
        assert not left, f"{uid}: English left: {left[:5]}"


def test_the_catalogue_holds_no_stale_entries(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    used = {text for board in dashboards.values() for text in _readable(board)}
    used |= {a["name"] for board in dashboards.values() for a in board["annotations"]["list"]}
    stale = set(zh_catalogue("zh-CN")) - used
    assert not stale, f"entries no dashboard uses: {sorted(stale)[:5]}"


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_cause_names_in_legends_and_explanations_come_from_the_vocabulary(lang: str) -> None:
    boards = generate.dashboards(lang)
    by_cause = [
        panel
        for board in boards.values()
        for panel in generate.panels(board)
        if any("by (cause)" in t["expr"] for t in panel.get("targets", []))
    ]
    assert by_cause
    for panel in by_cause:
        names = {
            o["matcher"]["options"]: o["properties"][0]["value"]
            for o in panel["fieldConfig"]["overrides"]
            if o["properties"][0]["id"] == "displayName"
        }
        for cause in catalogue.CAUSES:
            assert names[cause] == cause_words(cause, lang).name, (panel["title"], cause)
    # Legends that hold the cause label among other labels rename it by regex.
    mixed = [
        panel
        for board in boards.values()
        for panel in generate.panels(board)
        if any(
            "{{cause}}" in t["legendFormat"] and t["legendFormat"] != "{{cause}}"
            for t in panel.get("targets", [])
        )
    ]
    assert len(mixed) == 2
    for panel in mixed:
        renames = [t["options"] for t in panel["transformations"] if t["id"] == "renameByRegex"]
        for cause in catalogue.CAUSES:
            name = cause_words(cause, lang).name
            (rename,) = [r for r in renames if cause in r["regex"]]
            example = (
                "acq-1: missing (x)".replace("x", cause)
                if "\\(" in rename["regex"]
                else (f"undelivered: {cause}")
            )
            renamed = re.sub(rename["regex"], rename["renamePattern"].replace("$1", r"\1"), example)
            assert renamed.endswith((f": {name}", f"({name})")), (panel["title"], renamed)
    overview = boards[next(uid for uid in boards if uid.startswith("smswatch-overview"))]
    (table,) = [p for p in generate.panels(overview) if p["type"] == "text"]
    receipts = boards[next(uid for uid in boards if uid.startswith("smswatch-receipts"))]
    (two_causes,) = [p for p in generate.panels(receipts) if p["type"] == "text"]
    for cause in catalogue.CAUSES:
        words = cause_words(cause, lang)
        assert f"**{words.name}** | {words.meaning}" in table["options"]["content"]
    for cause in ("terminal_config", "integration"):
        assert f"**{cause_words(cause, lang).name}**" in two_causes["options"]["content"]
    with speaking(lang):
        assert causes.who_fixes("gateway") in table["options"]["content"]


def test_a_text_without_translation_is_an_error_naming_it() -> None:
    board = {"title": "A panel nobody translated", "panels": [{"title": "{{gateway}}"}]}
    with pytest.raises(MissingTranslation) as caught:
        translate(board, "zh-CN")
    assert "A panel nobody translated" in str(caught.value)
    assert "zh-CN.yaml" in str(caught.value)


def test_provisioning_loads_both_languages_side_by_side(repo_root: Path) -> None:
    """The provider reads dashboards/ recursively (Grafana's file provider walks subfolders):
    the zh-CN files lie below it, and no uid is used twice."""
    provider = yaml.safe_load(
        (repo_root / "dashboards/provisioning/dashboards/smswatch.yaml").read_text("utf-8")
    )["providers"][0]
    assert provider["type"] == "file" and not provider["options"]["foldersFromFilesStructure"]
    files = sorted((repo_root / "dashboards").rglob("*.json"))
    uids = [json.loads(path.read_text("utf-8"))["uid"] for path in files]
    assert len(uids) == 6 and len(set(uids)) == 6
    assert {path.parent.name for path in files} == {"dashboards", "zh-CN"}

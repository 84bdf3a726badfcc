"""The zh-CN rule set and runbooks say the same as the English ones, in Chinese.

Alert names, labels, expressions and `for:` are identical between the languages; only the
summary, description and runbook differ. Every alert has a runbook in each language with the
same sections (headings mapped below) and the same PromQL and commands. A cause named in words
is named with the vocabulary's name for it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_files import LANGS, REPO, SPEC, alerting_rules, rule_files, runbooks_dir

from exporter.alerting.spec import AlertSpec, load_spec
from exporter.vocabulary import cause_words

#: The runbook sections, English heading → Chinese heading, in the order both must follow.
HEADINGS: dict[str, str] = {
    "## Meaning": "## 含义",
    "## Impact": "## 影响",
    "## Diagnosis": "## 诊断",
    "## Mitigation": "## 缓解措施",
    "## Emergency response": "## 应急响应",
}
ENGLISH = alerting_rules("en")
CHINESE = alerting_rules("zh-CN")
NAMES = sorted({rule["alert"] for rule in ENGLISH})
#: Names that stay as they are in Chinese text: products, metric and label names, label values.
UNTRANSLATED = {
    "Alertmanager",
    "POS",
    "Prometheus",
    "SLO",
    "SMTP",
    "Watchdog",
    "exporter",
    "job",
    "smswatch",
    "smswatch_source_up",
    "unknown",
}
_CJK = re.compile(r"[\u4e00-\u9fff]")


@cache
def _spec() -> AlertSpec:
    return load_spec(SPEC)


def _without_words(path: Path) -> list[dict[str, Any]]:
    """The groups of a rule file with the language's own words taken out."""
    groups: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    for group in groups:
        for rule in group["rules"]:
            for key in ("summary", "description", "runbook_url", "dashboard_url"):
                rule.get("annotations", {}).pop(key, None)
    return groups


def test_both_rule_sets_have_the_same_alerts_labels_and_expressions() -> None:
    english = {path.name: path for path in rule_files("en")}
    chinese = {path.name: path for path in rule_files("zh-CN")}
    assert english.keys() == chinese.keys()
    for name, path in english.items():
        assert _without_words(path) == _without_words(chinese[name]), name


@pytest.mark.parametrize("rule", CHINESE, ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_chinese_annotations_are_chinese_and_link_the_chinese_runbook(
    rule: dict[str, Any],
) -> None:
    annotations = rule["annotations"]
    assert annotations["summary"].endswith("。")
    assert _CJK.search(annotations["summary"]) and _CJK.search(annotations["description"])
    for text in (annotations["summary"], annotations["description"]):
        latin = set(re.findall(r"[A-Za-z_]{2,}", re.sub(r"\{\{.*?\}\}", " ", text)))
        assert latin <= UNTRANSLATED, f"English left: {latin - UNTRANSLATED}"
    spec = _spec()
    assert annotations["runbook_url"] == f"{spec.runbook_base_url}/zh-CN/{rule['alert']}.md"
    english = next(
        r for r in ENGLISH if r["alert"] == rule["alert"] and r["labels"] == rule["labels"]
    )
    if "dashboard_url" in english["annotations"]:
        uid = english["annotations"]["dashboard_url"].rpartition("/")[2]
        assert annotations["dashboard_url"] == f"{spec.dashboard_base_url}/{uid}-zh-cn"
        assert (REPO / "dashboards" / "zh-CN" / f"{uid}-zh-cn.json").is_file()
    templated = set(re.findall(r"\{\{.*?\}\}", english["annotations"]["description"]))
    assert set(re.findall(r"\{\{.*?\}\}", annotations["description"])) == templated


@pytest.mark.parametrize("lang", LANGS)
def test_a_cause_is_named_with_the_vocabulary_name(lang: str) -> None:
    causes = [rule for rule in alerting_rules(lang) if "cause" in rule["labels"]]
    assert causes
    for rule in causes:
        name = cause_words(rule["labels"]["cause"], lang).name
        assert name in rule["annotations"]["description"], (rule["alert"], name)


def _headings(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("## ")]


def _blocks(text: str) -> list[str]:
    """Every fenced code block (PromQL, shell), which stays untranslated."""
    return re.findall(r"```[a-z]*\n.*?```", text, re.S)


def _inline_code(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


@pytest.mark.parametrize("name", NAMES)
def test_chinese_runbook_has_the_english_sections_and_commands(name: str) -> None:
    english = (runbooks_dir("en") / f"{name}.md").read_text(encoding="utf-8")
    path = runbooks_dir("zh-CN") / f"{name}.md"
    assert path.is_file(), f"{path} does not exist"
    chinese = path.read_text(encoding="utf-8")
    assert chinese.splitlines()[0].startswith(f"# {name}")
    assert [HEADINGS[h] for h in _headings(english)] == _headings(chinese)
    assert list(HEADINGS) == [h for h in _headings(english) if h in HEADINGS]
    assert _blocks(chinese) == _blocks(english), "PromQL and commands stay as they are"
    missing = {c for c in _inline_code(english) if c.startswith(("smswatch", "sum", "rate"))}
    assert missing <= _inline_code(chinese), missing - _inline_code(chinese)
    assert len(_CJK.findall(chinese)) > 200, "the runbook reads in Chinese"
    assert chinese.count("- [ ]") == english.count("- [ ]"), "same emergency checklist"


@pytest.mark.parametrize("lang", LANGS)
def test_runbooks_name_their_cause_with_the_vocabulary_name(lang: str) -> None:
    """The header line `**Cause:** `gateway` (Bank SMS platform fault)` of a cause alert's
    runbook gives the cause label and the vocabulary's name for it, in the runbook's language."""
    named = 0
    for rule in alerting_rules(lang):
        if "cause" not in rule["labels"]:
            continue
        cause = rule["labels"]["cause"]
        header = (runbooks_dir(lang) / f"{rule['alert']}.md").read_text(encoding="utf-8")
        header = header.split("## ", 1)[0]
        name = cause_words(cause, lang).name
        words = f"`{cause}` ({name})" if lang == "en" else f"`{cause}`（{name}）"
        assert words in header, (rule["alert"], words)
        named += 1
    assert named >= 9


def test_no_orphan_chinese_runbooks() -> None:
    names = {p.stem for p in runbooks_dir("zh-CN").glob("*.md")} - {"README"}
    assert names == set(NAMES)

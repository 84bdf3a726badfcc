"""Where the alerting files live, and their parsed contents (shared by tests/alerts)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
# Import `exporter` from this tree even when another checkout is installed in editable mode.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

ALERTS = REPO / "alerts"
SPEC = ALERTS / "spec.yaml"
RULES = ALERTS / "rules"
RULE_TESTS = ALERTS / "tests"
RUNBOOKS = ALERTS / "runbooks"
ALERTMANAGER_CONFIG = ALERTS / "alertmanager.yml"
#: The languages of the rule sets, runbooks and their tests; English at the top of each folder.
LANGS = ("en", "zh-CN")


def _in(folder: Path, lang: str) -> Path:
    return folder if lang == "en" else folder / lang


def rules_dir(lang: str = "en") -> Path:
    return _in(RULES, lang)


def runbooks_dir(lang: str = "en") -> Path:
    return _in(RUNBOOKS, lang)


def rule_files(lang: str = "en") -> list[Path]:
    return sorted(rules_dir(lang).glob("*.yaml"))


def rule_test_files(lang: str = "en") -> list[Path]:
    return sorted(_in(RULE_TESTS, lang).glob("*.yaml"))


def alerting_rules(lang: str = "en") -> list[dict[str, Any]]:
    """Every alerting rule of the committed rule files (page and ticket rules both)."""
    rules = []
    for path in rule_files(lang):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules

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


def rule_files() -> list[Path]:
    return sorted(RULES.glob("*.yaml"))


def rule_test_files() -> list[Path]:
    return sorted(RULE_TESTS.glob("*.yaml"))


def alerting_rules() -> list[dict[str, Any]]:
    """Every alerting rule of the committed rule files (page and ticket rules both)."""
    rules = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules

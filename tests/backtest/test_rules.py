"""The rule files as Prometheus loads them: checked by promtool, recording rules in levels."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exporter.backtest.rules import check_rules, expression_names, load_rules, rule_files
from exporter.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_a_rule_that_reads_a_recorded_series_comes_a_level_later(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "g",
                        "interval": "5m",
                        "rules": [
                            {"record": "c:ratio", "expr": "b:rate5m / 2"},
                            {"record": "b:rate5m", "expr": 'sum(rate(a_total{x="b:rate5m"}[5m]))'},
                            {
                                "alert": "A",
                                "expr": "c:ratio > 1",
                                "for": "2m",
                                "keep_firing_for": "10m",
                            },
                        ],
                    }
                ]
            }
        )
    )
    rules = load_rules([path], 60_000)
    assert [[r.name for r in level] for level in rules.levels] == [["b:rate5m"], ["c:ratio"]]
    (alert,) = rules.alerts
    assert (alert.for_ms, alert.keep_firing_for_ms, alert.interval_ms) == (
        120_000,
        600_000,
        300_000,
    )
    assert rules.read_metrics & {"a_total", "b:rate5m"} == {"a_total"}


def test_label_values_and_strings_are_not_metric_names() -> None:
    assert "smswatch" not in expression_names('sum by (job) (up{job="smswatch"})')


def test_the_repository_rules_pass_promtool_and_read_only_exported_series() -> None:
    paths = rule_files(ROOT / "alerts" / "rules")
    check_rules(paths)
    rules = load_rules(paths, 60_000)
    assert rules.alerts and rules.levels
    assert {n for n in rules.read_metrics if n.startswith("smswatch_")} >= {
        "smswatch_sms_messages_total",
        "smswatch_receipts_total",
    }


def test_a_file_prometheus_would_refuse_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: 'sum(('\n")
    with pytest.raises(ConfigError, match="promtool check rules failed"):
        check_rules([path])

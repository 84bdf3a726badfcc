"""The `for` / `keep_firing_for` state machine, by example and against promtool's own engine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from exporter.backtest.alertstate import Firing, firing_episodes

MINUTE = 60_000
TIMES = [i * MINUTE for i in range(20)]


def active(*minutes: int) -> set[int]:
    return {m * MINUTE for m in minutes}


def test_fires_after_for_and_resolves_when_the_series_is_gone() -> None:
    episodes = firing_episodes(TIMES, active(1, 2, 3, 4, 5), 2 * MINUTE, 0)
    assert episodes == [Firing(1 * MINUTE, 3 * MINUTE, 6 * MINUTE)]


def test_a_pending_alert_that_goes_away_never_fires() -> None:
    assert firing_episodes(TIMES, active(1, 2, 4, 5), 2 * MINUTE, 0) == []


def test_without_for_it_fires_at_the_first_evaluation() -> None:
    assert firing_episodes(TIMES, active(7), 0, 0) == [Firing(7 * MINUTE, 7 * MINUTE, 8 * MINUTE)]


def test_keep_firing_for_holds_the_alert_after_the_series_is_gone() -> None:
    episodes = firing_episodes(TIMES, active(1, 2, 3), 0, 5 * MINUTE)
    assert episodes == [Firing(1 * MINUTE, 1 * MINUTE, 9 * MINUTE)]


def test_a_return_during_keep_firing_for_restarts_the_count() -> None:
    episodes = firing_episodes(TIMES, active(1, 2, 5), 0, 5 * MINUTE)
    assert episodes == [Firing(1 * MINUTE, 1 * MINUTE, 11 * MINUTE)]


def test_keep_firing_for_does_not_hold_a_pending_alert() -> None:
    assert firing_episodes(TIMES, active(1, 2), 5 * MINUTE, 10 * MINUTE) == []


def test_an_alert_that_comes_back_after_resolving_is_pending_again() -> None:
    episodes = firing_episodes(TIMES, active(1, 2, 3, 6, 7, 8, 9), MINUTE, 0)
    assert episodes == [
        Firing(1 * MINUTE, 2 * MINUTE, 4 * MINUTE),
        Firing(6 * MINUTE, 7 * MINUTE, 10 * MINUTE),
    ]


def test_still_firing_at_the_end_has_no_resolution() -> None:
    assert firing_episodes(TIMES, active(18, 19), 0, 0) == [Firing(18 * MINUTE, 18 * MINUTE, None)]


def test_agrees_with_prometheus_rule_evaluation(tmp_path: Path, promtool: str) -> None:
    """promtool evaluates the same rule on the same series: it fires at the same minutes."""
    values = [0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    for_ms, keep_ms = 2 * MINUTE, 3 * MINUTE
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "g",
                        "rules": [
                            {
                                "alert": "X",
                                "expr": "x > 0",
                                "for": "2m",
                                "keep_firing_for": "3m",
                            }
                        ],
                    }
                ]
            }
        )
    )
    times = [i * MINUTE for i in range(len(values))]
    episodes = firing_episodes(
        times, {t for t, v in zip(times, values, strict=True) if v}, for_ms, keep_ms
    )

    def firing(at: int) -> bool:
        return any(
            e.fired_ms <= at and (e.resolved_ms is None or at < e.resolved_ms) for e in episodes
        )

    assert any(firing(t) for t in times) and not all(firing(t) for t in times)
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": "x", "values": " ".join(str(v) for v in values)}],
                "alert_rule_test": [
                    {
                        "eval_time": f"{t // MINUTE}m",
                        "alertname": "X",
                        "exp_alerts": [{"exp_labels": {}}] if firing(t) else [],
                    }
                    for t in times
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    result = subprocess.run(
        [promtool, "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

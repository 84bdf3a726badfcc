"""`smswatch demo` options around alerting, run in-process: `--no-alerting` runs the demo as
before; a speed the rules cannot be scaled by is refused before anything starts."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from exporter.cli import _simulator_settings, build_parser
from exporter.demo.command import run_demo
from exporter.errors import ConfigError


def _args(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(
        [
            "demo",
            "--web.listen-address", "127.0.0.1:0",
            "--simulator.listen-address", "127.0.0.1:0",
            *flags,
        ]
    )  # fmt: skip


def _stop_at_once(stop: Callable[[], None]) -> None:
    stop()


def test_no_alerting_starts_neither_prometheus_nor_alertmanager(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _args("--no-alerting", "--scenario", "none")
    code = run_demo(
        args,
        listen=("127.0.0.1", 0),
        simulator_listen=("127.0.0.1", 0),
        simulator_settings=_simulator_settings,
        wait_for_stop=_stop_at_once,
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "ground truth" in printed
    assert "prometheus" not in printed and "alerting" not in printed


def test_a_fractional_speed_is_refused_when_the_rules_are_scaled_by_it() -> None:
    with pytest.raises(ConfigError) as refused:
        run_demo(
            _args("--speed", "1.5"),
            listen=("127.0.0.1", 0),
            simulator_listen=("127.0.0.1", 0),
            simulator_settings=_simulator_settings,
            wait_for_stop=_stop_at_once,
        )
    assert refused.value.field_path == "--speed"
    assert "--no-alerting" in str(refused.value)

"""Fixtures of the simulator tests: settings, runs driven by explicit simulated time, servers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.simulation import Simulation
from exporter.timestamps import parse_rfc3339_ms

#: Noon in Beijing: the diurnal curve is at its peak, so short runs have traffic.
START_MS = parse_rfc3339_ms("2026-11-26T04:00:00Z")
MINUTE = 60_000


def settings(**overrides: Any) -> SimulatorSettings:
    """Settings of a short, fault-free run unless overridden."""
    values: dict[str, Any] = {
        "seed": 7,
        "speed": 3600.0,
        "start_ms": START_MS,
        "traffic_for_ms": 20 * MINUTE,
        "scenario": "none",
        "rate": 2.0,
    }
    values.update(overrides)
    return SimulatorSettings(**values)


def run_to_completion(simulation: Simulation, step_ms: int = MINUTE) -> int:
    """Advance a simulation in explicit steps until its truth is complete; returns the time."""
    now = simulation.settings.start_ms
    while not simulation.complete:
        now += step_ms
        simulation.advance(now)
        assert now < simulation.settings.start_ms + 48 * 3_600_000, "never completed"
    return now


def items(log_name: str, simulation: Simulation) -> list[dict[str, Any]]:
    """Every published item of the `messages` or `transactions` feed, decoded."""
    log = simulation.messages if log_name == "messages" else simulation.transactions
    return [json.loads(item) for item in log.items(0, len(log))]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def scenario_file(tmp_path: Path) -> Callable[..., str]:
    """Write a scenario with the given faults; returns its path."""

    def write(*faults: dict[str, Any]) -> str:
        path = tmp_path / "scenario.yaml"
        path.write_text(yaml.safe_dump({"faults": list(faults)}))
        return str(path)

    return write


@pytest.fixture
def serve() -> Iterator[Callable[[SimulatorSettings], SimulatorServer]]:
    """Start simulator servers on 127.0.0.1, port 0; all are stopped after the test."""
    servers: list[SimulatorServer] = []

    def start(run_settings: SimulatorSettings) -> SimulatorServer:
        server = SimulatorServer(run_settings, "127.0.0.1", 0)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()

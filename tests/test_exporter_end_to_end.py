"""The exporter against the simulator over real HTTP: exported counters equal the ground truth.

The simulator runs in this process on a loopback port; the exporter runs as a real `smswatch
run` process with its own state (a SQLite file, or a schema on a real PostgreSQL server: each
test runs on both), polling it. Simulated time runs hundreds of times faster
than wall time, so an hour and a half of traffic with every fault takes seconds.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import simulator_config_document
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.timestamps import parse_duration_ms, parse_rfc3339_ms

from harness import (
    PROCESS_LOCAL,
    Process,
    StateBackend,
    diff,
    exported_like,
    finished_truth,
    free_port,
    get_json,
    http_get,
    scrape,
    truth_series,
    wait_until,
)

START = "2026-11-26T08:00:00Z"
COMPARED = (
    "smswatch_sms_submitted_total",
    "smswatch_sms_messages_total",
    "smswatch_pos_transactions_total",
    "smswatch_receipts_total",
    "smswatch_sms_delivery_seconds_bucket",
    "smswatch_receipt_notify_seconds_bucket",
)
FIVE_CAUSES = {"gateway", "invalid_number", "unreachable", "terminal_config", "integration"}
RAW_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
RAW_PAN = re.compile(r"(?<![\d*])\d{15,19}(?![\d*])")  # 13-digit runs are Unix ms times


def start_simulator(scenario: str | None, speed: float, traffic: str) -> SimulatorServer:
    settings = settings_from_options(
        seed=7,
        speed=speed,
        start_ms=parse_rfc3339_ms(START),
        traffic_for_ms=parse_duration_ms(traffic),
        scenario=scenario,
        rate=1.0,
    )
    server = SimulatorServer(settings, "127.0.0.1", 0)
    server.start()
    return server


def write_config(tmp_path: Path, url: str, state: StateBackend | None = None) -> Path:
    """The simulator's config (polled every 200 ms), its state on `state` (default SQLite)."""
    doc: dict[str, Any] = simulator_config_document(url, "200ms")
    for source in doc["sources"]:
        source.update(
            {"timeout": {"connect": "1s", "read": "1500ms"}, "retries": 2, "backoff": "50ms"}
        )
    doc["state"] = (state or StateBackend("sqlite")).document(tmp_path)
    path = tmp_path / "smswatch.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def start_exporter(tmp_path: Path, config: Path, port: int) -> Process:
    process = Process(
        [
            "run",
            "--config.file",
            str(config),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--log.level",
            "debug",
        ],
        tmp_path / "exporter.log",
    )
    wait_until(
        lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200,
        20,
        "the exporter to listen",
    )
    return process


def wait_for_exact_agreement(sim: SimulatorServer, metrics_url: str) -> dict[str, Any]:
    """Wait for the truth to be complete, then for the exporter to agree with it exactly."""
    truth = finished_truth(sim.url)
    expected = truth_series(truth)
    last: list[str] = []

    def agrees() -> bool:
        nonlocal last
        last = diff(expected, exported_like(scrape(metrics_url), COMPARED))
        return not last

    try:
        wait_until(agrees, 60, "the exporter to catch up", interval=0.5)
    except AssertionError:
        pytest.fail("exported counters differ from the truth:\n" + "\n".join(last[:40]))
    return truth


@pytest.fixture
def sim_default() -> Iterator[SimulatorServer]:
    sim = start_simulator(None, speed=900, traffic="75m")
    yield sim
    sim.stop()


def test_default_scenario_exported_counters_equal_the_truth(
    tmp_path: Path, sim_default: SimulatorServer, promtool: str, state_backend: StateBackend
) -> None:
    port = free_port()
    config = write_config(tmp_path, sim_default.url, state_backend)
    exporter = start_exporter(tmp_path, config, port)
    try:
        truth = wait_for_exact_agreement(sim_default, f"http://127.0.0.1:{port}/metrics")
        exported = scrape(f"http://127.0.0.1:{port}/metrics")
        causes = {
            dict(labels)["cause"]
            for (name, labels), value in exported.items()
            if name in ("smswatch_receipts_total", "smswatch_sms_messages_total") and value
        }
        assert causes >= FIVE_CAUSES
        assert {"throttled", "filtered", "unknown", "none"} <= causes
        receipts = sum(v for (n, _), v in exported.items() if n == "smswatch_receipts_total")
        assert receipts > 1000, "a realistic volume of receipts was reconciled"
        assert http_get(f"http://127.0.0.1:{port}/ready")[0] == 200
        _, text = http_get(f"http://127.0.0.1:{port}/metrics")
        check = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stdout
        errors = {
            dict(labels)["error"]: v
            for (n, labels), v in exported.items()
            if n == "smswatch_source_errors_total" and v
        }
        assert errors, "the default scenario's api_errors fault was seen and counted"
        assert truth["complete"]
    finally:
        assert exporter.stop() == 0, exporter.output()[-2000:]
    assert_nothing_raw(tmp_path, state_backend)


def assert_nothing_raw(tmp_path: Path, state: StateBackend | None = None) -> None:
    """No raw phone or card number in the exporter's log or its state."""
    state = state or StateBackend("sqlite")
    log = (tmp_path / "exporter.log").read_text(errors="replace")
    assert not RAW_PHONE.search(log) and not RAW_PAN.search(log)
    dump = state.dump(tmp_path)
    assert not RAW_PHONE.search(dump), RAW_PHONE.search(dump)
    assert not RAW_PAN.search(dump), RAW_PAN.search(dump)
    pans = [row[0] for row in state.rows(tmp_path, "SELECT DISTINCT pan FROM transactions")]
    phones = [row[0] for row in state.rows(tmp_path, "SELECT DISTINCT phone FROM messages")]
    assert pans and all(re.fullmatch(r"\d{6,8}\*+\d{4}", pan) for pan in pans)
    assert phones and all(re.fullmatch(r"\d{3}\*{4}\d{4}", phone) for phone in phones)


API_ERRORS_SCENARIO = """
faults:
  - {kind: api_errors, start: 0m, duration: 40m, target: both, share: 0.5,
     mode: [500, 429, slow, malformed, truncated], retry_after: 1s, slow: 3s}
  - {kind: invalid_numbers, start: 5m, duration: 10m, share: 0.3}
  - {kind: terminal_sms_off, start: 10m, duration: 15m, acquirer: acq-south, terminals: 25}
  - {kind: integration_drop, start: 20m, duration: 10m, share: 0.4}
"""


#: An `api_errors` mode and the error kind the exporter counts for it.
API_ERROR_KINDS = {
    "500": "http_5xx",
    "429": "throttled",
    "malformed": "bad_payload",
    "slow": "timeout",
}


def count_error_now(sim: SimulatorServer, metrics_url: str, mode: str, kind: str) -> None:
    """Spoil the acquirer's answers with `mode` for a simulated minute at a time (`POST
    /sim/v1/faults`) until the exporter counts one more `kind` error."""
    fault = {"kind": "api_errors", "duration": "1m", "target": "acquirer", "share": 1.0}
    body = json.dumps({**fault, "mode": [mode], "slow": "3s", "retry_after": "1s"}).encode()
    key = (
        "smswatch_source_errors_total",
        frozenset({("source", "acquirer"), ("error", kind)}),
    )
    before = scrape(metrics_url).get(key, 0.0)

    def counted() -> bool:
        if scrape(metrics_url).get(key, 0.0) > before:
            return True
        request = urllib.request.Request(f"{sim.url}/sim/v1/faults", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 201
        return False

    wait_until(counted, 30, f"a {kind} error counted", interval=0.3)


def test_api_errors_and_sigkill_restarts_still_exact(
    tmp_path: Path, state_backend: StateBackend
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(API_ERRORS_SCENARIO)
    sim = start_simulator(str(scenario), speed=600, traffic="45m")
    port = free_port()
    config = write_config(tmp_path, sim.url, state_backend)
    exporter: Process | None = None
    try:
        exporter = start_exporter(tmp_path, config, port)
        for kill_at in ("10m", "25m"):
            wait_until(
                lambda at=kill_at: (
                    parse_rfc3339_ms(get_json(f"{sim.url}/sim/v1/truth")["sim_time"])
                    >= parse_rfc3339_ms(START) + parse_duration_ms(at)
                ),
                60,
                f"simulated time {kill_at}",
            )
            before = scrape(f"http://127.0.0.1:{port}/metrics")
            exporter.kill()
            exporter = start_exporter(tmp_path, config, port)
            after = scrape(f"http://127.0.0.1:{port}/metrics")
            for key, value in before.items():
                if (
                    key[0].endswith("_total")
                    and key[0] != "smswatch_source_errors_total"
                    and not key[0].startswith(PROCESS_LOCAL)
                ):
                    assert after.get(key, 0) >= value, f"{key} went down across a restart"
        # The scenario's fault lasts 4 s of wall time, and restarts take some of it: how many
        # requests it draws a mode for depends on the backend's and the machine's speed, and a
        # slow answer (its timeout comes 15 simulated minutes later) dies uncounted with a kill.
        # Each mode once more now, on the restarted exporter, until its error is counted.
        for mode, kind in API_ERROR_KINDS.items():
            count_error_now(sim, f"http://127.0.0.1:{port}/metrics", mode, kind)
        wait_for_exact_agreement(sim, f"http://127.0.0.1:{port}/metrics")
        exported = scrape(f"http://127.0.0.1:{port}/metrics")
        kinds = {
            dict(labels)["error"]
            for (n, labels), v in exported.items()
            if n == "smswatch_source_errors_total" and v
        }
        assert {"http_5xx", "throttled", "bad_payload", "timeout"} <= kinds
        assert exporter.stop() == 0
    finally:
        if exporter is not None:
            exporter.stop()  # also when an assertion failed: never leave it running
        sim.stop()

"""Clock skew end to end: the simulator's feeds claim to be complete hours ahead (`clock_skew`),
a real `smswatch run` process caps the watermarks at its clock + `max_clock_skew`, and its
counters still equal the ground truth exactly (nothing given up early, no false `missing`, no
real delivery turned into a conflict).

The exporter's clock is the simulated one (the `SMSWATCH_TEST_SIMULATED_CLOCK` hook), a second
behind it: the cap can only protect against an upstream clock that is ahead of a clock that is
right, and an accelerated simulator is only "right" on its own clock.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import yaml
from test_exporter_end_to_end import START, wait_for_exact_agreement, write_config

from exporter.app import SIMULATED_CLOCK_ENV
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.timestamps import parse_duration_ms, parse_rfc3339_ms

from harness import Process, StateBackend, free_port, http_get, scrape, wait_until

SKEW_SCENARIO = """
faults:
  - {kind: clock_skew, start: 25m, duration: 5m, target: sms, offset: -10m}
  - {kind: invalid_numbers, start: 5m, duration: 10m, share: 0.3}
  - {kind: terminal_sms_off, start: 12m, duration: 10m, acquirer: acq-south, terminals: 25}
"""
SPEED = 600.0


def test_a_feed_clock_ahead_is_capped_and_the_counts_stay_exact(
    tmp_path: Path, state_backend: StateBackend
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SKEW_SCENARIO)
    settings = settings_from_options(
        seed=3,
        speed=SPEED,
        start_ms=parse_rfc3339_ms(START),
        traffic_for_ms=parse_duration_ms("20m"),
        scenario=str(scenario),
        rate=1.0,
    )
    sim = SimulatorServer(settings, "127.0.0.1", 0)
    sim.start()
    port = free_port()
    config = write_config(tmp_path, sim.url, state_backend)
    doc = yaml.safe_load(config.read_text())
    for source in doc["sources"]:
        source["max_clock_skew"] = "3s"
    config.write_text(yaml.safe_dump(doc))
    wall, simulated = time.time(), sim.simulation.clock.now_ms()
    clock = f"{wall}:{simulated - 1000}:{SPEED}"  # a simulated second behind the simulator
    exporter = Process(
        ["run", "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"],
        tmp_path / "exporter.log",
        env={SIMULATED_CLOCK_ENV: clock},
    )
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_until(
            lambda: http_get(f"http://127.0.0.1:{port}/ready")[0] == 200, 20, "the first polls"
        )
        # An upstream clock step while the exporter reads: 8 hours ahead, on both feeds, for 6 s
        # of wall time: polls see it even on a loaded machine.
        request = urllib.request.Request(
            f"{sim.url}/sim/v1/faults",
            data=b'{"kind": "clock_skew", "duration": "1h", "target": "both", "offset": "8h"}',
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 201
        wait_for_exact_agreement(sim, metrics_url)
        exported = scrape(metrics_url)
        clamped = {
            dict(labels)["source"]: value
            for (name, labels), value in exported.items()
            if name == "smswatch_source_watermark_clamped_total"
        }
        assert clamped["sms"] > 0 and clamped["acquirer"] > 0, clamped
        assert exporter.stop() == 0
        lines = [
            line
            for line in exporter.output().splitlines()
            if "ahead of the exporter's clock" in line
        ]
        assert lines and all("source=" in line for line in lines)
        assert any("source=sms" in line for line in lines)
    finally:
        exporter.stop()
        sim.stop()

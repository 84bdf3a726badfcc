"""The replay's exporter, stepped on simulated time, exports exactly the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import yaml
from prometheus_client.core import Metric

from exporter.backtest.replay import Replay
from exporter.simulator.settings import SimulatorSettings
from exporter.timestamps import parse_rfc3339_ms

#: Noon in Beijing: peak traffic.
START_MS = parse_rfc3339_ms("2026-11-02T04:00:00Z")
COMPARED = (
    "smswatch_receipts_total",
    "smswatch_sms_messages_total",
    "smswatch_sms_submitted_total",
)


def test_counters_equal_the_simulator_truth_under_a_fault(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "faults": [
                    {"kind": "gateway_outage", "start": "10m", "duration": "10m"},
                    {"kind": "api_errors", "start": "30m", "duration": "5m", "share": 0.5},
                ]
            }
        )
    )
    # Traffic for 45 minutes, run for 90: every receipt and message is decided by the end (the
    # exporter decides once all watermarks pass a receipt's decision, the truth at that time).
    settings = SimulatorSettings(
        seed=3, start_ms=START_MS, scenario=str(scenario), traffic_for_ms=45 * 60_000
    )
    replay = Replay(settings, 60_000, tmp_path / "state.sqlite")
    last: dict[tuple[str, tuple[str, ...]], float] = {}
    scrapes: list[int] = []

    def scrape(families: list[Metric], at_ms: int) -> None:
        scrapes.append(at_ms)
        for family in families:
            for sample in family.samples:
                if sample.name in COMPARED:
                    last[(sample.name, tuple(sample.labels.values()))] = sample.value

    replay.run(START_MS + 90 * 60_000, scrape)  # type: ignore[arg-type]
    assert scrapes == [START_MS + i * 60_000 for i in range(1, 91)]
    assert replay.simulation.complete
    truth = replay.simulation.truth.metrics()
    expected = {
        (name, tuple(str(v) for v in item["labels"].values())): float(item["value"])
        for name in COMPARED
        for item in truth.get(name, [])
    }
    exported = {key: value for key, value in last.items() if value}
    assert exported == expected
    assert expected[("smswatch_receipts_total", ("acq-north", "failed", "gateway"))] > 10

"""Identity faults through the real chain: the simulator over HTTP, `smswatch run` as a process.

A second gateway and a second acquirer source reuse the first ones' ids (`id_collision`),
RRNs are reused by later transactions of the same or another acquirer (`rrn_reuse`), and the
feeds answer with an empty `next_cursor` (`cursor_reset`), once after pruning has started.
Each of the first two alone, then all together with the exporter killed with SIGKILL in the
middle and restarted: its counters must equal the simulator's truth exactly, never go down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from test_exporter_end_to_end import (
    START,
    start_exporter,
    start_simulator,
    wait_for_exact_agreement,
)

from exporter.config import simulator_config_document
from exporter.timestamps import parse_duration_ms, parse_rfc3339_ms

from harness import PROCESS_LOCAL, Process, StateBackend, free_port, get_json, scrape, wait_until

#: Traffic runs 45 simulated minutes; decisions end about 30 minutes later. With a retention
#: of 37 minutes, pruning starts at 37 minutes: the second cursor reset comes after it, when
#: restarting a feed from the beginning would count pruned records again.
IDENTITY_SCENARIO = """
faults:
  - {kind: id_collision, start: 0m, duration: 45m, target: both, share: 0.4}
  - {kind: rrn_reuse, start: 3m, duration: 40m, share: 0.3, min_age: 2m, reuse: any}
  - {kind: rrn_reuse, start: 3m, duration: 40m, share: 0.2, min_age: 0s, reuse: other_acquirer}
  - {kind: cursor_reset, start: 10m, duration: 4m, target: both, share: 1.0}
  - {kind: cursor_reset, start: 55m, duration: 5m, target: both, share: 0.5}
"""


def identity_config(tmp_path: Path, url: str, state: StateBackend | None = None) -> Path:
    """The simulator config plus the second gateway and acquirer feeds, pruning often; the
    state on `state` (default: SQLite)."""
    doc: dict[str, Any] = simulator_config_document(url, "200ms")
    doc["sources"] += [
        {"name": "sms-2", "kind": "sms_gateway", "gateway": "bank-sms-2", "base_url": url,
         "path": "/sms-2/v1/messages", "poll_interval": "200ms", "page_size": 1000},
        {"name": "acquirer-2", "kind": "acquirer", "base_url": url,
         "path": "/acquirer-2/v1/transactions", "acquirers": ["acq-north", "acq-south", "acq-east"],
         "poll_interval": "200ms", "page_size": 1000},
    ]  # fmt: skip
    for source in doc["sources"]:
        source.update(
            {"timeout": {"connect": "1s", "read": "1500ms"}, "retries": 2, "backoff": "50ms"}
        )
    doc["state"] = {
        **(state or StateBackend("sqlite")).document(tmp_path),
        "retention": "37m",
        "prune_interval": "250ms",
    }
    path = tmp_path / "smswatch.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_colliding_ids_reused_rrns_and_cursor_resets_stay_exact(
    tmp_path: Path, state_backend: StateBackend
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(IDENTITY_SCENARIO)
    sim = start_simulator(str(scenario), speed=600, traffic="45m")
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    config = identity_config(tmp_path, sim.url, state_backend)
    exporter: Process | None = None
    try:
        exporter = start_exporter(tmp_path, config, port)
        wait_until(
            lambda: (
                parse_rfc3339_ms(get_json(f"{sim.url}/sim/v1/truth")["sim_time"])
                >= parse_rfc3339_ms(START) + parse_duration_ms("20m")
            ),
            60,
            "simulated time 20m",
        )
        before = scrape(metrics)
        exporter.kill()
        exporter = start_exporter(tmp_path, config, port)
        after = scrape(metrics)
        for key, value in before.items():
            if (
                key[0].endswith("_total")
                and key[0] != "smswatch_source_errors_total"
                and not key[0].startswith(PROCESS_LOCAL)
            ):
                assert after.get(key, 0) >= value, f"{key} went down across a restart"
        wait_for_exact_agreement(sim, metrics)
        exported = scrape(metrics)
        second = [
            v
            for (name, labels), v in exported.items()
            if name == "smswatch_sms_submitted_total" and ("gateway", "bank-sms-2") in labels
        ]
        assert sum(second) > 100, "the second gateway's messages were counted"
        records = {
            (dict(labels)["source"], dict(labels)["result"]): v
            for (name, labels), v in exported.items()
            if name == "smswatch_records_total"
        }
        assert records[("acquirer-2", "accepted")] > 100
        assert all(records[(s, "late")] == 0 for s in ("sms", "acquirer", "sms-2", "acquirer-2"))
        assert sum(v for (n, _), v in exported.items() if n.endswith("clamped_total")) == 0
        assert exporter.stop() == 0, exporter.output()[-2000:]
    finally:
        if exporter is not None:
            exporter.stop()  # also when an assertion failed: never leave it running
        sim.stop()
    ((horizon,),) = state_backend.rows(
        tmp_path, "SELECT value FROM meta WHERE key = 'prune_horizon_ms'"
    )
    assert int(horizon) > parse_rfc3339_ms(START), "pruning ran before the second cursor reset"


ALONE = {
    "id_collision": "faults: [{kind: id_collision, start: 0m, duration: 20m, share: 0.5}]",
    "rrn_reuse": "faults: [{kind: rrn_reuse, start: 2m, duration: 18m, share: 0.5, min_age: 2m}]",
}


@pytest.mark.parametrize("kind", sorted(ALONE))
def test_each_identity_fault_alone_stays_exact(
    tmp_path: Path, kind: str, state_backend: StateBackend
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(ALONE[kind])
    sim = start_simulator(str(scenario), speed=900, traffic="20m")
    port = free_port()
    exporter: Process | None = None
    try:
        exporter = start_exporter(tmp_path, identity_config(tmp_path, sim.url, state_backend), port)
        wait_for_exact_agreement(sim, f"http://127.0.0.1:{port}/metrics")
        assert exporter.stop() == 0, exporter.output()[-2000:]
    finally:
        if exporter is not None:
            exporter.stop()
        sim.stop()

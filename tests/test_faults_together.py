"""Every fault of the simulator at once, through the real chain, with the exporter killed.

The simulator serves its generic feeds over HTTP with clock steps ahead and behind
(`clock_skew`), empty cursors (`cursor_reset`, once after pruning has started), poisoned
records (`poison_records`), a second gateway and acquirer reusing the first ones' ids
(`id_collision`), reused RRNs (`rrn_reuse`) and misbehaving answers (`api_errors`), all
overlapping. A real `smswatch run` process reads the four feeds on the simulated clock (the
`SMSWATCH_TEST_SIMULATED_CLOCK` hook, a simulated second behind the simulator) and is killed
with SIGKILL twice while they last. It is held to the truth: its counters equal the
simulator's exactly, every poisoned record is counted `invalid`, no counter ever goes down
(not across a restart, not between two scrapes), and every feed's watermark reaches the end.

The pushing shape (Alibaba SmsReport pushes) runs the same faults where they reach it, with
the exporter killed once between two pushes
(`test_pushes_with_the_acquirer_faults_across_a_kill`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from test_exporter_end_to_end import START, wait_for_exact_agreement
from test_identity_end_to_end import identity_config
from test_push_end_to_end import pushes_across_a_kill

from exporter.app import SIMULATED_CLOCK_ENV
from exporter.config import load_config
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.store import Store, decode_labels, open_store
from exporter.timestamps import parse_duration_ms, parse_rfc3339_ms

from harness import (
    PROCESS_LOCAL,
    Process,
    Series,
    StateBackend,
    free_port,
    get_json,
    http_get,
    scrape,
    wait_until,
)

SPEED = 600.0
TRAFFIC = "45m"
SOURCES = ("sms", "acquirer", "sms-2", "acquirer-2")
#: Traffic runs 45 simulated minutes; decisions end about 30 minutes later. With a retention
#: of 37 minutes pruning starts at 37 minutes: the last cursor reset comes after it.
ALL_FAULTS = """
faults:
  - {kind: id_collision, start: 0m, duration: 45m, target: both, share: 0.4}
  - {kind: rrn_reuse, start: 3m, duration: 40m, share: 0.3, min_age: 2m, reuse: any}
  - {kind: rrn_reuse, start: 3m, duration: 40m, share: 0.2, min_age: 0s, reuse: other_acquirer}
  - {kind: poison_records, start: 0m, duration: 30m, target: both, share: 0.05,
     mode: [big_integer, lone_surrogate, infinity, invalid_item]}
  - {kind: api_errors, start: 44m, duration: 10m, target: sms, share: 0.5, mode: [slow],
     slow: 2s}
  - {kind: api_errors, start: 2m, duration: 38m, target: both, share: 0.3,
     mode: [500, 429, slow, malformed, truncated], retry_after: 1s, slow: 3s}
  - {kind: clock_skew, start: 6m, duration: 14m, target: both, offset: 8h}
  - {kind: clock_skew, start: 21m, duration: 8m, target: sms, offset: -10m}
  - {kind: cursor_reset, start: 12m, duration: 6m, target: both, share: 1.0}
  - {kind: cursor_reset, start: 55m, duration: 5m, target: both, share: 0.5}
  - {kind: invalid_numbers, start: 5m, duration: 10m, share: 0.3}
  - {kind: terminal_sms_off, start: 12m, duration: 15m, acquirer: acq-south, terminals: 25}
  - {kind: integration_drop, start: 20m, duration: 10m, share: 0.4}
"""


#: The poll durations describe one process (kept in memory): a restart starts them from zero.
class Monotonic:
    """Every scrape of the exporter, held to: no counter below what it showed before."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.highest: dict[Series, float] = {}

    def scrape(self) -> dict[Series, float]:
        """Scrape once and check every counter (`_total`, histogram `_count`/`_bucket`)."""
        now = scrape(self.url)
        for key, value in now.items():
            name = key[0]
            if not name.endswith(("_total", "_count", "_bucket")) or name.startswith(PROCESS_LOCAL):
                continue
            before = self.highest.get(key, 0.0)
            assert value >= before, f"{name}{dict(key[1])} went down: {before} -> {value}"
            self.highest[key] = value
        return now


def write_config(tmp_path: Path, url: str, state: StateBackend | None = None) -> Path:
    """The four feeds of the identity test (pruning often), watermarks capped at 3 s ahead;
    the state on `state` (default: SQLite)."""
    path = identity_config(tmp_path, url, state)
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    for source in doc["sources"]:
        source["max_clock_skew"] = "3s"
    path.write_text(yaml.safe_dump(doc))
    return path


def start_exporter(tmp_path: Path, config: Path, port: int, clock: str) -> Process:
    """`smswatch run` on the simulated clock, once it listens."""
    process = Process(
        ["run", "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"],
        tmp_path / "exporter.log",
        env={SIMULATED_CLOCK_ENV: clock},
    )
    wait_until(lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 20, "the exporter")
    return process


def sim_reached(sim: SimulatorServer, offset: str) -> bool:
    """Whether the simulator's clock is `offset` past the start."""
    now = parse_rfc3339_ms(get_json(f"{sim.url}/sim/v1/truth")["sim_time"])
    return now >= parse_rfc3339_ms(START) + parse_duration_ms(offset)


def watermarks(state: StateBackend, directory: Path) -> dict[str, int]:
    """The committed watermark of every source in the state."""
    return {
        str(name): int(str(mark))
        for name, mark in state.rows(directory, "SELECT name, watermark_ms FROM sources")
    }


def test_every_fault_together_with_kills_stays_exact(
    tmp_path: Path, state_backend: StateBackend
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(ALL_FAULTS)
    settings = settings_from_options(
        seed=11,
        speed=SPEED,
        start_ms=parse_rfc3339_ms(START),
        traffic_for_ms=parse_duration_ms(TRAFFIC),
        scenario=str(scenario),
        rate=1.0,
    )
    sim = SimulatorServer(settings, "127.0.0.1", 0)
    sim.start()
    wall, simulated = time.time(), sim.simulation.clock.now_ms()
    clock = f"{wall}:{simulated - 1000}:{SPEED}"  # a simulated second behind the simulator
    port = free_port()
    metrics = Monotonic(f"http://127.0.0.1:{port}/metrics")
    config = write_config(tmp_path, sim.url, state_backend)
    exporter: Process | None = None
    try:
        exporter = start_exporter(tmp_path, config, port, clock)
        for kill_at in ("11m", "26m"):  # in the clock step ahead; in the one behind
            wait_until(
                lambda at=kill_at: metrics.scrape() and sim_reached(sim, at),
                60,
                f"simulated time {kill_at}",
            )
            exporter.kill()
            exporter = start_exporter(tmp_path, config, port, clock)
            metrics.scrape()
        truth = wait_for_exact_agreement(sim, metrics.url)
        end = parse_rfc3339_ms(truth["sim_time"])
        wait_until(
            lambda: (
                metrics.scrape()
                and all(watermarks(state_backend, tmp_path).get(s, -1) >= end for s in SOURCES)
            ),
            30,
            "every feed's watermark to reach the end of the traffic",
        )
        exported = metrics.scrape()
        records = {
            (dict(labels)["source"], dict(labels)["result"]): value
            for (name, labels), value in exported.items()
            if name == "smswatch_records_total"
        }
        poisoned = truth["records"]
        assert poisoned["messages"]["invalid"] > 10 and poisoned["transactions"]["invalid"] > 10
        assert records[("sms", "invalid")] == poisoned["messages"]["invalid"], records
        assert records[("acquirer", "invalid")] == poisoned["transactions"]["invalid"], records
        assert records[("sms-2", "accepted")] > 100 and records[("acquirer-2", "accepted")] > 100
        assert all(records.get((s, "late"), 0) == 0 for s in SOURCES), records
        clamped = {
            dict(labels)["source"]: value
            for (name, labels), value in exported.items()
            if name == "smswatch_source_watermark_clamped_total"
        }
        # Slow answers may let a feed's polls miss the clock step: some of them met it.
        assert sum(clamped.values()) > 0, clamped
        assert not any(
            value
            for (name, _), value in exported.items()
            if name in ("smswatch_receipts_unobserved_total", "smswatch_unobserved_seconds_total")
        ), "a pulled feed re-reads what it missed: nothing is unobserved"
        errors = {
            dict(labels)["error"]
            for (name, labels), value in exported.items()
            if name == "smswatch_source_errors_total" and value
        }
        # A 429's Retry-After holds a feed for simulated minutes: few requests meet the
        # mixed fault, and a 500 may not be among them; the slow one has its own window.
        assert {"throttled", "bad_payload", "timeout"} <= errors, errors
        assert exporter.stop() == 0, exporter.output()[-2000:]
    finally:
        if exporter is not None:
            exporter.stop()  # also when an assertion failed: never leave it running
        sim.stop()
    ((horizon,),) = state_backend.rows(
        tmp_path, "SELECT value FROM meta WHERE key = 'prune_horizon_ms'"
    )
    assert int(str(horizon)) > parse_rfc3339_ms(START), "pruning ran before the last cursor reset"
    store = open_store(load_config(str(config)))
    try:
        kept = [entry.record for entry in store.quarantined(limit=100_000)]
    finally:
        store.close()
    assert kept and len(kept) == len(set(kept)), "a refused record is kept once"


#: What of the faults reaches a receiver of Alibaba's pushes: the pushes are outcome-only
#: reports of the first gateway (never poisoned, never answered with an empty cursor, never
#: from the second gateway), so those faults and the second gateway stay on the acquirer's
#: side; a reused RRN is only told apart when it is older than missing_after + give_up_after.
#: The clock behind comes after the restart (about 15m to 22m): a provider clock behind while
#: nobody listens shortens the gap its `Date`s show, which no receiver can tell.
PUSH_FAULTS = """
faults:
  - {kind: integration_drop, start: 28m, duration: 10m, share: 0.2}
  - {kind: invalid_numbers, start: 10m, duration: 10m, share: 0.2}
  - {kind: id_collision, start: 0m, duration: 40m, target: acquirer, share: 0.4}
  - {kind: rrn_reuse, start: 36m, duration: 4m, share: 0.5, min_age: 36m}
  - {kind: poison_records, start: 0m, duration: 30m, target: acquirer, share: 0.05,
     mode: [big_integer, lone_surrogate, infinity, invalid_item]}
  - {kind: api_errors, start: 2m, duration: 36m, target: acquirer, share: 0.3,
     mode: [500, 429, malformed, truncated], retry_after: 1s}
  - {kind: clock_skew, start: 5m, duration: 5m, target: both, offset: 8h}
  - {kind: clock_skew, start: 28m, duration: 5m, target: sms, offset: -10m}
  - {kind: cursor_reset, start: 12m, duration: 6m, target: acquirer, share: 1.0}
"""


def test_pushes_with_the_acquirer_faults_across_a_kill(tmp_path: Path) -> None:
    truth = pushes_across_a_kill(tmp_path, PUSH_FAULTS, together=True)
    store = Store(str(tmp_path / "state.sqlite"))
    try:
        counters, _, _ = store.snapshot()
    finally:
        store.close()
    records = {
        tuple(decode_labels(labels)): value
        for metric, labels, value in counters
        if metric == "smswatch_records_total"
    }
    assert truth["records"]["transactions"]["invalid"] > 5
    assert records[("acquirer", "invalid")] == truth["records"]["transactions"]["invalid"]
    assert records[("acquirer-2", "accepted")] > 100
    clamped = {
        tuple(decode_labels(labels)): value
        for metric, labels, value in counters
        if metric == "smswatch_source_watermark_clamped_total"
    }
    assert clamped.get(("sms",), 0) > 0, clamped

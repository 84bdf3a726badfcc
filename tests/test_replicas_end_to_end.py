"""Two replicas on one PostgreSQL state, end to end on loopback (issue 13's proof).

Real processes and servers: the simulator over HTTP (it polls nothing; it pushes Alibaba
SmsReport batches, retried until acknowledged, like the provider), a PostgreSQL server, and two
`smswatch run` processes with `state.backend: postgresql`. The provider's pushes reach them
through a front that spreads them over both (as a load balancer does); both poll the acquirer.

The polling replica is killed with SIGKILL at random moments (seeded; the seed is printed) and
started again each time, paused with SIGSTOP past a lease and woken with SIGCONT, and the
PostgreSQL server is restarted once. Both replicas are scraped all along: no counter series of
either ever goes down, and at the end both export exactly what the provider told and the
acquirer published (the push shape's comparison, see test_push_end_to_end.py). The times from
each kill until the acquirer is next polled successfully (by the other replica) are printed.

`SMSWATCH_REPLICAS_SEED`, `SMSWATCH_REPLICAS_KILLS` and `SMSWATCH_REPLICAS_SPEED` replay a run
or make a longer one (benchmarks/replicas.py).
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness_replicas import CounterWatch, PushFront
from postgresql_server import Server
from test_push_end_to_end import told_difference, write_config

from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.timestamps import parse_duration_ms, parse_rfc3339_ms

from harness import (
    Process,
    Series,
    StateBackend,
    finished_truth,
    free_port,
    http_get,
    parse_exposition,
    wait_until,
)

START = "2026-11-26T08:00:00Z"
#: How long the paused replica stays paused: past a lease (TTL 1 s) and two poll intervals.
PAUSE_S = 3.0
KILLS = int(os.environ.get("SMSWATCH_REPLICAS_KILLS", "20"))
SPEED = float(os.environ.get("SMSWATCH_REPLICAS_SPEED", "120"))
#: Simulated traffic: long enough that the kills fall while traffic and decisions go on.
TRAFFIC = os.environ.get("SMSWATCH_REPLICAS_TRAFFIC", "30m")


@dataclass
class Replica:
    """One `smswatch run` process on its own port, started again after each kill."""

    name: str
    port: int
    config: Path
    directory: Path
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it and wait until it listens."""
        self.process = Process(
            [
                "run",
                "--config.file",
                str(self.config),
                "--web.listen-address",
                f"127.0.0.1:{self.port}",
            ],
            self.directory / f"replica-{self.name}.log",
            env={"PUSH_SECRET": "pushed"},
        )
        wait_until(
            lambda: http_get(f"{self.url}/healthz", timeout=1)[0] == 200,
            30,
            f"replica {self.name} to listen",
            interval=0.02,
        )

    def kill(self) -> float:
        """SIGKILL; returns when (Unix s)."""
        assert self.process is not None
        at = time.time()
        self.process.kill()
        return at

    def signal(self, sig: signal.Signals) -> float:
        """Send a signal (SIGSTOP, SIGCONT); returns when (Unix s)."""
        assert self.process is not None
        at = time.time()
        self.process.proc.send_signal(sig)
        return at

    def stop(self) -> int:
        """SIGTERM (after SIGCONT, should it be paused); the exit code."""
        if self.process is None:
            return 0
        if self.process.proc.poll() is None:
            self.process.proc.send_signal(signal.SIGCONT)
        return self.process.stop()


@pytest.fixture
def seed() -> int:
    """The seed of the kill moments: from the environment to replay a run, else a new one."""
    value = int(os.environ.get("SMSWATCH_REPLICAS_SEED") or random.randrange(2**31))
    print(f"replica kill seed: {value} (replay: SMSWATCH_REPLICAS_SEED={value})")
    return value


@pytest.fixture
def simulator_and_front() -> Iterator[tuple[SimulatorServer, PushFront, str]]:
    """The simulator (not started yet: its URL given) pushing to a front that spreads over the
    replicas (its targets are set by the test)."""
    front = PushFront()
    front.start()
    settings = settings_from_options(
        seed=11,
        speed=SPEED,
        start_ms=parse_rfc3339_ms(START),
        traffic_for_ms=parse_duration_ms(TRAFFIC),
        scenario="none",
        rate=1.0,
        sms_api="aliyun",
        push_url=f"{front.url}/push/sms?secret=pushed",
    )
    port = free_port()
    sim = SimulatorServer(settings, "127.0.0.1", port)
    yield sim, front, f"http://127.0.0.1:{port}"
    sim.stop()
    front.stop()


def last_success(scrape: dict[Series, float], source: str) -> float:
    """`smswatch_source_last_success_timestamp_seconds{source}` of a scrape (0 when absent)."""
    key = ("smswatch_source_last_success_timestamp_seconds", frozenset({("source", source)}))
    return scrape.get(key, 0.0)


def failover_s(watch: CounterWatch, since: float, source: str = "acquirer") -> float | None:
    """From `since` (a kill, a pause) until a poll of `source` that succeeded after it was
    committed, as the other replica's scrapes tell (its commit time, not the scrape's)."""
    for scrape in watch.scrapes:
        if scrape.at >= since and last_success(scrape.series, source) > since:
            return last_success(scrape.series, source) - since
    return None


def test_two_replicas_through_kills_a_pause_and_a_database_restart_stay_exact(
    tmp_path: Path,
    postgresql_server: Server,
    postgresql_dsn: str,
    simulator_and_front: tuple[SimulatorServer, PushFront, str],
    seed: int,
) -> None:
    sim, front, sim_url = simulator_and_front
    # both replicas run this one config: the state on PostgreSQL
    config = write_config(tmp_path, sim_url, state=StateBackend("postgresql", postgresql_dsn))
    polling = Replica("a", free_port(), config, tmp_path)
    other = Replica("b", free_port(), config, tmp_path)
    front.aim([polling.url, other.url])
    watches = [CounterWatch(f"{r.url}/metrics") for r in (polling, other)]
    rng = random.Random(seed)
    pause_at, restart_db_at = rng.randrange(KILLS // 2, KILLS), rng.randrange(1, KILLS // 2)
    kills: list[float] = []
    paused_at = 0.0
    try:
        other.start()
        polling.start()
        for watch in watches:
            watch.start()
        sim.start()
        for i in range(KILLS):
            time.sleep(rng.uniform(0.05, 1.0))  # a random moment of its work
            if i == restart_db_at:
                postgresql_server.restart()
            if i == pause_at:
                paused_at = polling.signal(signal.SIGSTOP)
                time.sleep(PAUSE_S)
                polling.signal(signal.SIGCONT)
                time.sleep(rng.uniform(0.05, 0.5))
            kills.append(polling.kill())
            polling.start()

        truth = finished_truth(sim.url)
        last: dict[str, list[str]] = {}

        def both_agree() -> bool:
            for replica in (polling, other):
                status, body = http_get(f"{replica.url}/metrics")
                assert status == 200, f"replica {replica.name}: HTTP {status}"
                last[replica.name] = told_difference(truth, parse_exposition(body))
            return not any(last.values())

        try:
            wait_until(both_agree, 60, "both replicas to agree with the truth", interval=0.5)
        except AssertionError:
            pytest.fail(
                f"seed {seed}: exported counters differ from the truth:\n"
                + "\n".join(
                    f"{name}: {line}" for name, lines in last.items() for line in lines[:20]
                )
            )
    finally:
        for watch in watches:
            watch.stop()
        codes = {r.name: r.stop() for r in (polling, other)}

    for watch, replica in zip(watches, (polling, other), strict=True):
        assert not watch.decreases, f"seed {seed}: replica {replica.name}: " + "; ".join(
            watch.decreases[:10]
        )
        assert len(watch.scrapes) >= 10, f"replica {replica.name} was scraped all along"
    assert codes == {"a": 0, "b": 0}, codes
    assert all(front.taken), f"the pushes were spread over both replicas: {front.taken}"

    failovers = [failover_s(watches[1], at) for at in kills]
    measured = [f for f in failovers if f is not None]
    assert len(measured) == len(kills), f"seed {seed}: the acquirer was polled after each kill"
    pause = failover_s(watches[1], paused_at)
    print(
        f"failover after {len(kills)} kills (s): "
        + ", ".join(f"{f:.2f}" for f in measured)
        + f"\nmedian {statistics.median(measured):.2f} s, max {max(measured):.2f} s; "
        + f"after the pause: {pause if pause is None else round(pause, 2)} s; "
        + f"pushes taken per replica {front.taken}, refused by both {front.refused}"
    )

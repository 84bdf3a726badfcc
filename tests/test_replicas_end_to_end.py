"""Two replicas on one PostgreSQL state, end to end on loopback (issue 13's proof).

Real processes and servers: the simulator over HTTP (it pushes Alibaba SmsReport batches,
retried until acknowledged, like the provider, and serves the acquirer feed), a PostgreSQL
server, and two `smswatch run` processes with `state.backend: postgresql`. The provider's pushes
reach them through a front that spreads them over both (as a load balancer does); the replica
that holds the acquirer's lease polls it.

The polling replica is killed with SIGKILL at random moments (seeded; the seed is printed) and
started again once the other one polls, paused with SIGSTOP past its lease and woken with
SIGCONT, and the PostgreSQL server is restarted once. Both replicas are scraped all along: no
counter series of either ever goes down; whenever asked, exactly one replica leads the acquirer;
a trigger in the state notes which replica committed each page of the acquirer, so the woken
replica is seen to commit none (fencing); at the end the primary exports exactly what the
provider told and the acquirer published (the push shape's comparison, test_push_end_to_end.py)
and the other replica exports none of it. The failover times (from each kill, and from the
pause, to the other replica's first committed page) are printed.

`SMSWATCH_REPLICAS_SEED`, `_KILLS`, `_SPEED` and `_TRAFFIC` replay a run or make a longer one
(benchmarks/replicas.py).
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import yaml
from harness_replicas import CounterWatch, PushFront
from postgresql_server import Server
from test_push_end_to_end import RECEIPTS, TOLD, told_difference, write_config

from exporter.dialect import WRITE_LOCK
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.timestamps import parse_duration_ms, parse_rfc3339_ms

from harness import (
    Process,
    Series,
    StateBackend,
    exported_like,
    finished_truth,
    free_port,
    http_get,
    parse_exposition,
    wait_until,
)

START = "2026-11-26T08:00:00Z"
POLL_INTERVAL_S = 0.2  # write_config's
LEASE_TTL_S = 2.0
#: The failover target of issue 13: two poll intervals and the lease's TTL.
TARGET_S = 2 * POLL_INTERVAL_S + LEASE_TTL_S
KILLS = int(os.environ.get("SMSWATCH_REPLICAS_KILLS", "20"))
SPEED = float(os.environ.get("SMSWATCH_REPLICAS_SPEED", "120"))
#: Simulated traffic: long enough that the kills fall while traffic and decisions go on.
TRAFFIC = os.environ.get("SMSWATCH_REPLICAS_TRAFFIC", "30m")
LEADER = ("smswatch_source_leader", frozenset({("source", "acquirer")}))
PRIMARY = ("smswatch_primary", frozenset())
#: Notes every committed change of a source's position with the application_name of the
#: connection (each replica's DSN names it) and the time, inside the committing transaction.
PAGE_TRIGGER = """
CREATE TABLE page_commits (replica TEXT, source TEXT, at DOUBLE PRECISION);
CREATE FUNCTION note_page() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.cursor IS DISTINCT FROM OLD.cursor OR NEW.watermark_ms IS DISTINCT FROM OLD.watermark_ms
     OR NEW.terminals_watermark_ms IS DISTINCT FROM OLD.terminals_watermark_ms THEN
    INSERT INTO page_commits VALUES (current_setting('application_name'), NEW.name,
                                     extract(epoch FROM clock_timestamp()));
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER note_page AFTER UPDATE ON sources FOR EACH ROW EXECUTE FUNCTION note_page();
"""


@dataclass
class Replica:
    """One `smswatch run` process on its own port, started again after each kill. Its DSN
    names it to PostgreSQL (`application_name`)."""

    name: str
    port: int
    config: Path
    directory: Path
    process: Process | None = None
    watch: CounterWatch = field(init=False)

    def __post_init__(self) -> None:
        self.watch = CounterWatch(f"{self.url}/metrics")

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

    def scrape(self) -> dict[Series, float]:
        """Its /metrics now (empty when it does not answer 200)."""
        status, body = http_get(f"{self.url}/metrics", timeout=2)
        return parse_exposition(body) if status == 200 else {}

    def stop(self) -> int:
        """SIGTERM (after SIGCONT, should it be paused); the exit code."""
        if self.process is None:
            return 0
        if self.process.proc.poll() is None:
            self.process.proc.send_signal(signal.SIGCONT)
        return self.process.stop()


def replica_config(directory: Path, sim_url: str, dsn: str, name: str) -> Path:
    """The push shape's config (test_push_end_to_end.write_config) on PostgreSQL, the DSN
    naming the replica, with a short lease TTL."""
    directory.mkdir(exist_ok=True)
    state = StateBackend("postgresql", f"{dsn}&application_name=replica-{name}")
    path = write_config(directory, sim_url, state=state)
    doc = yaml.safe_load(path.read_text())
    doc["leases"] = {"ttl": f"{int(LEASE_TTL_S * 1000)}ms"}
    path.write_text(yaml.safe_dump(doc))
    return path


class State:
    """The test's own connection to the replicas' state: pages committed, the write lock."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def install_page_trigger(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as db:
            db.execute(PAGE_TRIGGER)

    def pages(self, source: str = "acquirer") -> list[tuple[str, float]]:
        """(replica, Unix s) of every committed page of `source`, in order."""
        with psycopg.connect(self.dsn, connect_timeout=5) as db:
            rows = db.execute(
                "SELECT replica, at FROM page_commits WHERE source = %s ORDER BY at", (source,)
            ).fetchall()
        return [(str(r).removeprefix("replica-"), float(at)) for r, at in rows]

    def first_page_after(self, since: float) -> tuple[str, float] | None:
        """The first page of the acquirer committed after `since`."""
        return next(((r, at) for r, at in self.pages() if at > since), None)

    def holds_write_lock(self, replica: str) -> bool:
        """Whether one of the replica's connections holds the state's write lock."""
        with psycopg.connect(self.dsn, connect_timeout=5) as db:
            row = db.execute(
                "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s "
                "AND a.application_name = %s",
                (WRITE_LOCK, f"replica-{replica}"),
            ).fetchone()
        return row is not None


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


def leaders(replicas: list[Replica]) -> list[Replica] | None:
    """The replicas that say they lead the acquirer (None: no replica exports leadership, as
    without leases: then every replica polls)."""
    scrapes = [(r, r.scrape()) for r in replicas]
    if not all(scraped for _, scraped in scrapes):
        return []  # one does not answer (yet): not known
    if not any(LEADER in scraped for _, scraped in scrapes):
        return None
    return [r for r, scraped in scrapes if scraped.get(LEADER) == 1]


def exporters_of_shared_series(replicas: list[Replica]) -> list[Replica]:
    """The replicas that export the shared state's series: the primary (every replica when
    none exports `smswatch_primary`)."""
    scrapes = [(r, r.scrape()) for r in replicas]
    if all(scraped for _, scraped in scrapes) and not any(PRIMARY in s for _, s in scrapes):
        return replicas
    return [r for r, scraped in scrapes if scraped.get(PRIMARY) == 1]


def pause_outside_the_write_lock(replica: Replica, state: State, rng: random.Random) -> float:
    """SIGSTOP the replica at a moment it holds no write transaction (stopped inside one, it
    would hold every replica's writes: test_replicas.py); returns when it was stopped."""
    for _ in range(200):
        at = replica.signal(signal.SIGSTOP)
        if not state.holds_write_lock(replica.name):
            return at
        replica.signal(signal.SIGCONT)
        time.sleep(rng.uniform(0.0, 0.05))
    raise AssertionError(f"replica {replica.name} always held the write lock")


def test_two_replicas_through_kills_a_pause_and_a_database_restart_stay_exact(
    tmp_path: Path,
    postgresql_server: Server,
    postgresql_dsn: str,
    simulator_and_front: tuple[SimulatorServer, PushFront, str],
    seed: int,
) -> None:
    sim, front, sim_url = simulator_and_front
    replicas = [
        Replica(n, free_port(), replica_config(tmp_path / n, sim_url, postgresql_dsn, n), tmp_path)
        for n in ("a", "b")
    ]
    front.aim([r.url for r in replicas])
    state = State(postgresql_dsn)
    rng = random.Random(seed)
    pause_at, restart_db_at = rng.randrange(KILLS // 2, KILLS), rng.randrange(1, KILLS // 2)
    failovers: list[tuple[str, float, str, float]] = []  # (what, at, who took over, seconds)
    double_leaders: list[str] = []
    fenced: tuple[str, float, float] | None = None  # (paused replica, from, until)
    try:
        for replica in replicas:
            replica.start()
            if replica is replicas[0]:
                state.install_page_trigger()  # the first replica made the schema
            replica.watch.start()
        sim.start()

        def polling() -> tuple[Replica, Replica]:
            """(the replica that polls the acquirer, the other one), once exactly one leads."""
            found: list[Replica] | None = []

            def one() -> bool:
                nonlocal found
                found = leaders(replicas)
                if found is not None and len(found) > 1:
                    double_leaders.append(f"{[r.name for r in found]} at {time.time():.2f}")
                return found is None or len(found) == 1

            wait_until(one, 30, "exactly one replica to lead the acquirer", interval=0.05)
            first = replicas[0] if not found else found[0]
            return first, next(r for r in replicas if r is not first)

        def taken_over(what: str, since: float, by: Replica) -> None:
            """Wait for `by` to commit a page of the acquirer after `since`; note the time."""
            page = wait_until(
                lambda: state.first_page_after(since),
                30,
                f"replica {by.name} to poll the acquirer after the {what}",
                interval=0.05,
            )
            failovers.append((what, since, page[0], page[1] - since))

        for i in range(KILLS):
            time.sleep(rng.uniform(0.05, 1.0))  # a random moment of its work
            if i == restart_db_at:
                postgresql_server.restart()
            victim, survivor = polling()
            if i == pause_at:
                paused, paused_at = victim.name, pause_outside_the_write_lock(victim, state, rng)
                taken_over("pause", paused_at, survivor)
                victim.signal(signal.SIGCONT)
                time.sleep(rng.uniform(0.05, 0.5))  # it wakes up, its lease long gone
                victim, survivor = polling()
            killed_at = victim.kill()
            if i == pause_at:  # the woken replica may lead again from now on
                fenced = (paused, paused_at, killed_at)
            taken_over("kill", killed_at, survivor)
            victim.start()

        truth = finished_truth(sim.url)
        last: dict[str, list[str]] = {}

        def agrees() -> bool:
            exporting = exporters_of_shared_series(replicas)
            assert len(exporting) == 1 or exporting == replicas, [r.name for r in exporting]
            for replica in exporting:
                last[replica.name] = told_difference(truth, replica.scrape())
            return not any(last.values())

        try:
            wait_until(agrees, 60, "the replicas to agree with the truth", interval=0.5)
        except AssertionError:
            pytest.fail(
                f"seed {seed}: exported counters differ from the truth:\n"
                + "\n".join(
                    f"{name}: {line}" for name, lines in last.items() for line in lines[:20]
                )
            )
        exporting = exporters_of_shared_series(replicas)
        for replica in [r for r in replicas if r not in exporting]:
            shared = exported_like(replica.scrape(), (*TOLD, RECEIPTS))
            assert not shared, f"replica {replica.name} exports shared series beside the primary"
        final = leaders(replicas)
        assert final is None or len(final) == 1, f"leaders at the end: {final}"
    finally:
        for replica in replicas:
            replica.watch.stop()
        codes = {r.name: r.stop() for r in replicas}

    for replica in replicas:
        assert not replica.watch.decreases, f"seed {seed}: replica {replica.name}: " + "; ".join(
            replica.watch.decreases[:10]
        )
        assert len(replica.watch.scrapes) >= 10, f"replica {replica.name} was scraped all along"
    assert codes == {"a": 0, "b": 0}, codes
    assert all(front.taken), f"the pushes were spread over both replicas: {front.taken}"
    assert not double_leaders, f"seed {seed}: two replicas led the acquirer: {double_leaders}"
    assert fenced is not None
    paused, since, until = fenced
    woken = [at for r, at in state.pages() if r == paused and since < at < until]
    assert not woken, f"seed {seed}: the woken replica {paused} committed pages: {woken[:5]}"

    kills = [f for f in failovers if f[0] == "kill"]
    assert len(kills) == KILLS
    seconds = [f[3] for f in kills]
    pause = next(f[3] for f in failovers if f[0] == "pause")
    print(
        f"failover after {len(kills)} kills (s): "
        + ", ".join(f"{f:.2f}" for f in seconds)
        + f"\nmedian {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s; "
        + f"after the pause: {pause:.2f} s (target: {TARGET_S:.1f} s = 2 poll intervals + TTL); "
        + f"pushes taken per replica {front.taken}, refused by both {front.refused}"
    )

"""The simulation and the real exporter stepped on one simulated clock, without waiting.

Every step of `step_ms` simulated time: the clock moves on, every source is polled once by the
exporter's own `Poller` (its HTTP client, parse functions, pipeline and SQLite store, through
the in-process transport), then the exporter's own collector is scraped. Nothing sleeps: a
step takes as long as the work it does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import Metric

from exporter.backtest import transport
from exporter.collector import SmswatchCollector
from exporter.config import parse_config, simulator_config_document
from exporter.poller import Pipeline, Poller
from exporter.simulator.settings import SimulatorSettings
from exporter.simulator.simulation import SimClock, Simulation
from exporter.store import Store
from exporter.timestamps import format_duration_ms


class SteppedClock:
    """A clock that stands still until told to move: the simulated now of the whole replay."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def seconds(self) -> float:
        """The simulated now in Unix seconds (for the exporter's clocks)."""
        return self.now_ms / 1000


@dataclass
class ReplayTimings:
    """Wall seconds spent in each part of the replay."""

    simulate_ingest_s: float = 0.0
    exposition_s: float = 0.0
    steps: int = 0


class Replay:
    """One simulator run and one exporter, wired in-process on a `SteppedClock`."""

    def __init__(self, settings: SimulatorSettings, step_ms: int, state_path: Path) -> None:
        self.settings = settings
        self.step_ms = step_ms
        self.clock = SteppedClock(settings.start_ms)
        sim_clock = SimClock(settings.start_ms, 1.0, wall=self.clock.seconds)
        self.simulation = Simulation(settings, clock=sim_clock)
        sim_clock.start()
        raw = simulator_config_document(transport.BASE_URL, format_duration_ms(step_ms))
        raw["reconcile"] = {
            "missing_after": format_duration_ms(settings.missing_after_ms),
            "give_up_after": format_duration_ms(settings.give_up_after_ms),
        }
        self.config = parse_config(raw, source_file="(backtest)", state_path=str(state_path))
        self.store = Store(self.config.state_path, clock=self.clock.seconds)
        self.pipeline = Pipeline(self.config, self.store, clock=self.clock.seconds)
        self._stop = threading.Event()
        self.pollers = [
            Poller(source, self.pipeline, self._stop, self.clock.seconds)
            for source in self.config.sources
        ]
        for poller in self.pollers:
            transport.mount(poller.client.session, self.simulation)
        self.collector = SmswatchCollector(
            self.config,
            self.store,
            {p.source.name: p.health for p in self.pollers},
            clock=self.clock.seconds,
        )

    def run(
        self,
        end_ms: int,
        on_scrape: Callable[[Iterable[Metric], int], None],
        on_progress: Callable[[int], None] | None = None,
    ) -> ReplayTimings:
        """Step from the start to `end_ms`; `on_scrape(families, at_ms)` after each step's polls."""
        timings = ReplayTimings()
        at = self.settings.start_ms
        try:
            while at + self.step_ms <= end_ms:
                at += self.step_ms
                self.clock.now_ms = at
                started = time.perf_counter()
                self.simulation.advance(at)
                for poller in self.pollers:
                    poller.poll()
                scraped = time.perf_counter()
                on_scrape(self.collector.collect(), at)
                done = time.perf_counter()
                timings.simulate_ingest_s += scraped - started
                timings.exposition_s += done - scraped
                timings.steps += 1
                if on_progress is not None:
                    on_progress(at)
        finally:
            self.close()
        return timings

    def close(self) -> None:
        """Release the HTTP sessions and the store."""
        self._stop.set()
        for poller in self.pollers:
            poller.client.close()
        self.store.close()

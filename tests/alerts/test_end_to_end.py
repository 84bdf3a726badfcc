"""End to end on loopback: simulator → exporter → Prometheus (the generated rules, time-scaled)
→ Alertmanager (the shipped config) → a webhook receiver in this test.

Prometheus windows run on wall-clock time, so the rules are generated with `--time-scale 60`
(1h → 1m, `for: 5m` → 5s, 30d → 12h) and the simulator runs at the same speed: one simulated
minute per wall second. For each of the five causes the test injects its fault through
`POST /sim/v1/faults`, waits for an alert carrying that `cause` at the webhook, checks that no
critical alert of another cause arrives, and waits for the resolution once the fault has ended.
The time from fault start to webhook is printed (in wall seconds = simulated minutes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from alert_files import SPEC
from alert_stack import (
    Webhook,
    alertmanager,
    get_json,
    local_alertmanager_config,
    post_json,
    prometheus,
    webhook_server,
)

from exporter.alerting.generate import render, write
from exporter.alerting.spec import load_spec
from exporter.app import SIMULATED_CLOCK_ENV
from exporter.config import simulator_config_document
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options

from harness import Process, free_port, http_get, wait_until

SPEED = 60  # simulated seconds per wall second, and the rules' time scale

#: cause → the fault that produces it (durations in simulated time = wall seconds × 60).
FAULTS: dict[str, dict[str, Any]] = {
    "gateway": {"kind": "gateway_outage", "duration": "15m"},
    "integration": {
        "kind": "integration_drop",
        "duration": "20m",
        "acquirer": "acq-east",
        "share": 0.6,
    },
    "invalid_number": {
        "kind": "invalid_numbers",
        "duration": "30m",
        "acquirer": "acq-north",
        "share": 0.4,
    },
    "unreachable": {
        "kind": "weak_signal",
        "duration": "30m",
        "area": "west",
        "share": 0.6,
        "latency_factor": 6,
    },
    "terminal_config": {
        "kind": "terminal_sms_off",
        "duration": "40m",
        "acquirer": "acq-south",
        "terminals": 30,
    },
}
CAUSES = tuple(FAULTS)
TIMINGS: dict[str, dict[str, Any]] = {}


def _daytime_start() -> int:
    """The next 11:00 Beijing time at or after now, in Unix ms: busy traffic for the whole run,
    and simulated time never behind the wall clock (so feeds never look lagging)."""
    now = datetime.now(UTC)
    start = now.replace(hour=3, minute=0, second=0, microsecond=0)  # 11:00 at UTC+8
    if start < now:
        start += timedelta(days=1)
    return int(start.timestamp()) * 1000


@dataclass
class Stack:
    simulator: SimulatorServer
    prometheus: str
    alertmanager: str
    webhook: Webhook
    workdir: Path


def _exporter_config(workdir: Path, simulator_url: str) -> Path:
    poll = f"{15_000 // SPEED}ms"  # the exporter's 15 s default, scaled like the rules
    doc: dict[str, Any] = simulator_config_document(simulator_url, poll)
    for source in doc["sources"]:
        source.update({"timeout": {"connect": "1s", "read": "2s"}, "retries": 2})
    doc["state"]["path"] = str(workdir / "state.sqlite")
    path = workdir / "smswatch.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, alertmanager_bin: str, prometheus_bin: str
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("e2e")
    rules = workdir / "rules"
    # Prometheus below scrapes every wall second: windows never shrink below a few scrapes.
    write(render(load_spec(SPEC), SPEED, scrape_ms=1000), rules)
    settings = settings_from_options(
        seed=11, speed=SPEED, start_ms=_daytime_start(), scenario="none", rate=1.0
    )
    simulator = SimulatorServer(settings, "127.0.0.1", 0)
    simulator.start()
    port = free_port()
    # The exporter's clock is the simulated one: the simulator runs ahead of the wall clock,
    # which the exporter would otherwise cap as an upstream clock ahead (max_clock_skew).
    sim_clock = f"{time.time()}:{simulator.simulation.clock.now_ms()}:{SPEED}"
    exporter = Process(
        [
            "run",
            "--config.file",
            str(_exporter_config(workdir, simulator.url)),
            "--web.listen-address",
            f"127.0.0.1:{port}",
        ],
        workdir / "exporter.log",
        env={SIMULATED_CLOCK_ENV: sim_clock},
    )
    try:
        wait_until(
            lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 20, "the exporter"
        )
        with (
            webhook_server() as hook,
            alertmanager(
                alertmanager_bin,
                local_alertmanager_config(hook.url, workdir, any_time=True),
                workdir / "alertmanager",
            ) as am_url,
            prometheus(
                prometheus_bin, rules, [f"127.0.0.1:{port}"], am_url, workdir / "prometheus"
            ) as prom_url,
        ):
            yield Stack(simulator, prom_url, am_url, hook, workdir)
    finally:
        exporter.stop()
        simulator.stop()
        if TIMINGS:
            print("\nfault start → webhook (wall s = simulated min):")
            for cause, timing in TIMINGS.items():
                print(f"  {cause:16} {json.dumps(timing)}")


def _query(prom: str, expr: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = get_json(f"{prom}/api/v1/query?query={quote(expr)}")["data"][
        "result"
    ]
    return result


def _firing_cause_alerts(prom: str) -> list[dict[str, Any]]:
    return _query(prom, 'ALERTS{alertstate="firing",cause!=""}')


def _alerts_since(webhook: Webhook, since: float) -> list[tuple[float, dict[str, Any]]]:
    return [
        (note.at, alert)
        for note in webhook.snapshot()
        if note.at >= since
        for alert in note.alerts()
    ]


@pytest.fixture(scope="module")
def warmed_up(stack: Stack) -> Stack:
    """Traffic flows through the whole chain and every window has filled once; during that
    healthy time no alert with a cause reaches the webhook."""
    started = time.monotonic()
    wait_until(
        lambda: _query(stack.prometheus, "sum(rate(smswatch_receipts_total[10s])) > 0"),
        90,
        "receipts counted in Prometheus",
        interval=1,
    )
    # The longest cause window is 30m (30 s wall), plus its `for:`.
    wait_until(lambda: time.monotonic() - started > 45, 60, "the warm-up", interval=1)
    noisy = [
        alert["labels"]
        for _, alert in _alerts_since(stack.webhook, started)
        if alert["labels"].get("cause") and alert["status"] == "firing"
    ]
    assert not noisy, f"cause alerts on healthy traffic: {noisy}"
    return stack


@pytest.mark.slow
@pytest.mark.parametrize("cause", CAUSES)
def test_fault_pages_with_its_cause_then_resolves(warmed_up: Stack, cause: str) -> None:
    stack = warmed_up
    wait_until(
        lambda: not _firing_cause_alerts(stack.prometheus),
        120,
        "no cause alert firing before the fault",
        interval=1,
    )
    fault = {**FAULTS[cause], "start": "0s"}
    t0 = time.monotonic()
    post_json(f"{stack.simulator.url}/sim/v1/faults", fault)
    fault_wall_s = int(fault["duration"].rstrip("m")) * 60 / SPEED

    def fired() -> list[tuple[float, dict[str, Any]]]:
        return [
            (at, alert)
            for at, alert in _alerts_since(stack.webhook, t0)
            if alert["status"] == "firing" and alert["labels"].get("cause") == cause
        ]

    first = wait_until(fired, fault_wall_s + 30, f"an alert with cause={cause} at the webhook")
    arrival, alert = min(first, key=lambda item: item[0])
    TIMINGS[cause] = {
        "alert": alert["labels"]["alertname"],
        "severity": alert["labels"]["severity"],
        "fault_to_webhook_s": round(arrival - t0, 1),
    }

    # After the fault ends, every alert of this cause resolves.
    def resolved() -> bool:
        names = {a["labels"]["alertname"] for _, a in fired()}
        done = {
            a["labels"]["alertname"]
            for at, a in _alerts_since(stack.webhook, t0)
            if a["status"] == "resolved" and a["labels"].get("cause") == cause
        }
        firing = {a["metric"]["alertname"] for a in _firing_cause_alerts(stack.prometheus)}
        return time.monotonic() - t0 > fault_wall_s and names <= done and not firing

    wait_until(resolved, fault_wall_s + 120, f"the {cause} alerts to resolve", interval=1)
    TIMINGS[cause]["fault_to_resolved_s"] = round(time.monotonic() - t0, 1)
    TIMINGS[cause]["alerts"] = sorted({a["labels"]["alertname"] for _, a in fired()})

    others = sorted(
        {
            f"{a['labels']['alertname']}(cause={a['labels']['cause']})"
            for _, a in _alerts_since(stack.webhook, t0)
            if a["status"] == "firing"
            and a["labels"].get("severity") == "critical"
            and a["labels"].get("cause", cause) != cause
        }
    )
    assert not others, f"{cause} fault: critical alerts of another cause reached the webhook"

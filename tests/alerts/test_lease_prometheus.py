"""Two replicas on one state, scraped by one real Prometheus with the generated rules: every
series comes from one replica only, the sums equal the simulator's truth exactly (never
doubled), and when the primary is killed the other replica takes the primary role and its
sources over, and the sums still equal the truth.

Two `smswatch run` processes share one SQLite file (SQLite's locking works across processes;
PostgreSQL replicas are exercised by the replica end-to-end test), with `leases.ttl: 2s`."""

from __future__ import annotations

import shutil
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_stack import get_json, prometheus
from test_exporter_end_to_end import COMPARED, START, start_exporter, start_simulator

from exporter.config import simulator_config_document
from exporter.reports.counters import exact_increases
from exporter.reports.prometheus import PrometheusClient
from exporter.timestamps import parse_duration_ms, parse_rfc3339_ms

from harness import (
    Process,
    Series,
    diff,
    exported_like,
    finished_truth,
    free_port,
    scrape,
    truth_series,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
#: Series about a replica itself: every replica exports its own.
PER_REPLICA = (
    "smswatch_source_leader|smswatch_primary|smswatch_lease_changes_total|smswatch_build_info"
    "|smswatch_source_poll_seconds_.*"
)


def query(prometheus_url: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    answer = get_json(f"{prometheus_url}/api/v1/query?query={urllib.parse.quote(promql)}")
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def summed(prometheus_url: str) -> dict[Series, float]:
    """The compared counters as Prometheus sums them over every replica's target."""
    out: dict[Series, float] = {}
    for name in COMPARED:
        for item in query(prometheus_url, f'sum without (instance) ({name}{{job="smswatch"}})'):
            labels = {k: v for k, v in item["metric"].items() if k != "job"}
            out[(name, frozenset(labels.items()))] = float(item["value"][1])
    return exported_like(out, COMPARED)


def reported(prometheus_url: str, since: float, until: float) -> dict[Series, float]:
    """The compared counters' exact increases over (since, until], as compliance reports count
    them from Prometheus' samples, summed over the targets that exported them."""
    client = PrometheusClient(prometheus_url)
    out: dict[Series, float] = {}
    for name in COMPARED:
        increases = exact_increases(client, f'{name}{{job="smswatch"}}', [since, until])
        for labels, values in increases.series.items():
            key = (name, frozenset((k, v) for k, v in labels if k != "job"))
            out[key] = out.get(key, 0.0) + sum(values)
    return exported_like(out, COMPARED)


def duplicated(prometheus_url: str) -> list[dict[str, Any]]:
    """Series that more than one replica exports (those about a replica itself aside)."""
    selector = f'{{job="smswatch",__name__=~"smswatch_.*",__name__!~"{PER_REPLICA}"}}'
    named = f'label_replace({selector}, "name", "$1", "__name__", "(.+)")'
    return query(prometheus_url, f"count without (instance) ({named}) > 1")


def blind_sources(prometheus_url: str) -> list[str]:
    """The sources `smswatch:source_blind` is recorded for (it joins smswatch_source_up with the
    sources' state series on instance: both must come from the same replica)."""
    result = query(prometheus_url, 'smswatch:source_blind{job="smswatch"}')
    return sorted(item["metric"]["source"] for item in result)


def write_config(tmp_path: Path, url: str) -> Path:
    doc: dict[str, Any] = simulator_config_document(url, "200ms")
    for source in doc["sources"]:
        source.update(
            {"timeout": {"connect": "1s", "read": "1500ms"}, "retries": 2, "backoff": "50ms"}
        )
    doc["state"]["path"] = str(tmp_path / "state.sqlite")
    doc["leases"] = {"ttl": "2s"}
    path = tmp_path / "smswatch.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def leases_of(port: int) -> tuple[float, dict[str, float]]:
    """(smswatch_primary, smswatch_source_leader by source) as one replica exports them."""
    exported = scrape(f"http://127.0.0.1:{port}/metrics")
    leaders = {
        dict(labels)["source"]: value
        for (name, labels), value in exported.items()
        if name == "smswatch_source_leader"
    }
    return exported[("smswatch_primary", frozenset())], leaders


def test_two_replicas_on_a_real_prometheus_count_once_and_fail_over(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (Debian package prometheus)")
    sim = start_simulator(None, speed=1200, traffic="30m")
    config = write_config(tmp_path, sim.url)
    ports = [free_port(), free_port()]
    replicas: list[Process] = []
    try:
        for name, port in zip("ab", ports, strict=True):
            (tmp_path / name).mkdir()
            replicas.append(start_exporter(tmp_path / name, config, port))
        # the first replica is primary; the two split the two sources
        wait_until(
            lambda: (
                leases_of(ports[0])[0] == 1
                and sorted(leases_of(ports[0])[1].values()) == [0.0, 1.0]
                and sorted(leases_of(ports[1])[1].values()) == [0.0, 1.0]
            ),
            20,
            "the replicas to split the sources",
        )
        targets = [f"127.0.0.1:{p}" for p in ports]
        rules = REPO / "alerts" / "rules"
        since = time.time()
        with prometheus(binary, rules, targets, "http://127.0.0.1:1", tmp_path / "prom") as prom:
            wait_until(lambda: len(query(prom, 'up{job="smswatch"} == 1')) == 2, 30, "both scraped")
            assert duplicated(prom) == []
            wait_until(lambda: blind_sources(prom) == ["acquirer", "sms"], 30, "blindness recorded")
            kill_at = parse_rfc3339_ms(START) + parse_duration_ms("15m")
            wait_until(
                lambda: (
                    parse_rfc3339_ms(get_json(f"{sim.url}/sim/v1/truth")["sim_time"]) >= kill_at
                ),
                60,
                "simulated time 15m",
            )
            assert duplicated(prom) == []
            replicas[0].kill()  # the primary, with one of the sources
            killed = time.monotonic()
            wait_until(
                lambda: leases_of(ports[1]) == (1.0, {"sms": 1.0, "acquirer": 1.0}),
                30,
                "the other replica to take the primary role and both sources",
                interval=0.05,
            )
            print(f"failover: primary and sources taken over {time.monotonic() - killed:.2f} s")
            expected = truth_series(finished_truth(sim.url))
            last: list[str] = []

            def agrees() -> bool:
                nonlocal last
                last = diff(expected, summed(prom))
                return not last

            try:
                wait_until(agrees, 60, "Prometheus' sums to equal the truth", interval=0.5)
            except AssertionError:
                pytest.fail("summed counters differ from the truth:\n" + "\n".join(last[:40]))
            assert duplicated(prom) == []
            # a report over the run counts every event once, across the change of primary
            assert diff(expected, reported(prom, since, time.time())) == []
            # a recording rule that joins a source's series on (job, instance, source) still
            # finds them all on one target, the new primary's
            wait_until(lambda: blind_sources(prom) == ["acquirer", "sms"], 30, "blindness again")
    finally:
        for replica in replicas:
            replica.stop()
        sim.stop()

"""One real simulator run, a real `smswatch run` exporter filling its state store, and a real
Prometheus holding the alerts that fired during the faults: shared by the lookup tests.

The simulator runs in this process so that each transaction's own truth can be taken from it:
the outcome rules of API.md applied by the simulator's `transaction_deltas` to what it generated
(never the exporter's pipeline). The exporter runs as a real process with its own log.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import simulator_config_document
from exporter.lookup.access import new_token
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.simulator.truth import RECEIPTS, transaction_deltas
from exporter.timestamps import format_rfc3339_ms, parse_duration_ms, parse_rfc3339_ms

from harness import (
    Process,
    diff,
    exported_like,
    free_port,
    get_json,
    http_get,
    scrape,
    truth_series,
    wait_until,
)

#: Noon in Beijing on a past day (the diurnal curve is at its peak).
START = "2026-11-25T04:00:00Z"
START_MS = parse_rfc3339_ms(START)
SCENARIO = """
faults:
  - {kind: gateway_outage, start: 2m, duration: 3m}
  - {kind: invalid_numbers, start: 6m, duration: 3m, share: 0.5}
  - {kind: weak_signal, start: 10m, duration: 3m, share: 0.6, latency_factor: 6}
  - {kind: terminal_sms_off, start: 13m, duration: 8m, acquirer: acq-south, terminals: 40}
  - {kind: integration_drop, start: 21m, duration: 3m, acquirer: acq-east, share: 0.6}
  - {kind: sync_delay, start: 21m, duration: 3m, acquirer: acq-north, delay: 6m, jitter: 1m}
  - {kind: throttling, start: 24m, duration: 3m, share: 0.5}
  - {kind: carrier_filtering, start: 27m, duration: 3m, share: 0.6}
"""
COMPARED = (
    "smswatch_sms_submitted_total",
    "smswatch_sms_messages_total",
    "smswatch_pos_transactions_total",
    "smswatch_receipts_total",
    "smswatch_sms_delivery_seconds_bucket",
    "smswatch_receipt_notify_seconds_bucket",
)
#: Alert rules trail their cause: the synthetic ALERTS series start this long into a fault.
ALERT_DELAY_MS = 2 * 60_000
STEP_MS = 15_000


@dataclass(frozen=True)
class TruthTxn:
    """What the simulator says about one transaction it generated."""

    txn_id: str
    rrn: str
    terminal_id: str
    acquirer: str
    txn_ms: int
    kind: str  # receipt | reversed | declined | not_registered
    outcome: str = ""
    cause: str = ""


@dataclass
class Run:
    """Everything the lookup tests share."""

    tmp: Path
    sim_url: str
    exporter_url: str
    state_path: Path
    config_path: Path
    log_path: Path
    prometheus_url: str
    tokens: dict[str, str]  # name → token
    tokens_file: Path
    faults: list[dict[str, Any]]
    truth: dict[str, TruthTxn]  # rrn → truth
    alerts: list[dict[str, Any]] = field(default_factory=list)  # the ALERTS written

    def by_outcome(self) -> dict[tuple[str, str], list[TruthTxn]]:
        """Receipts grouped by (outcome, cause), oldest first."""
        out: dict[tuple[str, str], list[TruthTxn]] = {}
        for t in sorted(self.truth.values(), key=lambda t: t.txn_ms):
            if t.kind == "receipt":
                out.setdefault((t.outcome, t.cause), []).append(t)
        return out

    def api(self, query: str, token: str | None = None) -> tuple[int, Any, dict[str, str]]:
        """GET /api/v1/receipts?query with a bearer token; (status, JSON body, headers)."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(f"{self.exporter_url}/api/v1/receipts?{query}")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


def _record_truth(sim: SimulatorServer, truth: dict[str, TruthTxn]) -> None:
    """Wrap the simulator's traffic generator to note each transaction's own outcome."""
    simulation = sim.simulation
    traffic = simulation.traffic
    settings = simulation.settings
    original = traffic.generate

    def generate(until_ms: int) -> Iterator[Any]:
        for generated in original(until_ms):
            record = json.loads(generated.records[0][1])
            facts = generated.facts
            deltas = transaction_deltas(
                facts,
                gateway=settings.gateway,
                missing_after_ms=settings.missing_after_ms,
                give_up_after_ms=settings.give_up_after_ms,
            )
            receipts = [d for d in deltas if d.metric == RECEIPTS]
            common = (
                record["txn_id"],
                record["rrn"],
                record["terminal_id"],
                record["acquirer"],
                facts.txn_time,
            )
            if receipts:
                _, outcome, cause = receipts[0].labels
                truth[record["rrn"]] = TruthTxn(*common, "receipt", outcome, cause)
            elif facts.receipt:
                truth[record["rrn"]] = TruthTxn(*common, "reversed")
            elif facts.result != "approved":
                truth[record["rrn"]] = TruthTxn(*common, "declined")
            else:
                truth[record["rrn"]] = TruthTxn(*common, "not_registered")
            yield generated

    traffic.generate = generate  # type: ignore[method-assign]


def alert_series(faults: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ALERTS runs Prometheus would have recorded for the scenario's faults (and noise)."""
    out = []
    for fault in faults:
        start = parse_rfc3339_ms(fault["start"]) + ALERT_DELAY_MS
        end = parse_rfc3339_ms(fault["end"]) + ALERT_DELAY_MS
        if fault["kind"] == "gateway_outage":
            labels = {
                "alertname": "SMSGatewayErrors",
                "cause": "gateway",
                "gateway": "bank-sms",
                "severity": "critical",
            }
        elif fault["kind"] == "terminal_sms_off":
            labels = {
                "alertname": "ReceiptsWithoutSMSTerminalConfig",
                "acquirer": "acq-south",
                "cause": "terminal_config",
                "severity": "warning",
            }
            # the same alert on another acquirer: must not show for acq-south's receipts
            out.append(
                {
                    "labels": {**labels, "acquirer": "acq-north"},
                    "start_ms": start,
                    "end_ms": end,
                }
            )
        else:
            continue
        out.append({"labels": labels, "start_ms": start, "end_ms": end})
    first = min(parse_rfc3339_ms(f["start"]) for f in faults)
    last = max(parse_rfc3339_ms(f["end"]) for f in faults)
    out.append(
        {
            "labels": {"alertname": "Watchdog", "severity": "none"},
            "start_ms": first - 3_600_000,
            "end_ms": last + 3_600_000,
        }
    )
    return out


def start_prometheus(
    tmp: Path, alerts: list[dict[str, Any]]
) -> tuple[subprocess.Popen[bytes], str]:
    """A real Prometheus whose TSDB holds `alerts` (promtool create-blocks-from openmetrics)."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    assert prometheus and promtool, "install Debian's prometheus package (see .ci/run)"
    lines = ["# TYPE ALERTS gauge"]
    for alert in alerts:
        labels = {**alert["labels"], "alertstate": "firing"}
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for at in range(alert["start_ms"], alert["end_ms"] + 1, STEP_MS):
            lines.append(f"ALERTS{{{text}}} 1 {at / 1000:.3f}")
    lines.append("# EOF")
    source = tmp / "alerts.om"
    source.write_text("\n".join(lines) + "\n")
    data = tmp / "prometheus-data"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    config = tmp / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1h}\n")
    port = free_port()
    log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=100y",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The shared run: simulator finished, exporter caught up exactly, Prometheus ready."""
    tmp = tmp_path_factory.mktemp("lookup")
    scenario = tmp / "scenario.yaml"
    scenario.write_text(SCENARIO)
    sim = SimulatorServer(
        settings_from_options(
            seed=11,
            speed=3000,
            start_ms=START_MS,
            traffic_for_ms=parse_duration_ms("32m"),
            scenario=str(scenario),
            rate=2.0,
        ),
        "127.0.0.1",
        0,
    )
    truth: dict[str, TruthTxn] = {}
    _record_truth(sim, truth)
    sim.start()
    faults = get_json(f"{sim.url}/sim/v1/faults")["faults"]
    alerts = alert_series(faults)
    prometheus, prometheus_url = start_prometheus(tmp, alerts)

    tokens = {name: new_token() for name in ("alice", "bob", "carol")}
    tokens_file = tmp / "lookup-tokens.yml"
    tokens_file.write_text(
        yaml.safe_dump(
            {
                "tokens": [
                    {"name": "alice", "sha256": tokens["alice"][1]},
                    {"name": "bob", "sha256": tokens["bob"][1], "revoked": "2026-11-20"},
                    {"name": "carol", "sha256": tokens["carol"][1]},
                ]
            }
        )
    )
    doc: dict[str, Any] = simulator_config_document(sim.url, "200ms")
    for source in doc["sources"]:
        source.update({"timeout": {"connect": "1s", "read": "2s"}, "retries": 2, "backoff": "50ms"})
    doc["state"]["path"] = str(tmp / "state.sqlite")
    doc["lookup"] = {
        "tokens_file": tokens_file.name,
        "timezone": "Asia/Shanghai",
        "prometheus": {"url": prometheus_url, "lookback": "2h"},
    }
    config_path = tmp / "smswatch.yaml"
    config_path.write_text(yaml.safe_dump(doc))
    port = free_port()
    exporter = Process(
        [
            "run",
            "--config.file",
            str(config_path),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--log.level",
            "debug",
        ],
        tmp / "exporter.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_get(f"{url}/healthz")[0] == 200, 20, "the exporter to listen")
        final = wait_until(
            lambda: (t := get_json(f"{sim.url}/sim/v1/truth"))["complete"] and t,
            120,
            "the simulator to finish its traffic",
            interval=0.2,
        )
        expected = truth_series(final)
        wait_until(
            lambda: not diff(expected, exported_like(scrape(f"{url}/metrics"), COMPARED)),
            60,
            "the exporter to agree with the truth",
            interval=0.2,
        )
        wait_until(
            lambda: http_get(f"{prometheus_url}/-/ready")[0] == 200, 30, "Prometheus to be ready"
        )
        yield Run(
            tmp=tmp,
            sim_url=sim.url,
            exporter_url=url,
            state_path=tmp / "state.sqlite",
            config_path=config_path,
            log_path=tmp / "exporter.log",
            prometheus_url=prometheus_url,
            tokens={name: token for name, (token, _) in tokens.items()},
            tokens_file=tokens_file,
            faults=faults,
            truth=truth,
            alerts=alerts,
        )
    finally:
        exporter.stop()
        sim.stop()
        prometheus.terminate()
        prometheus.wait(timeout=10)


def ts(ms: int) -> str:
    """RFC 3339 of Unix ms (test shorthand)."""
    return format_rfc3339_ms(ms)

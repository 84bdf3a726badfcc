"""Probes running against the simulator while its cardholder traffic flows, with a grey route
faking DELIVRD for china-mobile: the cardholder counters still equal the simulator's truth
exactly (canaries never count there), the china-mobile canary is caught as a fake delivery
report, and the china-unicom canary is proved delivered by report and by handset."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from test_exporter_end_to_end import COMPARED, wait_for_exact_agreement

from exporter.app import Exporter
from exporter.config import Config, parse_config, simulator_config_document
from exporter.simulator.server import SimulatorServer
from exporter.simulator.settings import settings_from_options
from exporter.timestamps import parse_duration_ms, parse_rfc3339_ms

from harness import diff, exported_like, get_json, scrape, truth_series, wait_until


def test_probes_beside_cardholder_traffic_with_fake_delivery_reports(
    tmp_path: Path, on_backend: Callable[[Config], Config]
) -> None:
    handset = tmp_path / "handset"
    handset.mkdir()
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "faults:\n  - {kind: fake_delivery_reports, start: 0m, duration: 2h, "
        "carrier: china-mobile, share: 1.0}\n"
    )
    sim = SimulatorServer(
        settings_from_options(
            seed=11,
            speed=600,
            start_ms=parse_rfc3339_ms("2026-11-26T09:00:00Z"),
            traffic_for_ms=parse_duration_ms("10m"),
            scenario=str(scenario),
            rate=1.0,
            handset_dir=str(handset),
        ),
        "127.0.0.1",
        0,
    )
    sim.start()
    doc: dict[str, Any] = simulator_config_document(sim.url, "200ms")
    doc["state"]["path"] = str(tmp_path / "state.sqlite")
    doc["probes"] = {
        "handset_timeout": "5m",
        "report_timeout": "60s",
        "check_interval": "200ms",
        "inbox": {"gammu_dir": str(handset), "timezone": "UTC"},
        "gateways": [
            {
                "gateway": "bank-sms",
                "interval": "1h",
                "numbers": [
                    {"number": "+8613800138000", "carrier": "china-mobile", "area": "north"},
                    {"number": "+8613100131000", "carrier": "china-unicom", "area": "north"},
                ],
                "send": {
                    "kind": "http",
                    "url": f"{sim.url}/sms/v1/send",
                    "body": '{"to": "{to}", "text": "{text}", "ref": "{canary_id}"}',
                    "message_id": "message_id",
                },
            }
        ],
    }
    # The exporter's clock, which the test moves past handset_timeout once both canaries'
    # reports are in: the fake verdict then never depends on how fast this machine is.
    ahead = [0.0]
    config = on_backend(parse_config(doc))
    app = Exporter(config, "127.0.0.1", 0, clock=lambda: time.time() + ahead[0])
    app.start()
    try:
        metrics_url = f"http://127.0.0.1:{app.port}/metrics"
        truth = wait_for_exact_agreement(sim, metrics_url)
        expected = truth_series(truth)
        assert truth["fake_delivery_reports"] > 0  # the grey route hit cardholder traffic too

        def probes() -> dict[tuple[str, str], float]:
            return {
                (name, dict(labels)["carrier"]): value
                for (name, labels), value in scrape(metrics_url).items()
                if name.startswith("smswatch_probe_") and name.endswith("_total") and value
            }

        want = {
            ("smswatch_probe_sent_total", "china-mobile"): 1,
            ("smswatch_probe_sent_total", "china-unicom"): 1,
            ("smswatch_probe_delivered_total", "china-mobile"): 1,  # a fake DELIVRD
            ("smswatch_probe_delivered_total", "china-unicom"): 1,
            ("smswatch_probe_received_total", "china-unicom"): 1,
        }
        wait_until(lambda: probes() == want, 30, f"both reports and one handset {want}", 0.3)
        ahead[0] = 600.0  # ten minutes on: past handset_timeout (5m) for the china-mobile one
        want[("smswatch_probe_fake_reports_total", "china-mobile")] = 1
        wait_until(lambda: probes() == want, 30, f"the fake report caught {want}", 0.3)
        assert get_json(f"{sim.url}/sim/v1/truth")["canaries"] == {
            "sent": 2,
            "fake_reports": 1,
            "handset": 1,
        }
        assert diff(expected, exported_like(scrape(metrics_url), COMPARED)) == []
    finally:
        app.stop()
        sim.stop()

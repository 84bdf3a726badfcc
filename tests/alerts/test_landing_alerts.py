"""The alerts firing now on the exporter's landing page, from a real Prometheus evaluating the
generated rules; a Prometheus that goes away leaves the page standing and says so."""

from __future__ import annotations

from pathlib import Path

from alert_stack import prometheus

from exporter.app import Exporter
from exporter.config import parse_config, simulator_config_document
from exporter.landing.route import prometheus_settings

from harness import free_port, http_get, wait_until

RULES = Path(__file__).resolve().parents[2] / "alerts" / "rules"
WATCHDOG_RUNBOOK = "https://github.com/smswatch/smswatch/blob/main/alerts/runbooks/Watchdog.md"


def test_the_page_lists_the_alerts_firing_now_and_survives_prometheus_down(
    tmp_path: Path, prometheus_bin: str
) -> None:
    port = free_port()  # Prometheus's: the exporter is configured with it before it starts
    doc = simulator_config_document("http://127.0.0.1:9", "1s")  # sources down
    doc["lookup"] = {"prometheus": {"url": f"http://127.0.0.1:{port}", "timeout": "1s"}}
    config = parse_config(doc, state_path=str(tmp_path / "state.sqlite"))
    exporter = Exporter(config, "127.0.0.1", 0)
    exporter.start()
    base = f"http://127.0.0.1:{exporter.port}/"
    try:
        with prometheus(
            prometheus_bin,
            RULES,
            [f"127.0.0.1:{exporter.port}"],
            "http://127.0.0.1:9",  # no Alertmanager: the page asks Prometheus itself
            tmp_path / "prometheus",
            port=port,
        ):
            page = wait_until(
                lambda: next(p for p in [http_get(base)[1]] if 'data-alert="Watchdog"' in p),
                30,
                "Watchdog on the landing page",
            )
            watchdog = page[page.index('data-alert="Watchdog"') :].split("</li>")[0]
            assert f'<a href="{WATCHDOG_RUNBOOK}" rel="noreferrer">runbook</a>' in watchdog
            assert "The alerting pipeline is alive" in watchdog  # its summary annotation
            assert "SmswatchExporterAbsent" not in page  # pending, not firing
            assert "处置手册" in http_get(f"{base}?lang=zh-CN")[1]
        status, page = http_get(base)
        assert status == 200
        assert "Prometheus could not be asked (Prometheus did not answer)" in page
        assert 'data-alert="Watchdog"' not in page
        assert 'id="sources"' in page and 'id="acquirers"' in page  # the rest still stands
        assert "无法查询 Prometheus" in http_get(f"{base}?lang=zh-CN")[1]
    finally:
        exporter.stop()


def test_the_reports_prometheus_is_asked_when_the_lookup_names_none() -> None:
    doc = simulator_config_document("http://127.0.0.1:9", "1s")
    assert prometheus_settings(parse_config(doc)) is None
    doc["reports"] = {"prometheus_url": "http://prom:9090/", "out_dir": "/tmp/reports"}
    settings = prometheus_settings(parse_config(doc))
    assert settings is not None and settings.url == "http://prom:9090"

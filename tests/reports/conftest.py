"""Fixtures of the report tests: a real Prometheus loaded with the known history of
`report_dataset`, and reports generated from it once per session."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import report_dataset
from report_harness import GENERATED_AT, LoadedPrometheus, daily_request

from exporter.reports.report import generate_report

from harness import free_port, get_json, stop_processes, wait_until

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 60s
  evaluation_interval: 30s
"""


@pytest.fixture(scope="session")
def dataset() -> report_dataset.Dataset:
    return report_dataset.build()


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, dataset: report_dataset.Dataset
) -> Iterator[LoadedPrometheus]:
    """A real Prometheus server (Debian's) on a free 127.0.0.1 port, over TSDB blocks made
    by promtool from the dataset."""
    binary = shutil.which("prometheus")
    promtool = shutil.which("promtool")
    assert binary and promtool, "install Debian's prometheus package (see .ci/run)"
    root = tmp_path_factory.mktemp("prometheus")
    source = root / "history.om"
    source.write_text(report_dataset.openmetrics(dataset), encoding="utf-8")
    data = root / "data"
    subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=120h",
            str(source),
            str(data),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    config = root / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG, encoding="utf-8")
    port = free_port()
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=100y",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: get_json(
                f"{url}/api/v1/query?query=count(smswatch_build_info)"
                f"&time={report_dataset.PERIOD_END}"
            )["data"]["result"],
            timeout=30,
            what="Prometheus with the test blocks",
        )
        yield LoadedPrometheus(url, dataset)
    finally:
        stop_processes(process)
        log.close()


@pytest.fixture(scope="session")
def reports(
    prometheus: LoadedPrometheus, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The daily report of the dataset, in English and in Chinese (all formats)."""
    out = tmp_path_factory.mktemp("reports")
    return {
        lang: generate_report(daily_request(prometheus.url, out, lang), now=lambda: GENERATED_AT)
        for lang in ("en", "zh-CN")
    }

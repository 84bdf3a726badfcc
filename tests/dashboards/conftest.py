"""Fixtures of the dashboard tests: the generated dashboards, a real Prometheus on loopback, and
the PromQL of every panel with its template variables substituted."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
# Several worktrees share one Python environment: make sure `exporter` is this checkout's.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from exporter.dashboards import generate  # noqa: E402

from harness import free_port, stop_processes  # noqa: E402

#: Grafana's built-in variables, as the query test substitutes them.
BUILTINS = {"__rate_interval": "1m", "__range": "5m", "__interval": "15s"}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def dashboards() -> dict[str, dict[str, Any]]:
    """uid → generated dashboard JSON."""
    return generate.dashboards()


@dataclass(frozen=True)
class Target:
    """One query of one panel, as the tests see it."""

    uid: str
    panel: str
    ref: str
    expr: str
    instant: bool
    fmt: str
    unit: str

    @property
    def name(self) -> str:
        return f"{self.uid} / {self.panel} / {self.ref}"


def targets_of(dashboards: dict[str, dict[str, Any]]) -> list[Target]:
    """Every Prometheus target of every panel."""
    found = []
    for uid, dashboard in dashboards.items():
        for panel in generate.panels(dashboard):
            for target in panel.get("targets", []):
                found.append(
                    Target(
                        uid=uid,
                        panel=panel["title"],
                        ref=target["refId"],
                        expr=target["expr"],
                        instant=bool(target.get("instant")),
                        fmt=target.get("format", "time_series"),
                        unit=panel.get("fieldConfig", {}).get("defaults", {}).get("unit", ""),
                    )
                )
    return found


@pytest.fixture(scope="session")
def targets(dashboards: dict[str, dict[str, Any]]) -> list[Target]:
    return targets_of(dashboards)


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace `$var` / `${var}` as Grafana would; an unknown variable is a KeyError."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return {**BUILTINS, **values}[name]

    return _VARIABLE.sub(value, expr)


@pytest.fixture(scope="session")
def substitute_variables() -> Callable[[str, dict[str, str]], str]:
    return substitute


def wait_for(
    check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.2
) -> None:
    """Poll `check` until it is true; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}")


class Prometheus:
    """A real Prometheus on loopback, scraping one target every second."""

    def __init__(self, directory: Path, target: str, rule_files: list[Path]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = directory / "prometheus.yml"
        rules = "\n".join(f"  - {path}" for path in rule_files)
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            + (f"rule_files:\n{rules}\n" if rule_files else "")
            + "scrape_configs:\n  - job_name: smswatch\n    static_configs:\n"
            + f"      - targets: ['{target}']\n",
            encoding="utf-8",
        )
        self._log = (directory / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, timeout=30, what="Prometheus to be ready")

    def _ready(self) -> bool:
        if self._process.poll() is not None:
            pytest.fail(f"Prometheus exited with {self._process.returncode}; see {self._log.name}")
        return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def query(self, expr: str) -> dict[str, Any]:
        """`/api/v1/query`; the whole JSON answer (status, data or error)."""
        answer: dict[str, Any] = requests.post(
            f"{self.url}/api/v1/query", data={"query": expr}, timeout=10
        ).json()
        return answer

    def query_range(self, expr: str, seconds: int = 60, step: str = "5s") -> dict[str, Any]:
        """`/api/v1/query_range` over the last `seconds`."""
        end = time.time()
        answer: dict[str, Any] = requests.post(
            f"{self.url}/api/v1/query_range",
            data={"query": expr, "start": end - seconds, "end": end, "step": step},
            timeout=10,
        ).json()
        return answer

    def label_values(self, label: str, match: str) -> list[str]:
        """What a Grafana `label_values(match, label)` variable query lists."""
        answer = requests.get(
            f"{self.url}/api/v1/label/{label}/values", params={"match[]": match}, timeout=10
        ).json()
        assert answer["status"] == "success", answer
        values: list[str] = answer["data"]
        return values

    def value(self, expr: str) -> float:
        """The single value of an instant query, 0 when empty."""
        result = self.query(expr)["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    def stop(self) -> None:
        stop_processes(self._process)
        self._log.close()


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[str, list[Path]], Prometheus]]:
    """Start a Prometheus scraping a `host:port` target with the given rule files."""
    if not shutil.which("prometheus"):
        pytest.skip("prometheus is not installed")
    started: list[Prometheus] = []

    def start(target: str, rule_files: list[Path]) -> Prometheus:
        directory = tmp_path / f"prometheus-{len(started)}"
        directory.mkdir()
        prometheus = Prometheus(directory, target, rule_files)
        started.append(prometheus)
        return prometheus

    yield start
    for prometheus in started:
        prometheus.stop()


@pytest.fixture(scope="session")
def poll() -> Callable[..., None]:
    """`poll(check, timeout=…, what=…)`: wait for a condition with a deadline."""
    return wait_for


@pytest.fixture
def port() -> Callable[[], int]:
    """A factory of free loopback ports."""
    return free_port

"""The demo's alerting chain: Prometheus with the generated rules and Alertmanager with the shipped
routing, as child processes on free loopback ports, their files in one work directory.

The simulator runs `speed` times faster than the wall clock, and Prometheus and Alertmanager
keep wall time: the rules are generated with `--time-scale speed` (`for: 5m` → 5s, `[30m]` →
30s; windows never below a few scrapes) and every Alertmanager timer is divided by the same
factor, so the chain answers a simulated fault as it would a real one, `speed` times sooner.
Alertmanager's business hours for tickets are wall-clock hours: the demo drops them and shows
every ticket at once.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exporter.alerting.generate import render, write
from exporter.alerting.spec import load_spec
from exporter.errors import SmswatchError
from exporter.timestamps import format_duration_ms, parse_duration_ms

#: Debian's binary names first (packages prometheus and prometheus-alertmanager), then upstream's.
PROMETHEUS_NAMES = ("prometheus",)
ALERTMANAGER_NAMES = ("prometheus-alertmanager", "alertmanager")
INSTALL_HINT = "apt-get install prometheus prometheus-alertmanager"

#: Scrape and rule evaluation interval of the demo's Prometheus, wall time.
SCRAPE_MS = 1000
#: Alertmanager route timers, scaled with the simulation.
ROUTE_TIMERS = ("group_wait", "group_interval", "repeat_interval")
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class AlertingError(SmswatchError):
    """Prometheus or Alertmanager could not be started."""


@dataclass(frozen=True)
class Binaries:
    """Where the Prometheus and Alertmanager servers are."""

    prometheus: str
    alertmanager: str


def find_binaries(which: Callable[[str], str | None] = shutil.which) -> Binaries | None:
    """Prometheus and Alertmanager on the PATH, or None when either is missing."""
    prometheus = next(filter(None, map(which, PROMETHEUS_NAMES)), None)
    alertmanager = next(filter(None, map(which, ALERTMANAGER_NAMES)), None)
    if prometheus is None or alertmanager is None:
        return None
    return Binaries(prometheus, alertmanager)


def _scaled(text: str, speed: int) -> str:
    return format_duration_ms(max(1, round(parse_duration_ms(text) / speed)))


def _scale_route(route: dict[str, Any], speed: int) -> None:
    for key in ROUTE_TIMERS:
        if key in route:
            route[key] = _scaled(str(route[key]), speed)
    route.pop("active_time_intervals", None)
    route.pop("mute_time_intervals", None)
    for child in route.get("routes") or []:
        _scale_route(child, speed)


def demo_alertmanager_config(
    shipped: dict[str, Any], speed: int, receiver_url: str, token_file: Path
) -> dict[str, Any]:
    """The shipped Alertmanager config for the demo: the same routes, grouping and inhibitions,
    timers divided by `speed`, no business hours, every webhook pointed at `receiver_url/<name>`
    with the bearer token of `token_file`, other integrations dropped."""
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(shipped))  # a deep copy
    defaults = config.get("global") or {}
    if "resolve_timeout" in defaults:
        defaults["resolve_timeout"] = _scaled(str(defaults["resolve_timeout"]), speed)
    config.pop("time_intervals", None)
    config.pop("mute_time_intervals", None)
    _scale_route(config["route"], speed)
    for receiver in config.get("receivers") or []:
        hooks = receiver.get("webhook_configs") or []
        for key in [k for k in receiver if k.endswith("_configs")]:
            del receiver[key]
        if hooks:
            receiver["webhook_configs"] = [
                {
                    "url": f"{receiver_url}/{receiver['name']}",
                    "send_resolved": hook.get("send_resolved", True),
                    "http_config": {"authorization": {"credentials_file": str(token_file)}},
                }
                for hook in hooks
            ]
    return config


def demo_prometheus_config(rules_dir: Path, target: str, alertmanager: str) -> dict[str, Any]:
    """Prometheus scraping the exporter at `target` (job smswatch, as the rules select) and
    evaluating the rules of `rules_dir` every SCRAPE_MS, alerts sent to `alertmanager`."""
    interval = format_duration_ms(SCRAPE_MS)
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules_dir / "*.yaml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": "smswatch", "static_configs": [{"targets": [target]}]}],
    }


def write_demo_rules(spec_path: Path, out_dir: Path, speed: int) -> list[Path]:
    """The rule files generated from the spec, time-scaled by `speed` for a Prometheus that
    scrapes and evaluates every SCRAPE_MS."""
    return write(render(load_spec(spec_path), speed, scrape_ms=SCRAPE_MS), out_dir)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def dies_with_parent(argv: list[str]) -> list[str]:
    """`argv` run so that the kernel stops it when the demo dies, even by SIGKILL (util-linux
    `setpriv --pdeathsig`, Linux); as is where setpriv is missing."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class _Server:
    """One child process serving on a loopback port, its output in `<workdir>/<name>.log`."""

    def __init__(self, name: str, argv: list[str], workdir: Path, port: int) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "wb") as log_file:
            # Its own session: Ctrl-C reaches the demo only, which stops the children in order.
            self.process = subprocess.Popen(
                dies_with_parent(argv),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise AlertingError(f"{self.name} exited ({code}): {self.tail()}")
            if _ready(self.url):
                return
            time.sleep(0.2)
        raise AlertingError(f"{self.name} not ready within {timeout_s:g}s: {self.tail()}")

    def tail(self) -> str:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return " / ".join(lines[-3:]) or "no output"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class AlertingStack:
    """Alertmanager and Prometheus for one demo run; `start()` and `stop()`."""

    def __init__(
        self,
        binaries: Binaries,
        alerts_dir: Path,
        workdir: Path,
        *,
        speed: int,
        exporter_target: str,
        receiver_url: str,
        token: str,
    ) -> None:
        """`alerts_dir` holds spec.yaml and alertmanager.yml; `exporter_target` is the
        exporter's HOST:PORT; `receiver_url` takes the webhooks, authorized by `token`."""
        self.binaries = binaries
        self.alerts_dir = alerts_dir
        self.workdir = workdir
        self.speed = speed
        self.exporter_target = exporter_target
        self.receiver_url = receiver_url
        self.token = token
        self.servers: list[_Server] = []

    @property
    def prometheus_url(self) -> str:
        """Prometheus' base URL (once started)."""
        return self.servers[1].url

    @property
    def alertmanager_url(self) -> str:
        """Alertmanager's base URL (once started)."""
        return self.servers[0].url

    def start(self) -> None:
        """Write the configs and rules, start Alertmanager then Prometheus, wait until both
        are ready; AlertingError (with the end of its log) when one is not."""
        try:
            self.start_alertmanager()
            self.start_prometheus()
        except BaseException:
            self.stop()
            raise

    def start_alertmanager(self) -> None:
        """Start Alertmanager with the demo config; wait until it is ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        token_file = self.workdir / "receiver-token"
        token_file.write_text(self.token + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        shipped = yaml.safe_load((self.alerts_dir / "alertmanager.yml").read_text("utf-8"))
        config = demo_alertmanager_config(shipped, self.speed, self.receiver_url, token_file)
        data = self.workdir / "alertmanager-data"
        self._serve("alertmanager", self.binaries.alertmanager, config, [
            f"--storage.path={data}",
            "--cluster.listen-address=",  # no peers
        ])  # fmt: skip

    def start_prometheus(self) -> None:
        """Start Prometheus with the scaled rules (Alertmanager first); wait until ready."""
        rules = self.workdir / "rules"
        write_demo_rules(self.alerts_dir / "spec.yaml", rules, self.speed)
        alertmanager = self.alertmanager_url.removeprefix("http://")
        config = demo_prometheus_config(rules, self.exporter_target, alertmanager)
        data = self.workdir / "prometheus-data"
        self._serve("prometheus", self.binaries.prometheus, config, [
            f"--storage.tsdb.path={data}",
            # Alerts go to Alertmanager a second after they fire, not a minute.
            "--rules.alert.resend-delay=1s",
        ])  # fmt: skip

    def _serve(self, name: str, binary: str, config: dict[str, Any], flags: list[str]) -> None:
        """Write `config` to `<name>.yml`, start `binary` on a free port, wait until ready."""
        path = self.workdir / f"{name}.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        port = free_port()
        argv = [binary, f"--config.file={path}", f"--web.listen-address=127.0.0.1:{port}", *flags]
        server = _Server(name, argv, self.workdir, port)
        self.servers.append(server)
        server.wait_ready(READY_TIMEOUT_S)

    def stop(self) -> None:
        """Stop Prometheus, then Alertmanager (each: SIGTERM, SIGKILL after a grace)."""
        for server in reversed(self.servers):
            with contextlib.suppress(OSError):
                server.stop()

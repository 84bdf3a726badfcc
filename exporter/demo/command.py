"""`smswatch demo`: the simulator and the exporter in one process and, when Prometheus and
Alertmanager are installed, the alerting chain with a receiver printing every page.

Without `--scenario` and `--start`, a demo with alerting starts its simulated day on busy
traffic (the alerts' minimum-traffic guards keep a night quiet) and plays the paced scenario
(exporter/simulator/demo_scenario.yaml): each of the five causes pages and then resolves.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import exporter
from exporter.demo.receiver import NotificationPrinter, format_offset
from exporter.demo.stack import INSTALL_HINT, AlertingError, AlertingStack, find_binaries
from exporter.errors import ConfigError
from exporter.timestamps import format_rfc3339_ms, parse_rfc3339_ms

if TYPE_CHECKING:
    from exporter.simulator.settings import SimulatorSettings

#: Local (Beijing) hours of the simulated day when traffic is busy enough for every alert.
BUSY_FROM_HOUR, BUSY_UNTIL_HOUR, BUSY_START_HOUR = 9, 13, 10
BEIJING = timedelta(hours=8)

DEMO_SCENARIO = "demo_scenario.yaml"

#: What each fault kind of the paced scenario is, in the five causes' words.
FAULT_CAUSES = {
    "gateway_outage": "gateway",
    "integration_drop": "integration",
    "invalid_numbers": "invalid_number",
    "weak_signal": "unreachable",
    "terminal_sms_off": "terminal_config",
}


def busy_start_ms(now_s: float) -> int:
    """Where a demo with alerting starts its simulated day: now when Beijing's morning is busy,
    else the next 10:00 in Beijing. Never before now: the simulated clock stays ahead of the
    wall clock that Prometheus judges freshness by."""
    now = datetime.fromtimestamp(int(now_s), UTC)
    local = now + BEIJING
    if BUSY_FROM_HOUR <= local.hour < BUSY_UNTIL_HOUR:
        return int(now.timestamp()) * 1000
    start = local.replace(hour=BUSY_START_HOUR, minute=0, second=0)
    if start < local:
        start += timedelta(days=1)
    return int((start - BEIJING).timestamp()) * 1000


def demo_scenario_path() -> str:
    """The paced scenario shipped with the simulator."""
    return str(resources.files("exporter.simulator").joinpath(DEMO_SCENARIO))


def find_alerts_dir(given: str | None) -> Path | None:
    """The folder with spec.yaml and alertmanager.yml: `given`, else the checkout's alerts/
    beside the package, else the installed copy (<prefix>/share/smswatch/alerts, see
    pyproject.toml), else ./alerts."""
    candidates = (
        [Path(given)]
        if given
        else [
            Path(exporter.__file__).resolve().parents[1] / "alerts",
            Path(sys.prefix) / "share" / "smswatch" / "alerts",
            Path("alerts"),
        ]
    )
    for path in candidates:
        if (path / "spec.yaml").is_file() and (path / "alertmanager.yml").is_file():
            return path
    if given:
        raise ConfigError(f"no spec.yaml and alertmanager.yml in {given}", path="--alerts.dir")
    return None


def _alerting_speed(speed: float) -> int:
    scale = round(speed)
    if scale < 1 or abs(scale - speed) > 1e-9:
        raise ConfigError(
            f"must be a whole number >= 1 for the time-scaled alert rules, got {speed:g} "
            "(or pass --no-alerting)",
            path="--speed",
        )
    return scale


def _print(text: str = "") -> None:
    print(text, flush=True)


def run_demo(
    args: argparse.Namespace,
    *,
    listen: tuple[str, int],
    simulator_listen: tuple[str, int],
    simulator_settings: Callable[[argparse.Namespace], SimulatorSettings],
    wait_for_stop: Callable[[Callable[[], None]], None],
) -> int:
    """Run the demo until Ctrl-C (SIGINT) or SIGTERM; everything started is stopped and the
    work directory removed on the way out. `listen` and `simulator_listen` are the bind
    addresses of the exporter and the simulator."""
    from exporter.app import Exporter
    from exporter.config import demo_config
    from exporter.lookup.commands import demo_access
    from exporter.simulator.server import SimulatorServer

    binaries = None if args.no_alerting else find_binaries()
    alerts_dir = None if binaries is None else find_alerts_dir(args.alerts_dir)
    speed = _alerting_speed(args.speed) if alerts_dir is not None else 0
    if alerts_dir is not None:
        if args.start is None:
            args.start = format_rfc3339_ms(busy_start_ms(time.time()))
        if args.scenario is None:
            args.scenario = demo_scenario_path()
    settings = simulator_settings(args)
    workdir = Path(tempfile.mkdtemp(prefix="smswatch-demo-"))
    stops: list[Callable[[], None]] = []
    try:
        simulator = SimulatorServer(settings, *simulator_listen)
        simulator.start()
        stops.append(simulator.stop)
        host, port = listen
        config = demo_config(
            simulator.url,
            state_path=args.state_path or str(workdir / "state.sqlite"),
            speed=args.speed,
            missing_after_ms=settings.missing_after_ms,
            give_up_after_ms=settings.give_up_after_ms,
        )
        config, token = demo_access(config, workdir)
        # The exporter's clock is the simulated one: its feeds run `--speed` times faster than
        # the wall clock and would otherwise be capped as a clock ahead of ours (max_clock_skew).
        clock = simulator.simulation.clock
        demo_exporter = Exporter(config, host, port, clock=lambda: clock.now_ms() / 1000)
        demo_exporter.start()
        stops.append(demo_exporter.stop)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        exporter_url = f"http://{shown}:{demo_exporter.port}"

        stack = None
        if alerts_dir is not None and binaries is not None:
            printer = NotificationPrinter(
                sys.stdout,
                secrets.token_urlsafe(24),
                sim_offset_ms=lambda: clock.now_ms() - settings.start_ms,
            )
            printer.start()
            stops.append(printer.stop)
            stack = AlertingStack(
                binaries,
                alerts_dir,
                workdir / "alerting",
                speed=speed,
                exporter_target=f"{shown}:{demo_exporter.port}",
                receiver_url=printer.url,
                token=printer.token,
            )
            stops.append(stack.stop)
            try:
                stack.start()
            except AlertingError as exc:
                _print(f"smswatch demo: alerting not started: {exc}")
                stack = None

        _print("smswatch demo is running (Ctrl-C stops):")
        _print(f"  exporter      {exporter_url}/")
        _print(f"  metrics       {exporter_url}/metrics")
        _print(f"  support desk  {exporter_url}/lookup  (token {token})")
        _print(f"  simulator     {simulator.url}/")
        _print(f"  ground truth  {simulator.url}/sim/v1/truth")
        if stack is not None:
            _print(f"  prometheus    {stack.prometheus_url}/alerts")
            _print(f"  alertmanager  {stack.alertmanager_url}/")
            _print_timeline(simulator.simulation.faults(), settings.start_ms, args.speed)
        elif args.no_alerting:
            pass
        elif binaries is None:
            _print(
                "  alerting      off: Prometheus and Alertmanager are not on the PATH. To see "
                f"the faults page and resolve here, install them (Debian/Ubuntu: `sudo "
                f"{INSTALL_HINT}`) and run the demo again."
            )
        elif alerts_dir is None:
            _print(
                "  alerting      off: no alerts/ folder (spec.yaml, alertmanager.yml) found; "
                "run from a smswatch checkout or pass --alerts.dir"
            )

        def stop() -> None:
            while stops:
                stops.pop()()

        wait_for_stop(stop)
    finally:
        while stops:
            stops.pop()()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _print_timeline(faults: list[dict[str, Any]], start_ms: int, speed: float) -> None:
    """The faults to come, in simulated offsets and wall seconds, and what a line means."""
    _print(
        f"  simulated day starts {format_rfc3339_ms(start_ms)}, {speed:g}x: "
        f"one simulated minute every {60 / speed:g} wall seconds"
    )
    for fault in faults:
        kind = str(fault.get("kind"))
        start = parse_rfc3339_ms(fault["start"]) - start_ms
        end = parse_rfc3339_ms(fault["end"]) - start_ms
        cause = FAULT_CAUSES.get(kind, "")
        _print(
            f"  fault {format_offset(start):>6} to {format_offset(end):>6} "
            f"(wall +{start / 1000 / speed:.0f}s): {kind}" + (f", cause {cause}" if cause else "")
        )
    _print(
        "Pages arrive below, one line each: wall time, simulated time, firing or resolved, "
        "alert, severity, cause, where | summary | runbook."
    )

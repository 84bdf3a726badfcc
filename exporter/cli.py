"""The `smswatch` command line: parses flags, wires the modules together, maps errors to exit codes.

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration. Nothing imports this module.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING

from exporter import __version__, logs
from exporter.errors import ConfigError, SmswatchError

if TYPE_CHECKING:
    from exporter.simulator.settings import SimulatorSettings

log = logging.getLogger(__name__)

EXPORTER_ADDRESS = ":8479"
SIMULATOR_ADDRESS = ":8480"


def parse_listen_address(value: str) -> tuple[str, int]:
    """Split `HOST:PORT` (or `:PORT`, `[::1]:PORT`) into a bind host and a port."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"not HOST:PORT: {value!r}", path="--web.listen-address")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


def _add_common(parser: argparse.ArgumentParser, address: str) -> None:
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=address,
        help=f"address to serve HTTP on, HOST:PORT (default {address})",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level (default info)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        default="logfmt",
        choices=["logfmt", "json"],
        help="log line format (default logfmt)",
    )


def _add_state(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--state.path",
        dest="state_path",
        default=default,
        help="SQLite state file (overrides the config's state.path)"
        + (f" (default {default})" if default else ""),
    )


def _add_simulator(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("simulator")
    group.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    group.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)"
    )
    group.add_argument(
        "--start", default=None, help="simulated start time, RFC 3339 (default: now)"
    )
    group.add_argument(
        "--traffic-for",
        dest="traffic_for",
        default=None,
        help="simulated duration after which no new transactions start, e.g. 2h (default: never)",
    )
    group.add_argument(
        "--scenario",
        default=None,
        help="fault timeline YAML (default: the built-in scenario with every cause in the "
        "first simulated hour; 'none' for no faults)",
    )
    group.add_argument(
        "--rate",
        type=float,
        default=2.0,
        help="card transactions per simulated second at the daily peak (default 2)",
    )
    group.add_argument(
        "--missing-after",
        dest="missing_after",
        default="5m",
        help="grace before a receipt without SMS is missing (default 5m)",
    )
    group.add_argument(
        "--sms-api",
        dest="sms_api",
        default="generic",
        choices=["generic", "twilio", "vonage", "tencent", "aliyun"],
        help="the shape of the SMS gateway API served: the generic feed or a provider's API "
        "(default generic)",
    )
    group.add_argument(
        "--sms-push-url",
        dest="sms_push_url",
        default=None,
        help="where a pushing shape (aliyun) POSTs its delivery reports, e.g. "
        "http://127.0.0.1:8479/push/aliyun?secret=...",
    )
    group.add_argument(
        "--give-up-after",
        dest="give_up_after",
        default="30m",
        help="time after submit when a message without final status is unknown (default 30m)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="smswatch",
        description="Monitoring for card-transaction SMS: POS receipt printed, cardholder SMS "
        "missing. Polls the bank SMS gateway and the POS acquirer, reconciles, exports metrics.",
    )
    parser.add_argument("--version", action="version", version=f"smswatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the simulator and the exporter in one process",
        description="Run the built-in simulator (a bank SMS gateway and a POS acquirer with "
        "injected faults) and the exporter polling it, in one process. Ctrl-C stops.",
    )
    _add_common(demo, EXPORTER_ADDRESS)
    _add_state(demo, None)
    demo.add_argument(
        "--simulator.listen-address",
        dest="simulator_address",
        default="127.0.0.1:8480",
        help="where the simulator serves (default 127.0.0.1:8480)",
    )
    _add_simulator(demo)
    demo.set_defaults(func=_cmd_demo)

    simulate = sub.add_parser(
        "simulate",
        help="run the simulator alone",
        description="Serve a simulated bank SMS gateway and POS acquirer over HTTP.",
    )
    _add_common(simulate, SIMULATOR_ADDRESS)
    _add_simulator(simulate)
    simulate.set_defaults(func=_cmd_simulate)

    run = sub.add_parser(
        "run",
        help="run the exporter against real (or simulated) APIs",
        description="Poll the configured SMS gateways and acquirers and serve /metrics.",
    )
    run.add_argument("--config.file", dest="config_file", required=True, help="YAML config")
    _add_common(run, EXPORTER_ADDRESS)
    _add_state(run, None)
    run.add_argument(
        "--web.config.file",
        dest="web_config_file",
        default=None,
        help="TLS and basic auth, in the exporter-toolkit web config format",
    )
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser(
        "check-config",
        help="validate a config file",
        description="Validate a config file; print the first error with its field path.",
    )
    check.add_argument("file", help="YAML config to validate")
    check.set_defaults(func=_cmd_check_config)

    return parser


def _wait_for_stop(stop: Callable[[], None]) -> None:
    """Block until SIGINT or SIGTERM, then call `stop`."""
    done = threading.Event()

    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        done.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    while not done.wait(0.5):
        pass
    stop()


def _simulator_settings(args: argparse.Namespace) -> SimulatorSettings:
    from exporter.simulator.settings import settings_from_options
    from exporter.timestamps import parse_duration_ms, parse_rfc3339_ms

    try:
        start_ms = parse_rfc3339_ms(args.start) if args.start else None
        traffic_for_ms = parse_duration_ms(args.traffic_for) if args.traffic_for else None
        missing_after_ms = parse_duration_ms(args.missing_after)
        give_up_after_ms = parse_duration_ms(args.give_up_after)
    except ValueError as exc:
        raise ConfigError(str(exc), path="simulator flags") from exc
    if args.speed <= 0:
        raise ConfigError("must be > 0", path="--speed")
    if args.rate <= 0:
        raise ConfigError("must be > 0", path="--rate")
    return settings_from_options(
        seed=args.seed,
        speed=args.speed,
        start_ms=start_ms,
        traffic_for_ms=traffic_for_ms,
        scenario=args.scenario,
        rate=args.rate,
        missing_after_ms=missing_after_ms,
        give_up_after_ms=give_up_after_ms,
        sms_api=args.sms_api,
        push_url=args.sms_push_url,
    )


def _cmd_simulate(args: argparse.Namespace) -> int:
    from exporter.simulator.server import SimulatorServer

    host, port = parse_listen_address(args.listen_address)
    server = SimulatorServer(_simulator_settings(args), host, port)
    server.start()
    print(f"smswatch simulator serving on {server.url}", flush=True)
    print(f"  ground truth: {server.url}/sim/v1/truth", flush=True)
    _wait_for_stop(server.stop)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from exporter.app import Exporter
    from exporter.config import demo_config
    from exporter.simulator.server import SimulatorServer

    sim_host, sim_port = parse_listen_address(args.simulator_address)
    settings = _simulator_settings(args)
    simulator = SimulatorServer(settings, sim_host, sim_port)
    simulator.start()
    host, port = parse_listen_address(args.listen_address)
    config = demo_config(
        simulator.url,
        state_path=args.state_path,
        speed=args.speed,
        missing_after_ms=settings.missing_after_ms,
        give_up_after_ms=settings.give_up_after_ms,
    )
    exporter = Exporter(config, host, port)
    try:
        exporter.start()
    except BaseException:
        simulator.stop()
        raise
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print("smswatch demo is running (Ctrl-C stops):", flush=True)
    print(f"  exporter      http://{shown}:{exporter.port}/", flush=True)
    print(f"  metrics       http://{shown}:{exporter.port}/metrics", flush=True)
    print(f"  simulator     {simulator.url}/", flush=True)
    print(f"  ground truth  {simulator.url}/sim/v1/truth", flush=True)

    def stop() -> None:
        exporter.stop()
        simulator.stop()

    _wait_for_stop(stop)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from exporter.app import Exporter
    from exporter.config import load_config

    config = load_config(args.config_file, state_path=args.state_path)
    host, port = parse_listen_address(args.listen_address)
    exporter = Exporter(config, host, port, web_config_file=args.web_config_file)
    exporter.start()
    log.info("exporter started", extra={"address": f"{host}:{exporter.port}"})
    _wait_for_stop(exporter.stop)
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    from exporter.config import load_config

    config = load_config(args.file)
    names = ", ".join(source.name for source in config.sources)
    print(f"{args.file}: ok ({len(config.sources)} sources: {names})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `smswatch` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logs.setup(getattr(args, "log_level", "info"), getattr(args, "log_format", "logfmt"))
    try:
        code: int = args.func(args)
        return code
    except SmswatchError as exc:
        print(f"smswatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"smswatch: error: {exc}", file=sys.stderr)
        return 1

"""The `smswatch` command line: parses flags, wires the modules together, maps errors to exit codes.

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration. Nothing imports this module.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING

from exporter import __version__, logs
from exporter.accounts.commands import add_account_commands
from exporter.errors import ConfigError, SmswatchError
from exporter.lookup.commands import add_commands as add_lookup_commands
from exporter.probes.command import add_command as add_probe_command
from exporter.vocabulary import LANGUAGES

if TYPE_CHECKING:
    from pathlib import Path

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
    _add_log_level(parser, "info")
    parser.add_argument(
        "--log.format",
        dest="log_format",
        default="logfmt",
        choices=["logfmt", "json"],
        help="log line format (default logfmt)",
    )


def _add_log_level(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default=default,
        choices=["debug", "info", "warning", "error"],
        help=f"log level (default {default})",
    )


def _add_state(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--state.path",
        dest="state_path",
        default=default,
        help="SQLite state file (overrides the config's state.path)"
        + (f" (default {default})" if default else ""),
    )


def _add_simulator(parser: argparse.ArgumentParser, speed: float) -> None:
    """The simulator's flags; their defaults are the simulator's own (SimulatorSettings)."""
    from exporter.simulator.settings import SimulatorSettings
    from exporter.simulator.shapes import SHAPES
    from exporter.timestamps import format_duration_ms

    defaults = SimulatorSettings()
    missing_after = format_duration_ms(defaults.missing_after_ms)
    give_up_after = format_duration_ms(defaults.give_up_after_ms)
    group = parser.add_argument_group("simulator")
    group.add_argument(
        "--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})"
    )
    group.add_argument(
        "--speed",
        type=float,
        default=speed,
        help=f"simulated seconds per wall second (default {speed:g})",
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
        default=defaults.rate,
        help="card transactions per simulated second at the daily peak "
        f"(default {defaults.rate:g})",
    )
    group.add_argument(
        "--missing-after",
        dest="missing_after",
        default=missing_after,
        help=f"grace before a receipt without SMS is missing (default {missing_after})",
    )
    group.add_argument(
        "--sms-api",
        dest="sms_api",
        default=defaults.sms_api,
        choices=list(SHAPES),
        help="the shape of the SMS gateway API served: the generic feed or a provider's API "
        f"(default {defaults.sms_api})",
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
        default=give_up_after,
        help="time after submit when a message without final status is unknown "
        f"(default {give_up_after})",
    )
    group.add_argument(
        "--handset-dir",
        dest="handset_dir",
        default=None,
        help="a canary test handset: canaries sent to POST /sms/v1/send that are delivered "
        "land here as gammu-smsd inbox files (default: no handset)",
    )


def _add_report_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`smswatch report`: one compliance report (PDF, HTML, CSV) from Prometheus."""
    from exporter.reports.objectives import DEFAULT_OBJECTIVES

    report = sub.add_parser(
        "report",
        help="write a compliance report (PDF, HTML, CSV) for a period",
        description="Write a compliance report for one period from the figures in Prometheus: "
        "coverage, delivery, latency, causes, incidents, terminals, data completeness. "
        "Periods align to the calendar of --timezone: daily = the last full day before --end "
        "(default now), weekly = the last full ISO week (Monday to Monday), monthly = the last "
        "full month, custom = [--from, --to). Exit 1 when Prometheus fails or has no data, "
        "2 on bad options.",
    )
    report.add_argument(
        "--prometheus.url",
        dest="prometheus_url",
        default=None,
        help="Prometheus base URL, e.g. http://prometheus:9090 (required unless --send)",
    )
    report.add_argument(
        "--period",
        default="daily",
        choices=["daily", "weekly", "monthly", "custom"],
        help="the period to report on (default daily)",
    )
    report.add_argument(
        "--end",
        default=None,
        help="report the last full period before this time (default now); "
        "RFC 3339, YYYY-MM-DD or YYYY-MM-DDTHH:MM (local to --timezone)",
    )
    report.add_argument(
        "--from", dest="from_time", default=None, help="start of a custom period (inclusive)"
    )
    report.add_argument(
        "--to", dest="to_time", default=None, help="end of a custom period (exclusive)"
    )
    report.add_argument(
        "--timezone",
        default="UTC",
        help="IANA time zone of the calendar, e.g. Asia/Shanghai (default UTC)",
    )
    report.add_argument(
        "--lang", default="en", choices=["en", "zh-CN"], help="report language (default en)"
    )
    report.add_argument(
        "--out", default=None, help="directory to write the report into (required unless --send)"
    )
    report.add_argument(
        "--format",
        dest="formats",
        default="pdf,html,csv",
        help="comma-separated outputs among pdf, html, csv (default all)",
    )
    report.add_argument(
        "--objective.delivered",
        dest="delivered_ratio",
        type=float,
        default=DEFAULT_OBJECTIVES.delivered_ratio,
        help="SMS delivery objective (bank-side SLI per gateway and carrier) as a fraction "
        f"(default {DEFAULT_OBJECTIVES.delivered_ratio})",
    )
    report.add_argument(
        "--objective.receipt-notification",
        dest="receipt_ratio",
        type=float,
        default=DEFAULT_OBJECTIVES.receipt_notification_ratio,
        help="receipt notification objective (bank-side SLI per acquirer) as a fraction "
        f"(default {DEFAULT_OBJECTIVES.receipt_notification_ratio})",
    )
    report.add_argument(
        "--objective.within-latency",
        dest="within_ratio",
        type=float,
        default=DEFAULT_OBJECTIVES.within_latency_ratio,
        help="objective for receipts notified within "
        f"{DEFAULT_OBJECTIVES.latency_seconds} s (default "
        f"{DEFAULT_OBJECTIVES.within_latency_ratio})",
    )
    report.add_argument(
        "--prometheus.matchers",
        dest="matchers",
        default="",
        help='extra PromQL matchers for smswatch series, e.g. job="smswatch"',
    )
    report.add_argument(
        "--alerts.matchers",
        dest="alert_matchers",
        default="",
        help="extra PromQL matchers for the ALERTS series read as incidents",
    )
    report.add_argument(
        "--prometheus.timeout",
        dest="timeout",
        default="2m",
        help="timeout of each Prometheus request (default 2m)",
    )
    report.add_argument(
        "--mail-to",
        dest="mail_to",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="e-mail the report to this address (repeatable, or comma-separated; default: "
        "reports.mail.to of --config.file), through the SMTP server of --config.file",
    )
    report.add_argument(
        "--send",
        default=None,
        metavar="DIR",
        help="mail the report already written in DIR (nothing is generated)",
    )
    report.add_argument(
        "--config.file",
        dest="config_file",
        default=None,
        help="the exporter's config file, whose reports.mail block (sender, SMTP server, "
        "retries) mails the report",
    )
    _add_log_level(report, "warning")

    def _cmd_report(args: argparse.Namespace) -> int:
        from exporter.reports.command import run_report

        return run_report(args)

    report.set_defaults(func=_cmd_report)


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
        help="run the simulator and the exporter in one process (and the alerting chain)",
        description="Run the built-in simulator (a bank SMS gateway and a POS acquirer with "
        "injected faults) and the exporter polling it, in one process. When prometheus and "
        "prometheus-alertmanager (or alertmanager) are on the PATH, also run them with the "
        "generated rules and the shipped routing, time-scaled to --speed, and print every "
        "page in the terminal as it arrives; unless --start and --scenario say otherwise, the "
        "simulated day then starts on busy traffic with a paced scenario in which every cause "
        "pages and resolves within minutes. Ctrl-C stops everything.",
    )
    _add_common(demo, EXPORTER_ADDRESS)
    _add_state(demo, None)
    demo.add_argument(
        "--simulator.listen-address",
        dest="simulator_address",
        default="127.0.0.1:8480",
        help="where the simulator serves (default 127.0.0.1:8480)",
    )
    _add_simulator(demo, 60.0)
    alerting = demo.add_argument_group("alerting")
    alerting.add_argument(
        "--no-alerting",
        dest="no_alerting",
        action="store_true",
        help="do not start Prometheus and Alertmanager even when they are on the PATH",
    )
    alerting.add_argument(
        "--alerts.dir",
        dest="alerts_dir",
        default=None,
        help="folder with the alert spec.yaml and alertmanager.yml (default: the checkout's "
        "alerts/, else ./alerts)",
    )
    demo.set_defaults(func=_cmd_demo)

    simulate = sub.add_parser(
        "simulate",
        help="run the simulator alone",
        description="Serve a simulated bank SMS gateway and POS acquirer over HTTP.",
    )
    _add_common(simulate, SIMULATOR_ADDRESS)
    _add_simulator(simulate, 1.0)
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

    _add_state_commands(sub)
    _add_dashboards_commands(sub)
    _add_report_commands(sub)
    _add_rules_commands(sub)
    _add_backtest_command(sub)
    add_lookup_commands(sub)
    _add_kubernetes_commands(sub)
    add_account_commands(sub)
    add_probe_command(sub)
    return parser


def _add_state_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`smswatch state quarantine` and `smswatch state migrate`."""
    state = sub.add_parser(
        "state",
        help="inspect or move the state",
        description="Read what the exporter keeps in its SQLite state file, or move it into "
        "PostgreSQL.",
    )
    state_sub = state.add_subparsers(dest="state_command", metavar="COMMAND", required=True)
    quarantine = state_sub.add_parser(
        "quarantine",
        help="list records refused because they could not be stored",
        description="List quarantined records, newest first: records that parsed but held a "
        'value the state store cannot keep (counted smswatch_records_total{result="invalid"}'
        "). Phone and card numbers are masked.",
    )
    quarantine.add_argument("--config.file", dest="config_file", help="config (its state.path)")
    _add_state(quarantine, None)
    quarantine.add_argument("--source", default="", help="only this source")
    quarantine.add_argument("--limit", type=int, default=50, help="at most N (default 50)")
    quarantine.add_argument("--output", choices=("text", "json"), default="text")
    _add_log_level(quarantine, "warning")
    quarantine.set_defaults(func=_cmd_state_quarantine)
    migrate = state_sub.add_parser(
        "migrate",
        help="move a SQLite state file into PostgreSQL",
        description="Copy every row of a SQLite state file into an empty PostgreSQL database "
        "(in one transaction), then verify that counters, gauges, open receipts and the rows "
        "per table are equal. Stop the exporter first. The password comes from PGPASSWORD, "
        "~/.pgpass or --password-file, never from the DSN.",
    )
    migrate.add_argument("--from", dest="source", required=True, help="the SQLite state file")
    migrate.add_argument("--to", dest="dsn", required=True, help="PostgreSQL DSN (no password)")
    migrate.add_argument("--password-file", default="", help="a file holding the password")
    _add_log_level(migrate, "warning")
    migrate.set_defaults(func=_cmd_state_migrate)


def _cmd_state_quarantine(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict
    from pathlib import Path

    from exporter.store import Store, open_store
    from exporter.timestamps import format_rfc3339_ms

    path = args.state_path
    config = None
    if args.config_file:
        from exporter.config import load_config

        config = load_config(args.config_file, state_path=path)
        path = config.state_path
        if config.state_backend != "postgresql" or args.state_path:
            config = None  # the SQLite file
    if not path:
        raise ConfigError("give --state.path or --config.file", path="--state.path")
    if config is None and not Path(path).is_file():
        raise ConfigError(f"no state file at {path}", path="--state.path")
    if args.limit < 1:
        raise ConfigError(f"must be at least 1: {args.limit}", path="--limit")
    store = Store(path) if config is None else open_store(config)
    try:
        entries = store.quarantined(args.limit, args.source)
    finally:
        store.close()
    if args.output == "json":
        print(json.dumps({"quarantined": [asdict(e) for e in entries]}, indent=2))
        return 0
    if not entries:
        print("no quarantined records")
    for e in entries:
        print(f"{format_rfc3339_ms(e.at_ms)}  source={e.source}  {e.kind}  {e.reason}")
        print(f"    {e.record}")
    return 0


def _cmd_state_migrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from psycopg.conninfo import conninfo_to_dict

    from exporter.state_migration import migrate_state

    try:
        if conninfo_to_dict(args.dsn).get("password"):
            raise ConfigError("must not hold a password: use PGPASSWORD or --password-file")
    except ConfigError as exc:
        raise ConfigError(str(exc), path="--to") from None
    except Exception as exc:  # psycopg.ProgrammingError: not a connection string
        raise ConfigError(f"not a PostgreSQL connection string: {exc}", path="--to") from None
    password = ""
    if args.password_file:
        try:
            password = Path(args.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", path="--password-file") from exc
    moved = migrate_state(args.source, args.dsn, password)
    print(
        f"migrated {sum(moved.rows.values())} rows ({moved.counter_series} counter series, "
        f"{moved.open_receipts} open receipts), verified equal"
    )
    for table, n in moved.rows.items():
        print(f"  {table}: {n}")
    return 0


def _add_rules_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`smswatch rules generate`: Prometheus rule files from the alert spec."""
    rules = sub.add_parser(
        "rules",
        help="alert and recording rules",
        description="Prometheus alert and recording rules generated from alerts/spec.yaml.",
    )
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="COMMAND", required=True)
    generate = rules_sub.add_parser(
        "generate",
        help="render alerts/rules/*.yaml from the spec",
        description="Render the rule files from the alert spec (objectives and thresholds in "
        "one place). With --check, write nothing and exit 1 when the files on disk differ.",
    )
    generate.add_argument(
        "--spec", default="alerts/spec.yaml", help="alert spec (default alerts/spec.yaml)"
    )
    generate.add_argument(
        "--out", default="alerts/rules", help="output directory (default alerts/rules)"
    )
    generate.add_argument(
        "--time-scale",
        dest="time_scale",
        type=int,
        default=1,
        help="divide every wall-clock duration by N, for tests against a simulator running "
        "N times faster (default 1)",
    )
    generate.add_argument(
        "--scrape-interval",
        dest="scrape_interval",
        default=None,
        help="scrape interval of the Prometheus that runs the rules, in its own (wall) time, "
        "e.g. 1s: windows and freshness thresholds never go below a few of them "
        "(default: the spec's exporter.scrape_interval)",
    )
    generate.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the files in --out differ from what the spec generates",
    )
    generate.add_argument(
        "--lang",
        choices=LANGUAGES,
        default=None,
        help="language of the summaries, descriptions and linked runbooks: en into --out, "
        "zh-CN into --out/zh-CN (default: every language)",
    )

    def run(args: argparse.Namespace) -> int:
        from pathlib import Path

        from exporter.alerting.generate import render, rules_subdir, write
        from exporter.alerting.spec import load_spec
        from exporter.timestamps import parse_duration_ms

        if args.time_scale < 1:
            raise ConfigError("must be an integer >= 1", path="--time-scale")
        scrape_ms = None
        if args.scrape_interval is not None:
            try:
                scrape_ms = parse_duration_ms(args.scrape_interval)
            except ValueError as exc:
                raise ConfigError(str(exc), path="--scrape-interval") from exc
            if scrape_ms <= 0:
                raise ConfigError("must be > 0", path="--scrape-interval")
        spec = load_spec(args.spec)
        status = 0
        for lang in [args.lang] if args.lang else LANGUAGES:
            files = render(spec, args.time_scale, scrape_ms, lang)
            out = Path(args.out) / rules_subdir(lang)
            status = max(status, _write_or_check(files, out, args.check, "rules", write))
        return status

    generate.set_defaults(func=run)


def _add_kubernetes_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`smswatch kubernetes generate`: the generated manifests of deploy/kubernetes/base."""
    kubernetes = sub.add_parser(
        "kubernetes",
        help="generated Kubernetes manifests",
        description="The parts of deploy/kubernetes that come from other files.",
    )
    actions = kubernetes.add_subparsers(dest="kubernetes_command", metavar="ACTION", required=True)
    generate = actions.add_parser(
        "generate",
        help="write the PrometheusRules and the dashboard ConfigMaps",
        description="Write a PrometheusRule per rule file generated from the alert spec and a "
        "ConfigMap per dashboard of --dashboards (for the Grafana sidecar), with the "
        "kustomization listing them. With --check, write nothing and exit 1 when they differ.",
    )
    generate.add_argument(
        "--spec", default="alerts/spec.yaml", help="alert spec (default alerts/spec.yaml)"
    )
    generate.add_argument(
        "--dashboards",
        default="dashboards",
        help="directory of the dashboards' JSON (default dashboards)",
    )
    generate.add_argument(
        "--out",
        default="deploy/kubernetes/base/generated",
        help="output directory (default deploy/kubernetes/base/generated)",
    )
    generate.add_argument(
        "--check", action="store_true", help="exit 1 if the files in --out differ"
    )

    def run(args: argparse.Namespace) -> int:
        from pathlib import Path

        from exporter.kubernetes import render, write

        files = render(args.spec, args.dashboards)
        return _write_or_check(files, Path(args.out), args.check, "kubernetes", write)

    generate.set_defaults(func=run)


def _write_or_check(
    files: dict[str, str],
    out: Path,
    check: bool,
    command: str,
    write: Callable[[dict[str, str], Path], list[Path]],
) -> int:
    """Write generated `files` into `out`, or with `check` name each drifted one and exit 1."""
    from exporter.alerting.generate import drift

    if check:
        problems = drift(files, out)
        for problem in problems:
            print(f"smswatch: {problem}", file=sys.stderr)
        if problems:
            print(f"smswatch: run `smswatch {command} generate` and commit", file=sys.stderr)
            return 1
        print(f"{out}: {len(files)} files up to date")
        return 0
    for path in write(files, out):
        print(path)
    return 0


def _add_backtest_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`smswatch backtest`: simulated days through the pipeline, Prometheus and the rules."""
    from exporter.backtest import DEFAULT_START
    from exporter.simulator.settings import SimulatorSettings

    defaults = SimulatorSettings()
    backtest = sub.add_parser(
        "backtest",
        help="replay simulated days through the real pipeline and alert rules",
        description="Run N simulated days (seeded, with a fault scenario) through the simulator "
        "and the real exporter pipeline without waiting on the clock, write every scrape as "
        "OpenMetrics, backfill a Prometheus TSDB with promtool, evaluate the recording and "
        "alerting rules of --rules.dir with Prometheus' own engine (for, keep_firing_for), "
        "apply the inhibit rules of --alertmanager.config, and report episodes and pages per "
        "alert, detection per fault, and false pages. Needs prometheus and promtool >= 2.42 "
        "on PATH. Prints a table; --out DIR also writes backtest.json and backtest.txt.",
    )
    backtest.add_argument(
        "--days", type=float, default=7.0, help="simulated days to run (default 7)"
    )
    backtest.add_argument(
        "--start",
        default=DEFAULT_START,
        help=f"simulated start, RFC 3339 (default {DEFAULT_START}, a Monday, 08:00 in Beijing)",
    )
    backtest.add_argument(
        "--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})"
    )
    backtest.add_argument(
        "--rate",
        type=float,
        default=defaults.rate,
        help="card transactions per simulated second at the daily peak "
        f"(default {defaults.rate:g})",
    )
    backtest.add_argument(
        "--scenario",
        default="none",
        help="fault timeline YAML in the simulator's scenario format (offsets from --start); "
        "default none: healthy traffic",
    )
    backtest.add_argument(
        "--scrape-interval",
        dest="scrape_interval",
        default="60s",
        help="simulated time between two steps; each step polls every source once and "
        "scrapes once (default 60s; 15s is what production runs, 4x slower to replay)",
    )
    backtest.add_argument(
        "--evaluation-interval",
        dest="evaluation_interval",
        default=None,
        help="rule evaluation interval for groups without their own (default: the scrape interval)",
    )
    backtest.add_argument(
        "--grace",
        default="30m",
        help="how long after a fault's end an alert that starts firing is still its "
        "detection, not a false page (default 30m)",
    )
    backtest.add_argument(
        "--rules.dir",
        dest="rules_dir",
        default="alerts/rules",
        help="directory of the rule files Prometheus loads (default alerts/rules)",
    )
    backtest.add_argument(
        "--alertmanager.config",
        dest="alertmanager_config",
        default="alerts/alertmanager.yml",
        help="Alertmanager config whose inhibit_rules apply (default alerts/alertmanager.yml)",
    )
    backtest.add_argument(
        "--out", default=None, help="directory to write backtest.json and backtest.txt into"
    )
    backtest.add_argument(
        "--work-dir",
        dest="work_dir",
        default=None,
        help="keep the work files (TSDB, state) here instead of a deleted temporary directory",
    )
    backtest.add_argument(
        "--reuse-replay",
        dest="reuse_replay",
        action="store_true",
        help="evaluate the replay kept in --work-dir by an earlier run with the same days, "
        "start, seed, rate, scenario and scrape interval, instead of replaying (to compare "
        "rule variants quickly)",
    )
    backtest.add_argument(
        "--all-series",
        dest="all_series",
        action="store_true",
        help="backfill every exported series, not only those the rules read",
    )
    backtest.add_argument(
        "--all-recording-rules",
        dest="all_recording_rules",
        action="store_true",
        help="evaluate every recording rule, not only those the alerting rules read "
        "(the 30-day error budget series of dashboards cost much and page nobody)",
    )
    backtest.add_argument(
        "--long-window-interval",
        dest="long_window_interval",
        default="5m",
        help="evaluate recording rules whose every window is 1d or longer only this often "
        "(default 5m; 0 evaluates them at their group's interval, which costs more than all "
        "other rules together over 30 days)",
    )
    _add_log_level(backtest, "info")

    def _cmd_backtest(args: argparse.Namespace) -> int:
        from exporter.backtest.command import backtest_command

        return backtest_command(args)

    backtest.set_defaults(func=_cmd_backtest)


def _add_dashboards_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`smswatch dashboards generate|push`: the Grafana dashboards (exporter.dashboards)."""
    from exporter.dashboards import commands

    dashboards = sub.add_parser(
        "dashboards",
        help="generate the Grafana dashboards or push them to a Grafana",
        description="The Grafana dashboards of smswatch, generated from code.",
    )
    actions = dashboards.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)

    generate = actions.add_parser(
        "generate",
        help="write the dashboards as JSON",
        description="Write every dashboard to DIR/<uid>.json (the committed dashboards/*.json) "
        "and, in Simplified Chinese, to DIR/zh-CN/<uid>-zh-cn.json.",
    )
    generate.add_argument(
        "--output-dir",
        dest="output_dir",
        default="dashboards",
        help="directory to write to (default dashboards)",
    )
    generate.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the files in DIR differ from the generator",
    )
    generate.add_argument(
        "--lang",
        choices=LANGUAGES,
        default=None,
        help="language of titles, descriptions, legends and cause names: en into DIR, zh-CN "
        "into DIR/zh-CN (default: every language)",
    )
    generate.set_defaults(func=commands.generate_command)

    push = actions.add_parser(
        "push",
        help="upload the dashboards to a Grafana",
        description="Create the smswatch folder, a Prometheus datasource when Grafana has none, "
        "and upload every dashboard, overwriting only dashboards smswatch made (tag smswatch). "
        f"The token comes from --grafana.token-file or the {commands.TOKEN_ENV} variable.",
    )
    push.add_argument(
        "--grafana.url", dest="grafana_url", required=True, help="root URL of the Grafana"
    )
    push.add_argument(
        "--grafana.token-file",
        dest="grafana_token_file",
        default=None,
        help=f"file holding a service account token (default: ${commands.TOKEN_ENV})",
    )
    push.add_argument(
        "--grafana.timeout",
        dest="grafana_timeout",
        default="10s",
        help="timeout of each request to Grafana (default 10s)",
    )
    push.add_argument(
        "--prometheus.url",
        dest="prometheus_url",
        default="http://prometheus:9090",
        help="URL of the Prometheus datasource to create when Grafana has none, as Grafana "
        "reaches it (default http://prometheus:9090)",
    )
    push.add_argument(
        "--lang",
        choices=LANGUAGES,
        default="en",
        help="language of the dashboards to upload (default en; zh-CN dashboards have their "
        "own uids, so both can live in one Grafana)",
    )
    push.add_argument(
        "--force",
        action="store_true",
        help="also overwrite dashboards with the same uid that smswatch did not make",
    )
    push.set_defaults(func=commands.push_command)


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
        handset_dir=getattr(args, "handset_dir", None),
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
    from exporter.demo.command import run_demo

    return run_demo(
        args,
        listen=parse_listen_address(args.listen_address),
        simulator_listen=parse_listen_address(args.simulator_address),
        simulator_settings=_simulator_settings,
        wait_for_stop=_wait_for_stop,
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from exporter.app import Exporter, clock_from_environ
    from exporter.config import load_config

    config = load_config(args.config_file, state_path=args.state_path)
    if args.state_path and config.state_backend != "sqlite":
        raise ConfigError(
            f"names a SQLite file, but the config keeps the state on {config.state_backend} "
            "(state.backend): leave it out, or change state.backend",
            path="--state.path",
        )
    host, port = parse_listen_address(args.listen_address)
    exporter = Exporter(
        config,
        host,
        port,
        web_config_file=args.web_config_file,
        clock=clock_from_environ(os.environ),
    )
    exporter.start()
    log.info("exporter started", extra={"address": f"{host}:{exporter.port}"})
    _wait_for_stop(exporter.stop)
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    from exporter.config import load_config

    config = load_config(args.file)
    names = ", ".join(source.name for source in config.sources)
    probed = ""
    if config.probes is not None:
        probed = "; canary probes: " + ", ".join(g.gateway for g in config.probes.gateways)
    print(f"{args.file}: ok ({len(config.sources)} sources: {names}{probed})")
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

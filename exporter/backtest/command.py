"""`smswatch backtest`: run the stages and measure each (the CLI wires the flags to `run`)."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.backtest.evaluation import evaluate
from exporter.backtest.exposition import BLOCK_MS, OpenMetricsFiles, ScrapeWriter
from exporter.backtest.inhibition import load_alertmanager
from exporter.backtest.replay import Replay
from exporter.backtest.report import build_report, render_table
from exporter.backtest.rules import check_rules, load_rules, rule_files
from exporter.backtest.tsdb import Backfill
from exporter.errors import ConfigError
from exporter.simulator.scenario import scenario_faults
from exporter.simulator.settings import SimulatorSettings
from exporter.timestamps import (
    format_duration_ms,
    format_rfc3339_ms,
    parse_duration_ms,
    parse_rfc3339_ms,
)

log = logging.getLogger(__name__)

TARGET_LABELS = {"job": "smswatch", "instance": "backtest:8479"}


@dataclass(frozen=True)
class BacktestOptions:
    """Everything one backtest run depends on."""

    start_ms: int
    end_ms: int
    seed: int
    rate: float
    scenario: str
    scrape_ms: int
    eval_ms: int
    grace_ms: int
    rules_dir: Path
    alertmanager: Path
    all_series: bool = False
    work_dir: Path | None = None


def options_from_args(args: argparse.Namespace) -> BacktestOptions:
    """Validate the flags (ConfigError naming the flag)."""

    def duration(value: str, flag: str) -> int:
        try:
            ms = parse_duration_ms(value)
        except ValueError as exc:
            raise ConfigError(f"not a duration: {value!r}", path=flag) from exc
        if ms <= 0:
            raise ConfigError("must be longer than 0", path=flag)
        return ms

    try:
        start_ms = parse_rfc3339_ms(args.start)
    except ValueError as exc:
        raise ConfigError(f"not an RFC 3339 time: {args.start!r}", path="--start") from exc
    if args.days <= 0:
        raise ConfigError("must be > 0", path="--days")
    if args.rate <= 0:
        raise ConfigError("must be > 0", path="--rate")
    scrape_ms = duration(args.scrape_interval, "--scrape-interval")
    if scrape_ms % 1000:
        raise ConfigError("must be whole seconds", path="--scrape-interval")
    eval_ms = duration(args.evaluation_interval or args.scrape_interval, "--evaluation-interval")
    if eval_ms % 1000:
        raise ConfigError("must be whole seconds", path="--evaluation-interval")
    rules_dir = Path(args.rules_dir)
    if not rules_dir.is_dir():
        raise ConfigError(f"not a directory: {rules_dir}", path="--rules.dir")
    alertmanager = Path(args.alertmanager_config)
    if not alertmanager.is_file():
        raise ConfigError(f"no such file: {alertmanager}", path="--alertmanager.config")
    if args.scenario != "none" and not Path(args.scenario).is_file():
        raise ConfigError(f"no such file: {args.scenario}", path="--scenario")
    return BacktestOptions(
        start_ms=start_ms,
        end_ms=start_ms + int(args.days * 86_400_000),
        seed=args.seed,
        rate=args.rate,
        scenario=args.scenario,
        scrape_ms=scrape_ms,
        eval_ms=eval_ms,
        grace_ms=duration(args.grace, "--grace"),
        rules_dir=rules_dir,
        alertmanager=alertmanager,
        all_series=args.all_series,
        work_dir=Path(args.work_dir) if args.work_dir else None,
    )


def run_backtest(options: BacktestOptions) -> dict[str, Any]:
    """Replay, expose, backfill, evaluate, report; returns the report document."""
    began = time.perf_counter()
    rule_paths = rule_files(options.rules_dir)
    check_rules(rule_paths)
    ruleset = load_rules(rule_paths, options.eval_ms)
    am = load_alertmanager(options.alertmanager)
    settings = SimulatorSettings(
        seed=options.seed,
        start_ms=options.start_ms,
        scenario=options.scenario,
        rate=options.rate,
    )
    faults = scenario_faults(
        options.scenario, sim_start_ms=options.start_ms, gateway=settings.gateway
    )
    work = options.work_dir or Path(tempfile.mkdtemp(prefix="smswatch-backtest-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "tsdb"
    data_dir.mkdir(exist_ok=True)
    try:
        backfill = Backfill(data_dir)
        files = OpenMetricsFiles(work, BLOCK_MS, backfill.add)
        keep = None if options.all_series else ruleset.read_metrics.__contains__
        writer = ScrapeWriter(files, TARGET_LABELS, keep)
        replay = Replay(settings, options.scrape_ms, work / "state.sqlite")
        day = [options.start_ms]

        def progress(at: int) -> None:
            if at - day[0] >= 86_400_000:
                day[0] = at
                log.info(
                    "replayed",
                    extra={
                        "sim_time": format_rfc3339_ms(at),
                        "wall_s": round(time.perf_counter() - began),
                    },
                )

        replayed = replay.run(options.end_ms, writer.write, progress)
        files.close()
        waited = time.perf_counter()
        backfill.finish()
        backfill_wait = time.perf_counter() - waited
        scrape_backfill_s = backfill.seconds
        alerts, ev = evaluate(
            ruleset,
            data_dir,
            work,
            options.start_ms,
            options.end_ms,
            options.eval_ms,
            backfill,
            lambda message: log.info(message),
        )
        timings = {
            "simulate_ingest": replayed.simulate_ingest_s,
            "exposition": replayed.exposition_s,
            "backfill": scrape_backfill_s,
            "backfill_wait_after_replay": backfill_wait,
            "evaluation": ev.recording_query_s
            + ev.recording_backfill_s
            + ev.alert_query_s
            + ev.prometheus_start_s,
            "evaluation_recording_queries": ev.recording_query_s,
            "evaluation_recording_backfill": ev.recording_backfill_s,
            "evaluation_alert_queries": ev.alert_query_s,
            "evaluation_prometheus_starts": ev.prometheus_start_s,
            "total": time.perf_counter() - began,
        }
        run = {
            "start": format_rfc3339_ms(options.start_ms),
            "end": format_rfc3339_ms(options.end_ms),
            "seed": options.seed,
            "rate": options.rate,
            "scenario": options.scenario,
            "scrape_interval": format_duration_ms(options.scrape_ms),
            "evaluation_interval": format_duration_ms(options.eval_ms),
            "grace": format_duration_ms(options.grace_ms),
            "rule_files": [str(p) for p in ruleset.files],
            "alertmanager_config": str(options.alertmanager),
            "recording_levels": [len(level) for level in ruleset.levels],
            "alerting_rules": len(ruleset.alerts),
            "samples_written": files.samples,
            "exposition_bytes": files.bytes_written,
            "scrapes": replayed.steps,
        }
        return build_report(
            alerts=alerts,
            faults=faults,
            am=am,
            start_ms=options.start_ms,
            end_ms=options.end_ms,
            grace_ms=options.grace_ms,
            run=run,
            timings=timings,
        )
    finally:
        if options.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def backtest_command(args: argparse.Namespace) -> int:
    """`smswatch backtest`: print the table; write JSON and table files with --out."""
    options = options_from_args(args)
    report = run_backtest(options)
    table = render_table(report)
    print(table, end="", flush=True)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "backtest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (out / "backtest.txt").write_text(table, encoding="utf-8")
    return 0

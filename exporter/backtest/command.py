"""`smswatch backtest`: run the stages and measure each (the CLI wires the flags to `run`)."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter import __version__
from exporter.backtest.evaluation import evaluate
from exporter.backtest.exposition import BLOCK_MS, OpenMetricsFiles, ScrapeWriter
from exporter.backtest.inhibition import load_alertmanager
from exporter.backtest.replay import Replay
from exporter.backtest.report import build_report, render_table
from exporter.backtest.rules import (
    check_rules,
    for_alerts,
    load_rules,
    rule_files,
    with_long_window_interval,
)
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
#: Recording rules whose every window is at least this long are "long-window" rules.
LONG_WINDOW_MS = 86_400_000


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
    reuse_replay: bool = False
    all_recording_rules: bool = False
    long_window_ms: int = 300_000


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
    long_window_ms = (
        0
        if args.long_window_interval in ("0", "0s")
        else duration(args.long_window_interval, "--long-window-interval")
    )
    if args.reuse_replay and not args.work_dir:
        raise ConfigError("needs --work-dir (where the replay was kept)", path="--reuse-replay")
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
        reuse_replay=args.reuse_replay,
        all_recording_rules=args.all_recording_rules,
        long_window_ms=long_window_ms,
    )


def _replay_identity(options: BacktestOptions) -> dict[str, Any]:
    """What determines the scrapes of a replay (a reused replay must match it)."""
    scenario = options.scenario
    digest = (
        hashlib.sha256(Path(scenario).read_bytes()).hexdigest() if scenario != "none" else "none"
    )
    return {
        "start_ms": options.start_ms,
        "end_ms": options.end_ms,
        "seed": options.seed,
        "rate": options.rate,
        "scenario_sha256": digest,
        "scrape_ms": options.scrape_ms,
        "smswatch": __version__,
    }


def _replay(
    options: BacktestOptions, settings: SimulatorSettings, keep: set[str] | None, work: Path
) -> dict[str, Any]:
    """Replay, expose and backfill into `work/scrapes`; returns the replay's manifest."""
    began = time.perf_counter()
    scrapes = work / "scrapes"
    shutil.rmtree(scrapes, ignore_errors=True)
    (work / "replay.json").unlink(missing_ok=True)
    (work / "state.sqlite").unlink(missing_ok=True)
    backfill = Backfill(scrapes)
    files = OpenMetricsFiles(work, BLOCK_MS, backfill.add)
    writer = ScrapeWriter(files, TARGET_LABELS, None if keep is None else keep.__contains__)
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
    manifest = {
        "identity": _replay_identity(options),
        "kept_metrics": None if keep is None else sorted(keep),
        "scrapes": replayed.steps,
        "samples_written": files.samples,
        "exposition_bytes": files.bytes_written,
        "timings_seconds": {
            "simulate_ingest": replayed.simulate_ingest_s,
            "exposition": replayed.exposition_s,
            "backfill": backfill.seconds,
            "backfill_wait_after_replay": time.perf_counter() - waited,
            "replay_total": time.perf_counter() - began,
        },
    }
    (work / "replay.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _reusable(options: BacktestOptions, keep: set[str] | None, work: Path) -> dict[str, Any]:
    """The manifest of the replay kept in `work` (ConfigError when it cannot serve)."""
    try:
        manifest: dict[str, Any] = json.loads((work / "replay.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"no finished replay in {work} (run once without --reuse-replay)",
            path="--reuse-replay",
        ) from exc
    if manifest.get("identity") != _replay_identity(options):
        raise ConfigError(
            f"the replay kept in {work} was made with other options (days, start, seed, rate, "
            "scenario, scrape interval or version)",
            path="--reuse-replay",
        )
    kept = manifest.get("kept_metrics")
    if kept is not None and (keep is None or not keep <= set(kept)):
        missing = sorted((keep or {"(all series)"}) - set(kept))
        raise ConfigError(
            f"the kept replay lacks series these rules read: {', '.join(missing)}",
            path="--reuse-replay",
        )
    return manifest


def _link_blocks(source: Path, target: Path) -> None:
    """A fresh TSDB directory holding the blocks of `source` as hard links (no copy)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for block in source.iterdir():
        if block.is_dir() and (block / "meta.json").exists():
            shutil.copytree(block, target / block.name, copy_function=os.link)


def run_backtest(options: BacktestOptions) -> dict[str, Any]:
    """Replay, expose, backfill, evaluate, report; returns the report document."""
    began = time.perf_counter()
    rule_paths = rule_files(options.rules_dir)
    check_rules(rule_paths)
    ruleset = load_rules(rule_paths, options.eval_ms)
    if not options.all_recording_rules:
        ruleset = for_alerts(ruleset)
    if options.long_window_ms:
        ruleset = with_long_window_interval(ruleset, LONG_WINDOW_MS, options.long_window_ms)
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
    keep = None if options.all_series else ruleset.read_metrics
    work = options.work_dir or Path(tempfile.mkdtemp(prefix="smswatch-backtest-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if options.reuse_replay:
            manifest = _reusable(options, keep, work)
        else:
            manifest = _replay(options, settings, keep, work)
        data_dir = work / "tsdb"
        _link_blocks(work / "scrapes", data_dir)
        backfill = Backfill(data_dir)
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
        backfill.finish()
        replayed = manifest["timings_seconds"]
        timings = {
            "simulate_ingest": replayed["simulate_ingest"],
            "exposition": replayed["exposition"],
            "backfill": replayed["backfill"],
            "backfill_wait_after_replay": replayed["backfill_wait_after_replay"],
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
            "samples_written": manifest["samples_written"],
            "exposition_bytes": manifest["exposition_bytes"],
            "scrapes": manifest["scrapes"],
            "replay_reused": options.reuse_replay,
            "all_recording_rules": options.all_recording_rules,
            "long_window_interval": format_duration_ms(options.long_window_ms)
            if options.long_window_ms
            else None,
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

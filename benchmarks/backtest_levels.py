"""Recording-rule backfill benchmark (run by hand, not a test):
`python benchmarks/backtest_levels.py --days 0.5`.

Runs a short healthy backtest keeping its TSDB, then evaluates the first level of recording
rules of alerts/rules over the same range twice against the same Prometheus:
1. what `smswatch backtest` does: `query_range` per rule, OpenMetrics, `promtool tsdb
   create-blocks-from openmetrics` per 2h block;
2. `promtool tsdb create-blocks-from rules` on a rule file of the same rules.
Prints the wall seconds of each; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.backtest import DEFAULT_START  # noqa: E402
from exporter.backtest.command import BacktestOptions, run_backtest  # noqa: E402
from exporter.backtest.evaluation import record_level  # noqa: E402
from exporter.backtest.rules import load_rules, rule_files  # noqa: E402
from exporter.backtest.tsdb import Backfill, PrometheusServer, tool  # noqa: E402
from exporter.timestamps import parse_rfc3339_ms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=0.5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="smswatch-levels-"))
    start = parse_rfc3339_ms(DEFAULT_START)
    end = start + int(args.days * 86_400_000)
    run_backtest(
        BacktestOptions(
            start_ms=start,
            end_ms=end,
            seed=42,
            rate=2.0,
            scenario="none",
            scrape_ms=60_000,
            eval_ms=60_000,
            grace_ms=1_800_000,
            rules_dir=ROOT / "alerts" / "rules",
            alertmanager=ROOT / "alerts" / "alertmanager.yml",
            work_dir=work / "run",
        )
    )
    level = load_rules(rule_files(ROOT / "alerts" / "rules"), 60_000).levels[0]
    groups: dict[tuple[str, int], dict[str, object]] = {}
    for rule in level:
        group = groups.setdefault(
            (rule.group, rule.interval_ms),
            {
                "name": f"{rule.group}-{rule.interval_ms}",
                "interval": f"{rule.interval_ms // 1000}s",
            },
        )
        group.setdefault("rules", []).append(  # type: ignore[union-attr]
            {"record": rule.name, "expr": rule.expr, "labels": rule.labels}
        )
    rule_file = work / "level0.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": list(groups.values())}))
    with PrometheusServer(work / "run" / "tsdb", 60_000, work) as prometheus:
        started = time.perf_counter()
        files = record_level(prometheus, level, start, end, work, 0)
        backfill = Backfill(work / "mine")
        for path in files:
            backfill.run_now(path)
        backfill.finish()
        ours = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run(
            [
                tool("promtool"),
                "tsdb",
                "create-blocks-from",
                "rules",
                f"--url={prometheus.url}",
                f"--start={start // 1000}",
                f"--end={end // 1000}",
                "--eval-interval=60s",
                f"--output-dir={work / 'promtool'}",
                str(rule_file),
            ],
            check=True,
            capture_output=True,
        )
        theirs = time.perf_counter() - started
    print(
        json.dumps(
            {
                "days": args.days,
                "rules": len(level),
                "query_range_openmetrics_s": round(ours, 1),
                "promtool_create_blocks_from_rules_s": round(theirs, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

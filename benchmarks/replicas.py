"""Replica failover, a longer run of the replica end-to-end test (run by hand, not a test):
`python benchmarks/replicas.py --kills 60 --speed 40 --traffic 60m [--seed N]`.

Runs tests/test_replicas_end_to_end.py (simulator + PostgreSQL + two `smswatch run` replicas +
the pushing provider through a front) with more kills over more simulated time, and prints
its lines: the seed, the failover time after each kill and after the pause, the pushes each
replica took. Exactness and monotonic counters are asserted as in the suite.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    """Run the test with the options as its environment; its exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--speed", type=float, default=40.0, help="simulated s per wall s")
    parser.add_argument("--traffic", default="60m", help="simulated traffic, e.g. 60m")
    parser.add_argument("--seed", type=int, default=None, help="replay a run's kill moments")
    args = parser.parse_args()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SMSWATCH_REPLICAS_KILLS": str(args.kills),
        "SMSWATCH_REPLICAS_SPEED": str(args.speed),
        "SMSWATCH_REPLICAS_TRAFFIC": args.traffic,
        **({"SMSWATCH_REPLICAS_SEED": str(args.seed)} if args.seed is not None else {}),
    }
    test = ROOT / "tests" / "test_replicas_end_to_end.py"
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-n", "0", "-p", "no:cacheprovider"]
    return subprocess.run([*command, str(test)], env=env, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())

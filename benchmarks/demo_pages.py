"""The full `smswatch demo` run with Prometheus and Alertmanager (by hand, not a test):
`python benchmarks/demo_pages.py [--out demo-output.txt] [--minutes 8] [-- DEMO FLAGS]`.

Starts `smswatch demo` as a user does (its default speed, 60x, and paced scenario), reads what it
prints, and waits until each of the five causes (gateway, invalid_number, unreachable,
terminal_config, integration) has paged with its cause and every alert of that cause has
resolved, or `--minutes` pass. Then it stops the demo with Ctrl-C (SIGINT), as a user does, and
checks it exited 0. The whole output goes to `--out`; the last line printed is one JSON object:
per cause, the wall seconds from the demo's start to its first page and to the resolution of its
last alert, and the alerts it raised. Exit 1 when a cause never paged or never resolved.

Measured on the shared 2-core build machine (load average about 15), the default run: every cause
paged within 2m50s of the start (gateway after 48s, invalid_number 80s, unreachable 120s,
integration 146s, terminal_config 169s; faults start at 45s, 65s, 100s, 135s and 160s) and the
last of their alerts resolved at 4m16s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAUSES = ("gateway", "integration", "invalid_number", "unreachable", "terminal_config")
LINE = re.compile(r"^\d\d:\d\d:\d\d sim +\S+  (FIRING|RESOLVED) +(\S+)  (\S+)  cause=(\S+)  (.*)$")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="write the demo's whole output here")
    parser.add_argument("--minutes", type=float, default=8.0, help="give up after (default 8)")
    parser.add_argument("demo_flags", nargs="*", help="more flags for `smswatch demo`")
    args = parser.parse_args()

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "exporter", "demo", *args.demo_flags]
    started = time.monotonic()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT
    )
    assert proc.stdout is not None
    output: list[str] = []
    firing: dict[str, set[str]] = {cause: set() for cause in CAUSES}  # open alerts (name+where)
    report: dict[str, dict[str, object]] = {cause: {"alerts": []} for cause in CAUSES}

    def done() -> bool:
        return all("resolved_s" in report[c] and not firing[c] for c in CAUSES)

    deadline = started + args.minutes * 60
    try:
        while time.monotonic() < deadline and not done():
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            print(line, end="", flush=True)
            match = LINE.match(line.rstrip("\n"))
            if not match or match[4] not in firing:
                continue
            state, alert, cause, where = match[1], match[2], match[4], match[5].split(" | ")[0]
            at = round(time.monotonic() - started, 1)
            entry = report[cause]
            if state == "FIRING":
                firing[cause].add(f"{alert} {where}")
                entry.setdefault("first_page_s", at)
                alerts = entry["alerts"]
                assert isinstance(alerts, list)
                if alert not in alerts:
                    alerts.append(alert)
                entry.pop("resolved_s", None)
            else:
                firing[cause].discard(f"{alert} {where}")
                if not firing[cause] and "first_page_s" in entry:
                    entry["resolved_s"] = at
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        output.append(rest)
        print(rest, end="", flush=True)
        if args.out:
            Path(args.out).write_text("".join(output), encoding="utf-8")
    ok = done() and proc.returncode == 0
    print(json.dumps({"ok": ok, "exit_code": proc.returncode, "causes": report}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

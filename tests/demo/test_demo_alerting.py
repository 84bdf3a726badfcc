"""`smswatch demo` with the real Prometheus and Alertmanager: pages printed in the terminal,
Ctrl-C stops every process it started and removes its work directory. (The full run, every
cause paging and resolving, takes minutes: benchmarks/demo_pages.py.)"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import free_port, wait_until


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_demo_prints_a_page_from_prometheus_through_alertmanager_and_stops_clean() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "exporter", "demo",
            "--web.listen-address", f"127.0.0.1:{port}",
            "--simulator.listen-address", "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if " FIRING " in line:
                break
        printed = "".join(seen)
        page = next((line for line in seen if " FIRING " in line), None)
        assert page, f"no page printed: {printed}"
        # Watchdog fires at once: the chain exporter → Prometheus → Alertmanager → receiver.
        assert re.match(r"\d\d:\d\d:\d\d sim +\+\d+m  FIRING    Watchdog  info  ", page), page
        assert "| runbook alerts/runbooks/Watchdog.md" in page
        assert "  prometheus    http://127.0.0.1:" in printed
        assert "cause gateway" in printed and "cause terminal_config" in printed
        workdir = Path(re.search(r"state=(\S+)/state\.sqlite", printed)[1])  # type: ignore[index]
        assert workdir.is_dir()
        children = _children(proc.pid)
        assert len(children) == 2  # Prometheus and Alertmanager

        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, rest
    finally:
        if proc.poll() is None:
            proc.kill()  # its children die with it (setpriv --pdeathsig)
            proc.wait()
    assert "Traceback" not in rest
    assert not [pid for pid in children if _alive(pid)]
    assert not workdir.exists()


def test_prometheus_and_alertmanager_die_with_a_killed_demo() -> None:
    """SIGKILL gives the demo no chance to stop its children: the kernel does it."""
    code = (
        "import subprocess, sys, time\n"
        "from exporter.demo.stack import dies_with_parent\n"
        "child = subprocess.Popen(dies_with_parent(['sleep', '60']))\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert _alive(child)
        parent.kill()
        parent.wait()
        wait_until(lambda: not _alive(child), 10, "the child to die with its parent")
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)

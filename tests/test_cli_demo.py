"""`smswatch demo` and `smswatch simulate` as a user runs them: URLs printed, data flows, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import free_port, get_json, http_get, parse_exposition, wait_until


def _start(
    *args: str, path: str | None = None, tmpdir: Path | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if path is not None:
        env["PATH"] = path
    if tmpdir is not None:  # where the process makes its temporary files (TMPDIR)
        env["TMPDIR"] = str(tmpdir)
    return subprocess.Popen(
        [sys.executable, "-m", "exporter", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} not printed; got {''.join(seen)!r}")


def test_demo_prints_its_urls_serves_metrics_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    proc = _start(
        "demo",
        "--speed", "600",
        "--web.listen-address", f"127.0.0.1:{port}",
        "--simulator.listen-address", f"127.0.0.1:{sim_port}",
        path=str(tmp_path),  # no Prometheus, no Alertmanager
        tmpdir=temporary,
    )  # fmt: skip
    try:
        printed = _read_until(proc, "alerting", 30)
        assert "apt-get install prometheus prometheus-alertmanager" in printed
        assert f"http://127.0.0.1:{port}/metrics" in printed
        assert f"http://127.0.0.1:{sim_port}" in printed
        assert f"http://127.0.0.1:{port}/lookup  (token smsw_" in printed

        def receipts_flow() -> bool:
            metrics = parse_exposition(http_get(f"http://127.0.0.1:{port}/metrics")[1])
            return sum(v for (n, _), v in metrics.items() if n == "smswatch_receipts_total") > 0

        wait_until(receipts_flow, 60, "decided receipts in the demo's /metrics")
        metrics = parse_exposition(http_get(f"http://127.0.0.1:{port}/metrics")[1])
        balance = {k: v for k, v in metrics.items() if k[0] == "smswatch_account_balance"}
        assert [dict(labels)["currency"] for _, labels in balance] == ["CNY"]
        approved = [v for (n, _), v in metrics.items() if n == "smswatch_sms_sender_approved"]
        assert approved == [1.0, 1.0]  # the simulated signature and template
        assert http_get(f"http://127.0.0.1:{port}/ready")[0] == 200
        assert list(temporary.iterdir())  # its state and the support desk's tokens file
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert list(temporary.iterdir()) == []  # nothing left behind
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_simulate_serves_its_feeds_and_stops_on_sigterm() -> None:
    port = free_port()
    proc = _start("simulate", "--speed", "60", "--web.listen-address", f"127.0.0.1:{port}")
    try:
        _read_until(proc, "serving", 30)
        page = get_json(f"http://127.0.0.1:{port}/acquirer/v1/terminals")
        assert page["terminals"] and "watermark" in page
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_simulator_flags_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "simulate", "--speed", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--speed" in result.stderr

"""A real Prometheus TSDB: backfilled by promtool, served by a real `prometheus` for queries.

`Backfill` runs `promtool tsdb create-blocks-from openmetrics` on each finished exposition file
in a background thread (one at a time, in order), so the second core backfills while the
first replays; each file is deleted once it is a block. `PrometheusServer` starts `prometheus`
on the data directory (no scrape targets, no rule files, retention far beyond the simulated
dates, block compaction off so that queries never race a compaction) and answers
`query_range`, split into pieces under Prometheus' 11,000 points per series.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.errors import SmswatchError

log = logging.getLogger(__name__)

#: Prometheus refuses range queries of more points than this per series.
MAX_POINTS = 11_000
READY_TIMEOUT_S = 120.0


class BacktestError(SmswatchError):
    """A tool of the backtest (promtool, prometheus) failed or is missing."""

    exit_code = 1


def tool(name: str) -> str:
    """The path of a Prometheus binary on PATH (BacktestError when missing)."""
    path = shutil.which(name)
    if path is None:
        raise BacktestError(f"{name} not found on PATH: the backtest needs Prometheus >= 2.42")
    return path


class Backfill:
    """Turns OpenMetrics files into TSDB blocks in `data_dir`, in a background thread."""

    def __init__(self, data_dir: Path, keep_files: bool = False) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.keep_files = keep_files
        self.promtool = tool("promtool")
        self.seconds = 0.0
        self.files = 0
        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="backfill", daemon=True)
        self._thread.start()

    def add(self, path: Path) -> None:
        """Queue a finished file."""
        if self._error is not None:
            raise BacktestError(str(self._error))
        self._queue.put(path)

    def run_now(self, path: Path) -> None:
        """Backfill one file in this thread (for files written after `finish`)."""
        self._create_blocks(path)

    def finish(self) -> None:
        """Wait until every queued file is a block (BacktestError if one failed)."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise BacktestError(str(self._error))

    def _work(self) -> None:
        while True:
            path = self._queue.get()
            if path is None:
                return
            if self._error is not None:
                continue
            try:
                self._create_blocks(path)
            except BaseException as exc:  # reported by add() / finish()
                self._error = exc

    def _create_blocks(self, path: Path) -> None:
        started = time.perf_counter()
        result = subprocess.run(
            [
                self.promtool,
                "tsdb",
                "create-blocks-from",
                "--quiet",
                "openmetrics",
                str(path),
                str(self.data_dir),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        self.seconds += time.perf_counter() - started
        self.files += 1
        if result.returncode != 0:
            raise BacktestError(f"promtool failed on {path.name}: {result.stderr.strip()[-2000:]}")
        if not self.keep_files:
            path.unlink()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its (Unix ms, value) points."""

    labels: dict[str, str]
    points: list[tuple[int, float]]


class PrometheusServer:
    """A `prometheus` process serving a TSDB directory on 127.0.0.1 (a context manager)."""

    def __init__(self, data_dir: Path, eval_interval_ms: int, work_dir: Path) -> None:
        self.data_dir = data_dir
        self.eval_interval_ms = eval_interval_ms
        self.work_dir = work_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = work_dir / "prometheus.log"

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start Prometheus and wait until it is ready."""
        config = self.work_dir / "prometheus.yml"
        seconds = max(1, self.eval_interval_ms // 1000)
        # evaluation_interval is also the default step of subqueries (`[30m:]`).
        config.write_text(f"global:\n  evaluation_interval: {seconds}s\n")
        with self._log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                [
                    tool("prometheus"),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.data_dir}",
                    "--storage.tsdb.retention.time=100y",
                    "--storage.tsdb.min-block-duration=2h",
                    "--storage.tsdb.max-block-duration=2h",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--query.timeout=30m",
                    "--query.max-samples=500000000",
                    "--log.level=warn",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BacktestError(f"prometheus exited: {self._tail_log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=0.1)
        self.stop()
        raise BacktestError(f"prometheus not ready after {READY_TIMEOUT_S:.0f} s")

    def _tail_log(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop Prometheus (SIGTERM, then SIGKILL after 60 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def query_range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> list[Series]:
        """Evaluate `expr` at `start_ms`, `start_ms + step_ms`, ... `end_ms` (inclusive)."""
        merged: dict[tuple[tuple[str, str], ...], Series] = {}
        piece_ms = step_ms * (MAX_POINTS - 1)
        at = start_ms
        while at <= end_ms:
            stop = min(end_ms, at + piece_ms)
            for item in self._get_range(expr, at, stop, step_ms):
                labels = item["metric"]
                key = tuple(sorted(labels.items()))
                series = merged.get(key)
                if series is None:
                    series = merged[key] = Series(labels, [])
                series.points.extend((round(float(t) * 1000), float(v)) for t, v in item["values"])
            at = stop + step_ms
        return list(merged.values())

    def _get_range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> list[Any]:
        query = urllib.parse.urlencode(
            {
                "query": expr,
                "start": f"{start_ms / 1000:.3f}",
                "end": f"{end_ms / 1000:.3f}",
                "step": f"{step_ms / 1000:.3f}",
            }
        )
        request = urllib.request.Request(
            f"{self.url}/api/v1/query_range",
            data=query.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=1800) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:1000]
            raise BacktestError(f"query failed ({exc.code}): {detail}\n{expr}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise BacktestError(f"prometheus unreachable: {exc}") from exc
        if document.get("status") != "success":
            raise BacktestError(f"query failed: {document.get('error')}\n{expr}")
        result: list[Any] = document["data"]["result"]
        return result

"""Scrapes written as OpenMetrics with timestamps, for promtool's `create-blocks-from openmetrics`.

Each scrape of the real collector becomes one line per sample, `name{job,instance,labels} value
timestamp`, plus the `up` sample Prometheus would record for a successful scrape. Thirty days
are gigabytes of text, so the writer streams: lines are joined per scrape and written in large
chunks, and the files are cut on block boundaries (multiples of the block duration since the
Unix epoch, as promtool aligns its blocks): promtool re-reads its whole input once per 2h
block, so one file per block is read once, becomes one block that overlaps no other, and is
backfilled (and deleted) while the replay goes on. `keep` limits the samples to the
series the rules read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client.core import Metric

#: The block duration of promtool 2.42 (fixed: it has no --max-block-duration), in ms.
BLOCK_MS = 7_200_000
#: Bytes buffered before a write.
CHUNK_BYTES = 8 * 1024 * 1024


def format_value(value: float) -> str:
    """A sample value as OpenMetrics writes it."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def series_text(name: str, labels: Iterable[tuple[str, str]]) -> str:
    """`name{a="x",b="y"}` with the label values escaped."""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels)
    return f"{name}{{{inner}}}"


class OpenMetricsFiles:
    """Time-partitioned OpenMetrics files; each closed file is handed to `on_file`."""

    def __init__(
        self,
        directory: Path,
        partition_ms: int,
        on_file: Callable[[Path], None],
        prefix: str = "scrapes",
    ) -> None:
        self.directory = directory
        self.partition_ms = partition_ms
        self.on_file = on_file
        self.prefix = prefix
        self.bytes_written = 0
        self.samples = 0
        self._handle: object | None = None
        self._path: Path | None = None
        self._partition = -1
        self._buffer: list[str] = []
        self._buffered = 0

    def add(self, at_ms: int, lines: list[str]) -> None:
        """Add the lines (each ending with its timestamp and a newline) of one instant."""
        partition = at_ms // self.partition_ms
        if partition != self._partition:
            self._close()
            self._partition = partition
            self._path = self.directory / f"{self.prefix}-{partition * self.partition_ms}.om"
            self._handle = self._path.open("w", encoding="utf-8")
        self.samples += len(lines)
        text = "".join(lines)
        self._buffer.append(text)
        self._buffered += len(text)
        if self._buffered >= CHUNK_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._handle is not None and self._buffer:
            text = "".join(self._buffer)
            self._handle.write(text)  # type: ignore[attr-defined]
            self.bytes_written += len(text)
        self._buffer = []
        self._buffered = 0

    def _close(self) -> None:
        if self._handle is None or self._path is None:
            return
        self._buffer.append("# EOF\n")
        self._flush()
        self._handle.close()  # type: ignore[attr-defined]
        self._handle = None
        self.on_file(self._path)

    def close(self) -> None:
        """Finish the last file (and hand it over)."""
        self._close()


class ScrapeWriter:
    """Turns the collector's metric families at one instant into OpenMetrics lines."""

    def __init__(
        self,
        files: OpenMetricsFiles,
        target: dict[str, str],
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        self.files = files
        self.target = sorted(target.items())
        self.keep = keep
        self._prefixes: dict[tuple[str, tuple[str, ...]], str] = {}
        self._kept: dict[str, bool] = {}
        self._up = series_text("up", self.target) + " 1 "

    def write(self, families: Iterable[Metric], at_ms: int) -> None:
        """Write one scrape taken at `at_ms` (Unix ms)."""
        stamp = f" {at_ms // 1000}.{at_ms % 1000:03d}\n"
        lines = [self._up + stamp[1:]]
        prefixes, kept, keep, target = self._prefixes, self._kept, self.keep, self.target
        for family in families:
            for sample in family.samples:
                name = sample.name
                wanted = kept.get(name)
                if wanted is None:
                    wanted = kept[name] = keep is None or keep(name)
                if not wanted:
                    continue
                labels = sample.labels
                key = (name, tuple(labels.values()))
                prefix = prefixes.get(key)
                if prefix is None:
                    merged = sorted({**labels, **dict(target)}.items())
                    prefix = prefixes[key] = series_text(name, merged) + " "
                value = sample.value
                text = repr(float(value)) if math.isfinite(value) else format_value(value)
                lines.append(prefix + text + stamp)
        self.files.add(at_ms, lines)

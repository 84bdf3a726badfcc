"""Report directories on disk: written whole or not at all, with a manifest; old ones pruned.

A report is the directory ``<out>/smswatch-<report id>-<lang>/`` holding the PDF, the HTML page,
one CSV per table, ``manifest.json`` (period, source, every file with its SHA-256 and size) and
``SHA256SUMS`` (the same digests, for ``sha256sum -c``). It is built in a hidden temporary
directory beside it and renamed into place at the end, so a reader never sees a half report
under the final name; a failed run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporter.errors import ReportError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
_REPORT_DIR = re.compile(r"^smswatch-(daily|weekly|monthly|custom)-[0-9A-Za-z_-]+$")
_TEMP_DIR = re.compile(r"^\.smswatch-.*\.(tmp|old)-[0-9a-z_]+$")
#: Temporary directories older than this are leftovers of a crashed run.
_STALE_TEMP_SECONDS = 86_400


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def report_directory(out_dir: Path, name: str) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it becomes ``out_dir/name`` (replacing
    an older report of the same name), on failure it is removed."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create the output directory {out_dir}: {exc.strerror}") from exc
    temp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=out_dir))
    try:
        yield temp
        final = out_dir / name
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=out_dir))
            os.replace(final, old / name)
            try:
                os.replace(temp, final)
            except OSError:
                os.replace(old / name, final)  # put the earlier report back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temp, final)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def write_manifest(directory: Path, metadata: dict[str, Any]) -> dict[str, str]:
    """Write manifest.json and SHA256SUMS for every file already in `directory`; return the
    digests by file name (manifest.json included in SHA256SUMS)."""
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.name not in (MANIFEST, SUMS))
    entries = {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size} for p in files}
    manifest = {**metadata, "files": entries}
    (directory / MANIFEST).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    digests = {name: str(entry["sha256"]) for name, entry in entries.items()}
    digests[MANIFEST] = sha256(directory / MANIFEST)
    (directory / SUMS).write_text(
        "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items())),
        encoding="utf-8",
    )
    return digests


def prune_reports(
    out_dir: Path, keep_seconds: float, *, now: Callable[[], datetime] | None = None
) -> list[Path]:
    """Delete the report directories in `out_dir` generated more than `keep_seconds` ago
    (by their manifest's `generated_at`), and stale temporary directories. Only directories
    that look like ours are touched. Returns what was deleted."""
    current = (now or (lambda: datetime.now(UTC)))()
    removed: list[Path] = []
    if not out_dir.is_dir():
        return removed
    for entry in sorted(out_dir.iterdir()):
        if not entry.is_dir() or entry.is_symlink():
            continue
        if _TEMP_DIR.match(entry.name):
            if time.time() - entry.stat().st_mtime > _STALE_TEMP_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
            continue
        if not _REPORT_DIR.match(entry.name):
            continue
        generated = _generated_at(entry / MANIFEST)
        if generated is None:
            continue
        if (current - generated).total_seconds() > keep_seconds:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
            log.info("report pruned", extra={"report": entry.name})
    return removed


def _generated_at(path: Path) -> datetime | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("generated_at")
        moment = datetime.fromisoformat(str(value))
    except (OSError, ValueError, AttributeError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

"""Moving a SQLite state into PostgreSQL (`smswatch state migrate`), verified after the copy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from exporter.dialect import PostgreSQL
from exporter.errors import ConfigError, StateError
from exporter.store import Store, decode_labels


@dataclass(frozen=True)
class Migration:
    """What was moved: rows per table, counter series and open receipts (all verified)."""

    rows: dict[str, int]
    counter_series: int
    open_receipts: int


def migrate_state(source_path: str, dsn: str, password: str = "") -> Migration:
    """Copy the SQLite state at `source_path` into the empty PostgreSQL database `dsn`, then
    check that both hold the same rows per table, the same counters and the same open
    receipts. The exporter must not be running on the file meanwhile."""
    if not Path(source_path).is_file():
        raise ConfigError(f"no state file at {source_path}", path="--from")
    source = Store(source_path)
    try:
        target = Store(dsn, backend=PostgreSQL(dsn, password))
        try:
            rows = target.copy_from(source)
            _verify(source, target)
            counters, _, _ = source.snapshot()
            return Migration(rows, len(counters), len(source.open_receipts()))
        finally:
            target.close()
    finally:
        source.close()


def _verify(source: Store, target: Store) -> None:
    """Raise `StateError` naming what differs between the two states."""
    checks: dict[str, Callable[[Store], object]] = {
        "rows per table": Store.row_counts,
        "counters": lambda s: _series(s, 0),
        "gauges": lambda s: _series(s, 1),
        "open receipts": Store.open_receipts,
    }
    for what, read in checks.items():
        if read(source) != read(target):
            raise StateError(
                f"the copy differs from the state file in its {what}: drop the target "
                "database's tables and migrate again"
            )


def _series(store: Store, which: int) -> dict[tuple[str, tuple[str, ...]], float]:
    """Counters (0) or gauges (1) by metric and label values."""
    rows = store.snapshot()[which]
    return {(str(m), decode_labels(str(labels))): float(v) for m, labels, v in rows}  # type: ignore[misc]

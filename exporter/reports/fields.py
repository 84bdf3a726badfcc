"""Field readers for the report settings (`reports:` and its `mail:` block): each error names
the field path, e.g. ``reports.mail.smtp.port``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.errors import ConfigError
from exporter.timestamps import parse_duration_ms


def refuse_unknown_keys(raw: Mapping[str, Any], known: set[str], path: str) -> None:
    """ConfigError at the first unknown key (in sorted order), listing the known ones."""
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})",
            path=f"{path}.{unknown[0]}",
        )


def string_field(
    raw: Mapping[str, Any],
    key: str,
    path: str,
    *,
    default: str | None = None,
    required: bool = False,
) -> str:
    """A stripped string; absent: `default` (or "is required")."""
    value = raw.get(key)
    if value is None:
        if required:
            raise ConfigError("is required", path=f"{path}.{key}")
        return default or ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ConfigError(f"must be a non-empty string, got {value!r}", path=f"{path}.{key}")
    return value.strip()


def duration_field(value: object, path: str) -> float:
    """A positive Prometheus-style duration (``90d``, ``30s``, ``250ms``) in seconds."""
    try:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError(value)
        millis = parse_duration_ms(value)
    except ValueError as exc:
        raise ConfigError(f"not a duration (use e.g. 90d, 12h): {value!r}", path=path) from exc
    if millis <= 0:
        raise ConfigError("must be more than zero", path=path)
    return millis / 1000

"""Render every dashboard to JSON, write it to a directory, or say which files have drifted.

The committed `dashboards/*.json` are this module's output; a test fails when they differ from
what the generator makes now, so a change to the code always ships with its JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.models import dashboard as dashboard_model

from exporter.dashboards import oncall, overview, receipts
from exporter.dashboards.layout import to_json

#: Every dashboard, by uid: the uid is also the file name.
BUILDERS: dict[str, Callable[[], dashboard_model.Dashboard]] = {
    overview.UID: overview.build,
    oncall.UID: oncall.build,
    receipts.UID: receipts.build,
}


def render_all() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {f"{uid}.json": to_json(build()) for uid, build in BUILDERS.items()}


def dashboards() -> dict[str, dict[str, Any]]:
    """uid → dashboard as plain JSON data (what Grafana receives)."""
    return {uid: json.loads(to_json(build())) for uid, build in BUILDERS.items()}


def write(directory: Path) -> list[Path]:
    """Write every dashboard into `directory`; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def drifted(directory: Path) -> list[str]:
    """Names of the dashboard files in `directory` that are missing or differ from the code."""
    stale = []
    for name, text in render_all().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard in JSON form, rows and the panels inside rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])

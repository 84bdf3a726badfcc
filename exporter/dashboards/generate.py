"""Render every dashboard to JSON, write it to a directory, or say which files have drifted.

The committed `dashboards/*.json` (English) and `dashboards/zh-CN/*.json` (Simplified Chinese)
are this module's output; a test fails when they differ from what the generator makes now, so a
change to the code always ships with its JSON in both languages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.models import dashboard as dashboard_model

from exporter.dashboards import oncall, overview, receipts
from exporter.dashboards.layout import to_json
from exporter.dashboards.translation import translate
from exporter.language import localized_uid, speaking

#: Every dashboard, by its English uid: the uid (localized) is also the file name.
BUILDERS: dict[str, Callable[[], dashboard_model.Dashboard]] = {
    overview.UID: overview.build,
    oncall.UID: oncall.build,
    receipts.UID: receipts.build,
}


def subdirectory(lang: str) -> str:
    """Where a language's dashboards live under dashboards/: English at the top."""
    return "" if lang == "en" else lang


def dashboards(lang: str = "en") -> dict[str, dict[str, Any]]:
    """uid → dashboard as plain JSON data (what Grafana receives), in `lang`."""
    out = {}
    for uid, build in BUILDERS.items():
        with speaking(lang):
            data = json.loads(to_json(build()))
        out[localized_uid(uid, lang)] = data if lang == "en" else translate(data, lang)
    return out


def render_all(lang: str = "en") -> dict[str, str]:
    """File name → JSON text of every dashboard in `lang`."""
    return {
        f"{uid}.json": json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for uid, data in dashboards(lang).items()
    }


def write(directory: Path, lang: str = "en") -> list[Path]:
    """Write every dashboard in `lang` into `directory`; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all(lang).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def drifted(directory: Path, lang: str = "en") -> list[str]:
    """Names of the dashboard files in `directory` that are missing or differ from the code."""
    stale = []
    for name, text in render_all(lang).items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard in JSON form, rows and the panels inside rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])

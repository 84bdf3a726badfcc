"""The dashboards in another language: every word a person reads, looked up in a catalogue.

The builders write English; `translate` walks a built dashboard's JSON and replaces each
readable text (titles, descriptions, legends, Markdown, link and variable labels, value mapping
texts) by its entry in `<lang>.yaml` beside this module, keyed by the English text, the way a
gettext catalogue is. Text already in the target language (cause names from the vocabulary,
explanations written with `say`) and texts with no words (PromQL legends such as `{{gateway}}`,
percentiles such as `p95 {{acquirer}}`) are left as they are. An English text with no entry is
an error that names it, so a new panel cannot ship half translated.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import yaml

from exporter.errors import SmswatchError

#: The JSON keys whose string values a person reads. A `name` is read only on an annotation
#: (a variable's `name` is the identifier its queries use).
READABLE_KEYS = frozenset(
    {"title", "description", "content", "legendFormat", "text", "label", "tooltip"}
)

_TEMPLATE = re.compile(r"\{\{[^}]*\}\}|\$\{[^}]*\}|\$\w+")
_WORD = re.compile(r"[A-Za-z]{2,}")
_CJK = re.compile(r"[\u4e00-\u9fff]")
#: Words that read the same in every language (percentiles, the product, All).
_UNTRANSLATED = frozenset({"p50", "p90", "p95", "p99", "All"})


class MissingTranslation(SmswatchError):
    """A readable English text of a dashboard has no entry in the language's catalogue."""


@cache
def catalogue(lang: str) -> dict[str, str]:
    """English text → its translation, from `exporter/dashboards/<lang>.yaml`."""
    text = resources.files("exporter.dashboards").joinpath(f"{lang}.yaml").read_text("utf-8")
    entries: dict[str, str] = yaml.safe_load(text)["texts"]
    return entries


def needs_translation(text: str) -> bool:
    """Whether `text` holds English words a person reads (not only templates, not already
    translated, not a percentile)."""
    if _CJK.search(text):
        return False
    bare = _TEMPLATE.sub(" ", text)
    return any(word not in _UNTRANSLATED for word in _WORD.findall(bare))


def translate(dashboard: dict[str, Any], lang: str) -> dict[str, Any]:
    """A copy of `dashboard` (JSON data) with every readable English text in `lang`."""
    entries = catalogue(lang)
    missing: list[str] = []

    def text(value: str) -> str:
        if not needs_translation(value):
            return value
        if value not in entries:
            missing.append(value)
            return value
        return entries[value]

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("id") == "displayName" and isinstance(node.get("value"), str):
                return {**node, "value": text(node["value"])}
            return {
                key: text(value) if isinstance(value, str) and key in READABLE_KEYS else walk(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    translated: dict[str, Any] = walk(dashboard)
    for annotation in translated.get("annotations", {}).get("list", []):
        annotation["name"] = text(annotation["name"])
    if missing:
        shown = "; ".join(repr(m[:80]) for m in sorted(set(missing))[:5])
        raise MissingTranslation(
            f"{len(set(missing))} dashboard texts have no {lang} entry in "
            f"exporter/dashboards/{lang}.yaml: {shown}"
        )
    return translated

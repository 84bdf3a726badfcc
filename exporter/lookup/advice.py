"""The per-situation explanation and advice of `advice.yaml`, the one source of that wording."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from exporter.catalogue import CAUSES
from exporter.vocabulary import cause_words

LANGUAGES: tuple[str, ...] = ("en", "zh")

#: Situations that are not a failure cause, in the order the page's legend lists them.
SITUATIONS_BESIDE_CAUSES: tuple[str, ...] = (
    "delivered",
    "on_its_way",
    "awaiting",
    "reversed",
    "declined",
    "not_registered",
    "reversal",
)
SITUATIONS: tuple[str, ...] = (*CAUSES, *SITUATIONS_BESIDE_CAUSES)


@dataclass(frozen=True)
class Advice:
    """What happened in plain words, and what the agent tells and does."""

    situation: str
    title: str
    explanation: str
    advice: str


@cache
def _document() -> dict[str, dict[str, dict[str, str]]]:
    text = resources.files("exporter.lookup").joinpath("advice.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    return dict(raw["situations"])


#: The lookup's language codes, as the vocabulary spells them.
VOCABULARY_LANGUAGE: dict[str, str] = {"en": "en", "zh": "zh-CN"}


def advice_for(situation: str, lang: str = "en") -> Advice:
    """The wording of a situation in a language (English when the language is not there); a
    cause is titled with its name in the vocabulary."""
    entry = _document()[situation]
    words = entry.get(lang) or entry["en"]
    if situation in CAUSES:
        title = cause_words(situation, VOCABULARY_LANGUAGE.get(lang, "en")).name
    else:
        title = words["title"]
    return Advice(situation, title, words["explanation"], words["advice"])

"""The language generated artefacts speak (rules' annotations, dashboards): en or zh-CN.

A generator states each sentence once per language, side by side at the place it is used
(`say("SMS delivered", "短信已送达")`), and renders a whole artefact inside `speaking(lang)`.
Cause names and meanings never go through here: they come from `exporter.vocabulary`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from exporter.vocabulary import LANGUAGES

_CURRENT: ContextVar[str] = ContextVar("smswatch_language", default="en")


def check_language(lang: str) -> str:
    """`lang` when it is a language smswatch speaks; ValueError naming the known ones."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; expected one of {', '.join(LANGUAGES)}")
    return lang


@contextmanager
def speaking(lang: str) -> Iterator[str]:
    """Within the block, `say` and `current_language` answer in `lang`."""
    token = _CURRENT.set(check_language(lang))
    try:
        yield lang
    finally:
        _CURRENT.reset(token)


def current_language() -> str:
    """The language of the artefact being generated (en outside any `speaking` block)."""
    return _CURRENT.get()


def say(en: str, zh: str) -> str:
    """The sentence in the current language: `en` in English, `zh` in Simplified Chinese."""
    return zh if _CURRENT.get() == "zh-CN" else en


def localized_uid(uid: str, lang: str) -> str:
    """The uid of a generated artefact (a dashboard) in `lang`: the English uid as it is, the
    others suffixed with the language (`smswatch-overview-zh-cn`), so both sets load side by
    side in one Grafana."""
    return uid if check_language(lang) == "en" else f"{uid}-{lang.lower()}"

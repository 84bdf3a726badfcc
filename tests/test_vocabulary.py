"""One vocabulary for the causes: every place a person reads a cause's name, in English or
Simplified Chinese, takes it from `exporter/vocabulary.py`, and no other file spells it.

The alert annotations and runbooks are checked in tests/alerts/test_languages.py, the
dashboards in tests/dashboards/test_dashboards_languages.py; here the support desk, the
compliance report, and the rule that the words live in one file.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast
from zoneinfo import ZoneInfo

import pytest
import yaml

from exporter.catalogue import CAUSES
from exporter.lookup.advice import VOCABULARY_LANGUAGE
from exporter.lookup.alerts import FiringAlert
from exporter.lookup.explain import explain, incident_text
from exporter.reports.figures import CauseRow, ReportData
from exporter.reports.tables import _causes
from exporter.reports.texts import Texts
from exporter.store import StoredTransaction
from exporter.vocabulary import CAUSE_WORDS, cause_words

ROOT = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Asia/Shanghai")


def _receipt(cause: str) -> StoredTransaction:
    """A decided receipt that was not notified, put down to `cause`."""
    outcome = "missing" if cause in ("terminal_config", "integration") else "failed"
    return StoredTransaction(
        txn_id="t1",
        rrn="000000000001",
        terminal_id="T1",
        merchant_id="M1",
        acquirer="acq-north",
        amount=12_000,
        currency="CNY",
        pan="622202******1234",
        result="approved",
        response_code="00",
        txn_ms=1_700_000_000_000,
        sms_expected=True,
        original_txn_id="",
        join_key="000000000001",
        state="decided",
        message_id=None,
        decide_ms=1_700_000_300_000,
        outcome=outcome,
        cause=cause,
        notify_ms=None,
        reversed_ms=None,
        source="acquirer",
    )


@pytest.mark.parametrize("lang", sorted(VOCABULARY_LANGUAGE))
@pytest.mark.parametrize("cause", CAUSES)
def test_the_support_desk_names_a_cause_with_the_vocabulary_name(cause: str, lang: str) -> None:
    name = cause_words(cause, VOCABULARY_LANGUAGE[lang]).name
    alert = FiringAlert(
        "SomeCauseAlert",
        {"alertname": "SomeCauseAlert", "cause": cause},
        1_700_000_000_000,
        1_700_000_600_000,
    )
    explained = explain(_receipt(cause), [], [alert], ZONE, lang)
    assert explained.situation == cause
    assert explained.advice.title == name
    assert any(name in step.text for step in explained.steps), "the incident step names it"
    assert name in incident_text(alert, ZONE, lang)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_report_names_and_explains_each_cause_with_the_vocabulary(lang: str) -> None:
    rows = tuple(CauseRow(cause, 3, 1, 2, 0) for cause in (*CAUSES, "something_new"))
    table = _causes(cast(ReportData, SimpleNamespace(causes=rows)), Texts(lang))
    column = [c.key for c in table.columns].index("meaning")
    for cause, row in zip((*CAUSES, "something_new"), table.rows, strict=True):
        words = cause_words(cause, lang)
        assert row[column].text == f"{words.name} — {words.meaning}"


def test_advice_yaml_leaves_the_causes_names_to_the_vocabulary() -> None:
    advice = yaml.safe_load((ROOT / "exporter/lookup/advice.yaml").read_text("utf-8"))
    for cause in CAUSES:
        for lang, words in advice["situations"][cause].items():
            assert "title" not in words, f"{cause}.{lang}: the title is the vocabulary's name"


def test_no_other_file_spells_a_causes_name_or_meaning() -> None:
    """The names and meanings live in exporter/vocabulary.py only (generated artefacts, which
    render them, aside)."""
    words = {
        text
        for per_lang in CAUSE_WORDS.values()
        for entry in per_lang.values()
        for text in (entry.name, entry.meaning)
        # Not a lone word ("Unknown") nor a short phrase a sentence may hold by chance.
        if (" " in text if text.isascii() else len(text) >= 6)
    }
    sources = [
        path
        for pattern in ("*.py", "*.yaml", "*.html", "*.md")
        for path in (ROOT / "exporter").rglob(pattern)
        if path.name != "vocabulary.py"
    ]
    for path in sources:
        text = path.read_text("utf-8")
        found = sorted(word for word in words if word in text)
        assert not found, f"{path.relative_to(ROOT)} spells {found[:3]}: use exporter.vocabulary"

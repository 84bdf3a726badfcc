"""The landing page's parts over a real SQLite store: minute counts, windows, language, HTML."""

from __future__ import annotations

import random
import re
import socket
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from exporter.alerting.spec import load_spec
from exporter.config import parse_config, simulator_config_document
from exporter.landing.figures import (
    STALE_AFTER_POLLS,
    AlertsNow,
    CauseRow,
    Landing,
    SourceRow,
    gather,
    windows_at,
)
from exporter.landing.page import render
from exporter.landing.route import LandingPage
from exporter.landing.words import choose_language
from exporter.lookup.alerts import ActiveAlert
from exporter.poller import PollHealth
from exporter.reconcile import Changes
from exporter.store import MINUTE_MS, OUTCOME_SPANS, Store, encode_labels
from exporter.timestamps import parse_rfc3339_ms
from exporter.web import Request

ROOT = Path(__file__).resolve().parents[2]
#: 10:30 in Beijing: Beijing's today began at 16:00 UTC the day before.
NOW = parse_rfc3339_ms("2026-11-26T02:30:20Z")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def changes(**receipts: int) -> Changes:
    """Receipt outcomes of acq-east (`outcome__cause=n`) and one message per receipt."""
    out = Changes()
    for key, n in receipts.items():
        outcome, cause = key.split("__")
        out.counters[("smswatch_receipts_total", ("acq-east", outcome, cause))] += n
        status = "delivered" if outcome == "delivered" else "undelivered"
        labels = ("bank-sms", "cmcc", "north", status, cause)
        out.counters[("smswatch_sms_messages_total", labels)] += n
    out.counters[("smswatch_pos_transactions_total", ("acq-east", "approved"))] += 99  # not kept
    return out


def config(tmp_path: Path, **extra: Any) -> Any:
    doc = simulator_config_document("http://127.0.0.1:9", "15s")
    doc.update(extra)
    return parse_config(doc, state_path=str(tmp_path / "state.sqlite"))


def test_outcomes_count_in_the_minute_the_exporter_decided_them(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "state.sqlite"))
    minute = 60_000
    at = {
        "yesterday (Beijing)": parse_rfc3339_ms("2026-11-25T15:59:59.999Z"),
        "today, before the hour": parse_rfc3339_ms("2026-11-25T16:00:00Z"),
        "60 minutes ago": NOW - 60 * minute,  # 01:30:20: its minute 01:30 is out
        "the hour's first minute": NOW - NOW % minute - 59 * minute,  # 01:31:00
        "now": NOW,
    }
    counts = [
        {"delivered__none": 5},
        {"delivered__none": 7, "missing__integration": 2},
        {"failed__invalid_number": 3},
        {"delivered__none": 11, "failed__gateway": 1},
        {"delivered__none": 13, "missing__terminal_config": 4},
    ]
    with store.transaction():
        store.apply(changes(**counts[0]), "", at["yesterday (Beijing)"] - 3 * 86_400_000)
    for when, receipts in zip(at.values(), counts, strict=True):
        with store.transaction():
            store.apply(changes(**receipts), "", when)
    windows = windows_at(NOW, SHANGHAI)
    assert windows.today_start_ms == at["today, before the hour"]
    landing = gather(config(tmp_path), store.page_view, {}, windows, NOW / 1000)
    (acquirer,) = [row for row in landing.acquirers if row.key == "acq-east"]
    hour, today = acquirer.windows
    assert dict(hour.by_outcome) == {"delivered": 24, "failed": 1, "missing": 4}
    assert (hour.sli_events, hour.bank_side) == (29, 5)
    assert dict(today.by_outcome) == {"delivered": 31, "failed": 4, "missing": 6}
    # cardholder-side outcomes are neither good nor bad, as the alerts count them
    assert (today.sli_events, today.bank_side) == (38, 7)
    (gateway,) = [row for row in landing.gateways if row.key == "bank-sms"]
    assert (gateway.windows[1].sli_events, gateway.windows[1].bank_side) == (38, 7)
    assert landing.causes == (  # most of today first
        CauseRow("terminal_config", False, (4, 4)),
        CauseRow("invalid_number", True, (0, 3)),
        CauseRow("integration", False, (0, 2)),
        CauseRow("gateway", False, (1, 1)),
    )
    # every configured acquirer has its row, with nothing to judge yet
    (north,) = [row for row in landing.acquirers if row.key == "acq-north"]
    assert north.windows[0].sli is None
    # spans past their keeping went with the first write of a later minute
    for span, keep_ms in OUTCOME_SPANS.items():
        oldest = store._db.execute(
            "SELECT min(start_ms) FROM outcome_counts WHERE span_ms = ?", (span,)
        ).fetchone()[0]
        assert oldest >= NOW - NOW % MINUTE_MS - keep_ms
    store.close()


def test_minutes_and_quarter_hours_add_up_to_every_outcome_of_a_window(tmp_path: Path) -> None:
    """Today read as quarter hours plus minutes at its ends is exact, in zones whose midnight
    is on a half or three-quarter hour (India, Nepal), at every minute of an hour."""
    store = Store(str(tmp_path / "state.sqlite"))
    rng = random.Random(7)
    start = NOW - 30 * 3_600_000
    decided: list[int] = []
    for at in sorted(rng.randrange(start, NOW + 3_600_000) for _ in range(3000)):
        with store.transaction():
            store.apply(changes(delivered__none=1), "", at)
        decided.append(at)
    for zone in ("Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "UTC"):
        for now in range(NOW, NOW + 3_600_000, 7 * 60_000 + 1_234):
            windows = windows_at(now, ZoneInfo(zone))
            view = store.page_view(windows.starts, now)
            key = ("smswatch_receipts_total", ("acq-east", "delivered", "none"))
            expected = [
                sum(
                    1
                    for at in decided
                    if w - w % MINUTE_MS <= at < now - now % MINUTE_MS + MINUTE_MS
                )
                for w in windows.starts
            ]
            assert view.increases[key] == expected, (zone, now)
    store.close()


def test_the_page_reads_the_store_on_its_own_connection(tmp_path: Path) -> None:
    """A scrape holding the scrapes' reader never holds the page up, nor the other way."""
    store = Store(str(tmp_path / "state.sqlite"))
    with store._read_lock:  # a scrape in progress
        view = store.page_view([NOW - 3_600_000, NOW], NOW)
    assert view.increases == {} and view.unlisted == []
    store.close()


def test_sources_say_up_down_stale_and_lagging(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = Store(str(tmp_path / "state.sqlite"), clock=lambda: NOW / 1000)
    with store.transaction():
        store.advance_source("sms", "c1", NOW - 20 * 60_000)  # 20 min behind
        store.advance_source("acquirer", "c2", NOW - 60_000)
        store.record_poll("sms", True, "")
    health = {"sms": PollHealth(up=True, polls=3), "acquirer": PollHealth(polls=1)}
    later = NOW / 1000 + STALE_AFTER_POLLS * 15 + 1  # 3 polls of 15 s without success
    landing = gather(cfg, store.page_view, health, windows_at(NOW, SHANGHAI), later)
    sms, acquirer = landing.sources
    assert (sms.up, sms.stale, sms.lagging, sms.lag_s) == (True, True, True, 1200.0)
    assert (acquirer.up, acquirer.stale, acquirer.lagging, acquirer.last_success_ms) == (
        False,
        False,
        False,
        None,
    )
    store.close()


def test_stale_after_polls_is_the_alert_specs() -> None:
    spec = load_spec(ROOT / "alerts" / "spec.yaml")
    assert spec.stale_after_polls == STALE_AFTER_POLLS


def test_the_language_is_asked_or_preferred() -> None:
    assert choose_language("zh-CN", "en") == "zh-CN"
    assert choose_language("zh", "") == "zh-CN"
    assert choose_language("en", "zh-CN") == "en"
    assert choose_language("", "fr-FR, zh-Hans;q=0.8, en;q=0.5") == "zh-CN"
    assert choose_language("", "en-GB;q=0.9, zh-CN;q=0.4") == "en"
    assert choose_language("", "zh-CN;q=0, fr") == "en"
    assert choose_language("klingon", "de") == "en"


def test_everything_on_the_page_is_escaped(tmp_path: Path) -> None:
    """Labels and annotations come from Prometheus: nothing in them becomes markup or a link."""
    hostile = '<script>alert("x")</script>'
    alert = ActiveAlert(
        hostile,
        {"severity": '"><img src=x>', "gateway": hostile},
        {"summary": hostile, "runbook_url": "javascript:alert(1)"},
        "not a time",
    )
    good = ActiveAlert("Watchdog", {"severity": "info"}, {"runbook_url": "https://x/W.md?a=1&b"})
    landing = Landing(
        windows=windows_at(NOW, SHANGHAI),
        gateways=(),
        acquirers=(),
        causes=(CauseRow(hostile, False, (1, 2)),),
        sources=(SourceRow(hostile, "sms", False, False, 2, hostile, None, None, 0, False, False),),
        unlisted=((hostile, hostile, 1),),
        alerts=AlertsNow(True, (alert, good)),
    )
    for lang in ("en", "zh-CN"):
        page = render(landing, lang)
        assert "<script" not in page and "<img" not in page and "javascript:" not in page
        assert '<a href="https://x/W.md?a=1&amp;b" rel="noreferrer">' in page
        assert page.count("&lt;script&gt;") >= 5
        assert not re.search(r"(src|href)=\"(https?:)?//", page.replace("https://x/W.md", ""))


def test_a_prometheus_that_never_answers_leaves_the_page_answering(tmp_path: Path) -> None:
    """A Prometheus that accepts the connection and says nothing: the page answers once the
    timeout (the configured one, at most `ALERTS_TIMEOUT_S`) is over and says the alerts are
    unknown."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # never accepted: the request waits for an answer that never comes
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        cfg = config(tmp_path, lookup={"prometheus": {"url": url, "timeout": "300ms"}})
        store = Store(str(tmp_path / "state.sqlite"))
        page = LandingPage(cfg, store, {}, clock=lambda: NOW / 1000)
        response = page(Request("GET", "/", {"lang": ["zh-CN"]}, {}, b""))
        store.close()
    body = response.body.decode()
    assert response.status == 200 and "无法查询 Prometheus" in body


def test_a_state_file_from_before_the_page_opens_and_counts_from_then_on(tmp_path: Path) -> None:
    path = str(tmp_path / "state.sqlite")
    store = Store(path)
    with store.transaction():
        store.apply(changes(delivered__none=5), "", NOW - 60_000)
    store._db.execute("DROP TABLE outcome_counts")  # as an older version left it
    store.close()
    store = Store(path)
    with store.transaction():
        store.apply(changes(delivered__none=2), "", NOW)
    view = store.page_view([NOW - 3_600_000], NOW)
    assert view.increases[("smswatch_receipts_total", ("acq-east", "delivered", "none"))] == [2]
    counters, _, _ = store.snapshot()
    labels = encode_labels(("acq-east", "delivered", "none"))
    assert ("smswatch_receipts_total", labels, 7.0) in counters  # the counters kept all
    store.close()

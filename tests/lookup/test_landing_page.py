"""The landing page (`/`) of the lookup tests' shared run (a real exporter after a simulated half
hour with every fault): its numbers are the simulator's truth, exactly, in both languages."""

from __future__ import annotations

import re
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from exporter.objectives import DELIVERY_RATIO, RECEIPT_NOTIFICATION_RATIO
from exporter.reports.figures import Delivery
from exporter.simulator.truth import MESSAGES
from exporter.vocabulary import cause_words

from .conftest import Run
from .test_browser import browser
from harness import get_json, http_get

__all__ = ["browser"]  # the lookup page's browser fixture (Debian Chromium via Playwright)

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the run's lookup.timezone


def section(page: str, name: str) -> str:
    found = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    assert found, f"no section {name}"
    return found.group(1)


def sli_cells(page: str, name: str) -> dict[str, dict[str, tuple[int, int]]]:
    """Per row key, per window: (SLO events, bank-side events) as the page says them."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for key, row in re.findall(r'<tr data-key="([^"]+)">(.*?)</tr>', section(page, name), re.S):
        cells = re.findall(r'data-window="(\w+)" data-events="(\d+)" data-bad="(\d+)"', row)
        out[key] = {window: (int(events), int(bad)) for window, events, bad in cells}
    return out


def cause_cells(page: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for cause, row in re.findall(
        r'<tr data-cause="([^"]+)">(.*?)</tr>', section(page, "causes"), re.S
    ):
        cells = re.findall(r'data-window="(\w+)">([\d,]+)<', row)
        out[cause] = {window: int(n.replace(",", "")) for window, n in cells}
    return out


def test_the_page_shows_the_truth_per_gateway_acquirer_and_cause(run: Run) -> None:
    status, page = http_get(f"{run.exporter_url}/")
    assert status == 200
    # the run's outcomes were all decided within the last hour; today too unless the run began
    # before midnight in Beijing
    began = datetime.fromtimestamp(run.config_path.stat().st_mtime, UTC).astimezone(SHANGHAI)
    windows = ("hour", "today") if began.date() == datetime.now(SHANGHAI).date() else ("hour",)

    receipts: dict[str, Counter[tuple[str, str]]] = {}
    for t in run.truth.values():
        if t.kind == "receipt":
            receipts.setdefault(t.acquirer, Counter())[(t.outcome, t.cause)] += 1
    shown = sli_cells(page, "acquirers")
    assert set(shown) == set(receipts) == {"acq-north", "acq-south", "acq-east"}
    for acquirer, counts in receipts.items():
        truth = delivery(acquirer, counts)
        assert truth.sli_events > 500 and truth.bank_side > 10  # the faults left their mark
        for window in windows:
            assert shown[acquirer][window] == (truth.sli_events, truth.bank_side), acquirer

    final = get_json(f"{run.sim_url}/sim/v1/truth")
    messages: dict[str, Counter[tuple[str, str]]] = {}
    for item in final["metrics"][MESSAGES]:
        labels = item["labels"]
        counter = messages.setdefault(labels["gateway"], Counter())
        counter[(labels["status"], labels["cause"])] += int(item["value"])
    shown = sli_cells(page, "gateways")
    assert set(shown) == set(messages) == {"bank-sms"}
    truth = delivery("bank-sms", messages["bank-sms"])
    for window in windows:
        assert shown["bank-sms"][window] == (truth.sli_events, truth.bank_side)
    sli = float(truth.sli or 0)
    verdict = "met" if sli >= DELIVERY_RATIO else "below"
    row = re.search(r'<tr data-key="bank-sms">(.*?)</tr>', page, re.S)
    assert row and f"<b>{sli * 100:.2f} %</b>" in row.group(1) and verdict in row.group(1)
    assert f"{DELIVERY_RATIO * 100:.2f} %" in row.group(1)
    assert f"{RECEIPT_NOTIFICATION_RATIO * 100:.2f} %" in section(page, "acquirers")

    not_notified: Counter[str] = Counter()
    for counts in receipts.values():
        for (outcome, cause), n in counts.items():
            if outcome != "delivered":
                not_notified[cause] += n
    shown_causes = cause_cells(page)
    assert {c: cells["hour"] for c, cells in shown_causes.items()} == dict(not_notified)
    assert set(not_notified) >= {"gateway", "integration", "terminal_config", "invalid_number"}
    for cause in not_notified:
        assert cause_words(cause).name in section(page, "causes")

    # the sources, up, with their last success and lag; the alerts: Prometheus has no rules
    sources = section(page, "sources")
    for name in ("sms", "acquirer"):
        assert re.search(rf'<tr data-source="{name}">.*?<span class="flag ok">up</span>', sources)
    assert "No alert is firing." in section(page, "alerts")


def delivery(key: str, counts: Counter[tuple[str, str]]) -> Delivery:
    """Outcomes as the reports count them, from the simulator's (outcome, cause) counts."""
    by_outcome: Counter[str] = Counter()
    by_cause: Counter[str] = Counter()
    for (outcome, cause), n in counts.items():
        by_outcome[outcome] += n
        by_cause[cause] += n
    return Delivery(key, dict(by_outcome), dict(by_cause))


def test_the_page_speaks_chinese_when_asked_or_preferred(run: Run) -> None:
    english = http_get(f"{run.exporter_url}/")[1]
    asked = http_get(f"{run.exporter_url}/?lang=zh-CN")[1]
    assert '<html lang="zh-Hans">' in asked and "各收单机构的交易通知率" in asked
    assert cause_words("terminal_config", "zh-CN").name in asked
    assert '<a href="?lang=en" hreflang="en" lang="en">English</a>' in asked
    # the same figures in both languages
    assert sli_cells(asked, "acquirers") == sli_cells(english, "acquirers")
    assert cause_cells(asked) == cause_cells(english)
    request = urllib.request.Request(
        f"{run.exporter_url}/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Language"] == "zh-CN"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "各短信网关的送达率" in response.read().decode()


def test_a_phone_shows_both_languages_without_sideways_scrolling_or_outside_requests(
    run: Run, browser: object
) -> None:
    """Headless Debian Chromium at 360 px: the page, then the link to Chinese; a phone set to
    Chinese gets Chinese at once. Nothing is fetched but the page itself."""
    requested: list[str] = []
    for locale, first_heading in (("en-US", "Alerts firing now"), ("zh-CN", "正在触发的告警")):
        context = browser.new_context(  # type: ignore[attr-defined]
            viewport={"width": 360, "height": 740},
            device_scale_factor=2,
            is_mobile=True,
            locale=locale,
        )
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on(
            "request",
            lambda request: (
                None
                if request.url.endswith("/favicon.ico")  # the browser's own, not the page's
                else requested.append(request.url)
            ),
        )
        page.goto(f"{run.exporter_url}/")
        assert page.locator("section#alerts h2").inner_text() == first_heading
        if locale == "en-US":
            assert page.locator("tr[data-key='acq-east'] td").count() == 4
            page.click("header a")  # 中文
            page.wait_for_selector("html[lang='zh-Hans']")
            assert "各收单机构的交易通知率" in page.locator("section#acquirers h2").inner_text()
        # a mobile browser widens its layout viewport to the content: compare with 360 px
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"sideways scrolling ({locale}): {width} px wide"
        # the inline style sheet was allowed by its hash in the Content-Security-Policy
        header = page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor")
        assert header == "rgb(18, 53, 91)"
        context.close()
    assert requested and all(url.startswith(f"{run.exporter_url}/") for url in requested)
    assert len(requested) == 3  # the page, its Chinese version, the page in Chinese

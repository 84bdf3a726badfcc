"""A real browser on the /lookup page: headless Debian Chromium driven by Playwright.

The agent signs in with a token, searches an RRN and reads the timeline; the same on a phone-
sized screen, in Chinese, and signing out. Screenshots are taken and checked to be real images.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api as playwright_sync

from exporter.lookup.advice import advice_for

from .conftest import Run

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    chromium = shutil.which("chromium")
    assert chromium, "install Debian's chromium package (see .ci/run)"
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG (it must be one)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def sign_in(page: object, run: Run, token: str) -> None:
    response = page.goto(f"{run.exporter_url}/lookup")  # type: ignore[attr-defined]
    assert response.status == 401  # nothing but the sign-in form before signing in
    page.fill("#token", token)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def test_an_agent_signs_in_searches_an_rrn_and_reads_the_timeline(
    run: Run, browser: object, tmp_path: Path
) -> None:
    t = run.by_outcome()[("failed", "invalid_number")][0]
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{run.exporter_url}/lookup")
    page.fill("#token", "smsw_not-a-token")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text().startswith("Sign-in failed")

    sign_in(page, run, run.tokens["alice"])
    page.wait_for_selector("text=Signed in as alice")
    page.fill("#q-rrn", t.rrn)
    page.locator("form:has(#q-rrn) button").click()
    card = page.locator(f"article.card[data-rrn='{t.rrn}']")
    card.wait_for()
    advice = advice_for("invalid_number")
    assert advice.title in card.locator("h2").inner_text()
    assert "Not delivered" in card.locator(".badge").inner_text()
    assert card.get_attribute("data-situation") == "invalid_number"
    steps = card.locator("ol.timeline li")
    assert steps.count() >= 3
    texts = steps.all_inner_texts()
    payment = next(s for s in texts if "Card payment of" in s)
    assert payment.startswith("12:")  # local time, Asia/Shanghai
    assert any("The carrier could not deliver it (code" in s for s in texts)
    assert "What to tell the cardholder" in card.inner_text()
    assert advice.advice.split(".")[0] in card.inner_text()
    # the inline style sheet was allowed by the Content-Security-Policy hash
    header = page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor")
    assert header == "rgb(18, 53, 91)"
    shot = page.screenshot(full_page=True)
    (tmp_path / "lookup-desktop.png").write_bytes(shot)
    width, height = png_size(shot)
    assert len(shot) > 10_000 and width == 1280 and height >= 900

    page.click("text=中文")  # the same search in Simplified Chinese
    card = page.locator(f"article.card[data-rrn='{t.rrn}']")
    assert advice_for("invalid_number", "zh").title in card.locator("h2").inner_text()

    page.click("header button")  # sign out
    assert page.locator("#token").is_visible()
    assert page.goto(f"{run.exporter_url}/lookup?rrn={t.rrn}").status == 401
    context.close()


def test_the_page_fits_a_phone_screen(run: Run, browser: object, tmp_path: Path) -> None:
    t = run.by_outcome()[("missing", "terminal_config")][0]
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, run, run.tokens["alice"])
    page.wait_for_selector("#q-rrn")
    page.fill("#q-rrn", t.rrn)
    page.locator("form:has(#q-rrn) button").click()
    card = page.locator(f"article.card[data-rrn='{t.rrn}']")
    card.wait_for()
    assert "No SMS sent" in card.locator(".badge").inner_text()
    # a mobile browser widens its layout viewport to the content: compare with 360 px itself
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"no sideways scrolling on a narrow screen: {width} px wide"
    shot = page.screenshot(full_page=True)
    (tmp_path / "lookup-phone.png").write_bytes(shot)
    width, height = png_size(shot)
    assert width == 720 and height > 1480  # 2x pixels, taller than one screen
    context.close()

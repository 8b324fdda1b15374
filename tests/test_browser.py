"""The chat in a real browser (Debian's chromium through Playwright): type, read the answer and the sources.

Also the proof that article text cannot run in the page: a document full of
``<script>`` and ``<img onerror=…>`` is cited, shown as text, and runs nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import ROOT
from .test_chat import SHOIGU, SHOIGU_FILE

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 90_000
HOSTILE_ARTICLE = (
    'title: Hafenfest in Quellbrunn <img src=x onerror="window.__xss = 2">\n'
    "date: 2025-05-10\n\n"
    "Das Hafenfest in Quellbrunn begann am Samstag mit einem Feuerwerk. <script>window.__xss = 1</script> "
    'Bürgermeister Tilo Marwede eröffnete das Fest <img src=x onerror="window.__xss = 3"> vor 5000 Gästen.\n'
)


@pytest.fixture(scope="module")
def page(chat_server):
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():  # scripts/setup.sh dev installs it; failing beats silently skipping in CI
        pytest.fail(f"{CHROMIUM} is missing; run `bash scripts/setup.sh dev` (it installs Debian's chromium)")
    url, _app = chat_server
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url, wait_until="domcontentloaded")
            yield page
        finally:
            browser.close()


def _ask(page, question: str) -> None:
    box = page.locator("#rag-question textarea")
    box.fill(question)
    box.press("Enter")


@pytest.mark.slow
def test_typed_question_gets_cited_answer_and_sources(page):
    from playwright.sync_api import expect

    expect(page.get_by_text(SHOIGU).first).to_be_visible()  # offered as an example to click
    _ask(page, SHOIGU)
    chat, sources = page.locator("#rag-chat"), page.locator("#rag-sources")
    expect(chat).to_contain_text("Friday, 28 February 2025", timeout=TIMEOUT_MS)
    expect(chat).to_contain_text("[1]")
    expect(sources).to_contain_text(SHOIGU_FILE)
    expect(sources).to_contain_text("2025-02-28")
    expect(sources.locator("mark").first).to_be_visible()  # the answering sentence is highlighted
    expect(page.locator("#rag-doc-table")).to_contain_text(SHOIGU_FILE)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)


@pytest.mark.slow
def test_follow_up_in_the_same_chat(page):
    from playwright.sync_api import expect

    _ask(page, "And Belousov?")
    expect(page.locator("#rag-chat")).to_contain_text("Monday, 14 October 2024", timeout=TIMEOUT_MS)
    expect(page.locator("#rag-sources")).to_contain_text("When did Belousov visit Beijing?")


@pytest.mark.slow
def test_hostile_article_is_shown_as_text_and_runs_nothing(page, chat_server):
    from playwright.sync_api import expect

    _url, app = chat_server
    (app.corpus_dir / "hafenfest.txt").write_text(HOSTILE_ARTICLE, encoding="utf-8")
    app.rescan()
    _ask(page, "Wann begann das Hafenfest in Quellbrunn?")
    sources = page.locator("#rag-sources")
    expect(sources).to_contain_text("hafenfest.txt", timeout=TIMEOUT_MS)
    expect(sources).to_contain_text("<script>window.__xss = 1</script>")  # visible as text
    expect(sources).to_contain_text('<img src=x onerror="window.__xss = 3">')
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#rag-sources script, #rag-sources img, #rag-chat img[src='x']").count() == 0

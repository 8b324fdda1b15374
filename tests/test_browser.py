"""The chat in a real browser (Debian's chromium through Playwright), used as a new user would.

In order, on one page (each test builds on the chat the one before left): an answer with its
own sources, inputs that used to lock the page, two answers after Retry/Undo/Clear, a reload,
the article view, phone layout, dark-mode contrast, the documents panel (mixed batch, replace,
remove -> confirm -> restore), and article text that must stay text. Screenshots go to
``test-artifacts/`` (the README's are copied from there).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_chat import SHOIGU, SHOIGU_FILE

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 90_000
BELOUSOV = "Wann besuchte Belousow Peking?"
BELOUSOV_FILE = "004_35a91f1ce311ecb5.txt"
HOSTILE_ARTICLE = (
    'title: Hafenfest in Quellbrunn <img src=x onerror="window.__xss = 2">\n'
    "date: 2025-05-10\n\n"
    "Das Hafenfest in Quellbrunn begann am Samstag mit einem Feuerwerk. <script>window.__xss = 1</script> "
    'Bürgermeister Tilo Marwede eröffnete das Fest <img src=x onerror="window.__xss = 3"> vor 5000 Gästen.\n'
)
# Issue 23, N2/N3: Markdown in an article's title, outlet and text must not load images or make links.
MARKUP_ARTICLE = (
    "title: Hafenkran in Quellbrunn ![t](http://127.0.0.1:9/p.png) [click](https://evil.example/t2)\n"
    "source: Agentur ![o](http://127.0.0.1:9/o.png) [Mehr](https://evil.example/x)\n"
    "date: 2025-05-11\n\n"
    "Der neue Hafenkran in Quellbrunn wurde am Montag in Betrieb genommen und hebt 80 Tonnen. "
    "Mehr unter https://evil.example/phish, www.evil.example/login und <https://evil.example/a> "
    "und ![p](http://127.0.0.1:9/q.png).\n"
)
BRIDGE = (
    "title: Neue Brücke in Xylofon\ndate: 2025-03-03\n\n"
    "Die Bürgermeisterin von Xylofon, Ramona Quast, eröffnete am Montag die neue Hängebrücke über die Zeller. "
    "Die Brücke ist 240 Meter lang und verbindet die Altstadt mit dem Bahnhof.\n"
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():  # scripts/setup.sh dev installs it; failing beats silently skipping in CI
        pytest.fail(f"{CHROMIUM} is missing; run `bash scripts/setup.sh dev` (it installs Debian's chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def site(chat_server):
    return chat_server


@pytest.fixture(scope="module")
def page(browser, site):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(site[0], wait_until="domcontentloaded")
    yield page
    context.close()


def _box(page):
    return page.locator("#rag-question textarea")


def _bot(page):
    return page.locator("#rag-chat .message-row.bot-row")


def _ask(page, question: str, expect_text: str | None = None) -> None:
    from playwright.sync_api import expect

    before = _bot(page).count()
    box = _box(page)
    expect(box).to_be_enabled()
    box.fill(question)
    box.press("Enter")
    expect(_bot(page)).to_have_count(before + 1)
    expect(box).to_be_enabled()  # the answer is complete when the box is usable again
    if expect_text:
        expect(_bot(page).last).to_contain_text(expect_text)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=False)


@pytest.mark.slow
def test_answer_carries_its_own_sources_and_focus_returns(page):
    from playwright.sync_api import expect

    expect(page.get_by_text(SHOIGU).first).to_be_visible()  # offered as an example to click
    _ask(page, SHOIGU, "Friday, 28 February 2025")
    answer = _bot(page).last
    expect(answer).to_contain_text("Sources")
    expect(answer).to_contain_text(SHOIGU_FILE)
    expect(answer.locator("mark").first).to_be_visible()  # the answering sentence is highlighted
    expect(answer.locator(f'a[href*="article={SHOIGU_FILE}"]').first).to_be_visible()  # [n] is a link
    expect(page.locator("#rag-question button", has_text="Send")).to_be_visible()
    time.sleep(0.5)
    assert page.evaluate("document.activeElement?.closest('#rag-question') != null"), "focus is not in the box"
    _shot(page, "chat-desktop.png")
    answer.locator("button[title='Copy message']").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("Friday, 28 February 2025") and "Sources" in copied and SHOIGU_FILE in copied


@pytest.mark.slow
@pytest.mark.parametrize("message", ["", "   \t  ", "x" * 2_500], ids=["empty", "whitespace", "too long"])
def test_inputs_that_used_to_lock_the_page_leave_it_usable(page, message):
    from playwright.sync_api import expect

    answers = _bot(page).count()
    box = _box(page)
    box.fill(message)
    box.press("Enter")
    expect(_bot(page)).to_have_count(answers + 1)
    expect(_bot(page).last).to_contain_text("⚠️")  # the reason, in the chat
    expect(box).to_be_enabled()
    expect(page.locator("#rag-chat")).to_contain_text("Friday, 28 February 2025")  # conversation intact
    expect(page.locator(".toast-body.error, #rag-chat .error")).to_have_count(0)
    box.fill("still typing")  # usable, not just enabled-looking
    expect(box).to_have_value("still typing")
    box.fill("")


@pytest.mark.slow
def test_two_answers_keep_their_own_sources_through_retry_undo_and_clear(page):
    from playwright.sync_api import expect

    page.locator("#rag-chat button[title='Clear'], #rag-chat button[aria-label='Clear']").first.click()
    expect(_bot(page)).to_have_count(0)
    _ask(page, SHOIGU, "Friday, 28 February 2025")
    _ask(page, BELOUSOV, "Montag, 14. Oktober 2024")
    first, second = _bot(page).nth(0), _bot(page).nth(1)
    expect(first).to_contain_text(SHOIGU_FILE)
    expect(second).to_contain_text(BELOUSOV_FILE)
    first_text = first.inner_text()

    page.locator("#rag-chat button[title='Retry'], #rag-chat button[aria-label='Retry']").last.click()
    expect(_box(page)).to_be_enabled()
    expect(_bot(page)).to_have_count(2)
    expect(_bot(page).nth(1)).to_contain_text(BELOUSOV_FILE)
    assert _bot(page).nth(0).inner_text() == first_text  # [1] of the first answer still means its source

    page.locator("#rag-chat button[title='Undo'], #rag-chat button[aria-label='Undo']").last.click()
    expect(_bot(page)).to_have_count(1)
    assert _bot(page).nth(0).inner_text() == first_text
    expect(page.locator("#rag-chat .message-row.user-row")).to_have_count(1)  # the question went with its answer
    _ask(page, BELOUSOV, BELOUSOV_FILE)


@pytest.mark.slow
def test_reload_keeps_the_conversation(page):
    from playwright.sync_api import expect

    page.reload(wait_until="domcontentloaded")
    expect(page.locator("#rag-chat")).to_contain_text("Friday, 28 February 2025")
    expect(page.locator("#rag-chat")).to_contain_text(BELOUSOV_FILE)
    expect(page.get_by_text("New chat")).to_be_visible()
    expect(page.get_by_text(SHOIGU[:30]).first).to_be_visible()  # the saved chat, listed by its question


@pytest.mark.slow
def test_citation_opens_the_article_at_the_highlighted_sentence(page):
    from playwright.sync_api import expect

    first = _bot(page).nth(0)
    marked = first.locator("blockquote mark").first.inner_text()
    with page.context.expect_page() as opened:  # a new tab: the chat stays where it was
        first.locator(f'a[href*="article={SHOIGU_FILE}"]', has_text="[1]").first.click()
    article = opened.value
    article.set_default_timeout(TIMEOUT_MS)
    try:
        view = article.locator("#rag-article")
        expect(view).to_be_visible()
        expect(view).to_contain_text(SHOIGU_FILE)
        expect(view).to_contain_text("2025-02-28")
        highlight = view.locator("mark#rag-highlight")
        expect(highlight).to_have_text(marked)
        expect(highlight).to_be_in_viewport()
        assert len(view.inner_text()) > 3 * len(marked)  # the whole article, not the passage
        _shot(article, "article-view.png")
    finally:
        article.close()
    expect(page.locator("#rag-chat")).to_contain_text("Friday, 28 February 2025")


@pytest.mark.slow
def test_phone_sources_sit_right_under_the_answer(browser, site):

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.set_default_timeout(TIMEOUT_MS)
    try:
        phone.goto(site[0], wait_until="domcontentloaded")
        _ask(phone, SHOIGU, "Friday, 28 February 2025")
        answer = _bot(phone).last
        text_box = answer.locator("p").first.bounding_box()
        source_box = answer.locator("blockquote").first.bounding_box()
        gap = source_box["y"] - (text_box["y"] + text_box["height"])
        print(f"phone 390x844: the first source starts {gap:.0f} px below the answer")
        assert 0 <= gap <= 200, f"the first source starts {gap:.0f} px below the answer"
        answer.locator("p").first.evaluate("p => p.scrollIntoView({block: 'start'})")
        _shot(phone, "chat-phone.png")
    finally:
        context.close()


def _contrast(foreground: str, background: str) -> float:
    def luminance(css: str) -> float:
        r, g, b = (int(x) / 255 for x in re.findall(r"\d+", css)[:3])
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.slow
def test_highlight_is_readable_in_dark_mode(browser, site):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    dark = context.new_page()
    dark.set_default_timeout(TIMEOUT_MS)
    try:
        dark.goto(site[0] + "?__theme=dark", wait_until="domcontentloaded")
        _ask(dark, SHOIGU, "Friday, 28 February 2025")
        mark = _bot(dark).last.locator("mark").first
        colours = mark.evaluate("m => [getComputedStyle(m).color, getComputedStyle(m).backgroundColor]")
        assert dark.evaluate("document.body.classList.contains('dark')")
        ratio = _contrast(*colours)
        print(f"dark-mode highlight: text {colours[0]} on {colours[1]}: contrast {ratio:.1f}:1")
        assert ratio >= 4.5
    finally:
        context.close()


def _documents(page):
    from playwright.sync_api import expect

    panel = page.locator("#rag-documents")
    if not panel.locator("#rag-doc-table").is_visible():
        panel.get_by_text("Documents").first.click()
    expect(panel.locator("#rag-doc-table")).to_be_visible()
    return panel


def _upload(page, paths: list[Path], replace: bool = False) -> None:
    box = page.locator("#rag-replace input[type=checkbox]")
    if box.is_checked() != replace:
        box.click()
    page.locator("#rag-upload input[type=file]").set_input_files([str(p) for p in paths])


@pytest.mark.slow
def test_mixed_batch_adds_the_good_files_and_keeps_the_reasons(page, tmp_path):
    from playwright.sync_api import expect

    panel = _documents(page)
    good, empty, latin = tmp_path / "xylofon.txt", tmp_path / "leer.txt", tmp_path / "latin.txt"
    good.write_text(BRIDGE, encoding="utf-8")
    empty.write_bytes(b"")
    latin.write_bytes("Grüße aus Köln".encode("latin-1"))
    _upload(page, [empty, good, latin])
    status = panel.locator("#rag-status")
    expect(status).to_contain_text("added xylofon.txt")
    time.sleep(15)  # the reasons stay, they are not a toast
    expect(status).to_contain_text("refused leer.txt: empty file")
    expect(status).to_contain_text("note latin.txt: not UTF-8: converted from cp1252")  # converted, not refused
    expect(panel.locator("#rag-doc-table")).to_contain_text("xylofon.txt")


@pytest.mark.slow
def test_replace_an_article_and_the_new_fact_is_cited(page, tmp_path):
    from playwright.sync_api import expect

    panel = _documents(page)
    newer = tmp_path / "xylofon.txt"
    newer.write_text(BRIDGE.replace("240 Meter", "310 Meter"), encoding="utf-8")
    _upload(page, [newer])
    expect(panel.locator("#rag-status")).to_contain_text("replace it")  # the name is taken: asked, not replaced
    _upload(page, [newer], replace=True)
    expect(panel.locator("#rag-status")).to_contain_text("replaced xylofon.txt")
    _ask(page, "Wie lang ist die Hängebrücke in Xylofon?", "xylofon.txt")
    expect(_bot(page).last).to_contain_text("310 Meter")
    expect(_bot(page).last).not_to_contain_text("240 Meter")


@pytest.mark.slow
def test_remove_asks_first_and_restore_brings_it_back(page):
    from playwright.sync_api import expect

    panel = _documents(page)
    table = panel.locator("#rag-doc-table")
    choose = panel.locator("#rag-remove-choice input")
    choose.click()
    choose.fill("xylofon")
    page.get_by_role("option", name="xylofon.txt").click()
    page.keyboard.press("Escape")
    panel.locator("#rag-remove").click()
    expect(panel.locator("#rag-confirm")).to_be_visible()
    expect(table).to_contain_text("xylofon.txt")  # nothing happens before the confirmation
    panel.locator("#rag-remove-yes").click()
    expect(panel.locator("#rag-status")).to_contain_text("moved to the trash: xylofon.txt")
    expect(table).not_to_contain_text("xylofon.txt")

    trash = panel.locator("#rag-trash-choice input")
    trash.click()
    page.get_by_role("option", name="xylofon.txt").click()
    panel.locator("#rag-restore").click()
    expect(panel.locator("#rag-status")).to_contain_text("restored xylofon.txt")
    expect(table).to_contain_text("xylofon.txt")


@pytest.mark.slow
def test_hostile_article_is_shown_as_text_and_runs_nothing(page, site):
    from playwright.sync_api import expect

    _url, app = site
    (app.corpus_dir / "hafenfest.txt").write_text(HOSTILE_ARTICLE, encoding="utf-8")
    app.rescan()
    _ask(page, "Wann begann das Hafenfest in Quellbrunn?", "hafenfest.txt")
    answer = _bot(page).last
    expect(answer).to_contain_text("<script>window.__xss = 1</script>")  # visible as text
    expect(answer).to_contain_text('<img src=x onerror="window.__xss = 3">')
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#rag-chat script, #rag-chat img[src='x']").count() == 0


@pytest.mark.slow
def test_markup_in_an_articles_metadata_loads_nothing_and_links_nowhere(page, site):
    """Issue 23, N2/N3: no image fetched, no link but the chat's own, in the sources of an answer."""
    from playwright.sync_api import expect

    _url, app = site
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    (app.corpus_dir / "hafenkran.txt").write_text(MARKUP_ARTICLE, encoding="utf-8")
    app.rescan()
    _ask(page, "Wann wurde der Hafenkran in Quellbrunn in Betrieb genommen?", "hafenkran.txt")
    answer = _bot(page).last
    expect(answer).to_contain_text("evil.example/phish")  # there, as text
    time.sleep(1.0)  # an image would have been requested by now
    assert not [u for u in fetched if "127.0.0.1:9" in u or "evil.example" in u], fetched
    assert answer.locator("img").count() == 0
    hrefs = answer.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href') || '')")
    assert hrefs and all(h.startswith("?article=") for h in hrefs), hrefs


# ---- issue 24: chat v3 -------------------------------------------------------------------------


@pytest.fixture
def fresh(browser, site):
    """A new visitor's page (no saved chats), desktop size."""
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(site[0], wait_until="domcontentloaded")
    yield page
    context.close()


@pytest.mark.slow
def test_a_follow_up_that_could_not_be_read_never_blocks_the_next_question(fresh):
    """Issue 24, 1: after "I cannot tell who 'there' means" every later question got the same warning."""
    from playwright.sync_api import expect

    _ask(fresh, "Who did he meet there?", "starts afresh")  # the warning says how to go on
    _ask(fresh, "When did Shoigu visit Beijing?", "Friday, 28 February 2025")
    expect(_bot(fresh).last).not_to_contain_text("⚠️")
    _ask(fresh, "Was hat er gesagt?", "Verstanden als")  # a follow-up of the question answered, not of the warning
    expect(_bot(fresh).last).not_to_contain_text("⚠️")

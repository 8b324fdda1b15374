"""The chat in a real browser (Debian's chromium through Playwright), used as a new user would.

In order, on one page (each test builds on the chat the one before left): an answer with its
own sources, inputs that used to lock the page, two answers after Retry/Undo/Clear, a reload,
the article view, phone layout, dark-mode contrast, the documents panel (mixed batch, replace,
remove -> confirm -> restore), and article text that must stay text. The tests of issue 24 after
them each open a page of their own (``fresh``, or a context of their own: phone, dark, a chat with
an LLM for Stop); the two that take the shared page's documents or answers (the article panel,
replacing an article) make them first when run alone (``-k``). Screenshots go to
``test-artifacts/`` (the README's are taken by ``scripts/screenshots.py``).
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
    expect(box).to_be_enabled(timeout=TIMEOUT_MS)  # expect() waits 5 s by default; a busy machine loads slower
    box.fill(question)
    box.press("Enter")
    expect(_bot(page)).to_have_count(before + 1, timeout=TIMEOUT_MS)  # a first answer on a busy machine
    expect(box).to_be_enabled(timeout=TIMEOUT_MS)  # the answer is complete when the box is usable again
    if expect_text:
        expect(_bot(page).last).to_contain_text(expect_text)


def _cites(answer, source: str) -> None:
    """``answer`` links ``source`` (sources are named by title; the file name is in the link only)."""
    from playwright.sync_api import expect

    expect(answer.locator(f'a[href*="article={source}"]').first).to_be_attached()


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
    _cites(answer, SHOIGU_FILE)
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
@pytest.mark.parametrize("message", ["x" * 2_500], ids=["too long"])  # empty ones: see issue 24, 8 below
def test_inputs_that_used_to_lock_the_page_leave_it_usable(page, message):
    from playwright.sync_api import expect

    answers = _bot(page).count()
    box = _box(page)
    box.fill(message)
    box.press("Enter")
    expect(_bot(page)).to_have_count(answers + 1)  # the box holds 500 characters: those are asked
    expect(box).to_be_enabled()
    expect(page.locator("#rag-chat")).to_contain_text("Friday, 28 February 2025")  # conversation intact
    expect(page.locator(".toast-body.error, #rag-chat .error")).to_have_count(0)
    box.fill("still typing")  # usable, not just enabled-looking
    expect(box).to_have_value("still typing")
    box.fill("")


@pytest.mark.slow
def test_two_answers_keep_their_own_sources_through_retry_undo_and_clear(page):
    from playwright.sync_api import expect

    page.once("dialog", lambda dialog: dialog.accept())  # deleting a chat asks first (issue 24, 7)
    page.locator("#rag-chat button[title='Clear'], #rag-chat button[aria-label='Clear']").first.click()
    expect(_bot(page)).to_have_count(0)
    _ask(page, SHOIGU, "Friday, 28 February 2025")
    _ask(page, BELOUSOV, "Montag, 14. Oktober 2024")
    first, second = _bot(page).nth(0), _bot(page).nth(1)
    _cites(first, SHOIGU_FILE)
    _cites(second, BELOUSOV_FILE)
    first_text = first.inner_text()

    page.locator("#rag-chat button[title='Retry'], #rag-chat button[aria-label='Retry']").last.click()
    expect(_box(page)).to_be_enabled()
    expect(_bot(page)).to_have_count(2)
    _cites(_bot(page).nth(1), BELOUSOV_FILE)
    assert _bot(page).nth(0).inner_text() == first_text  # [1] of the first answer still means its source

    page.locator("#rag-chat button[title='Undo'], #rag-chat button[aria-label='Undo']").last.click()
    expect(_bot(page)).to_have_count(1)
    assert _bot(page).nth(0).inner_text() == first_text
    expect(page.locator("#rag-chat .message-row.user-row")).to_have_count(1)  # the question went with its answer
    _ask(page, BELOUSOV, "Montag, 14. Oktober 2024")


@pytest.mark.slow
def test_reload_keeps_the_conversation(page):
    from playwright.sync_api import expect

    page.reload(wait_until="domcontentloaded")
    expect(page.locator("#rag-chat")).to_contain_text("Friday, 28 February 2025")
    _cites(page.locator("#rag-chat"), BELOUSOV_FILE)
    expect(page.get_by_text("New chat")).to_be_visible()
    expect(page.get_by_text(SHOIGU[:30]).first).to_be_visible()  # the saved chat, listed by its question


@pytest.mark.slow
def test_citation_opens_the_article_in_the_page_at_the_highlighted_sentence(page):
    """Issue 24, 6: [n] opened a new tab that loaded the whole app (4.5 s); now a panel beside the chat, < 1 s."""
    from playwright.sync_api import expect

    if _bot(page).count() == 0:  # run on its own (-k): the tests before it left no answer
        _ask(page, SHOIGU, "Friday, 28 February 2025")
    first = _bot(page).nth(0)
    marked = first.locator("blockquote mark").first.inner_text()
    link = first.locator(f'.rag-answer a[href*="article={SHOIGU_FILE}"]', has_text="[1]").first
    pages = len(page.context.pages)
    started = time.monotonic()
    link.click()
    panel = page.locator("#rag-panel")
    highlight = panel.locator("mark#rag-highlight")
    expect(highlight).to_be_in_viewport(timeout=5_000)
    seconds = time.monotonic() - started
    print(f"article panel: open at the sentence in {seconds:.2f} s")
    assert seconds < 1.0, f"the article took {seconds:.2f} s to open"
    assert len(page.context.pages) == pages  # no new tab
    expect(highlight).to_have_text(marked)
    expect(panel).to_contain_text("2025-02-28")
    assert len(panel.inner_text()) > 3 * len(marked)  # the whole article, not the passage
    expect(page.locator("#rag-chat")).to_be_visible()  # the chat stays beside it
    _shot(page, "article-panel.png")
    page.keyboard.press("Escape")
    expect(panel).not_to_be_in_viewport()
    expect(link).to_be_focused()  # focus returns to the [n] that opened it
    # The address of a source still opens the article on its own (a new tab, a bookmark, a copied link).
    article = page.context.new_page()
    try:
        article.goto(page.url.split("?")[0] + link.get_attribute("href"), wait_until="domcontentloaded")
        view = article.locator("#rag-article")
        expect(view.locator("mark#rag-highlight")).to_have_text(marked, timeout=TIMEOUT_MS)
        expect(view).to_contain_text(SHOIGU_FILE)
        _shot(article, "article-view.png")
    finally:
        article.close()


@pytest.mark.slow
def test_phone_sources_sit_right_under_the_answer(browser, site):

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.set_default_timeout(TIMEOUT_MS)
    try:
        phone.goto(site[0], wait_until="domcontentloaded")
        _ask(phone, SHOIGU, "Friday, 28 February 2025")
        answer = _bot(phone).last
        text_box = answer.locator(".rag-answer").first.bounding_box()
        source_box = answer.locator("blockquote").first.bounding_box()
        gap = source_box["y"] - (text_box["y"] + text_box["height"])
        print(f"phone 390x844: the first source starts {gap:.0f} px below the answer")
        assert 0 <= gap <= 200, f"the first source starts {gap:.0f} px below the answer"
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
    expect(status).to_contain_text(re.compile(r"Added 2 articles, \d+ passages\."))  # issue 24, 9: plain words
    expect(status).not_to_contain_text("chunks embedded")
    time.sleep(15)  # the reasons stay, they are not a toast
    expect(status).to_contain_text("refused leer.txt: empty file")
    expect(status).to_contain_text("note latin.txt: not UTF-8: converted from cp1252")  # converted, not refused
    expect(panel.locator("#rag-doc-table")).to_contain_text("xylofon.txt")


@pytest.mark.slow
def test_replace_an_article_and_the_new_fact_is_cited(page, tmp_path):
    from playwright.sync_api import expect

    panel = _documents(page)
    if "xylofon.txt" not in panel.locator("#rag-doc-table").inner_text():  # run on its own (-k)
        first = tmp_path / "first" / "xylofon.txt"
        first.parent.mkdir()
        first.write_text(BRIDGE, encoding="utf-8")
        _upload(page, [first])
        expect(panel.locator("#rag-doc-table")).to_contain_text("xylofon.txt")
    newer = tmp_path / "xylofon.txt"
    newer.write_text(BRIDGE.replace("240 Meter", "310 Meter"), encoding="utf-8")
    _upload(page, [newer])
    expect(panel.locator("#rag-status")).to_contain_text("replace it")  # the name is taken: asked, not replaced
    _upload(page, [newer], replace=True)
    expect(panel.locator("#rag-status")).to_contain_text("replaced xylofon.txt")
    expect(page.locator("#rag-replace input[type=checkbox]")).not_to_be_checked()  # issue 24, 9: for one upload
    _ask(page, "Wie lang ist die Hängebrücke in Xylofon?", "Neue Brücke in Xylofon")
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
    _ask(page, "Wann begann das Hafenfest in Quellbrunn?", "Hafenfest in Quellbrunn <img")
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
    _ask(page, "Wann wurde der Hafenkran in Quellbrunn in Betrieb genommen?", "Hafenkran in Quellbrunn ![t]")
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


@pytest.mark.slow
def test_the_short_fact_comes_first_and_large_and_the_quote_carries_its_language(fresh):
    """Issue 24, 2: an English reader sees the date in English first; the German quote is marked German."""
    from playwright.sync_api import expect

    _ask(fresh, "When did Belousov visit Beijing?", "14 October 2024")
    answer = _bot(fresh).last
    expect(answer.locator(".rag-short")).to_have_text("Monday, 14 October 2024")
    first_line = answer.locator(".message-content").evaluate("m => m.innerText.trim().split('\\n')[0]")
    assert first_line == "Monday, 14 October 2024"
    short, text = answer.evaluate(
        "a => ['.rag-short', '.rag-answer'].map(s => parseFloat(getComputedStyle(a.querySelector(s)).fontSize))"
    )
    assert short >= 1.3 * text, (short, text)
    expect(answer.locator('.rag-answer [lang="de"]').first).to_contain_text("Belousow")
    expect(answer.locator('blockquote [lang="de"]').first).to_be_visible()  # the source passage too


@pytest.mark.slow
def test_the_view_follows_each_question_and_shows_the_start_of_its_answer(browser, site):
    """Issue 24, 3: after the 3rd-4th question the view stayed put while the chat grew; a long answer
    was shown from the end of its sources, its first line scrolled off the top.

    A narrow window (900 px) makes an answer with its sources taller than the chat's view.
    """
    context = browser.new_context(viewport={"width": 900, "height": 900})
    fresh = context.new_page()
    fresh.set_default_timeout(TIMEOUT_MS)
    try:
        fresh.goto(site[0], wait_until="domcontentloaded")
        _follow_six_questions(fresh)
    finally:
        context.close()


def _follow_six_questions(fresh) -> None:
    questions = [SHOIGU, BELOUSOV, "Where did Putin meet Xi Jinping?", "Wer ist der Sprecher des chinesischen "
                 "Außenministeriums?", "Who did Belousov meet in Beijing?", SHOIGU]  # fmt: skip
    for turn, question in enumerate(questions, 1):
        _ask(fresh, question)
        time.sleep(0.3)
        where = fresh.evaluate(
            """() => {
              const last = (s) => { const all = document.querySelectorAll(s); return all[all.length - 1]; };
              const asked = last('#rag-chat .message-row.user-row').getBoundingClientRect();
              const answer = last('#rag-chat .message-row.bot-row').getBoundingClientRect();
              let pane = last('#rag-chat .message-row.user-row').parentElement;
              while (pane && !(pane.scrollHeight > pane.clientHeight + 1
                               && /(auto|scroll)/.test(getComputedStyle(pane).overflowY))) pane = pane.parentElement;
              const view = pane ? pane.getBoundingClientRect() : {top: 0, bottom: innerHeight};
              return {top: Math.max(view.top, 0), bottom: Math.min(view.bottom, innerHeight),
                      asked: asked.top, askedEnd: asked.bottom, answer: answer.top,
                      scrolled: pane ? pane.scrollTop : scrollY, height: pane ? pane.scrollHeight : 0};
            }"""
        )
        print(f"turn {turn}: {where}")
        assert where["top"] - 1 <= where["asked"] and where["askedEnd"] <= where["bottom"], f"turn {turn}: {where}"
        assert where["top"] <= where["answer"] < where["bottom"] - 20, f"turn {turn}: answer's start hidden {where}"


@pytest.mark.slow
def test_copy_gives_plain_text_with_numbered_sources_and_absolute_links(fresh):
    """Issue 24, 4: Copy gave `[\\[1\\]](?article=…)`, <mark>, <small>, <details> and relative links."""
    _ask(fresh, SHOIGU, "Friday, 28 February 2025")
    answer = _bot(fresh).last
    answer.hover()
    answer.locator("button[title='Copy message'], button[aria-label='Copy message']").first.click()
    time.sleep(0.3)
    copied = fresh.evaluate("navigator.clipboard.readText()")
    print(copied)
    assert copied.startswith("Friday, 28 February 2025\n")
    for markup in ("<", "](", "\\[", "**", "&#"):
        assert markup not in copied, markup
    assert "\nSources\n[1] " in copied
    links = re.findall(r"https?://\S+", copied)
    assert links and all(link.startswith(fresh.url.split("?")[0] + "?article=") for link in links), links
    assert SHOIGU_FILE in links[0]


@pytest.mark.slow
def test_keyboard_focus_names_and_labels(fresh):
    """Issue 24, 5: an example chosen with the keyboard left the focus on the body; the box was "Textbox Send"."""
    from playwright.sync_api import expect

    box = fresh.get_by_role("textbox", name="Your question")
    expect(box).to_be_visible()
    expect(fresh.get_by_role("button", name="Send question")).to_be_visible()
    example = fresh.locator("button.example").first
    example.focus()
    fresh.keyboard.press("Enter")
    expect(_bot(fresh)).to_have_count(1)
    expect(_box(fresh)).to_be_enabled()
    time.sleep(0.5)
    expect(_box(fresh)).to_be_focused()
    fresh.keyboard.type("Wann besuchte Belousow Peking?")  # typing goes into the box
    expect(_box(fresh)).to_have_value("Wann besuchte Belousow Peking?")
    _box(fresh).press("Enter")
    expect(_bot(fresh)).to_have_count(2)
    expect(_box(fresh)).to_be_enabled()
    expect(_box(fresh)).to_have_attribute("placeholder", re.compile("Ask a question"))  # still there after answers
    expect(fresh.get_by_role("grid", name="Past chats")).to_be_attached()
    colours = fresh.evaluate(
        """() => {
          const t = document.querySelector('#rag-question textarea');
          const b = [...document.querySelectorAll('button')].find(x => x.textContent.trim() === 'New chat');
          const bg = (e) => {
            for (; e; e = e.parentElement) {
              const c = getComputedStyle(e).backgroundColor;
              if (!c.endsWith(', 0)') && c !== 'transparent') return c;
            }
            return 'rgb(255, 255, 255)';
          };
          return [[getComputedStyle(t, '::placeholder').color, bg(t)], [getComputedStyle(b).color, bg(b)]];
        }"""
    )
    for foreground, background in colours:
        assert _contrast(foreground, background) >= 4.5, (foreground, background)


def _serious_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    # The page's fade-ins (Gradio's, the highlight's) first end: axe measured a half-faded highlight once.
    page.wait_for_function(
        "document.getAnimations().filter(a => a.effect && a.effect.getComputedTiming().iterations !== Infinity)"
        ".every(a => a.playState !== 'running')",
        timeout=10_000,
    )
    response = Axe().run(page).response
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]} "
        f"{[(c.get('data') or {}) for n in v['nodes'][:2] for c in n.get('any', [])][:2]}"
        for v in response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violations_on_the_chat_and_the_article(browser, site, scheme):
    """Issue 24, 5: axe-core (axe-playwright-python's bundled axe.min.js) in Chromium, light and dark."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1366, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    theme = "?__theme=dark" if scheme == "dark" else ""
    try:
        page.goto(site[0] + theme, wait_until="domcontentloaded")
        _ask(page, SHOIGU, "Friday, 28 February 2025")
        assert _serious_violations(page) == [], "chat"
        if scheme == "dark":
            _shot(page, "chat-dark.png")
        page.locator("#rag-chat .rag-answer a").first.click()
        expect(page.locator("#rag-panel mark#rag-highlight")).to_be_in_viewport()
        assert _serious_violations(page) == [], "article panel"
        href = page.locator("#rag-chat .rag-answer a").first.get_attribute("href")
        page.goto(site[0] + href + theme.replace("?", "&"), wait_until="domcontentloaded")
        expect(page.locator("#rag-article mark#rag-highlight")).to_be_visible()
        assert _serious_violations(page) == [], "article view"
    finally:
        context.close()


@pytest.mark.slow
def test_preview_of_a_citation_on_hover_and_focus_and_sources_named_in_order(fresh):
    """Issue 24, 6: no preview of [n]; sources named by hashed file names; numbers out of order."""
    from playwright.sync_api import expect

    _ask(fresh, SHOIGU, "Friday, 28 February 2025")
    answer = _bot(fresh).last
    cite = answer.locator(".rag-answer a").first
    cite.hover()
    preview = fresh.locator("#rag-preview")
    expect(preview).to_be_visible()
    expect(preview).to_contain_text("Der chinesische Präsident Xi Jinping")  # the title, not the file
    expect(preview.locator("mark")).to_be_visible()  # the cited sentence
    fresh.mouse.move(0, 0)
    expect(preview).to_be_hidden()
    cite.focus()
    expect(preview).to_be_visible()
    fresh.keyboard.press("Escape")
    expect(preview).to_be_hidden()
    names = answer.locator(".rag-src").evaluate_all("spans => spans.map(s => s.textContent)")
    assert names and all("Der chinesische Präsident" in n or "(" in n for n in names), names
    assert not [n for n in names if ".txt" in n], names  # no file names
    numbers = [int(n) for n in re.findall(r"^\[(\d+)\]", "\n".join(names), re.M)]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    fresh.locator("#rag-settings").get_by_text("Settings").first.click()  # the search filter names titles too
    fresh.locator("#rag-scope input").click()
    expect(fresh.get_by_role("option", name=re.compile("Der chinesische Präsident Xi Jinping"))).to_be_visible()
    expect(fresh.get_by_role("option", name=re.compile(r"\.txt"))).to_have_count(0)


@pytest.mark.slow
def test_reload_keeps_the_chat_in_use_and_deleting_a_chat_asks(fresh):
    """Issue 24, 7: a reload showed the newest chat, not the one in use; the trash icon deleted at once."""
    from playwright.sync_api import expect

    chat = fresh.locator("#rag-chat")
    _ask(fresh, SHOIGU, "Friday, 28 February 2025")
    fresh.get_by_role("button", name="New chat").click()
    expect(_bot(fresh)).to_have_count(0)
    _ask(fresh, BELOUSOV, "Montag, 14. Oktober 2024")
    past = fresh.get_by_role("grid", name="Past chats")
    expect(past.get_by_role("gridcell")).to_have_count(2)  # both saved
    past.get_by_role("gridcell", name=SHOIGU).click()  # back to the first chat
    expect(chat).to_contain_text("Friday, 28 February 2025")
    expect(chat).not_to_contain_text("Montag, 14. Oktober 2024")
    time.sleep(0.5)
    fresh.reload(wait_until="domcontentloaded")
    expect(chat).to_contain_text("Friday, 28 February 2025")
    expect(chat).not_to_contain_text("Montag, 14. Oktober 2024")
    asked: list[str] = []

    def dismiss(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    fresh.once("dialog", dismiss)
    fresh.locator("#rag-chat button[title='Clear'], #rag-chat button[aria-label='Clear']").first.click()
    time.sleep(0.5)
    assert asked and "Delete this chat" in asked[0]
    expect(_bot(fresh)).to_have_count(1)  # not deleted: the reader said no


@pytest.mark.slow
def test_box_counts_characters_keeps_refused_text_and_ignores_empty_enter(fresh):
    """Issue 24, 8: an empty Enter made an empty bubble and a warning; a refused question was lost."""
    from playwright.sync_api import expect

    box = _box(fresh)
    expect(box).to_be_enabled()
    box.focus()
    for empty in ("", "   "):
        box.fill(empty)
        box.press("Enter")
    time.sleep(1.0)
    expect(_bot(fresh)).to_have_count(0)
    expect(fresh.locator("#rag-chat .message-row.user-row")).to_have_count(0)
    box.fill("Wann?")
    expect(fresh.locator("#rag-counter")).to_have_text("5 / 500")
    box.fill("")
    box.type("x" * 40)
    box.fill("x" * 600)
    assert len(box.input_value()) <= 500  # the box holds no more than can be asked
    _ask(fresh, "Who did he meet there?", "⚠️")
    expect(box).to_have_value("Who did he meet there?")  # refused, still there to be corrected


@pytest.mark.slow
def test_phone_keeps_the_box_in_view_after_an_answer_and_the_chat_first(browser, site):
    """Issue 24, 10: after one answer the box was ~1,700 px down the page; past chats sat above the chat."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.set_default_timeout(TIMEOUT_MS)
    try:
        phone.goto(site[0], wait_until="domcontentloaded")
        _ask(phone, SHOIGU, "Friday, 28 February 2025")
        time.sleep(0.5)
        expect(_box(phone)).to_be_in_viewport()
        chat_top = phone.locator("#rag-chat").bounding_box()["y"]
        history_top = phone.get_by_text("New chat").first.bounding_box()["y"]
        assert chat_top < history_top, (chat_top, history_top)
        _shot(phone, "chat-phone.png")
    finally:
        context.close()


@pytest.mark.slow
def test_first_start_serves_the_page_at_once_and_shows_the_indexing(browser, tmp_path, model_cache, seed_index):
    """Issue 24, 11: nothing in the log and no page for minutes until "serving" (model set-up and indexing)."""
    import shutil

    from playwright.sync_api import expect

    from tests.support.servers import start_server

    from .conftest import SEEDS

    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    server = start_server(corpus, tmp_path / "index", cache_dir=model_cache, ready=False)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        assert "rag chat: added" not in server.log_tail(100_000), "served only after indexing"
        page.goto(server.url, wait_until="domcontentloaded")
        if "rag chat: ready at" not in server.log_tail(100_000):
            expect(page.locator("#rag-indexing")).to_contain_text("Indexing the articles")
            _shot(page, "first-start.png")
        deadline = time.monotonic() + 300
        while "rag chat: ready at" not in server.log_tail(100_000):
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.5)
        log = server.log_tail(100_000)
        print(log)
        assert re.search(r"rag: embedding passages \d+/\d+", log), log  # progress lines in the server log
        expect(page.locator("#rag-indexing")).not_to_contain_text("Indexing", timeout=10_000)
        _ask(page, SHOIGU, "Friday, 28 February 2025")
    finally:
        context.close()
        server.stop()


# ---- issue 24, what the first round left: renaming, Stop, focus visible, the documents panel -------


@pytest.mark.slow
def test_a_chat_can_be_renamed_and_keeps_its_name_through_more_questions_and_a_reload(fresh):
    """Issue 24, 7: chats could not be renamed (the past-chats list showed each chat's first question only)."""
    from playwright.sync_api import expect

    past = fresh.get_by_role("grid", name="Past chats")
    _ask(fresh, SHOIGU, "Friday, 28 February 2025")
    expect(past.get_by_role("gridcell", name=SHOIGU)).to_be_visible()
    name = fresh.get_by_role("textbox", name="Rename this chat")
    name.fill("Schoigu in Peking")
    name.press("Enter")
    expect(past.get_by_role("gridcell", name="Schoigu in Peking")).to_be_visible()
    expect(past.get_by_role("gridcell", name=SHOIGU)).to_have_count(0)
    expect(name).to_have_value("")
    _ask(fresh, BELOUSOV, "Montag, 14. Oktober 2024")  # the chat goes on under its name
    expect(past.get_by_role("gridcell")).to_have_count(1)
    expect(past.get_by_role("gridcell", name="Schoigu in Peking")).to_be_visible()
    expect(fresh.locator("#rag-chat")).not_to_contain_text("rag-chat-name")  # the name is not drawn in the chat
    time.sleep(0.5)
    fresh.reload(wait_until="domcontentloaded")
    expect(past.get_by_role("gridcell", name="Schoigu in Peking")).to_be_visible()
    expect(_bot(fresh)).to_have_count(2)  # the named chat is the one in use
    fresh.get_by_role("button", name="New chat").click()
    expect(_bot(fresh)).to_have_count(0)
    _ask(fresh, BELOUSOV, "Montag, 14. Oktober 2024")
    expect(past.get_by_role("gridcell")).to_have_count(2)  # a new chat is named by its question again
    expect(past.get_by_role("gridcell", name=BELOUSOV)).to_be_visible()
    expect(past.get_by_role("gridcell", name="Schoigu in Peking")).to_be_visible()


@pytest.fixture(scope="module")
def llm_site(tmp_path_factory, seed_index, embedder, llm_server):
    """A chat whose default answerer is the real Gemma 3 270M, given room for a long answer."""
    from rag.llm.answers import chat_model

    from .conftest import served_chat

    llm = chat_model("openai", base_url=llm_server, max_tokens=400, timeout=180)
    with served_chat(tmp_path_factory.mktemp("chat-stop"), seed_index, embedder, llm=llm, llm_label="gemma") as served:
        yield served.url


@pytest.mark.slow
def test_stop_ends_a_long_answer_and_the_chat_goes_on(browser, llm_site):
    """Issue 24, 11: no Stop button; a long answer could only be waited out."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(llm_site, wait_until="domcontentloaded")
        box = _box(page)
        expect(box).to_be_enabled()
        box.fill(SHOIGU)
        box.press("Enter")
        stop = page.get_by_role("button", name="Stop")
        expect(stop).to_be_visible(timeout=10_000)  # while the model reads the passages and writes
        started = time.monotonic()
        stop.click()
        expect(box).to_be_enabled(timeout=5_000)
        print(f"stopped: the box is usable again {time.monotonic() - started:.2f} s after Stop")
        expect(stop).to_be_hidden()
        shown = page.locator("#rag-chat").inner_text()
        time.sleep(3)
        assert page.locator("#rag-chat").inner_text() == shown  # nothing more is written into the chat
        # The chat goes on: the next question is answered (the quick answerer, so the test stays short).
        page.locator("#rag-settings").get_by_text("Settings").first.click()
        page.get_by_label("Extractive (quotes the passages)").check()
        before = _bot(page).count()
        box.fill(BELOUSOV)
        box.press("Enter")
        expect(_bot(page)).to_have_count(before + 1, timeout=TIMEOUT_MS)
        expect(_bot(page).last).to_contain_text("Montag, 14. Oktober 2024", timeout=TIMEOUT_MS)
    finally:
        context.close()


_FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const r = e.getBoundingClientRect();
  const name = (e.getAttribute('aria-label') || e.innerText || e.placeholder || e.tagName).trim().split('\\n')[0];
  return {name: name.slice(0, 40), x: r.x, y: r.y, width: r.width, height: r.height};
}"""


def _tab_stops_without_visible_focus(page, stops: int = 25) -> tuple[list[str], list[str]]:
    """Tab through ``stops`` stops: ``(names seen in view, names whose focus changes no pixel around them)``."""
    seen, invisible = [], []
    view = page.viewport_size
    for _ in range(stops):
        page.keyboard.press("Tab")
        time.sleep(0.1)
        box = page.evaluate(_FOCUSED)
        if not box or box["width"] == 0 or box["y"] < 0 or box["y"] + box["height"] > view["height"]:
            continue  # nothing focused, or out of view (what is checked is what the reader would see)
        x, y = max(box["x"] - 4, 0), max(box["y"] - 4, 0)
        clip = {"x": x, "y": y, "width": min(box["width"] + 8, view["width"] - x)}
        clip["height"] = min(box["height"] + 8, view["height"] - y)
        focused = page.screenshot(clip=clip, animations="disabled")  # the caret is hidden by default
        page.evaluate("window.__ragFocused = document.activeElement; document.activeElement.blur()")
        blurred = page.screenshot(clip=clip, animations="disabled")
        page.evaluate("window.__ragFocused.focus()")
        seen.append(box["name"])
        if focused == blurred:
            invisible.append(box["name"])
    return seen, invisible


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_control_shows_where_the_keyboard_focus_is(browser, site, scheme):
    """Issue 24, 5 (WCAG 2.2, 2.4.7 focus visible): the question box showed no sign of having the focus."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(site[0] + ("?__theme=dark" if scheme == "dark" else ""), wait_until="domcontentloaded")
        _ask(page, SHOIGU, "Friday, 28 February 2025")
        page.mouse.click(2, 2)  # from the top of the page, as a keyboard user starts
        seen, invisible = _tab_stops_without_visible_focus(page)
        print(f"{scheme}: tab stops in view: {seen}")
        for expected in ("Your question", "Send question", "[1]", "New chat", "Copy message"):
            assert expected in seen, (expected, seen)
        assert invisible == [], f"no visible focus on {invisible}"
    finally:
        context.close()


@pytest.mark.slow
@pytest.mark.parametrize("viewport", [(1366, 900), (390, 844)], ids=["desktop", "phone"])
def test_the_documents_panel_is_found_at_the_top_of_the_page(browser, site, viewport):
    """Issue 24, 9: the Documents panel was folded away at the bottom, below the chat."""
    from playwright.sync_api import expect

    width, height = viewport
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=width < 500)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(site[0], wait_until="domcontentloaded")
        expect(_box(page)).to_be_enabled()
        opener = page.get_by_role("button", name=re.compile(r"^Documents: add, remove or restore articles"))
        expect(opener).to_be_in_viewport()  # seen without scrolling
        assert opener.bounding_box()["y"] < page.locator("#rag-chat").bounding_box()["y"]  # before the chat
        opener.click()
        expect(page.locator("#rag-upload")).to_be_visible()
        expect(page.locator("#rag-upload")).to_contain_text(".docx")  # it says what it reads
    finally:
        context.close()


@pytest.mark.slow
def test_a_refused_file_is_explained_in_plain_words_in_the_status(fresh, tmp_path):
    """Issue 24, 9: a file of another type got a generic toast (and took the good files of its batch with it)."""
    from playwright.sync_api import expect

    panel = _documents(fresh)
    odt, image = tmp_path / "bericht.odt", tmp_path / "foto.jpg"
    odt.write_bytes(b"PK\x03\x04 not an article")
    image.write_bytes(b"\xff\xd8\xff\xe0 not an article")
    _upload(fresh, [odt, image])
    status = panel.locator("#rag-status")
    expect(status).to_contain_text("bericht.odt: unsupported file type .odt")
    expect(status).to_contain_text("foto.jpg: unsupported file type .jpg")
    expect(status).to_contain_text(".docx")  # what it can read instead
    text = status.inner_text()
    for developer_words in ("iconv", "`", "Traceback", "chunks", "$ ", "Invalid file type"):
        assert developer_words not in text, (developer_words, text)
    expect(fresh.locator(".toast-body")).to_have_count(0)  # in the status, which stays; no toast
    expect(panel.locator("#rag-doc-table")).not_to_contain_text("bericht")

"""The README's screenshots of the chat, taken with Debian's Chromium through Playwright.

    python -m scripts.screenshots    # docs/chat-desktop.png, chat-phone.png, article-panel.png, chat-dark.png

A ``rag chat`` of our own (tests/support/servers.py) serves a copy of ``seeds/`` on a free port of
127.0.0.1; each picture is one fresh browser context that asks the README's question.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.support.servers import ROOT, start_server

CHROMIUM = "/usr/bin/chromium"
QUESTION = "When did Shoigu visit Beijing?"
FOLLOW_UP = "Wann besuchte Belousow Peking?"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _ask(page, question: str) -> None:
    from playwright.sync_api import expect

    bots = page.locator("#rag-chat .message-row.bot-row")
    before = bots.count()
    box = page.locator("#rag-question textarea")
    expect(box).to_be_enabled()
    box.fill(question)
    box.press("Enter")
    expect(bots).to_have_count(before + 1, timeout=120_000)
    expect(box).to_be_enabled(timeout=120_000)
    time.sleep(0.5)


def take(url: str, out: Path) -> list[Path]:
    """Four pictures of the chat at ``url`` into ``out``; their paths."""
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            desktop = {"width": 1366, "height": 900}
            for name, options, theme in (
                ("chat-desktop.png", {"viewport": desktop}, ""),
                ("chat-dark.png", {"viewport": desktop, "color_scheme": "dark"}, "?__theme=dark"),
                ("chat-phone.png", {"viewport": {"width": 390, "height": 844}, "is_mobile": True}, ""),
            ):
                context = browser.new_context(**options)
                page = context.new_page()
                page.set_default_timeout(120_000)
                page.goto(url + theme, wait_until="domcontentloaded")
                _ask(page, QUESTION)
                if name == "chat-desktop.png":
                    _ask(page, FOLLOW_UP)
                page.screenshot(path=str(out / name))
                shots.append(out / name)
                if name == "chat-desktop.png":
                    page.locator("#rag-chat .rag-answer a").last.click()
                    expect(page.locator("#rag-panel mark#rag-highlight")).to_be_in_viewport(timeout=30_000)
                    time.sleep(0.3)
                    page.screenshot(path=str(out / "article-panel.png"))
                    shots.append(out / "article-panel.png")
                context.close()
        finally:
            browser.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the pictures (default docs/)")
    parser.add_argument("--url", help="an already running chat to photograph instead of starting one")
    args = parser.parse_args(argv)
    if args.url:
        shots = take(args.url.rstrip("/") + "/", args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="rag-shots-") as tmp:
            corpus = Path(tmp) / "corpus"
            shutil.copytree(ROOT / "seeds", corpus)
            server = start_server(corpus, Path(tmp) / "index")
            try:
                shots = take(server.url, args.out)
            finally:
                server.stop()
    for shot in shots:
        print(shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The article view links the page an article was fetched from, and nothing else an article names."""

from __future__ import annotations

from embeddings.types import Document
from ui.chat.render import article_html


def _doc(url: str) -> Document:
    return Document("web_page.txt", "Der Kurs stieg am Montag.", "Kurs", "0" * 64, metadata={"url": url})


def test_a_fetched_article_links_its_original_page():
    html = article_html(_doc("https://news.example/wirtschaft/kurs"))
    assert 'href="https://news.example/wirtschaft/kurs"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_no_link_for_an_address_that_is_not_a_web_page():
    for url in ("javascript:alert(1)", 'https://x.example/"><img src=x>', "file:///etc/passwd", "ftp://x.example/a"):
        assert "<a " not in article_html(_doc(url)), url

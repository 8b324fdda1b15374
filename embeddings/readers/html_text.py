"""The readable text of an HTML page, through libxml2's linear-time parser with limits on markup.

Python's ``html.parser`` is quadratic on some input (an unclosed ``<!--`` of 800 KB took
178 s per parse), so pages go through lxml instead, as a stream of events into
:class:`_Collector`; no tree is built. Two limits keep hostile markup bounded before
and while it is parsed: a tag may not be longer than :data:`MAX_TAG_CHARS` (one tag with
millions of attributes took the server from 1.2 to 5.0 GB), a page may not hold
more than :data:`MAX_TAGS` tags, and a comment must be closed (else it hides the rest).

>>> text, meta = html_to_text("<title>T</title><p>Erster Absatz.</p><script>x()</script><p>Zweiter.</p>")
>>> text, meta
('Erster Absatz.\\nZweiter.', {'title': 'T'})
"""

from __future__ import annotations

import re

#: A news page's longest tags (an ``<img>`` with a srcset, a ``<meta>`` with JSON) are a few KB.
MAX_TAG_CHARS = 64 * 1024
#: A long news page has a few thousand tags; a 20 MB file of nothing but ``<b>`` would have millions.
MAX_TAGS = 200_000
# An element's opening tag: "<" and a letter, then its attributes up to ">" or an unquoted "<". A
# quoted value is read whole, as the parser reads it: a "<" or ">" inside quotes does not end the
# tag (with zN="<" every 2,000 characters one tag of 1.9 M attributes passed a check that stopped at
# any "<"). Possessive, and finditer never rescans what a match took: linear.
_TAG = re.compile(r"""<[A-Za-z](?:[^<>"']++|"[^"]*+"|'[^']*+')*+""")
_SPACES = re.compile(r"[ \t\u00a0]+")
DATE_KEYS = ("article:published_time", "date", "pubdate", "time")


class MarkupError(ValueError):
    """The page's markup is beyond the limits; the message says which and what to do."""


class _Collector:
    """lxml parser target: collects text (preferring <article> or <main>), title, h1 and date metadata."""

    SKIP = {"script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "svg", "iframe"}
    BLOCK = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article", "main",
             "blockquote", "pre", "figcaption", "dd", "dt", "title"}  # fmt: skip

    def __init__(self) -> None:
        self.parts: dict[str, list[str]] = {"all": [], "main": [], "title": [], "h1": []}
        self.skip = 0
        self.main = 0
        self.where: list[str] = []
        self.meta: dict[str, str] = {}
        self.tags = 0

    def start(self, tag, attrs) -> None:
        self.tags += 1
        if self.tags > MAX_TAGS:
            raise MarkupError(f"more than {MAX_TAGS:,} tags; save the article's text as .txt")
        tag = tag.lower() if isinstance(tag, str) else ""
        if tag in self.SKIP:
            self.skip += 1
        elif tag in ("article", "main"):
            self.main += 1
        if tag == "meta":
            key = (attrs.get("property") or attrs.get("name") or "").lower()
            if key in (*DATE_KEYS[:3], "og:title") and attrs.get("content"):
                self.meta[key] = attrs["content"]
        if tag == "time" and attrs.get("datetime"):
            self.meta.setdefault("time", attrs["datetime"])
        if tag in ("title", "h1"):
            self.where.append(tag)
        if tag in self.BLOCK:
            self._emit("\n")

    def end(self, tag) -> None:
        tag = tag.lower() if isinstance(tag, str) else ""
        if tag in self.SKIP and self.skip:
            self.skip -= 1
        elif tag in ("article", "main") and self.main:
            self.main -= 1
        if tag in ("title", "h1") and self.where:
            self.where.pop()
        if tag in self.BLOCK:
            self._emit("\n")

    def data(self, data: str) -> None:
        if self.where:
            self.parts[self.where[-1]].append(data)
            if self.where[-1] == "title":
                return
        if not self.skip:
            self._emit(data)

    def comment(self, _text: str) -> None:  # comments are not text
        pass

    def close(self) -> None:
        return None

    def _emit(self, data: str) -> None:
        self.parts["all"].append(data)
        if self.main:
            self.parts["main"].append(data)


def html_to_text(html: str) -> tuple[str, dict[str, str]]:
    """Main text of an HTML page plus what its markup says about title and date.

    Raises:
        MarkupError: an unclosed comment, a tag longer than :data:`MAX_TAG_CHARS` or more than :data:`MAX_TAGS` tags.
    """
    from lxml import etree  # lazy: only pages need it

    if html.rfind("<!--") > html.rfind("-->"):  # the parser would drop everything after it, silently
        raise MarkupError("a comment (<!--) is never closed and hides the rest of the page; fix it or save as .txt")
    if html.count("<") > 4 * MAX_TAGS:  # bounds the scan below; a page of such markup fails the tag count anyway
        raise MarkupError(f"more than {MAX_TAGS:,} tags; save the article's text as .txt")
    if any(m.end() - m.start() > MAX_TAG_CHARS for m in _TAG.finditer(html)):
        raise MarkupError(f"a tag longer than {MAX_TAG_CHARS // 1024} KB (attribute flood?); save the text as .txt")
    collector = _Collector()
    parser = etree.HTMLParser(target=collector, encoding="utf-8", no_network=True, recover=True)
    try:
        parser.feed(html.encode("utf-8"))
        parser.close()
    except etree.LxmlError:  # recover=True keeps going through broken markup; this is what is left
        pass
    main = "".join(collector.parts["main"]).strip()
    body = main if len(main) >= 200 else "".join(collector.parts["all"])
    lines = [_SPACES.sub(" ", line).strip() for line in body.split("\n")]
    text = "\n".join(line for line in lines if line)
    meta = {}
    title = " ".join("".join(collector.parts["title"]).split()) or " ".join("".join(collector.parts["h1"]).split())
    if title:
        meta["title"] = title
    for key in DATE_KEYS:
        if key in collector.meta:
            meta["date"] = collector.meta[key]
            break
    return text, meta

"""HTML for the chat's panels. Every piece of article text goes through :func:`html.escape`.

Articles come from anywhere (uploads included), so a title or passage holding
``<script>`` or ``<img onerror=…>`` must reach the page as text, never as markup:

>>> "<script>" in passage_html("a <script>alert(1)</script> b", (2, 10))
False
>>> passage_html(" Xi traf Schoigu. Danach ging er.", (1, 17))
'<mark>Xi traf Schoigu.</mark> Danach ging er.'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from urllib.parse import quote, urlsplit

from embeddings import Document
from rag import Answer, Citation
from rag.claims import removed_summary


def passage_html(passage: str, highlight: tuple[int, int] | None) -> str:
    """The passage, escaped, with the ``highlight`` offsets wrapped in ``<mark>``; outer whitespace trimmed."""
    # Trim here, not in the data: the offsets point into the untrimmed passage.
    lead = len(passage) - len(passage.lstrip())
    passage = passage.strip()
    start, end = (max(highlight[0] - lead, 0), min(highlight[1] - lead, len(passage))) if highlight else (0, 0)
    if start >= end:
        return escape(passage)
    return f"{escape(passage[:start])}<mark>{escape(passage[start:end])}</mark>{escape(passage[end:])}"


def citation_html(c: Citation) -> str:
    """One source: ``[n]`` and title, file name and date, then the passage."""
    meta = escape(c.source) + (f" · {escape(c.date)}" if c.date else "")
    return (
        f'<li class="rag-source" id="rag-source-{c.n}">'
        f'<div class="rag-title"><b>[{c.n}]</b> {escape(c.title)}</div>'
        f'<div class="rag-meta">{meta}</div>'
        f'<blockquote class="rag-passage">{passage_html(c.passage, c.highlight)}</blockquote>'
        "</li>"
    )


def sources_html(answer: Answer | None, asked: str | None = None) -> str:
    """The sources panel for ``answer``; ``asked`` is shown when a follow-up was rewritten."""
    if answer is None:
        return '<div class="rag-sources"><p class="rag-empty">Sources of the answer appear here.</p></div>'
    german = answer.language == "de"
    parts = ['<div class="rag-sources">']
    if asked:
        label = "Verstanden als" if german else "Understood as"
        parts.append(f'<p class="rag-asked">{label}: <i>{escape(asked)}</i></p>')
    if answer.citations:
        parts.append("<ol>" + "".join(citation_html(c) for c in answer.citations) + "</ol>")
    else:
        parts.append(f'<p class="rag-empty">{"Keine Quellen." if german else "No sources."}</p>')
    parts.append("</div>")
    return "".join(parts)


def answer_markdown(text: str) -> str:
    r"""The answer for the chat window, which renders Markdown: quoted article text must stay text.

    HTML is escaped, and so are Markdown links and images: an article holding
    ``![x](http://…)`` would otherwise make the reader's browser fetch that address.

    >>> answer_markdown('„<img src=x onerror=alert(1)>“ [1]')
    '„&lt;img src=x onerror=alert(1)&gt;“ [1]'
    >>> print(answer_markdown('“![x](http://a.example/p.png) [hier](http://b.example)” [2]'))
    “!\[x]\(http&#58;//a.example/p.png) [hier]\(http&#58;//b.example)” [2]

    Bare addresses in a quote stay text too (the renderer would make ``http://…`` and
    ``www.…`` links): the ``:`` or ``.`` that it looks for is written as an entity.

    >>> answer_markdown('„Siehe https://evil.example/x und www.evil.example“ [1]')
    '„Siehe https&#58;//evil.example/x und www&#46;evil.example“ [1]'
    """
    text = escape(text, quote=False).replace("![", "!\\[").replace("](", "]\\(")
    return _AUTOLINK.sub(lambda m: f"{m.group(1)}&#58;//" if m.group(1) else f"{m.group(0)[:-1]}&#46;", text)


# What a Markdown renderer with GFM autolinks turns into a link: scheme:// and www.
_AUTOLINK = re.compile(r"(?i)\b(https?|ftp|file)://|\bwww\.")


_MARKER = re.compile(r"\[(\d{1,3})\]")


def article_link(c: Citation) -> str:
    """The page's address of the whole article of ``c``, pointing at its answering sentence (or passage).

    >>> article_link(Citation(1, "a b.txt", "T", "Vorher. Satz.", 10, 23, 0.5, None, (8, 13)))
    '?article=a%20b.txt&at=18-23'
    """
    start, end = (c.start + c.highlight[0], c.start + c.highlight[1]) if c.highlight else (c.start, c.end)
    return f"?article={quote(c.source, safe='')}&at={start}-{end}"


def cited_numbers(text: str) -> list[int]:
    """The ``[n]`` numbers in ``text``, in order of first use."""
    return list(dict.fromkeys(int(n) for n in _MARKER.findall(text)))


def _linked(text: str, citations: Sequence[Citation]) -> str:
    """Escaped answer text whose ``[n]`` markers link to their articles."""
    links = {c.n: article_link(c) for c in citations}
    return _MARKER.sub(
        lambda m: f"[\\[{m.group(1)}\\]]({links[int(m.group(1))]})" if int(m.group(1)) in links else m.group(),
        answer_markdown(text),
    )


def _meta(c: Citation, outlet: str = "") -> str:
    return " · ".join(markdown_literal(" ".join(x.split())) for x in (c.source, c.date or "", outlet) if x)


def _source_block(citations: Sequence[Citation], outlets: dict[str, str]) -> list[str]:
    """Per article: its title once (a link to the article), file, date, outlet; then each passage under its [n]."""
    lines: list[str] = []
    by_source: dict[str, list[Citation]] = {}
    for c in citations:
        by_source.setdefault(c.source, []).append(c)
    for group in by_source.values():
        first = group[0]
        title = markdown_literal(" ".join(first.title.split()))
        lines.append(
            f"**[{title}]({article_link(first)})** <small>{_meta(first, outlets.get(first.source, ''))}</small>"
        )
        lines.append("")
        for c in group:
            lines.append(f"> **[\\[{c.n}\\]]({article_link(c)})** {passage_markdown(c.passage, c.highlight)}")
            lines.append("")
    return lines


def passage_markdown(passage: str, highlight: tuple[int, int] | None) -> str:
    """A passage on one line for a Markdown quote: escaped, the answering sentence in ``<mark>``, links disarmed."""
    passage = " ".join(passage.split("\n"))
    lead = len(passage) - len(passage.lstrip())
    passage = passage.strip()
    start, end = (max(highlight[0] - lead, 0), min(highlight[1] - lead, len(passage))) if highlight else (0, 0)
    if start >= end:
        return markdown_literal(passage)
    marked = f"<mark>{markdown_literal(passage[start:end])}</mark>"
    return markdown_literal(passage[:start]) + marked + markdown_literal(passage[end:])


# Every character a Markdown renderer (CommonMark, GFM, Gradio's) reads as markup, as an HTML
# character reference: the renderer shows it as that character and never parses it. "_" inside a
# word is no markup (file names keep it); ":" of "scheme://", "." of "www." and "@" are what
# autolinks look for.
_LITERAL = str.maketrans({c: f"&#{ord(c)};" for c in "\\`*[]()!~|<>\"'{}#$^"} | {"&": "&amp;", "@": "&#64;"})
_WORD_EDGE_UNDERSCORE = re.compile(r"(?<!\w)_|_(?!\w)")


def markdown_literal(text: str) -> str:
    r"""``text`` as literal text inside Markdown: no links, images, emphasis, HTML or autolinks.

    >>> markdown_literal("Agentur ![o](http://127.0.0.1:9/p.png) [Mehr](https://evil.example/x)")
    'Agentur &#33;&#91;o&#93;&#40;http&#58;//127.0.0.1:9/p.png&#41; &#91;Mehr&#93;&#40;https&#58;//evil.example/x&#41;'
    >>> markdown_literal("www.evil.example, a@b.example, 004_35a9.txt, _kursiv_, <b>&amp;")
    'www&#46;evil.example, a&#64;b.example, 004_35a9.txt, &#95;kursiv&#95;, &#60;b&#62;&amp;amp;'
    """
    text = _WORD_EDGE_UNDERSCORE.sub("&#95;", text.translate(_LITERAL))
    return _AUTOLINK.sub(lambda m: f"{m.group(1)}&#58;//" if m.group(1) else f"{m.group(0)[:-1]}&#46;", text)


def message_markdown(answer: Answer, asked: str | None = None, outlets: dict[str, str] | None = None) -> str:
    """An answer as one chat message: text with linked ``[n]``, then its sources, the cited ones first.

    Sources the answer cites are listed under "Sources" (one title per article); the other
    retrieved passages are folded under "Also retrieved". The message is self-contained, so
    Undo, Retry, Clear and a reload keep each answer with its own sources, and copying it copies them.
    """
    german = answer.language == "de"
    outlets = outlets or {}
    parts = []
    if asked:
        parts.append(f"*{'Verstanden als' if german else 'Understood as'}: {answer_markdown(asked)}*\n")
    parts.append(_linked(answer.text, answer.citations))
    for note in answer.notes:
        parts.append(f"\n*{escape(note, quote=False)}*")
    if claims := claims_markdown(answer):  # "1 sentence removed: not supported by [1]"
        parts.append(f"\n{claims}")
    used = set(cited_numbers(answer.text))
    cited = [c for c in answer.citations if c.n in used]
    others = [c for c in answer.citations if c.n not in used]
    if cited:
        parts += ["", f"**{'Quellen' if german else 'Sources'}**", "", *_source_block(cited, outlets)]
    if others:
        label = "Außerdem gefunden" if german else "Also retrieved"
        parts += ["", f"<details><summary>{label} ({len(others)})</summary>", "", *_source_block(others, outlets)]
        parts += ["</details>"]
    return "\n".join(parts).strip()


def article_html(doc: Document, at: tuple[int, int] | None = None) -> str:
    """The whole article: title, file, date, outlet, then the text with ``at`` (offsets into it) highlighted."""
    text = doc.text
    start, end = at if at and 0 <= at[0] < at[1] <= len(text) else (0, 0)
    body = escape(text[:start]) + (f'<mark id="rag-highlight">{escape(text[start:end])}</mark>' if end else "")
    body += escape(text[end:])
    outlet = doc.metadata.get("source") or doc.metadata.get("publisher") or doc.metadata.get("outlet") or ""
    meta = " · ".join(escape(x) for x in (doc.source, doc.date.isoformat() if doc.date else "", outlet) if x)
    meta += original_link(doc.metadata.get("url", ""))
    return (
        '<div class="rag-article">'
        f'<h2 class="rag-article-title">{escape(doc.title)}</h2>'
        f'<p class="rag-meta">{meta}</p>'
        f'<div class="rag-article-text">{body}</div>'
        "</div>"
    )


def original_link(url: str) -> str:
    """`` · original`` linking the page an article was fetched from (``rag add URL``): only an http(s)
    address, escaped, opened without referrer or opener; anything else gives no link.

    >>> original_link("https://example.org/a?b=1&c=2")
    ' · <a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer nofollow" target="_blank">original</a>'
    >>> original_link("javascript:alert(1)"), original_link("")
    ('', '')
    """
    url = url.strip()
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or any(c.isspace() or c in '"<>' for c in url):
        return ""
    return f' · <a href="{escape(url)}" rel="noopener noreferrer nofollow" target="_blank">original</a>'


# The highlight sets its own text colour: with ``color: inherit`` dark mode put near-white text on
# pale yellow (contrast ~1.3:1). Dark grey on amber is ~11:1 in both themes.
HIGHLIGHT_BACKGROUND, HIGHLIGHT_TEXT = "#fde68a", "#1f2937"
SOURCES_CSS = f"""
.rag-sources ol {{ padding-left: 0; list-style: none; }}
.rag-source {{ margin-bottom: 0.9em; }}
.rag-meta {{ font-size: 0.85em; opacity: 0.75; }}
.rag-passage {{ margin: 0.3em 0 0 0; padding-left: 0.6em; border-left: 3px solid #ccc; white-space: pre-wrap; }}
mark, #rag-chat mark, #rag-article mark {{ background: {HIGHLIGHT_BACKGROUND}; color: {HIGHLIGHT_TEXT}; }}
#rag-chat blockquote {{ margin: 0.3em 0 0.6em 0; }}
#rag-chat details summary {{ cursor: pointer; }}
.rag-article {{ max-width: 72ch; }}
.rag-article-text {{ white-space: pre-wrap; line-height: 1.6; }}
#rag-doc-table td, #rag-doc-table th {{ white-space: nowrap; }}
@media (max-width: 640px) {{
  #rag-chat {{ height: auto !important; min-height: 60vh; }}
  #rag-chat .message p {{ margin: 0.35em 0; }}
}}

"""


def claims_markdown(answer: Answer) -> str | None:
    """The claim check's outcome under an LLM answer, in italics, or None when no sentence was removed.

    >>> from rag.types import ClaimCheck
    >>> claims_markdown(Answer("Xi [1].", False, claims=(ClaimCheck("Li <b> [1].", False, "'Li' not in [1]", (1,)),)))
    '*1 sentence removed: not supported by [1]*'
    """
    summary = removed_summary(answer.claims)
    return f"*{escape(summary, quote=False)}*" if summary else None

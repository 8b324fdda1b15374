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
from html import escape

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


def claims_markdown(answer: Answer) -> str | None:
    """The claim check's outcome under an LLM answer, in italics, or None when no sentence was removed.

    >>> from rag.types import ClaimCheck
    >>> claims_markdown(Answer("Xi [1].", False, claims=(ClaimCheck("Li <b> [1].", False, "'Li' not in [1]", (1,)),)))
    '*1 sentence removed: not supported by [1]*'
    """
    summary = removed_summary(answer.claims)
    return f"*{escape(summary, quote=False)}*" if summary else None


SOURCES_CSS = """
.rag-sources ol { padding-left: 0; list-style: none; }
.rag-source { margin-bottom: 0.9em; }
.rag-meta { font-size: 0.85em; opacity: 0.75; }
.rag-passage { margin: 0.3em 0 0 0; padding-left: 0.6em; border-left: 3px solid #ccc; white-space: pre-wrap; }
.rag-passage mark { background: #ffe58a; color: inherit; }
"""

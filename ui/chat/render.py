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
from dataclasses import replace
from html import escape
from urllib.parse import quote, urlsplit

from embeddings import Document
from rag import Answer, Citation
from rag.answering.text import detect_language
from rag.llm.claims import removed_summary


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


def in_order(answer: Answer) -> Answer:
    """``answer`` with its citations numbered in the order the text first uses them, the others after.

    >>> a = Answer("X [3] und Y [1].", False, [Citation(n, f"{n}.txt", "T", "p", 0, 1, 0.5) for n in (1, 2, 3)])
    >>> b = in_order(a)
    >>> b.text, [(c.n, c.source) for c in b.citations]
    ('X [1] und Y [2].', [(1, '3.txt'), (2, '1.txt'), (3, '2.txt')])
    """
    by_n = {c.n: c for c in answer.citations}
    used = [n for n in cited_numbers(answer.text) if n in by_n]
    order = used + [c.n for c in answer.citations if c.n not in used]
    number = {old: new for new, old in enumerate(order, 1)}
    if all(old == new for old, new in number.items()):
        return answer
    renumber = lambda m: f"[{number[int(m.group(1))]}]" if int(m.group(1)) in number else m.group()  # noqa: E731
    text = _MARKER.sub(renumber, answer.text)
    citations = [replace(by_n[old], n=number[old]) for old in order]
    return replace(answer, text=text, citations=citations)


def lead_and_rest(answer: Answer) -> tuple[str, str]:
    """The short fact the answer leads with (``""`` if none) and the rest of its text.

    >>> lead_and_rest(Answer("Friday, 28 February — “Xi met Shoigu.” [1]", False, short="Friday, 28 February"))
    ('Friday, 28 February', '“Xi met Shoigu.” [1]')
    """
    head = f"{answer.short} —"
    if answer.short and not answer.abstained and answer.text.startswith(head):
        return answer.short, answer.text[len(head) :].strip()
    return "", answer.text


# Where a quote of an article begins (the answer's own quotation marks, either language's).
_QUOTE_OPEN = re.compile(r"[„“«‚‘\"]")


def quoted_markdown(text: str, citations: Sequence[Citation], language: str = "en") -> str:
    """Escaped answer text whose ``[n]`` link to their articles and whose quotes are marked with their language.

    A screen reader reads a German quote in German and an English frame in English:

    >>> c = Citation(1, "a.txt", "T", "Kirby sagte, Putin sei unter Druck.", 0, 1, 0.5)
    >>> print(quoted_markdown("According to the articles: „Putin sei unter Druck.“ [1]", [c]))
    According to the articles: <span lang="de">„Putin sei unter Druck.“</span> [\\[1\\]](?article=a.txt&at=0-1)
    """
    links = {c.n: article_link(c) for c in citations}
    # A quote is in its article's language: told from the cited passage (a quote of names alone tells nothing).
    languages = {c.n: detect_language(c.passage) for c in citations}
    out, last = [], 0
    for m in [*_MARKER.finditer(text), None]:
        segment = text[last : m.start() if m else len(text)]
        n = int(m.group(1)) if m else None
        out.append(_marked_segment(segment, language, languages.get(n) if n is not None else None))
        if m is None:
            break
        out.append(f"[\\[{n}\\]]({links[n]})" if n in links else m.group())
        last = m.end()
    return "".join(out)


def _marked_segment(segment: str, language: str, quoted_language: str | None) -> str:
    """One stretch of answer text before a ``[n]``: the frame in the answer's language, the quote in its own."""
    opening = _QUOTE_OPEN.search(segment)
    frame, quote = (segment[: opening.start()], segment[opening.start() :]) if opening else (segment, "")
    parts = [_lang_span(frame, language) if frame.strip() and language != "en" else answer_markdown(frame)]
    if quote.strip():
        body = quote.rstrip()
        parts.append(_lang_span(body, quoted_language or detect_language(body)) + quote[len(body) :])
    return "".join(parts)


def _lang_span(text: str, language: str) -> str:
    return f'<span lang="{language}">{answer_markdown(text)}</span>'


def source_name(c: Citation, outlet: str = "") -> str:
    """How a source is named to a reader: its title, then date and outlet (the file name only without a title).

    >>> source_name(Citation(1, "003_5d40.txt", "Xi traf Schoigu", "p", 0, 1, 0.5, "2025-02-28"), "Xinhua")
    'Xi traf Schoigu (2025-02-28, Xinhua)'
    """
    title = " ".join(c.title.split()) or c.source
    meta = ", ".join(x for x in (c.date or "", " ".join(outlet.split())) if x)
    return f"{title} ({meta})" if meta else title


def _source_block(citations: Sequence[Citation], outlets: dict[str, str]) -> list[str]:
    """Each source in number order: ``[n]`` (a link to its article at the sentence), title (date, outlet), passage."""
    lines: list[str] = []
    for c in citations:
        name = markdown_literal(source_name(c, outlets.get(c.source, "")))
        lines.append(f'<span class="rag-src">**[\\[{c.n}\\]]({article_link(c)})** {name}</span>')
        lines.append("")
        passage = passage_markdown(c.passage, c.highlight)
        lines.append(f'> <span lang="{detect_language(c.passage)}">{passage}</span>')
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
    """An answer as one chat message: the short fact, the quote with linked ``[n]``, then its sources.

    The short fact (a date, a number, a name) comes first on its own line, large; the quote
    follows, marked with its language. Sources the answer cites are listed under "Sources" in
    the order the text cites them, each named by title (date, outlet); the other retrieved
    passages are folded under "Also retrieved". The message is self-contained, so Undo, Retry,
    Clear and a reload keep each answer with its own sources.
    """
    answer = in_order(answer)
    german = answer.language == "de"
    outlets = outlets or {}
    parts = []
    if asked:
        parts.append(f"*{'Verstanden als' if german else 'Understood as'}: {answer_markdown(asked)}*\n")
    short, rest = lead_and_rest(answer)
    if short:
        parts.append(f'<span class="rag-short">{markdown_literal(short)}</span>\n')
    parts.append(f'<span class="rag-answer">{quoted_markdown(rest, answer.citations, answer.language)}</span>')
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
.rag-meta {{ font-size: 0.85em; }}
.rag-passage {{ margin: 0.3em 0 0 0; padding-left: 0.6em; border-left: 3px solid #ccc; white-space: pre-wrap; }}
mark, #rag-chat mark, #rag-article mark, #rag-panel mark, #rag-preview mark {{
  background: {HIGHLIGHT_BACKGROUND}; color: {HIGHLIGHT_TEXT};
}}
#rag-chat blockquote {{ margin: 0.3em 0 0.6em 0; }}
#rag-chat details summary {{ cursor: pointer; }}
#rag-chat .rag-short {{ display: block; font-size: 1.45em; font-weight: 700; line-height: 1.3; }}
.rag-article {{ max-width: 72ch; }}
.rag-article-text {{ white-space: pre-wrap; line-height: 1.6; }}
#rag-doc-table td, #rag-doc-table th {{ white-space: nowrap; }}
/* The article beside the chat (ui/chat/page.js opens it). */
#rag-panel {{
  position: fixed; top: 0; right: 0; bottom: 0; width: min(640px, 100vw); z-index: 900; overflow-y: auto;
  padding: 1em 1.2em; background: var(--background-fill-primary); border-left: 1px solid var(--border-color-primary);
  box-shadow: -4px 0 16px rgba(0, 0, 0, 0.2); visibility: hidden; transform: translateX(105%);
}}
body.rag-panel-open #rag-panel {{ visibility: visible; transform: none; }}
#rag-panel-request {{ display: none !important; }}
#rag-panel-close {{ position: sticky; top: 0; z-index: 1; align-self: flex-end; width: auto; }}
#rag-preview {{
  position: fixed; z-index: 1000; padding: 0.6em 0.8em; border-radius: 8px; font-size: 0.9em; max-height: 50vh;
  overflow-y: auto; background: var(--background-fill-primary); color: var(--body-text-color);
  border: 1px solid var(--border-color-primary); box-shadow: 0 4px 16px rgba(0, 0, 0, 0.25);
}}
#rag-preview[hidden] {{ display: none; }}
#rag-preview .rag-preview-title {{ font-weight: 600; }}
#rag-preview blockquote {{ margin: 0.4em 0; padding-left: 0.6em; border-left: 3px solid #ccc; }}
#rag-preview .rag-preview-hint {{ font-size: 0.85em; }}
.rag-counter {{ font-size: 0.8em; text-align: right; padding: 0 0.5em 0.2em 0; }}
.rag-counter-near {{ font-weight: 700; }}
/* Contrast of at least 4.5:1 for text (WCAG 2.2 AA): the placeholder, and white on the primary buttons. */
#rag-question textarea::placeholder, #rag-chat-name textarea::placeholder {{ color: #5f6368; opacity: 1; }}
.dark #rag-question textarea::placeholder, .dark #rag-chat-name textarea::placeholder {{ color: #b8bcc2; }}
/* Focus visible (WCAG 2.2, 2.4.7): the theme sets "outline: none !important" on text boxes and draws
   nothing else when one has the focus. The ring takes the text's colour: it stands out in both themes. */
body .gradio-container textarea:focus-visible, body .gradio-container input:focus-visible {{
  outline: 2px solid currentColor !important; outline-offset: -2px;
}}
/* More specific than the theme's ":root" and ":root .dark". */
:root body, :root body.dark, :root body .dark {{
  --button-primary-background-fill: #c2410c; --button-primary-background-fill-hover: #9a3412;
  --button-primary-text-color: #ffffff; --button-primary-text-color-hover: #ffffff;
  --button-cancel-background-fill: #b91c1c; --button-cancel-background-fill-hover: #991b1b;
  --button-cancel-text-color: #ffffff; --button-cancel-text-color-hover: #ffffff;
}}
footer .show-api, footer .built-with, footer .settings, footer a, footer button {{ color: #5f6368 !important; }}
.dark footer .show-api, .dark footer .built-with, .dark footer .settings, .dark footer a, .dark footer button {{
  color: #b8bcc2 !important;
}}
@media (max-width: 640px) {{
  #rag-chat {{ height: auto !important; min-height: 40vh; }}
  #rag-chat .message p {{ margin: 0.35em 0; }}
  /* On a phone the conversation comes first and the box stays at the bottom of the screen. */
  .rag-history {{ order: 2; }}
  #rag-question {{
    position: fixed !important; left: 0; right: 0; bottom: 0; z-index: 800; margin: 0 !important;
    border-top: 1px solid var(--border-color-primary);
  }}
  body {{ padding-bottom: 110px; }}
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

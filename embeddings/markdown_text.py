"""Markdown to the text a reader sees: headings become metadata, markup disappears.

A ``.md`` article read as plain text puts ``# Neue Gas-Leitstelle`` and
``**fett**`` into quotes. :func:`markdown_to_text` keeps the words and drops
the markup; the first heading is the title, the other headings are left out
of the text (they are not sentences and would be glued to the next one):

>>> md = "# Neue Leitstelle\\n\\nDer **Betreiber** hat [hier](http://x.de) eröffnet.\\n\\n## Mehr\\n\\n- Punkt *eins*"
>>> text, meta = markdown_to_text(md)
>>> meta
{'title': 'Neue Leitstelle'}
>>> print(text)
Der Betreiber hat hier eröffnet.
<BLANKLINE>
Punkt eins

Front matter (``---`` … ``---``) is read before this, by :func:`embeddings.readers.split_header`.
No Markdown library: the subset news articles use is a handful of patterns.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s*(```|~~~)")
_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_QUOTE = re.compile(r"^\s{0,3}>\s?")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # image: its alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # link: its text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # reference link
    (re.compile(r"<(https?://[^>]+)>"), r"\1"),  # autolink
    (re.compile(r"</?[A-Za-z][^>]*>"), ""),  # inline HTML tags
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])"), r"\2"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),
]
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>|~])")
_PRIVATE = 0xF0000  # escaped characters wait here (Unicode private use) while the markup is removed
_REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$")


def inline_text(line: str) -> str:
    """A line without its inline markup.

    >>> inline_text("Die **neue** `Leitung` ist ~~alt~~ [online](https://x.example) \\\\*wichtig\\\\*")
    'Die neue Leitung ist alt online *wichtig*'
    """
    line = _ESCAPE.sub(lambda m: chr(_PRIVATE + ord(m.group(1))), line)
    for pattern, repl in _INLINE:
        line = pattern.sub(repl, line)
    return re.sub("[\U000f0000-\U000f00ff]", lambda m: chr(ord(m.group()) - _PRIVATE), line)


def markdown_to_text(markdown: str) -> tuple[str, dict[str, str]]:
    """The readable text of a Markdown body and ``{"title": first heading}`` (if there is one)."""
    meta: dict[str, str] = {}
    out: list[str] = []
    lines = markdown.split("\n")
    fenced = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            out.append("")
            continue
        if fenced:
            out.append(line)
            continue
        heading = _ATX.match(line)
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if heading is None and line.strip() and _SETEXT.match(following) and not _BULLET.match(line):
            heading = re.match(r"()(.*)", line.strip())
        if heading is not None:
            meta.setdefault("title", inline_text(heading.group(2)).strip())
            out.append("")
            continue
        if (_SETEXT.match(line) and out and out[-1] == "") or _RULE.match(line) or _TABLE_RULE.match(line):
            out.append("")
            continue
        if _REFERENCE_DEF.match(line):
            continue
        line = _QUOTE.sub("", line)
        line = _BULLET.sub("", line)
        if "|" in line and line.strip().startswith("|"):
            line = " ".join(cell.strip() for cell in line.strip().strip("|").split("|"))
        out.append(inline_text(line).rstrip())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n")
    return text, {k: v for k, v in meta.items() if v}

"""Bylines and attribution lines: who wrote an article and which outlets it names as its sources.

News pages end (or begin) with short lines that are not statements of the story:
``Jana Kroll (Laut ERR, Baltic Courier)``, ``Quelle: https://…``,
``— Harbour Daily (@harbourdaily) March 5, 2024``, ``Text ist eine Übersetzung vom
Nordkurier Artikel:``. They are kept as document metadata (``author``, ``outlets``) when the
article is indexed, so "which outlet…" can be answered, and :func:`is_attribution` lets answering
treat them as the evidence for such questions only.

>>> attribution("Die Ministerin kam an.\\nJana Kroll (Laut ERR, Baltic Courier)\\n")
{'author': 'Jana Kroll', 'outlets': 'ERR, Baltic Courier'}
>>> attribution("Text ist eine Übersetzung vom Nordkurier Artikel:\\nEr sagte Nein.")
{'outlets': 'Nordkurier'}
"""

from __future__ import annotations

import re

MAX_WORDS = 14  # an attribution line is short; a sentence that names a source is a statement

_CREDIT = re.compile(
    r"^\s*(?P<author>(?:[A-ZÄÖÜ][\w.'’-]*\s+){0,3}[A-ZÄÖÜ][\w.'’-]*)\s*\((?:laut|quelle|quellen|source|sources|via"
    r"|mit material von"
    r"|with reporting from)\s*:?\s*(?P<outlets>[^)]{2,120})\)\s*$",
    re.I,
)
_TRANSLATION = re.compile(
    r"^\s*(?:text ist eine|dieser text ist eine|this (?:text|article) is a) (?:übersetzung|translation)"
    r"\s+(?:vom|von|des|of|from)(?: the| dem| einem)?\s+(?P<outlets>.{2,60}?)"
    r"(?:\s+(?:artikel|article|beitrag))?\s*:?\s*$",
    re.I,
)
_EMBED_CREDIT = re.compile(r"^\s*[—–-]\s*(?P<outlets>[^(@\n]{2,60}?)\s*\(@\w+\)")
_SOURCE_LINE = re.compile(r"^\s*(?:quelle|source|sources|quellen)\s*:\s*(?P<outlets>\S.{0,150})$", re.I)


def attribution(text: str) -> dict[str, str]:
    """``author`` and ``outlets`` from the attribution lines of ``text`` (empty when it has none)."""
    found: dict[str, str] = {}
    outlets: list[str] = []
    for line in text.splitlines():
        if len(line.split()) > MAX_WORDS:
            continue
        if m := _CREDIT.match(line):
            found.setdefault("author", m.group("author").strip())
            outlets += [o.strip() for o in m.group("outlets").split(",") if o.strip()]
        elif (m := _TRANSLATION.match(line)) or (m := _EMBED_CREDIT.match(line)):
            outlets.append(m.group("outlets").strip())
        elif (m := _SOURCE_LINE.match(line)) and not m.group("outlets").startswith("http"):
            outlets += [o.strip() for o in m.group("outlets").split(",") if o.strip()]
    if outlets:
        found["outlets"] = ", ".join(dict.fromkeys(outlets))
    return found


def is_attribution(line: str) -> bool:
    """Whether a line is a byline or attribution line (see the module doc).

    >>> is_attribution("Jana Kroll (Laut ERR, Baltic Courier)"), is_attribution("Laut ERR kam er am Montag an.")
    (True, False)
    """
    return len(line.split()) <= MAX_WORDS and any(
        p.match(line) for p in (_CREDIT, _TRANSLATION, _EMBED_CREDIT, _SOURCE_LINE)
    )


def credits_article(line: str) -> bool:
    """Whether a line names the outlets of the whole article (a byline, a translation or source line),
    not of one embedded quote (a post's credit) nor only a web address.

    >>> credits_article("Jana Kroll (Laut ERR, Baltic Courier)"), credits_article("Quelle: https://example.org/a")
    (True, False)
    >>> credits_article("— Harbour Daily (@harbourdaily) March 5, 2024")
    False
    """
    if len(line.split()) > MAX_WORDS or _EMBED_CREDIT.match(line):
        return False
    return bool(attribution(line).get("outlets"))

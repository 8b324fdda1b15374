"""Rejoin text extracted from a PDF: lines wrapped mid-sentence, words hyphenated across lines.

A PDF's text layer keeps the printed line breaks, so a sentence ends at the
edge of the column and a quote of it stops half-way. :func:`reflow` joins
the lines of a paragraph again and keeps real breaks (blank lines, short
lines such as headings):

>>> reflow("Die Stadt eröffnete am Montag die neue Hänge-\\nbrücke über die Zeller. Sie ist 240 Meter\\nlang.")
'Die Stadt eröffnete am Montag die neue Hängebrücke über die Zeller. Sie ist 240 Meter lang.'
>>> reflow("Neue Leitstelle\\nDer Betreiber der Gasleitung hat in der Stadt eine neue Leitstelle\\neröffnet.")
'Neue Leitstelle\\nDer Betreiber der Gasleitung hat in der Stadt eine neue Leitstelle eröffnet.'
"""

from __future__ import annotations

import re

# A line shorter than this share of the paragraph's longest line ends where the author ended it
# (a heading, the last line of a paragraph), not where the column did.
SHORT_LINE = 0.6
_HYPHEN = re.compile(r"(?<=[^\W\d_])[-\u00ad]$")
_HEADER_LINE = re.compile(r"^([A-Za-z][\w-]{0,30}):[ \t]*(.*)$")


def _joins(line: str, following: str, usual: float) -> bool:
    """Whether ``following`` continues ``line``'s sentence rather than starting a new block."""
    if not line or not following:
        return False
    if following[0].islower() or following[0] in ",;)" or _HYPHEN.search(line):
        return True
    return len(line) >= SHORT_LINE * usual


def reflow(text: str) -> str:
    """Join the lines of each paragraph; a word hyphenated at a line end is rejoined.

    Compounds keep their hyphen ("Gas-" + "Leitstelle" is "Gas-Leitstelle"): only a
    hyphen before a lower-case continuation is a line-end hyphenation.
    """
    out = []
    for block in re.split(r"\n[ \t]*\n", text):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        usual = max(map(len, lines))  # the column's width: its longest line
        merged = lines[0]
        for line in lines[1:]:
            last = merged.rsplit("\n", 1)[-1]
            if not _joins(last, line, usual):
                merged += "\n" + line
            elif _HYPHEN.search(merged) and line[0].islower():
                merged = merged[:-1] + line
            elif merged.endswith("-"):
                merged += line
            else:
                merged += " " + line
        out.append(merged)
    return "\n\n".join(out)


def split_pdf_header(text: str, keys: set[str]) -> tuple[dict[str, str], str]:
    """A leading block of ``key: value`` lines (keys from ``keys``, e.g. title, date) as metadata.

    Unlike a text file's header, a PDF's text has no reliable blank line after it, so the
    block ends at the first line that is not such a pair.

    >>> split_pdf_header("title: Neue Brücke\\ndate: 2025-03-03\\nDie Brücke ist lang.", {"title", "date"})
    ({'title': 'Neue Brücke', 'date': '2025-03-03'}, 'Die Brücke ist lang.')
    """
    lines = text.split("\n")
    meta: dict[str, str] = {}
    used = 0
    for line in lines:
        m = _HEADER_LINE.match(line.strip())
        if not m or m.group(1).lower() not in keys:
            break
        meta[m.group(1).lower()] = m.group(2).strip().strip("\"'")
        used += 1
    if not meta:
        return {}, text
    return meta, "\n".join(lines[used:]).lstrip("\n")

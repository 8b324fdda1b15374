"""Sentence-aware chunking for German (and English) news text.

Sentences are found by rules that know German writing: ordinals ("am 14.
Oktober"), abbreviations ("z. B.", "Dr."), initials and quotes that close after
the full stop („…“). Chunks are runs of whole sentences up to a size limit,
overlapping by one sentence so that a fact at a boundary is never cut off.
Every span is a pair of offsets into the document text.

>>> text = "Xi traf am 14. Oktober Dr. Li. Er sagte: „Wir sind Freunde.“ Danach reiste er ab."
>>> [text[a:b] for a, b in split_sentences(text)]
['Xi traf am 14. Oktober Dr. Li.', 'Er sagte: „Wir sind Freunde.“', 'Danach reiste er ab.']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from embeddings.types import Chunk, Document

ABBREVIATIONS = {
    # German
    "z", "b", "bzw", "ca", "dr", "prof", "nr", "usw", "vgl", "etc", "st", "mio", "mrd", "jh", "jhd", "u", "a",
    "d", "h", "hr", "fr", "abs", "art", "bd", "engl", "dt", "inkl", "evtl", "ggf", "bspw", "sog", "gen",
    "min", "max", "tel", "str", "mr", "mrs", "ms", "jr", "sr", "sen", "rep", "inc", "ltd", "co", "corp",
    "no", "vs", "univ", "ing", "dipl", "i", "e", "s", "o", "v", "chr", "n", "jan", "feb", "mär", "apr",
    "aug", "sep", "sept", "okt", "nov", "dez", "dec", "oct", "lt", "gov", "col", "capt", "adm",
}  # fmt: skip

# A candidate end: terminal punctuation, optional closing quotes/brackets, then whitespace. A match starts
# only at the first mark of a run and never backtracks: a line of 20,000 dots would otherwise be retried
# from every dot (quadratic time: seconds for 20 KB, hours for a megabyte).
_END = re.compile(r"(?<![.!?…])[.!?…]++[\"'“”»«‘’)\]]*+(?=\s)")
_OPENING = "„“\"'»«‚‘(["


def split_sentences(
    text: str, start: int = 0, end: int | None = None, *, max_chars: int | None = None
) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text[start:end]``, whitespace trimmed.

    Line breaks always end a sentence (news paragraphs, headlines). With
    ``max_chars``, a longer sentence (a line with no full stop, a table) is cut
    into pieces at whitespace, as :func:`chunk_spans` cuts it.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text[start:end]):
        a, b = start + line.start(), start + line.end()
        cursor = a
        for m in _END.finditer(text, a, b):
            if _is_boundary(text, m.start(), m.end(), b):
                spans.append((cursor, m.end()))
                cursor = m.end()
        spans.append((cursor, b))
    trimmed = [span for span in (trim_span(text, s, e) for s, e in spans) if span]
    if max_chars is None:
        return trimmed
    return [piece for s, e in trimmed for piece in _hard_split(text, s, e, max_chars)]


def _is_boundary(text: str, punct: int, after: int, line_end: int) -> bool:
    nxt = after
    while nxt < line_end and text[nxt].isspace():
        nxt += 1
    if nxt >= line_end:
        return False  # the line end closes the sentence anyway
    follower = text[nxt]
    if not (follower.isupper() or follower.isdigit() or follower in _OPENING):
        return False  # "… usw. und" / lower-case continuation
    if text[punct] != ".":
        return True
    tail = re.search(r"[\w.\-]*$", text[max(0, punct - 20) : punct])
    token = tail.group(0) if tail else ""
    word = token.rsplit(".", 1)[-1].rsplit("-", 1)[-1].lower()
    if word.isdigit() and len(word) <= 3:
        return False  # German ordinal: "am 14. Oktober", "im 20. Jahrhundert"
    if len(word) == 1 and word.isalpha():
        return False  # initials: "John F. Kennedy", "z. B."
    return word not in ABBREVIATIONS


def trim_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """``text[start:end]`` without leading and trailing whitespace, or None when nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _hard_split(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Split an over-long sentence at whitespace (or anywhere, if it has none) into pieces <= limit."""
    pieces = []
    while end - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        cut = cut if cut > start else start + limit
        pieces.append(trim_span(text, start, cut))
        start = cut
    pieces.append(trim_span(text, start, end))
    return [p for p in pieces if p]


@dataclass(frozen=True)
class ChunkingConfig:
    """How documents are cut. Part of the index manifest: changing it re-chunks every file."""

    max_chars: int = 700
    min_chars: int = 250
    overlap_sentences: int = 1
    version: int = 1


def chunk_spans(text: str, config: ChunkingConfig = ChunkingConfig()) -> list[tuple[int, int]]:
    """Chunk spans over ``text``: whole sentences, at most ``max_chars`` unless one sentence is longer.

    A chunk also ends early at a paragraph break once it holds ``min_chars``.
    Consecutive chunks share ``overlap_sentences`` sentences.
    """
    sentences = split_sentences(text, max_chars=config.max_chars)
    chunks: list[tuple[int, int]] = []
    i = 0
    while i < len(sentences):
        j = i + 1
        while j < len(sentences):
            if sentences[j][1] - sentences[i][0] > config.max_chars:
                break
            size = sentences[j - 1][1] - sentences[i][0]
            if size >= config.min_chars and "\n" in text[sentences[j - 1][1] : sentences[j][0]]:
                break
            j += 1
        chunks.append((sentences[i][0], sentences[j - 1][1]))
        if j >= len(sentences):
            break
        overlap = min(config.overlap_sentences, j - i - 1)
        # Do not carry a sentence over a paragraph break or when it alone fills half a chunk.
        if overlap and (
            "\n" in text[sentences[j - 1][1] : sentences[j][0]]
            or sentences[j - 1][1] - sentences[j - 1][0] > config.max_chars // 2
        ):
            overlap = 0
        i = j - overlap
    return chunks


def chunk_document(doc: Document, config: ChunkingConfig = ChunkingConfig()) -> list[Chunk]:
    """The document's chunks, each with provenance (``source``, ``title``, offsets)."""
    return [Chunk(doc.source, doc.title, s, e, doc.text[s:e]) for s, e in chunk_spans(doc.text, config)]

"""Turn ranked evidence into an :class:`~rag.types.Answer`: abstain or answer, in the question's language.

The answer quotes the evidence verbatim and cites it as ``[n]``; for *when*
questions it leads with the resolved calendar date, for *how many* with the
number. Nothing in the text comes from outside the cited passages except the
framing words and the date arithmetic.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from embeddings import Snapshot, split_sentences, trim_span

from .questions import Question
from .select import MAX_SENTENCE_CHARS, SPEECH, Scored
from .temporal import resolve
from .text import STOPWORDS, fold, similar_words, transliterate, words
from .types import Answer, Citation, Hit

NOT_FOUND = {"en": "Not found in the indexed articles.", "de": "In den indexierten Artikeln nicht gefunden."}
ACCORDING = {"en": "According to the articles", "de": "Laut den Artikeln"}
QUOTES = {"en": ("“", "”"), "de": ("„", "“")}


@dataclass(frozen=True)
class Thresholds:
    """Evidence below these is too weak to answer from (calibrated on the dev set, see README)."""

    min_dense: float = 0.80  # cosine of question and best sentence
    max_unknown_names: float = 0.5  # share of the question's names absent from the index
    tie: float = 0.015  # a second sentence scoring this close to the best is quoted too
    adjacent: float = 0.04  # ... or this close, when it is the sentence right before or after


class Vocabulary:
    """The words of an index, for asking "has the index ever seen this name?" quickly."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.exact: set[str] = set()
        self.by_prefix: dict[str, set[str]] = {}
        for text in texts:
            for w in words(text):
                f = fold(w)
                if f not in self.exact:
                    self.exact.add(f)
                    self.by_prefix.setdefault(transliterate(f)[:2], set()).add(f)

    def knows(self, word: str) -> bool:
        f = fold(word)
        if f in self.exact:
            return True
        return any(similar_words(f, w) for w in self.by_prefix.get(transliterate(f)[:2], ()))


def unknown_names(question: Question, vocabulary: Vocabulary) -> list[str]:
    """The question's names that appear nowhere in the index (in any spelling variant)."""
    return [n for n in question.names if not vocabulary.knows(n)]


def should_abstain(question: Question, best: Scored | None, vocabulary: Vocabulary, t: Thresholds) -> bool:
    """Abstain when there is no evidence, it is weak, or the question is about names the index never saw."""
    if best is None or best.dense < t.min_dense:
        return True
    names = question.names
    if names:
        missing = set(unknown_names(question, vocabulary))
        if len(missing) / len(names) > t.max_unknown_names:
            return True
        # A multi-word name missing entirely ("Angela Merkel", "Champions League").
        if any(a in missing and b in missing for a, b in itertools.pairwise(names)):
            return True
    return False


_QUOTE_MARK = re.compile(r"[„“”\"»«]")
_CAPITALISED = re.compile(r"(?<!^)\b[A-ZÄÖÜ][\w\-]{2,}")


def _names(text: str) -> set[str]:
    return {w for w in _CAPITALISED.findall(text) if w.casefold() not in STOPWORDS}


def context_spans(question: Question, best: Scored, snapshot: Snapshot) -> list[tuple[int, int]]:
    """Sentence spans to quote: the best sentence, plus what the question type needs from around it.

    *who*: when the best sentence is a quote without its speaker, the nearby
    sentence that names the speaker ("…“, sagte Kirby."). *statement* ("what did
    X say"): when the best sentence names X but quotes nothing, the nearby quote
    attributed to a name from it ("Botschafter … Denisov" … "„…“, sagte Denisov.").
    """
    s = best.sentence
    spans = [(s.start, s.end)]
    if question.kind == "who" and not SPEECH.search(s.text):

        def wanted(text: str) -> bool:
            return bool(SPEECH.search(text) and _CAPITALISED.search(text))

        reach = 2
    elif question.kind == "statement" and not _QUOTE_MARK.search(s.text):
        people = _names(s.text)

        def wanted(text: str) -> bool:
            return bool(_QUOTE_MARK.search(text) and SPEECH.search(text) and people & _names(text))

        reach = 3
    else:
        return spans
    doc = snapshot.documents[s.source]
    window = split_sentences(
        doc.text, max(0, s.start - 2000), min(len(doc.text), s.end + 2000), max_chars=MAX_SENTENCE_CHARS
    )
    try:
        i = window.index((s.start, s.end))
    except ValueError:
        return spans
    for distance in range(1, reach + 1):
        for j in (i - distance, i + distance):
            if 0 <= j < len(window) and wanted(doc.text[window[j][0] : window[j][1]]):
                return sorted([spans[0], window[j]])
    return spans


_NUMBER_PHRASE = re.compile(
    r"((?:über|mehr als|rund|etwa|fast|knapp|mindestens|bis zu|more than|over|about|nearly|almost|up to)\s+)?"
    r"(\d[\d.,]*\s*(?:%|Prozent|percent|Millionen|Milliarden|million|billion)?)"
    r"(\s+[A-ZÄÖÜa-zäöüß][\w\-]*)?"
)


# "[1]" and what reads like it: full-width ［1］, super- and subscript ⁽²⁾ ₍₃₎, lenticular 【4】, any digits.
_MARKER = re.compile(
    r"[\[\uff3b\u207d\u208d\u3010\u3014\u27e6]\s*[\d\u00b2\u00b3\u00b9\u2070-\u2079\u2080-\u2089]+\s*"
    r"[\]\uff3d\u207e\u208e\u3011\u3015\u27e7]"
)


def without_markers(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``text[start:end]`` as verbatim pieces that hold no ``[n]``: in an answer ``[n]`` only ever means a citation.

    An article (or a planted instruction in one) may contain "[1]" or "[99]"; quoted
    as is, it would point at the wrong passage or at none. The pieces are joined with
    " … " like any other elision.

    >>> t = "Er sagte [3], es sei vorbei."
    >>> [t[a:b] for a, b in without_markers(t, 0, len(t))]
    ['Er sagte', ', es sei vorbei.']
    >>> t = "Er sagte ［1］ und ⁽²⁾, es sei vorbei."
    >>> [t[a:b] for a, b in without_markers(t, 0, len(t))]
    ['Er sagte', 'und', ', es sei vorbei.']
    """
    pieces, cursor = [], start
    for m in _MARKER.finditer(text, start, end):
        pieces.append((cursor, m.start()))
        cursor = m.end()
    pieces.append((cursor, end))
    return [span for a, b in pieces if (span := trim_span(text, a, b))]


def short_answer(question: Question, sentence: str, article_date) -> str:
    """A few words that answer directly: the resolved date or the number, when the question asks for one."""
    if question.kind == "when":
        refs = [r for r in resolve(sentence, article_date) if r.precision in ("day", "month")]
        refs = refs or resolve(sentence, article_date)
        if refs:
            best = max(refs, key=lambda r: (r.date is not None, r.resolved, -r.start))
            return best.format(question.language)
    if question.kind == "quantity":
        m = _NUMBER_PHRASE.search(sentence)
        if m:
            return "".join(g for g in m.groups() if g).strip()
    return ""


def _evidence(ranked: Sequence[Scored], t: Thresholds) -> list[Scored]:
    """The best sentence and at most one more: an adjacent sentence scoring within ``t.adjacent``
    (the answer often continues there), else a runner-up within ``t.tie``."""
    best = ranked[0]

    def adjacent(other: Scored) -> bool:
        s, b = other.sentence, best.sentence
        return s.source == b.source and (0 <= s.start - b.end <= 3 or 0 <= b.start - s.end <= 3)

    for other in ranked[1:]:
        if adjacent(other) and other.score >= best.score - t.adjacent:
            return [best, other]
    if len(ranked) > 1 and ranked[1].score >= best.score - t.tie:
        return [best, ranked[1]]
    return [best]


def compose(
    question: Question,
    ranked: Sequence[Scored],
    hits: Sequence[Hit],
    snapshot: Snapshot,
    vocabulary: Vocabulary,
    thresholds: Thresholds = Thresholds(),
    *,
    k: int = 5,
) -> Answer:
    """Build the answer and cite at most ``k`` passages: those quoted, then the best of the rest."""
    lang = question.language
    best = ranked[0] if ranked else None
    if should_abstain(question, best, vocabulary, thresholds):
        return Answer(NOT_FOUND[lang], True, [], lang, question.text)
    assert best is not None
    evidence = _evidence(ranked, thresholds)
    # Passages that hold evidence come first, in evidence order; the rest follow by retrieval rank.
    order = list(dict.fromkeys([e.sentence.hit for e in evidence] + list(range(len(hits)))))[: max(k, 1)]
    number = {hit: n for n, hit in enumerate(order, 1)}
    quoted: dict[int, list[tuple[int, int]]] = {}
    for e in evidence:
        spans = context_spans(question, e, snapshot) if e is best else [(e.sentence.start, e.sentence.end)]
        quoted.setdefault(e.sentence.hit, []).extend(spans)
    citations = []
    for hit_index in order:
        chunk = hits[hit_index].chunk
        doc = snapshot.documents[chunk.source]
        start, end = chunk.start, chunk.end
        highlight = None
        spans = sorted(set(quoted.get(hit_index, [])))
        if spans:  # widen the passage so that everything quoted lies inside it
            start, end = min(start, spans[0][0]), max(end, spans[-1][1])
            first = next(e for e in evidence if e.sentence.hit == hit_index).sentence
            highlight = (first.start - start, first.end - start)
        citations.append(
            Citation(
                n=number[hit_index],
                source=chunk.source,
                title=chunk.title,
                passage=doc.text[start:end],
                start=start,
                end=end,
                score=round(hits[hit_index].score, 6),
                date=doc.date.isoformat() if doc.date else None,
                highlight=highlight,
            )
        )
    opening, closing = QUOTES[lang]
    parts = []
    for hit_index, spans in quoted.items():
        text = snapshot.documents[hits[hit_index].chunk.source].text
        quote = " … ".join(text[x:y] for a, b in sorted(set(spans)) for x, y in without_markers(text, a, b))
        if quote:
            parts.append(f"{opening}{quote}{closing} [{number[hit_index]}]")
    if not parts:  # the evidence was nothing but bracketed numbers
        return Answer(NOT_FOUND[lang], True, [], lang, question.text)
    lead = short_answer(question, best.sentence.text, snapshot.documents[best.sentence.source].date)
    head = f"{lead} —" if lead else f"{ACCORDING[lang]}:"
    return Answer(f"{head} {' '.join(parts)}", False, citations, lang, question.text)

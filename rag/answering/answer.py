"""Turn ranked evidence into an :class:`~rag.types.Answer`: abstain or answer, in the question's language.

The answer quotes the evidence verbatim and cites it as ``[n]``; for *when*
questions it leads with the resolved calendar date, for *how many* with the
number. Nothing in the text comes from outside the cited passages except the
framing words and the date arithmetic.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from embeddings import StoreView, split_sentences, trim_span
from embeddings.language.entities import document_names
from rag.answering.ground import Gates, Verdict
from rag.answering.questions import Question
from rag.answering.select import CAUSE, MAX_SENTENCE_CHARS, SPEECH, Scored, document_sentences
from rag.answering.temporal import resolve
from rag.answering.text import QUOTE_MARK, STOPWORDS, fold, similar_words, transliterate, transliterate_all, words
from rag.config import ScoringConfig
from rag.types import Answer, Citation, Hit

NOT_FOUND = {"en": "Not found in the indexed articles.", "de": "In den indexierten Artikeln nicht gefunden."}
# When the article is right but the asked fact is not in it: say so, and what it does hold.
NOT_SAID = {
    "en": "The articles do not say that. Closest passage:",
    "de": "Das sagen die Artikel nicht. Nächstliegende Stelle:",
}


def shows_closest(reason: str) -> bool:
    """Whether abstaining at this gate still shows the closest sentence: the article was found, the fact was not."""
    return reason in ("names-near", "probability:closest") or reason.startswith("kind:")


ACCORDING = {"en": "According to the articles", "de": "Laut den Artikeln"}
QUOTES = {"en": ("“", "”"), "de": ("„", "“")}


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

    @classmethod
    def of_words(cls, folded: Iterable[str]) -> Vocabulary:
        """From words already folded (as an index part stores them)."""
        vocabulary = cls(())
        vocabulary.exact = set(folded)
        known = list(vocabulary.exact)
        for f, t in zip(known, transliterate_all(known)):  # at once: an index has hundreds of thousands
            vocabulary.by_prefix.setdefault(t[:2], set()).add(f)
        return vocabulary

    def knows(self, word: str) -> bool:
        f = fold(word)
        if f in self.exact:
            return True
        return any(similar_words(f, w) for w in self.by_prefix.get(transliterate(f)[:2], ()))


class Vocabularies:
    """The vocabularies of several index parts as one (a word is known if any part knows it)."""

    def __init__(self, parts: Sequence[Vocabulary]) -> None:
        self.parts = tuple(parts)

    def knows(self, word: str) -> bool:
        return any(v.knows(word) for v in self.parts)


_QUOTE_MARK = QUOTE_MARK
_CAPITALISED = re.compile(r"(?<!^)\b[A-ZÄÖÜ][\w\-]{2,}")


def _names(text: str) -> set[str]:
    return {w for w in _CAPITALISED.findall(text) if w.casefold() not in STOPWORDS}


def context_spans(question: Question, best: Scored, snapshot: StoreView) -> list[tuple[int, int]]:
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


def short_answer(question: Question, sentence: str, article_date: dt.date | None, names: Sequence[str] = ()) -> str:
    """A few words that answer directly, taken from the sentence: the resolved date (written in the
    question's language), the number, or for *who* / *where* the name that the question does not
    already hold (``names``: the article's names, found at index time).

    >>> from rag.answering.questions import analyse
    >>> q = analyse("Who scored for Altdorf?")
    >>> short_answer(q, "Für Altdorf traf Jonas Brem in der 88. Minute.", None, ("Altdorf", "Jonas", "Brem"))
    'Jonas Brem'
    """
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
    if question.kind in ("who", "where") and names:
        runs = name_runs(sentence, names)
        asked = {fold(w) for w in words(question.text)}
        new = [r for r in runs if not any(similar_words(fold(w), a) for w in r.split() for a in asked)]
        if question.kind == "where":
            new = [r for r in new if _AT_PLACE.search(sentence[: sentence.find(r)])] or []
        if new:
            return max(new, key=lambda r: (question.kind == "who" and " " in r, -sentence.find(r)))
    return ""


# A place preposition right before a name, in German and English: "in Peking", "nach Usbekistan", "at Wembley".
_AT_PLACE = re.compile(r"\b(in|im|nach|aus|bei|von|vor|at|to|from|near)\s*$", re.I)


def name_runs(sentence: str, names: Sequence[str]) -> list[str]:
    """The runs of consecutive words of ``sentence`` that are among ``names``, in order.

    >>> name_runs("Am Freitag traf Jonas Brem in Altdorf ein.", ("Jonas", "Brem", "Altdorf"))
    ['Jonas Brem', 'Altdorf']
    """
    known = set(names)
    runs: list[list[str]] = [[]]
    for m in re.finditer(r"[\w\-]+|\S", sentence):
        w = m.group()
        if w in known or (w.endswith("s") and w[:-1] in known and runs[-1]):
            runs[-1].append(w)
        elif runs[-1]:
            runs.append([])
    return [" ".join(r) for r in runs if r]


@dataclass(frozen=True)
class Decision:
    """What the gates decided: the sentences to quote (empty: abstain) and each gate's verdict."""

    evidence: tuple[Scored, ...]
    verdicts: tuple[Verdict, ...]
    candidate: Scored | None  # the sentence the verdicts are about (the chosen one, or the best when abstaining)
    spans: tuple[tuple[int, int], ...] = ()  # extra spans to quote with the first sentence (a continuation)
    tried: tuple[tuple[Scored, tuple[Verdict, ...]], ...] = ()  # every sentence the gates saw, with their verdicts

    @property
    def abstained(self) -> bool:
        return not self.evidence

    @property
    def reason(self) -> str:
        """The gate that failed (``""`` when answered)."""
        return next((v.gate for v in self.verdicts if not v.passed), "")


def decide(
    question: Question,
    ranked: Sequence[Scored],
    snapshot: StoreView,
    gates: Gates,
    config: ScoringConfig = ScoringConfig(),
) -> Decision:
    """Pick the evidence: the best-ranked of the leading sentences that passes every gate, or abstain.

    The sentences within ``config.adjacent`` of the best are tried in rank order; a sentence that
    lacks only what the question type needs may take it from the next sentence (its continuation).
    """
    if not ranked:
        return Decision((), (Verdict("evidence", False, "nothing retrieved"),), None)
    best = ranked[0]
    tried: list[tuple[Scored, tuple[Verdict, ...]]] = []
    for s in ranked[: config.try_count]:
        if s is not best and s.score < best.score - config.try_margin:
            break
        doc = snapshot.documents[s.sentence.source]
        spans = document_sentences(doc.text)
        verdicts = tuple(gates.check(question, s.dense, doc, spans, s.sentence.start, s.sentence.end))
        tried.append((s, verdicts))
        if all(v.passed for v in verdicts):
            more = _reasons_after(question, s, doc.text, spans)
            return Decision(tuple(_evidence(ranked, s, config)), verdicts, s, more, tuple(tried))
        if (
            question.kind in CONTINUED
            and verdicts[-1].gate.startswith("kind:")
            and all(v.passed for v in verdicts[:-1])
        ):
            after = _next_span(spans, s.sentence.start, s.sentence.end)
            if after is not None and _REFERS_BACK.match(doc.text[after[0] : after[1]]):
                context = (s.sentence.start, s.sentence.end)
                continued = tuple(gates.check(question, s.dense, doc, spans, *after, context=context))
                if all(v.passed for v in continued):
                    return Decision((s,), verdicts[:-1] + continued[-1:], s, (after,), tuple(tried))
        if verdicts[0].gate == "evidence" and not verdicts[0].passed:
            break
    return Decision((), tried[0][1] if tried else (), best, (), tuple(tried))


# A date or number may follow in the next sentence when that sentence refers back to this one
# ("Am Donnerstag traf er …"); a person may not: the next sentence's people are usually others.
CONTINUED = ("when", "quantity")
_REFERS_BACK = re.compile(
    r"^\W*(?:\w+\s+){0,3}?(er|sie|es|dies|dieser|diese|dieses|damit|dabei|dort|he|she|it|this|they|there)\b", re.I
)


def _reasons_after(
    question: Question, s: Scored, text: str, spans: Sequence[tuple[int, int]], most: int = 2
) -> tuple[tuple[int, int], ...]:
    """For *why*: when the sentence gives no reason, the sentences after it that continue it (they refer
    back or go on quoting) and may: "„Sie haben die Invasion nicht verurteilt. Sie kaufen weiter Öl.“"."""
    if question.kind != "why" or CAUSE.search(s.sentence.text):
        return ()
    out: list[tuple[int, int]] = []
    start, end = s.sentence.start, s.sentence.end
    while len(out) < most and (after := _next_span(spans, start, end)) is not None:
        following = text[after[0] : after[1]]
        if not (_REFERS_BACK.match(following) or following.lstrip()[:1] in '„“"»'):
            break
        out.append(after)
        start, end = after
    return tuple(out)


def _next_span(spans: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    i = bisect.bisect_left(spans, (start, end))
    return spans[i + 1] if i + 1 < len(spans) and spans[i] == (start, end) else None


def _evidence(ranked: Sequence[Scored], best: Scored, t: ScoringConfig) -> list[Scored]:
    """The chosen sentence and at most one more: an adjacent sentence scoring within ``t.adjacent``
    (the answer often continues there), else a runner-up within ``t.tie``."""

    def adjacent(other: Scored) -> bool:
        s, b = other.sentence, best.sentence
        return s.source == b.source and (0 <= s.start - b.end <= 3 or 0 <= b.start - s.end <= 3)

    others = list(ranked[ranked.index(best) + 1 :])  # not the better-ranked ones: they failed the gates
    for other in others:
        if adjacent(other) and other.score >= best.score - t.adjacent:
            return [best, other]
    if others and others[0].score >= best.score - t.tie and others[0].score <= best.score + t.tie:
        return [best, others[0]]
    return [best]


def compose(
    question: Question,
    ranked: Sequence[Scored],
    hits: Sequence[Hit],
    snapshot: StoreView,
    decision: Decision,
    *,
    k: int = 5,
) -> Answer:
    """Build the answer from ``decision`` and cite at most ``k`` passages: those quoted, then the best of the rest.

    When the decision is to abstain after the answering article was found (the asked fact is
    not in it), the answer says so and quotes the closest sentence, still with ``abstained=True``.
    """
    lang = question.language
    if decision.abstained:
        closest = decision.candidate
        if closest is None or not shows_closest(decision.reason):
            return Answer(NOT_FOUND[lang], True, [], lang, question.text, reason=decision.reason or "evidence")
        body = _compose_quotes(question, [closest], (), hits, snapshot, k, with_context=False)
        if body is None:
            return Answer(NOT_FOUND[lang], True, [], lang, question.text, reason=decision.reason)
        text, citations = body
        return Answer(f"{NOT_SAID[lang]} {text}", True, citations, lang, question.text, reason=decision.reason)
    body = _compose_quotes(question, list(decision.evidence), decision.spans, hits, snapshot, k)
    if body is None:  # the evidence was nothing but bracketed numbers
        return Answer(NOT_FOUND[lang], True, [], lang, question.text, reason="empty-quote")
    text, citations = body
    best = decision.evidence[0]
    sentence = " ".join(
        snapshot.documents[best.sentence.source].text[a:b]
        for a, b in [(best.sentence.start, best.sentence.end), *decision.spans]
    )
    doc = snapshot.documents[best.sentence.source]
    lead = short_answer(question, sentence, doc.date, document_names(doc))
    head = f"{lead} —" if lead else f"{ACCORDING[lang]}:"
    return Answer(f"{head} {text}", False, citations, lang, question.text, short=lead)


def _compose_quotes(
    question: Question,
    evidence: list[Scored],
    continuation: Sequence[tuple[int, int]],
    hits: Sequence[Hit],
    snapshot: StoreView,
    k: int,
    *,
    with_context: bool = True,
) -> tuple[str, list[Citation]] | None:
    """The quotes of ``evidence`` (``„…“ [n]`` joined) and the citations; ``None`` when nothing is left to quote."""
    lang = question.language
    best = evidence[0]
    # Passages that hold evidence come first, in evidence order; the rest follow by retrieval rank.
    # Every quoted passage is cited, even when k is smaller than the number of passages quoted.
    quoted_hits = list(dict.fromkeys(e.sentence.hit for e in evidence))
    order = list(dict.fromkeys(quoted_hits + list(range(len(hits)))))[: max(k, len(quoted_hits), 1)]
    number = {hit: n for n, hit in enumerate(order, 1)}
    quoted: dict[int, list[tuple[int, int]]] = {}
    for e in evidence:
        if e is best and with_context:
            spans = context_spans(question, e, snapshot) + list(continuation)
        else:
            spans = [(e.sentence.start, e.sentence.end)]
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
    if not parts:
        return None
    return " ".join(parts), citations

"""Check a generated answer claim by claim: each sentence must be supported by the passages it cites.

A language model that cites ``[1]`` has not necessarily read ``[1]``: a small one
writes a name from one article and a date from another and cites either. So
every sentence of its answer is held to what its cited passages say:

* **names** (capitalised words) must occur in the cited passages, in any spelling of the
  name (:func:`rag.text.same_name`: Schoigu ~ Shoigu, not Austria ~ Australia), as the same
  weekday or month or word of origin in the other language (Oktober ~ October, Russian ~
  russischen), a German noun also in another form (Übung ~ Übungen), or across languages as
  a word the embedder finds nearly the same (Beijing ~ Peking) that is not a near spelling
  of another name;
* **dates** must be dates of the passage once its relative dates are resolved against
  the article's date (:func:`rag.temporal.resolve`: "am Freitag" -> 28 February 2025);
* **numbers**, in digits or as words (three ~ drei ~ 3), must occur in the passage;
* all of these must stand **together**, within a few neighbouring sentences of one cited
  passage: a name from one paragraph and a date from another do not make a fact;
* and the sentence as a whole must be **close in meaning** to a cited passage sentence
  (a cosine floor with the index's multilingual model), which catches a role assigned to
  the wrong person when every word of it occurs somewhere.

A sentence with no citation that says anything (a name, a date, a number or content
words) is not supported either. :class:`ClaimFilter` applies the check to a token stream
and lets a sentence through only once it has passed.

>>> p = Citation(1, "a.txt", "Bad eröffnet", "Lena Fuchs eröffnete das Bad am Montag.", 0, 39, 0.5, "2025-03-04")
>>> checker = ClaimChecker([p])
>>> checker.check("According to [1], Lena Fuchs opened the pool on 3 March 2025 [1].").reason
'supported'
>>> checker.check("According to [1], Tom Brandt opened the pool on 3 March 2025 [1].").reason
"'Tom', 'Brandt' not in [1]"
>>> checker.check("Lena Fuchs opened it on 17 March 2025 [1].").reason
"'17 March 2025' not in [1]"
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from embeddings import split_sentences
from embeddings.wordlists import word_list, word_values

from .temporal import TimeRef, resolve
from .text import STOPWORDS, calendar_name, demonym_match, detect_language, fold, same_name, similar_words, stem, words
from .types import Answer, Citation, ClaimCheck

SUPPORTED = "supported"
_CITATION = re.compile(r"\s*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_LEADING_CITATIONS = re.compile(r"^(?:\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\])+[.,;:]?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Words that frame a claim ("According to [1]", "Laut [2]") and say nothing themselves.
_FRAMING = "according laut passage passages passage's article articles artikel artikeln quelle source sources"
FRAMING = frozenset(f"{_FRAMING} yes ja nein however jedoch therefore daher overall insgesamt also".split())
# Cardinal numbers as words (embeddings/data/number_words.txt); "one"/"ein" are left out: they are as often
# a pronoun or an article as a number.
NUMBER_WORDS = word_values("number_words")
_FOLDED_NUMBER_WORDS = {fold(w): n for w, n in NUMBER_WORDS.items()}
# English and German names of places that spelling rules cannot map (Beijing ~ Peking): the multilingual
# model does not tell them apart from other places either (cosine of beijing/peking 0.84, beijing/moskau 0.83).
# rag/data/exonyms.txt, one pair per line.
_EXONYMS: dict[str, set[str]] = {}
for _pair in word_list("exonyms", "rag"):
    _a, _b = (fold(x) for x in _pair.split())
    _EXONYMS.setdefault(_a, set()).add(_b)
    _EXONYMS.setdefault(_b, set()).add(_a)

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class ClaimConfig:
    """The numbers of the claim check, each with why it is what it is."""

    # Passage sentences a claim's names, dates and numbers may spread over: the sentence and its
    # neighbours ("Schoigu kam am Freitag an. Dort traf er Xi."), not the whole article.
    window: int = 3
    # Cosine (e5, claim as query, passage sentence as passage) below which a sentence says something
    # its passage does not. Calibrated on dev2 with Gemma 3 270M: its wrong sentences that pass the
    # name/date/number checks score 0.77-0.92, its right ones 0.81 and 0.93, so only 0.93 keeps the
    # answer accuracy at the extractive answerer's. Faithful English paraphrases score 0.82-0.89, so
    # with a stronger model a lower floor (about 0.82) lets more of its own answers through.
    min_similarity: float = 0.93
    # Cosine of two single words (both as queries) that makes them the same name across languages
    # (Beijing ~ Peking, Moscow ~ Moskau); different names of one kind stay below it.
    name_similarity: float = 0.90
    # (measured: russia/russland 0.96, moscow/moskau 0.93, army/armee 0.93, but also russia/china 0.89,
    # february/oktober 0.88, trump/biden 0.87; below 0.90 a different name would pass)
    # Content words (not names) an uncited sentence may have before it counts as stating a fact.
    max_uncited_terms: int = 1


@dataclass(frozen=True)
class Facts:
    """What a claim asserts that a passage must hold: its names, dates and numbers, as written."""

    names: tuple[str, ...] = ()
    dates: tuple[TimeRef, ...] = ()
    date_texts: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    initial: str | None = None  # the first word, when taken as a name: it may just be capitalised as first
    language: str = "en"  # English capitalises only names; German capitalises nouns too, which inflect


def strip_citations(text: str) -> str:
    """The sentence without its ``[n]`` markers and framing ("According to [1], ...").

    >>> strip_citations("According to [1], Xi met Shoigu [1][2].")
    'Xi met Shoigu.'
    """
    text = re.sub(r"^\s*(?:according to|laut)\s*\[[\d,\s]+\]\s*[,:]?\s*", "", text, flags=re.I)
    return " ".join(_CITATION.sub("", text).split())


def cited_numbers(sentence: str) -> tuple[int, ...]:
    """The passage numbers a sentence cites, in order, each once."""
    found = [int(n) for m in _CITATION.finditer(sentence) for n in m.group(1).split(",")]
    return tuple(dict.fromkeys(found))


def split_claims(text: str) -> list[str]:
    """The sentences of an answer, each with the citations that follow its full stop.

    >>> split_claims("Am 14. Oktober kam er [1]. Xi traf ihn. [2] Danach reiste er ab [1].")
    ['Am 14. Oktober kam er [1].', 'Xi traf ihn. [2]', 'Danach reiste er ab [1].']
    """
    sentences: list[str] = []
    for a, b in split_sentences(text):
        piece = text[a:b]
        lead = _LEADING_CITATIONS.match(piece)
        if lead and sentences:
            sentences[-1] += " " + piece[: lead.end()].strip()
            piece = piece[lead.end() :].strip()
        if piece:
            sentences.append(piece)
    return sentences


def _number_values(text: str) -> set[str]:
    """Numbers in ``text`` in a canonical form: ``1.000`` and ``1,000`` -> ``1000``, ``1,5`` -> ``1.5``; words too."""
    out: set[str] = set()
    for m in _NUMBER.finditer(text):
        raw = m.group(0)
        out.update(part.lstrip("0") or "0" for part in re.split(r"[.,]", raw))
        out.add(_canonical(raw))
    for w in words(text):
        value = _FOLDED_NUMBER_WORDS.get(fold(w))
        if value is not None:
            out.add(str(value))
    return out


def _canonical(raw: str) -> str:
    joined = re.sub(r"[.,](?=\d{3}(?:\D|$))", "", raw).replace(",", ".")
    return joined.lstrip("0") or "0"


def facts_of(sentence: str) -> Facts:
    """The names, dates and numbers a sentence asserts (its citations and framing removed).

    >>> f = facts_of("According to [1], Shoigu met Xi Jinping in Beijing on Friday, 28 February 2025, with 300 men.")
    >>> f.names, f.date_texts, f.numbers
    (('Shoigu', 'Xi', 'Jinping', 'Beijing'), ('on Friday, 28 February 2025',), ('300',))
    """
    text = strip_citations(sentence)
    refs = resolve(text, None)
    spans = [(r.start, r.end) for r in refs]

    def in_date(a: int, b: int) -> bool:
        return any(s <= a and b <= e for s, e in spans)

    names, terms, initial = [], [], None
    for m in re.finditer(r"[^\W_]+(?:['’][^\W_]+)?", text):
        w = m.group(0)
        low = fold(w)
        if in_date(m.start(), m.end()) or low in STOPWORDS or low in FRAMING or w.isdigit():
            continue
        if low in _FOLDED_NUMBER_WORDS or calendar_name(w) is not None:
            continue
        if w[0].isupper() and len(w) >= 2:
            names.append(w)
            if not text[: m.start()].strip(" \"'„“”‚‘«»(-"):
                initial = w
        elif len(w) >= 3:
            terms.append(w)
    numbers = [m.group(0) for m in _NUMBER.finditer(text) if not in_date(m.start(), m.end())]
    numbers += [w for w in words(text) if fold(w) in _FOLDED_NUMBER_WORDS]
    return Facts(
        tuple(dict.fromkeys(names)),
        tuple(refs),
        tuple(text[r.start : r.end] for r in refs),
        tuple(dict.fromkeys(numbers)),
        tuple(dict.fromkeys(terms)),
        initial,
        detect_language(text),
    )


@dataclass
class _Window:
    """Neighbouring sentences of one passage, with what they hold."""

    n: int
    text: str
    words: frozenset[str]
    dates: tuple[TimeRef, ...]
    numbers: frozenset[str]
    article: dt.date | None


def _date_supported(claim: TimeRef, w: _Window) -> bool:
    """Whether the window (or its article date) holds ``claim`` at the claim's precision."""
    candidates = [*w.dates]
    if w.article is not None:
        a = w.article
        candidates.append(TimeRef(0, 0, a.year, a.month, a.day, a.weekday(), "day", False))
    for ref in candidates:
        if claim.weekday is not None and claim.month is None and claim.year is None:
            weekday = ref.weekday if ref.weekday is not None else (ref.date.weekday() if ref.date else None)
            if weekday == claim.weekday:
                return True
            continue
        if claim.month is None and claim.year is not None:  # a year alone
            if ref.year == claim.year:
                return True
            continue
        if claim.month is not None and ref.month != claim.month:
            continue
        if claim.year is not None and ref.year is not None and ref.year != claim.year:
            continue
        if claim.year is not None and ref.year is None:
            continue
        if claim.day is not None and ref.day != claim.day:
            continue
        return True
    return claim.precision == "year" and claim.year is not None and str(claim.year) in w.numbers


class ClaimChecker:
    """Checks sentences against one answer's numbered passages.

    Args:
        passages: the citations the model read, ``[1]`` first.
        embed_queries, embed_documents: the index's model (normalised vectors); without them
            the similarity floor and the cross-language name match are skipped (lexical checks only).
        config: the thresholds.
    """

    def __init__(
        self,
        passages: Sequence[Citation],
        *,
        embed_queries: Embed | None = None,
        embed_documents: Embed | None = None,
        config: ClaimConfig | None = None,
    ) -> None:
        self.passages = {c.n: c for c in passages}
        self.embed_queries = embed_queries
        self.embed_documents = embed_documents
        self.config = config or ClaimConfig()
        self._windows = {c.n: self._windows_of(c) for c in passages}
        self._sentences = {
            c.n: [c.passage[a:b] for a, b in split_sentences(c.passage)] or [c.passage] for c in passages
        }
        self._sentence_vectors: dict[int, np.ndarray] = {}

    @classmethod
    def for_engine(cls, passages: Sequence[Citation], engine, config: ClaimConfig | None = None) -> ClaimChecker:
        """A checker that uses ``engine``'s embedding model (loaded lazily, on the first sentence to check)."""
        return cls(
            passages,
            embed_queries=lambda texts: engine.embedder().embed_queries(list(texts)),
            embed_documents=lambda texts: engine.embedder().embed_documents(list(texts)),
            config=config,
        )

    def _windows_of(self, c: Citation) -> list[_Window]:
        article = dt.date.fromisoformat(c.date) if c.date else None
        spans = split_sentences(c.passage) or [(0, len(c.passage))]
        size = max(1, self.config.window)
        out = []
        for i in range(max(1, len(spans) - size + 1)):
            part = spans[i : i + size]
            text = c.passage[part[0][0] : part[-1][1]]
            seen = f"{c.title} {text}"  # not the article date's digits: dates are checked as dates
            out.append(
                _Window(
                    c.n,
                    text,
                    frozenset(fold(w) for w in words(f"{c.title} {text}")),
                    tuple(resolve(text, article)) + tuple(resolve(c.title, article)),
                    frozenset(_number_values(seen)),
                    article,
                )
            )
        return out

    def check(self, sentence: str) -> ClaimCheck:
        """Whether ``sentence`` is supported by the passages it cites, and if not, why not."""
        cited = cited_numbers(sentence)
        facts = facts_of(sentence)
        cited_here = tuple(n for n in cited if n in self.passages)
        if not cited_here:
            names = [n for n in facts.names if n != facts.initial]
            terms = len(facts.terms) + (facts.initial is not None)
            if names or facts.dates or facts.numbers or terms > self.config.max_uncited_terms:
                return ClaimCheck(sentence, False, "no citation", cited)
            return ClaimCheck(sentence, True, SUPPORTED, cited)
        where = ", ".join(f"[{n}]" for n in cited_here)
        windows = [w for n in cited_here for w in self._windows[n]]
        best, best_missing = None, None
        for w in windows:
            missing = self._missing(facts, w)
            if best_missing is None or len(missing) < len(best_missing):
                best, best_missing = w, missing
            if not missing:
                break
        assert best_missing is not None and best is not None
        if best_missing:
            anywhere = [m for m in best_missing if all(m in self._missing(facts, w) for w in windows)]
            if anywhere:
                return ClaimCheck(sentence, False, f"{', '.join(repr(m) for m in anywhere)} not in {where}", cited)
            apart = ", ".join(repr(m) for m in best_missing)
            return ClaimCheck(sentence, False, f"{apart} not stated together in {where}", cited)
        similarity = self.similarity(strip_citations(sentence), cited_here)
        if similarity is not None and similarity < self.config.min_similarity:
            reason = f"says what {where} does not (similarity {similarity:.2f})"
            return ClaimCheck(sentence, False, reason, cited, similarity)
        return ClaimCheck(sentence, True, SUPPORTED, cited, similarity)

    def _missing(self, facts: Facts, w: _Window) -> list[str]:
        missing = [name for name in facts.names if not self._name_in(name, w, facts.language)]
        dates = zip(facts.dates, facts.date_texts, strict=True)
        missing += [text for ref, text in dates if not _date_supported(ref, w)]
        values = w.numbers
        for number in facts.numbers:
            value = _FOLDED_NUMBER_WORDS.get(fold(number))
            forms = {str(value)} if value is not None else {_canonical(number)}
            if not forms & values:
                missing.append(number)
        return missing

    def _name_in(self, name: str, w: _Window, language: str = "en") -> bool:
        f = fold(name)
        if f in w.words or any(_same_name_or_form(f, x, language) for x in w.words):
            return True
        if any(same_name(other, x) for other in _EXONYMS.get(f, ()) for x in w.words):
            return True
        return self._same_word_across_languages(name, w)

    def _same_word_across_languages(self, name: str, w: _Window) -> bool:
        if self.embed_queries is None:
            return False
        # A word spelt nearly like the name but not one of its spellings is another name (Australia for
        # Austria, Bayern for Bayer): the model would find it close for its spelling, not its meaning.
        f = fold(name)
        candidates = sorted(
            x for x in w.words if len(x) >= 3 and x not in STOPWORDS and not x.isdigit() and not similar_words(f, x)
        )
        if not candidates:
            return False
        vectors = _word_vectors(self.embed_queries, (f, *candidates))
        return bool(np.max(vectors[1:] @ vectors[0]) >= self.config.name_similarity)

    def similarity(self, claim: str, cited: Sequence[int]) -> float | None:
        """Best cosine of ``claim`` with a sentence of the cited passages (None without a model)."""
        if self.embed_queries is None or self.embed_documents is None or not claim:
            return None
        for n in cited:
            if n not in self._sentence_vectors:
                self._sentence_vectors[n] = np.asarray(self.embed_documents(self._sentences[n]))
        query = np.asarray(self.embed_queries([claim]))[0]
        return round(float(max(np.max(self._sentence_vectors[n] @ query) for n in cited)), 4)


def _same_name_or_form(claimed: str, word: str, language: str) -> bool:
    """Whether a passage word is the claimed name (or, in a German claim, the claimed noun in another form).

    >>> _same_name_or_form("austria", "australia", "en"), _same_name_or_form("oktober", "october", "en")
    (False, True)
    >>> _same_name_or_form("ubungen", "ubung", "de"), _same_name_or_form("russian", "russischen", "en")
    (True, True)
    """
    if same_name(claimed, word) or demonym_match(claimed, word):
        return True
    day_or_month = calendar_name(claimed)
    if day_or_month is not None:
        return day_or_month == calendar_name(word)
    return language == "de" and stem(claimed) == stem(word)


_WORD_CACHE: dict[tuple[int, str], np.ndarray] = {}


def _word_vectors(embed: Embed, texts: Sequence[str]) -> np.ndarray:
    """Query embeddings of single words, memoised per model function (the same passage words recur)."""
    key = id(embed)
    missing = [t for t in dict.fromkeys(texts) if (key, t) not in _WORD_CACHE]
    if missing:
        if len(_WORD_CACHE) > 50_000:
            _WORD_CACHE.clear()
        for t, v in zip(missing, np.asarray(embed(missing)), strict=True):
            _WORD_CACHE[(key, t)] = v
    return np.stack([_WORD_CACHE[(key, t)] for t in texts])


@dataclass
class ClaimFilter:
    """:class:`ClaimChecker` over a stream: ``feed`` returns the sentences that have passed, as they complete.

    A sentence is complete once the next one has begun (its citations after the full stop
    included); the last one at :meth:`flush`. What is returned, joined, is :attr:`text`.

    >>> p = Citation(1, "a.txt", "T", "Lena Fuchs eröffnete das Bad am Montag.", 0, 39, 0.5, "2025-03-04")
    >>> f = ClaimFilter(ClaimChecker([p]))
    >>> [f.feed(t) for t in ["Lena Fuchs opened it [1].", " Tom Brandt ", "came [1]. It was", " Monday [1]."]]
    ['', 'Lena Fuchs opened it [1].', '', '']
    >>> f.flush(), f.text, [c.kept for c in f.claims]
    (' It was Monday [1].', 'Lena Fuchs opened it [1]. It was Monday [1].', [True, False, True])
    """

    checker: ClaimChecker
    raw: str = ""
    done: int = 0  # sentences of ``raw`` already judged
    claims: list[ClaimCheck] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(c.sentence for c in self.claims if c.kept)

    def feed(self, text: str) -> str:
        self.raw += text
        sentences = split_claims(self.raw)
        # The last sentence may still grow; so may its citations, until the next sentence starts
        # (a "[" or "[1" alone is the start of a citation, not of a sentence).
        open_tail = 2 if len(sentences) > 1 and re.fullmatch(r"[\[\]\d,\s.]*", sentences[-1]) else 1
        return self._judge(sentences[:-open_tail])

    def flush(self) -> str:
        return self._judge(split_claims(self.raw))

    def _judge(self, sentences: list[str]) -> str:
        out = []
        for sentence in sentences[self.done :]:
            check = self.checker.check(sentence)
            if check.kept:
                out.append(sentence if not any(c.kept for c in self.claims) else " " + sentence)
            self.claims.append(check)
        self.done = max(self.done, len(sentences))
        return "".join(out)


def removed_summary(claims: Sequence[ClaimCheck]) -> str | None:
    """One line on the sentences removed, for people: ``1 sentence removed: not supported by [1]``.

    >>> removed_summary([ClaimCheck("a [1].", False, "'X' not in [1]", (1,)), ClaimCheck("b.", False, "no citation")])
    '2 sentences removed: not supported by [1]; no citation'
    >>> removed_summary([ClaimCheck("a [1].", True, "supported", (1,))]) is None
    True
    """
    removed = [c for c in claims if not c.kept]
    if not removed:
        return None
    why = []
    for c in removed:
        reason = "no citation" if not c.cited else "not supported by " + "".join(f"[{n}]" for n in c.cited)
        why.append(reason)
    plural = "sentence" if len(removed) == 1 else "sentences"
    return f"{len(removed)} {plural} removed: {'; '.join(dict.fromkeys(why))}"


def explain_claims(answer: Answer) -> str:
    """The claim check of an LLM answer, one line per sentence, for ``rag ask --explain``.

    >>> print(explain_claims(Answer("x", False, claims=(ClaimCheck("Xi kam [1].", True, "supported", (1,), 0.91),))))
    claims (1 kept, 0 removed):
      kept     "Xi kam [1]." (similarity 0.91)
    """
    if not answer.claims:
        return "claims: none checked (extractive answer, or the model was not asked)"
    kept = sum(c.kept for c in answer.claims)
    lines = [f"claims ({kept} kept, {len(answer.claims) - kept} removed):"]
    for c in answer.claims:
        sim = f" (similarity {c.similarity:.2f})" if c.similarity is not None else ""
        status = "kept   " if c.kept else "removed"
        why = "" if c.kept else f": {c.reason}"
        lines.append(f"  {status}  {_quote(c.sentence)}{sim}{why}")
    return "\n".join(lines)


def _quote(sentence: str, limit: int = 160) -> str:
    sentence = " ".join(sentence.split())
    return f'"{sentence[:limit]}{"…" if len(sentence) > limit else ""}"'

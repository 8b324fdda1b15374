"""Check a generated answer claim by claim: each sentence must be supported by the passages it cites.

A language model that cites ``[1]`` has not necessarily read ``[1]``: a small one
writes a name from one article and a date from another and cites either. So
every sentence of its answer is held to what its cited passages say:

* **names** (capitalised words) must occur in the cited passages, in any spelling of the
  name (:func:`rag.answering.text.same_name`: Schoigu ~ Shoigu, not Austria ~ Australia), as the same
  weekday or month or word of origin in the other language (Oktober ~ October, Russian ~
  russischen), a German noun also in another form (Übung ~ Übungen), a dictionary translation of
  a capitalised common word (Supreme ~ Oberster, :mod:`rag.answering.lexicon`), or across languages as
  a word the embedder finds nearly the same (Beijing ~ Peking) that is not a near spelling
  of another name; where the fitted decision weighs it, a near spelling too (Normandy ~ Normandie);
* **dates** must be dates of the passage once its relative dates are resolved against
  the article's date (:func:`rag.answering.temporal.resolve`: "am Freitag" -> 28 February 2025);
* **numbers**, in digits or as words (three ~ drei ~ 3, three hundred ~ dreihundert ~ 300), must
  occur in the passage;
* all of these must stand **together**, within a few neighbouring sentences of one cited
  passage: a name from one paragraph and a date from another do not make a fact;
* and a **fitted decision** (:class:`ClaimModel`, ``rag/models/claim_check.json``, fitted by
  ``scripts/claims_set.py`` on held-out articles; one model per kind of wrong claim) must find the
  sentence supported, from its similarity to the closest cited sentence, negation (and whether the
  claim turned round would be closer), the order, neighbours and roles of its names and its words
  found in the passage (:data:`CLAIM_FEATURES`): it catches a negation turned round or a role given
  to the wrong person when every name of it occurs somewhere.

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
import functools
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embeddings import split_sentences
from embeddings.language.wordlists import word_list, word_values
from rag.answering.scorer import Logistic, ScorerFileError, read_checked, write_checked
from rag.answering.temporal import TimeRef, resolve
from rag.answering.text import (
    STOPWORDS,
    calendar_name,
    demonym_match,
    detect_language,
    fold,
    same_name,
    same_word,
    similar_words,
    stem,
    words,
)
from rag.types import Answer, AnswerEngine, Citation, ClaimCheck

if TYPE_CHECKING:
    from rag.answering.lexicon import Lexicon

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
    # A fixed cosine floor (e5, claim as query, passage sentence as passage) in place of the fitted decision
    # (rag/models/claim_check.json, fitted by scripts/claims_set.py); None: the fitted decision. Tests set it
    # to check the alignment alone (0.0) or with an obvious fake embedder.
    min_similarity: float | None = None
    # Cosine of two single words (both as queries) that makes them the same name across languages
    # (Beijing ~ Peking, Moscow ~ Moskau); different names of one kind stay below it.
    name_similarity: float = 0.90
    # (measured: russia/russland 0.96, moscow/moskau 0.93, army/armee 0.93, but also russia/china 0.89,
    # february/oktober 0.88, trump/biden 0.87; below 0.90 a different name would pass)
    # Content words (not names) an uncited sentence may have before it counts as stating a fact.
    max_uncited_terms: int = 1
    # Words on either side of a name that make its role, its context ("Kurfürst von _", "_ traf"): in one
    # language every word counts (German puts a name's preposition and article next to it); across languages
    # only content words, found in translation within one word more, as word order differs (verb last).
    role_reach: int = 2


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
    number_forms: tuple[frozenset[str], ...] = ()  # per number, its canonical values ("three hundred": {"300"})


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
    """Numbers in ``text`` in a canonical form: ``1.000`` and ``1,000`` -> ``1000``, ``1,5`` -> ``1.5``; words too.

    >>> sorted(_number_values("dreihundert Gäste, 12,5 Millionen Euro"))
    ['12', '12.5', '12500000', '300', '5']
    """
    out: set[str] = set()
    for m in _NUMBER.finditer(text):
        raw = m.group(0)
        out.update(part.lstrip("0") or "0" for part in re.split(r"[.,]", raw))
        out.add(_canonical(raw))
    for _, _, forms in number_mentions(text):
        out.update(forms)
    return out


# Parts of number words: the words that count alone and those that count only inside a longer number
# (rag/data/number_parts.txt: teens, "ein" in "einhundert", the scales).
_PARTS = {**{fold(w): n for w, n in word_values("number_parts", "rag").items()}, **_FOLDED_NUMBER_WORDS}
_PART = re.compile("|".join(sorted(_PARTS, key=len, reverse=True)))
_ARTICLE_ONES = frozenset(w for w, n in _PARTS.items() if n == 1)  # "ein", "one", "a": alone, no number
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+")


def _word_number(folded: str) -> list[int] | None:
    """The parts of one number word (``dreihundertzwanzig`` -> [3, 100, 20]; ``einundzwanzig`` -> [1, 20]), or None."""
    parts: list[int] = []
    i = 0
    while i < len(folded):
        if parts and folded.startswith("und", i):
            i += 3
            continue
        m = _PART.match(folded, i)
        if not m:
            return None
        parts.append(_PARTS[m.group(0)])
        i = m.end()
    return parts or None


def _value(parts: Sequence[float]) -> float:
    """The number that a sequence of number-word parts says: [3, 100, 20] -> 320, [2, 1000, 5] -> 2005."""
    total, current = 0.0, 0.0
    for v in parts:
        if v == 100:
            current = (current or 1) * 100
        elif v >= 1000:
            total += (current or 1) * v
            current = 0.0
        else:
            current += v
    return total + current


def _form(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else _canonical(f"{value:g}")


def number_mentions(text: str) -> list[tuple[int, int, frozenset[str]]]:
    """Numbers written in words or with a scale word, as spans with their canonical values.

    "three hundred", "300" and "dreihundert" say one number; so do "2.5 million" and "2,5 Millionen".
    "ein"/"one"/"a" alone are articles, not numbers.

    >>> [sorted(f) for _, _, f in number_mentions("three hundred and twenty men, dreihundertzwanzig Männer")]
    [['320'], ['320']]
    >>> [sorted(f) for _, _, f in number_mentions("12,5 Millionen Euro; einundzwanzig; one man; a thousand")]
    [['12500000'], ['21'], ['1000']]
    """
    spaced = text.replace("-", " ")
    tokens = [(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(spaced)]
    out: list[tuple[int, int, frozenset[str]]] = []
    i = 0
    while i < len(tokens):
        start, end, tok = tokens[i]
        parts: list[float] = []
        lead: str | None = None
        if tok[0].isdigit():
            if i + 1 < len(tokens) and (scale := _word_number(fold(tokens[i + 1][2]))) and min(scale) >= 10**6:
                lead = _canonical(tok)
                parts = [float(lead), *scale]
                end = tokens[i + 1][1]
                i += 2
            else:
                i += 1
                continue
        else:
            j = i
            while j < len(tokens):
                if j > i and spaced[tokens[j - 1][1] : tokens[j][0]].strip():
                    break  # a run of number words stops at punctuation: "einundzwanzig; one"
                w = fold(tokens[j][2])
                got = _word_number(w) if not tokens[j][2][0].isdigit() else None
                if got is None:
                    if w in ("and", "und") and parts and j + 1 < len(tokens) and _word_number(fold(tokens[j + 1][2])):
                        j += 1
                        continue
                    break
                parts += got
                end = tokens[j][1]
                j += 1
            i = max(j, i + 1)
            if not parts or (len(parts) == 1 and fold(tok) in _ARTICLE_ONES):
                continue
            if all(p == 1 for p in parts):
                continue
        out.append((start, end, frozenset({_form(_value(parts))})))
    return out


def _canonical(raw: str) -> str:
    joined = re.sub(r"[.,](?=\d{3}(?:\D|$))", "", raw).replace(",", ".")
    return joined.lstrip("0") or "0"


def _says_nothing(folded: str) -> bool:
    """A stop word, a framing word, or a contraction of a stop word ("I'm", "don't", "it's")."""
    if folded in STOPWORDS or folded in FRAMING:
        return True
    head, apostrophe, tail = folded.partition("'")
    if not apostrophe or tail not in ("m", "s", "re", "ve", "ll", "d", "t"):
        return False
    return head in STOPWORDS or tail == "t"  # "don't", "couldn't": a negation, weighed by its own signal


def _common_english(folded: str) -> bool:
    """Whether an English word is an ordinary word, not a name: the dictionary knows it written in lower
    case ("Given", "Chief", "People" at the start of a sentence; not "Cyprus", "Shoigu")."""
    lexicon = _lexicon()
    return bool(lexicon.translations(folded)) and not lexicon.is_name(folded)


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

    language = detect_language(text)
    names, terms, initial = [], [], None
    for m in re.finditer(r"[^\W_]+(?:['’][^\W_]+)?", text):
        w = m.group(0)
        low = fold(w).replace("’", "'")
        if in_date(m.start(), m.end()) or w.isdigit() or _says_nothing(low):
            continue
        if low in _FOLDED_NUMBER_WORDS or _word_number(low) is not None or calendar_name(w) is not None:
            continue
        first = not text[: m.start()].strip(" \"'„“”‚‘«»(-")
        # A capitalised first word is as often an ordinary word ("Given", "Chief"); not when a capitalised word
        # follows it ("Tom Brandt", "New York"): a run of them is a name.
        in_run = bool(re.match(r"\s+(?!I\b)[A-ZÄÖÜ]", text[m.end() :]))  # not "Whether I ..."
        common = first and not in_run and language == "en" and _common_english(low)
        if w[0].isupper() and len(w) >= 2 and not common:
            names.append(w)
            if first:
                initial = w
        elif len(w) >= 3:
            terms.append(w)
    numbers: dict[str, frozenset[str]] = {}
    mentions = [(a, b, forms) for a, b, forms in number_mentions(text) if not in_date(a, b)]
    for m in _NUMBER.finditer(text):
        if not in_date(m.start(), m.end()) and not any(a <= m.start() < b for a, b, _ in mentions):
            numbers[m.group(0)] = frozenset({_canonical(m.group(0))})
    for a, b, forms in mentions:
        numbers[text[a:b]] = forms
    return Facts(
        tuple(dict.fromkeys(names)),
        tuple(refs),
        tuple(text[r.start : r.end] for r in refs),
        tuple(numbers),
        tuple(dict.fromkeys(terms)),
        initial,
        language,
        tuple(numbers.values()),
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


MODEL_FILE = Path(__file__).resolve().parents[1] / "models" / "claim_check.json"


@dataclass(frozen=True)
class ClaimModel:
    """The fitted decision on a sentence that passed the gate, read from ``rag/models/claim_check.json``.

    Per direction (a claim in its passage's language, ``"same"``, or in another, ``"cross"``) one logistic
    model over :data:`CLAIM_FEATURES` per kind of wrong claim it was fitted to tell from faithful ones (a
    negation turned round, a name swapped, ...); a claim's probability is the least of them, so each kind
    has a model of its own that a common kind does not outweigh. A claim is kept when it reaches the
    direction's threshold.
    """

    models: dict[str, dict[str, Logistic]]  # direction -> kind of wrong claim -> its model
    thresholds: dict[str, float]
    provenance: dict[str, Any]  # the data, folds, seed and held-out figures that chose the numbers

    @staticmethod
    def direction_of(row: np.ndarray) -> str:
        return direction(bool(row[CLAIM_FEATURES.index("cross")]))

    def probability(self, row: np.ndarray) -> float:
        return float(min(m.probabilities(row)[0] for m in self.models[self.direction_of(row)].values()))

    def threshold(self, row: np.ndarray) -> float:
        """The probability a claim needs: the threshold of its direction."""
        return self.thresholds[self.direction_of(row)]

    def save(self, path: Path = MODEL_FILE) -> None:
        models = {d: {k: m.to_dict() for k, m in kinds.items()} for d, kinds in self.models.items()}
        payload = {"models": models, "thresholds": self.thresholds, "provenance": self.provenance}
        write_checked(path, "claim_check", payload)

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> ClaimModel:
        """Read a model written by :meth:`save`, checking its checksum and its features.

        Raises:
            rag.answering.scorer.ScorerFileError: missing, damaged, or fitted for other features.
        """
        fix = "re-run `python scripts/claims_set.py` to fit it again"
        payload = read_checked(path, "claim_check", fix)
        try:
            models = {
                str(d): {str(k): Logistic.from_dict(m) for k, m in kinds.items()}
                for d, kinds in payload["models"].items()
            }
            thresholds = {str(k): float(v) for k, v in payload["thresholds"].items()}
            model = cls(models, thresholds, dict(payload["provenance"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ScorerFileError(f"{path}: not a claim model ({exc}); {fix}") from exc
        if set(model.thresholds) != set(DIRECTIONS) or set(model.models) != set(DIRECTIONS):
            raise ScorerFileError(f"{path}: not models and a threshold per direction ({DIRECTIONS}); {fix}")
        if not all(model.models.values()):
            raise ScorerFileError(f"{path}: a direction without a model; {fix}")
        if any(m.features != CLAIM_FEATURES for kinds in model.models.values() for m in kinds.values()):
            raise ScorerFileError(f"{path}: fitted for other signals than this version computes; {fix}")
        return model


DIRECTIONS = ("same", "cross")


def direction(cross: bool) -> str:
    """The name of a claim's direction: in its passage's language ("same") or another ("cross")."""
    return DIRECTIONS[int(cross)]


@functools.cache
def shipped_model() -> ClaimModel:
    """The claim decision shipped with the package (read once)."""
    return ClaimModel.load(MODEL_FILE)


class ClaimChecker:
    """Checks sentences against one answer's numbered passages.

    Args:
        passages: the citations the model read, ``[1]`` first.
        embed_queries, embed_documents: the index's model (normalised vectors); without them
            the fitted decision and the cross-language name match are skipped (lexical checks only).
        config: the thresholds.
        model: the fitted decision for sentences that pass the gate (default: the shipped one, read on
            the first sentence it decides).
    """

    def __init__(
        self,
        passages: Sequence[Citation],
        *,
        embed_queries: Embed | None = None,
        embed_documents: Embed | None = None,
        config: ClaimConfig | None = None,
        model: ClaimModel | None = None,
    ) -> None:
        self.passages = {c.n: c for c in passages}
        self.model = model
        self.embed_queries = embed_queries
        self.embed_documents = embed_documents
        self.config = config or ClaimConfig()
        self._windows = {c.n: self._windows_of(c) for c in passages}
        self._sentences = {
            c.n: [c.passage[a:b] for a, b in split_sentences(c.passage)] or [c.passage] for c in passages
        }
        self._sentence_vectors: dict[int, np.ndarray] = {}
        # (name, window, language, strict): how it was found
        self._matches: dict[tuple[str, int, str, bool], str | None] = {}

    @classmethod
    def for_engine(
        cls, passages: Sequence[Citation], engine: AnswerEngine, config: ClaimConfig | None = None
    ) -> ClaimChecker:
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
        return self.assess(sentence)[0]

    def assess(self, sentence: str) -> tuple[ClaimCheck, np.ndarray | None]:
        """The check of ``sentence`` and, when it passed the name, date and number gate and a model is
        at hand, its row of the decision's signals (:data:`CLAIM_FEATURES`; ``None`` otherwise)."""
        cited = cited_numbers(sentence)
        facts = facts_of(sentence)
        cited_here = tuple(n for n in cited if n in self.passages)
        if not cited_here:
            names = [n for n in facts.names if n != facts.initial]
            terms = len(facts.terms) + (facts.initial is not None)
            if names or facts.dates or facts.numbers or terms > self.config.max_uncited_terms:
                return ClaimCheck(sentence, False, "no citation", cited), None
            return ClaimCheck(sentence, True, SUPPORTED, cited), None
        where = ", ".join(f"[{n}]" for n in cited_here)
        windows = [w for n in cited_here for w in self._windows[n]]
        strict = not self._decides()  # near spellings count only where the fitted decision weighs them
        best, best_missing, matched = None, None, {}
        for w in windows:
            missing, how = self._missing(facts, w, strict)
            if best_missing is None or len(missing) < len(best_missing):
                best, best_missing, matched = w, missing, how
            if not missing:
                break
        assert best_missing is not None and best is not None
        if best_missing:
            anywhere = [m for m in best_missing if all(m in self._missing(facts, w, strict)[0] for w in windows)]
            if anywhere:
                reason = f"{', '.join(repr(m) for m in anywhere)} not in {where}"
                return ClaimCheck(sentence, False, reason, cited), None
            apart = ", ".join(repr(m) for m in best_missing)
            return ClaimCheck(sentence, False, f"{apart} not stated together in {where}", cited), None
        claim = strip_citations(sentence)
        similarity, closest = self.closest(claim, cited_here)
        if similarity is None:
            return ClaimCheck(sentence, True, SUPPORTED, cited), None
        closest = self._aligned(facts, cited_here, closest)
        # The roles of names are read where the closest sentence stands, if its window holds the facts too.
        around = next(
            (w for w in windows if closest and closest in w.text and not self._missing(facts, w, strict)[0]), best
        )
        turned = turn_negation(claim, facts.language)
        contrast = (self.closest(turned, cited_here)[0] or similarity) - similarity if turned else None
        row = self._signals(claim, facts, best, matched, similarity, closest, around, contrast)
        floor = self.config.min_similarity
        if floor is not None:  # a fixed floor instead of the fitted decision (tests, and the floor switched off)
            if similarity < floor:
                reason = f"says what {where} does not (similarity {similarity:.2f})"
                return ClaimCheck(sentence, False, reason, cited, similarity), row
            return ClaimCheck(sentence, True, SUPPORTED, cited, similarity), row
        model = self.model or shipped_model()
        p = model.probability(row)
        if p < model.threshold(row):
            reason = f"says what {where} does not (probability {p:.2f}, similarity {similarity:.2f})"
            return ClaimCheck(sentence, False, reason, cited, similarity, round(p, 4)), row
        return ClaimCheck(sentence, True, SUPPORTED, cited, similarity, round(p, 4)), row

    def _decides(self) -> bool:
        has_model = self.embed_queries is not None and self.embed_documents is not None
        return self.config.min_similarity is None and has_model

    def _missing(self, facts: Facts, w: _Window, strict: bool = True) -> tuple[list[str], dict[str, str]]:
        """What of ``facts`` the window does not hold, and how each name it holds was found there."""
        how = {name: self._name_match(name, w, facts.language, strict) for name in facts.names}
        missing = [name for name, found in how.items() if found is None]
        dates = zip(facts.dates, facts.date_texts, strict=True)
        missing += [text for ref, text in dates if not _date_supported(ref, w)]
        for number, forms in zip(facts.numbers, facts.number_forms, strict=True):
            if not forms & w.numbers:
                missing.append(number)
        return missing, {k: v for k, v in how.items() if v is not None}

    def _name_in(self, name: str, w: _Window, language: str = "en") -> bool:
        return self._name_match(name, w, language) is not None

    def _name_match(self, name: str, w: _Window, language: str = "en", strict: bool = True) -> str | None:
        """How the window holds ``name``: ``"same"`` (a spelling or form of it, its exonym), ``"translated"``
        (a dictionary translation of a capitalised common word, or the model's near-identical word),
        ``"similar"`` (a near spelling: Normandy ~ Normandie, not when ``strict``), or None."""
        key = (name, id(w), language, strict)
        if key not in self._matches:
            self._matches[key] = self._match(name, w, language, strict)
        return self._matches[key]

    def _match(self, name: str, w: _Window, language: str, strict: bool) -> str | None:
        f = fold(name)
        if f in w.words or any(_same_name_or_form(f, x, language) for x in w.words):
            return "same"
        if any(same_name(other, x) for other in _EXONYMS.get(f, ()) for x in w.words):
            return "same"
        if language == "en" and _translated_in(f, w.words):
            return "translated"
        if self._same_word_across_languages(name, w):
            return "translated"
        if not strict and any(similar_words(f, x) for x in w.words if len(x) >= 3):
            return "similar"
        return None

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
        return self.closest(claim, cited)[0]

    def closest(self, claim: str, cited: Sequence[int]) -> tuple[float | None, str]:
        """Best cosine of ``claim`` with a sentence of the cited passages, and that sentence."""
        if self.embed_queries is None or self.embed_documents is None or not claim:
            return None, ""
        for n in cited:
            if n not in self._sentence_vectors:
                self._sentence_vectors[n] = np.asarray(self.embed_documents(self._sentences[n]))
        query = np.asarray(self.embed_queries([claim]))[0]
        best, sentence = -1.0, ""
        for n in cited:
            scores = self._sentence_vectors[n] @ query
            i = int(np.argmax(scores))
            if scores[i] > best:
                best, sentence = float(scores[i]), self._sentences[n][i]
        return round(best, 4), sentence

    def _aligned(self, facts: Facts, cited: Sequence[int], closest: str) -> str:
        """The cited sentence that holds most of the claim's content words (in translation across languages);
        the closest by cosine when none holds more: across languages an idiom can be closer to another sentence."""
        terms = [t for t in facts.terms if fold(t) not in FRAMING]
        if not terms:
            return closest

        def covered(sentence: str) -> int:
            near = frozenset(fold(x) for x in words(sentence))
            cross = facts.language != detect_language(sentence)
            return sum(_term_in(t, near, cross) for t in terms)

        best, most = closest, covered(closest)
        for n in cited:
            for s in self._sentences[n]:
                if (k := covered(s)) > most:
                    best, most = s, k
        return best

    def _signals(self, claim: str, facts: Facts, w: _Window, matched: dict[str, str], similarity: float,
                 closest: str, around: _Window, turned: float | None) -> np.ndarray:  # fmt: skip
        """The decision's row (:data:`CLAIM_FEATURES`) for a claim that passed the gate in window ``w``;
        ``turned``: how much closer the claim comes with its negation turned round (None: no way to turn it)."""
        negation = _negated(claim) != _negated(closest)
        unturned = negation and turned is not None and turned <= 0  # turned round it is no closer: an idiom
        cross = float(facts.language != detect_language(w.text))
        levels = list(matched.values())
        terms = [t for t in facts.terms if fold(t) not in FRAMING]
        found = sum(_term_in(t, w.words, cross > 0) for t in terms)
        near = frozenset(fold(x) for x in words(closest))
        return np.array(
            [
                similarity,
                cross,
                float(levels.count("same")),
                float(levels.count("translated")),
                float(levels.count("similar")),
                float(len(facts.dates) + len(facts.numbers)),
                float(negation and not unturned),
                _order(list(matched), closest),
                found / len(terms) if terms else 1.0,
                float(np.log1p(len(words(claim)))),
                0.0 if cross else _pairs_shared(claim, closest),
                self._share_in_sentence(list(matched), closest, facts.language),
                0.0 if cross else _names_in_context(list(matched), claim, closest),
                sum(_term_in(t, near, cross > 0) for t in terms) / len(terms) if terms else 1.0,
                *_roles(list(matched), claim, around.text, facts.language, cross > 0, self.config.role_reach),
                turned or 0.0,
                float(unturned),
            ]
        )

    def _share_in_sentence(self, names: Sequence[str], sentence: str, language: str) -> float:
        """Share of the claim's names that the closest sentence itself holds (1.0 without names): a name of
        the passage put in another's place is in the window, seldom in the sentence the claim is closest to."""
        if not names:
            return 1.0
        folded = frozenset(fold(w) for w in words(sentence))
        near = _Window(0, sentence, folded, (), frozenset(), None)
        found = 0
        for name in names:
            f = fold(name)
            found += bool(
                f in folded
                or any(_same_name_or_form(f, x, language) or similar_words(f, x) for x in folded)
                or any(same_name(other, x) for other in _EXONYMS.get(f, ()) for x in folded)
                or (language == "en" and _translated_in(f, near.words))
            )
        return found / len(names)


# The decision's signals for a claim that passed the gate (rag/models/claim_check.json is fitted on them).
CLAIM_FEATURES = (
    "similarity",  # best cosine (e5: claim as query, passage sentence as passage)
    "cross",  # the claim is in another language than its passage
    "names_same",  # names found as written (or a spelling, form or exonym of them)
    "names_translated",  # names found as a dictionary translation or the model's near-identical word
    "names_similar",  # names found only as a near spelling
    "facts",  # dates and numbers, all found
    "negation",  # the claim and its closest passage sentence are negated differently (not "negation_unturned")
    "order",  # the claim's names stand in the closest sentence's order (1), the other way round (0), or n/a (0.5)
    "coverage",  # share of the claim's content words found in the window (in translation across languages)
    "length",  # log(1 + words)
    "pairs",  # in one language: share of the claim's neighbouring word pairs that the closest sentence has too
    "names_closest",  # share of the claim's names that the closest passage sentence holds
    "names_context",  # in one language: share of the claim's names with a neighbour word they have there too
    "coverage_closest",  # share of the claim's content words found in the closest sentence (in translation)
    "names_role",  # least share of a name's neighbours in the claim found around it in the window (in translation)
    "names_displaced",  # names whose claim neighbours stand around another of the claim's names there
    "turned",  # best cosine of the claim with its negation turned round, less the claim's own (0 when none)
    "negation_unturned",  # negated differently, but turned round no closer (an idiom: "unlikely" ~ "nicht")
)


def _roles(
    names: Sequence[str], claim: str, passage: str, language: str, cross: bool, reach: int = 2
) -> tuple[float, float]:
    """How the claim's names keep their roles in ``passage``: the least share of a name's neighbours in the
    claim (``reach`` words either side) found around one of its places in the passage; and the number of
    names whose neighbours fit a place of another of the claim's names better than any of their own (two
    names swapped: each stands in the other's context; not two names joined by "und"). Across languages
    only content words are neighbours, found as dictionary translations within one word more.
    (1.0, 0.0) when no name has neighbours and a place.

    >>> _roles(["Scheele", "Priestley"], "Priestley entdeckte es in Uppsala, Scheele in Wiltshire.",
    ...        "Scheele entdeckte es in Uppsala, Priestley in Wiltshire.", "de", False)
    (0.0, 2.0)
    >>> _roles(["Schliemann"], "Over the years, Schliemann amassed art treasures.",
    ...        "Im Laufe der Jahre trug Schliemann Kunstschätze zusammen.", "en", True)
    (0.6667, 0.0)
    """
    a = [fold(x) for x in words(claim)]
    b = [fold(x) for x in words(passage)]
    far = reach + cross

    def context(i: int) -> list[str]:
        near = [*a[max(0, i - reach) : i], *a[i + 1 : i + 1 + reach]]
        return [x for x in near if not _says_nothing(x)] if cross else near

    def fits(word: str, around: frozenset[str]) -> bool:
        if word in around or any(same_word(word, x) for x in around):
            return True
        return cross and _translated_in(word, around)

    def places(name: str) -> list[int]:
        return [j for j, x in enumerate(b) if x == name or _same_name_or_form(name, x, language)
                or any(same_name(o, x) for o in _EXONYMS.get(name, ()))
                or (cross and _translated_in(name, frozenset((x,))))]  # fmt: skip

    def fit(ctx: Sequence[str], j: int) -> int:
        around = frozenset(b[max(0, j - far) : j] + b[j + 1 : j + 1 + far])
        return sum(fits(x, around) for x in ctx)

    def coordinated(x: str, y: str) -> bool:  # "Xi und Putin": one role, in either order
        i, k = sorted((a.index(x), a.index(y)))
        return k - i == 2 and a[i + 1] in _COORDINATION

    found = {}
    for name in dict.fromkeys(fold(n) for n in names):
        if name in a and (spots := places(name)):
            found[name] = (context(a.index(name)), spots)
    shares, displaced = [], 0
    for name, (ctx, spots) in found.items():
        if not ctx:
            continue
        own = max(fit(ctx, j) for j in spots)
        shares.append(own / len(ctx))
        others = [j for other, (_, js) in found.items() if other != name and not coordinated(name, other)
                  for j in js if j not in spots]  # fmt: skip
        displaced += any(fit(ctx, j) > own for j in others)
    if not shares:
        return 1.0, 0.0
    return round(min(shares), 4), float(displaced)


# Words that join names of one role ("Xi und Putin trafen sich" says what "Putin und Xi" says).
_COORDINATION = frozenset(["und", "oder", "sowie", "and", "or"])


def _names_in_context(names: Sequence[str], claim: str, sentence: str) -> float:
    """Share of ``names`` that stand next to a word in ``claim`` that they stand next to in ``sentence`` too
    (1.0 without names): a name put in another's place keeps the other's neighbours.

    >>> _names_in_context(["Xi", "Putin"], "Xi traf Putin in Moskau.", "Putin traf Xi in Moskau.")
    0.0
    >>> _names_in_context(["Xi", "Putin"], "Xi traf Putin.", "Xi traf am Montag Putin.")
    0.5
    """
    if not names:
        return 1.0
    a, b = [fold(w) for w in words(claim)], [fold(w) for w in words(sentence)]
    have = set(itertools.pairwise(b))
    found = 0
    for name in names:
        f = fold(name)
        spots = [i for i, w in enumerate(a) if w == f]
        found += any((i > 0 and (a[i - 1], f) in have) or (i + 1 < len(a) and (f, a[i + 1]) in have) for i in spots)
    return found / len(names)


def _pairs_shared(claim: str, sentence: str) -> float:
    """Share of the claim's pairs of neighbouring words (folded) that ``sentence`` holds too: a role given
    to another person keeps the words and loses their pairs ("Xi traf Putin" / "Putin traf Xi").

    >>> _pairs_shared("Xi traf Putin in Moskau.", "Putin traf Xi in Moskau."), _pairs_shared("Xi kam.", "Xi kam.")
    (0.25, 1.0)
    """
    a, b = [fold(w) for w in words(claim)], [fold(w) for w in words(sentence)]
    pairs = list(itertools.pairwise(a))
    if not pairs:
        return 1.0
    have = set(itertools.pairwise(b))
    return sum(p in have for p in pairs) / len(pairs)


NEGATIONS = frozenset(fold(w) for w in word_list("negation_words", "rag"))
_NEG_DE = re.compile(r"\s*\b(nicht|nie|niemals)\b|\b[Kk](ein(?:e[mnrs]?)?)\b")
_NEG_EN = re.compile(r"\s+(not|never)\b|\b(?:(wo)|(ca)|(sha)|\w+)(n['’]t)\b|\b(can)(not)\b", re.I)
_AUX_EN = re.compile(r"\b(is|are|was|were|has|have|had|will|would|could|should|must|did|does|do)\b")
_UNCONTRACTED = {"wo": "will", "ca": "can", "sha": "shall"}  # won't, can't, shan't


def turn_negation(sentence: str, language: str) -> str | None:
    """The sentence with its negation removed, or with one added (None when no simple way is found): what
    the sentence would say turned round, to see which of the two its passage is closer to.

    >>> turn_negation("Xi did not come.", "en"), turn_negation("Xi kam nicht.", "de")
    ('Xi did come.', 'Xi kam.')
    >>> turn_negation("Xi was here.", "en")
    'Xi was not here.'
    >>> turn_negation("Er hatte keine Chance.", "de"), turn_negation("Xi traf Putin in Moskau.", "de")
    ('Er hatte eine Chance.', 'Xi traf Putin in nicht Moskau.')
    >>> turn_negation("Xi won't come.", "en"), turn_negation("Xi cannot come.", "en"), turn_negation("Xi didn’t.", "en")
    ('Xi will come.', 'Xi can come.', 'Xi did.')
    """
    if language == "de":
        m = _NEG_DE.search(sentence)
        if m:
            if m.group(1):  # "nicht", "nie", "niemals" dropped
                return sentence[: m.start()] + sentence[m.end() :]
            word = m.group(0)[1:]  # "kein" -> "ein", "Keine" -> "Eine"
            word = word.capitalize() if m.group(0)[0].isupper() else word
            return sentence[: m.start()] + word + sentence[m.end() :]
        head, comma, tail = sentence.partition(", ")
        clause = head.rstrip(".!")
        parts = clause.split(" ")
        if len(parts) < 4:
            return None
        negated = " ".join([*parts[:-1], "nicht", parts[-1]])
        return negated + (comma + tail if comma else sentence[len(clause) :])
    m = _NEG_EN.search(sentence)
    if m:
        if m.group(1):  # " not", " never"
            return sentence[: m.start()] + sentence[m.end() :]
        if m.group(6):  # "cannot"
            return sentence[: m.start()] + m.group(6) + sentence[m.end() :]
        short = m.group(2) or m.group(3) or m.group(4)
        if short:  # "won't" -> "will", keeping a capital
            full = _UNCONTRACTED[short.casefold()]
            return sentence[: m.start()] + (full.capitalize() if short[0].isupper() else full) + sentence[m.end() :]
        return sentence[: m.start(5)] + sentence[m.end(5) :]  # "didn't" -> "did"
    m = _AUX_EN.search(sentence)
    if m:
        return sentence[: m.end()] + " not" + sentence[m.end() :]
    return _do_not(sentence)


def _do_not(sentence: str) -> str | None:
    """An English sentence without an auxiliary negated with "did not": the first word ending in "-ed" after
    the first word, a regular verb in the past whose plain form the dictionary knows ("surrendered" -> "did not
    surrender"); None when there is none (an irregular verb: "won"; "-s" is as often a plural as a verb).

    >>> _do_not("The citizens surrendered after forty days."), _do_not("After forty days the army withdrew.")
    ('The citizens did not surrender after forty days.', None)
    """
    lexicon = _lexicon()
    for m in list(re.finditer(r"\b[a-z]+\b", sentence))[1:]:
        w = m.group(0)
        if w in STOPWORDS:
            continue
        if not w.endswith("ed"):
            continue
        plain = [w[:-2], w[:-1], w[:-3] if w[-3:-2] == w[-4:-3] else "", w[:-3] + "y"]  # stopped, tried
        known = [p for p in plain if len(p) >= 3 and lexicon.translations(p)]
        if known:
            return sentence[: m.start()] + f"did not {known[0]}" + sentence[m.end() :]
        return None  # the first candidate is not a verb the dictionary knows: do not guess further
    return None


def _negated(sentence: str) -> bool:
    """Whether ``sentence`` holds an odd number of negations (rag/data/negation_words.txt).

    >>> _negated("He did not come."), _negated("Er kam nicht."), _negated("Er kam."), _negated("He didn't come.")
    (True, True, False, True)
    """
    sentence = sentence.replace("’", "'")
    n = sum(fold(w) in NEGATIONS for w in re.findall(r"[^\W\d_]+", sentence.replace("n't", " n't ")))
    n += sentence.count("n't")
    return n % 2 == 1


def _order(names: Sequence[str], sentence: str) -> float:
    """1.0 when the names found stand in ``sentence`` in the claim's order, 0.0 when in the reverse order,
    the share of pairs in order between, 0.5 when fewer than two of them are in it.

    >>> _order(["Xi", "Putin"], "Xi traf Putin."), _order(["Xi", "Putin"], "Putin traf Xi."), _order(["Xi"], "Xi.")
    (1.0, 0.0, 0.5)
    """
    folded = [fold(w) for w in re.findall(r"[^\W\d_]+", sentence)]
    where = []
    for name in names:
        f = fold(name)
        at = next((i for i, w in enumerate(folded) if w == f or same_name(f, w) or similar_words(f, w)), None)
        if at is not None:
            where.append(at)
    pairs = [(a, b) for i, a in enumerate(where) for b in where[i + 1 :] if a != b]
    if not pairs:
        return 0.5
    return sum(a < b for a, b in pairs) / len(pairs)


def _term_in(term: str, passage_words: frozenset[str], cross: bool) -> bool:
    """Whether a content word of a claim is in the passage: as a form of it, or (across languages) as one
    of its dictionary translations or a German compound that holds one."""
    f = fold(term)
    if f in passage_words or any(same_word(f, x) for x in passage_words):
        return True
    return cross and _translated_in(f, passage_words)


def _translated_in(folded: str, passage_words: frozenset[str]) -> bool:
    """Whether a German word of the passage is a dictionary translation of an English word (rag.answering.lexicon), or
    a compound whose first or last part is one ("supreme" ~ "obersten", "conference" ~ "friedenskonferenz")."""
    german = [t for t in _lexicon().translations(folded) if "/" not in t]  # not "erste/r/s"
    if not german:
        return False
    for x in passage_words:
        for t in german:
            if t.endswith("..."):  # a first part of compounds: "nord..." in "Nordafrika"
                if len(t) >= 7 and x.startswith(t[:-3]):
                    return True
            elif x == t or (len(t) >= 4 and (x.startswith(t) or x.endswith(t)) and len(x) - len(t) <= 12):
                return True
    return False


@functools.cache
def _lexicon() -> Lexicon:
    from rag.answering.lexicon import load

    return load()


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
        if c.probability is not None:
            sim = sim[:-1] + f", probability {c.probability:.2f})" if sim else f" (probability {c.probability:.2f})"
        status = "kept   " if c.kept else "removed"
        why = "" if c.kept else f": {c.reason}"
        lines.append(f"  {status}  {_quote(c.sentence)}{sim}{why}")
    return "\n".join(lines)


def _quote(sentence: str, limit: int = 160) -> str:
    sentence = " ".join(sentence.split())
    return f'"{sentence[:limit]}{"…" if len(sentence) > limit else ""}"'

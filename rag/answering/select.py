"""Pick the sentences of the retrieved passages that answer the question.

Each sentence of the top passages is scored on four signals:

* ``dense``: cosine of question and sentence embeddings (works across languages);
* ``lexical``: the IDF-weighted share of the question's words found in the
  sentence, with German stemming, spelling variants of names, words of origin and
  role words across the languages, and (English questions) dictionary translations;
* ``kind``: whether the sentence holds what the question type needs (a date
  for *when*, a named person for *who*, a place for *where*, a number for *how many*);
* ``passage``: how well its passage as a whole matched the question.

For "which sources … the report on X" a byline ("Jana Kroll (Laut ERR, Baltic Courier)") stands for
its whole article and takes the signals of the article's best sentence.

The weights were set on the development questions and kept round on purpose.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from embeddings import ChunkingConfig, StoreView, split_sentences
from embeddings.language.bylines import credits_article, is_attribution
from embeddings.language.memo import text_memo
from embeddings.language.wordlists import alternation
from rag.answering.ground import LOCATION_WORD, numbers
from rag.answering.lexicon import EMPTY, Lexicon, load
from rag.answering.questions import HOW_LONG, Question
from rag.answering.temporal import TimeRef, resolve
from rag.answering.text import (
    QUOTE_MARK,
    calendar_name,
    compound_match,
    detect_language,
    fold,
    role_parts,
    similar_words,
    stem,
    transliterate,
    words,
)
from rag.config import ScoringConfig
from rag.types import Hit

# A "sentence" longer than a chunk (a line with no full stop) is cut as chunking cuts it,
# so that no quote is longer than a passage.
MAX_SENTENCE_CHARS = ChunkingConfig().max_chars
DEFAULT = ScoringConfig()
# Question types whose answer must hold the sign kind_match looks for (a date, a reason): it weighs more.
STRONG_KINDS = ("when", "why", "source")

# Verbs of saying, lower case only (a capitalised "So" opens a sentence): rag/data/speech_verbs.txt.
SPEECH = re.compile(r"\b(" + alternation("speech_verbs", "rag") + r")\b")
_CAP = r"[A-ZÄÖÜ][\w\-]+"
_NAME_PAIR = re.compile(rf"(?<![.!?„“\"]\s)\b{_CAP}\s+{_CAP}\b")
_PLACE = re.compile(rf"\b(in|nach|aus|im|bei|at|to|from|von)\s+{_CAP}")
# Words that give a reason, in German and English: a *why* answer holds one (rag/data/cause_words.txt).
CAUSE = re.compile(r"\b(" + alternation("cause_words", "rag") + r")\b", re.I)


# Words that introduce a medium or a report's source, in German and English (rag/data/media_attributions.txt),
# and nouns for media, also as the end of a compound ("Nachrichtenagentur"; rag/data/media_nouns.txt).
_MEDIUM = re.compile(
    r"\b(" + alternation("media_attributions", "rag") + r")\b|(" + alternation("media_nouns", "rag") + r")\b", re.I
)


# A question about the article itself ("the report on …", "dem Bericht über …"), not someone's own ("his article").
THIS_ARTICLE = re.compile(
    r"\b(the|this|that|der|die|das|dem|den|des|diese[mnrs]?)\s+(report|article|story|piece|bericht|berichte?s"
    r"|artikels?|beitrag|beitrage?s|meldung)\b",
    re.I,
)


@dataclass(frozen=True)
class Sentence:
    """A sentence of a retrieved passage; ``start``/``end`` are offsets into its document."""

    hit: int  # position of its passage in the hit list
    source: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Scored:
    """A sentence with its signals and combined score."""

    sentence: Sentence
    score: float
    dense: float
    lexical: float
    kind: float
    passage: float
    foreign: float = 0.0  # 1 when the sentence is in another language than its article


def candidates(
    hits: Sequence[Hit], snapshot: StoreView, min_words: int = DEFAULT.min_words, bylines: bool = False
) -> list[Sentence]:
    """The distinct sentences of the hits' passages, in hit order.

    A sentence found again (in the overlap of two passages, or in another file that
    repeats it) is kept only where it first appeared, so it cannot be quoted twice.
    """
    seen: set[str] = set()
    out: list[Sentence] = []
    for n, hit in enumerate(hits):
        doc = snapshot.documents[hit.chunk.source]
        for s, e in split_sentences(doc.text, hit.chunk.start, hit.chunk.end, max_chars=MAX_SENTENCE_CHARS):
            text = doc.text[s:e]
            furniture = is_furniture(text) and not (bylines and is_attribution(text))
            if text in seen or len(words(text)) < min_words or furniture:
                continue
            seen.add(text)
            out.append(Sentence(n, doc.source, s, e, text))
    return out


@text_memo(max_bytes=64 * 2**20)
def document_sentences(text: str) -> tuple[tuple[int, int], ...]:
    """Sentence spans of a whole document (memoised by a digest, bounded by bytes: documents are immutable)."""
    return tuple(split_sentences(text, max_chars=MAX_SENTENCE_CHARS))


@text_memo(max_bytes=2**20)
def document_language(text: str) -> str:
    """Main language of a document."""
    return detect_language(text[:20_000])


# A document this many margins long or shorter is split whole: a question scores about a dozen sentences of
# each document it retrieves, and each would otherwise split a window of two margins around itself.
WHOLE_SPLIT_MARGINS = 16


def sentences_around(text: str, start: int, end: int, reach: int) -> tuple[tuple[int, int], ...]:
    """The sentence spans of the lines around ``text[start:end]``: at least ``reach`` sentences on each side
    where the document has them, the same spans as :func:`document_sentences` gives there.

    Sentences never cross a line break, so the lines around a sentence split alone exactly as
    they do inside the whole text; a long document (a manual of a thousand lines) is then not
    split whole for the first question that touches it.
    """
    margin = (reach + 1) * MAX_SENTENCE_CHARS
    if len(text) <= WHOLE_SPLIT_MARGINS * margin:
        return document_sentences(text)  # split once (memoised) costs less than the windows of its sentences
    a = text.rfind("\n", 0, max(0, start - margin)) + 1
    b = text.find("\n", min(len(text), end + margin))
    b = len(text) if b < 0 else b
    if a == 0 and b == len(text):
        return document_sentences(text)
    spans = tuple(split_sentences(text, a, b, max_chars=MAX_SENTENCE_CHARS))
    i = bisect.bisect_left(spans, (start, end))
    if (i - reach < 0 and a > 0) or (i + reach >= len(spans) and b < len(text)):
        return document_sentences(text)  # mostly blank lines around: not enough sentences in reach
    return spans


def neighbours(sentence: Sentence, snapshot: StoreView, reach: int = 1) -> list[Sentence]:
    """The ``reach`` sentences just before and after ``sentence`` in its document, nearest first."""
    doc = snapshot.documents[sentence.source]
    spans = sentences_around(doc.text, sentence.start, sentence.end, reach)
    i = bisect.bisect_left(spans, (sentence.start, sentence.end))
    out = []
    for j in (j for d in range(1, reach + 1) for j in (i - d, i + d)):
        if 0 <= j < len(spans) and spans[j] != (sentence.start, sentence.end):
            a, b = spans[j]
            out.append(Sentence(sentence.hit, sentence.source, a, b, doc.text[a:b]))
    return out


_FURNITURE = re.compile(r"^(leave a comment|kommentar|kommentare|teilen|share|foto|bild|photo|image)\b", re.I)
# A photo caption names who stands where: "Aino Saari (links) und Marek Lind am 5. März in Tallinn."
_CAPTION = re.compile(r"\((links|rechts|mitte|left|right|center|centre|l\.|r\.)\)", re.I)


def is_furniture(text: str) -> bool:
    """Page furniture, not a statement: a lead-in line that ends in a colon ("Text ist eine Übersetzung vom …:"),
    a caption credit, a share or comment prompt.

    >>> is_furniture("Text ist eine Übersetzung vom Nordkurier Artikel:"), is_furniture("Er sagte: Ja.")
    (True, False)
    """
    stripped = text.strip()
    if stripped.endswith(":") and len(words(stripped)) <= 12 and not SPEECH.search(stripped):
        return True  # a lead-in, unless someone speaks: "Putin sagte:"
    return bool(_FURNITURE.match(stripped) or _CAPTION.search(stripped))


def kind_match(
    kind: str,
    text: str,
    article_date: dt.date | None = None,
    asked: Sequence[str] = (),
    config: ScoringConfig = DEFAULT,
    how_long: bool = False,
) -> float:
    """1.0 when the sentence holds what the question type asks for, partial credit for weaker signs.

    For *when*, a date counts fully only if it stands within ``config.date_reach`` words of one of
    the ``asked`` words (the question's content words) found in the sentence: in "X's visit came a
    day after talks in Riga on Thursday" the Thursday is the talks' date, not the visit's.

    >>> kind_match("when", "Lind traf am Freitag den Premier.", asked=("Lind",))
    1.0
    >>> kind_match("when", "Linds Besuch folgte Gesprächen von Delegierten aus Polen und Finnland in Riga am Montag.",
    ...            asked=("Lind", "besuchte"))
    0.25
    """
    if kind == "when":
        refs = resolve(text, article_date)
        dated = [r for r in refs if r.precision in ("day", "month")]
        if dated:
            near = not asked or any(_date_near(text, r, asked, config.date_reach) for r in dated)
            return 1.0 if near else config.far_date
        return 0.5 if refs else 0.0
    if kind == "who":
        if SPEECH.search(text) and re.search(_CAP, text[1:]):
            return 1.0
        return 1.0 if _NAME_PAIR.search(text) else 0.0
    if kind == "where":
        return 1.0 if _PLACE.search(text) or LOCATION_WORD.search(text) else 0.0
    if kind == "statement":
        quoted = QUOTE_MARK.search(text) is not None
        return (0.5 if quoted else 0.0) + (0.5 if SPEECH.search(text) else 0.0)
    if kind == "source":  # a byline names the outlets outright; "laut TASS" inside a sentence less so
        return 1.0 if is_attribution(text) else 0.5 if _MEDIUM.search(text) else 0.0
    if kind == "quantity":
        if how_long and resolve(text, article_date):
            return 1.0  # "how long will the war last" -> "bis weit ins nächste Jahr"
        return 1.0 if numbers(text, article_date) else 0.0
    if kind == "why":
        return 1.0 if CAUSE.search(text) else 0.0
    return 0.0


def _date_near(text: str, ref: TimeRef, asked: Sequence[str], reach: int) -> bool:
    """Whether one of the ``asked`` words stands within ``reach`` words before or after the date."""
    before = words(text[: ref.start])[-reach:]
    after = words(text[ref.end :])[:reach]
    return any(similar_words(a, w) for a in asked for w in before + after)


@functools.lru_cache(maxsize=256)
def _content_words(question: Question) -> tuple[str, ...]:
    """The question's words that are search terms, as written, once each (asked for every sentence)."""
    return tuple(dict.fromkeys(w for w in words(question.text) if stem(w.casefold()) in question.terms))


def lexical_overlap(
    question: Question,
    text: str,
    idf: Callable[[str], float],
    lexicon: Lexicon = EMPTY,
    translated: float = DEFAULT.w_translated,
) -> float:
    """IDF-weighted share of the question's content words that the sentence contains (fuzzy).

    A question word is compared only with the sentence's words that begin with the same sound
    (transliterated initial), where fuzzy matches live, and with the words that share its last
    letters (compounds): the cost grows with the words, not with their product. An English word
    that is not there may be there in translation (``lexicon``: "trip" in "Reise", "supply" in
    "Versorgungsleitungen"); it then counts ``translated`` of its weight.
    """
    q_words = _content_words(question)
    if not q_words:
        return 0.0
    index = _word_index(text)
    total = matched = 0.0
    for w in q_words:
        weight = idf(stem(w.casefold()))
        total += weight
        if _contains(index, w):
            matched += weight
        elif question.language == "en" and len(lexicon) and not _word_parts(text).isdisjoint(_german(lexicon, w)):
            matched += translated * weight
    return matched / total if total else 0.0


@functools.lru_cache(maxsize=4096)
def _german(lexicon: Lexicon, word: str) -> frozenset[str]:
    """The German words to look for: the translations, and the parts of hyphenated ones ("U-Boot": "boot")."""
    out = set()
    for t in lexicon.translations(word):
        out.update([t] if "-" not in t else [p for p in t.split("-") if len(p) >= 4])
    return frozenset(out)


@functools.lru_cache(maxsize=4096)
def _word_parts(text: str) -> frozenset[str]:
    """The sentence's words with their inflections cut off, and the parts of its compounds: what a
    dictionary's base form can be ("Reisen": "reise"; "Militärübungen": "militar", "ubung").

    >>> sorted(p for p in _word_parts("Versorgungsleitungen") if p in ("versorgung", "leitung", "sleitung"))
    ['leitung', 'sleitung', 'versorgung']
    """
    out: set[str] = set()
    for w in {fold(w) for w in words(text)}:
        out.update(_parts_of(w))
    return frozenset(out)


@functools.lru_cache(maxsize=8192)  # a long compound has dozens of parts: fewer words kept
def _parts_of(w: str) -> tuple[str, ...]:
    """One folded word's share of :func:`_word_parts` (a word recurs from sentence to sentence)."""
    out = {w}
    out.update(w[:-k] for k in (1, 2, 3) if len(w) - k >= 4)  # Reisen, Übungen: the base form
    if len(w) >= 8:  # a compound: its first parts (the modifier) and its last (the head)
        out.update(w[:j] for j in range(4, len(w) - 3))
        out.update(w[i : len(w) - k] for i in range(3, len(w) - 3) for k in (0, 1, 2, 3) if len(w) - k - i >= 4)
    return tuple(out)


@dataclass(frozen=True)
class _Words:
    """A sentence's words, indexed for :func:`lexical_overlap`."""

    folded: frozenset[str]
    by_initial: dict[str, tuple[str, ...]]  # by transliterated first letter: where fuzzy spellings match
    calendar: tuple[str, ...]  # weekday and month names (they match across languages)
    stems: frozenset[str]  # stems of the words of five letters or more
    stem_endings: frozenset[str]  # every ending (five letters or more) of those stems: compounds' heads
    by_ending: dict[str, tuple[str, ...]]  # long words by their last six letters: two compounds, one head
    joined: str  # the words, one per line: a part is in some word when it is in this string


@functools.lru_cache(maxsize=32_768)
def _word_facts(folded: str) -> tuple[str, bool, str | None, tuple[str, ...]]:
    """What :func:`_word_index` keeps of one folded word: its transliterated initial, whether it names a
    day or month, its stem (five letters or more) and that stem's endings. A corpus's words recur from
    sentence to sentence: each is analysed once, not once per sentence that holds it."""
    st = stem(folded) if len(folded) >= 5 else None
    endings = tuple(st[i:] for i in range(len(st) - 4)) if st is not None else ()
    return transliterate(folded)[:1], calendar_name(folded) is not None, st, endings


@functools.lru_cache(maxsize=4096)
def _word_index(text: str) -> _Words:
    folded = frozenset(fold(w) for w in words(text))
    by_initial: dict[str, list[str]] = {}
    by_ending: dict[str, list[str]] = {}
    calendar: list[str] = []
    stems: set[str] = set()
    endings: set[str] = set()
    for f in folded:
        initial, is_calendar, st, its_endings = _word_facts(f)
        by_initial.setdefault(initial, []).append(f)
        if len(f) >= 9:
            by_ending.setdefault(f[-6:], []).append(f)
        if is_calendar:
            calendar.append(f)
        if st is not None:
            stems.add(st)
            endings.update(its_endings)
    return _Words(
        folded,
        {k: tuple(v) for k, v in by_initial.items()},
        tuple(calendar),
        frozenset(stems),
        frozenset(endings),
        {k: tuple(v) for k, v in by_ending.items()},
        "\n".join(folded),
    )


@functools.lru_cache(maxsize=4096)
def _asked_facts(word: str) -> tuple[str, tuple[str, ...], bool, str, str | None, tuple[str, ...]]:
    """What :func:`_contains` asks of a question word, worked out once per word rather than once per sentence:
    folded, its role parts, whether it names a day or month, its transliterated initial, its stem (five
    letters or more) and that stem's shorter endings (the heads it may have)."""
    f = fold(word)
    initial, is_calendar, st, endings = _word_facts(f)
    return f, role_parts(f), is_calendar, initial, st, endings[1:]  # the endings but the whole stem


def _contains(index: _Words, word: str) -> bool:
    """Whether the sentence has ``word``: the same, a spelling variant, or a compound with it as head
    (the same matches as :func:`.text.similar_words` and :func:`.text.compound_match`, found by lookup)."""
    f, parts, is_calendar, initial, st, heads = _asked_facts(word)
    if f in index.folded:
        return True
    if parts and any(p in index.joined for p in parts):
        return True  # a role inside a German compound: "secretary" in "US-Verteidigungsminister"
    if is_calendar:
        return any(similar_words(f, s) for s in index.calendar)
    if any(similar_words(f, s) for s in index.by_initial.get(initial, ())):
        return True
    if st is None:
        return False
    if st in index.stems or (len(st) >= 5 and st in index.stem_endings):
        return True  # the same stem, or the head of a compound in the sentence
    if any(h in index.stems for h in heads):
        return True  # the question's compound has a sentence word as its head
    return any(compound_match(f, s) for s in index.by_ending.get(f[-6:], ()))


def rank(
    question: Question,
    query_vector: np.ndarray,
    hits: Sequence[Hit],
    snapshot: StoreView,
    embed: Callable[[list[str]], np.ndarray],
    idf: Callable[[str], float],
    config: ScoringConfig = DEFAULT,
    lexicon: Lexicon | None = None,
) -> list[Scored]:
    """Candidate sentences, best first.

    A sentence is scored with its neighbours (``config.window`` on each side): when the
    answer continues in the next sentence ("Am Donnerstag traf er …"), the sentence that
    names the subject gets part of the neighbour's lexical and type signals.

    Args:
        embed: embeds texts as documents (normalised rows).
        idf: inverse document frequency of a stem (high for words the index has never seen).
        lexicon: German translations of English words (default: the system dictionary, :func:`.lexicon.load`,
            for English questions).
    """
    c = config
    if lexicon is None:  # read on the first English question: German ones need no translation
        lexicon = load() if question.language == "en" else EMPTY
    sents = candidates(hits, snapshot, c.min_words, bylines=question.kind == "source")
    if not sents:
        return []
    top_dense = max(h.dense for h in hits)
    doc_best: dict[str, float] = {}
    for h in hits:
        doc_best[h.chunk.source] = max(doc_best.get(h.chunk.source, -1.0), h.dense)
    asked = _content_words(question)

    how_long = bool(HOW_LONG.match(question.text))
    owned: dict[tuple[str, int, int], tuple[float, float]] = {}  # a sentence is also its neighbours' neighbour

    def own(s: Sentence) -> tuple[float, float]:
        key = (s.source, s.start, s.end)
        if key not in owned:
            lex = lexical_overlap(question, s.text, idf, lexicon, c.w_translated)
            date = snapshot.documents[s.source].date
            owned[key] = lex, kind_match(question.kind, s.text, date, asked, c, how_long)
        return owned[key]

    def features(s: Sentence) -> tuple[Sentence, float, float, float]:
        doc = snapshot.documents[s.source]
        # Words of the neighbouring sentences count a little: "..., sagte Putin." after a quote.
        around = doc.text[max(0, s.start - c.around_chars) : s.end + c.around_chars]
        lex, kind = own(s)
        lex = (1 - c.around_lexical) * lex + c.around_lexical * lexical_overlap(
            question, around, idf, lexicon, c.w_translated
        )
        for n in neighbours(s, snapshot, c.window):
            n_lex, n_kind = own(n)
            lex = max(lex, (1 - c.window_weight) * lex + c.window_weight * n_lex)
            kind = max(kind, c.window_weight * n_kind)
        # A passage counts by its own match and by its article's best one.
        passage = 0.5 * (hits[s.hit].dense - top_dense) + 0.5 * (doc_best[s.source] - top_dense)
        return s, lex, kind, passage

    kind_weight = c.w_kind_strong if question.kind in STRONG_KINDS else c.w_kind

    def score(rows: list[tuple[Sentence, float, float, float]]) -> list[Scored]:
        if not rows:
            return []
        dense = embed([s.text for s, *_ in rows]) @ query_vector.ravel()
        dense = dense + c.cross_lingual_bonus * np.array(
            [detect_language(s.text) != question.language for s, *_ in rows], dtype=np.float32
        )
        foreign = [detect_language(s.text) != document_language(snapshot.documents[s.source].text) for s, *_ in rows]
        return [
            Scored(
                s,
                c.w_dense * float(d) + c.w_lexical * lex + kind_weight * kind
                + c.w_passage * passage - c.foreign_fragment_penalty * f,
                float(d), lex, kind, passage, float(f),
            )
            for (s, lex, kind, passage), d, f in zip(rows, dense, foreign)
        ]  # fmt: skip

    pre = [features(s) for s in sents]
    # Shortlist cheaply before embedding: passage relevance plus the lexical and type signals.
    pre.sort(key=lambda t: -(c.w_passage * t[3] + 0.3 * t[1] + 0.1 * t[2]))
    about_article = question.kind == "source" and THIS_ARTICLE.search(question.text) is not None
    credits = [t for t in pre if about_article and credits_article(t[0].text)]
    scored = score(pre[: c.shortlist] + [t for t in credits if t not in pre[: c.shortlist]])
    if credits:
        scored = _credit_articles(scored, c, kind_weight)
    scored.sort(key=lambda x: -x.score)
    # The answer may continue in the next sentence (a quote after its speaker is named): score those too.
    have = {(x.sentence.source, x.sentence.start) for x in scored}
    extra = [n for n in neighbours(scored[0].sentence, snapshot) if (n.source, n.start) not in have]
    scored.extend(score([features(n) for n in extra]))
    scored.sort(key=lambda x: -x.score)
    return scored


def _credit_articles(scored: list[Scored], c: ScoringConfig, kind_weight: float) -> list[Scored]:
    """A byline credits the whole article ("Jana Kroll (Laut ERR, Baltic Courier)"): for "which sources…"
    it is as relevant as the article's best sentence, whose dense, lexical and passage signals it takes."""
    best: dict[str, Scored] = {}
    for x in scored:
        other = best.get(x.sentence.source)
        if not credits_article(x.sentence.text) and (other is None or x.score > other.score):
            best[x.sentence.source] = x
    out = []
    for x in scored:
        b = best.get(x.sentence.source)
        if b is not None and credits_article(x.sentence.text):
            total = c.w_dense * b.dense + c.w_lexical * b.lexical + kind_weight * x.kind + c.w_passage * b.passage
            x = Scored(x.sentence, total, b.dense, b.lexical, x.kind, b.passage)  # outlets are often foreign names
        out.append(x)
    return out


def contributions(s: Scored, question: Question, config: ScoringConfig = DEFAULT) -> dict[str, float]:
    """Each signal's weighted part of ``s.score`` (they add up to it), for ``--explain``."""
    c = config
    kind_weight = c.w_kind_strong if question.kind in STRONG_KINDS else c.w_kind
    others = c.w_lexical * s.lexical + kind_weight * s.kind + c.w_passage * s.passage
    dense_part = s.score - others + c.foreign_fragment_penalty * s.foreign
    return {
        "dense": dense_part,
        "lexical": c.w_lexical * s.lexical,
        "kind": kind_weight * s.kind,
        "passage": c.w_passage * s.passage,
        "foreign": -c.foreign_fragment_penalty * s.foreign,
    }


def idf_lookup(view: StoreView) -> Callable[[str], float]:
    """IDF of a stem in the index; unseen stems get the IDF of a word seen once."""
    ceiling = view.max_idf

    def idf(term: str) -> float:
        value = view.idf(term)
        return value if value is not None else ceiling

    return idf

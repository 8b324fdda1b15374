"""Grounding gates: may the best sentence be stated as the answer, or must the bot say "not found"?

A similarity threshold cannot tell a near miss ("When did Belousov meet Xi?" when
the articles hold Belousov's meeting with Dong Jun and Xi's with Shoigu): those
questions score as high as real ones. So the gates check what the answer would
*claim*, in order, and the first that fails decides:

1. ``evidence``: some sentence is related at all (cosine floor);
2. ``unknown-names``: the question's names are in the index;
3. ``anchor``: enough of the question's words are in the answering article (off-topic questions
   share at most a word or two with it);
4. ``names-in-article``: every name of the question is in the answering article;
5. ``names-near``: ... and stands near the quoted sentence (within ``name_reach`` sentences);
6. ``kind``: the answer carries what the question type needs, attached to the asked event:
   a date near the question's words (a start for "since when"); a number that is not part of a
   date, counting the asked noun; a name that the question does not already give (who, where);
   for "what did X say", X as the speaker.

Each gate is a pure function of the question, the candidate sentence and its article.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from embeddings import Document
from embeddings.language.bylines import credits_article
from embeddings.language.entities import ROLES, capitalised_words, document_names, plain_genitives
from embeddings.language.memo import text_memo
from embeddings.language.wordlists import alternation, word_list, word_set, word_values
from rag.answering.questions import HOW_LONG, Question
from rag.answering.temporal import resolve
from rag.answering.text import (
    QUOTE_MARK,
    STOPWORDS,
    WordLookup,
    calendar_name,
    fold,
    key,
    same_name,
    same_word,
    stem,
    transliterate,
    words,
)
from rag.answering.text import plain as _plain
from rag.config import ScoringConfig

# Words that ask for something rather than name it: they are not expected in the article.
META_WORDS = word_set("meta_words", "rag")  # rag/data/meta_words.txt
SPEECH_VERB = re.compile(r"\b(" + alternation("speech_verbs", "rag") + r")\b", re.I)  # rag/data/speech_verbs.txt
# Counts written as words (not ordinals: "zweiten", "third" count nothing), and vague counts ("wenige Stunden"):
# embeddings/data/number_words.txt and vague_counts.txt.
_NUMBER_WORD = re.compile(
    r"\b("
    + "|".join(sorted([*word_values("number_words"), *word_list("vague_counts")], key=len, reverse=True))
    + r")\b",
    re.I,
)
_DIGITS = re.compile(r"\d[\d.,]*")
_SINCE_MARK = re.compile(r"\b(" + alternation("since_words", "rag") + r")\b", re.I)  # rag/data/since_words.txt
_UNITS = {"sekunde": "second", "minute": "minute", "stunde": "hour", "tage": "day", "tag": "day", "woche": "week",
          "monat": "month", "jahrzehnt": "decade", "jahr": "year"}  # fmt: skip


# Endings of German abstract and collective nouns that no surname has (unlike -ler, -ner: Müller, Wagner).
ABSTRACT_ENDINGS = ("ung", "ungen", "heit", "keit", "schaft", "tion", "tionen", "tät", "nis", "ismus", "ium", "chen")
# Question types whose answer is one item (a date, a number, a person) that must belong to the asked event.
ATTACHED_KINDS = ("when", "quantity", "who")
_QUOTE = QUOTE_MARK


@dataclass(frozen=True)
class Verdict:
    """The outcome of one gate: ``detail`` says what it found or missed, in words a reader can check."""

    gate: str
    passed: bool
    detail: str = ""


class NameLookup(Protocol):
    """What the gates ask of the index's names: :class:`NameIndex` (one part) or :class:`NameIndexes` (all)."""

    def demonym(self, word: str) -> bool:
        """Whether ``word`` is the adjective of a known place ("russische")."""
        ...

    def match(self, word: str) -> str | None:
        """The known name ``word`` is a spelling of, or ``None``."""
        ...


class NameIndex:
    """The names of all documents of an index, for "is this question word a name?" at question time.

    >>> index = NameIndex([("Tallinn", "Selenskyj")])
    >>> index.match("zelensky's"), index.match("Reval"), index.match("visit")
    ('Selenskyj', None, None)
    """

    def __init__(self, names: Iterable[Iterable[str]]) -> None:
        self.lookup = WordLookup(name for group in names for name in group)

    @classmethod
    def of(cls, documents: Iterable[Document]) -> NameIndex:
        return cls(document_names(d) for d in documents)

    def demonym(self, word: str) -> bool:
        """Whether ``word`` is an adjective of origin of an index name ("Russian" of Russland, "chinesischen"
        of China), not a name of its own ("Adrian", "Christian")."""
        f = _plain(word)
        if not _DEMONYM.search(f) or len(f) < 5:
            return False
        head = f[:4]
        return any(not _DEMONYM.search(n) and n.startswith(head) for n in self.lookup.like(f))

    def match(self, word: str) -> str | None:
        """The index name that ``word`` is a spelling of (``Shoigu`` -> ``Schoigu``), else ``None``."""
        f = _plain(word)
        if len(f) < 2 or f in STOPWORDS:
            return None
        return self.lookup.find(f, same_name)


class NameIndexes:
    """The name indexes of several index parts as one: the first part that knows a spelling answers."""

    def __init__(self, parts: Sequence[NameIndex]) -> None:
        self.parts = tuple(parts)

    def demonym(self, word: str) -> bool:
        return any(p.demonym(word) for p in self.parts)

    def match(self, word: str) -> str | None:
        return next((m for p in self.parts if (m := p.match(word)) is not None), None)


_DEMONYM = re.compile(r"(ian|ese|ean|ish|can|isch|ische|ischen|ischer|isches)$")


def question_names(question: Question, names: NameLookup) -> tuple[str, ...]:
    """The question's words that are names the index knows, as written, in order.

    A question with capitals beyond its first word is trusted to capitalise its names; one typed
    in lower case ("when did shoigu visit beijing") is read word by word against the index's names.
    Adjectives of origin ("Russian", "chinesische") are not names.
    """
    tokens = [p for w in words(question.text) for p in w.split("-") if p]
    capitalised = any(t[:1].isupper() for t in tokens[1:])
    out: list[str] = []
    for t in tokens:
        if capitalised and not t[:1].isupper():
            continue
        if names.match(t) is not None and not names.demonym(t) and t not in out:
            out.append(t)
    return tuple(out)


def group_names(asked: Sequence[str], text: str) -> tuple[tuple[str, ...], ...]:
    """Names that stand side by side in ``text`` are one name ("Dong Jun"); the others stand alone.

    >>> group_names(["Aino", "Saari", "Lind"], "Aino Saari traf Lind.")
    (('Aino', 'Saari'), ('Lind',))
    """
    groups: list[list[str]] = []
    joined = ""  # the text's words joined, only once there are two names to look for side by side
    for name in asked:
        if groups and not joined:
            joined = _joined(text)
        if groups and f" {_plain(groups[-1][-1])} {_plain(name)} " in joined:
            groups[-1].append(name)
        else:
            groups.append([name])
    return tuple(tuple(g) for g in groups)


@text_memo(max_bytes=32 * 2**20)
def _joined(text: str) -> str:
    """The text's words, folded, between single spaces (padded), to find word sequences by substring."""
    ws = words(text)
    plain = {w: _plain(w) for w in dict.fromkeys(ws)}  # each spelling folded once
    return " " + " ".join(plain[w] for w in ws) + " "


_ARTICLE_OR_PREPOSITION = frozenset(
    "der die das den dem des ein eine einen einem einer eines zum zur im am vom beim ins mit von zu aus bei nach "  # noqa: SIM905
    "über für gegen ohne um durch laut seit unter vor welche welcher welches welchen welchem wie viele".split()
)


def _bare(word: str, question: str) -> bool:
    """Whether a capitalised word of a German question stands as names do, with no article, preposition,
    adjective or genitive before it ("Wann traf Lind Scholz?"), unlike nouns ("die Frage", "Putins Aussage").

    >>> _bare("Scholz", "Wann traf Lind Scholz?"), _bare("Aussage", "laut Putins Aussage"), _bare("Datum", "mit Datum")
    (True, False, False)
    """
    if re.search(rf"-{re.escape(word)}\b|\b{re.escape(word)}-", question):
        return False  # a part of a compound: "Neue-Seidenstraße-Projekt"
    tokens = words(question)
    if word not in tokens:
        return False
    i = tokens.index(word)
    prev = tokens[i - 1] if i else ""
    low = prev.casefold()
    adjective = prev[:1].islower() and low.endswith(("en", "er", "es", "em", "e"))
    genitive = prev[:1].isupper() and low.endswith("s")
    return bool(prev) and low not in _ARTICLE_OR_PREPOSITION and not adjective and not genitive


def topic_names(doc: Document, spans: Sequence[tuple[int, int]], frequent: int = 3) -> str:
    """The text that says what an article is about: its title, its first sentence and its names
    mentioned ``frequent`` times or more (the people the whole article is about)."""
    lead = doc.text[spans[0][0] : spans[0][1]] if spans else doc.text[:300]
    counts = _name_counts(doc.text, document_names(doc))
    often = " ".join(n for n, count in counts.items() if count >= frequent)
    return f"{doc.title}\n{lead}\n{often}"


@text_memo(max_bytes=4 * 2**20)
def _name_counts(text: str, names: tuple[str, ...]) -> dict[str, int]:
    """How often each name stands in ``text``, in any spelling.

    Each distinct word is compared only with the names that share its first two transliterated
    letters (two spellings of a name always do, see :func:`same_name`): a long article with
    many names costs words + names, not words x names.

    >>> _name_counts("Schoigu traf Xi. Shoigu's Reise; Schoigus Worte.", ("Schoigu", "Xi", "Putin"))
    {'Schoigu': 3, 'Xi': 1, 'Putin': 0}
    """
    counts = Counter(_plain(w) for w in words(text))
    lookup = WordLookup(counts)
    out = {}
    for n in names:
        pool = lookup.like(n) if len(key(_plain(n))) == 2 else counts  # a one-letter name: every word
        out[n] = sum(counts[w] for w in pool if same_name(n, w))
    return out


def content_words(question: Question) -> list[str]:
    """The question's words that carry its meaning: no stop words, no words that only ask ("tell", "Artikel")."""
    out = []
    for w in words(question.text):
        low = re.sub(r"['’]s$", "", w.casefold())
        if low in STOPWORDS or low in META_WORDS or len(low) < 2:
            continue
        out.append(w)
    return list(dict.fromkeys(out))


Vocab = WordLookup  # a text's folded words, once each


def _found(word: str, vocab: Vocab) -> bool:
    return vocab.find(word, same_word) is not None


@text_memo(max_bytes=128 * 2**20)
def _folded_words(text: str) -> Vocab:
    return Vocab(dict.fromkeys(fold(w) for w in dict.fromkeys(words(text))))  # each spelling folded once


def anchor_share(question: Question, article: str, idf: Callable[[str], float]) -> tuple[float, list[str]]:
    """IDF-weighted share of the question's content words found in ``article``, and the words found."""
    asked = content_words(question)
    if not asked:
        return 0.0, []
    in_text = _folded_words(article)
    total = found_weight = 0.0
    found = []
    for w in asked:
        weight = idf(stem(w.casefold()))
        total += weight
        if _found(w, in_text):
            found_weight += weight
            found.append(w)
    return (found_weight / total if total else 0.0), found


def name_share(names: Sequence[str], text: str) -> float:
    """Share of ``names`` that stand in ``text`` in some spelling (0 when there are none to look for).

    >>> name_share(["Brem", "Altdorf"], "Jonas Brems Tor für Altdorfs Elf."), name_share([], "x")
    (1.0, 0.0)
    """
    if not names:
        return 0.0
    vocab = _folded_words(text)
    return sum(_found(n, vocab) for n in names) / len(names)


def window(doc_text: str, spans: Sequence[tuple[int, int]], start: int, end: int, reach: int) -> str:
    """The text of the sentence ``start..end`` with ``reach`` sentences on each side."""
    # Spans are sorted and do not overlap: the only one that can hold ``start`` is the last that begins at it or before.
    i = bisect.bisect_right(spans, (start, end)) - 1
    if i < 0 or not (spans[i][0] <= start < spans[i][1] or spans[i] == (start, end)):
        return doc_text[max(0, start - 600) : end + 600]
    lo, hi = max(0, i - reach), min(len(spans) - 1, i + reach)
    return doc_text[spans[lo][0] : spans[hi][1]]


def numbers(text: str, article_date: dt.date | None = None) -> list[tuple[int, int, str]]:
    """Numbers of ``text`` that are not part of a date or a year: ``(start, end, number)``.

    >>> [n for *_, n in numbers("Am 14. Oktober 2024 kamen 12 Schiffe und zwei Boote.")]
    ['12', 'zwei']
    """
    taken = [(r.start, r.end) for r in resolve(text, article_date)]
    out = []
    for m in list(_DIGITS.finditer(text)) + list(_NUMBER_WORD.finditer(text)):
        if any(a <= m.start() < b for a, b in taken):
            continue
        out.append((m.start(), m.end(), m.group().rstrip(".,")))
    return sorted(out)


# Where-answers: a place noun, or a name after a place preposition or a verb of travel.
LOCATION_WORD = re.compile(r"\b(" + alternation("place_words", "rag") + r")\b", re.I)  # rag/data/place_words.txt
_PLACE_NAME = re.compile(  # rag/data/place_verbs.txt
    r"\b(?:" + alternation("place_verbs", "rag") + r")\s+(?:(?:der|die|das|dem|den|the)\s+)?([A-ZÄÖÜ][\w]+)"
)


def _beside(name: str, asked: Sequence[str], text: str) -> bool:
    """Whether ``name`` stands right next to one of the ``asked`` names in ``text``: one person's other name
    ("Xi Jinping" when the question says "Xi")."""
    folded = [_plain(w) for w in words(text)]
    plain = _plain(name)
    for i, w in enumerate(folded):
        if w == plain and any(
            0 <= j < len(folded) and any(same_name(a, folded[j]) for a in asked) for j in (i - 1, i + 1)
        ):
            return True
    return False


_PRONOUN = frozenset("er sie he she".split())  # noqa: SIM905
_SKIP_AFTER_VERB = frozenset("der die das the dem den laut".split()) | ROLES  # noqa: SIM905


def _subject_like(word: str) -> bool:
    """A capitalised word that can be a speaker: not a stop word, a weekday or a month ("Am Mittwoch sagte Xi")."""
    low = word.casefold()
    return word[:1].isupper() and low not in STOPWORDS and low not in _PRONOUN and calendar_name(word) is None


def _speaker(text: str, verb: re.Match[str]) -> list[str]:
    """Who says it, as candidate words: the name right after the verb ("…, sagte Xi", "said spokesman
    Kirby"), else the words right before it ("Xi sagte"); a pronoun before it ("Er sagte") stands for
    a name in the text before, returned as the whole preceding text's capitalised words.

    >>> import re
    >>> t = "Bei einem Treffen mit Tokajew sagte Xi, China helfe."
    >>> _speaker(t, re.search("sagte", t))
    ['Xi']
    >>> t = "Xi betonte, dass China und Russland Freunde seien."
    >>> _speaker(t, re.search("betonte", t))[-1]
    'Xi'
    """
    before = words(text[: verb.start()])
    # "Xi sagte Tokajew …": a name opening the clause right before the verb is the subject (not one at the
    # end of a fronted phrase: "Bei einem Treffen mit Tokajew sagte Xi").
    clause = words(re.split(r"[.;:!?„“\"»«,]", text[: verb.start()])[-1])
    if clause and len(clause) <= 3 and re.search(r"\w\s+$", text[: verb.start()]) and _subject_like(clause[-1]):
        return [clause[-1]]
    if not re.match(r"\s*(,|:|dass\b|that\b)", text[verb.end() :]):
        phrase = re.split(r"[,.;:!?„“\"»«()]", text[verb.end() : verb.end() + 120], maxsplit=1)[0]
        after = [w for w in words(phrase)[:5] if w.casefold() not in _SKIP_AFTER_VERB]
        if after and after[0][:1].isupper() and after[0].casefold() not in STOPWORDS:
            return [w for w in after[:3] if w[:1].isupper()]
    if before and before[-1].casefold() in _PRONOUN:
        return [w for w in before[:-1] if w[:1].isupper()]
    return [w for w in before[-3:] if w[:1].isupper()]


_ROLE_IN_QUESTION = re.compile(
    r"\b(ambassador|minister|spokes\w+|secretary|president|official|expert|botschafter\w*|minister\w*|sprecher\w*"
    r"|präsident\w*|experte\w*|\w+ministerium|ministry)\b",
    re.I,
)
_TOPIC = re.compile(
    r"\b(?:zur|zum|zu|über|about|regarding|concerning|on)\s+(?:der|die|das|den|dem|the|a|an)?\s*([\w\-]+)", re.I
)


def statement_topic(question: str) -> list[str]:
    """What a "what did X say about Y" question is about: the parts of Y worth finding ("Taiwan-Frage" -> Taiwan).

    >>> statement_topic("Was hat Li bei seinem Besuch zur Taiwan-Frage gesagt?"), statement_topic("What did Xi say?")
    (['Taiwan'], [])
    """
    m = _TOPIC.search(question)
    if not m:
        return []
    parts = [p for p in m.group(1).split("-") if len(p) >= 4 and p.casefold() not in STOPWORDS]
    return parts[:1] if len(parts) > 1 else parts  # a compound's first part names it: "Taiwan-Frage"


def _compound_in(part: str, text: str) -> bool:
    """Whether ``part`` begins a word of ``text`` ("Taiwan" in "Taiwanstraße")."""
    plain = _plain(part)
    return len(plain) >= 4 and any(w.startswith(plain) for w in _folded_words(text))


def counted_after(text: str, end: int, reach: int) -> list[str]:
    """The words right after a number (what it counts): "mehr als 20 Dörfern im Süden" -> ["Dörfern", ...]."""
    return words(text[end:])[:reach]


class Gates:
    """The gates for one index (its names and IDF) and one configuration.

    Args:
        names: the index's names.
        idf: IDF of a stem in the index.
        known: whether the index has ever seen a word (any spelling variant).
        embed: embeds short texts as queries (normalised rows), to compare a counted noun across
            languages ("villages" / "Dörfern"); ``None`` compares spellings only.
    """

    def __init__(
        self,
        names: NameLookup,
        idf: Callable[[str], float],
        known: Callable[[str], bool],
        config: ScoringConfig,
        embed: Callable[[list[str]], np.ndarray] | None = None,
    ) -> None:
        self.names, self.idf, self.known, self.config, self.embed = names, idf, known, config, embed

    def check(
        self,
        question: Question,
        dense: float,
        doc: Document,
        spans: Sequence[tuple[int, int]],
        start: int,
        end: int,
        context: tuple[int, int] | None = None,
    ) -> list[Verdict]:
        """Run the gates in order on the sentence ``doc.text[start:end]``; stop at the first that fails.

        ``context``: the sentence this one continues ("Am Mittwoch besuchte er …" after the sentence that
        names him); the asked event's participant may stand there.
        """
        c = self.config
        verdicts: list[Verdict] = []

        def add(gate: str, passed: bool, detail: str) -> bool:
            verdicts.append(Verdict(gate, passed, detail))
            return passed

        if not add("evidence", dense >= c.min_dense, f"best cosine {dense:.3f}, floor {c.min_dense}"):
            return verdicts
        capitalised = [n for n in question.names if self.names.match(n) is None]
        if question.language == "de":  # German capitalises nouns: only a word shaped like a name may be one
            capitalised = [n for n in capitalised if n.isupper() or not n.casefold().endswith(ABSTRACT_ENDINGS)]
        unknown = [n for n in capitalised if not self.known(n)]
        share = len(unknown) / len(question.names) if question.names else 0.0
        paired = any(a in unknown and b in unknown for a, b in zip(question.names, question.names[1:]))
        if not add(
            "unknown-names",
            share <= c.max_unknown_names and not paired,
            f"not in the index: {', '.join(unknown) or 'none'}",
        ):
            return verdicts
        asked = question_names(question, self.names)
        # A name the name finder missed (its index lists only the names it found) is still a name of the
        # question: it is checked like the others, so a gate never passes because it found nothing to check.
        # (A German question capitalises its nouns too: its words are taken so only when no index name matched.)
        unlisted = [n for n in capitalised if n not in unknown and n not in asked and self._name_like(n, question)]
        if question.language != "en" and asked:
            unlisted = []
        if unlisted:
            asked = tuple(sorted({*asked, *unlisted}, key=question.text.find))
        groups = group_names(asked, doc.text)
        anchor, found = anchor_share(question, doc.text, self.idf)
        # A name of the question found in the article anchors it (across languages often the only shared
        # word); without one, the article must share at least ``min_anchor`` of the question's words.
        named = [" ".join(g) for g in groups if self._group_in(g, doc, doc.text)]
        english = question.language == "en"  # English capitalises only names: one in the article anchors too
        named += [
            n for n in question.names if english and fold(n) not in STOPWORDS and _found(n, _folded_words(doc.text))
        ]
        # An adjective of a name the article holds ("ukrainischen", "Russian") anchors as the name does.
        stems = {transliterate(fold(n))[:4] for n in document_names(doc)}
        named += [w for w in words(question.text) if _DEMONYM.search(fold(w)) and transliterate(fold(w))[:4] in stems]
        in_groups = {n for g in groups for n in g}
        named = [
            n for n in dict.fromkeys(named) if " " in n or n not in in_groups or n in (" ".join(g) for g in groups)
        ]
        detail = f"{anchor:.2f} of the question's words in {doc.source} ({', '.join(found) or 'none'})"
        detail += f"; names found: {', '.join(named)}" if named else f", floor {c.min_anchor}"
        if not add("anchor", bool(named) or anchor >= c.min_anchor, detail):
            return verdicts
        # A name the index never saw is in no article: with another name that is, the question is still a
        # near miss ("When did Lind meet Scholz?" when only Lind is indexed).
        missing = [" ".join(g) for g in groups if not self._group_in(g, doc, doc.text)]
        missing += [n for n in unknown if question.language == "en" or _bare(n, question.text)]
        found_all = f"all {len(groups)} in {doc.source}"
        if not add(
            "names-in-article", not missing, f"{', '.join(missing)} missing from {doc.source}" if missing else found_all
        ):
            return verdicts
        # The article's own subject (in its title or first sentence) need not be repeated near the answer.
        topic = topic_names(doc, spans)
        around = window(doc.text, spans, start, end, c.name_reach) + "\n" + topic
        if question.kind == "source" and credits_article(doc.text[start:end]):
            around = doc.text  # a byline credits the whole article: every name in it is near
        far = [" ".join(g) for g in groups if not self._group_in(g, doc, around)]
        if not add("names-near", not far, f"{', '.join(far) or 'none'} not within {c.name_reach} sentences"):
            return verdicts
        sentence = doc.text[start:end]
        if question.kind in ATTACHED_KINDS and groups:
            # The date, number or person must belong to the asked event: the sentence that holds it
            # names the event's participant (one of the question's names that is not the article's subject).
            own = [g for g in groups if not self._group_in(g, doc, topic)]
            near = sentence if context is None else doc.text[context[0] : context[1]] + " " + sentence
            if _QUOTE.search(sentence):  # a quote's speaker is named next to it
                near = window(doc.text, spans, start, end, 1)
            held = [" ".join(g) for g in own if self._group_in(g, doc, near)]
            shown = ", ".join(" ".join(g) for g in own)
            if not own:
                detail = "the question names only the article's subject"
            else:
                detail = f"found {', '.join(held)}" if held else f"none of {shown}"
            if not add("attached", not own or bool(held), detail):
                return verdicts
        flat = [n for g in groups for n in g]
        passed, detail = self._kind(question, sentence, window(doc.text, spans, start, end, 1), doc, flat)
        add(f"kind:{question.kind}", passed, detail)
        return verdicts

    def _name_like(self, word: str, question: Question) -> bool:
        """Whether a capitalised word of the question that no index name matches stands as a name does: in
        English any (English capitalises only names), in German one standing bare (see :func:`_bare`); never a
        stop word, a weekday or month, or an adjective of origin."""
        if fold(word) in STOPWORDS or len(word) < 2 or calendar_name(word) is not None or self.names.demonym(word):
            return False
        if _DEMONYM.search(fold(word)):
            return False
        return question.language == "en" or _bare(word, question.text)

    def _group_in(self, group: Sequence[str], doc: Document, text: str) -> bool:
        return any(self._name_in(n, doc, text) for n in group)

    def _name_in(self, name: str, doc: Document, text: str) -> bool:
        """Whether ``name`` stands in ``text`` (part of ``doc``): in any spelling, as the first part of a
        compound ("Chinareise"), or as the same name in the other language (a capitalised word whose
        embedding is within ``name_alias``: Beijing/Peking, Russia/Russland)."""
        in_text = _folded_words(text)
        plain = _plain(name)
        base = plain[:-1] if plain.endswith("s") and len(plain) > 4 else plain  # "Chinas" -> "china"
        stem_ = transliterate(base)[:4]
        for w in in_text.like(base):
            if same_name(plain, w) or (len(base) >= 4 and w.startswith(base) and len(w) - len(base) >= 3):
                return True  # a spelling, or a compound with a word after it: "Chinareise" (not "Bayern" for Bayer)
            if len(stem_) == 4 and _DEMONYM.search(w) and transliterate(w).startswith(stem_):
                return True  # the adjective: "russisch" for Russia, "chinesischen" for China
        if self.embed is None:
            return False
        if len(text) <= 5_000:
            present = capitalised_words(text)
        else:
            present = [n for n in document_names(doc) if fold(n) in in_text]
        present += plain_genitives(present)  # "Russlands" -> "Russland": closer to the other language's name
        if not present:
            return False
        # Typed in lower case, a name embeds as a word ("beijing"): as a name it is capitalised.
        return self._closest(name[:1].upper() + name[1:], present) >= self.config.name_alias

    def _kind(self, q: Question, sentence: str, near: str, doc: Document, asked: Sequence[str]) -> tuple[bool, str]:
        """Whether the sentence (or, where stated, its neighbours) holds what the question type asks for."""
        if q.kind == "when":
            refs = [r for r in resolve(sentence, doc.date) if r.precision in ("day", "month", "year")]
            if not refs:
                return False, "no date in the sentence"
            if q.since and not _SINCE_MARK.search(sentence):
                return False, "a date, but nothing says it is the start (seit, since, appointed)"
            return True, f"date: {sentence[refs[0].start : refs[0].end]}"
        if q.kind == "quantity":
            found = numbers(sentence, doc.date)
            if not found:
                # "how long" may be answered by a time ("bis nächstes Jahr"), not a count.
                if HOW_LONG.match(q.text) and resolve(sentence, doc.date):
                    return True, "a time for how long"
                return False, "no number in the sentence (dates do not count)"
            if not q.counted:
                return True, f"number: {found[0][2]}"
            for _, e, value in found:
                after = counted_after(sentence, e, self.config.number_noun_reach)
                if self._same_noun(q.counted, after):
                    return True, f"{value} {' '.join(after[:2])} counts {q.counted}"
            return False, f"numbers ({', '.join(v for *_, v in found)}) count something else than {q.counted}"
        if q.kind in ("who", "where", "source"):
            if q.kind == "where" and (place := LOCATION_WORD.search(sentence)):
                return True, f"a place: {place.group()}"
            text = sentence if q.kind == "who" else near
            if q.kind == "where":  # a capitalised word after a place preposition or a verb of travel
                found_ = [m.group(1) for m in _PLACE_NAME.finditer(text)]
            else:
                found_ = [n for n in document_names(doc) if _found(n, _folded_words(text))]
            new = [n for n in dict.fromkeys(found_) if not self._asked(n, q) and not _beside(n, asked, text)]
            if not new:
                return False, f"no name in the sentence that the question does not already give ({q.kind})"
            return True, f"names: {', '.join(new[:3])}"
        if q.kind == "statement" and asked:
            topic = statement_topic(q.text)
            if topic and not any(_found(part, _folded_words(near)) or _compound_in(part, near) for part in topic):
                return False, f"nothing near the sentence is about {' '.join(topic)}"
            topic_words = {_plain(t) for t in topic}
            speaker = next((n for n in asked if _plain(n) not in topic_words), None)
            if speaker is None:  # "What did the Finnish side say about Lind?": the speaker is not named
                return True, "the speaker is not named"
            head = q.text[: q.text.find(speaker)] if speaker in q.text else ""
            role = _ROLE_IN_QUESTION.search(head)
            if role:  # "What did the Russian ambassador say …": a role speaks, not a name
                return True, f"the speaker is a role ({role.group()})"
            for m in SPEECH_VERB.finditer(near):
                said_by = _speaker(near, m)
                if said_by and any(same_name(speaker, w) for w in said_by):
                    return True, f"{speaker} speaks: {m.group()}"
            if _QUOTE.search(sentence) and re.match(rf"\W*{re.escape(speaker)}", sentence, re.I):
                return True, f"{speaker} quoted"
            return False, f"nothing in the sentence is said by {speaker}"
        return True, "no type to check"

    def _closest(self, text: str, others: Sequence[str]) -> float:
        """The highest cosine (e5, as queries) between ``text`` and any of ``others`` (not empty)."""
        if self.embed is None:
            raise RuntimeError("Gates._closest needs an embedding function (Gates(embed=...))")
        vectors = self.embed([text, *others])
        return float(np.max(vectors[1:] @ vectors[0]))

    def _asked(self, name: str, q: Question) -> bool:
        """Whether the question already gives ``name`` (in any spelling or language)."""
        tokens = [p for w in words(q.text) for p in w.split("-") if p]
        if any(same_name(name, t) for t in tokens):
            return True
        if self.embed is None:
            return False
        candidates = [t for t in tokens if t[:1].isupper() or not t.islower() or fold(t) not in STOPWORDS]
        candidates = [t for t in candidates if fold(t) not in STOPWORDS and len(t) > 2]
        if not candidates:
            return False
        return self._closest(name, candidates) >= self.config.name_alias

    def _same_noun(self, counted: str, after: Sequence[str]) -> bool:
        """Whether one of the words after a number is the counted noun (spelling, unit, or meaning across languages)."""
        head = (words(counted) or [counted])[-1]
        if any(same_word(head, w) for w in after):
            return True
        # A compound names something else than its last part: "Quadratkilometer" are not "Kilometer".
        if any(_compound_of(head, w) for w in after):
            return False
        unit = duration_unit(head)
        if unit:
            return any(duration_unit(w) == unit for w in after)
        if self.embed is None:
            return False
        nouns = [w for w in after if w[:1].isupper() or w.casefold() not in STOPWORDS][:3]
        if not nouns:
            return False
        return self._closest(counted, nouns) >= self.config.min_noun_similarity


def _compound_of(a: str, b: str) -> bool:
    fa, fb = fold(a), fold(b)
    short, long_ = sorted((fa, fb), key=len)
    return len(short) >= 4 and short != long_ and stem(long_).endswith(stem(short))


def duration_unit(word: str) -> str | None:
    """The unit of time a word names, in English, whatever its language: "Stunden" -> "hour".

    >>> duration_unit("Stunden"), duration_unit("months"), duration_unit("Dörfer"), duration_unit("Tageszeitung")
    ('hour', 'month', None, None)
    """
    f = fold(word)
    for german, english in _UNITS.items():
        for unit in (german, english):
            if f.startswith(unit) and len(f) <= len(unit) + 3:  # "Tagen", "hours"; not "Tageszeitung"
                return english
    return None

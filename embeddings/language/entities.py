"""Names of people, places and organisations in a German or English article, found by rules at index time.

German capitalises every noun, so a capital letter alone says nothing. A word
counts as a name when its context says so:

* an acronym (``TASS``, ``CIA``);
* a title or role stands right before it (``Präsident Putin``, ``Sprecher Lin Jian``,
  ``Verteidigungsminister Dong Jun``, ``spokesperson Lin Jian``);
* it is part of a run of capitalised words that no article precedes (``Xi Jinping``,
  ``Sergei Schoigu``), or follows a place preposition without an article (``in Peking``,
  ``nach Usbekistan``);
* over the article, it stands mostly without an article or adjective before it, and
  it does not end like a German common noun (``-ung``, ``-heit``, ``-schaft``, ...).

A genitive (``Schoigus``) is folded into its name when the plain form is a name too.
The result is stored with the document in the index, so answering never recomputes it.

>>> extract_names("Der estnische Minister Marek Lind traf am Freitag in Tallinn Aino Saari. "
...               "Die Agentur ERR meldete, Linds Besuch sei wichtig.")
('Marek', 'Lind', 'Tallinn', 'Aino', 'Saari', 'ERR')
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from embeddings.language.analysis import STOPWORDS, stem, words
from embeddings.language.bylines import attribution
from embeddings.language.dates import MONTHS, WEEKDAYS
from embeddings.language.memo import text_memo
from embeddings.language.wordlists import word_list, word_set
from embeddings.types import Document

_WORD = re.compile(r"[^\W\d_][^\W_]*", re.UNICODE)  # hyphenated compounds split: "Taiwan-Frage"
_SENTENCE_END = re.compile(r"[.!?:;„“”\"»«(\[]\s*$")
_DASH = re.compile(r"\s[–—]\s*$")  # "Mehr zum Thema – Lawrow besucht Teheran": a clause opens after a dash

DETERMINERS = word_set("determiners")  # data/determiners.txt
ROLES = word_set("roles")  # data/roles.txt
# Prepositions after which a word without an article is usually a place: "in Peking", "nach Moskau".
PLACE_PREPOSITIONS = word_set("place_prepositions")  # data/place_prepositions.txt
# Endings of German common nouns (and of adjectives used as nouns); names rarely end so.
NOUN_ENDINGS = word_list("noun_endings")  # data/noun_endings.txt
_COMMON = word_set("not_names")  # data/not_names.txt


_ENGLISH = frozenset("the of and to in on is was that with for said has have by from at as".split())  # noqa: SIM905
_GERMAN = frozenset("der die das und zu im ist war dass mit für sagte hat haben von bei als den dem".split())  # noqa: SIM905


def _tokens(text: str) -> list[tuple[str, bool, bool, bool]]:
    """Words with two flags: does the word start a sentence (or a line, a quote, a parenthesis)?
    Is its line English (where a capital letter inside a sentence does mark a name)? Does it follow a dash?"""
    out = []
    for line in text.splitlines():
        found = _WORD.findall(line)
        low = [w.casefold() for w in found]
        en, de = sum(w in _ENGLISH for w in low), sum(w in _GERMAN for w in low)
        english = en >= 2 and en > 2 * de  # clearly English: a tie ("in" and "und" alike) is not
        cursor = 0
        first = True
        for m in _WORD.finditer(line):
            initial = first or bool(_SENTENCE_END.search(line[cursor : m.start()]))
            after_dash = bool(_DASH.search(line[cursor : m.start()]))
            out.append((m.group(), initial and not after_dash, english, after_dash))
            cursor = m.end()
            first = False
    return out


def _capitalised(word: str) -> bool:
    low = word.casefold()
    return word[:1].isupper() and low not in _COMMON and low not in DETERMINERS


def _role(word: str) -> bool:
    """A title or role word ("Präsident", "Verteidigungsminister"): it announces a name but is none."""
    low = word.casefold()
    return low in ROLES or low.endswith(("minister", "ministerin", "präsident", "präsidentin", "sprecher", "chef"))


def _calendar(word: str) -> bool:
    low = word.casefold()
    return (low in MONTHS and len(low) > 3) or any(low.startswith(day) for day in WEEKDAYS)


def _opens_name(word: str, nxt: tuple[str, bool, bool, bool], lower: set[str]) -> bool:
    """Whether a capitalised word that opens a sentence or line begins a name of two words: the next word is
    capitalised too and neither is a stop word, a role, a weekday or month, shaped like a common noun, a
    genitive, or (for the first) written in lower case elsewhere in the text (an adjective or noun)."""
    follower, follower_initial = nxt[0], nxt[1]
    low = word.casefold()
    if follower_initial or not _capitalised(follower) or _acronym(word) or word.endswith("s"):
        return False
    if low in STOPWORDS or _role(word) or _role(follower) or _calendar(word) or _calendar(follower):
        return False
    if low.endswith(NOUN_ENDINGS) or follower.casefold().endswith(NOUN_ENDINGS):
        return False
    return stem(low) not in lower and follower.casefold() not in STOPWORDS


def _acronym(word: str) -> bool:
    return len(word) >= 2 and word.isupper() and word.isalpha()


def extract_names(text: str, *, max_chars: int = 200_000) -> tuple[str, ...]:
    """The names of ``text`` as written, once each, in order of first appearance (see the module doc)."""
    head = text[:max_chars]
    if len(text) > max_chars:  # a word cut at the limit is no name ("Peki")
        head = head[: max(head.rfind(" "), 0)]
    tokens = _tokens(head)
    votes: Counter[str] = Counter()  # evidence that a word is a name, summed over its occurrences
    bare: Counter[str] = Counter()  # non-initial occurrences without a determiner or adjective before
    seen: Counter[str] = Counter()  # non-initial capitalised occurrences
    order: dict[str, None] = {}
    # Stems of the words the text writes in lower case: a capitalised word with one of them is a common
    # word capitalised by its place ("Russische Truppen ziehen ab" beside "die russischen Soldaten").
    lower = {stem(w) for w, *_ in tokens if w[:1].islower()}
    for i, (word, initial, english, after_dash) in enumerate(tokens):
        if not _capitalised(word):
            continue
        if english and not initial:
            votes[word] += 1
        low = word.casefold()
        prev = tokens[i - 1][0] if i else ""
        low_prev = prev.casefold()
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("", True, False, False)
        if _acronym(word):
            votes[word] += 2
        if _role(prev):
            votes[word] += 2
        third = tokens[i + 2] if i + 2 < len(tokens) else ("", True, False, False)
        if initial and _opens_name(word, nxt, lower) and not (_capitalised(third[0]) and not third[1]):
            # (not the first of three: "Bürgermeisterin Ilze Ozola erklärte": a title before a name)
            votes[word] += 1  # "Eliud Kipchoge gewann …" at the start of a line or sentence: a name of two words
            votes[nxt[0]] += 1
        if not initial:
            seen[word] += 1
            adjective = prev[:1].islower() and low_prev.endswith(("en", "er", "es", "em", "e"))
            determined = low_prev in DETERMINERS or adjective
            if not determined:
                bare[word] += 1
                # "Xi Jinping": two capitalised words with no article before; not a genitive and its noun
                # ("Schoigus Reise"), and not a noun-like second word ("Epoch Times Artikel").
                follower = nxt[0]
                if (
                    _capitalised(follower)
                    and not nxt[1]
                    and not _acronym(word)
                    and not word.endswith("s")
                    and not follower.casefold().endswith(NOUN_ENDINGS)
                    and not _role(follower)
                ):
                    votes[word] += 1
                    votes[follower] += 1
            if after_dash and nxt[0][:1].islower() and not low.endswith(NOUN_ENDINGS):
                votes[word] += 1  # "– Lawrow besucht Teheran": a bare word opening a clause, then its verb
            if low_prev in PLACE_PREPOSITIONS and not determined:
                # "in Peking", "nach Usbekistan"; plural and feminine nouns stand so too ("nach Angaben").
                votes[word] += 0.5 if low.endswith(("en", "e")) else 1  # type: ignore[assignment]  # a Counter holds floats as well
        order.setdefault(word, None)
    names = []
    for word in order:
        low = word.casefold()
        if _role(word) or _calendar(word) or (low.endswith(NOUN_ENDINGS) and not _acronym(word) and votes[word] < 2):
            continue
        mostly_bare = seen[word] >= 2 and bare[word] / seen[word] >= 0.75
        if votes[word] >= 1 or mostly_bare:
            names.append(word)
    plain = set(names)
    # A genitive folds into its name: "Schoigus" when "Schoigu" is a name (and the plain form is not missing).
    return tuple(n for n in names if not (n.endswith("s") and n[:-1] in plain))


NAMES_KEY = "names"  # the document metadata key that holds the names, "|"-separated


def with_names(doc: Document) -> Document:
    """``doc`` with its names, and its byline's author and outlets, stored in its metadata (done once, when
    it is indexed)."""
    found = {NAMES_KEY: "|".join(extract_names(doc.text)), **attribution(doc.text)}
    return replace(doc, metadata={**found, **doc.metadata})


@text_memo(max_bytes=4 * 2**20)
def _names_of_text(text: str) -> tuple[str, ...]:
    return extract_names(text)


def document_names(doc: Document) -> tuple[str, ...]:
    """The names stored with ``doc``; computed (and memoised) for an index written before names were stored."""
    stored = doc.metadata.get(NAMES_KEY)
    if stored is not None:
        return tuple(n for n in stored.split("|") if n)
    return _names_of_text(doc.text)


def capitalised_words(text: str) -> list[str]:
    """The distinct capitalised words of ``text`` (two letters or more), in order: what the answerer's
    name checks compare a question's name with across languages (Peking / Beijing), and what the
    indexer embeds for them ahead of time."""
    return list(dict.fromkeys(w for w in words(text) if w[:1].isupper() and len(w) > 1))


def plain_genitives(names: list[str]) -> list[str]:
    """The plain forms of the names that may be genitives ("Russlands" -> "Russland"): a genitive's plain
    form embeds closer to the other language's name."""
    return [n[:-1] for n in names if n.endswith("s") and len(n) > 4]

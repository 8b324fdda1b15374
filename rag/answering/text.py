"""Word-level text processing for German and English: tokens, stems, folding, language.

>>> terms("Die Verteidigungsminister trafen sich in Peking.")
['verteidigungsminist', 'traf', 'peking']
>>> fold("Schoigu Grüße Straße")
'schoigu grusse strasse'
>>> detect_language("Wann traf Xi Jinping Schoigu?"), detect_language("When did Shoigu visit Beijing?")
('de', 'en')
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence

from embeddings.language.analysis import (  # noqa: F401  (the analysis lives with the index; re-exported here)
    ENGLISH_STOPWORDS,
    GERMAN_STOPWORDS,
    QUOTE_MARK,
    STOPWORDS,
    WORD,
    detect_language,
    fold,
    stem,
    terms,
    words,
)
from embeddings.language.dates import MONTHS, TIMES_OF_DAY, WEEKDAYS


@functools.lru_cache(maxsize=200_000)
def transliterate(word: str) -> str:
    """Collapse spelling variants of transliterated names: Schoigu/Shoigu, Belousow/Belousov, Selenskyj/Zelensky.

    >>> transliterate("Selenskyj") == transliterate("Zelensky"), transliterate("Andrej") == transliterate("Andrey")
    (True, True)
    """
    w = fold(word)
    for a, b in _TRANSLITERATION:
        w = w.replace(a, b)
    return _RUN.sub(r"\1", w)


_fold_uncached = fold.__wrapped__

_TRANSLITERATION = (("tsch", "ch"), ("sch", "sh"), ("j", "y"), ("w", "v"), ("z", "s"), ("ck", "k"), ("c", "k"),
                    ("ph", "f"), ("ou", "u"), ("yy", "y"), ("ie", "i"))  # fmt: skip
_RUN = re.compile(r"(.)\1+")


def transliterate_all(given: Sequence[str]) -> list[str]:
    """``[transliterate(w) for w in given]``, done on all of them at once (an index's vocabulary at start).

    The words are joined by line breaks and rewritten as one string: no rewrite matches a line break
    and ``.`` in the run collapse does not match one, so each word comes out as it would alone.

    >>> names = ["Schoigu", "Selenskyj", "Zelensky"]
    >>> transliterate_all(names) == [transliterate(w) for w in names]
    True
    """
    if not given:
        return []
    if any("\n" in w for w in given):  # not a word: each alone
        return [transliterate(w) for w in given]
    w = _fold_uncached("\n".join(given))  # a long string: not for fold's memo of words
    for a, b in _TRANSLITERATION:
        w = w.replace(a, b)
    out = _RUN.sub(r"\1", w).split("\n")
    if len(out) != len(given):  # folding never adds or removes a line break; checked all the same
        return [transliterate(x) for x in given]
    return out


_TIME_OF_DAY = re.compile("(" + "|".join(fold(t) for t in TIMES_OF_DAY) + ")$")
# Whole names only: "may" is also a verb, abbreviations are also other words ("dez", "jan").
_MONTH_NAMES = {fold(name): n for name, n in MONTHS.items() if len(name) > 3 or name == "mai"}
_DAY_NAMES = {fold(name): n for name, n in WEEKDAYS.items()}


@functools.lru_cache(maxsize=65_536)
def calendar_name(word: str) -> tuple[str, int] | None:
    """``("day", 0..6)`` for a weekday, ``("month", 1..12)`` for a month, in either language.

    >>> calendar_name("Mittwochabend"), calendar_name("Wednesday"), calendar_name("März"), calendar_name("may")
    (('day', 2), ('day', 2), ('month', 3), None)
    """
    w = fold(word)
    if w in _MONTH_NAMES:
        return "month", _MONTH_NAMES[w]
    w = w if w in _DAY_NAMES else _TIME_OF_DAY.sub("", w)
    return ("day", _DAY_NAMES[w]) if w in _DAY_NAMES else None


# One matcher for names and words. Each function below accepts a wider set of relations than the one
# before it, and each is a superset of the previous, so a policy is chosen by name, not re-implemented:
#
# * ``same_name``: spellings of one name: equal after folding and transliteration (Schoigu/Shoigu,
#   Selenskyj/Zelensky), or a genitive (Schoigus, Shoigu's). Names are not fuzzy: Bayer is not Bayern,
#   Austria is not Australia, Gedicht is not Gericht.
# * ``same_word``: forms of one word: a name's spellings, equal German stems (Übung/Übungen), or a shared
#   beginning of five letters in words of six or more (europäischen/European).
# * ``similar_words``: what may be the same thing across German and English, for scoring: also weekday and
#   month names across the languages, words of origin (Russian/russischen), inflections (Reise/Reisen) and
#   spellings close by edit distance. Too loose for a check that a name is there.
#
# Every relation keeps the first two transliterated letters (a genitive, a stem, a shared beginning), so
# :class:`WordLookup` finds a word's matches in its bucket; ``similar_words`` alone also pairs calendar names.


def plain(word: str) -> str:
    """Folded, without an English genitive: ``Shoigu's`` -> ``shoigu``."""
    return _GENITIVE.sub("", fold(word))


_GENITIVE = re.compile(r"['’]s$")


@functools.lru_cache(maxsize=200_000)
def same_name(a: str, b: str) -> bool:
    """Whether two words are spellings of one name: transliteration or a genitive, nothing looser.

    >>> same_name("Shoigu's", "Schoigus"), same_name("Selenskyj", "Zelensky"), same_name("Gedicht", "Gericht")
    (True, True, False)
    >>> same_name("Bayer", "Bayern"), same_name("Austria", "Australia"), same_name("Xi", "Xis")
    (False, False, True)
    """
    fa, fb = plain(a), plain(b)
    if fa == fb:
        return True
    ta, tb = transliterate(fa), transliterate(fb)
    if ta == tb:
        return True
    short, long_ = sorted((ta, tb), key=len)
    return long_ == short + "s"  # the genitive of a name: "Schoigus", "Bayers" (not "Bayern": another name)


@functools.lru_cache(maxsize=200_000)
def same_word(a: str, b: str) -> bool:
    """Whether two words are forms or spellings of one word, strictly: a name's spellings, equal stems, or a
    shared beginning of five letters in longer words ("europäischen"/"European"); no edit distance.

    >>> same_word("European", "europäischen"), same_word("Gedicht", "Gericht"), same_word("Übungen", "Übung")
    (True, False, True)
    """
    fa, fb = plain(a), plain(b)
    if same_name(fa, fb) or stem(fa) == stem(fb):
        return True
    ta, tb = transliterate(fa), transliterate(fb)
    return min(len(ta), len(tb)) >= 6 and ta[:5] == tb[:5]


@functools.lru_cache(maxsize=1_000_000)  # pure, and the same pairs recur across sentences and questions
def similar_words(a: str, b: str) -> bool:
    """Whether two words plausibly name the same thing across German and English (for scoring, see above).

    >>> similar_words("Shoigu", "Schoigus"), similar_words("European", "europäischen"), similar_words("Xi", "Xis")
    (True, True, True)
    >>> similar_words("Wednesday", "Mittwochabend"), similar_words("October", "Oktober"), similar_words("Monday", "Mai")
    (True, True, False)
    """
    fa, fb = fold(a), fold(b)
    if fa == fb or stem(fa) == stem(fb):
        return True
    day_or_month = calendar_name(fa)
    if day_or_month is not None:
        return day_or_month == calendar_name(fb)
    if same_word(fa, fb) or demonym_match(fa, fb):
        return True
    ta, tb = transliterate(fa), transliterate(fb)
    short = min(len(ta), len(tb))
    if short >= 5 and ta[:5] == tb[:5]:
        return True
    if short >= 2 and (tb.startswith(ta) or ta.startswith(tb)) and abs(len(ta) - len(tb)) <= 2:
        return True
    return short >= 5 and _edit_ratio_reaches(ta, tb, 0.75)


def demonym_match(a: str, b: str) -> bool:
    """Whether one word is the other's word of origin across the languages (Russian ~ russischen, Russen,
    Russland), or both are.

    >>> demonym_match("Russian", "Russland"), demonym_match("Ukrainian", "ukrainisch"), demonym_match("Adrian", "Adria")
    (True, True, False)
    """
    ta, tb = transliterate(fold(a)), transliterate(fold(b))
    if _demonym_root(ta) is not None and _demonym_root(ta) in (_demonym_root(tb), _german_root(tb)):
        return True
    return _demonym_root(tb) is not None and _demonym_root(tb) == _german_root(ta)


class WordLookup:
    """Folded words bucketed by their first two transliterated letters: the one lookup behind "which words of a
    text (or an index) may be this word?". Every match of :func:`same_name` and :func:`same_word` shares the
    bucket, so a word is compared with its bucket, not with every word.

    >>> lookup = WordLookup(["Schoigu", "Peking", "Bayern"])
    >>> lookup.like("Shoigu's"), lookup.find("Shoigu", same_name), lookup.find("Bayer", same_name)
    (['schoigu'], 'Schoigu', None)
    """

    def __init__(self, items: Iterable[str]) -> None:
        self.buckets: dict[str, dict[str, str]] = {}  # bucket -> folded word -> the word as given first
        given = list(items)
        folded = [fold(item) for item in given]
        for item, f, t in zip(given, folded, transliterate_all(folded)):
            self.buckets.setdefault(t[:2], {}).setdefault(f, item)  # t[:2] is key(f)
        self.members = frozenset(f for bucket in self.buckets.values() for f in bucket)

    def __contains__(self, folded: str) -> bool:
        return folded in self.members

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[str]:
        return iter(self.members)

    def __sizeof__(self) -> int:  # what a memo of lookups counts (embeddings.language.memo.approx_size)
        return object.__sizeof__(self) + sum(3 * sys.getsizeof(f) + 200 for f in self.members)

    def like(self, word: str) -> list[str]:
        """The folded words that share ``word``'s bucket (candidates for any match)."""
        return list(self.buckets.get(key(plain(word)), ()))

    def find(self, word: str, match: Callable[[str, str], bool] = same_word) -> str | None:
        """The word as given of the first stored word that ``match``es ``word``, else ``None``."""
        f = plain(word)
        bucket = self.buckets.get(key(f), {})
        if f in bucket:
            return bucket[f]
        return next((item for folded, item in bucket.items() if match(f, folded)), None)


def key(folded: str) -> str:
    """The bucket of a folded word in a :class:`WordLookup`."""
    return transliterate(folded)[:2]


@functools.lru_cache(maxsize=1_000_000)
def compound_match(a: str, b: str) -> bool:
    """Whether one German compound ends with the other word's stem: the head of a compound names its kind
    ("Infrastrukturprojekt" is a "Projekt", "Militärführung" and "Armeeführung" are both "Führung").

    >>> compound_match("Projekt", "Infrastrukturprojekt"), compound_match("Armeeführung", "Militärführung")
    (True, True)
    >>> compound_match("Kilometer", "Quadratkilometer"), compound_match("Tag", "Vortag")
    (True, False)
    """
    sa, sb = stem(fold(a)), stem(fold(b))
    if sa == sb:
        return True
    short, long_ = sorted((sa, sb), key=len)
    if len(short) >= 5 and long_.endswith(short):
        return True
    # Two compounds with one head: a shared ending of six letters or more, each with its own first part.
    fa, fb = fold(a), fold(b)
    shared = next((i for i, (x, y) in enumerate(zip(reversed(fa), reversed(fb))) if x != y), min(len(fa), len(fb)))
    return shared >= 6 and min(len(fa), len(fb)) >= shared + 3


# An English word of origin is its root and -ian, the German one the root and -isch, -e, -er or -land:
# Russian ~ russischen, Russen, Russland; Ukrainian ~ ukrainische, Ukrainer (transliterated spellings).
_ENGLISH_DEMONYM = re.compile(r"^(\w{3,}?)(?:ian|ians|ean|eans)$")
_GERMAN_DEMONYM = re.compile(r"^(\w{3,}?)(?:ish|ishe|ishen|isher|ishes|ishem|e|en|er|ern|erin|land|lands)$")


def _demonym_root(transliterated: str) -> str | None:
    m = _ENGLISH_DEMONYM.match(transliterated)
    return m.group(1) if m else None


def _german_root(transliterated: str) -> str | None:
    m = _GERMAN_DEMONYM.match(transliterated)
    return m.group(1) if m else None


# English words of offices and roles, and the German word parts that name them inside compounds
# ("defence secretary" ~ "Verteidigungsminister", "spokesman" ~ "Sprecher"): general language, not
# names. The parts are accent-folded; an English word already shared by German ("minister") is left out.
ROLE_PARTS: dict[str, tuple[str, ...]] = {
    "defence": ("verteidigung",), "defense": ("verteidigung",), "secretary": ("minister", "sekretar"),
    "foreign": ("aussen",), "interior": ("innen",), "finance": ("finanz",), "treasury": ("finanz",),
    "economy": ("wirtschaft",), "justice": ("justiz",), "health": ("gesundheit",), "spokesman": ("sprecher",),
    "spokeswoman": ("sprecher",), "spokesperson": ("sprecher",), "ambassador": ("botschafter",),
    "chancellor": ("kanzler",), "commander": ("befehlshaber", "kommandeur", "kommandant"),
    "deputy": ("stellvertret", "vize"), "chief": ("chef", "leiter", "oberbefehl"), "head": ("chef", "leiter"),
    "envoy": ("gesandt", "beauftragt"), "ministry": ("ministerium",), "department": ("ministerium", "behorde"),
    "mayor": ("burgermeister",), "governor": ("gouverneur",), "king": ("konig",), "queen": ("konigin",),
    "pope": ("papst",), "army": ("armee", "heer"), "navy": ("marine",), "ministers": ("minister",),
}  # fmt: skip


def role_parts(word: str) -> tuple[str, ...]:
    """The German word parts that say what an English role word says (see ``ROLE_PARTS``).

    >>> role_parts("Defence"), role_parts("Kirby")
    (('verteidigung',), ())
    """
    return ROLE_PARTS.get(fold(word), ())


def _edit_ratio_reaches(a: str, b: str, ratio: float) -> bool:
    """Whether ``1 - edit distance / longer length`` reaches ``ratio``; the distance is at least the difference
    in length, so most pairs are decided without computing it."""
    longer = max(len(a), len(b))
    return abs(len(a) - len(b)) <= (1 - ratio) * longer and _edit_ratio(a, b) >= ratio


def _edit_ratio(a: str, b: str) -> float:
    return 1 - edit_distance(a, b) / max(len(a), len(b))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, a column of the table at a time as bit vectors (Hyyrö 2001, after Myers 1999):
    the same number as the cell-by-cell table, a few integer operations per letter of ``b``.

    >>> edit_distance("Schoigu", "Shoigu"), edit_distance("", "abc"), edit_distance("kitten", "sitting")
    (1, 3, 3)
    """
    m = len(a)
    if not m or not b:
        return max(m, len(b))
    peq: dict[str, int] = {}  # letter -> the positions of a that hold it
    for i, c in enumerate(a):
        peq[c] = peq.get(c, 0) | (1 << i)
    mask, last = (1 << m) - 1, 1 << (m - 1)
    pv, mv, score = mask, 0, m  # vertical +1 / -1 deltas of the current column; its last cell
    for c in b:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & mask) ^ pv) | eq
        ph = (mv | ~(xh | pv)) & mask
        mh = pv & xh
        if ph & last:
            score += 1
        elif mh & last:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = (mh | ~(xv | ph)) & mask
        mv = ph & xv
    return score

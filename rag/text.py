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

from embeddings.analysis import (  # noqa: F401  (the analysis lives with the index; re-exported here)
    ENGLISH_STOPWORDS,
    GERMAN_STOPWORDS,
    QUOTE_MARK,
    STOPWORDS,
    WORD,
    fold,
    stem,
    terms,
    words,
)
from embeddings.dates import MONTHS, TIMES_OF_DAY, WEEKDAYS

_GERMAN_ONLY = GERMAN_STOPWORDS - ENGLISH_STOPWORDS
_ENGLISH_ONLY = ENGLISH_STOPWORDS - GERMAN_STOPWORDS
# Words of one language that are no stop words but are frequent in questions and news text.
_GERMAN_CUES = frozenset(
    "sagte sagt sagten erklärte hat hatte haben ist sind wurde wurden welche welcher welches wessen wieso "  # noqa: SIM905
    "weshalb nicht auch noch schon gesagt laut gegen zwischen nach".split()
)
_ENGLISH_CUES = frozenset(
    "did does do doing is are were has have had what which who whom whose why how the of and "  # noqa: SIM905
    "not also still against between after".split()
)


def detect_language(text: str) -> str:
    """``"de"`` or ``"en"``: words only one of the languages has, and German letters; English when nothing tells.

    Words both languages share ("was", "will", "in", "so") are not counted: "Was sagte Kirby?" is German.

    >>> detect_language("Was sagte Kirby?"), detect_language("What about Li Shangfu?"), detect_language("Xi")
    ('de', 'en', 'en')
    """
    tokens = [w.casefold() for w in words(text)]
    de = sum(t in _GERMAN_ONLY or t in _GERMAN_CUES for t in tokens) + 2 * len(re.findall(r"[äöüß]", text.casefold()))
    en = sum(t in _ENGLISH_ONLY or t in _ENGLISH_CUES for t in tokens)
    en += len(re.findall(r"\w(?:'s|’s|n't|n’t)\b", text))
    return "de" if de > en else "en"


@functools.lru_cache(maxsize=200_000)
def transliterate(word: str) -> str:
    """Collapse spelling variants of transliterated names: Schoigu/Shoigu, Belousow/Belousov, Selenskyj/Zelensky."""
    w = fold(word)
    for a, b in (("tsch", "ch"), ("sch", "sh"), ("j", "y"), ("w", "v"), ("z", "s"), ("ck", "k"), ("c", "k"),
                 ("ph", "f"), ("ou", "u"), ("yy", "y"), ("ie", "i")):  # fmt: skip
        w = w.replace(a, b)
    return re.sub(r"(.)\1+", r"\1", w)


_TIME_OF_DAY = re.compile("(" + "|".join(fold(t) for t in TIMES_OF_DAY) + ")$")
# Whole names only: "may" is also a verb, abbreviations are also other words ("dez", "jan").
_MONTH_NAMES = {fold(name): n for name, n in MONTHS.items() if len(name) > 3 or name == "mai"}
_DAY_NAMES = {fold(name): n for name, n in WEEKDAYS.items()}


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


@functools.lru_cache(maxsize=1_000_000)  # pure, and the same pairs recur across sentences and questions
def similar_words(a: str, b: str) -> bool:
    """Whether two words plausibly name the same thing across German and English.

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
    ta, tb = transliterate(fa), transliterate(fb)
    short = min(len(ta), len(tb))
    if short >= 5 and ta[:5] == tb[:5]:
        return True
    if _demonym_root(ta) is not None and _demonym_root(ta) in (_demonym_root(tb), _german_root(tb)):
        return True
    if _demonym_root(tb) is not None and _demonym_root(tb) == _german_root(ta):
        return True
    if short >= 2 and (tb.startswith(ta) or ta.startswith(tb)) and abs(len(ta) - len(tb)) <= 2:
        return True
    return short >= 5 and _edit_ratio(ta, tb) >= 0.75


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


def _edit_ratio(a: str, b: str) -> float:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1 - prev[-1] / max(len(a), len(b))

"""What a question asks: its language, its type (when, who, where, how many) and its key words.

>>> q = analyse("When did Shoigu visit Beijing?")
>>> q.language, q.kind, q.names
('en', 'when', ('Shoigu', 'Beijing'))
>>> analyse("Wie viele Quadratkilometer hat die Ukraine erobert?").kind
'quantity'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from embeddings.readers.files import normalize_text
from rag.answering.text import STOPWORDS, detect_language, terms, words

# The most expensive question of this length (made-up words, each looked up in every candidate
# sentence's word index) costs about 0.25 s of CPU on a loaded machine (2,000 characters: ~1 s;
# before the word index, 200 characters cost 0.4 s and 2,000 cost 5-6 s).
MAX_QUESTION_CHARS = 500

_PERSON_NOUNS = (
    r"minister|secretary|president|premier|chancellor|journalists?|reporters?|ambassador|spokes(?:man|woman|person)"
    r"|general|commander|leaders?|officials?|persons?|people|experts?|analysts?|diplomats?|envoy|head|chief"
    r"|ministerin|präsident(?:in)?|kanzler(?:in)?|journalist(?:in|en)?|botschafter(?:in)?|sprecher(?:in)?"
    r"|kommandeur|oberbefehlshaber|politiker(?:in)?|experten?|person(?:en)?|vorsitzende[rn]?|staatschef"
)
_KINDS = [
    ("when", r"^(when|what (date|day|year|month|time|weekday)|on what (date|day)|in what (year|month)"
             r"|which (date|day|year|month)|in which (year|month)|what was the (exact )?(date|day)|since when"
             r"|wann|seit wann|ab wann|bis wann|an welchem (tag|datum|wochentag)|in welchem (jahr|monat)"
             r"|welches datum|welcher tag|zu welchem zeitpunkt)\b"),
    ("why", r"^(why|warum|weshalb|wieso|weswegen|aus welchem grund|for what reason|what (is|was) the reason)\b"),
    ("source", r"^(which|what|in which|welche[rsmn]?|in welche[rmn]?|aus welche[rmn]?)\s+(\S+\s+){0,2}?"
               r"(news ?agency|agency|agencies|newspapers?|publications?|sources?|media|outlets?|magazines?"
               r"|nachrichtenagentur|agentur|zeitung(en)?|publikation(en)?|quellen?|medien|sender|magazin)\b"),
    ("who", r"^(who|whom|whose|wer|wem|wen|wessen)\b"),
    ("statement", r"^(what|was|wie|how)\b.*\b(say|said|says|tell|told|write|wrote|claim|claimed|declare|declared"
                  r"|describe[ds]?|call(ed|s)?|admit(ted|s)?|react(ed|s)?|respond(ed|s)?|answer(ed|s)?|repl(y|ied)"
                  r"|sagte|sagt|sagten|gesagt|erklärte|erklärt|schrieb|meinte|betonte|äußerte|bewertet|bewertete"
                  r"|genannt|nannte|beschrieb|beschrieben|bezeichnet|bezeichnete|reagiert|reagierte|geantwortet"
                  r"|antwortete|räumte|eingeräumt|zugegeben|gab zu|discuss(ed)?|talk(ed)? about|gesprochen|besprochen"
                  r"|diskutiert|diskutierten|sprachen)\b"),
    ("statement", r"^(worüber|wovon|about what)\b"),
    ("who", r"^(which|what|welche[rsmn]?)\s+(?!(did|does|do|is|was|were|are|has|have|hat|hatte|ist|war)\b)"
            r"(\S+\s+){0,3}?(" + _PERSON_NOUNS + r")\b"),
    ("where", r"^(where|wo|wohin|woher|von wo|in which (\w+ )?(country|city|place|region|town)"
              r"|in welche[rmn]? (land|stadt|ort|region)|which (country|city|place)|welche[rsn]? (land|stadt|ort))\b"),
    ("quantity", r"^(how (many|much|long|far|old|big|large|high)|wie (viele?|lange|weit|alt|gro(ß|ss)|hoch)"
                 r"|auf wie viele|what (number|amount|area|share|percentage)|welche[rsn]? (zahl|anzahl|menge|summe"
                 r"|fläche|betrag|anteil))\b"),
    ("yesno", r"^(did|does|do|is|are|was|were|has|have|had|can|could|will|would)\b", "en"),
    ("yesno", r"^(hat|hatte|hatten|ist|war|sind|waren|wird|werden|kann|haben|gab es|gibt es)\b", "de"),
]  # fmt: skip
_KIND_RES = [(kind, re.compile(pattern, re.I), lang) for kind, pattern, *lang in _KINDS]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


class QuestionError(ValueError):
    """The question cannot be asked (empty, or too long)."""


@dataclass(frozen=True)
class Question:
    """An analysed question. ``names`` are its capitalised words other than the first, as written."""

    text: str
    language: str
    kind: str  # "when", "who", "where", "quantity", "source" (a medium or agency), "why", "yesno",
    # "statement" (what someone said) or "other"
    terms: tuple[str, ...]
    names: tuple[str, ...]
    since: bool = False  # "since when" / "seit wann": the answer is a start, not any date
    counted: str = ""  # what a *how many* question counts, as written ("villages", "US-Beamte")


def clean(question: str) -> str:
    """Strip control and invisible characters and squeeze whitespace.

    Raises:
        QuestionError: nothing left, or longer than ``MAX_QUESTION_CHARS``.
    """
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, not {type(question).__name__}")
    if len(question) > 50 * MAX_QUESTION_CHARS:  # far too long whatever it holds: not worth cleaning first
        raise QuestionError(_too_long(len(question)))
    # As in articles: zero-width characters join ("Scho\u200bigu" is "Schoigu"), other controls separate.
    text = " ".join(_CONTROL.sub(" ", normalize_text(question)).split())
    if not text:
        raise QuestionError('empty question; ask something, e.g. "When did Shoigu visit Beijing?"')
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(_too_long(len(text)))
    return text


def _too_long(n: int) -> str:
    return f"question too long ({n:,} characters; the limit is {MAX_QUESTION_CHARS:,}); ask it in a sentence or two"


HOW_LONG = re.compile(r"^\W*(how long|wie lange)\b", re.I)  # answered by a time as well as by a count
_SINCE = re.compile(r"\b(seit wann|since when|how long has|how long have|wie lange (ist|sind|schon))\b", re.I)
_COUNTED = re.compile(
    r"\b(?:how many|how much|wie viele?|what number of|welche (?:zahl|anzahl|menge|fläche|summe)(?: an| von)?"
    r"(?: in)?)\s+([\w\-]+)(?:\s+([\w\-]+))?",
    re.I,
)
# Words that need the next one to say what is counted: "cubic meters", "square kilometres", "US soldiers".
_MEASURE_PREFIX = frozenset("cubic square metric million billion thousand us u.s. more".split())  # noqa: SIM905


def question_kind(text: str, language: str = "en") -> str:
    """The question's type (see :class:`Question`) from its opening words, or those after a leading clause.

    >>> question_kind("after the trip, where did China stage drills?"), question_kind("Was sagte Kirby?", "de")
    ('where', 'statement')
    """
    lowered = text.strip().lower().lstrip("¿¡\"'„“ ")
    lowered = re.sub(r"^(and|und|also|so|but|aber)\s+", "", lowered)
    # "after X, where ...", "the counteroffensive: how many ...": the question word follows a clause.
    tails = [lowered] + [m.group(1) for m in re.finditer(r"[,:–—-]\s+(.+)$", lowered)]
    for tail in tails:
        for kind, pattern, only in _KIND_RES:
            if (not only or language in only) and pattern.search(tail):
                return kind
    return "other"


def counted_noun(text: str) -> str:
    """What a *how many* question counts ("how many villages were freed" -> "villages").

    >>> counted_noun("How many cubic meters of gas does Russia ship?"), counted_noun("Wie viele Dörfer?")
    ('cubic meters', 'Dörfer')
    """
    m = _COUNTED.search(text)
    if not m:
        return ""
    first, second = m.group(1), m.group(2)
    if second and first.casefold() in _MEASURE_PREFIX:
        return f"{first} {second}"
    return first


def analyse(question: str) -> Question:
    """Clean and analyse a question (see :class:`Question`)."""
    text = clean(question)
    tokens = words(text)
    names = tuple(w for i, w in enumerate(tokens) if i > 0 and w[:1].isupper() and w.casefold() not in STOPWORDS)
    language = detect_language(text)
    kind = question_kind(text, language)
    return Question(
        text,
        language,
        kind,
        tuple(terms(text)),
        names,
        since=bool(_SINCE.search(text)),
        counted=counted_noun(text) if kind == "quantity" else "",
    )

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

from embeddings.readers import normalize_text

from .text import STOPWORDS, detect_language, terms, words

# The most expensive question of this length (made-up words, each compared with every word of the
# candidate sentences) costs about 0.4 s of CPU, 0.57 s at worst on a loaded machine (2,000: 5-6 s).
MAX_QUESTION_CHARS = 200

_PERSON_NOUNS = (
    r"minister|secretary|president|premier|chancellor|journalists?|reporters?|ambassador|spokes(?:man|woman|person)"
    r"|general|commander|leaders?|officials?|persons?|people|experts?|analysts?|diplomats?|envoy|head|chief"
    r"|ministerin|präsident(?:in)?|kanzler(?:in)?|journalist(?:in|en)?|botschafter(?:in)?|sprecher(?:in)?"
    r"|kommandeur|oberbefehlshaber|politiker(?:in)?|experten?|person(?:en)?|vorsitzende[rn]?|staatschef"
)
_KINDS = [
    ("when", r"^(when|what (date|day|year|month|time)|on what (date|day)|in what year|which (date|day|year|month)"
             r"|in which (year|month)|wann|seit wann|an welchem (tag|datum)|in welchem (jahr|monat)|welches datum)\b"),
    ("source", r"^(which|what|in which|welche[rsmn]?|in welche[rmn]?|aus welche[rmn]?)\s+(\S+\s+){0,2}?"
               r"(news ?agency|agency|agencies|newspapers?|publications?|sources?|media|outlets?|magazines?"
               r"|nachrichtenagentur|agentur|zeitung(en)?|publikation(en)?|quellen?|medien|sender|magazin)\b"),
    ("who", r"^(who|whom|whose|wer|wem|wen|wessen)\b"),
    ("statement", r"^(what|was|wie)\b.*\b(say|said|says|tell|told|write|wrote|claim|claimed|declare|declared"
                  r"|sagte|sagt|sagten|erklärte|erklärt|schrieb|meinte|betonte|äußerte)\b"),
    ("who", r"^(which|what|welche[rsmn]?)\s+(?!(did|does|do|is|was|were|are|has|have|hat|hatte|ist|war)\b)"
            r"(\S+\s+){0,3}?(" + _PERSON_NOUNS + r")\b"),
    ("where", r"^(where|wo|wohin|woher|in which (country|city|place|region|town)"
              r"|in welche[rmn]? (land|stadt|ort|region)|which (country|city|place)|welche[rsn]? (land|stadt|ort))\b"),
    ("quantity", r"^(how (many|much|long|far|old|big|large|high)|wie (viele?|lange|weit|alt|gro(ß|ss)|hoch))\b"),
]  # fmt: skip
_KIND_RES = [(kind, re.compile(pattern, re.I)) for kind, pattern in _KINDS]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


class QuestionError(ValueError):
    """The question cannot be asked (empty, or too long)."""


@dataclass(frozen=True)
class Question:
    """An analysed question. ``names`` are its capitalised words other than the first, as written."""

    text: str
    language: str
    kind: str  # "when", "who", "where", "quantity", "source" (a medium or agency),
    # "statement" (what someone said) or "other"
    terms: tuple[str, ...]
    names: tuple[str, ...]


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


def question_kind(text: str) -> str:
    """``when``, ``who``, ``where``, ``quantity`` or ``other``, from the question's opening words."""
    lowered = text.strip().lower().lstrip("¿¡\"'„“ ")
    lowered = re.sub(r"^(and|und|also|so|but|aber)\s+", "", lowered)
    for kind, pattern in _KIND_RES:
        if pattern.search(lowered):
            return kind
    return "other"


def analyse(question: str) -> Question:
    """Clean and analyse a question (see :class:`Question`)."""
    text = clean(question)
    tokens = words(text)
    names = tuple(w for i, w in enumerate(tokens) if i > 0 and w[:1].isupper() and w.casefold() not in STOPWORDS)
    return Question(text, detect_language(text), question_kind(text), tuple(terms(text)), names)

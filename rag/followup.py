"""Follow-up questions: turn an elliptical "And Belousov?" into a question that stands on its own.

A chat turn like "Und Belousow?" only makes sense next to the question before
it. Retrieval sees one question at a time, so the follow-up is rewritten by
putting the new name in place of the previous question's main name:

>>> rewrite("And Belousov?", "When did Shoigu visit Beijing?")
'When did Belousov visit Beijing?'
>>> rewrite("Und in Moskau?", "Wann war Schoigu in Peking?")
'Wann war Schoigu in Moskau?'
>>> rewrite("Who is Lin Jian?", "When did Shoigu visit Beijing?")  # a full question stays as it is
'Who is Lin Jian?'

Pure string work, no model: a follow-up that does not fit the pattern is
returned unchanged, which is never worse than guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .text import STOPWORDS

# Openers of an elliptical follow-up ("And X?", "What about X?", "Und was ist mit X?").
_LEAD = re.compile(
    r"^(?:and\s+what\s+about|what\s+about|how\s+about|and|"
    r"und\s+was\s+ist\s+mit|was\s+ist\s+mit|und\s+wie\s+ist\s+es\s+mit|und\s+wie\s+steht\s+es\s+mit|und)\s+(?P<rest>.+)$",
    re.IGNORECASE,
)
_PREPOSITION_WORDS = "in at to from on with for about near im am an auf aus bei mit nach von vom zu zum zur über"
_QUESTION_OPENERS = (
    "who whom whose what when where which why how is are was were did does do has have can could will would "
    "wer wen wem wessen was wann wo wohin woher welche welcher welches welchen warum wieso weshalb wie "
    "ist sind war waren hat haben hatte kann konnte wird wurde"
)
_PREPOSITIONS = frozenset(_PREPOSITION_WORDS.split())
_QUESTION_WORDS = frozenset(_QUESTION_OPENERS.split())
_WORD = re.compile(r"[^\W\d_][\w'’.-]*")
MAX_FRAGMENT_WORDS = 5


def message_text(content) -> str:
    """The text of a chat message's content: a string, or a list of parts (Gradio's ``{"text": ...}``)."""
    parts = content if isinstance(content, list) else [content]
    return " ".join(p if isinstance(p, str) else str(p.get("text", "")) for p in parts if p)


def _is_name(word: str) -> bool:
    return word[:1].isupper() and word.casefold() not in STOPWORDS and word.casefold() not in _QUESTION_WORDS


def _fragment(question: str) -> str | None:
    """The new subject of an elliptical follow-up ("Belousov", "in Moskau"), or ``None`` if it is not one."""
    text = " ".join(question.split()).strip().rstrip("?!. ").strip()
    match = _LEAD.match(text)
    rest = match.group("rest").strip() if match else text
    words = rest.split()
    if not words or len(words) > MAX_FRAGMENT_WORDS or words[0].casefold() in _QUESTION_WORDS:
        return None
    # Without an opener only a bare name ("Belousov?") counts; "Belousov visited when?" is a question.
    if match is None and not all(_is_name(w) for w in words):
        return None
    if not any(_is_name(w) for w in words):
        return None
    return rest


def _name_spans(question: str) -> list[tuple[int, int, bool]]:
    """Runs of capitalised words after the first word: ``(start, end, follows_a_preposition)``."""
    spans: list[tuple[int, int, bool]] = []
    previous: re.Match | None = None
    in_span = False
    for i, m in enumerate(_WORD.finditer(question)):
        word = m.group().rstrip(".")
        end = m.start() + len(word)
        if i > 0 and _is_name(word):
            if in_span and previous is not None and question[previous.end() : m.start()].isspace():
                spans[-1] = (spans[-1][0], end, spans[-1][2])
            else:
                after_prep = previous is not None and previous.group().casefold() in _PREPOSITIONS
                spans.append((m.start(), end, after_prep))
            in_span = True
        else:
            in_span = False
        previous = m
    return spans


def rewrite(question: str, previous: str | None) -> str:
    """``question`` made standalone using the ``previous`` question of the chat, if it is an elliptical follow-up.

    The new name replaces the previous question's first name that is not a
    place after a preposition ("Shoigu" in "When did Shoigu visit Beijing?");
    a fragment with a preposition ("in Moskau") replaces the previous
    preposition phrase, else the last name. Known limit: two adjacent names
    are told apart only by word count ("Xi Jinping Schoigu" is ambiguous).

    >>> rewrite("Und Belousow?", "Wann besuchte Schoigu Peking?")
    'Wann besuchte Belousow Peking?'
    >>> rewrite("What about Dong Jun?", None)
    'What about Dong Jun?'
    """
    fragment = _fragment(question)
    if fragment is None or not previous:
        return question
    spans = _name_spans(previous)
    if not spans:
        return question
    first = fragment.split()[0]
    if first.casefold() in _PREPOSITIONS:
        placed = [s for s in spans if s[2]]
        if placed:
            start, end, _ = placed[-1]
            # Take the previous preposition too: "in Peking" -> "in Moskau".
            start = previous.rfind(" ", 0, start - 1) + 1
        else:
            start, end, _ = spans[-1]
            fragment = fragment.split(maxsplit=1)[1] if " " in fragment else fragment
    else:
        subjects = [s for s in spans if not s[2]] or spans
        start, end, _ = subjects[0]
        # German puts subject and object side by side ("Wann besuchte Schoigu Peking?"), so a run of
        # capitalised words may be two names: replace as many words as the new name has.
        run = previous[start:end].split()
        size = sum(1 for w in fragment.split() if _is_name(w))
        if len(run) > size:
            end = start + len(" ".join(run[:size]))
    return previous[:start] + fragment + previous[end:]


def resolve(questions: Iterable[str]) -> str:
    """The last of a chat's user questions made standalone, each turn read against the one before.

    >>> resolve(["When did Shoigu visit Beijing?", "And Belousov?", "And in Moscow?"])
    'When did Belousov visit Moscow?'

    Raises:
        ValueError: no questions.
    """
    resolved: str | None = None
    for question in questions:
        resolved = rewrite(question, resolved)
    if resolved is None:
        raise ValueError("no question to resolve")
    return resolved

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

A follow-up with a pronoun ("Who did he meet there?", "Wen traf er dort?") gets
the previous question's person and place; when there is none to take, or an
elliptical follow-up is in another language than the question it follows, a
:class:`FollowUpError` asks, in the user's language, to rephrase:

>>> rewrite("Who did he meet there?", "When did Shoigu visit Beijing?")
'Who did Shoigu meet in Beijing?'

Pure string work, no model: a follow-up that does not fit the pattern is
returned unchanged, which is never worse than guessing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from typing import Any

from rag.answering.questions import QuestionError
from rag.answering.text import STOPWORDS, detect_language

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
# Pronouns that stand for the previous question's person or place. Possessives ("his", "seine") and
# "sie"/"her" (also "they", "you", "her book") are left alone: replacing them would garble more than it fixes.
_PERSON_PRONOUNS = {"he": "en", "she": "en", "him": "en", "er": "de", "ihn": "de", "ihm": "de"}
_PLACE_PRONOUNS = {"there": "en", "dort": "de", "dorthin": "de"}
# "Is there ...", "there were ...": existential "there" points at no place.
_EXISTENTIAL = re.compile(r"\b(?:is|are|was|were|be|been)\s+there\b|\bthere\s+(?:is|are|was|were|been|be)\b", re.I)
_OPENER_LANGUAGE = {"and": "en", "what": "en", "how": "en", "und": "de", "was": "de"}
_REPHRASE = {
    "en": "“{question}”: I cannot tell who or where “{word}” means here. Please ask again with the name: "
    "a question that names who or where starts afresh, and this one is not read into the next.",
    "de": "„{question}“: Ich kann nicht erkennen, wen oder was „{word}“ hier meint. Bitte fragen Sie noch "
    "einmal mit dem Namen: Eine Frage, die den Namen nennt, beginnt neu, und diese wird nicht in die "
    "nächste hineingelesen.",
}
_OTHER_LANGUAGE = {
    "en": "“{question}” follows a question in German; please ask about {name} as a full question in English.",
    "de": "„{question}“ folgt auf eine englische Frage; "
    "bitte fragen Sie nach {name} mit einer ganzen Frage auf Deutsch.",
}


class FollowUpError(QuestionError):
    """A follow-up that cannot be made standalone; the message asks the user to rephrase, in their language."""

    def __init__(self, message: str, language: str) -> None:
        super().__init__(message)
        self.language = language


def message_text(content: Any) -> str:  # Gradio gives a str, a dict or a list of either
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
    previous: re.Match[str] | None = None
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
    if fragment is None:
        return _replace_pronouns(question, previous)
    if not previous:
        return question
    opener = _LEAD.match(" ".join(question.split()))
    if opener is not None:
        language = _OPENER_LANGUAGE.get(opener.group().split()[0].casefold(), "en")
        if language != detect_language(previous) and _name_spans(previous):
            name = " ".join(w for w in fragment.split() if _is_name(w))
            raise FollowUpError(_OTHER_LANGUAGE[language].format(question=question.strip(), name=name), language)
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


def _people_and_places(question: str) -> tuple[str | None, str | None]:
    """The previous question's person (first name not after a preposition) and place phrase ("in Peking").

    >>> _people_and_places("Wann besuchte Schoigu Peking?")
    ('Schoigu', 'in Peking')
    >>> _people_and_places("Where did Putin meet Xi Jinping in Moscow?")
    ('Putin', 'in Moscow')
    """
    spans = _name_spans(question)
    subjects = [s for s in spans if not s[2]]
    placed = [s for s in spans if s[2]]
    person = place = None
    if subjects:
        start, end, _ = subjects[0]
        run = question[start:end].split()
        # "Schoigu Peking": a German subject and object side by side; the last word is the place then.
        # Only a pair: "Belousow Xi Jinping" is a person and a person, not a person and a place "Jinping".
        if len(run) == 2 and not placed and len(subjects) == 1 and detect_language(question) == "de":
            person, place = run[0], f"in {run[-1]}"
        else:
            person = question[start:end]
    if placed:
        start, end, _ = placed[-1]
        place = question[question.rfind(" ", 0, start - 1) + 1 : end]
    elif place is None and len(subjects) > 1:
        start, end, _ = subjects[-1]
        place = f"in {question[start:end]}"
    return person, place


def _replace_pronouns(question: str, previous: str | None) -> str:
    """``question`` with "he"/"er" and "there"/"dort" replaced by the previous question's person and place.

    A question that names someone itself ("Where did Cunningham write his article?") is left alone.

    Raises:
        FollowUpError: a pronoun with no person or place to stand for.
    """
    if not previous and len(_WORD.findall(question)) > 6:
        return question  # a first question long enough to hold what its pronoun refers to ("Kherson: … there")
    found = [m for m in _WORD.finditer(question) if m.group().casefold() in _PERSON_PRONOUNS | _PLACE_PRONOUNS]
    found = [m for m in found if m.group().casefold() in _PERSON_PRONOUNS or not _EXISTENTIAL.search(question)]
    if not found or _name_spans(question):
        return question
    person, place = _people_and_places(previous) if previous else (None, None)
    out, last = [], 0
    for m in found:
        word = m.group().casefold()
        value = person if word in _PERSON_PRONOUNS else place
        if word == "dorthin" and value:
            value = "nach " + value.split(" ", 1)[-1]
        if not value:
            language = _PERSON_PRONOUNS.get(word) or _PLACE_PRONOUNS[word]
            raise FollowUpError(_REPHRASE[language].format(question=question.strip(), word=m.group()), language)
        out += [question[last : m.start()], value]
        last = m.end()
    return "".join([*out, question[last:]])


def resolve(questions: Iterable[str]) -> str:
    """The last of a chat's user questions made standalone, each turn read against the one before.

    >>> resolve(["When did Shoigu visit Beijing?", "And Belousov?", "And in Moscow?"])
    'When did Belousov visit Moscow?'

    An earlier turn that could not be read was answered with a request to rephrase: it is no
    context, so it never makes a later question fail too (issue 24, 1).

    >>> resolve(["Who did he meet there?", "When did Shoigu visit Beijing?", "And Belousov?"])
    'When did Belousov visit Beijing?'

    Raises:
        ValueError: no questions.
        FollowUpError: the last question is a follow-up that cannot be read against the one before
            (the message asks to rephrase).
    """
    questions = list(questions)
    if not questions:
        raise ValueError("no question to resolve")
    resolved: str | None = None
    for question in questions[:-1]:
        with contextlib.suppress(FollowUpError):
            resolved = rewrite(question, resolved)
    return rewrite(questions[-1], resolved)

"""The prompt of LLM answers: numbered passages with their dates, invented worked examples, the question.

The conversation is a few turns long: the first user turn carries the
instructions and a worked example, the model's "reply" to it shows the
expected answer, and the last user turn carries the real passages and
question. Worked examples help a small model more than instructions do
(measured with Gemma 3 270M, see the README's "LLM answers"), and they are a
plain few-shot prompt for an instruction-tuned model. The examples are
invented: made-up towns and people, nothing from any corpus, so that nothing
in them can pass for a fact: a small model does sometimes copy an example into
its answer, and then :func:`rag.llm.answers.leaked_names` (names) or
:func:`rag.llm.answers.unsupported_numbers` (numbers) catches it.

Their answers open with "According to [n]," ("Laut [n]"): a model that
starts its answer by naming the passage cites it before it can forget to
(Gemma 3 270M cited in 21 of 25 dev answers so, in 14 with the marker only at
the end), and the cited passage differs between the examples so that the
number is not a constant to copy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answering.temporal import DAY_NAMES, MONTH_NAMES, resolve
from rag.types import Citation

# The model is told to answer with exactly this when the passages do not hold the answer.
REFUSAL = {"en": "Not found in the passages.", "de": "Nicht in den Passagen gefunden."}
# Short, and silent on how to open the answer (the examples show it): with "Begin with the number of
# the passage that holds the answer" added, Gemma 3 270M wrote 14 answers of its own, without it 20.
INSTRUCTIONS = (
    "Answer the question from the numbered passages only, in the language of the question, in one to three "
    "sentences. End every sentence with the number of the passage it comes from in square brackets, like [2]. "
    "Give dates as calendar dates: each passage's article date resolves words like 'Friday' or 'yesterday'. "
    f"If the passages do not contain the answer, reply only: {REFUSAL['en']} (in German: {REFUSAL['de']})"
)


@dataclass(frozen=True)
class Example:
    """A worked example: passages as ``(title, ISO date, text)``, a question, the answer to show,
    and the invented names in it (an answer that repeats one the passages do not hold copied the example)."""

    passages: tuple[tuple[str, str, str], ...]
    question: str
    answer: str
    names: tuple[str, ...]


# Invented towns, people and events (see the module docstring). Dates inside the texts are
# written as the prompt writes resolved dates: "am Montag (2025-03-03)".
EXAMPLES = (
    Example(
        passages=(
            (
                "Neues Hallenbad in Tannfeld",
                "2025-03-04",
                "Das neue Hallenbad in Tannfeld hat sechs Bahnen und eine Sauna. Der Bau kostete zwölf Millionen Euro.",
            ),
            (
                "Bürgermeisterin eröffnet Hallenbad",
                "2025-03-04",
                "Bürgermeisterin Jana Roth eröffnete das Hallenbad am Montag (2025-03-03) vor rund 400 Gästen.",
            ),
        ),
        question="When was the new swimming pool in Tannfeld opened?",
        answer="According to [2], Mayor Jana Roth opened the swimming pool on Monday, 3 March 2025 [2].",
        names=("Tannfeld", "Jana", "Roth"),
    ),
    Example(
        passages=(
            (
                "Stadtbibliothek öffnet sonntags",
                "2025-01-16",
                "Die Stadtbibliothek Kornhain ist ab April auch sonntags geöffnet, teilte ihr Leiter Paul Weber mit.",
            ),
            (
                "Streik bei der Straßenbahn",
                "2025-01-16",
                "Die Fahrer der Straßenbahn in Kornhain streikten am Mittwoch (2025-01-15) den ganzen Tag.",
            ),
            ("Neue Buslinie", "2025-01-14", "Eine neue Buslinie verbindet Kornhain mit dem Flughafen."),
        ),
        question="Wer leitet die Stadtbibliothek Kornhain?",
        answer="Laut [1] leitet Paul Weber die Stadtbibliothek Kornhain [1].",
        names=("Kornhain", "Paul", "Weber"),
    ),
)


def _long_date(date: dt.date, lang: str) -> str:
    months, days = MONTH_NAMES[lang], DAY_NAMES[lang]
    if lang == "de":
        return f"{days[date.weekday()]}, {date.day}. {months[date.month - 1]} {date.year}"
    return f"{days[date.weekday()]}, {date.day} {months[date.month - 1]} {date.year}"


def annotate_dates(passage: str, article_date: dt.date | None) -> str:
    """Write the calendar date after each relative date ("am Freitag") of the passage.

    >>> annotate_dates("Xi traf Schoigu am Freitag in Peking.", dt.date(2025, 2, 28))
    'Xi traf Schoigu am Freitag (2025-02-28) in Peking.'
    """
    if article_date is None:
        return passage
    out, last = [], 0
    for ref in resolve(passage, article_date):
        if ref.resolved and ref.date is not None and ref.precision == "day":
            out.append(passage[last : ref.end] + f" ({ref.date.isoformat()})")
            last = ref.end
    return "".join(out) + passage[last:]


def shown_passage(c: Citation) -> tuple[str, str | None, str]:
    """A citation as the model sees it: ``(title, ISO date, text with relative dates resolved)``."""
    date = dt.date.fromisoformat(c.date) if c.date else None
    return c.title, c.date, annotate_dates(" ".join(c.passage.split()), date)


def passages_block(passages: Sequence[tuple[str, str | None, str]]) -> str:
    """Numbered passages, each headed by its title and article date.

    >>> print(passages_block([("Titel", "2025-02-28", "Text."), ("Ohne Datum", None, "Mehr.")]))
    [1] Titel (article date: Friday, 28 February 2025 (2025-02-28))
    Text.
    <BLANKLINE>
    [2] Ohne Datum (article date: unknown)
    Mehr.
    """
    blocks = []
    for n, (title, date, text) in enumerate(passages, 1):
        day = dt.date.fromisoformat(date) if date else None
        when = f"article date: {_long_date(day, 'en')} ({day.isoformat()})" if day else "article date: unknown"
        blocks.append(f"[{n}] {title} ({when})\n{text}")
    return "\n\n".join(blocks)


def _turn(passages: Sequence[tuple[str, str | None, str]], question: str) -> str:
    return f"Passages:\n\n{passages_block(passages)}\n\nQuestion: {question}"


def build_messages(
    question: str, passages: Sequence[Citation], examples: Sequence[Example] = EXAMPLES
) -> list[tuple[str, str]]:
    """The conversation to send: ``("user" | "assistant", text)`` turns, the last one asking ``question``.

    No system message: some chat templates (Gemma's) drop it, so the instructions open the first user turn.
    """
    turns: list[tuple[str, str]] = []
    for example in examples:
        turns += [("user", _turn(example.passages, example.question)), ("assistant", example.answer)]
    turns.append(("user", _turn([shown_passage(c) for c in passages], question)))
    first = turns[0][1]
    turns[0] = ("user", f"{INSTRUCTIONS}\n\n{first}")
    return turns


CONDENSE_INSTRUCTIONS = (
    "Rewrite the follow-up question so that it can be understood without the conversation: replace pronouns "
    "and references with the names and things they refer to, and keep its language. A question that already "
    "stands on its own stays as it is. Reply with the rewritten question only."
)

# (conversation as (role, text) turns, follow-up, rewritten question); invented like EXAMPLES.
CONDENSE_EXAMPLES = (
    (
        (("user", "Wer leitet die Stadtbibliothek Kornhain?"), ("assistant", "Laut [1] leitet Paul Weber sie [1].")),
        "Wann streikten die Straßenbahnfahrer?",
        "Wann streikten die Straßenbahnfahrer?",
    ),
    (
        (("user", "When did the new swimming pool in Tannfeld open?"), ("assistant", "On Monday, 3 March 2025 [2].")),
        "Who opened it?",
        "Who opened the new swimming pool in Tannfeld?",
    ),
    (
        (("user", "Wer leitet die Stadtbibliothek Kornhain?"), ("assistant", "Laut [1] leitet Paul Weber sie [1].")),
        "Und seit wann ist sie sonntags geöffnet?",
        "Seit wann ist die Stadtbibliothek Kornhain sonntags geöffnet?",
    ),
)


def _condense_turn(conversation: Sequence[tuple[str, str]], question: str) -> str:
    lines = [f"{'User' if role == 'user' else 'Assistant'}: {text}" for role, text in conversation]
    return "Conversation:\n" + "\n".join(lines) + f"\n\nFollow-up question: {question}"


def condense_messages(conversation: Sequence[tuple[str, str]], question: str) -> list[tuple[str, str]]:
    """The turns that ask for ``question`` rewritten to stand alone, after worked examples (as :func:`build_messages`).

    Args:
        conversation: the chat so far as ``("user" | "assistant", text)`` turns.
    """
    turns: list[tuple[str, str]] = []
    for example, follow_up, rewritten in CONDENSE_EXAMPLES:
        turns += [("user", _condense_turn(example, follow_up)), ("assistant", rewritten)]
    turns.append(("user", _condense_turn(conversation, question)))
    turns[0] = ("user", f"{CONDENSE_INSTRUCTIONS}\n\n{turns[0][1]}")
    return turns

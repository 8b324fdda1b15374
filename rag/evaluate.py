"""Measure answer quality on a question set (``eval/dev.jsonl`` format).

Each line: ``{"id", "question", "source": file name or null, "answers": [regex, ...]}``, optionally
``"kind"`` (``when``, ``who``, ``near-miss``, ``off-topic``, ...) and ``"lang"`` (``en``/``de``).
A question with ``source: null`` has no answer in the corpus and should be abstained on.
The report breaks accuracy down by language and by kind, so that a gain in one language or
kind cannot hide a loss in another.

With an LLM answerer, ``answered_by`` (e.g. :func:`rag.llm.answers.answered_by`) labels each
answer (the model's own, replaced by the extractive fallback, refused, not asked) and
the report counts them, so the figures say what the model itself contributed.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.types import Answer


class EvalFileError(ValueError):
    """The question file is missing or malformed; the message names the line."""


@dataclass(frozen=True)
class Case:
    id: str
    question: str
    source: str | None
    answers: tuple[str, ...]
    kind: str = ""  # the question's type as labelled in the file ("when", "near-miss", ...)
    lang: str = ""  # the question's language as labelled in the file
    spans: tuple[str, ...] = ()  # answer spans (XQuAD style): right when one stands in the answer as whole words

    def matches(self, text: str) -> bool:
        """Whether ``text`` holds the answer: one of the spans as whole words (case and punctuation
        ignored), else one of the ``answers`` patterns.

        >>> Case("1", "q", "a.txt", (), spans=("308",)).matches("Sie gaben nur 308 Punkte ab.")
        True
        >>> Case("1", "q", "a.txt", (), spans=("30",)).matches("Sie gaben nur 308 Punkte ab.")
        False
        """
        if self.spans:
            padded = f" {normalise(text)} "
            return any(f" {normalise(span)} " in padded for span in self.spans if normalise(span))
        return any(re.search(p, text, re.IGNORECASE) for p in self.answers)


_PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalise(text: str) -> str:
    """Lower case, punctuation as spaces, whitespace squeezed (how XQuAD answers are compared).

    >>> normalise("Am 7. Februar 2016,  in „Santa Clara“!")
    'am 7 februar 2016 in santa clara'
    """
    return " ".join(_PUNCTUATION.sub(" ", text.casefold()).split())


@dataclass(frozen=True)
class Outcome:
    case: Case
    answer: Answer
    seconds: float
    answered_by: str | None = None  # with an LLM: "model", "fallback", "refused", ... (rag.llm.answers.ANSWERED_BY)

    @property
    def sources(self) -> list[str]:
        """Distinct cited sources, best first."""
        return list(dict.fromkeys(c.source for c in self.answer.citations))

    @property
    def correct(self) -> bool:
        """Answered (not abstained) and one of the gold patterns matches the answer text."""
        if self.case.source is None or self.answer.abstained:
            return False
        return self.case.matches(self.answer.text)


@dataclass(frozen=True)
class Report:
    n: int
    answerable: int
    hit_at_1: float
    hit_at_3: float
    mrr: float
    answer_accuracy: float
    abstention_accuracy: float
    unanswerable_abstained: str
    latency_p50_ms: float | None  # None: not measured (held-out answers are computed ahead)
    latency_p95_ms: float | None
    outcomes: list[Outcome] = field(default_factory=list, repr=False)
    # With an LLM: how many answers each answerer wrote, and how many of them were correct.
    answered_by: dict[str, int] = field(default_factory=dict)
    correct_by: dict[str, int] = field(default_factory=dict)
    false_abstentions: int = 0  # answerable questions abstained on
    # (right, total) per language (answerable questions: answered correctly) and per kind (answerable
    # kinds: answered correctly; unanswerable kinds such as near-miss: abstained).
    by_language: dict[str, tuple[int, int]] = field(default_factory=dict)
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)
    answered_by_language: dict[str, int] = field(default_factory=dict)  # answerable questions not abstained on

    @property
    def answered(self) -> int:
        return self.answerable - self.false_abstentions

    def table(self) -> str:
        rows = [
            ("questions", f"{self.n} ({self.answerable} answerable)"),
            ("source hit@1", f"{self.hit_at_1:.3f}"),
            ("source hit@3", f"{self.hit_at_3:.3f}"),
            ("MRR", f"{self.mrr:.3f}"),
            ("answer accuracy", f"{self.answer_accuracy:.3f}"),
            ("abstention accuracy", f"{self.abstention_accuracy:.3f}"),
            ("unanswerable abstained", self.unanswerable_abstained),
            ("false abstentions", f"{self.false_abstentions}/{self.answerable}"),
            ("answered", f"{self.answered / max(self.answerable, 1):.3f} ({self.answered}/{self.answerable})"),
            ("right among answered", f"{self.answer_accuracy * self.answerable / max(self.answered, 1):.3f}"),
            *(
                [("latency p50", f"{self.latency_p50_ms:.0f} ms"), ("latency p95", f"{self.latency_p95_ms:.0f} ms")]
                if self.latency_p50_ms is not None and self.latency_p95_ms is not None
                else [("latency", "not measured")]
            ),
        ]
        labels = {
            "model": "LLM: own cited answers",
            "fallback": "LLM: replaced, no valid citation",
            "empty": "LLM: replaced, only citations",
            "echo": "LLM: replaced, repeated the prompt",
            "numbers": "LLM: replaced, invented a number",
            "leak": "LLM: replaced, copied an example",
            "unsupported": "LLM: replaced, no sentence supported",
            "refused": "LLM: refused (no answer in passages)",
            "not_asked": "LLM: not asked (no evidence)",
        }
        for kind, label in labels.items():
            if kind in self.answered_by:
                count = self.answered_by[kind]
                correct = f" ({self.correct_by.get(kind, 0)} correct)" if kind != "not_asked" and count else ""
                rows.append((label, f"{count}/{self.n}{correct}"))
        for label, groups in (("language", self.by_language), ("kind", self.by_kind)):
            for name, (right, total) in sorted(groups.items()):
                value = f"{right / total:.3f} ({right}/{total})"
                if label == "language":
                    answered = self.answered_by_language.get(name, 0)
                    value += f"  answered {answered / total:.3f}  right among answered {right / max(answered, 1):.3f}"
                rows.append((f"{label} {name}", value))
        claims = [c for o in self.outcomes for c in o.answer.claims]
        if claims:
            removed = sum(not c.kept for c in claims)
            rows.append(("LLM: generated sentences removed", f"{removed}/{len(claims)}"))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "outcomes"}
        data["questions"] = [
            {
                "id": o.case.id,
                "correct": o.correct,
                "abstained": o.answer.abstained,
                **({"reason": o.answer.reason} if o.answer.reason else {}),
                "sources": o.sources[:3],
                "answer": o.answer.text,
                "ms": round(o.seconds * 1000, 1),
                **({"answered_by": o.answered_by, "notes": list(o.answer.notes)} if o.answered_by else {}),
                **({"claims": [asdict(c) for c in o.answer.claims]} if o.answer.claims else {}),
            }
            for o in self.outcomes
        ]
        return data


def load_cases(path: Path) -> list[Case]:
    """Read and validate a question file, or a question set folder (:func:`load_span_set`)."""
    path = Path(path)
    if path.is_dir():
        return load_span_set(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EvalFileError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise EvalFileError(f"{path}: not UTF-8 ({exc.reason})") from exc
    cases = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            case = Case(
                str(row.get("id", no)),
                row["question"],
                row.get("source"),
                tuple(row.get("answers", ())),
                str(row.get("kind", "")),
                str(row.get("lang", "")),
            )
            for pattern in case.answers:
                re.compile(pattern)
        except (ValueError, KeyError, TypeError, re.error) as exc:
            raise EvalFileError(f"{path}:{no}: bad line ({exc}); expected question, source, answers") from exc
        cases.append(case)
    if not cases:
        raise EvalFileError(f"{path}: no questions in the file")
    return cases


QUESTIONS_FILE = "questions.jsonl"
CORPUS_FOLDER = "corpus"


def load_span_set(folder: Path) -> list[Case]:
    """Read a question set folder: ``corpus/`` (the articles) and ``questions.jsonl``, one question a line
    with ``question``, ``source`` (a file of ``corpus/``), ``answers`` (answer spans, not patterns) and
    optionally ``id``, ``lang``, ``kind`` (XQuAD's format, as in ``../shared/eval/xquad-dev``)."""
    folder = Path(folder)
    path = folder / QUESTIONS_FILE
    if not (folder / CORPUS_FOLDER).is_dir() or not path.is_file():
        raise EvalFileError(f"{folder}: a question set folder holds {CORPUS_FOLDER}/ and {QUESTIONS_FILE}")
    cases = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            spans = tuple(str(a) for a in row["answers"])
            if not spans or not all(normalise(a) for a in spans):
                raise ValueError("no answer span")
            cases.append(
                Case(
                    str(row.get("id", no)), row["question"], row["source"], (), str(row.get("kind", "")),
                    str(row.get("lang", "")), spans,
                )
            )  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise EvalFileError(f"{path}:{no}: bad line ({exc}); expected question, source, answers") from exc
    if not cases:
        raise EvalFileError(f"{path}: no questions in the file")
    return cases


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def evaluate(
    cases: list[Case],
    ask: Callable[[str], Answer],
    answered_by: Callable[[Answer], str] | None = None,
    *,
    timed: bool = True,
) -> Report:
    """Ask every question and score the answers.

    Args:
        ask: the answerer.
        answered_by: labels who wrote each answer (see :func:`rag.llm.answers.answered_by`); the report
            then counts the labels, and the correct answers under each.
        timed: ``ask`` answers as a user would wait for it; ``False`` when the answers were computed
            ahead (held-out folds): the report then gives no latency.
    """
    outcomes = []
    for case in cases:
        t0 = time.perf_counter()
        answer = ask(case.question)
        seconds = time.perf_counter() - t0
        outcomes.append(Outcome(case, answer, seconds, answered_by(answer) if answered_by else None))
    answerable = [o for o in outcomes if o.case.source is not None]
    unanswerable = [o for o in outcomes if o.case.source is None]

    def rank_of(o: Outcome) -> int | None:
        return o.sources.index(o.case.source) + 1 if o.case.source in o.sources else None

    ranks = [rank_of(o) for o in answerable]
    n_ans = max(len(answerable), 1)
    abstained_right = sum(o.answer.abstained == (o.case.source is None) for o in outcomes)
    times = [o.seconds * 1000 for o in outcomes]

    def tally(key: Callable[[Outcome], str], among: list[Outcome]) -> dict[str, tuple[int, int]]:
        right: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for o in among:
            group = key(o)
            if group:
                total[group] += 1
                right[group] += o.correct if o.case.source is not None else o.answer.abstained
        return {g: (right[g], total[g]) for g in total}

    return Report(
        n=len(outcomes),
        answerable=len(answerable),
        hit_at_1=sum(r == 1 for r in ranks) / n_ans,
        hit_at_3=sum(r is not None and r <= 3 for r in ranks) / n_ans,
        mrr=sum(1 / r for r in ranks if r) / n_ans,
        answer_accuracy=sum(o.correct for o in answerable) / n_ans,
        abstention_accuracy=abstained_right / max(len(outcomes), 1),
        unanswerable_abstained=f"{sum(o.answer.abstained for o in unanswerable)}/{len(unanswerable)}",
        latency_p50_ms=_percentile(times, 0.5) if timed else None,
        latency_p95_ms=_percentile(times, 0.95) if timed else None,
        outcomes=outcomes,
        answered_by=dict(Counter(o.answered_by for o in outcomes if o.answered_by)),
        correct_by=dict(Counter(o.answered_by for o in answerable if o.answered_by and o.correct)),
        false_abstentions=sum(o.answer.abstained for o in answerable),
        # Unlabelled files: the language the engine detected.
        by_language=tally(lambda o: o.case.lang or o.answer.language, answerable),
        by_kind=tally(lambda o: o.case.kind or ("unanswerable" if o.case.source is None else ""), outcomes),
        answered_by_language=dict(
            Counter((o.case.lang or o.answer.language) for o in answerable if not o.answer.abstained)
        ),
    )

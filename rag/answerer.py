"""One interface for whoever writes the answer: the extractive answerer or a language model.

Callers (the chat, ``rag ask``, ``rag eval``) loop over :meth:`Answerer.stream`
and never ask which answerer they hold::

    for item in answerer.stream("Und wann war er in Peking?", history):
        if isinstance(item, str):
            show_more(item)        # text as it is written
        else:
            show_final(item)       # the Answer: replaces what was shown; carries the sources

The final :class:`~rag.types.Answer`'s ``question`` is the question actually
answered (a follow-up made standalone), so a caller can show "Understood as".
The extractive answerer yields only the final answer: it is computed in one go,
and pretending to stream it would only delay it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from embeddings import Embedder
from rag.answering.followup import message_text, resolve
from rag.answering.questions import QuestionError, clean
from rag.types import Answer, AnswerEngine, Hit, LoadedView

EXTRACTIVE_K = 5


@runtime_checkable
class Answerer(Protocol):
    """Writes a cited answer; ``name`` is its key (``"extractive"``, ``"llm"``), ``label`` how a page shows it."""

    @property
    def name(self) -> str:
        """Its key: ``"extractive"`` or ``"llm"``."""
        ...

    @property
    def label(self) -> str:
        """How a page shows it."""
        ...

    def stream(self, question: str, history: Sequence[Any] = ()) -> Iterator[str | Answer]:
        """Text pieces as they are written, then exactly one final :class:`Answer`.

        A piece may be empty (a language model's token held back for its check): the caller can
        stop between pieces.

        ``history``: earlier chat turns, oldest first (``{"role", "content"}`` dicts or strings,
        which are user turns).

        Raises:
            QuestionError: empty or over-long question, or a follow-up that cannot be read.
        """
        ...

    def answered_by(self, answer: Answer) -> str | None:
        """Who wrote ``answer`` (``rag eval`` counts these), or ``None`` if this answerer always writes it itself."""
        ...


def earlier_questions(history: Sequence[Any]) -> list[str]:
    """The user questions of a chat history that were askable (refused turns are no context).

    >>> earlier_questions(["When did Shoigu visit Beijing?", {"role": "assistant", "content": "x"}, "  "])
    ['When did Shoigu visit Beijing?']
    """
    out = []
    for turn in history or ():
        if isinstance(turn, str):
            text = turn
        elif isinstance(turn, dict) and turn.get("role") == "user":
            text = message_text(turn.get("content"))
        else:
            continue
        try:
            out.append(clean(text))
        except QuestionError:
            continue
    return out


def final_answer(answerer: Answerer, question: str, history: Sequence[Any] = ()) -> Answer:
    """Run ``answerer.stream`` to the end; its final :class:`Answer`."""
    final = None
    for item in answerer.stream(question, history):
        if isinstance(item, Answer):
            final = item
    if final is None:  # an answerer that breaks the contract should say so, not return None
        raise RuntimeError(f"answerer {answerer.name!r} ended without an Answer")
    return final


@dataclass(frozen=True)
class ExtractiveAnswerer:
    """Quotes the sentences that answer, cited ``[n]`` (:meth:`rag.Engine.ask`); follow-ups rewritten first."""

    engine: AnswerEngine
    k: int = EXTRACTIVE_K
    name: str = "extractive"
    label: str = "Extractive (quotes the passages)"
    sources: frozenset[str] | None = None  # search only these files (None: all)

    def stream(self, question: str, history: Sequence[Any] = ()) -> Iterator[str | Answer]:
        standalone = resolve([*earlier_questions(history), clean(question)])
        engine = ScopedEngine(self.engine, self.sources) if self.sources is not None else self.engine
        yield replace(engine.ask(standalone, k=self.k), question=standalone)

    def answered_by(self, answer: Answer) -> str | None:
        return None


@dataclass(frozen=True)
class LlmAnswerer:
    """A LangChain chat model writes the answer from the passages; its citations are checked
    (:mod:`rag.llm.answers`)."""

    engine: AnswerEngine
    llm: Any
    k: int | None = None
    label: str = "LLM"
    name: str = "llm"
    sources: frozenset[str] | None = None  # search only these files (None: all)

    def stream(self, question: str, history: Sequence[Any] = ()) -> Iterator[str | Answer]:
        from rag.llm.answers import PASSAGES, generate, prepare

        turns = [t if isinstance(t, dict) else {"role": "user", "content": t} for t in history or ()]
        engine = ScopedEngine(self.engine, self.sources) if self.sources is not None else self.engine
        prepared = prepare(clean(question), self.llm, engine=engine, k=self.k or PASSAGES, history=turns)
        for item in generate(prepared, self.llm):
            yield replace(item, question=prepared.standalone) if isinstance(item, Answer) else item

    def answered_by(self, answer: Answer) -> str | None:
        from rag.llm.answers import answered_by

        return answered_by(answer)


@dataclass(frozen=True)
class ScopedEngine:
    """An engine that searches only some files: what :func:`rag.llm.answers.prepare` and the answerers call on it."""

    engine: AnswerEngine
    sources: frozenset[str]

    def _within(self, sources: frozenset[str] | None) -> frozenset[str]:
        return self.sources if sources is None else self.sources & sources

    def ask(self, question: str, k: int = EXTRACTIVE_K, *, sources: frozenset[str] | None = None) -> Answer:
        return self.engine.ask(question, k=k, sources=self._within(sources))

    def retrieve(self, question: str, k: int = EXTRACTIVE_K, *, sources: frozenset[str] | None = None) -> list[Hit]:
        return self.engine.retrieve(question, k, sources=self._within(sources))

    def loaded(self) -> LoadedView:
        return self.engine.loaded()

    def embedder(self) -> Embedder:
        return self.engine.embedder()


def answerers(
    engine: AnswerEngine, *, k: int | None = None, llm: Any = None, llm_k: int | None = None
) -> dict[str, ExtractiveAnswerer | LlmAnswerer]:
    """The answerers this configuration offers, by name: always the extractive one, the LLM's when given.

    The first is the default (the LLM's when there is one).
    """
    extractive = ExtractiveAnswerer(engine, k or EXTRACTIVE_K)
    if llm is None:
        return {extractive.name: extractive}
    from rag.llm.answers import describe

    model = LlmAnswerer(engine, llm, llm_k, label=f"LLM: {describe(llm)}")
    return {model.name: model, extractive.name: extractive}

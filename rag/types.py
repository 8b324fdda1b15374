"""Results of answering: :class:`Hit` (a retrieved passage), :class:`Citation` and :class:`Answer`.

And :class:`AnswerEngine`, what the answerers and the chat call on an engine (:class:`rag.Engine`
is one; a scoped engine that searches some files only is another).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from embeddings import Chunk, StoreView

if TYPE_CHECKING:
    from embeddings import Embedder


@dataclass(frozen=True)
class Hit:
    """A chunk found for a question, with the scores that ranked it.

    ``score`` is the fused reciprocal-rank score; ``dense`` the cosine of
    question and chunk; ``lexical`` the BM25 score (0 when no term matched).
    """

    id: int
    chunk: Chunk
    score: float
    dense: float
    lexical: float


@dataclass(frozen=True)
class Citation:
    """A passage the answer refers to as ``[n]``: ``passage == document.text[start:end]``."""

    n: int
    source: str
    title: str
    passage: str
    start: int
    end: int
    score: float
    date: str | None = None  # the article's (inferred) date, ISO format
    highlight: tuple[int, int] | None = None  # the answering sentence, as offsets into ``passage``


@dataclass(frozen=True)
class ClaimCheck:
    """One sentence of a generated answer, checked against the passages it cites (:mod:`rag.llm.claims`).

    ``kept`` says whether it is shown; ``reason`` why not (or ``"supported"``); ``cited`` are
    its ``[n]``; ``similarity`` is its best cosine with a cited passage sentence, when measured;
    ``probability`` the fitted decision's probability that the passage supports it, when it decided.
    """

    sentence: str
    kept: bool
    reason: str
    cited: tuple[int, ...] = ()
    similarity: float | None = None
    probability: float | None = None


@dataclass(frozen=True)
class Answer:
    """A short answer in the question's language, with numbered citations.

    Every ``[n]`` in ``text`` is the ``n`` of one of ``citations``. When
    ``abstained`` is true the index had no good evidence and ``text`` says so.
    """

    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    language: str = "en"
    question: str = ""
    notes: tuple[str, ...] = ()  # what was changed on the way, e.g. citations removed from an LLM answer
    reason: str = ""  # when abstained: the gate that decided ("evidence", "anchor", "names-near", "kind:when", ...)
    claims: tuple[ClaimCheck, ...] = ()  # an LLM answer's sentences, each kept or removed (rag.llm.claims)
    short: str = ""  # the few words that answer (date, number, name) when ``text`` leads with them: "<short> — …"


class LoadedView(Protocol):
    """The part of a loaded index the answerers read: its consistent view."""

    @property
    def snapshot(self) -> StoreView: ...


class AnswerEngine(Protocol):
    """What the answerers and the chat call on an engine; :class:`rag.Engine` implements it."""

    def ask(self, question: str, k: int = 5, *, sources: frozenset[str] | None = None) -> Answer:
        """The cited answer to ``question`` from the best ``k`` passages (of ``sources`` only, when given)."""
        ...

    def retrieve(self, question: str, k: int = 5, *, sources: frozenset[str] | None = None) -> list[Hit]:
        """The best ``k`` passages for ``question``."""
        ...

    def loaded(self) -> LoadedView:
        """The live index, reopened when a writer committed a new version."""
        ...

    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use."""
        ...

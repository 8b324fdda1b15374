"""Questions in, cited answers out::

from rag import ask
answer = ask("When did Shoigu visit Beijing?")
answer.text                  # 'Friday, 28 February 2025 — „Der chinesische Präsident …“ [1]'
answer.citations[0].source   # '003_5d407fa9e5e9a813.txt'

The default index is the one ``rag index`` (or the first ``rag ask``/``rag chat``) builds of the
demo articles; ``ask`` itself builds nothing, except for ``ask(question, corpus="my/articles")``,
which indexes that folder first. Where the defaults live: :mod:`rag.defaults`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.answering.questions import QuestionError
from rag.engine import DEFAULT_CORPUS, DEFAULT_INDEX_DIR, Engine, Engines, engine_for
from rag.types import Answer, Citation, Hit

if TYPE_CHECKING:
    from langchain_core.retrievers import BaseRetriever

__all__ = [
    "DEFAULT_CORPUS",
    "DEFAULT_INDEX_DIR",
    "Answer",
    "Citation",
    "Engine",
    "Engines",
    "Hit",
    "QuestionError",
    "as_retriever",
    "ask",
]


def ask(
    question: str,
    *,
    index_dir: Path | str | None = None,
    corpus: Path | str | None = None,
    k: int | None = None,
    llm: Any = None,
    history: Any = (),
    engine: Engine | None = None,
) -> Answer:
    """Answer a question from the indexed articles, citing the passages used.

    Args:
        question: in English or German.
        index_dir: the index folder; by default the one ``rag index`` builds (``.rag-index`` in
            a checkout, else under the user data folder, see :mod:`rag.defaults`).
        corpus: a folder of articles to answer from: indexed first (incrementally, so only
            new or changed files cost time) into ``index_dir``, by default a folder kept for it.
        k: how many passages to retrieve and return as citations (default 5; with ``llm``,
            ``rag.llm.answers.PASSAGES``: the passages the model reads).
        llm: a LangChain chat model (e.g. ``rag.llm.answers.chat_model("openai", base_url=...)``) to write
            the answer from the passages; its citations are checked (see :mod:`rag.llm.answers`).
            ``None``: the offline extractive answer.
        history: the earlier chat turns; a follow-up is made standalone first.
        engine: answer with this :class:`Engine` (and its index) instead.

    Raises:
        QuestionError: empty or over-long question.
        embeddings.StoreError: no index (the message names the command that builds it), or a
            damaged one (the message says how to rebuild).
        rag.llm.answers.LLMError: the model could not be reached (the message says how to fix it).
    """
    from rag.answerer import answerers, final_answer

    engine = engine or _engine(index_dir, corpus)
    chosen = next(iter(answerers(engine, k=k, llm=llm, llm_k=k).values()))
    return final_answer(chosen, question, history)


def _engine(index_dir: Path | str | None, corpus: Path | str | None) -> Engine:
    if corpus is None:
        return engine_for(Path(index_dir) if index_dir else None)
    from embeddings import Embedder, index_paths, read_manifest
    from rag.defaults import defaults
    from rag.engine import SHARED

    places = defaults()
    index = Path(index_dir) if index_dir else places.index_for(Path(corpus))
    if read_manifest(index) is not None:
        engine = SHARED.get(index, cache_dir=places.cache_dir)
        index_paths([Path(corpus)], index, engine.embedder())
        return engine
    embedder = Embedder(cache_dir=places.cache_dir)
    index_paths([Path(corpus)], index, embedder)
    return SHARED.get(index, cache_dir=places.cache_dir, embedder=embedder)


def as_retriever(*, index_dir: Path | str | None = None, k: int = 5, engine: Engine | None = None) -> BaseRetriever:
    """A LangChain ``BaseRetriever`` over the index.

    Each returned ``Document`` is a passage with ``source``, ``title``, ``start``, ``end``,
    ``score`` and ``date`` in its metadata.

    Args:
        index_dir: the index folder (default as in :func:`ask`).
        k: passages per query.
        engine: reuse a loaded :class:`Engine` instead.
    """
    from rag.langchain_retriever import NewsRetriever

    return NewsRetriever(engine=engine or engine_for(Path(index_dir) if index_dir else None), k=k)

"""Questions in, cited answers out::

from rag import ask
answer = ask("When did Shoigu visit Beijing?")
answer.text                  # 'Friday, 28 February 2025 — „Der chinesische Präsident …“ [1]'
answer.citations[0].source   # '003_5d407fa9e5e9a813.txt'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .engine import DEFAULT_CORPUS, DEFAULT_INDEX_DIR, Engine, engine_for
from .questions import QuestionError
from .types import Answer, Citation, Hit

__all__ = [
    "DEFAULT_CORPUS",
    "DEFAULT_INDEX_DIR",
    "Answer",
    "Citation",
    "Engine",
    "Hit",
    "QuestionError",
    "as_retriever",
    "ask",
]


def ask(
    question: str, *, index_dir: Path | str | None = None, k: int | None = None, llm: Any = None, history: Any = ()
) -> Answer:
    """Answer a question from the indexed articles, citing the passages used.

    Args:
        question: in English or German.
        index_dir: the index folder; by default ``.rag-index`` in the project,
            built from ``seeds/`` on first use.
        k: how many passages to retrieve and return as citations (default 5; with ``llm``,
            ``rag.llm.PASSAGES``: the passages the model reads).
        llm: a LangChain chat model (e.g. ``rag.llm.chat_model("openai", base_url=...)``) to write
            the answer from the passages; its citations are checked (see :mod:`rag.llm`).
            ``None``: the offline extractive answer.
        history: the earlier chat turns; a follow-up is made standalone first.

    Raises:
        QuestionError: empty or over-long question.
        embeddings.StoreError: no index, or a damaged one (the message says how to rebuild).
        rag.llm.LLMError: the model could not be reached (the message says how to fix it).
    """
    from .answerer import answerers, final_answer

    engine = engine_for(Path(index_dir) if index_dir else None)
    chosen = next(iter(answerers(engine, k=k, llm=llm, llm_k=k).values()))
    return final_answer(chosen, question, history)


def as_retriever(*, index_dir: Path | str | None = None, k: int = 5, engine: Engine | None = None):
    """A LangChain ``BaseRetriever`` over the index (needs the ``llm`` extra).

    Each returned ``Document`` is a passage with ``source``, ``title``, ``start``, ``end``,
    ``score`` and ``date`` in its metadata.

    Args:
        index_dir: the index folder (default as in :func:`ask`).
        k: passages per query.
        engine: reuse a loaded :class:`Engine` instead.
    """
    from .langchain_retriever import NewsRetriever

    return NewsRetriever(engine=engine or engine_for(Path(index_dir) if index_dir else None), k=k)

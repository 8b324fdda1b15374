"""Questions in, cited answers out::

from rag import ask
answer = ask("When did Shoigu visit Beijing?")
answer.text                  # 'Friday, 28 February 2025 — „Der chinesische Präsident …“ [1]'
answer.citations[0].source   # '003_5d407fa9e5e9a813.txt'
"""

from __future__ import annotations

from pathlib import Path

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
    "ask",
]


def ask(question: str, *, index_dir: Path | str | None = None, k: int = 5) -> Answer:
    """Answer a question from the indexed articles, citing the passages used.

    Args:
        question: in English or German.
        index_dir: the index folder; by default ``.rag-index`` in the project,
            built from ``seeds/`` on first use.
        k: how many passages to retrieve and return as citations.

    Raises:
        QuestionError: empty or over-long question.
        embeddings.StoreError: no index, or a damaged one (the message says how to rebuild).
    """
    return engine_for(Path(index_dir) if index_dir else None).ask(question, k=k)

"""The question-answering engine: one loaded model and the live index snapshot, reused across questions.

Everything that can be done once is done once: the model loads on first use,
and the BM25 statistics and vocabulary are built when a snapshot is first
seen. Before each question the engine checks the index's ``CURRENT`` pointer
(one small file read) and switches to a new snapshot after an update, so
readers never see a half-written index and never block writers.
"""

from __future__ import annotations

import functools
import itertools
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings import (
    DEFAULT_MODEL,
    Embedder,
    IndexMismatchError,
    ModelError,
    Snapshot,
    current_generation,
    index_paths,
    open_snapshot,
)
from embeddings.store import REBUILD_HINT
from embeddings.verify import manifest_model

from .answer import Thresholds, Vocabulary, compose
from .bm25 import BM25
from .questions import analyse
from .retrieve import expand_to_documents, retrieve
from .select import idf_lookup, rank
from .types import Answer, Hit

CANDIDATE_PASSAGES = 10
SENTENCE_CACHE_SIZE = 20_000
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = PROJECT_ROOT / "seeds"
DEFAULT_INDEX_DIR = PROJECT_ROOT / ".rag-index"


@dataclass(frozen=True)
class LoadedIndex:
    """A snapshot with the structures built from it once."""

    name: str
    snapshot: Snapshot
    bm25: BM25
    vocabulary: Vocabulary


class Engine:
    """Answers questions from the index in ``index_dir``.

    Args:
        index_dir: the index folder.
        cache_dir: where the default model is converted to.
        embedder: reuse a loaded model (must be the one the index was built with).
        thresholds: when to abstain.
    """

    def __init__(
        self,
        index_dir: Path,
        *,
        cache_dir: Path | None = None,
        embedder: Embedder | None = None,
        thresholds: Thresholds = Thresholds(),
    ) -> None:
        self.index_dir = Path(index_dir)
        self.cache_dir = cache_dir
        self.thresholds = thresholds
        self._embedder = embedder
        self._loaded: LoadedIndex | None = None
        self._sentence_cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()  # snapshot and model switches
        self._cache_lock = threading.Lock()  # the sentence memo; never held while the model runs

    def embedder(self) -> Embedder:
        """The model of the live index (loaded once)."""
        return self._embedder_for(self.loaded())

    def _embedder_for(self, loaded: LoadedIndex) -> Embedder:
        m = loaded.snapshot.manifest
        embedder = self._embedder
        if embedder is not None and (embedder.model_id, embedder.backend) == (m.model, m.backend):
            return embedder  # the usual case: no lock, so questions do not wait while a new snapshot loads
        with self._lock:
            if self._embedder is None or (self._embedder.model_id, self._embedder.backend) != (m.model, m.backend):
                try:
                    embedder = manifest_model(m, self.cache_dir)
                except IndexMismatchError as exc:
                    fix = "install the model, or " if isinstance(exc.__cause__, ModelError) else ""
                    raise IndexMismatchError(f"{self.index_dir}: {exc}; {fix}{REBUILD_HINT}") from exc
                with self._cache_lock:  # model and memo change together: no old vector under the new model
                    self._embedder = embedder
                    self._sentence_cache = {}  # vectors of the previous model are not comparable
            return self._embedder

    def loaded(self) -> LoadedIndex:
        """The live snapshot, reloaded if a writer switched generations since the last call."""
        name = current_generation(self.index_dir)
        current = self._loaded
        if current is not None and current.name == name:
            return current
        with self._lock:
            if self._loaded is None or self._loaded.name != current_generation(self.index_dir):
                snapshot = open_snapshot(self.index_dir)
                chunks = snapshot.chunks()
                self._loaded = LoadedIndex(
                    snapshot.path.name,
                    snapshot,
                    BM25([c.text for c in chunks]),
                    Vocabulary([d.text for d in snapshot.documents.values()]),
                )
            return self._loaded

    def retrieve(self, question: str, k: int = 5, *, sources: frozenset[str] | None = None) -> list[Hit]:
        """The ``k`` best passages for ``question`` (hybrid dense + BM25); with ``sources``, only from those files."""
        q = analyse(question)
        loaded = self.loaded()
        vector = self._embedder_for(loaded).embed_queries([q.text])[0]
        return retrieve(q.text, vector, loaded.snapshot, loaded.bm25, k=k, sources=sources)

    def ask(self, question: str, k: int = 5, *, sources: frozenset[str] | None = None) -> Answer:
        """Answer ``question`` with up to ``k`` cited passages, or abstain; with ``sources``, only from those files."""
        q = analyse(question)
        loaded = self.loaded()  # one snapshot for the whole question, even if a writer switches meanwhile
        embedder = self._embedder_for(loaded)
        vector = embedder.embed_queries([q.text])[0]
        # Look for evidence a little deeper than the k passages returned: the answering sentence
        # is often in a passage ranked just below k, and then that passage is cited instead.
        hits = retrieve(q.text, vector, loaded.snapshot, loaded.bm25, k=max(2 * k, CANDIDATE_PASSAGES), sources=sources)
        hits = expand_to_documents(hits, vector, loaded.snapshot)
        embed = functools.partial(self._embed_sentences, embedder=embedder)
        ranked = rank(q, vector, hits, loaded.snapshot, embed, idf_lookup(loaded.bm25))
        return compose(q, ranked, hits, loaded.snapshot, loaded.vocabulary, self.thresholds, k=k)

    def _embed_sentences(self, texts: list[str], embedder: Embedder) -> np.ndarray:
        """Document embeddings of sentences, memoised: the same sentences come up again and again.

        Safe for concurrent questions: the vectors a question uses are collected in a dict of
        its own, so another question's evictions (or more sentences than the memo holds) cannot
        take them away; the memo is read and written under a lock that is not held while the
        model runs, and only while it still belongs to the model that made the vectors.
        """
        unique = list(dict.fromkeys(texts))
        with self._cache_lock:
            memo = self._sentence_cache if self._embedder is embedder else None
            found = {t: memo[t] for t in unique if t in memo} if memo is not None else {}
        missing = [t for t in unique if t not in found]
        if missing:
            vectors = embedder.embed_documents(missing)
            found.update(zip(missing, vectors))
            with self._cache_lock:
                if memo is not None and memo is self._sentence_cache:
                    memo.update(zip(missing, vectors))
                    for old in list(itertools.islice(memo, max(0, len(memo) - SENTENCE_CACHE_SIZE))):
                        del memo[old]  # oldest first
        return np.vstack([found[t] for t in texts])


_ENGINES: dict[Path, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(index_dir: Path | None = None, *, cache_dir: Path | None = None) -> Engine:
    """A shared :class:`Engine` per index folder; the default index is built from ``seeds/`` if missing."""
    path = Path(index_dir or DEFAULT_INDEX_DIR).resolve()
    with _ENGINES_LOCK:
        engine = _ENGINES.get(path)
        if engine is None:
            engine = _ENGINES[path] = Engine(path, cache_dir=cache_dir)
    if index_dir is None and current_generation(path) is None:
        embedder = Embedder(DEFAULT_MODEL, cache_dir=cache_dir)
        index_paths([DEFAULT_CORPUS], path, embedder)
        engine._embedder = embedder
    return engine

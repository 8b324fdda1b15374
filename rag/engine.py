"""The question-answering engine: one loaded model and a view of the live index, reused across questions.

Everything that can be done once is done once: the model loads on first use, and
the word and name lookups are built per immutable index part (and kept across
versions, so an update costs its new part only). Before each question the engine
asks the store for its version (one small read) and switches to a new view after
an update, so readers never see a half-written index and never block writers.
The engine reads the index only through the store interface (:mod:`embeddings.stores.api`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings import (
    Embedder,
    IndexMismatchError,
    IndexNotFoundError,
    ModelError,
    Store,
    StoreView,
    open_store,
)
from embeddings.stores.api import IndexPart
from embeddings.stores.embedded.verify import manifest_model
from embeddings.stores.manifest import REBUILD_HINT, Manifest
from embeddings.stores.sentences import QUERY, SentenceVectors, as_query, folder_of, model_key, rounded
from embeddings.stores.spec import is_milvus, store_spec
from rag.answering.answer import Decision, Vocabularies, Vocabulary, compose
from rag.answering.ground import Gates, NameIndex, NameIndexes, Verdict
from rag.answering.questions import Question, analyse
from rag.answering.scorer import FEATURES, PASSED, AnswerScorer, context_rows, feature_rows, shipped
from rag.answering.select import Scored, document_sentences, idf_lookup, rank
from rag.config import ScoringConfig
from rag.defaults import defaults
from rag.retrieve import expand_to_documents, retrieve
from rag.types import Answer, Hit

SENTENCE_CACHE_SIZE = 20_000
# The defaults when this module was imported (the checkout's seeds/ and .rag-index/, or under the
# user data folder when installed); rag.defaults.defaults() gives them for the current RAG_HOME.
DEFAULT_CORPUS = defaults().corpus
DEFAULT_INDEX_DIR = defaults().index_dir


@dataclass(frozen=True)
class LoadedIndex:
    """A view of one index version with the word and name lookups of its parts."""

    name: str
    snapshot: StoreView
    vocabulary: Vocabularies
    names: NameIndexes
    sentences: SentenceVectors | None = None  # the sentence vectors the indexer wrote (embedded store only)


@dataclass(frozen=True)
class PartLookups:
    """The word and name lookups of one immutable index part."""

    vocabulary: Vocabulary
    names: NameIndex

    @classmethod
    def of(cls, part: IndexPart) -> PartLookups:
        return cls(Vocabulary.of_words(part.words), NameIndex(part.names))


@dataclass(frozen=True)
class Candidates:
    """A question's candidate sentences with their features, before any is chosen."""

    question: Question
    hits: tuple[Hit, ...]
    ranked: tuple[Scored, ...]  # the signals of each candidate (rag.answering.select.rank)
    rows: np.ndarray  # the scorer's features, one row per candidate (rag.answering.scorer.FEATURES)
    snapshot: StoreView
    gates: Gates

    def verdicts(self, i: int) -> tuple[Verdict, ...]:
        """The gates run on candidate ``i``, up to the first that fails (memoised: a gate may embed names)."""
        memo: dict[int, tuple[Verdict, ...]] = self.__dict__.setdefault("_verdicts", {})
        if i not in memo:
            s = self.ranked[i]
            doc = self.snapshot.documents[s.sentence.source]
            spans = document_sentences(doc.text)
            memo[i] = tuple(self.gates.check(self.question, s.dense, doc, spans, s.sentence.start, s.sentence.end))
        return memo[i]

    def gate(self, i: int) -> str:
        """The first gate that fails on candidate ``i`` (``kind:when`` counts as ``kind``), or ``passed``."""
        failed = next((v.gate for v in self.verdicts(i) if not v.passed), None)
        return failed.split(":")[0] if failed else PASSED


@dataclass(frozen=True)
class Explanation:
    """Why an answer is what it is: the candidates with their probabilities, and the decision."""

    question: Question
    answer: Answer
    ranked: tuple[Scored, ...]  # the best candidates, best first (``score``: the ranker's log-odds)
    decision: Decision
    config: ScoringConfig
    threshold: float = 0.0  # the probability an answer needs (the fitted scorer's)
    contributions: tuple[dict[str, float], ...] = ()  # per ranked sentence: each feature's part of its log-odds


def _one_search_thread() -> None:
    """A question is one query: FAISS's OpenMP threads only spin-wait for each other on it, and under
    load that costs milliseconds per search (measured: 8 ms for a search of a few vectors)."""
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except ImportError:  # a store without FAISS
        pass


class Engine:
    """Answers questions from the index in ``index_dir`` (or any ``store``).

    Args:
        index_dir: the index folder, or a store spec (``milvus:PATH``, ``milvus://HOST:PORT``).
        store: an open :class:`~embeddings.Store` (then ``index_dir`` only names it in messages).
        cache_dir: where the default model is converted to.
        embedder: reuse a loaded model (must be the one the index was built with).
        config: retrieval depth and the signals' windows (see :class:`ScoringConfig`).
        scorer: the fitted answer scorer (default: the one shipped, ``rag/models/answer_scorer.json``).
    """

    def __init__(
        self,
        index_dir: Path | str | None = None,
        *,
        store: Store | None = None,
        cache_dir: Path | None = None,
        embedder: Embedder | None = None,
        config: ScoringConfig = ScoringConfig(),
        scorer: AnswerScorer | None = None,
    ) -> None:
        self.scorer = scorer if scorer is not None else shipped()
        self.store = store if store is not None else open_store(store_spec(index_dir), answering=True)
        _one_search_thread()
        self.index_dir = Path(index_dir) if index_dir is not None else Path(self.store.spec)
        self.cache_dir = cache_dir
        self.config = config
        self._embedder = embedder
        self._loaded: LoadedIndex | None = None
        self._parts: dict[str, PartLookups] = {}
        self._sentence_cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()  # snapshot and model switches
        self._cache_lock = threading.Lock()  # the sentence memo; never held while the model runs

    def warm_up(self) -> None:
        """Load now what the first question would wait for: the index view, the model, the dictionary.

        A server calls this before it serves, so that its first answer is as fast as its tenth.
        One English question goes the whole way (retrieval, sentence scoring, translation), and
        its answer is dropped.
        """
        self.ask("When did it happen?")

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
        """The live view, reopened if a writer committed a new version since the last call."""
        name = self.store.version()
        current = self._loaded
        if current is not None and current.name == name:
            return current
        with self._lock:
            if self._loaded is None or self._loaded.name != self.store.version():
                view = self.store.view()
                parts = {p.key: self._parts.get(p.key) or PartLookups.of(p) for p in view.parts()}
                self._parts = parts  # lookups of parts no longer listed are dropped
                self._loaded = LoadedIndex(
                    view.version,
                    view,
                    Vocabularies([p.vocabulary for p in parts.values()]),
                    NameIndexes([p.names for p in parts.values()]),
                    _stored_sentences(self.store, view.manifest),
                )
            return self._loaded

    def retrieve(self, question: str, k: int = 5, *, sources: frozenset[str] | None = None) -> list[Hit]:
        """The ``k`` best passages for ``question`` (hybrid dense + BM25); with ``sources``, only from those files."""
        q = analyse(question)
        loaded = self.loaded()
        vector = self._embedder_for(loaded).embed_queries([q.text])[0]
        return retrieve(q.text, vector, loaded.snapshot, k=k, rrf_k=self.config.rrf_k, sources=sources)

    def ask(self, question: str, k: int = 5, *, sources: frozenset[str] | None = None) -> Answer:
        """Answer ``question`` with up to ``k`` cited passages, or abstain; with ``sources``, only from those files."""
        return self.explain(question, k, sources=sources).answer

    def candidates(self, question: str, *, sources: frozenset[str] | None = None) -> Candidates:
        """The question's candidate sentences with their signals and gate verdicts (what the scorer reads)."""
        c = self.config
        q = analyse(question)
        loaded = self.loaded()  # one snapshot for the whole question, even if a writer switches meanwhile
        embedder = self._embedder_for(loaded)
        vector = embedder.embed_queries([q.text])[0]
        hits = retrieve(q.text, vector, loaded.snapshot, k=c.candidate_passages, rrf_k=c.rrf_k, sources=sources)
        hits = expand_to_documents(
            hits, vector, loaded.snapshot, documents=c.expand_documents, max_chunks=c.expand_max_chunks
        )
        embed = functools.partial(self._embed_sentences, embedder=embedder, stored=loaded.sentences)
        idf = idf_lookup(loaded.snapshot)
        ranked = rank(q, vector, hits, loaded.snapshot, embed, idf, c)
        context = context_rows(q, ranked, loaded.snapshot, idf, loaded.vocabulary.knows)
        gates = Gates(loaded.names, idf, loaded.vocabulary.knows, c, self._embed_terms(embedder, loaded.sentences))
        return Candidates(q, tuple(hits), tuple(ranked), feature_rows(q, ranked, context), loaded.snapshot, gates)

    def explain(self, question: str, k: int = 5, *, sources: frozenset[str] | None = None) -> Explanation:
        """Answer ``question`` and keep what decided it (``rag ask --explain``)."""
        found = self.candidates(question, sources=sources)
        decision, ranked = choose(found, self.scorer)
        answer = compose(found.question, ranked, found.hits, found.snapshot, decision, k=k)
        top = tuple(ranked[:5])
        row_of = {(s.sentence.source, s.sentence.start): row for s, row in zip(found.ranked, found.rows)}
        parts = tuple(self.scorer.ranker.contributions(row_of[(s.sentence.source, s.sentence.start)]) for s in top)
        return Explanation(found.question, answer, top, decision, self.config, self.scorer.threshold, parts)

    def _embed_terms(self, embedder: Embedder, stored: SentenceVectors | None) -> Callable[[list[str]], np.ndarray]:
        """Embeds short terms as queries (memoised with the sentences), to compare nouns across languages."""

        def embed(texts: list[str]) -> np.ndarray:
            return self._embed_sentences(texts, embedder=embedder, queries=True, stored=stored)

        return embed

    def _embed_sentences(
        self, texts: list[str], embedder: Embedder, queries: bool = False, stored: SentenceVectors | None = None
    ) -> np.ndarray:
        """Embeddings of sentences (as documents) or of terms (``queries``): memoised, else read from the
        vectors the indexer stored (``stored``), else embedded now (at the stored precision, so both paths agree).

        Safe for concurrent questions: the vectors a question uses are collected in a dict of
        its own, so another question's evictions (or more sentences than the memo holds) cannot
        take them away; the memo is read and written under a lock that is not held while the
        model runs, and only while it still belongs to the model that made the vectors.
        """

        def embed(missing: list[str]) -> np.ndarray:
            found = stored.get(missing, embedder.dim) if stored is not None else {}
            rest = [t for t in missing if t not in found]
            if queries and rest:
                found.update(zip(rest, rounded(embedder.embed_queries([t[len(QUERY) :] for t in rest]))))
            elif rest:
                found.update(zip(rest, rounded(embedder.embed_documents(rest))))
            return np.vstack([found[t] for t in missing])

        # Queries are memoised apart from documents (their keys carry a prefix): the model embeds a query differently.
        return self._memoised([as_query(t) for t in texts] if queries else texts, embed, embedder)

    def _memoised(self, texts: list[str], embed: Callable[[list[str]], np.ndarray], embedder: Embedder) -> np.ndarray:
        unique = list(dict.fromkeys(texts))
        with self._cache_lock:
            memo = self._sentence_cache if self._embedder is embedder else None
            found = {t: memo[t] for t in unique if t in memo} if memo is not None else {}
        missing = [t for t in unique if t not in found]
        if missing:
            vectors = embed(missing)
            found.update(zip(missing, vectors))
            with self._cache_lock:
                if memo is not None and memo is self._sentence_cache:
                    memo.update(zip(missing, vectors))
                    for old in list(itertools.islice(memo, max(0, len(memo) - SENTENCE_CACHE_SIZE))):
                        del memo[old]  # oldest first
        return np.vstack([found[t] for t in texts])


def _stored_sentences(store: Store, manifest: Manifest) -> SentenceVectors | None:
    """The sentence vectors in the store's folder, if it has one (read-only; an absent file reads as empty)."""
    folder = folder_of(store)
    if folder is None:
        return None
    return SentenceVectors(folder, model_key(manifest.model, manifest.backend, manifest.dim))


def choose(found: Candidates, scorer: AnswerScorer) -> tuple[Decision, list[Scored]]:
    """Quote the best candidate if the judge's probability reaches the scorer's threshold, the two best
    if the pair judge's does, else abstain.

    Returns the decision and the candidates, best first, each with the ranker's log-odds as ``score``.
    On abstaining, the closest sentence is still shown when its article holds the question's names
    and words (the article was found, the fact was not).
    """
    if not found.ranked:
        return Decision((), (Verdict("evidence", False, "nothing retrieved"),), None), []
    logits, one, two = scorer.rank(found.rows, found.gate)
    order = sorted(range(len(logits)), key=lambda i: -logits[i])
    ranked = [dataclasses.replace(found.ranked[i], score=float(logits[i])) for i in order]
    best, t = ranked[0], scorer.threshold
    said = f"best sentence p={one:.3f}, one of the two best p={two:.3f}; threshold {t:.3f}"
    quotes = scorer.quotes(one, two, len(ranked))
    gates = found.verdicts(order[0])
    if quotes:
        return Decision(tuple(ranked[:quotes]), (Verdict("probability", True, said), *gates), best), ranked
    row = dict(zip(FEATURES, found.rows[order[0]]))
    found_article = row["names_article"] >= 1.0 and row["words_article"] >= 0.5 and row["names_unknown"] == 0.0
    reason = "probability:closest" if found_article else "probability"
    return Decision((), (Verdict(reason, False, said), *gates), best), ranked


class Engines:
    """One shared :class:`Engine` per index folder, made on first request; thread-safe.

    ``rag.ask`` and ``rag.as_retriever`` keep one of these so that repeated calls reuse the
    loaded model and snapshot; tests and applications make their own (or pass an ``Engine``).
    """

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def get(self, index_dir: Path | str, *, cache_dir: Path | None = None, embedder: Embedder | None = None) -> Engine:
        """The engine of an index folder or store spec; ``cache_dir`` and ``embedder`` are used only when it is made."""
        spec = os.fspath(index_dir)
        key = spec if is_milvus(spec) else str(Path(spec).resolve())
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                target = spec if is_milvus(spec) else Path(key)
                engine = self._engines[key] = Engine(target, cache_dir=cache_dir, embedder=embedder)
            return engine


SHARED = Engines()


def engine_for(index_dir: Path | str | None = None, *, cache_dir: Path | None = None) -> Engine:
    """The shared :class:`Engine` of ``index_dir`` or a store spec (default: ``$RAG_STORE``, else the
    default index); builds nothing.

    Raises:
        embeddings.IndexNotFoundError: no index there (the message names the command that builds it).
    """
    places = defaults()
    cache_dir = cache_dir or places.cache_dir
    if index_dir is None:
        index_dir = store_spec(None, places.index_dir)
        if open_store(index_dir).version() is None:
            raise IndexNotFoundError(
                f"no index in {index_dir}; build it with `rag index` (the demo articles) or `rag index PATH`, "
                "or pass ask(..., corpus=PATH)"
            )
    return SHARED.get(index_dir, cache_dir=cache_dir)

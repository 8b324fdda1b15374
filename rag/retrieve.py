"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings fused by reciprocal rank."""

from __future__ import annotations

import numpy as np

from embeddings import Snapshot

from .bm25 import BM25
from .text import terms
from .types import Hit

RRF_K = 60  # the constant of Cormack et al. (2009); damps the influence of the top ranks


def fuse(rankings: list[list[int]], weights: list[float] | None = None, k: int = RRF_K) -> dict[int, float]:
    """Weighted reciprocal-rank fusion of several rankings of ids.

    >>> sorted(fuse([[1, 2, 3], [3, 1]]).items(), key=lambda kv: -kv[1])[0][0]
    1
    >>> sorted(fuse([[1, 2, 3], [3, 1]], [1.0, 0.01]).items(), key=lambda kv: -kv[1])[1][0]
    2
    """
    weights = weights or [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank + 1)
    return scores


def lexical_coverage(question: str, bm25: BM25) -> float:
    """IDF-weighted share of the question's terms that occur in the index.

    An English question over German articles shares only names with them; its
    BM25 ranking then rests on a word or two and should count for less than
    the dense ranking. Terms the index has never seen weigh as much as its rarest.
    """
    query = set(terms(question))
    if not query or not bm25.n:
        return 0.0
    rarest = float(bm25.idf.max()) if len(bm25.idf) else 1.0
    known = sum(float(bm25.idf[bm25.vocab[t]]) for t in query if t in bm25.vocab)
    unknown = rarest * sum(1 for t in query if t not in bm25.vocab)
    return known / (known + unknown) if known + unknown else 0.0


def retrieve(
    question: str,
    query_vector: np.ndarray,
    snapshot: Snapshot,
    bm25: BM25,
    *,
    k: int = 5,
    pool: int = 50,
) -> list[Hit]:
    """The ``k`` best chunks for ``question`` by fused dense and BM25 rank.

    Args:
        query_vector: the question's embedding (normalised).
        bm25: built over ``snapshot.ids`` in order.
        pool: how deep each ranking goes before fusion.
    """
    if not len(snapshot):
        return []
    dense_scores, dense_ids = snapshot.search(query_vector, pool)
    dense_ranking = [int(i) for i in dense_ids[0] if i >= 0]
    positions, lexical_scores = bm25.top(question, pool)
    lexical_ranking = [int(snapshot.ids[p]) for p in positions]
    fused = fuse([dense_ranking, lexical_ranking], [1.0, lexical_coverage(question, bm25)])
    best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
    dense_of = dict(zip(dense_ranking, map(float, dense_scores[0])))
    missing = [i for i in best if i not in dense_of]
    if missing:  # found by BM25 only: compute their cosine too
        for i, v in zip(missing, snapshot.vectors(missing)):
            dense_of[i] = float(v @ query_vector.ravel())
    lexical_of = dict(zip(lexical_ranking, map(float, lexical_scores)))
    return [Hit(i, snapshot.chunk(i), fused[i], dense_of[i], lexical_of.get(i, 0.0)) for i in best]


def expand_to_documents(
    hits: list[Hit], query_vector: np.ndarray, snapshot: Snapshot, *, documents: int = 2, max_chunks: int = 40
) -> list[Hit]:
    """Add the other passages of the best-ranked articles to ``hits`` (after them, in text order).

    A news article is short and about one thing; when it is the best match, the
    sentence that answers is often in a passage that ranked low on its own (a
    byline, a quote two paragraphs after the speaker was named). Long documents
    (more than ``max_chunks`` passages) are not expanded.
    """
    have = {h.id for h in hits}
    sources = list(dict.fromkeys(h.chunk.source for h in hits))[:documents]
    extra_ids = []
    for source in sources:
        ids = [i for i in snapshot.ids_of(source) if i not in have]
        if 0 < len(snapshot.ids_of(source)) <= max_chunks:
            extra_ids.extend(ids)
    if not extra_ids:
        return list(hits)
    cosines = snapshot.vectors(extra_ids) @ query_vector.ravel()
    extra = [Hit(int(i), snapshot.chunk(i), 0.0, float(c), 0.0) for i, c in zip(extra_ids, cosines)]
    return list(hits) + extra

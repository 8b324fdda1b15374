"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings fused by reciprocal rank."""

from __future__ import annotations

import numpy as np

from embeddings import Snapshot

from .bm25 import BM25
from .types import Hit

RRF_K = 60  # the constant of Cormack et al. (2009); damps the influence of the top ranks


def fuse(rankings: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal-rank fusion of several rankings of ids.

    >>> sorted(fuse([[1, 2, 3], [3, 1]]).items(), key=lambda kv: -kv[1])[0][0]
    1
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank + 1)
    return scores


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
    fused = fuse([dense_ranking, lexical_ranking])
    best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
    dense_of = dict(zip(dense_ranking, map(float, dense_scores[0])))
    missing = [i for i in best if i not in dense_of]
    if missing:  # found by BM25 only: compute their cosine too
        for i, v in zip(missing, snapshot.vectors(missing)):
            dense_of[i] = float(v @ query_vector.ravel())
    lexical_of = dict(zip(lexical_ranking, map(float, lexical_scores)))
    return [Hit(i, snapshot.chunk(i), fused[i], dense_of[i], lexical_of.get(i, 0.0)) for i in best]

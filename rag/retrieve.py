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
    rrf_k: int = RRF_K,
    sources: frozenset[str] | None = None,
) -> list[Hit]:
    """The ``k`` best chunks for ``question`` by fused dense and BM25 rank, each chunk text once.

    With ``sources``, only chunks of those documents are ranked (both rankings then go through
    the whole index, so that a small chosen set is not lost below ``pool``).

    Args:
        query_vector: the question's embedding (normalised).
        bm25: built over ``snapshot.ids`` in order.
        pool: how deep each ranking goes before fusion.
    """
    if not len(snapshot):
        return []
    if sources is not None:
        pool = len(snapshot)
    dense_scores, dense_ids = snapshot.search(query_vector, pool)
    positions, lexical_scores = bm25.top(question, pool)
    dense = [(int(i), float(s)) for i, s in zip(dense_ids[0], dense_scores[0]) if i >= 0]
    lexical = [(int(snapshot.ids[p]), float(s)) for p, s in zip(positions, lexical_scores)]
    if sources is not None:
        dense = [(i, s) for i, s in dense if snapshot.rows[i].source in sources]
        lexical = [(i, s) for i, s in lexical if snapshot.rows[i].source in sources]
    stand_in = same_text_stand_ins([i for i, _ in dense + lexical], snapshot)
    dense_of, lexical_of = distinct_texts(dense, stand_in), distinct_texts(lexical, stand_in)
    fused = fuse([list(dense_of), list(lexical_of)], [1.0, lexical_coverage(question, bm25)], k=rrf_k)
    best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
    missing = [i for i in best if i not in dense_of]
    if missing:  # found by BM25 only: compute their cosine too
        for i, v in zip(missing, snapshot.vectors(missing)):
            dense_of[i] = float(v @ query_vector.ravel())
    return [Hit(i, snapshot.chunk(i), fused[i], dense_of[i], lexical_of.get(i, 0.0)) for i in best]


def same_text_stand_ins(ids: list[int], snapshot: Snapshot) -> dict[int, int]:
    """Each id -> the lowest id among ``ids`` with the same chunk text (usually the copy indexed first).

    The same text in two files (a copied or re-saved article) is stored twice and
    found twice; counted twice it would fill two of the ``k`` places with one
    passage and push other evidence out.
    """
    lowest: dict[str, int] = {}
    for i in ids:
        text_hash = snapshot.rows[i].text_hash
        lowest[text_hash] = min(lowest.get(text_hash, i), i)
    return {i: lowest[snapshot.rows[i].text_hash] for i in ids}


def distinct_texts(ranking: list[tuple[int, float]], stand_in: dict[int, int]) -> dict[int, float]:
    """A ranking of ``(id, score)`` with each text once, under its stand-in id: ``{id: score}`` in rank order."""
    out: dict[int, float] = {}
    for i, score in ranking:
        out.setdefault(stand_in[i], score)
    return out


def expand_to_documents(
    hits: list[Hit], query_vector: np.ndarray, snapshot: Snapshot, *, documents: int = 2, max_chunks: int = 40
) -> list[Hit]:
    """Add the other passages of the best-ranked articles to ``hits`` (after them, in text order).

    A news article is short and about one thing; when it is the best match, the
    sentence that answers is often in a passage that ranked low on its own (a
    byline, a quote two paragraphs after the speaker was named). Long documents
    (more than ``max_chunks`` passages) are not expanded.
    """
    texts = {snapshot.rows[h.id].text_hash for h in hits}
    sources = list(dict.fromkeys(h.chunk.source for h in hits))[:documents]
    extra_ids = []
    for source in sources:
        if not 0 < len(snapshot.ids_of(source)) <= max_chunks:
            continue
        for i in snapshot.ids_of(source):
            if snapshot.rows[i].text_hash not in texts:  # each text once, as in retrieve()
                texts.add(snapshot.rows[i].text_hash)
                extra_ids.append(i)
    if not extra_ids:
        return list(hits)
    cosines = snapshot.vectors(extra_ids) @ query_vector.ravel()
    extra = [Hit(int(i), snapshot.chunk(i), 0.0, float(c), 0.0) for i, c in zip(extra_ids, cosines)]
    return list(hits) + extra

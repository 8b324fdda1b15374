"""Hybrid retrieval: the store's dense and lexical (BM25) rankings fused by reciprocal rank."""

from __future__ import annotations

import numpy as np

from embeddings import StoreView
from rag.answering.text import terms
from rag.types import Hit

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


def lexical_coverage(question: str, view: StoreView) -> float:
    """IDF-weighted share of the question's terms that occur in the index.

    An English question over German articles shares only names with them; its
    BM25 ranking then rests on a word or two and should count for less than
    the dense ranking. Terms the index has never seen weigh as much as its rarest.
    """
    query = set(terms(question))
    if not query or not len(view):
        return 0.0
    idfs = [view.idf(t) for t in query]
    known = sum(i for i in idfs if i is not None)
    unknown = view.max_idf * sum(1 for i in idfs if i is None)
    return known / (known + unknown) if known + unknown else 0.0


def retrieve(
    question: str,
    query_vector: np.ndarray,
    view: StoreView,
    *,
    k: int = 5,
    pool: int = 50,
    rrf_k: int = RRF_K,
    sources: frozenset[str] | None = None,
) -> list[Hit]:
    """The ``k`` best chunks for ``question`` by fused dense and BM25 rank, each chunk text once.

    With ``sources``, only chunks of those documents are ranked (the store filters before ranking,
    so that a small chosen set is not lost below ``pool``).

    Args:
        query_vector: the question's embedding (normalised).
        pool: how deep each ranking goes before fusion.
    """
    if not len(view):
        return []
    dense = view.dense_search(query_vector, pool, sources)
    lexical = view.lexical_search(terms(question), pool, sources)
    rows = view.rows([i for i, _ in dense + lexical])
    stand_in = same_text_stand_ins([i for i, _ in dense + lexical], {i: r.text_hash for i, r in rows.items()})
    dense_of, lexical_of = distinct_texts(dense, stand_in), distinct_texts(lexical, stand_in)
    fused = fuse([list(dense_of), list(lexical_of)], [1.0, lexical_coverage(question, view)], k=rrf_k)
    best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
    missing = [i for i in best if i not in dense_of]
    if missing:  # found by BM25 only: compute their cosine too
        for i, v in zip(missing, view.vectors(missing)):
            dense_of[i] = float(v @ query_vector.ravel())
    return [Hit(i, view.chunk(i), fused[i], dense_of[i], lexical_of.get(i, 0.0)) for i in best]


def same_text_stand_ins(ids: list[int], text_hash: dict[int, str]) -> dict[int, int]:
    """Each id -> the lowest id among ``ids`` with the same chunk text (usually the copy indexed first).

    The same text in two files (a copied or re-saved article) is stored twice and
    found twice; counted twice it would fill two of the ``k`` places with one
    passage and push other evidence out.
    """
    lowest: dict[str, int] = {}
    for i in ids:
        lowest[text_hash[i]] = min(lowest.get(text_hash[i], i), i)
    return {i: lowest[text_hash[i]] for i in ids}


def distinct_texts(ranking: list[tuple[int, float]], stand_in: dict[int, int]) -> dict[int, float]:
    """A ranking of ``(id, score)`` with each text once, under its stand-in id: ``{id: score}`` in rank order."""
    out: dict[int, float] = {}
    for i, score in ranking:
        out.setdefault(stand_in[i], score)
    return out


def expand_to_documents(
    hits: list[Hit], query_vector: np.ndarray, view: StoreView, *, documents: int = 2, max_chunks: int = 40
) -> list[Hit]:
    """Add the other passages of the best-ranked articles to ``hits`` (after them, in text order).

    A news article is short and about one thing; when it is the best match, the
    sentence that answers is often in a passage that ranked low on its own (a
    byline, a quote two paragraphs after the speaker was named). Long documents
    (more than ``max_chunks`` passages) are not expanded.
    """
    texts = {r.text_hash for r in view.rows([h.id for h in hits]).values()}
    sources = list(dict.fromkeys(h.chunk.source for h in hits))[:documents]
    extra_ids = []
    for source in sources:
        ids = view.ids_of(source)
        if not 0 < len(ids) <= max_chunks:
            continue
        rows = view.rows(ids)
        for i in ids:
            if rows[i].text_hash not in texts:  # each text once, as in retrieve()
                texts.add(rows[i].text_hash)
                extra_ids.append(i)
    if not extra_ids:
        return list(hits)
    cosines = view.vectors(extra_ids) @ query_vector.ravel()
    extra = [Hit(int(i), view.chunk(i), 0.0, float(c), 0.0) for i, c in zip(extra_ids, cosines)]
    return list(hits) + extra

"""The FAISS index policy: exact (flat) while small, IVF with calibrated probes from FLAT_LIMIT on.

Each segment of the embedded store holds one of these indexes, written once.
"""

from __future__ import annotations

import math

import numpy as np

#: Below this many vectors the index is exact (txtai's threshold); from it on, IVF.
FLAT_LIMIT = 5_000


def _faiss():
    import faiss

    return faiss


def new_flat(dim: int):
    faiss = _faiss()
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def ivf_lists(n: int) -> int:
    """Number of IVF lists for ``n`` vectors: about ``sqrt(n)``, so a probed list holds ~sqrt(n) vectors.

    >>> ivf_lists(10_000), ivf_lists(1_000_000)
    (100, 1000)
    """
    return max(16, round(math.sqrt(n)))


def calibrate_probes(
    index, vectors: np.ndarray, ids: np.ndarray, *, target: float = 0.97, samples: int = 100, seed: int = 0
) -> int:
    """The fewest IVF lists to scan for recall@10 >= ``target`` on a sample of the indexed vectors.

    Exact neighbours of ``samples`` stored vectors (used as queries) are found by brute
    force; ``nprobe`` doubles from 8 until the IVF search finds ``target`` of them, capped
    at a quarter of the lists. Each query's own vector is left out of both lists: it is
    always found (in the list it was filed in), which would flatter the recall that
    questions, never stored themselves, get. Real data set their own value, not a
    constant tuned once.
    """
    faiss = _faiss()
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(vectors), min(samples, len(vectors)), replace=False)
    queries, own = vectors[picked], ids[picked]
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)

    def others(found_ids) -> list[set[int]]:  # the 10 best of each row, the query's own id left out
        return [set([i for i in row.tolist() if i != me][:10]) for row, me in zip(found_ids, own)]

    exact_ids = others(ids[flat.search(queries, 11)[1]])
    ivf = faiss.downcast_index(index)
    nprobe, cap = min(8, ivf.nlist), max(8, ivf.nlist // 4)
    while True:
        ivf.nprobe = nprobe
        found = others(index.search(queries, 11)[1])
        recall = np.mean([len(exact & row) / max(1, len(exact)) for exact, row in zip(exact_ids, found)])
        if recall >= target or nprobe >= cap:
            return nprobe
        nprobe = min(cap, nprobe * 2)


def is_approximate(index) -> bool:
    """True for the IVF index used from :data:`FLAT_LIMIT` vectors on."""
    return isinstance(_faiss().downcast_index(index), _faiss().IndexIVF)


def build_faiss_index(vectors: np.ndarray, ids: np.ndarray, *, flat_limit: int = FLAT_LIMIT, seed: int = 1234):
    """An index of ``vectors`` under ``ids``: exact below ``flat_limit`` vectors, else IVF.

    The IVF index is an ``IndexIVFFlat`` (inner product) with a hash-table direct map,
    so, like the flat ``IndexIDMap2``, it supports ``remove_ids`` and ``reconstruct(id)``.
    Its k-means is trained on at most 64 vectors per list (enough for stable centroids;
    training on all of a million vectors would take minutes).
    """
    faiss = _faiss()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    dim = vectors.shape[1]
    if len(vectors) < flat_limit:
        index = new_flat(dim)
        if len(vectors):
            index.add_with_ids(vectors, ids)
        return index
    nlist = ivf_lists(len(vectors))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()
    sample = vectors
    if len(vectors) > 64 * nlist:
        pick = np.random.default_rng(seed).choice(len(vectors), 64 * nlist, replace=False)
        sample = vectors[np.sort(pick)]
    index.cp.max_points_per_centroid = 64
    index.cp.seed = seed
    index.train(sample)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.add_with_ids(vectors, ids)
    index.nprobe = calibrate_probes(index, vectors, ids)
    return index

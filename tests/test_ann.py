"""The approximate (IVF) index: recall against exact search, deletion, reconstruct, save -> load."""

from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from embeddings.stores.embedded.faiss_index import build_faiss_index, is_approximate  # noqa: E402


def clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 50, dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_small_index_is_exact():
    x = clustered(200)
    index = build_faiss_index(x, np.arange(200) + 1000, flat_limit=500)
    assert not is_approximate(index)
    _, ids = index.search(x[:3], 1)
    assert ids[:, 0].tolist() == [1000, 1001, 1002]


def test_ivf_recall_delete_reconstruct_roundtrip(tmp_path):
    n = 6000
    x = clustered(n)
    ids = np.arange(n, dtype=np.int64) * 3 + 7  # not positions
    index = build_faiss_index(x, ids, flat_limit=5000)
    assert is_approximate(index) and index.ntotal == n

    rng = np.random.default_rng(1)
    queries = x[rng.choice(n, 100, replace=False)] + 0.05 * rng.standard_normal((100, x.shape[1])).astype(np.float32)
    exact = ids[np.argsort(-(queries @ x.T), axis=1)[:, :10]]
    found = index.search(queries, 10)[1]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])
    assert recall >= 0.95

    assert np.allclose(index.reconstruct(int(ids[42])), x[42])
    with pytest.raises(RuntimeError):
        index.reconstruct(int(ids[0]) + 1)  # not an id of the index

    path = str(tmp_path / "v.faiss")
    faiss.write_index(index, path)
    loaded = faiss.read_index(path)
    assert is_approximate(loaded) and faiss.downcast_index(loaded).nprobe == faiss.downcast_index(index).nprobe
    assert np.array_equal(loaded.search(queries, 10)[1], index.search(queries, 10)[1])
    assert np.allclose(loaded.reconstruct_batch(ids[600:603]), x[600:603])  # the direct map survives


def test_segments_switch_to_ivf_and_deletes_are_merged_away(tmp_path):
    """Through the store's writer: a large segment is IVF; deleting most of it rewrites it small and exact."""
    from embeddings.stores.embedded.store import MAX_DELETED, EmbeddedStore, Manifest
    from embeddings.types import Chunk, Document

    from .support.stores import all_ids

    dim, per_doc = 32, 30
    x = clustered(40 * per_doc, dim)
    store = EmbeddedStore(tmp_path, flat_limit=600)
    with store.writer(manifest=Manifest(model="fake", dim=dim)) as writer:
        for d in range(40):
            text = " ".join(f"w{d}_{i}" for i in range(per_doc))
            doc = Document(f"doc{d}.txt", text, f"Doc {d}", f"h{d}", None, None, {})
            chunks = [Chunk(doc.source, doc.title, 0, 1, text[0:1]) for _ in range(per_doc)]
            writer.add(doc, chunks, x[d * per_doc : (d + 1) * per_doc])
        writer.commit(("/nowhere",))
    view = store.view()
    (segment,) = view.segments
    assert is_approximate(segment.index) and len(view) == 1200
    assert np.allclose(view.vectors(all_ids(view)[:5]), x[:5], atol=1e-6)

    with store.writer(manifest=view.manifest) as writer:
        for d in range(35):
            writer.remove(f"doc{d}.txt")
        writer.commit(("/nowhere",))
    small = store.view()
    assert MAX_DELETED < 35 / 40 and len(small) == 150
    (segment,) = small.segments  # rewritten: only the live chunks, exact again
    assert not is_approximate(segment.index) and len(segment) == 150
    ids = all_ids(small)
    assert np.allclose(small.vectors(ids[:3]), x[35 * per_doc : 35 * per_doc + 3], atol=1e-6)
    assert small.dense_search(x[35 * per_doc], 1)[0][0] == ids[0]

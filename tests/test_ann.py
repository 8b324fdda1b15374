"""The approximate (IVF) index: recall against exact search, deletion, reconstruct, save -> load."""

from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from embeddings.store import (  # noqa: E402
    _needs_rebuild,
    _remove_ids,
    build_faiss_index,
    is_approximate,
)


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
    gone = ids[:500]
    _remove_ids(index, gone)
    assert index.ntotal == n - 500
    assert not set(index.search(x[:500], 10)[1].ravel().tolist()) & set(gone.tolist())
    with pytest.raises(RuntimeError):
        index.reconstruct(int(ids[0]))
    assert np.allclose(index.reconstruct(int(ids[600])), x[600])

    path = str(tmp_path / "v.faiss")
    faiss.write_index(index, path)
    loaded = faiss.read_index(path)
    assert is_approximate(loaded) and faiss.downcast_index(loaded).nprobe == faiss.downcast_index(index).nprobe
    assert np.array_equal(loaded.search(queries, 10)[1], index.search(queries, 10)[1])
    assert np.allclose(loaded.reconstruct(int(ids[600])), x[600])
    _remove_ids(loaded, ids[500:510])  # the direct map survives the round trip
    assert loaded.ntotal == n - 510


def test_rebuild_policy_has_slack():
    flat = build_faiss_index(clustered(100), np.arange(100), flat_limit=5000)
    assert not _needs_rebuild(flat, 4999, 5000) and _needs_rebuild(flat, 5000, 5000)
    ivf = build_faiss_index(clustered(6000), np.arange(6000), flat_limit=5000)
    assert not _needs_rebuild(ivf, 3000, 5000)  # no flapping just below the limit
    assert _needs_rebuild(ivf, 2000, 5000)
    assert _needs_rebuild(ivf, 6000 * 20, 5000)  # grown far beyond what it was trained for


def test_writer_switches_to_ivf_and_back(tmp_path):
    """Through IndexWriter/commit: past the limit the generation is IVF; deletions and reads keep working."""
    from embeddings.store import IndexWriter, Manifest, open_snapshot
    from embeddings.types import Chunk, Document

    dim, per_doc = 32, 30
    x = clustered(40 * per_doc, dim)
    manifest = Manifest(model="fake", dim=dim)
    writer = IndexWriter(tmp_path, None, manifest, flat_limit=600)
    for d in range(40):
        text = " ".join(f"w{d}_{i}" for i in range(per_doc))
        doc = Document(f"doc{d}.txt", text, f"Doc {d}", f"h{d}", None, None, {})
        chunks = [Chunk(doc.source, doc.title, 0, 1, text[0:1]) for _ in range(per_doc)]
        writer.add(doc, chunks, x[d * per_doc : (d + 1) * per_doc])
    writer.commit(("/nowhere",))
    snap = open_snapshot(tmp_path)
    assert is_approximate(snap.faiss_index) and len(snap) == 1200
    assert np.allclose(snap.vectors(snap.ids[:5]), x[:5], atol=1e-6)

    writer = IndexWriter(tmp_path, snap, snap.manifest, flat_limit=600)
    for d in range(35):
        writer.remove(f"doc{d}.txt")
    writer.commit(("/nowhere",))
    small = open_snapshot(tmp_path)
    assert not is_approximate(small.faiss_index) and len(small) == 150
    assert np.allclose(small.vectors(small.ids[:3]), x[35 * per_doc : 35 * per_doc + 3], atol=1e-6)
    _, found = small.search(x[35 * per_doc : 35 * per_doc + 1], 1)
    assert found[0, 0] == small.ids[0]

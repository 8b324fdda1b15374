"""Distributed embedding on a real local Ray cluster gives the vectors of the plain run."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, SEEDS


def test_nothing_imports_ray_or_milvus_until_asked():
    code = (
        "import sys, embeddings, embeddings.ray_embed, embeddings.milvus_store, embeddings.migrate\n"
        "print(sorted(m for m in ('ray', 'pymilvus', 'milvus_lite') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason='--ray needs pip install -e ".[ray]"')
    from embeddings.ray_embed import connect

    connect("local", num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_embeds_the_seed_chunks_as_the_plain_run(ray_local, seed_index, embedder):
    from embeddings import open_snapshot
    from embeddings.ray_embed import RayEmbedder

    snap = open_snapshot(seed_index)
    chunks = snap.chunks()
    remote = RayEmbedder(embedder, concurrency=2, batch_size=8)
    vectors = remote.embed_documents([c.text for c in chunks])
    plain = snap.vectors(snap.ids)
    assert vectors.shape == plain.shape
    cosines = np.sum(vectors * plain, axis=1)
    assert cosines.min() >= 0.999, cosines.min()
    assert np.allclose(remote.embed_queries(["Wer ist Li Shangfu?"]), embedder.embed_queries(["Wer ist Li Shangfu?"]))
    assert remote.embed_documents([]).shape == (0, embedder.dim)


@pytest.mark.slow
def test_an_index_run_with_ray_stores_the_plain_runs_vectors(ray_local, tmp_path, seed_index, embedder):
    """``rag index --ray``'s path: the indexer with a RayEmbedder in place of the model, all texts in one job."""
    from embeddings import index_paths, open_snapshot
    from embeddings.ray_embed import RayEmbedder

    report = index_paths([SEEDS], tmp_path / "index", RayEmbedder(embedder, concurrency=2), batch_size=100_000)
    plain, remote = open_snapshot(seed_index), open_snapshot(tmp_path / "index")
    assert report.chunks_embedded > 0
    key = {(r.source, r.start): i for i, r in plain.rows.items()}
    assert sorted(key) == sorted((r.source, r.start) for r in remote.rows.values())
    ids = [int(i) for i in remote.ids]
    pairs = [key[(remote.rows[i].source, remote.rows[i].start)] for i in ids]
    cosines = np.sum(remote.vectors(ids) * plain.vectors(pairs), axis=1)
    assert cosines.min() >= 0.999, cosines.min()

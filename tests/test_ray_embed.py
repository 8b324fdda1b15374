"""Distributed embedding on a real local Ray cluster gives the vectors of the plain run."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, SEEDS


def test_nothing_imports_ray_or_milvus_until_asked():
    code = (
        "import sys, embeddings, embeddings.model.ray_embed\n"
        "import embeddings.stores.milvus.store, embeddings.stores.migrate\n"
        "print(sorted(m for m in ('ray', 'pymilvus', 'milvus_lite') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason='--ray needs pip install -e ".[ray]"')
    from embeddings.model.ray_embed import connect

    connect("local", num_cpus=2)
    yield ray
    ray.shutdown()


def _all(view) -> list[int]:
    return [i for source in sorted(view.manifest.files) for i in view.ids_of(source)]


@pytest.mark.slow
def test_ray_embeds_the_seed_chunks_as_the_plain_run(ray_local, seed_index, embedder):
    from embeddings.model.ray_embed import RayEmbedder
    from embeddings.stores.embedded.store import EmbeddedStore

    view = EmbeddedStore(seed_index).view()
    ids = _all(view)
    remote = RayEmbedder(embedder, concurrency=2, batch_size=8)
    vectors = remote.embed_documents([view.chunk(i).text for i in ids])
    plain = view.vectors(ids)
    assert vectors.shape == plain.shape
    cosines = np.sum(vectors * plain, axis=1)
    assert cosines.min() >= 0.999, cosines.min()
    assert np.allclose(remote.embed_queries(["Wer ist Li Shangfu?"]), embedder.embed_queries(["Wer ist Li Shangfu?"]))
    assert remote.embed_documents([]).shape == (0, embedder.dim)


@pytest.mark.slow
def test_an_index_run_with_ray_stores_the_plain_runs_vectors(ray_local, tmp_path, seed_index, embedder):
    """``rag index --ray``'s path: the indexer with a RayEmbedder in place of the model, all texts in one job."""
    from embeddings import index_paths
    from embeddings.model.ray_embed import RayEmbedder
    from embeddings.stores.embedded.store import EmbeddedStore

    report = index_paths([SEEDS], tmp_path / "index", RayEmbedder(embedder, concurrency=2), batch_size=100_000)
    plain, remote = EmbeddedStore(seed_index).view(), EmbeddedStore(tmp_path / "index").view()
    assert report.chunks_embedded > 0
    key = {(c.source, c.start): i for i, c in ((i, plain.chunk(i)) for i in _all(plain))}
    ids = _all(remote)
    assert sorted(key) == sorted((remote.row(i).source, remote.row(i).start) for i in ids)
    pairs = [key[(remote.row(i).source, remote.row(i).start)] for i in ids]
    cosines = np.sum(remote.vectors(ids) * plain.vectors(pairs), axis=1)
    assert cosines.min() >= 0.999, cosines.min()


@pytest.mark.slow
def test_rag_index_with_ray_gives_the_plain_indexs_vectors(ray_local, tmp_path, seed_index, model_cache, capsys):
    from embeddings.stores.embedded.store import EmbeddedStore
    from ui.cli import main

    index = tmp_path / "index"
    argv = ["index", str(SEEDS), "--index-dir", str(index), "--cache-dir", str(model_cache), "--ray"]
    assert main([*argv, "--ray-actors", "2"]) == 0
    assert "chunks embedded" in capsys.readouterr().out
    plain, remote = EmbeddedStore(seed_index).view(), EmbeddedStore(index).view()
    assert sorted(plain.manifest.files) == sorted(remote.manifest.files)
    for source in plain.manifest.files:
        a, b = plain.vectors(plain.ids_of(source)), remote.vectors(remote.ids_of(source))
        assert a.shape == b.shape and np.sum(a * b, axis=1).min() >= 0.999, source

"""The index: incremental updates, no duplicates, nothing stale, and a faithful save -> load."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from embeddings import IndexMismatchError, index_paths, open_snapshot

from .support.stores import all_ids


class CountingEmbedder:
    """Wraps an embedder and counts the texts it embeds (the vectors are the inner one's)."""

    def __init__(self, inner):
        self.inner = inner
        self.model_id, self.backend = inner.model_id, inner.backend
        self.embedded = 0

    @property
    def dim(self):
        return self.inner.dim

    def embed_documents(self, texts):
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)


def _invariants(index_dir, corpus_files: set[str]):
    snap = open_snapshot(index_dir)
    assert set(snap.documents) == corpus_files
    assert set(snap.manifest.files) == corpus_files
    ids = all_ids(snap)
    assert len(ids) == len(set(ids)) == len(snap)
    seen = set()
    for i in ids:
        chunk = snap.chunk(i)
        key = (chunk.source, chunk.start, chunk.end)
        assert key not in seen, f"duplicate chunk {key}"
        seen.add(key)
        assert snap.documents[chunk.source].text[chunk.start : chunk.end] == chunk.text
    return snap


def test_incremental_add_change_delete(tmp_path, corpus, fake_embedder):
    counting = CountingEmbedder(fake_embedder)
    index_dir = tmp_path / "index"
    first = index_paths([corpus], index_dir, counting)
    assert len(first.added) == 5 and first.chunks_embedded > 0 and first.sentences_embedded > first.chunks_embedded
    assert counting.embedded == first.chunks_embedded + first.sentences_embedded
    names = {p.name for p in corpus.iterdir()}
    _invariants(index_dir, names)

    counting.embedded = 0
    again = index_paths([corpus], index_dir, counting)
    assert counting.embedded == 0 and again.unchanged and not (again.added or again.updated or again.removed)
    assert again.generation == first.generation  # nothing written either

    # change one file: only its new text is embedded
    target = corpus / "004_35a91f1ce311ecb5.txt"
    target.write_text(target.read_text(encoding="utf-8") + "\nNeuer Absatz: Belousow reiste am Dienstag ab.\n")
    changed = index_paths([corpus], index_dir, counting)
    assert changed.updated == ("004_35a91f1ce311ecb5.txt",)
    assert 1 <= changed.chunks_embedded <= 2 and changed.chunks_reused > 0
    assert changed.sentences_embedded == 1  # the new paragraph's one sentence; the others' vectors are stored
    assert counting.embedded == changed.chunks_embedded + changed.sentences_embedded

    # add a file, delete another
    (corpus / "new.md").write_text("# Neu\n\nEin ganz neuer Artikel über Kasachstan und Tokajew.\n")
    (corpus / "000_1549794ad23df435.txt").unlink()
    report = index_paths([corpus], index_dir, counting)
    assert report.added == ("new.md",) and report.removed == ("000_1549794ad23df435.txt",)
    snap = _invariants(index_dir, {p.name for p in corpus.iterdir()})

    # the deleted file is never retrieved again
    query = fake_embedder.embed_queries(["Li Shangfu Verteidigungsminister Putin Moskau"])
    found = snap.dense_search(query[0], len(snap))
    assert len(found) == len(snap)
    assert all(snap.chunk(i).source != "000_1549794ad23df435.txt" for i, _ in found)


def test_copy_of_a_file_embeds_nothing(tmp_path, corpus, fake_embedder):
    counting = CountingEmbedder(fake_embedder)
    index_dir = tmp_path / "index"
    index_paths([corpus], index_dir, counting)
    shutil.copy(corpus / "003_5d407fa9e5e9a813.txt", corpus / "copy.txt")
    counting.embedded = 0
    report = index_paths([corpus], index_dir, counting)
    assert report.added == ("copy.txt",) and counting.embedded == 0


def test_order_of_runs_does_not_matter(tmp_path, corpus, fake_embedder):
    """Index in two different orders of additions; both end with the same chunks."""
    a, b = tmp_path / "a", tmp_path / "b"
    files = sorted(corpus.iterdir())
    half = tmp_path / "half"
    half.mkdir()
    for f in files[:2]:
        shutil.copy(f, half / f.name)
    index_paths([half], a, fake_embedder)
    index_paths([corpus], a, fake_embedder)
    index_paths([corpus], b, fake_embedder)
    index_paths([corpus], b, fake_embedder)

    def content(path):
        snap = open_snapshot(path)
        return sorted((c.source, c.start, c.end) for c in map(snap.chunk, all_ids(snap)))

    assert content(a) == content(b)


def test_save_load_gives_identical_results(fake_index, fake_embedder):
    one, two = open_snapshot(fake_index), open_snapshot(fake_index)
    queries = fake_embedder.embed_queries(["When did Shoigu visit Beijing?", "Wer ist Kirby?"])
    for q in queries:
        assert one.dense_search(q, 10) == two.dense_search(q, 10)
    assert [one.chunk(i).text for i in all_ids(one)] == [two.chunk(i).text for i in all_ids(two)]
    # stored vectors are the model's vectors of the chunk texts
    some = all_ids(one)[:3]
    fresh = fake_embedder.embed_documents([one.chunk(i).text for i in some])
    assert np.allclose(one.vectors(some), fresh, atol=1e-5)


def test_other_model_needs_rebuild(tmp_path, fake_index, fake_embedder):
    index_dir = tmp_path / "index"
    shutil.copytree(fake_index, index_dir)

    class Other(CountingEmbedder):
        pass

    other = Other(fake_embedder)
    other.model_id = "some-other-model"
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        index_paths(None, index_dir, other)


@pytest.mark.slow
def test_stored_vectors_are_the_real_models_vectors(seed_index, embedder):
    """The real model reproduces the vectors it stored (one text per pass, so no batch mates change them)."""
    snap = open_snapshot(seed_index)
    some = all_ids(snap)[:5]
    assert np.allclose(snap.vectors(some), embedder.embed_documents([snap.chunk(i).text for i in some]), atol=1e-5)


def test_a_fake_index_is_never_taken_for_a_real_one(tmp_path, fake_index, monkeypatch):
    """The fake's index names its model and backend: without the fake registered it cannot be read, and the
    real model cannot add to it."""
    from embeddings import Embedder
    from embeddings.model import encoder
    from embeddings.stores.embedded.verify import manifest_model

    index_dir = tmp_path / "index"
    shutil.copytree(fake_index, index_dir)
    manifest = open_snapshot(index_dir).manifest
    assert (manifest.model, manifest.backend) == ("fake-hashed-words", "fake")
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        index_paths(None, index_dir, Embedder())
    monkeypatch.delitem(encoder.PLUGIN_BACKENDS, "fake")
    with pytest.raises(IndexMismatchError, match="cannot be loaded here"):
        manifest_model(manifest, tmp_path / "cache")

"""The store contract (tests/store_contract.py) for the embedded store, and what only it promises:
an update writes one small segment, readers reuse the segments they have, segments get merged."""

from __future__ import annotations

import json

import pytest

from embeddings.stores.embedded.store import MAX_SEGMENTS, EmbeddedStore
from embeddings.stores.embedded.verify import check_index

from .store_contract import ARTICLES, StoreContract, content, write


class TestEmbeddedStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        return EmbeddedStore(tmp_path / "index")


def _segments(index) -> list[str]:
    live = (index / "CURRENT").read_text().strip()
    return [s["name"] for s in json.loads((index / live / "manifest.json").read_text())["segments"]]


def test_an_update_writes_only_the_changed_file_and_readers_reuse_the_rest(tmp_path):
    index = tmp_path / "index"
    store = EmbeddedStore(index)
    first = write(store, ARTICLES)
    (base,) = first.segments
    base_files = {p.name: p.stat().st_mtime_ns for p in (index / base.name).iterdir()}
    second = write(store, {"markt.txt": "Der Markt bleibt. Er ist klein."})
    assert _segments(index) == [base.name, second.segments[1].name]
    assert second.segments[0] is base  # the same opened segment: nothing re-read, nothing rebuilt
    assert len(second.segments[1]) == 2  # the new segment holds only the changed file's chunks
    assert {p.name: p.stat().st_mtime_ns for p in (index / base.name).iterdir()} == base_files
    assert set(second.manifest.segments[0].deleted) == set(first.ids_of("markt.txt"))
    assert check_index(index).ok


def test_many_small_updates_are_merged_and_old_segments_collected(tmp_path):
    index = tmp_path / "index"
    store = EmbeddedStore(index)
    write(store, ARTICLES)
    for n in range(MAX_SEGMENTS + 2):
        view = write(store, {f"neu{n}.txt": f"Artikel Nummer {n}. Er handelt von Booten."})
        assert len(view.segments) <= MAX_SEGMENTS
    assert len(view.documents) == len(ARTICLES) + MAX_SEGMENTS + 2
    assert content(view) == content(EmbeddedStore(index).view())
    # only the segments the last two generations list are on disk
    kept = set(_segments(index))
    previous = sorted(p.name for p in index.glob("gen-*"))[0]
    kept |= {s["name"] for s in json.loads((index / previous / "manifest.json").read_text())["segments"]}
    assert {p.name for p in index.glob("seg-*")} == kept
    assert check_index(index).ok


def _write_format_2(index, docs, embedder) -> None:
    """An index folder as the version before segments wrote it (one full copy per generation)."""
    import hashlib
    import sqlite3

    import faiss
    import numpy as np

    from embeddings import ChunkingConfig, chunk_document
    from embeddings.stores.manifest import file_sha256

    gen = index / "gen-000001"
    gen.mkdir(parents=True)
    con = sqlite3.connect(gen / "chunks.sqlite")
    con.executescript(
        "CREATE TABLE documents (source TEXT PRIMARY KEY, title TEXT, date TEXT, date_origin TEXT, content_hash TEXT,"
        " text TEXT, metadata TEXT); CREATE TABLE chunks (id INTEGER PRIMARY KEY, source TEXT, start INTEGER,"
        " end INTEGER, text_hash TEXT);"
    )
    flat, next_id, files = faiss.IndexIDMap2(faiss.IndexFlatIP(embedder.dim)), 0, {}
    for doc in docs:
        chunks = chunk_document(doc, ChunkingConfig())
        con.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?)",
            (doc.source, doc.title, None, "", doc.content_hash, doc.text, "{}"),
        )
        for c in chunks:
            con.execute("INSERT INTO chunks VALUES (?,?,?,?,?)", (next_id, doc.source, c.start, c.end, c.text_hash))
            flat.add_with_ids(np.asarray(embedder.embed_documents([c.text]), np.float32), np.asarray([next_id]))
            next_id += 1
        files[doc.source] = {"sha256": hashlib.sha256(doc.text.encode()).hexdigest(), "chunks": len(chunks)}
    con.commit()
    con.close()
    faiss.write_index(flat, str(gen / "vectors.faiss"))
    manifest = {"model": embedder.model_id, "dim": embedder.dim, "backend": embedder.backend, "format": 2,
                "files": files, "next_id": next_id, "generation": 1, "roots": [],
                "checksums": {f: file_sha256(gen / f) for f in ("chunks.sqlite", "vectors.faiss")}}  # fmt: skip
    (gen / "manifest.json").write_text(json.dumps(manifest))
    (index / "CURRENT").write_text("gen-000001\n")


def test_an_index_of_the_format_before_segments_is_upgraded_without_embedding(tmp_path, corpus, fake_embedder):
    from embeddings import IndexMismatchError, index_paths, read_document

    from .test_index import CountingEmbedder

    index = tmp_path / "index"
    docs = [read_document(p, p.name) for p in sorted(corpus.iterdir())]
    _write_format_2(index, docs, fake_embedder)
    with pytest.raises(IndexMismatchError, match="run `rag index` to upgrade"):
        EmbeddedStore(index).view()
    counting = CountingEmbedder(fake_embedder)
    report = index_paths([corpus], index, counting)
    assert report.chunks_embedded == 0 and report.chunks_reused == report.chunks_total > 0
    assert counting.embedded == report.sentences_embedded  # the old format kept no sentence vectors
    view = EmbeddedStore(index).view()
    assert set(view.documents) == {d.source for d in docs} and check_index(index).ok

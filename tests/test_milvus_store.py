"""The Milvus store on the real engine (Milvus Lite 2.5.1 in a temporary folder).

The seed index is built with the fake embedder in the embedded store and copied into Milvus
with :func:`embeddings.stores.migrate.migrate` (so every test also exercises the migration); the
equivalence with the embedded store's own search uses the real model.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason='the Milvus store needs pip install -e ".[milvus]"')

from embeddings import IndexLockedError, IndexMismatchError, IndexNotFoundError
from embeddings.language.analysis import fold, terms, words
from embeddings.language.entities import document_names
from embeddings.stores.api import Store, StoreView, StoreWriter
from embeddings.stores.embedded.store import EmbeddedStore
from embeddings.stores.migrate import migrate
from embeddings.stores.milvus.collections import MilvusUnavailableError
from embeddings.stores.milvus.store import MilvusStore
from embeddings.types import Document

pytestmark = pytest.mark.slow

QUESTIONS = [
    "Wann war Schoigu in Peking?",
    "Was sagte Kirby über China?",
    "Welche Länder gehören zur Shanghaier Organisation?",
    "Putin Xi Treffen Usbekistan",
    "Verteidigungsminister Besuch",
    "Who is Li Shangfu?",
]


def embedded(path: Path) -> EmbeddedStore:
    return EmbeddedStore(path)


def reference_bm25(texts: list[str], k1: float = 1.2, b: float = 0.75):
    """Textbook Okapi BM25 over ``terms()``: ``(score(query_terms) -> array, idf: dict)``."""
    docs = [Counter(terms(t)) for t in texts]
    lengths = np.array([sum(d.values()) for d in docs], dtype=np.float64)
    avg = lengths.mean()
    df = Counter(t for d in docs for t in d)
    idf = {t: float(np.log(1 + (len(docs) - n + 0.5) / (n + 0.5))) for t, n in df.items()}

    def score(query_terms: list[str]) -> np.ndarray:
        out = np.zeros(len(docs))
        for t in set(query_terms):
            if t in idf:
                tf = np.array([d.get(t, 0) for d in docs], dtype=np.float64)
                out += idf[t] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths / avg))
        return out

    return score, idf


def top(scores: np.ndarray, k: int) -> list[int]:
    """Positions of the ``k`` best positive scores."""
    order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > 0]
    return order[:k]


@pytest.fixture
def seeds_in_milvus(tmp_path, fake_index, fake_embedder) -> Iterator[MilvusStore]:
    store = MilvusStore(f"milvus:{tmp_path / 'news.db'}")
    migrate(embedded(fake_index), store)
    yield store
    store.close()


def _key(view, chunk_id: int) -> tuple[str, int]:
    row = view.row(chunk_id)
    return row.source, row.start


def test_it_is_a_store_with_views_and_writers(seeds_in_milvus):
    store = seeds_in_milvus
    assert isinstance(store, Store)
    assert isinstance(store.view(), StoreView)
    with store.writer(manifest=store.manifest()) as w:
        assert isinstance(w, StoreWriter)
        assert not w.changed
    # what rag may call on a view beyond the protocol (rows, ...): everything the embedded view offers
    from embeddings.stores.embedded.store import EmbeddedView

    embedded_only = {"document", "path", "segments"}  # its folder and segments, for rag check
    public = {n for n in dir(EmbeddedView) if not n.startswith("_")} - embedded_only
    view = store.view()
    assert {n for n in public if not hasattr(view, n)} == set()


def test_migration_copies_documents_chunks_vectors_and_manifest_without_embedding(
    seeds_in_milvus, fake_index, fake_embedder
):
    before = fake_embedder.embedded
    snap = embedded(fake_index).view()
    view = seeds_in_milvus.view()
    assert fake_embedder.embedded == before  # the fixture's migration embedded nothing either
    m = view.manifest
    assert (m.model, m.dim, m.backend, m.chunking, m.roots) == (
        snap.manifest.model,
        snap.manifest.dim,
        snap.manifest.backend,
        snap.manifest.chunking,
        snap.manifest.roots,
    )
    assert set(m.files) == set(snap.manifest.files)
    for source, entry in snap.manifest.files.items():
        doc = snap.documents[source]
        expected = {"title": doc.title, "date": doc.date.isoformat() if doc.date else "", **entry}
        assert m.files[source] == {k: v for k, v in expected.items() if k != "segment"}
    assert len(view) == len(snap)
    for source, doc in snap.documents.items():
        assert view.documents[source] == doc
        ids, old = view.ids_of(source), snap.ids_of(source)
        assert [view.chunk(i) for i in ids] == [snap.chunk(i) for i in old]
        for i in ids:  # offsets round-trip
            c = view.chunk(i)
            assert doc.text[c.start : c.end] == c.text
        assert np.allclose(view.vectors(ids), snap.vectors(old), atol=1e-6)
    assert seeds_in_milvus.verify() == []


def test_dense_search_is_exact_cosine_and_honours_sources(seeds_in_milvus):
    view = seeds_in_milvus.view()
    source = sorted(view.documents)[1]
    ids = view.ids_of(source)
    vectors = view.vectors(ids)
    hits = view.dense_search(vectors[0], 5)
    assert hits[0][0] == ids[0] and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    other = sorted(view.documents)[0]
    limited = view.dense_search(vectors[0], 50, frozenset({other}))
    assert limited and {view.row(i).source for i, _ in limited} == {other}
    assert len(limited) == len(view.ids_of(other))
    assert view.dense_search(vectors[0], 5, frozenset()) == []


def test_lexical_search_agrees_with_textbook_bm25_over_the_projects_terms(seeds_in_milvus):
    view = seeds_in_milvus.view()
    ids = sorted(i for s in view.documents for i in view.ids_of(s))
    score, idf = reference_bm25([view.chunk(i).text for i in ids])
    overlaps = []
    for q in QUESTIONS:
        ours = [ids[p] for p in top(score(terms(q)), 10)]
        theirs = [i for i, _ in view.lexical_search(terms(q), 10)]
        assert theirs, q
        overlaps.append(len(set(ours) & set(theirs)) / max(len(ours), 1))
        assert theirs[0] in ours[:3], q  # the best chunk is among the reference's first three
    assert np.mean(overlaps) >= 0.9, overlaps
    for term in {t for q in QUESTIONS for t in terms(q)} | {"wortdasesnichtgibt"}:
        expected, got = idf.get(term), view.idf(term)
        assert (got is None) == (expected is None), term
        if expected is not None:
            assert got == pytest.approx(expected, rel=1e-5), term
    assert view.max_idf == pytest.approx(float(np.log(1 + (len(ids) - 0.5) / 1.5)), rel=1e-5)
    assert view.lexical_search([], 10) == []


def test_parts_hold_every_word_and_the_names_of_each_document(seeds_in_milvus):
    view = seeds_in_milvus.view()
    docs = list(view.documents.values())
    (part,) = view.parts()
    assert set(part.words) == {fold(w) for d in docs for w in words(d.text)} - {""}
    assert sorted(part.names) == sorted(tuple(document_names(d)) for d in docs)
    assert seeds_in_milvus.view().parts()[0] is part  # cached by key


def test_an_update_reads_one_new_part_and_reuses_the_others(seeds_in_milvus, fake_embedder):
    store = seeds_in_milvus
    old = store.view()
    (first,) = old.parts()
    new_doc = Document(
        "neu.txt", "Die Fähre Ostwind wurde in Wismar getauft. Reederin Anna Berg sprach.", "Neu", "e" * 64
    )
    with store.writer(manifest=old.manifest) as w:
        _add(w, old, new_doc, fake_embedder)
        w.commit(old.manifest.roots)
    base, added = store.view().parts()
    assert base is first
    assert "wismar" in added.words and "wismar" not in first.words
    assert added.names == (tuple(document_names(new_doc)),)


def test_ids_with_text_finds_stored_texts_only(seeds_in_milvus):
    view = seeds_in_milvus.view()
    source = sorted(view.documents)[0]
    ids = view.ids_of(source)
    hashes = [view.row(i).text_hash for i in ids]
    found = view.ids_with_text([*hashes, "0" * 40])
    assert set(found) == set(hashes)
    assert all(view.row(found[h]).text_hash == h for h in hashes)


def _changed(doc: Document, extra: str) -> Document:
    return dataclasses.replace(doc, text=doc.text + extra, content_hash="f" * 64)


def _add(writer, view, doc: Document, embedder, file_info: dict | None = None) -> int:
    from embeddings.chunking import ChunkingConfig, chunk_document

    chunks = chunk_document(doc, ChunkingConfig(**view.manifest.chunking))
    writer.add(doc, chunks, embedder.embed_documents([c.text for c in chunks]), file_info=file_info)
    return len(chunks)


def test_an_update_changes_one_document_and_keeps_every_other_id(seeds_in_milvus, fake_embedder):
    store = seeds_in_milvus
    old = store.view()
    first, second, *rest = sorted(old.documents)
    with store.writer(manifest=old.manifest) as w:
        assert w.remove(first) == len(old.ids_of(first))
        changed = _changed(old.documents[second], "\n\nEin neuer Absatz über Quallen im Nordmeer.")
        added = _add(w, old, changed, fake_embedder, {"size": 5, "mtime_ns": 7})
        assert w.count() == len(old) - len(old.ids_of(first)) - len(old.ids_of(second)) + added
        manifest = w.commit(old.manifest.roots)
    new = store.view()
    assert new.version != old.version and manifest.generation == new.manifest.generation
    assert first not in new.documents and first not in new.manifest.files
    assert new.documents[second].text.endswith("Nordmeer.")
    date = changed.date.isoformat() if changed.date else ""
    assert new.manifest.files[second] == {
        "sha256": "f" * 64,
        "chunks": added,
        "size": 5,
        "mtime_ns": 7,
        "title": changed.title,
        "date": date,
    }
    for source in rest:
        assert new.ids_of(source) == old.ids_of(source)
    assert not set(new.ids_of(second)) & set(old.ids_of(second))
    assert len(new) == sum(len(new.ids_of(s)) for s in new.documents)
    assert [i for i, _ in new.lexical_search(terms("Quallen Nordmeer"), 3)][:1] == new.ids_of(second)[-1:]
    assert new.idf("quall") is not None and old.idf("quall") is None
    assert store.verify() == []


def test_a_reader_keeps_its_consistent_view_during_a_write(seeds_in_milvus, fake_embedder):
    """Staged rows are invisible to every view; after the commit, a view of the old version still
    answers as before (until the commit after next), and a new view sees the new version."""
    store = seeds_in_milvus
    old = store.view()
    first, second = sorted(old.documents)[:2]
    question = "Quallen im Nordmeer und Schoigu in Peking"
    vector = fake_embedder.embed_queries([question])[0]

    def answers(view):
        dense = view.dense_search(vector, 20)
        lexical = view.lexical_search(terms(question), 20)
        return (
            [_key(view, i) for i, _ in dense],
            [_key(view, i) for i, _ in lexical],
            sorted(view.documents),
            [view.chunk(i) for i in view.ids_of(first)],
            view.idf("quall"),
            len(view),
        )

    before = answers(old)
    with store.writer(manifest=old.manifest) as w:
        w.remove(first)
        _add(w, old, _changed(old.documents[second], "\n\nQuallen im Nordmeer, Quallen überall."), fake_embedder)
        during = store.view()
        assert during.version == old.version
        assert answers(during) == before and answers(old) == before
        w.commit(old.manifest.roots)
    assert answers(old) == before
    new = store.view()
    assert answers(new) != before and first not in new.documents


def test_staged_rows_of_a_failed_writer_never_show_and_are_cleaned_up(seeds_in_milvus, fake_embedder):
    store = seeds_in_milvus
    old = store.view()
    source = sorted(old.documents)[0]
    with pytest.raises(RuntimeError, match="disk full"), store.writer(manifest=old.manifest) as w:
        w.remove(source)
        _add(w, old, _changed(old.documents[sorted(old.documents)[1]], " Nachtrag."), fake_embedder)
        raise RuntimeError("disk full")
    assert store.version() == old.version
    assert sorted(store.view().documents) == sorted(old.documents)
    with store.writer(manifest=old.manifest) as w:  # the next writer removes what the failed one left
        chunks = store.name(old.family, "chunks")
        assert store.query(chunks, f"born > {old.generation}", ["id"]) == []
    assert store.verify() == []


def test_a_rebuild_goes_to_new_collections_and_the_model_is_checked(seeds_in_milvus, fake_embedder):
    store = seeds_in_milvus
    old = store.view()
    other = dataclasses.replace(old.manifest, model="another-model", dim=8)
    with pytest.raises(IndexMismatchError, match="another-model"), store.writer(manifest=other):
        pass
    doc = old.documents[sorted(old.documents)[0]]
    with store.writer(manifest=other, rebuild=True) as w:
        assert w.base is None
        n = len(old.ids_of(doc.source))
        vectors = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
        w.add(doc, [old.chunk(i) for i in old.ids_of(doc.source)], vectors / np.linalg.norm(vectors, axis=1)[:, None])
        w.commit(("/elsewhere",))
    new = store.view()
    assert new.family != old.family and new.manifest.model == "another-model"
    assert list(new.documents) == [doc.source] and new.manifest.roots == ("/elsewhere",)
    assert len(old.dense_search(old.vectors(old.ids_of(doc.source))[0], 5)) == 5  # old family still there
    with store.writer(manifest=other) as w:
        w.remove(doc.source)
        w.commit(())
    assert not any(n.startswith(f"rag_f{old.family}_") for n in store.client.list_collections())


def test_two_stores_on_one_lite_file_see_one_commit(seeds_in_milvus, fake_embedder):
    other = MilvusStore(seeds_in_milvus.spec)
    seen = other.view()
    source = sorted(seen.documents)[0]
    with seeds_in_milvus.writer(manifest=seen.manifest) as w:
        w.remove(source)
        w.commit(seen.manifest.roots)
    assert other.version() == seeds_in_milvus.version() != seen.version
    assert source not in other.view().documents


def test_one_writer_at_a_time(seeds_in_milvus):
    store = seeds_in_milvus
    manifest = store.manifest()
    inside, release = threading.Event(), threading.Event()

    def hold():
        with store.writer(manifest=manifest):
            inside.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert inside.wait(10)
        with pytest.raises(IndexLockedError), MilvusStore(store.spec).writer(manifest=manifest, lock_timeout=0.2):
            pass
    finally:
        release.set()
        t.join()


def test_an_empty_store_says_how_to_build_it(tmp_path):
    store = MilvusStore(f"milvus:{tmp_path / 'empty.db'}")
    assert store.version() is None and store.manifest() is None
    with pytest.raises(IndexNotFoundError, match="rag index"):
        store.view()


def test_dense_and_lexical_rankings_match_the_embedded_store_with_the_real_model(tmp_path, seed_index, embedder):
    """The embedded index of the seeds (real model) copied into Milvus: the exact cosine ranking of the
    embedded store's vectors, and BM25 rankings that agree with textbook BM25 on most of the top ten."""
    source = embedded(seed_index).view()
    store = MilvusStore(f"milvus:{tmp_path / 'real.db'}")
    try:
        migrate(embedded(seed_index), store)
        view = store.view()
        ids = [i for s in sorted(source.documents) for i in source.ids_of(s)]
        keys = [(c.source, c.start) for c in map(source.chunk, ids)]
        matrix = source.vectors(ids)
        score, _ = reference_bm25([source.chunk(i).text for i in ids])
        lexical_overlap = []
        for q, v in zip(QUESTIONS, embedder.embed_queries(QUESTIONS)):
            exact = [keys[p] for p in np.argsort(-(matrix @ v), kind="stable")[:10]]
            assert [_key(view, i) for i, _ in view.dense_search(v, 10)] == exact, q
            ours = {keys[p] for p in top(score(terms(q)), 10)}
            theirs = {_key(view, i) for i, _ in view.lexical_search(terms(q), 10)}
            lexical_overlap.append(len(ours & theirs) / max(1, len(ours)))
        print(f"BM25 top-10 agreement with textbook BM25 (real seeds): {np.mean(lexical_overlap):.3f}")
        assert np.mean(lexical_overlap) >= 0.9, lexical_overlap
    finally:
        store.close()


def test_a_lite_file_open_in_another_process_is_refused_with_the_fix(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "busy.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from pymilvus import MilvusClient; c = MilvusClient({str(path)!r}); print(1, flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "1"
        store = MilvusStore(f"milvus:{path}")
        with pytest.raises(MilvusUnavailableError, match="one process at a time"):
            store.version()
    finally:
        holder.communicate("\n", timeout=30)

"""The contract every store must keep, whatever engine is behind it.

A test module subclasses :class:`StoreContract` and provides a ``store`` fixture that
returns a new, empty store (see ``tests/test_store_contract.py`` for the embedded store).
Everything here goes through the store interface (:mod:`embeddings.stores.api`) only,
with invented articles and random unit vectors: no model, so it runs in the fast tier.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from embeddings import Chunk, Document, Manifest, StoreView
from embeddings.language.analysis import terms

from .support.stores import all_ids

DIM = 16

ARTICLES = {
    "hafen.txt": "Die Fähre Ostwind wurde am Montag in Wismar getauft. Reederin Anna Berg sprach von einem guten Tag.",
    "bahn.txt": "Der neue Zug nach Rostock fährt ab Juni stündlich. Verkehrsminister Jan Holm lobte die Strecke.",
    "wetter.txt": "Ein Sturm traf am Dienstag die Insel Rügen. Meteorologin Eva Lind warnte vor Hochwasser.",
    "markt.txt": "Der Wochenmarkt in Greifswald zieht in die Altstadt. Händler Paul Kern verkauft dort Fisch.",
}


def unit(seed: str) -> np.ndarray:
    """A fixed random unit vector per text (the same text always gets the same vector)."""
    rng = np.random.default_rng(abs(hash(seed)) % (2**32))
    v = rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def document(source: str, text: str) -> tuple[Document, list[Chunk], np.ndarray]:
    """An article cut into its sentences, each sentence one chunk with its own vector."""
    doc = Document(source, text, source.removesuffix(".txt").title(), f"sha-{hash(text) & 0xFFFFFFFF:x}")
    chunks, start = [], 0
    for sentence in text.split(". "):
        end = start + len(sentence)
        chunks.append(Chunk(source, doc.title, start, end, text[start:end]))
        start = end + 2
    return doc, chunks, np.vstack([unit(c.text) for c in chunks])


def write(store, articles: dict[str, str], *, remove=(), roots=("/corpus",)) -> StoreView:
    manifest = store.manifest() or Manifest(model="contract-model", dim=DIM, backend="fake")
    with store.writer(manifest=manifest) as writer:
        for source in remove:
            writer.remove(source)
        for source, text in articles.items():
            writer.add(*document(source, text))
        writer.commit(tuple(roots))
    return store.view()


def content(view: StoreView) -> list[tuple[str, int, int, str]]:
    return sorted((c.source, c.start, c.end, c.text) for c in map(view.chunk, all_ids(view)))


class StoreContract:
    """Add, replace and remove by source; no duplicates; deleted never retrieved; views are consistent."""

    @pytest.fixture
    def store(self, tmp_path):  # pragma: no cover - each store's module provides it
        raise NotImplementedError

    def test_empty_store_has_no_version(self, store):
        assert store.version() is None and store.manifest() is None

    def test_add_then_read_back_through_every_method(self, store):
        view = write(store, ARTICLES)
        assert isinstance(view, StoreView)
        assert set(view.manifest.files) == set(view.documents) == set(ARTICLES)
        assert len(view) == sum(len(document(s, t)[1]) for s, t in ARTICLES.items())
        for source, text in ARTICLES.items():
            assert view.documents[source].text == text
            ids = view.ids_of(source)
            chunks = [view.chunk(i) for i in ids]
            assert [c.start for c in chunks] == sorted(c.start for c in chunks)  # text order
            assert all(text[c.start : c.end] == c.text for c in chunks)
            assert np.allclose(view.vectors(ids), np.vstack([unit(c.text) for c in chunks]), atol=1e-5)
            assert {view.row(i).source for i in ids} == {source}
        probe = document("bahn.txt", ARTICLES["bahn.txt"])[1][1]
        best_id, best_score = view.dense_search(unit(probe.text), 1)[0]
        assert view.chunk(best_id).text == probe.text and best_score == pytest.approx(1.0, abs=1e-4)
        (top_id, _), *_ = view.lexical_search(terms("Sturm auf Rügen"), 3)
        assert view.chunk(top_id).source == "wetter.txt"
        assert view.idf(terms("Rügen")[0]) == pytest.approx(view.max_idf, rel=1e-5)  # one chunk has it
        assert view.idf("wortdasesnichtgibt") is None
        assert view.ids_with_text([probe.text_hash]) and not view.ids_with_text(["0" * 40])
        assert any("wismar" in part.words for part in view.parts())

    def test_replace_a_source_leaves_no_trace_of_the_old_text(self, store):
        write(store, ARTICLES)
        old = document("markt.txt", ARTICLES["markt.txt"])[1]
        new_text = "Der Wochenmarkt bleibt am Hafen. Händlerin Ida Sand verkauft dort Brot."
        view = write(store, {"markt.txt": new_text})
        assert view.documents["markt.txt"].text == new_text
        assert [view.chunk(i).text for i in view.ids_of("markt.txt")] == [
            c.text for c in document("markt.txt", new_text)[1]
        ]
        assert not view.ids_with_text([c.text_hash for c in old if c.text not in new_text])
        assert all(view.chunk(i).text != old[1].text for i, _ in view.dense_search(unit(old[1].text), len(view)))
        assert not any(view.chunk(i).source == "markt.txt" for i, _ in view.lexical_search(terms("Fisch Kern"), 10))

    def test_deleted_is_never_retrieved(self, store):
        write(store, ARTICLES)
        view = write(store, {}, remove=["wetter.txt"])
        assert "wetter.txt" not in view.documents and "wetter.txt" not in view.manifest.files
        assert view.ids_of("wetter.txt") == []
        everything = view.dense_search(unit("Ein Sturm traf am Dienstag die Insel Rügen"), 100)
        assert len(everything) == len(view)
        assert all(view.chunk(i).source != "wetter.txt" for i, _ in everything)
        assert view.lexical_search(terms("Sturm Rügen Meteorologin Hochwasser"), 10) == []
        assert len(all_ids(view)) == len(view)

    def test_sources_filter_both_rankings(self, store):
        view = write(store, ARTICLES)
        only = frozenset({"hafen.txt"})
        dense = view.dense_search(unit("irgendwas"), 10, only)
        assert dense and {view.chunk(i).source for i, _ in dense} == {"hafen.txt"}
        assert view.lexical_search(terms("Sturm Rügen"), 10, only) == []

    @pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
    def test_no_duplicates_in_any_order_of_runs(self, store, order, tmp_path):
        runs = [
            {"hafen.txt": ARTICLES["hafen.txt"], "bahn.txt": ARTICLES["bahn.txt"]},
            {"bahn.txt": ARTICLES["bahn.txt"], "wetter.txt": ARTICLES["wetter.txt"]},
            dict(ARTICLES),
        ]
        for n in order:
            view = write(store, runs[n])
        final = {s: t for run in runs for s, t in run.items()}
        assert content(view) == sorted(
            (c.source, c.start, c.end, c.text) for s, t in final.items() for c in document(s, t)[1]
        )
        assert len(all_ids(view)) == len(set(all_ids(view))) == len(view)

    def test_a_view_stays_consistent_while_a_writer_commits(self, store):
        before = write(store, ARTICLES)
        probe = unit("Die Fähre Ostwind wurde am Montag in Wismar getauft")
        seen = (before.version, before.dense_search(probe, 3), content(before), before.documents["hafen.txt"].text)
        done = threading.Event()

        def writer():
            write(store, {"hafen.txt": "Die Fähre Westwind sank. Niemand kam zu Schaden."}, remove=["bahn.txt"])
            done.set()

        thread = threading.Thread(target=writer)
        thread.start()
        while not done.is_set():  # read while the writer works, and after it committed
            assert (before.version, before.dense_search(probe, 3)) == seen[:2]
        thread.join()
        assert (before.version, before.dense_search(probe, 3), content(before)) == seen[:3]
        assert before.documents["hafen.txt"].text == seen[3]
        after = store.view()
        assert after.version != before.version and "bahn.txt" not in after.documents
        assert after.documents["hafen.txt"].text.startswith("Die Fähre Westwind")

    def test_nothing_is_visible_before_commit(self, store):
        view = write(store, ARTICLES)
        manifest = store.manifest()
        with store.writer(manifest=manifest) as writer:
            writer.remove("hafen.txt")
            writer.add(*document("neu.txt", "Ein neuer Artikel. Er ist kurz."))
            assert store.version() == view.version and "neu.txt" not in store.view().documents
        # left without commit: nothing changed
        assert store.version() == view.version and "hafen.txt" in store.view().documents

    def test_manifest_records_model_roots_and_hashes(self, store):
        view = write(store, ARTICLES, roots=("/a", "/b"))
        m = store.manifest()
        assert (m.model, m.dim, tuple(m.roots)) == ("contract-model", DIM, ("/a", "/b"))
        assert m.files["hafen.txt"]["sha256"] == document("hafen.txt", ARTICLES["hafen.txt"])[0].content_hash
        assert m.files["hafen.txt"]["chunks"] == len(view.ids_of("hafen.txt"))

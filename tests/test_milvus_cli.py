"""``rag --store milvus:…`` and ``rag migrate`` on the real engine (Milvus Lite 2.5.1), with the fake embedder."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pymilvus", reason='the Milvus store needs pip install -e ".[milvus]"')

from ui.cli import main

pytestmark = pytest.mark.slow

QUESTION = "Wann traf Xi Jinping Schoigu?"


def _no_model(*args, **kwargs):
    raise AssertionError("rag migrate must not load a model")


def test_migrate_copies_the_index_without_the_model_and_rag_answers_the_same(
    fake_cli_env, tmp_path, capsys, monkeypatch, fake_embedder
):
    spec = f"milvus:{tmp_path / 'news.db'}"
    assert main(["ask", "--json", QUESTION]) == 0
    embedded = json.loads(capsys.readouterr().out)
    with monkeypatch.context() as patch:
        from embeddings.model import encoder

        patch.setattr(encoder, "load_embedder", _no_model)
        patch.setitem(encoder.PLUGIN_BACKENDS, "fake", _no_model)
        before = fake_embedder.embedded
        assert main(["migrate", "--to", spec]) == 0
        assert fake_embedder.embedded == before
    assert "copied 5 documents" in capsys.readouterr().out
    assert main(["check", "--store", spec]) == 0
    assert "index OK" in capsys.readouterr().out
    assert main(["ask", "--json", "--store", spec, QUESTION]) == 0
    over_milvus = json.loads(capsys.readouterr().out)
    assert over_milvus["text"] == embedded["text"] and over_milvus["abstained"] is embedded["abstained"]
    assert [c["source"] for c in over_milvus["citations"]] == [c["source"] for c in embedded["citations"]]


def test_index_into_milvus_is_incremental(fake_cli_env, corpus, tmp_path, capsys, fake_embedder):
    spec = f"milvus:{tmp_path / 'news.db'}"
    assert main(["migrate", "--to", spec]) == 0  # the fake model is chosen by the index's manifest
    capsys.readouterr()
    (corpus / "neu.txt").write_text("Ein neuer Artikel über Tokajew und Kasachstan.\n", encoding="utf-8")
    (corpus / "001_9e99df9deeaf148b.txt").unlink()
    assert main(["index", "--json", "--store", spec, str(corpus)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == ["neu.txt"] and report["removed"] == ["001_9e99df9deeaf148b.txt"]
    assert len(report["unchanged"]) == 4 and report["chunks_embedded"] >= 1
    from embeddings.language.analysis import terms
    from embeddings.stores.milvus.store import MilvusStore

    store = MilvusStore(spec)
    try:
        view = store.view()
        assert "neu.txt" in view.documents and "001_9e99df9deeaf148b.txt" not in view.documents
        (best, _), *_ = view.lexical_search(terms("Tokajew Kasachstan neuer Artikel"), 3)
        assert view.row(best).source == "neu.txt"
    finally:
        store.close()


def test_a_store_without_an_index_says_how_to_build_it(fake_cli_env, tmp_path, capsys):
    spec = f"milvus:{tmp_path / 'empty.db'}"
    assert main(["ask", "--store", spec, QUESTION]) == 1
    err = capsys.readouterr().err
    assert f"rag index PATH --store {spec}" in err and len(err.strip().splitlines()) == 1

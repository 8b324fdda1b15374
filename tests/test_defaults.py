"""Defaults that work wherever the package is: the checkout's folders, else one user data folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import rag
from embeddings import IndexNotFoundError
from rag.defaults import CHECKOUT, Defaults, defaults, is_checkout

from .conftest import ROOT, SEEDS


def test_in_the_checkout_nothing_moves(monkeypatch):
    monkeypatch.delenv("RAG_HOME", raising=False)
    assert is_checkout() and CHECKOUT == ROOT
    places = defaults()
    assert (places.index_dir, places.corpus, places.cache_dir) == (ROOT / ".rag-index", SEEDS, None)


def test_rag_home_moves_everything_under_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    places = defaults()
    assert places == Defaults(tmp_path / "home")
    assert (places.index_dir, places.corpus, places.cache_dir) == tuple(
        tmp_path / "home" / name for name in ("index", "corpus", "models")
    )
    assert places.index_for(tmp_path / "a" / "news") != places.index_for(tmp_path / "b" / "news")
    assert places.index_for(tmp_path / "a" / "news").parent == tmp_path / "home" / "indexes"


def test_the_demo_corpus_is_copied_once_and_then_left_alone(tmp_path):
    places = Defaults(tmp_path / "home")
    corpus = places.ensure_corpus()
    assert sorted(p.name for p in corpus.iterdir()) == sorted(p.name for p in SEEDS.glob("*.txt"))
    (corpus / "mine.txt").write_text("Mein Artikel.\n", encoding="utf-8")
    (corpus / "000_1549794ad23df435.txt").unlink()
    assert places.ensure_corpus() == corpus and (corpus / "mine.txt").exists()
    assert not (corpus / "000_1549794ad23df435.txt").exists()  # a user's deletion is not undone
    assert [p.name for p in corpus.parent.iterdir()] == ["corpus"]  # no scratch folder left


def test_ask_without_an_index_names_the_command_that_builds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    with pytest.raises(IndexNotFoundError, match=r"no index in .*home/index; build it with `rag index`"):
        rag.ask("When did Shoigu visit Beijing?")
    assert not (tmp_path / "home").exists()  # asking builds nothing


def test_ask_with_a_corpus_indexes_it_first(tmp_path, fake_index, monkeypatch):
    """``corpus=``: the folder is indexed (incrementally) before the answer, into the given index."""
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(SEEDS, corpus)
    shutil.copytree(fake_index, index)
    (corpus / "tromso.txt").write_text("Die Brücke in Tromsø wurde am Montag eröffnet.\n", encoding="utf-8")
    answer = rag.ask("Wann wurde die Brücke in Tromsø eröffnet?", index_dir=index, corpus=corpus)
    assert "tromso.txt" in rag.Engines().get(index).loaded().snapshot.documents
    assert not answer.citations or {c.source for c in answer.citations} <= {p.name for p in corpus.iterdir()}


def test_engines_are_shared_per_index_and_registries_are_independent(fake_index, fake_embedder):
    one, two = rag.Engines(), rag.Engines()
    engine = one.get(fake_index, embedder=fake_embedder)
    assert one.get(fake_index) is engine and one.get(fake_index / ".." / fake_index.name) is engine
    assert two.get(fake_index) is not engine
    assert rag.ask("Wer ist Kirby?", engine=engine).question == "Wer ist Kirby?"


def test_importing_the_packages_changes_no_environment_variable():
    code = (
        "import os; before = dict(os.environ)\n"
        "import embeddings, embeddings.model.onnx_backend, rag, rag.engine, rag.llm.answers, rag.defaults, ui.cli\n"
        "changed = sorted(set(os.environ.items()) ^ set(before.items()))\n"
        "print(changed); raise SystemExit(bool(changed))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORT_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

"""Sentence vectors written at indexing time: answering embeds only the question, and the answers are the
same whether a vector was stored or embedded at question time."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from embeddings import index_paths
from embeddings.chunking import split_sentences
from embeddings.stores.sentences import FILE, SentenceVectors, as_query, model_key, rounded

from .support.fake_embedder import HashEmbedder

QUESTIONS = (
    "Wann besuchte Schoigu Peking?",
    "Who did Putin meet in Moscow?",
    "Wie viele Soldaten wurden genannt?",
)


def test_put_then_get_gives_the_vectors_at_the_stored_precision(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    store = SentenceVectors(tmp_path, "m|b|8", writable=True)
    store.put(["eins", "zwei", as_query("eins")], vectors)
    got = SentenceVectors(tmp_path, "m|b|8").get(["eins", "zwei", "drei", as_query("eins")], 8)
    assert set(got) == {"eins", "zwei", as_query("eins")}  # a query is kept apart from the same text as a document
    assert np.array_equal(got["zwei"], rounded(vectors[1:2])[0])
    assert not np.array_equal(got["eins"], got[as_query("eins")])
    assert store.missing(["zwei", "drei", "drei", "vier"]) == ["drei", "vier"]


def test_an_index_folder_given_by_a_relative_path_is_read(tmp_path, monkeypatch):
    """`rag ask --index-dir .rag-index`: the reader opens the file by URI, which needs an absolute path."""
    (tmp_path / "Index #1").mkdir()
    SentenceVectors(tmp_path / "Index #1", "m|b|8", writable=True).put(["satz"], np.ones((1, 8), dtype=np.float32))
    monkeypatch.chdir(tmp_path)
    assert set(SentenceVectors(Path("Index #1"), "m|b|8").get(["satz"], 8)) == {"satz"}


def test_vectors_of_another_model_are_never_read(tmp_path):
    SentenceVectors(tmp_path, "old|onnx|8", writable=True).put(["satz"], np.ones((1, 8), dtype=np.float32))
    assert SentenceVectors(tmp_path, "new|onnx|8").get(["satz"], 8) == {}
    writer = SentenceVectors(tmp_path, "new|onnx|8", writable=True)  # a writer of the new model starts anew
    assert len(writer) == 0 and writer.missing(["satz"]) == ["satz"]
    assert SentenceVectors(tmp_path, "m|b|16").get(["satz"], 16) == {}


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100])
def test_a_missing_or_damaged_file_reads_as_empty(tmp_path, content):
    assert SentenceVectors(tmp_path, "m|b|8").get(["satz"], 8) == {}  # no file at all
    (tmp_path / FILE).write_bytes(content)
    reader = SentenceVectors(tmp_path, "m|b|8")
    assert reader.get(["satz"], 8) == {} and len(reader) == 0 and reader.missing(["satz"]) == ["satz"]


def test_indexing_stores_every_sentence_once_and_an_edit_embeds_only_the_new_one(tmp_path, corpus):
    embedder = HashEmbedder()
    index = tmp_path / "index"
    report = index_paths([corpus], index, embedder)
    key = model_key(embedder.model_id, embedder.backend, embedder.dim)
    stored = SentenceVectors(index, key)
    texts = [p.read_text(encoding="utf-8") for p in corpus.iterdir()]
    sentences = {t[a:b] for t in texts for a, b in split_sentences(t, max_chars=700)}
    got = stored.get(sorted(sentences), embedder.dim)
    assert set(got) == sentences  # every sentence of every article
    for text in list(got)[:20]:
        assert np.array_equal(got[text], rounded(embedder.embed_documents([text]))[0])
    assert stored.get([as_query("Peking")], embedder.dim)  # a name, embedded as a query for the name checks
    assert report.sentences_embedded == len(stored)

    target = next(iter(sorted(corpus.iterdir())))
    target.write_text(target.read_text(encoding="utf-8") + "\nDer Ausschuss tagte erneut am Montag.\n")
    again = index_paths([corpus], index, embedder)
    assert again.updated == (target.name,)
    # The new sentence, and at most its three capitalised words as queries; nothing of the rest of the file.
    assert 1 <= again.sentences_embedded <= 4
    assert stored.get(["Der Ausschuss tagte erneut am Montag."], embedder.dim)


def test_answering_embeds_no_sentence_when_the_index_stored_them(tmp_path, fake_index):
    from rag import Engine

    index = tmp_path / "index"
    shutil.copytree(fake_index, index)
    counting = HashEmbedder()
    stored = Engine(index, embedder=counting)
    answers = [stored.ask(q) for q in QUESTIONS]
    assert counting.embedded == 0  # only the questions (and their names, as queries) were embedded

    (index / FILE).unlink()  # an index without the file (built before it existed): the sentences are embedded now
    fallback = HashEmbedder()
    embedded_now = Engine(index, embedder=fallback)
    assert [embedded_now.ask(q) for q in QUESTIONS] == answers
    assert fallback.embedded > 0
    assert not (index / FILE).exists()  # a reader writes nothing into the index


def test_an_index_without_sentence_vectors_gets_them_on_its_next_run(tmp_path, corpus):
    embedder = HashEmbedder()
    index = tmp_path / "index"
    first = index_paths([corpus], index, embedder)
    (index / FILE).unlink()  # as an index written before the file existed
    again = index_paths([corpus], index, embedder)
    assert again.unchanged and again.chunks_embedded == 0
    assert again.sentences_embedded == first.sentences_embedded
    assert index_paths([corpus], index, embedder).sentences_embedded == 0


def test_a_reader_open_while_the_file_is_started_anew_for_another_model_reads_nothing_of_it(tmp_path):
    SentenceVectors(tmp_path, "old|onnx|8", writable=True).put(["satz"], np.ones((1, 8), dtype=np.float32))
    reader = SentenceVectors(tmp_path, "old|onnx|8")
    assert set(reader.get(["satz"], 8)) == {"satz"}
    SentenceVectors(tmp_path, "new|onnx|8", writable=True).put(["satz"], np.zeros((1, 8), dtype=np.float32))
    assert reader.get(["satz"], 8) == {}


def test_a_reader_opened_before_the_file_was_written_reads_it_once_it_is(tmp_path):
    reader = SentenceVectors(tmp_path, "m|b|8")  # a version opened right after the commit, before the sentences
    assert reader.get(["satz"], 8) == {}
    SentenceVectors(tmp_path, "m|b|8", writable=True).put(["satz"], np.ones((1, 8), dtype=np.float32))
    assert set(reader.get(["satz"], 8)) == {"satz"}


def test_a_file_of_the_earlier_layout_is_completed_by_the_next_writer(tmp_path):
    """A file written before the table of files done existed: the writer adds the table and keeps the vectors."""
    import sqlite3

    con = sqlite3.connect(tmp_path / FILE)
    con.executescript(
        "CREATE TABLE meta (key TEXT NOT NULL); INSERT INTO meta VALUES ('m|b|8');"
        "CREATE TABLE vectors (digest BLOB PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID;"
    )
    con.close()
    writer = SentenceVectors(tmp_path, "m|b|8", writable=True)
    assert writer.done() == {}
    writer.put(["satz"], np.ones((1, 8), dtype=np.float32))
    writer.mark_done([("a.txt", "0" * 64)])
    assert writer.done() == {"a.txt": "0" * 64} and set(SentenceVectors(tmp_path, "m|b|8").get(["satz"], 8)) == {"satz"}


def test_a_documents_sentences_are_stored_side_by_side(tmp_path):
    """Rows lie in the order they were written, document by document, so a question's candidates
    (the sentences of a few documents) are a few runs of pages, not one page each."""
    import sqlite3

    from embeddings.stores.sentences import digest

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    topics = {"sport": "Der FC Nord gewann", "science": "Das Labor in Kiel maß", "history": "Die Burg Eltz wurde"}
    for name, start in topics.items():
        lines = [f"{start} am {day}. März zum {n}. Mal etwas Neues über {name}." for n, day in enumerate(range(3, 15))]
        (corpus / f"{name}.txt").write_text(" ".join(lines) + "\n", encoding="utf-8")
    index = tmp_path / "index"
    index_paths([corpus], index, HashEmbedder())
    con = sqlite3.connect(index / FILE)
    rowid = {bytes(d): r for r, d in con.execute("SELECT rowid, digest FROM vectors")}
    for path in corpus.iterdir():
        text = path.read_text(encoding="utf-8")
        rows = sorted(rowid[digest(text[a:b])] for a, b in split_sentences(text, max_chars=700))
        assert len(rows) >= 10 and rows[-1] - rows[0] == len(rows) - 1, (path.name, rows)

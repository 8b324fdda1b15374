"""``rag`` over the Milvus store: the dev sets answered as over the embedded store, and two engines
on one Milvus Lite file see one update. Real engine (Milvus Lite 2.5.1), real model for the dev sets."""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("pymilvus", reason='the Milvus store needs pip install -e ".[milvus]"')

from embeddings.migrate import migrate
from embeddings.milvus_store import MilvusStore
from rag import Engine
from rag.evaluate import evaluate, load_cases
from tests.conftest import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        "store" not in inspect.signature(Engine).parameters,
        reason="rag.Engine reads any store once the store interface is merged",
    ),
]


@pytest.mark.parametrize("dev_set", ["dev.jsonl", "dev2.jsonl"])
def test_the_dev_sets_get_the_same_answers_from_both_stores(tmp_path, seed_index, embedder, model_cache, dev_set):
    """Every answer (text, abstention, first source) is the same. Milvus scores BM25 with its own
    statistics, so a lower-ranked passage can change: measured, 1 of 28 (dev) and 1 of 60 (dev2)
    questions cite their further sources in another order or one fewer."""
    from embeddings.store_api import open_store

    milvus = MilvusStore(f"milvus:{tmp_path / 'seeds.db'}")
    try:
        migrate(open_store(seed_index), milvus)
        embedded = Engine(seed_index, embedder=embedder, cache_dir=model_cache)
        over_milvus = Engine(store=milvus, embedder=embedder, cache_dir=model_cache)
        cases = load_cases(ROOT / "eval" / dev_set)
        a, b = evaluate(cases, embedded.ask), evaluate(cases, over_milvus.ask)
        for x, y in zip(a.outcomes, b.outcomes):
            assert (x.answer.text, x.answer.abstained, x.sources[:1]) == (
                y.answer.text,
                y.answer.abstained,
                y.sources[:1],
            )
        further = [x.case.id for x, y in zip(a.outcomes, b.outcomes) if x.sources != y.sources]
        print(f"{dev_set}: {len(further)} of {len(cases)} cite other further sources: {further}")
        assert len(further) <= max(1, len(cases) // 10), further
        for metric in ("hit_at_1", "answer_accuracy", "abstention_accuracy", "false_abstentions"):
            assert getattr(a, metric) == getattr(b, metric), metric
    finally:
        milvus.close()


def test_two_engines_on_one_lite_file_see_one_update(tmp_path, fake_index, fake_embedder):
    from embeddings import Chunk, Document
    from embeddings.store_api import open_store

    spec = f"milvus:{tmp_path / 'shared.db'}"
    writer_store, reader_store = MilvusStore(spec), MilvusStore(spec)
    try:
        migrate(open_store(fake_index), writer_store)
        one = Engine(store=writer_store, embedder=fake_embedder)
        two = Engine(store=reader_store, embedder=fake_embedder)
        question = "Wer taufte die Fähre Ostwind in Wismar?"
        before = two.retrieve(question, k=3)
        assert all(h.chunk.source != "upload.txt" for h in before)
        text = "Die Fähre Ostwind wurde am Montag in Wismar getauft. Reederin Anna Berg taufte sie."
        doc = Document("upload.txt", text, "Ostwind", "a" * 64)
        chunk = Chunk("upload.txt", "Ostwind", 0, len(text), text)
        with writer_store.writer(manifest=writer_store.manifest()) as w:
            w.add(doc, [chunk], fake_embedder.embed_documents([text]))
            w.commit(writer_store.manifest().roots)
        for engine in (one, two):
            assert engine.retrieve(question, k=3)[0].chunk.source == "upload.txt"
    finally:
        writer_store.close()
        reader_store.close()

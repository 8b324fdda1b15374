"""``rag`` over the Milvus store: the dev sets answered as over the embedded store, and two engines
on one Milvus Lite file see one update. Real engine (Milvus Lite 2.5.1), real model for the dev sets."""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("pymilvus", reason='the Milvus store needs pip install -e ".[milvus]"')

from embeddings.stores.migrate import migrate
from embeddings.stores.milvus.store import MilvusStore
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
    from embeddings.stores.spec import open_store

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


def test_two_engines_on_one_lite_file_see_one_upload(tmp_path, fake_index, fake_embedder, corpus):
    """The chat uploads an article into the Milvus store; another engine on the same file finds it."""
    from embeddings.stores.spec import open_store
    from tests.test_chat import NEW_ARTICLE
    from ui.chat.app import ChatApp

    spec = f"milvus:{tmp_path / 'shared.db'}"
    chat_store, other_store = MilvusStore(spec), MilvusStore(spec)
    try:
        migrate(open_store(fake_index), chat_store)
        chat = ChatApp(tmp_path / "index", corpus, fake_embedder, store=chat_store)
        assert "0 chunks embedded" in chat.sync().summary()  # the same articles: nothing to embed
        other = Engine(spec, store=other_store, embedder=fake_embedder)
        question = "Ramona Quast eröffnete die Hängebrücke in Xylofon"
        assert all(h.chunk.source != "xylofon.txt" for h in other.retrieve(question, k=3))
        upload = tmp_path / "uploads" / "xylofon.txt"
        upload.parent.mkdir()
        upload.write_text(NEW_ARTICLE, encoding="utf-8")
        rows, status = chat.upload([str(upload)])
        assert "Added 1 article" in status
        assert ["xylofon.txt", "Neue Brücke in Xylofon", "2025-03-03"] in [r[:3] for r in rows]
        for engine in (chat.engine, other):
            assert engine.retrieve(question, k=3)[0].chunk.source == "xylofon.txt"
    finally:
        chat_store.close()
        other_store.close()

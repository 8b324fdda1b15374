"""One ``Engine`` answering from many threads at once (as the chat's queue workers do): same answers, bounded memo."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from rag.evaluate import load_cases

from .conftest import DEV_SET

pytestmark = pytest.mark.slow

QUESTIONS = [case.question for case in load_cases(DEV_SET)]


@pytest.fixture(scope="module")
def expected(engine) -> dict[str, str]:
    """Every dev question's answer, asked one at a time."""
    return {q: engine.ask(q).text for q in QUESTIONS}


def _fresh(seed_index, embedder, model_cache):
    from rag import Engine

    return Engine(seed_index, embedder=embedder, cache_dir=model_cache)


def test_small_memo_stays_bounded_and_changes_nothing(seed_index, embedder, model_cache, expected, monkeypatch):
    """A question can need more sentence vectors than the memo holds: it must still be answered, identically."""
    monkeypatch.setattr("rag.engine.SENTENCE_CACHE_SIZE", 8)
    engine = _fresh(seed_index, embedder, model_cache)
    for q in QUESTIONS:
        assert engine.ask(q).text == expected[q]
        assert len(engine._sentence_cache) <= 8


def test_concurrent_questions_get_the_answers_they_get_alone(seed_index, embedder, model_cache, expected, monkeypatch):
    """Eight threads share one engine whose memo is evicting all the time; nothing fails, nothing is mixed up."""
    monkeypatch.setattr("rag.engine.SENTENCE_CACHE_SIZE", 64)
    engine = _fresh(seed_index, embedder, model_cache)
    work = QUESTIONS * 2
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda q: engine.ask(q).text, work))
    assert answers == [expected[q] for q in work]
    assert len(engine._sentence_cache) <= 64

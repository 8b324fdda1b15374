"""One ``Engine`` answering from many threads at once (as the chat's queue workers do): same answers, bounded memo.

On the fake embedder (the memo and the locks are the engine's, whatever the model); once more on the real one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from rag.evaluate import load_cases

from .conftest import DEV_SET

QUESTIONS = [case.question for case in load_cases(DEV_SET)]


@pytest.fixture(scope="module")
def expected(fake_engine) -> dict[str, str]:
    """Every dev question's answer, asked one at a time (fake embedder)."""
    return {q: fake_engine.ask(q).text for q in QUESTIONS}


@pytest.fixture(scope="module")
def expected_real(engine) -> dict[str, str]:
    """Every dev question's answer, asked one at a time (the real model)."""
    return {q: engine.ask(q).text for q in QUESTIONS}


def _fresh(seed_index, embedder, model_cache=None):
    from rag import Engine

    return Engine(seed_index, embedder=embedder, cache_dir=model_cache)


def test_small_memo_stays_bounded_and_changes_nothing(fake_index, fake_embedder, expected, monkeypatch):
    """A question can need more sentence vectors than the memo holds: it must still be answered, identically."""
    monkeypatch.setattr("rag.engine.SENTENCE_CACHE_SIZE", 8)
    engine = _fresh(fake_index, fake_embedder)
    for q in QUESTIONS:
        assert engine.ask(q).text == expected[q]
        assert len(engine._sentence_cache) <= 8


def test_concurrent_questions_get_the_answers_they_get_alone(fake_index, fake_embedder, expected, monkeypatch):
    """Eight threads share one engine whose memo is evicting all the time; nothing fails, nothing is mixed up."""
    _concurrent(_fresh(fake_index, fake_embedder), expected, monkeypatch)


@pytest.mark.slow
def test_concurrent_questions_on_the_real_model(seed_index, embedder, model_cache, expected_real, monkeypatch):
    """The same with the real model, whose runtime is shared by the threads too."""
    _concurrent(_fresh(seed_index, embedder, model_cache), expected_real, monkeypatch)


def _concurrent(engine, expected: dict[str, str], monkeypatch) -> None:
    monkeypatch.setattr("rag.engine.SENTENCE_CACHE_SIZE", 64)
    work = QUESTIONS * 2
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda q: engine.ask(q).text, work))
    assert answers == [expected[q] for q in work]
    assert len(engine._sentence_cache) <= 64

"""The claim check with a real model: Gemma 3 270M behind llama.cpp's server writes the answers.

Whatever the small model writes, no sentence shown to the user may hold a name, a
date or a number that its cited passages do not hold. The oracle here is written
independently of rag.llm.claims' window logic: it looks at the whole cited passages
(so it is weaker than the check, never stronger), with the index's model only for
names written in another language (Beijing ~ Peking), as the check does.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
from dataclasses import replace

import numpy as np
import pytest

from rag import Answer
from rag.answering.temporal import resolve
from rag.answering.text import fold, similar_words, words
from rag.llm.answers import answer_stream, answered_by, generate, prepare, unsupported_numbers
from rag.llm.claims import ClaimChecker, ClaimConfig, facts_of, split_claims, strip_citations
from rag.llm.prompt import annotate_dates

from .conftest import ROOT

# Invented articles with traps: one town, three people with three roles, three dates.
ARTICLES = {
    "bruecke.txt": (
        "title: Neue Brücke in Xylofon\ndate: 2025-03-04\n\n"
        "Die Bürgermeisterin von Xylofon, Ramona Quast, eröffnete am Montag die neue Brücke über die Zeller. "
        "Die Brücke ist 120 Meter lang und kostete vier Millionen Euro.\n"
    ),
    "feuerwehr.txt": (
        "title: Feuerwehr Xylofon stellt Fahrzeuge vor\ndate: 2025-04-11\n\n"
        "Der Feuerwehrchef von Xylofon, Bruno Lenz, stellte am Freitag drei neue Löschfahrzeuge vor. "
        "Die Fahrzeuge ersetzen Wagen aus dem Jahr 1998.\n"
    ),
    "besuch.txt": (
        "title: Landrat besucht Xylofon\ndate: 2024-11-20\n\n"
        "Der Landrat von Varnau, Egon Sturm, besuchte am Mittwoch Xylofon. Er sprach mit Schülern über den "
        "neuen Radweg nach Varnau, der 2026 fertig sein soll.\n"
    ),
}
# Each invites an answer that mixes the articles: a name from one, a date or role from another.
TRAPS = [
    "When did Bruno Lenz open the bridge in Xylofon?",
    "Wann traf Egon Sturm Bruno Lenz in Xylofon?",
    "Wer ist Bruno Lenz?",
    "Is Egon Sturm the mayor of Xylofon?",
    "How many fire engines did Ramona Quast present?",
    "Wie lang ist die Brücke, die Egon Sturm eröffnet hat?",
]


def _oracle(sentence: str, answer: Answer, embedder) -> list[str]:
    """What ``sentence`` names, dates or counts that none of its cited passages holds (empty: fine)."""
    cited = [c for c in answer.citations if f"[{c.n}]" in sentence]
    if not cited:
        return ["no citation"]
    texts = []
    for c in cited:
        day = dt.date.fromisoformat(c.date) if c.date else None
        texts.append(f"{c.title} {annotate_dates(c.passage, day)} {c.date or ''}")
    seen = {fold(w) for t in texts for w in words(t)}
    wrong = unsupported_numbers(sentence, cited)
    facts = facts_of(sentence)
    for name in facts.names:
        if any(similar_words(name, w) for w in seen):
            continue
        vectors = embedder.embed_queries([fold(name), *sorted(seen)])
        if float(np.max(vectors[1:] @ vectors[0])) < ClaimConfig().name_similarity:
            wrong.append(name)
    dates = {r.date for t, c in zip(texts, cited, strict=True) for r in resolve(t, _day(c.date)) if r.date}
    dates |= {_day(c.date) for c in cited if c.date}
    for ref in resolve(strip_citations(sentence), None):
        if ref.date and ref.date not in dates:
            wrong.append(ref.date.isoformat())
    return wrong


def _day(iso: str | None) -> dt.date | None:
    return dt.date.fromisoformat(iso) if iso else None


def _assert_shown_answer_is_supported(items: list, embedder) -> Answer:
    final = items[-1]
    assert isinstance(final, Answer)
    streamed = "".join(i for i in items[:-1] if isinstance(i, str))
    removed = [c.sentence for c in final.claims if not c.kept]
    for sentence in removed:
        assert sentence not in streamed, sentence  # held back, never shown
    if answered_by(final) != "model":
        return final  # the extractive answer (verbatim quotes) or "not found"
    assert final.text == streamed
    for sentence in split_claims(final.text):
        assert _oracle(sentence, final, embedder) == [], (sentence, [c.passage for c in final.citations])
    return final


@pytest.fixture(scope="module")
def trap_engine(tmp_path_factory, embedder):
    from embeddings import index_paths
    from rag import Engine

    root = tmp_path_factory.mktemp("traps")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index_paths([corpus], root / "index", embedder)
    return Engine(root / "index", embedder=embedder)


def _without_floor(question: str, llm, engine, *, gate: bool) -> list:
    """The answer with the similarity floor off: the name, date and number alignment is all that stands."""
    prepared = prepare(question, llm, engine=engine, k=3, gate=gate)
    config = ClaimConfig(min_similarity=0.0)
    prepared = replace(prepared, claim_checker=functools.partial(ClaimChecker.for_engine, engine=engine, config=config))
    return list(generate(prepared, llm))


@pytest.mark.slow
@pytest.mark.parametrize("question", TRAPS)
def test_trap_questions_show_no_unsupported_claim(llm, trap_engine, embedder, question):
    """Asked even when the extractive answerer would abstain (gate off), without the floor: the alignment
    alone must keep every name, date and number shown inside its cited passage; then as shipped."""
    _assert_shown_answer_is_supported(_without_floor(question, llm, trap_engine, gate=False), embedder)
    _assert_shown_answer_is_supported(list(answer_stream(question, llm, engine=trap_engine, k=3)), embedder)


def _dev_questions(n: int) -> list[str]:
    rows = []
    for name in ("dev.jsonl", "dev2.jsonl"):
        path = ROOT / "eval" / name
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["question"] for r in random.Random(16).sample(rows, n)]


@pytest.mark.slow
@pytest.mark.parametrize("question", _dev_questions(10))
def test_dev_questions_show_no_unsupported_claim(llm, engine, embedder, question):
    _assert_shown_answer_is_supported(_without_floor(question, llm, engine, gate=True), embedder)


@pytest.mark.slow
def test_explain_prints_each_sentence_of_an_llm_answer(llm_server, seed_index, model_cache, monkeypatch, capsys):
    from ui.cli import main

    monkeypatch.setenv("RAG_INDEX_DIR", str(seed_index))
    monkeypatch.setenv("RAG_CACHE_DIR", str(model_cache))
    argv = ["ask", "--llm", "openai", "--base-url", llm_server, "--explain", "When did Shoigu visit Beijing?"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "claims" in out and ("kept" in out or "none checked" in out)


def test_trap_articles_are_not_the_seeds():
    seeds = " ".join(p.read_text(encoding="utf-8") for p in (ROOT / "seeds").iterdir())
    for name in ("Xylofon", "Ramona", "Bruno", "Egon", "Varnau"):
        assert name not in seeds

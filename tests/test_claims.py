"""The claim check of LLM answers (rag.llm.claims) on hand-made passages: no model needed.

A fixed similarity floor (in place of the fitted decision) and the cross-language name match run with an obvious fake
embedder (a bag of words; two words are the same when a small table says so),
so these tests check the alignment logic, not the model's judgement.
"""

from __future__ import annotations

import random
import re
import zlib

import numpy as np
import pytest

from rag import Answer, Citation
from rag.answering.text import fold, words
from rag.llm.answers import NOTES, Prepared, answered_by, generate
from rag.llm.claims import (
    ClaimChecker,
    ClaimConfig,
    ClaimFilter,
    explain_claims,
    facts_of,
    removed_summary,
    split_claims,
    strip_citations,
)

# Two invented articles: a name from one and a date from the other must not make a fact.
BATH = Citation(
    1,
    "bad.txt",
    "Neues Bad in Birkental",
    "Bürgermeisterin Lena Fuchs eröffnete am Montag das neue Bad in Birkental. "
    "Es hat drei Becken und kostete 12,5 Millionen Euro. Rund 400 Gäste kamen.",
    0,
    140,
    0.5,
    "2025-03-04",
)
FIRE = Citation(
    2,
    "feuer.txt",
    "Feuerwehr Kornhain",
    "Feuerwehrchef Tom Brandt stellte am Freitag in Kornhain zwei neue Löschfahrzeuge vor.",
    0,
    84,
    0.4,
    "2025-02-28",
)
# Sentence of an article far from another: the pieces are there, but not together.
LONG = Citation(
    3,
    "lang.txt",
    "Rat tagt",
    "Der Stadtrat von Birkental tagte am Dienstag. Er beriet über den Haushalt. Die Schulen brauchen neue Dächer. "
    "Der Kämmerer legte Zahlen vor. Später sprach auch Anna Kolb.",
    0,
    160,
    0.3,
    "2025-03-05",
)
PASSAGES = (BATH, FIRE, LONG)


def check(sentence: str, passages=PASSAGES, **kw):
    return ClaimChecker(passages, **kw).check(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "According to [1], Lena Fuchs opened the new pool in Birkental on Monday, 3 March 2025 [1].",
        "Laut [1] eröffnete Lena Fuchs das Bad am 3. März 2025 [1].",
        "The pool has three pools and cost 12.5 million euros [1].",  # number words and decimal commas
        "About 400 guests came [1].",
        "Tom Brandt presented two new fire engines on Friday, 28 February 2025 [2].",
        "In March 2025 the pool opened [1].",
        "Yes [1].",  # nothing to check but its meaning
    ],
)
def test_supported_sentences_are_kept(sentence):
    result = check(sentence)
    assert result.kept and result.reason == "supported", result.reason


@pytest.mark.parametrize(
    "sentence, missing",
    [
        # a name from one article and a date from another, cited to one of them
        ("Lena Fuchs opened the pool on 28 February 2025 [1].", "'28 February 2025' not in [1]"),
        ("Lena Fuchs opened the pool on Friday [1].", "'on Friday' not in [1]"),
        # a role (and a person) assigned to the wrong article
        ("According to [2], Mayor Lena Fuchs presented the fire engines [2].", "'Mayor', 'Lena', 'Fuchs' not in [2]"),
        ("The pool cost 15 million euros [1].", "'15 million' not in [1]"),  # the number as written
        ("The pool has four pools [1].", "'four' not in [1]"),
        ("Anna Kolb opened the pool in 2024 [1].", "'Anna', 'Kolb', 'in 2024' not in [1]"),
    ],
)
def test_names_dates_and_numbers_absent_from_the_cited_passage_remove_the_sentence(sentence, missing):
    result = check(sentence)
    assert not result.kept and result.reason == missing


def test_facts_from_two_articles_cited_together_are_not_a_fact():
    """Each piece is in one of the cited passages, but no passage says them together."""
    result = check("Tom Brandt opened the pool in Birkental on Monday [1][2].")
    assert not result.kept and "not stated together in [1], [2]" in result.reason
    # The role of one person given to another: "Bürgermeisterin" stands with Fuchs, not with Brandt.
    result = check("Laut [1] und [2] ist Tom Brandt Bürgermeisterin von Birkental [1][2].")
    assert not result.kept and "not stated together" in result.reason


def test_facts_far_apart_in_one_passage_are_not_together():
    assert not check("Anna Kolb met on Tuesday [3].").kept
    assert check("Anna Kolb met on Tuesday [3].", config=ClaimConfig(window=5)).kept
    assert check("The council of Birkental met on Tuesday [3].").kept


def test_uncited_sentences_that_state_a_fact_are_removed():
    assert check("Lena Fuchs opened the pool.").reason == "no citation"
    assert check("The pool cost a lot of money.").reason == "no citation"
    assert check("Gladly.").kept  # says nothing


def test_every_kept_sentence_has_its_names_dates_and_numbers_in_a_cited_passage():
    """The invariant, over generated combinations of real and foreign names, dates and numbers."""
    rng = random.Random(7)
    names = ["Lena Fuchs", "Tom Brandt", "Anna Kolb", "Jana Roth", "Birkental", "Kornhain"]
    dates = ["on Monday", "on Friday", "on 3 March 2025", "on 28 February 2025", "on 14 October 2024", ""]
    numbers = ["three", "two", "400", "12.5 million", "17", ""]
    checker = ClaimChecker(PASSAGES)
    kept = 0
    for _ in range(300):
        n = rng.choice([1, 2, 3])
        sentence = f"{rng.choice(names)} came {rng.choice(dates)} with {rng.choice(numbers)} things [{n}]."
        result = checker.check(sentence)
        if not result.kept:
            continue
        kept += 1
        passage = PASSAGES[n - 1]
        facts = facts_of(sentence)
        shown = fold(f"{passage.title} {passage.passage}")
        for name in facts.names:
            assert any(fold(name)[:4] == fold(w)[:4] for w in words(shown)), (sentence, name)
        for number in re.findall(r"\d+", strip_citations(sentence)):
            assert number in re.sub(r"\D", " ", shown + " 2025 03 04 02 28") or number in ("3", "28", "2025"), sentence
    assert 10 < kept < 300  # some pass, most do not


class FakeEmbedder:
    """Bag-of-words vectors; words listed in ``same`` share one dimension (an obvious stand-in for e5)."""

    def __init__(self, same: dict[str, str] | None = None, dim: int = 512) -> None:
        self.same = same or {}
        self.dim = dim
        self.calls = 0

    def __call__(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for w in words(text):
                f = fold(w)
                out[i, zlib.crc32(self.same.get(f, f).encode()) % self.dim] += 1  # stable across runs
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def test_similarity_floor_removes_a_sentence_far_from_every_cited_sentence():
    fake = FakeEmbedder()
    config = ClaimConfig(min_similarity=0.7)
    model = {"embed_queries": fake, "embed_documents": fake, "config": config}
    close = check("Laut [1] eröffnete Lena Fuchs am Montag das neue Bad [1].", **model)
    assert close.kept and close.similarity is not None and close.similarity >= 0.7
    # Every name of it is in the passage, but it says something else.
    far = check("Laut [1] schloss Lena Fuchs das Bad [1].", **model)
    assert not far.kept and far.similarity is not None and far.similarity < 0.7
    assert "similarity" in far.reason and "[1]" in far.reason


def test_a_name_in_another_language_is_matched_through_the_model():
    passage = Citation(1, "p.txt", "Besuch", "Der Minister kam am Montag nach Tannfeld.", 0, 39, 0.5, "2024-10-14")
    assert not check("The minister came to Pinewood on Monday [1].", (passage,)).kept  # no model: no match
    fake = FakeEmbedder({"pinewood": "tannfeld"})
    result = check("The minister came to Pinewood on Monday [1].", (passage,), embed_queries=fake)
    assert result.kept, result.reason
    assert not check("The minister came to Oakdale on Monday [1].", (passage,), embed_queries=fake).kept


def test_places_with_an_english_name_are_matched_without_a_model():
    passage = Citation(1, "p.txt", "Besuch", "Der Minister kam am Montag nach Peking.", 0, 39, 0.5, "2024-10-14")
    assert check("The minister came to Beijing on Monday [1].", (passage,)).kept
    assert not check("The minister came to Moscow on Monday [1].", (passage,)).kept
    mayor = FakeEmbedder({"mayor": "burgermeisterin"})
    assert check("Mayor Lena Fuchs opened the pool on Monday [1].", embed_queries=mayor).kept


def test_split_claims_keeps_every_word_and_moves_trailing_citations_back():
    text = "Am 14. Oktober kam er an [1]. Xi traf ihn. [2] Dr. Li sagte: „Gut.“ Dann ging er [1, 2]."
    sentences = split_claims(text)
    assert sentences == [
        "Am 14. Oktober kam er an [1].",
        "Xi traf ihn. [2]",
        "Dr. Li sagte: „Gut.“",
        "Dann ging er [1, 2].",
    ]
    assert " ".join(sentences).split() == text.split()
    assert split_claims("") == []


@pytest.mark.parametrize("seed", range(15))
def test_streamed_sentences_are_exactly_the_kept_ones(seed):
    """However the tokens are cut, what streams is the kept sentences, and no removed sentence leaks."""
    text = (
        "According to [1], Lena Fuchs opened the pool on Monday [1]. Tom Brandt opened it on Friday [1]. "
        "It has three pools. [1] The pool cost 12.5 million euros [1]. Anna Kolb came too."
    )
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(text)), 15))
    tokens = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    f = ClaimFilter(ClaimChecker(PASSAGES))
    streamed = "".join(f.feed(t) for t in tokens) + f.flush()
    assert streamed == f.text
    assert [c.kept for c in f.claims] == [True, False, True, True, False]
    assert "Brandt" not in streamed and "Kolb" not in streamed
    whole = ClaimFilter(ClaimChecker(PASSAGES))
    assert whole.feed(text) + whole.flush() == streamed


def test_outcome_is_said_in_fields_and_rendered_for_people():
    f = ClaimFilter(ClaimChecker(PASSAGES))
    f.feed("Lena Fuchs opened the pool [1]. Tom Brandt opened it [1].")
    f.flush()
    answer = Answer(f.text, False, list(PASSAGES), claims=tuple(f.claims))
    assert removed_summary(answer.claims) == "1 sentence removed: not supported by [1]"
    explained = explain_claims(answer)
    assert "1 kept, 1 removed" in explained and "'Tom', 'Brandt' not in [1]" in explained
    assert explain_claims(Answer("x", False)).startswith("claims: none checked")


def _scripted(reply: str):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    return FakeListChatModel(responses=[reply])


EXTRACTIVE = Answer("Monday, 3 March 2025 — „Bürgermeisterin Lena Fuchs eröffnete am Montag …“ [1]", False, [BATH])


def _generate(reply: str) -> tuple[str, Answer]:
    prepared = Prepared("When did the pool open?", "When did the pool open?", "en", (BATH, FIRE), EXTRACTIVE)
    items = list(generate(prepared, _scripted(reply)))
    return "".join(i for i in items if isinstance(i, str)), items[-1]


def test_generated_answer_loses_its_unsupported_sentence():
    pytest.importorskip("langchain_core")
    streamed, final = _generate("According to [1], Lena Fuchs opened it on Monday [1]. Tom Brandt was there [1].")
    assert final.text == streamed == "According to [1], Lena Fuchs opened it on Monday [1]."
    assert answered_by(final) == "model" and [c.kept for c in final.claims] == [True, False]


def test_generated_answer_with_no_supported_sentence_falls_back_to_the_extractive_answer():
    pytest.importorskip("langchain_core")
    streamed, final = _generate("According to [2], Lena Fuchs opened it on 28 February 2025 [2].")
    assert streamed == ""  # nothing unchecked was shown
    assert final.text == EXTRACTIVE.text and answered_by(final) == "unsupported"
    assert NOTES["unsupported"] in final.notes and not final.claims[0].kept


def test_eval_counts_the_generated_sentences_removed():
    from rag.evaluate import Case, evaluate

    f = ClaimFilter(ClaimChecker(PASSAGES))
    f.feed("Lena Fuchs opened the pool [1]. Tom Brandt opened it [1].")
    f.flush()
    answer = Answer(f.text, False, [BATH], claims=tuple(f.claims))
    report = evaluate([Case("a", "Q", "bad.txt", ("fuchs",))], lambda q: answer, answered_by)
    assert "LLM: generated sentences removed  1/2" in report.table()
    assert [c["kept"] for c in report.to_dict()["questions"][0]["claims"]] == [True, False]

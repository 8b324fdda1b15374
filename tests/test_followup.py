"""Follow-up questions are rewritten into standalone ones; anything else passes through unchanged."""

from __future__ import annotations

import pytest

from rag.followup import resolve, rewrite


@pytest.mark.parametrize(
    "question, previous, expected",
    [
        ("And Belousov?", "When did Shoigu visit Beijing?", "When did Belousov visit Beijing?"),
        ("Und Belousow?", "Wann besuchte Schoigu Peking?", "Wann besuchte Belousow Peking?"),
        ("und belousow?", "When did Shoigu visit Beijing?", "und belousow?"),  # no name in it: nothing to put in
        ("What about Dong Jun?", "When did Shoigu visit Beijing?", "When did Dong Jun visit Beijing?"),
        ("Und was ist mit Belousow?", "Wann war Schoigu in Peking?", "Wann war Belousow in Peking?"),
        ("Und in Moskau?", "Wann war Schoigu in Peking?", "Wann war Schoigu in Moskau?"),
        ("And in Moscow?", "When did Shoigu visit Beijing?", "When did Shoigu visit Moscow?"),
        ("Belousov?", "When did Shoigu visit Beijing?", "When did Belousov visit Beijing?"),
        ("Andrey Belousov?", "When did Sergei Shoigu visit Beijing?", "When did Andrey Belousov visit Beijing?"),
    ],
)
def test_elliptical_follow_up_takes_the_previous_question(question, previous, expected):
    assert rewrite(question, previous) == expected


@pytest.mark.parametrize(
    "question, previous",
    [
        ("And when did Belousov visit Beijing?", "When did Shoigu visit Beijing?"),  # already standalone
        ("Who is Lin Jian?", "When did Shoigu visit Beijing?"),
        ("Und Belousow?", None),  # first turn
        ("Und Belousow?", ""),
        ("Und Belousow?", "wann war das?"),  # nothing in the previous question to replace
        ("And the others in the delegation of the visit?", "When did Shoigu visit Beijing?"),  # too long
        ("", "When did Shoigu visit Beijing?"),
    ],
)
def test_other_questions_pass_through(question, previous):
    assert rewrite(question, previous) == question


def test_chain_reads_each_turn_against_the_resolved_one_before():
    assert resolve(["When did Shoigu visit Beijing?", "And Belousov?"]) == "When did Belousov visit Beijing?"
    assert resolve(["Wann war Schoigu in Peking?", "Und Belousow?", "Und in Moskau?"]) == "Wann war Belousow in Moskau?"
    # a new full question starts over
    assert resolve(["When did Shoigu visit Beijing?", "Who is Lin Jian?", "And Dong Jun?"]) == "Who is Dong Jun?"


def test_resolve_needs_a_question():
    with pytest.raises(ValueError):
        resolve([])

"""Follow-up questions are rewritten into standalone ones; anything else passes through unchanged."""

from __future__ import annotations

import pytest

from rag.answering.followup import FollowUpError, resolve, rewrite
from rag.answering.questions import QuestionError
from rag.answering.text import detect_language


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


@pytest.mark.parametrize(
    "question, previous, expected",
    [
        ("Who did he meet there?", "When did Shoigu visit Beijing?", "Who did Shoigu meet in Beijing?"),
        ("Wen traf er dort?", "Wann besuchte Schoigu Peking?", "Wen traf Schoigu in Peking?"),
        ("Mit wem sprach er dort?", "Wann war Schoigu in Peking?", "Mit wem sprach Schoigu in Peking?"),
        ("When did she arrive?", "Where did Annalena Baerbock speak?", "When did Annalena Baerbock arrive?"),
    ],
)
def test_pronoun_follow_up_takes_the_previous_person_and_place(question, previous, expected):
    rewritten = rewrite(question, previous)
    assert rewritten == expected
    assert detect_language(rewritten) == detect_language(question)  # still in the user's language


@pytest.mark.parametrize(
    "question",
    [
        "Is there a bridge in Xylofon?",  # existential "there" and a name of its own
        "In which publication did Philip Cunningham write his article?",  # names its person itself
        "Where is there a bridge?",
    ],
)
def test_pronouns_that_point_at_nothing_earlier_pass_through(question):
    assert rewrite(question, "When did Shoigu visit Beijing?") == question


@pytest.mark.parametrize(
    "question, previous, language",
    [
        ("Who did he meet?", None, "en"),  # nobody to stand for
        ("Wen traf er dort?", "wann war das?", "de"),
        ("What about Li Shangfu?", "Wann besuchte Schoigu Peking?", "en"),  # would become a German question
        ("Und Belousow?", "When did Shoigu visit Beijing?", "de"),
    ],
)
def test_unreadable_follow_up_asks_to_rephrase_in_the_users_language(question, previous, language):
    with pytest.raises(FollowUpError) as caught:
        rewrite(question, previous)
    assert caught.value.language == language
    assert detect_language(str(caught.value)) == language
    assert isinstance(caught.value, QuestionError)  # callers that show question errors show this too


def test_a_first_question_whose_pronoun_refers_inside_it_is_asked_as_it_is():
    question = "the harbour strike in tallinn: how many ferries had been cancelled there so far?"
    assert resolve([question]) == question


def test_there_needs_a_place_not_the_end_of_a_name():
    with pytest.raises(FollowUpError):
        resolve(["Wann traf Belousow Xi Jinping?", "Und wen traf er dort?"])

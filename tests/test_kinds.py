"""Answers over articles of other kinds than news about politics: sport, science, a company report, a court ruling.

Every article is invented, with names no seed article holds, so a failure here says what broke in
general, not for the seed articles. Each article is asked one question in German and the same
question in English; the answer must hold the fact (a date, a number or a name) of the sentence that
states it, and cite that article. Questions whose fact is in none of them must get "not found".
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow

ARTICLES = {
    "sport.txt": """date: 2023-09-17

Finale im Hallenhockey: Eisvögel aus Welsberg holen den Pokal

Die Eisvögel aus Welsberg haben am Samstag das Finale des Landespokals im Hallenhockey gewonnen.
Vor 2.300 Zuschauern in der Stadthalle von Kronau besiegten sie die Titelverteidigerinnen aus Lindau mit 4:2.
Das entscheidende Tor erzielte die Stürmerin Henrike Sollmann in der 58. Minute.
Trainerin Agnes Pfeilsticker sprach nach dem Spiel von der besten Saison seit der Gründung des Vereins im Jahr 1961.
Im kommenden Frühjahr spielt die Mannschaft erstmals im europäischen Wettbewerb.
""",
    "science.txt": """date: 2024-02-06

Forschende messen die älteste Eisschicht im Gletscher Valbrun

Ein Team der Hochschule Tessenau hat im Gletscher Valbrun eine Eisschicht untersucht, die rund 11.700 Jahre alt ist.
Die Bohrung reichte 318 Meter tief und dauerte drei Wochen.
Die Glaziologin Mirela Antunović leitete die Messungen gemeinsam mit dem Physiker Olaf Brennecke.
Im Eis fanden die Forschenden Spuren von Vulkanasche, die sie einem Ausbruch im Jahr 1257 zuordnen.
Die Ergebnisse erscheinen im Frühjahr in einer Fachzeitschrift.
""",
    "company.txt": """date: 2024-04-25

Quartalsbericht: Sandholm Werkzeugbau steigert den Umsatz

Die Sandholm Werkzeugbau AG hat im ersten Quartal 84 Millionen Euro umgesetzt, zwölf Prozent mehr als ein Jahr zuvor.
Der Konzern beschäftigt inzwischen 1.450 Menschen an vier Standorten.
Finanzvorständin Ruth Kellermeier kündigte an, im Herbst ein neues Werk in Ostrava zu eröffnen.
Die Aktie des Unternehmens stieg nach der Veröffentlichung um drei Prozent.
""",
    "court.txt": """date: 2022-11-30

Landgericht Merzhausen: Bauunternehmer muss Schadenersatz zahlen

Das Landgericht Merzhausen verurteilte am Dienstag den Bauunternehmer Detlef Amsinck zu 260.000 Euro Schadenersatz.
Sein Unternehmen hatte beim Bau einer Schule in Wiesbruck Mängel am Dach verschwiegen.
Die Vorsitzende Richterin Katrin Obermaier begründete das Urteil mit Gutachten zweier Sachverständiger.
Der Anwalt des Unternehmers kündigte an, Berufung beim Oberlandesgericht einzulegen.
""",
}

# (German question, English question, the fact as a pattern, the article it comes from)
ASKED = [
    ("Wie viele Zuschauer sahen das Finale in Kronau?", "How many spectators watched the final in Kronau?",
     r"2[.,]?300", "sport.txt"),
    ("Wer erzielte das entscheidende Tor im Finale?", "Who scored the deciding goal in the final?",
     r"Sollmann", "sport.txt"),
    ("Wie tief reichte die Bohrung im Gletscher Valbrun?", "How deep was the drilling in the Valbrun glacier?",
     r"318", "science.txt"),
    ("Welchem Jahr ordnen die Forschenden die Vulkanasche zu?", "To which year is the volcanic ash dated?",
     r"1257", "science.txt"),
    ("Wie viele Menschen beschäftigt Sandholm Werkzeugbau?", "How many people does Sandholm Werkzeugbau employ?",
     r"1[.,]?450", "company.txt"),
    ("Wo will Sandholm ein neues Werk eröffnen?", "Where will Sandholm open a new plant?",
     r"Ostrava", "company.txt"),
    ("Zu welchem Schadenersatz wurde Detlef Amsinck verurteilt?", "How much compensation must Detlef Amsinck pay?",
     r"260[.,]?000", "court.txt"),
    ("Wer ist die Vorsitzende Richterin im Fall Amsinck?", "Who was the presiding judge in the Amsinck case?",
     r"Obermaier", "court.txt"),
]  # fmt: skip

# What the method still gets wrong here, measured when this file was written (issue 22, open): strict, so a fix
# shows as XPASS and the mark must go.
OPEN = pytest.mark.xfail(strict=True, reason="issue 22 (open): a wrong sentence chosen, or a near miss answered")
OPEN_EN = {
    "How deep was the drilling in the Valbrun glacier?",  # the headline is quoted
    "How many people does Sandholm Werkzeugbau employ?",  # the turnover sentence is chosen
    "Who was the presiding judge in the Amsinck case?",  # the court's sentence is chosen
}

NOT_THERE = [
    "Wie viele Zuschauer kamen zum Halbfinale in Lindau?",  # the final's crowd is given, not the semi-final's
    "How much did Sandholm Werkzeugbau earn in the third quarter?",  # only the first quarter is reported
    "Wann wurde die Hochschule Tessenau gegründet?",
    "Who won the chess championship in Kronau?",
]


@pytest.fixture(scope="module")
def kinds_engine(tmp_path_factory, embedder, model_cache):
    from embeddings import index_paths
    from rag import Engine

    corpus = tmp_path_factory.mktemp("kinds")
    for source, text in ARTICLES.items():
        (corpus / source).write_text(text, encoding="utf-8")
    index = tmp_path_factory.mktemp("kinds-index")
    index_paths([corpus], index, embedder)
    return Engine(index, embedder=embedder, cache_dir=model_cache)


@pytest.mark.parametrize(("question", "fact", "source"), [(de, fact, src) for de, _en, fact, src in ASKED])
def test_german_questions_on_other_kinds_of_articles_get_the_fact(kinds_engine, question, fact, source):
    answer = kinds_engine.ask(question)
    assert not answer.abstained, f"{question!r}: {answer.text}"
    assert re.search(fact, answer.text), f"{question!r}: {answer.text}"
    assert answer.citations and answer.citations[0].source == source, answer.text


@pytest.mark.parametrize(
    ("question", "fact", "source"),
    [pytest.param(en, fact, src, marks=[OPEN] if en in OPEN_EN else []) for _de, en, fact, src in ASKED],
)
def test_english_questions_on_other_kinds_of_articles_get_the_fact(kinds_engine, question, fact, source):
    answer = kinds_engine.ask(question)
    assert not answer.abstained, f"{question!r}: {answer.text}"
    assert re.search(fact, answer.text), f"{question!r}: {answer.text}"
    assert answer.citations and answer.citations[0].source == source, answer.text


@pytest.mark.parametrize("question", [pytest.param(q, marks=OPEN) for q in NOT_THERE])  # all four answered today
def test_questions_whose_fact_no_article_holds_are_not_found(kinds_engine, question):
    answer = kinds_engine.ask(question)
    assert answer.abstained, f"{question!r}: {answer.text}"

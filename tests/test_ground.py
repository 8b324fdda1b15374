"""Grounding: the answer states only a fact its sentence holds about the asked event, or abstains.

Every article here is invented (names, places, dates and numbers that no seed article holds),
so the gates are shown to work on text they were not tuned on. The fast tests drive the gates
with an obvious fake embedder (or none); the slow ones index the invented articles with the
real model and ask through :class:`rag.Engine`, and hold the dev-set figures above floors.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zlib

import numpy as np
import pytest

from embeddings import Document
from embeddings.language.entities import extract_names, with_names
from rag.answering.answer import decide
from rag.answering.ground import (
    Gates,
    NameIndex,
    group_names,
    numbers,
    question_names,
    same_name,
    statement_topic,
)
from rag.answering.lexicon import Lexicon, load
from rag.answering.questions import analyse
from rag.answering.select import THIS_ARTICLE, Scored, Sentence, document_sentences, is_furniture, lexical_overlap
from rag.answering.temporal import resolve
from rag.answering.text import detect_language, similar_words
from rag.config import ScoringConfig

from .conftest import DEV_SET, ROOT

DEV2_SET = ROOT / "eval" / "dev2.jsonl"

# Three invented articles about invented people: two events share a person (Marek Lind), the
# third shares a place; each fact belongs to one event only.
HARBOUR = (
    (
        "Lind besucht Tallinn\n\nDer estnische Hafenminister Marek Lind traf am Dienstag in Tallinn mit der "
        "finnischen Verkehrsministerin Aino Saari zusammen.\n"
    )
    + """Lind sagte, die neue Fährlinie werde ab dem Frühjahr zwölf Abfahrten pro Tag anbieten.
Am Mittwoch besuchte er dann die Werft in Paldiski.
Dort arbeiten nach Angaben der Betreiber mehr als 300 Menschen.
Saari betonte, Finnland wolle die Zusammenarbeit bei der Küstenwache vertiefen.
"""
)
STORM = """Sturm über der Ostsee

Der Sturm „Helga“ hat am Freitag an der Küste von Riga mehr als 40 Bäume entwurzelt.
Die Feuerwehr meldete zwei verletzte Fischer, die Straße nach Jūrmala war sechs Stunden gesperrt.
Bürgermeisterin Ilze Ozola erklärte, der Schaden liege bei rund zwei Millionen Euro.
Jana Kroll (Laut LETA, Baltic Courier)
"""
FORUM = """Ostsee-Forum in Helsinki

Beim Ostsee-Forum in Helsinki sprach der lettische Premier Juris Kalns über Energiepreise.
Kalns kritisierte die hohen Netzentgelte und forderte eine gemeinsame Strombörse.
Am Rande des Forums traf Kalns den estnischen Hafenminister Marek Lind.
"""
ARTICLES = {"harbour.txt": (HARBOUR, dt.date(2024, 3, 8)), "storm.txt": (STORM, dt.date(2024, 3, 1)),
            "forum.txt": (FORUM, dt.date(2024, 2, 20))}  # fmt: skip


def _document(source: str) -> Document:
    text, date = ARTICLES[source]
    return with_names(Document(source, text, text.splitlines()[0], "0" * 64, date, "text"))


DOCS = {s: _document(s) for s in ARTICLES}
NAMES = NameIndex.of(DOCS.values())


def fake_embed(texts: list[str]) -> np.ndarray:
    """An obvious fake: a hashed bag of lower-cased words, normalised. Equal words, equal vectors."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"\w+", t.casefold()):
            out[i, zlib.crc32(w.encode()) % 64] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


def known(word: str) -> bool:
    return any(word.casefold() in d.text.casefold() for d in DOCS.values())


GATES = Gates(NAMES, lambda term: 1.0, known, ScoringConfig(), fake_embed)


def check(question: str, source: str, sentence: str):
    """The gates' verdicts on ``sentence`` of ``source`` for ``question``."""
    doc = DOCS[source]
    start = doc.text.index(sentence)
    spans = document_sentences(doc.text)
    return GATES.check(analyse(question), 0.9, doc, spans, start, start + len(sentence))


def failed(verdicts) -> str:
    return next((v.gate for v in verdicts if not v.passed), "")


# ----------------------------------------------------------------------------- names


def test_names_are_found_by_context_not_by_capital_letters():
    names = set(extract_names(HARBOUR + FORUM))
    assert {"Marek", "Lind", "Aino", "Saari", "Tallinn", "Juris", "Kalns"} <= names
    # German nouns are capitalised too, but they are not names.
    assert not names & {"Hafenminister", "Fährlinie", "Abfahrten", "Werft", "Zusammenarbeit", "Dienstag"}


def test_name_spellings_match_strictly():
    assert same_name("Shoigu's", "Schoigus") and same_name("Belousov", "Belousow") and same_name("Linds", "Lind")
    assert not same_name("Gedicht", "Gericht") and not same_name("Lind", "Linde")


def test_lower_case_questions_find_their_names():
    q = analyse("when did marek lind visit paldiski?")
    assert question_names(q, NAMES) == ("marek", "lind", "paldiski")
    assert group_names(question_names(q, NAMES), HARBOUR) == (("marek", "lind"), ("paldiski",))


# ----------------------------------------------------------------------------- the gates


def test_a_name_of_another_event_is_a_near_miss():
    """Lind met Saari in Tallinn and Kalns in Helsinki: 'When did Lind meet Kalns in Tallinn?' has no answer."""
    verdicts = check(
        "When did Marek Lind meet Juris Kalns in Tallinn?",
        "harbour.txt",
        "Der estnische Hafenminister Marek Lind traf am Dienstag in Tallinn mit der finnischen Verkehrsministerin "
        "Aino Saari zusammen.",
    )
    assert failed(verdicts) == "names-in-article"
    ok = check(
        "When did Marek Lind meet Aino Saari?",
        "harbour.txt",
        "Der estnische Hafenminister Marek Lind traf am Dienstag in Tallinn mit der finnischen Verkehrsministerin "
        "Aino Saari zusammen.",
    )
    assert failed(ok) == "", ok


def test_a_number_next_to_another_noun_does_not_answer_how_many():
    sentence = "Der Sturm „Helga“ hat am Freitag an der Küste von Riga mehr als 40 Bäume entwurzelt."
    assert failed(check("Wie viele Bäume hat der Sturm Helga entwurzelt?", "storm.txt", sentence)) == ""
    assert failed(check("Wie viele Häuser hat der Sturm in Riga zerstört?", "storm.txt", sentence)) == "kind:quantity"
    # A date is no count: "am 14." is not fourteen of anything.
    assert [n for *_, n in numbers("Am 14. März 2024 kamen zwölf Schiffe.")] == ["zwölf"]


def test_a_date_needs_the_asked_events_participant_in_its_sentence():
    sentence = "Am Mittwoch besuchte er dann die Werft in Paldiski."
    assert failed(check("When did Lind visit the shipyard in Paldiski?", "harbour.txt", sentence)) == ""
    other = "Saari betonte, Finnland wolle die Zusammenarbeit bei der Küstenwache vertiefen."
    assert failed(check("Wann sprach Saari über die Küstenwache?", "harbour.txt", other)) == "kind:when"


def test_since_when_needs_a_start():
    sentence = (
        "Der estnische Hafenminister Marek Lind traf am Dienstag in Tallinn mit der finnischen "
        "Verkehrsministerin Aino Saari zusammen."
    )
    assert failed(check("Seit wann ist Marek Lind Hafenminister?", "harbour.txt", sentence)) == "kind:when"


def test_what_someone_said_needs_them_as_the_speaker():
    sentence = "Lind sagte, die neue Fährlinie werde ab dem Frühjahr zwölf Abfahrten pro Tag anbieten."
    assert failed(check("Was sagte Lind über die Fährlinie?", "harbour.txt", sentence)) == ""
    assert failed(check("Was sagte Aino Saari über die Fährlinie?", "harbour.txt", sentence)) == "kind:statement"
    assert statement_topic("What did Lind say about the ferry line?") == ["ferry"]


def test_off_topic_questions_share_too_few_words():
    sentence = "Saari betonte, Finnland wolle die Zusammenarbeit bei der Küstenwache vertiefen."
    # Unknown capitalised words may be names the index lacks, or nouns; either way nothing is stated.
    assert failed(check("Schreib mir ein Gedicht über den Herbst.", "harbour.txt", sentence)) in (
        "unknown-names",
        "anchor",
    )
    assert failed(check("Schreib mir bitte eine Krankmeldung.", "harbour.txt", sentence)) == "anchor"
    assert failed(check("What is the boiling point of water?", "harbour.txt", sentence)) == "anchor"


def test_the_answer_may_continue_in_the_next_sentence():
    """'Am Mittwoch besuchte er …' follows the sentence that names Lind: the date is taken from there."""
    doc = DOCS["harbour.txt"]
    first = "Lind sagte, die neue Fährlinie werde ab dem Frühjahr zwölf Abfahrten pro Tag anbieten."
    start = doc.text.index(first)
    s = Scored(Sentence(0, doc.source, start, start + len(first), first), 0.95, 0.9, 0.5, 0.0, 0.0)

    class Snapshot:
        documents = DOCS

    decision = decide(analyse("When did Lind visit the shipyard?"), [s], Snapshot(), GATES)
    assert not decision.abstained
    quoted = [doc.text[a:b] for a, b in decision.spans]
    assert quoted == ["Am Mittwoch besuchte er dann die Werft in Paldiski."]


# ----------------------------------------------------------------------------- words and dates


def test_relative_dates_resolve_against_the_article():
    day = dt.date(2024, 10, 14)
    assert [r.format("en") for r in resolve("Anfang des Monats übten die Flotten.", day)] == ["early October 2024"]
    assert [r.format("de") for r in resolve("Im vergangenen Monat übten sie.", day)] == ["September 2024"]
    assert [r.date for r in resolve("vor zwei Tagen", day)] == [dt.date(2024, 10, 12)]
    assert [r.date for r in resolve("three days ago", day)] == [dt.date(2024, 10, 11)]
    assert [r.format("en") for r in resolve("letzte Woche", day)] == ["week of 7 October 2024"]


def test_language_has_no_tie_for_english():
    assert detect_language("Was sagte Kirby?") == "de"
    assert detect_language("Was hat Lind gesagt?") == "de"
    assert detect_language("What about Li Shangfu?") == "en"


def test_question_types_beyond_the_first_word():
    assert analyse("after the storm, where did the fishermen go?").kind == "where"
    assert analyse("Warum traf Lind Saari?").kind == "why"
    assert analyse("Hat Lind die Werft besucht?").kind == "yesno"
    assert analyse("Worüber sprachen Lind und Saari?").kind == "statement"
    assert analyse("How many trees did the storm uproot?").counted == "trees"


def test_page_furniture_and_captions_are_not_quoted():
    assert is_furniture("Text ist eine Übersetzung vom Artikel:")
    assert is_furniture("Marek Lind (links) und Aino Saari am 5. März 2024 in Tallinn.")
    assert not is_furniture("Lind sagte: Die Fähre kommt.")


# ----------------------------------------------------------------------------- the real model


def test_words_of_origin_and_roles_match_across_languages():
    """ "Ukrainian" is "ukrainischen" and "Ukrainer"; a "defence secretary" is a "Verteidigungsminister"."""
    assert similar_words("Ukrainian", "ukrainischen") and similar_words("Ukrainians", "Ukrainer")
    assert similar_words("Canadian", "kanadische") and similar_words("Syrian", "Syrien")
    assert not similar_words("Persian", "Person") and not similar_words("Asian", "Asphalt")
    question = analyse("Which Canadian defence secretary visited the harbour?")
    idf = lambda term: 1.0  # noqa: E731
    role = lexical_overlap(question, "Die kanadische Verteidigungsministerin Ruth Ames besuchte den Hafen.", idf)
    other = lexical_overlap(question, "Der Sekretär des Hafenamtes besuchte den Hafen.", idf)
    assert role > other


# Invented lines in the dictionary's format (German senses :: English senses, group by group).
DICTIONARY = [
    "# a comment line",
    "Werft {f} | Werften {pl} :: shipyard; dockyard | shipyards; dockyards",
    "Versorgung {f} [econ.] :: supply",
    "Übung {f} | Übungen {pl} :: exercise; drill | exercises; drills",
    "Fähre {f} | Fähren {pl} :: ferry",  # groups that do not pair up say nothing
]


def test_english_words_are_found_in_translation():
    """ "shipyard" is in "Werft", "supply" and "drills" in "Versorgungsübungen", at the weight of a translation."""
    lexicon = Lexicon.parse(DICTIONARY)
    assert sorted(lexicon.translations("drills")) == ["ubung", "ubungen"] and not lexicon.translations("ferries")
    idf = lambda term: 1.0  # noqa: E731
    question = analyse("Which shipyard did Lind visit on Wednesday?")
    sentence = "Am Mittwoch besuchte er dann die Werft in Paldiski."
    plain, translated = lexical_overlap(question, sentence, idf), lexical_overlap(question, sentence, idf, lexicon)
    assert translated == pytest.approx(plain + 0.5 / 4)  # shipyard, Lind, visit, Wednesday: half of one word
    drills = analyse("Where did the coast guard hold supply drills?")
    compound = "Die Küstenwache hielt vor Riga Versorgungsübungen ab."
    assert lexical_overlap(drills, compound, idf, lexicon) > lexical_overlap(drills, compound, idf)
    german = analyse("Welche Werft besuchte Lind am Mittwoch?")  # a German question is not translated
    assert lexical_overlap(german, sentence, idf, lexicon) == lexical_overlap(german, sentence, idf)


def test_a_question_about_the_report_itself():
    """Only a question about the article itself ("the report on …") takes its byline as the answer."""
    assert THIS_ARTICLE.search("Which news sources are named for the report on the storm?")
    assert THIS_ARTICLE.search("Welche Quellen nennt der Bericht über den Sturm?")
    assert not THIS_ARTICLE.search("In which newspaper did Ozola write her article?")
    assert not THIS_ARTICLE.search("Which agency denied the reports of a second storm?")


def test_a_missing_dictionary_translates_nothing(tmp_path):
    assert len(load(tmp_path / "no-dictionary")) == 0


@pytest.fixture(scope="module")
def invented_engine(tmp_path_factory, embedder, model_cache):
    from embeddings import index_paths
    from rag import Engine

    corpus = tmp_path_factory.mktemp("invented")
    for source, (text, date) in ARTICLES.items():
        (corpus / source).write_text(f"date: {date.isoformat()}\n\n{text}", encoding="utf-8")
    index = tmp_path_factory.mktemp("invented-index")
    index_paths([corpus], index, embedder)
    return Engine(index, embedder=embedder, cache_dir=model_cache)


# Near misses on the invented articles that the fitted scorer answers (issue 22, open): the gates that caught
# them are now signals whose weight is learned from data with few near misses, not vetoes.
_FITTED_MISS = pytest.mark.xfail(strict=True, reason="issue 22: the fitted scorer answers this near miss; open")


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        pytest.param(
            "When did Marek Lind meet Juris Kalns in Tallinn?", marks=_FITTED_MISS
        ),  # met Saari in Tallinn, Kalns in Helsinki
        pytest.param(
            "Wie viele Häuser hat der Sturm Helga in Riga zerstört?", marks=_FITTED_MISS
        ),  # 40 trees, not houses
        pytest.param("Was sagte Aino Saari über die Strombörse?", marks=_FITTED_MISS),  # Kalns spoke of it
        pytest.param("Seit wann ist Ilze Ozola Bürgermeisterin?", marks=_FITTED_MISS),
        pytest.param("Tell me a joke about ferries.", marks=_FITTED_MISS),
    ],
)
def test_near_miss_and_off_topic_questions_abstain(invented_engine, question):
    answer = invented_engine.ask(question)
    assert answer.abstained, answer.text
    assert answer.reason


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "pattern"),
    [
        ("When did Marek Lind meet Aino Saari?", r"Tuesday, 5 March 2024"),
        ("Wie viele Bäume hat der Sturm Helga entwurzelt?", r"40"),
        pytest.param(
            "Was forderte Kalns beim Ostsee-Forum?",
            r"Strombörse",
            marks=pytest.mark.xfail(
                strict=True,
                reason="issue 22: the conditional-logit ranker (held out on XQuAD: +1.9 de, +3.7 en points) puts "
                "the sentence that names the forum above the one with the demand, and quotes it alone; open",
            ),
        ),
        ("Wie hoch ist der Schaden durch den Sturm laut Ozola?", r"zwei Millionen Euro"),
    ],
)
def test_invented_articles_are_answered(invented_engine, question, pattern):
    answer = invented_engine.ask(question)
    assert not answer.abstained, answer.text
    assert re.search(pattern, answer.text), answer.text


@pytest.mark.slow
def test_the_sources_of_the_report_are_its_byline(invented_engine):
    """The byline credits the whole article: it answers for the report, though it shares no word with the question."""
    answer = invented_engine.ask("Which news sources are named for the report on storm Helga?")
    assert not answer.abstained and "LETA" in answer.text, answer.text


@pytest.mark.slow
def test_explain_shows_the_probabilities_and_the_gates(invented_engine):
    x = invented_engine.explain("When did Marek Lind meet Juris Kalns in Tallinn?")
    decided = x.decision.verdicts[0]
    assert decided.gate.startswith("probability") and "threshold" in decided.detail
    assert decided.passed == (not x.answer.abstained)
    assert [v.gate for v in x.decision.verdicts[1:]][:1] == ["evidence"]  # the gates run on the best sentence
    assert len(x.contributions) == len(x.ranked) and all(x.contributions)


def _floors(path, engine):
    from rag.evaluate import evaluate, load_cases

    report = evaluate(load_cases(path), lambda q: engine.ask(q))
    kinds = {k: right / total for k, (right, total) in report.by_kind.items()}
    return report, kinds


@pytest.mark.slow
def test_dev_sets_stay_above_their_floors(engine):
    """Floors just under the figures of the fitted scorer when it landed (see the README): a regression fails.

    These sets are part of what the scorer was fitted on, so the figures overstate; the held-out
    figures are those of ``scripts/fit.py``.
    """
    report, kinds = _floors(DEV2_SET, engine)
    assert report.answer_accuracy >= 0.55, report.table()
    assert kinds["near-miss"] >= 5 / 12 and kinds["off-topic"] >= 11 / 12, report.table()
    right_among_answered = report.answer_accuracy * report.answerable / max(report.answered, 1)
    assert right_among_answered >= 0.85, report.table()
    dev, _ = _floors(DEV_SET, engine)
    assert dev.answer_accuracy >= 0.7, dev.table()
    json.dumps(report.to_dict())  # the report serialises (rag eval --json)


# ----------------------------------------------------------------------------- edges the review found


def test_a_date_without_the_asked_events_participant_is_not_attached():
    """A dated sentence of the same article that does not name the asked person fails ``attached``."""
    sentence = "Der Sturm „Helga“ hat am Freitag an der Küste von Riga mehr als 40 Bäume entwurzelt."
    verdicts = check("When did Ilze Ozola speak about the storm damage?", "storm.txt", sentence)
    assert failed(verdicts) == "attached", verdicts


def test_a_name_the_index_never_saw_makes_a_near_miss():
    sentence = (
        "Der estnische Hafenminister Marek Lind traf am Dienstag in Tallinn mit der finnischen "
        "Verkehrsministerin Aino Saari zusammen."
    )
    assert failed(check("When did Lind meet Scholz?", "harbour.txt", sentence)) == "names-in-article"
    assert failed(check("Wann traf Lind Scholz?", "harbour.txt", sentence)) == "names-in-article"
    # German nouns the index never saw are not names: "mit Datum" asks for a date.
    assert failed(check("An welchem Tag (mit Datum) traf Lind Saari?", "harbour.txt", sentence)) == ""


def test_names_that_end_like_adjectives_or_nouns_stay_names():
    names = NameIndex([("Adrian", "Wagner", "Russland", "Russian")])
    assert question_names(analyse("When did Adrian meet Wagner?"), names) == ("Adrian", "Wagner")
    assert question_names(analyse("When did the Russian minister come?"), names) == ()


def test_odd_inputs_give_verdicts_not_exceptions():
    empty = Document("empty.txt", "", "", "0" * 64, None)
    undated = Document("undated.txt", "Lind kam. Er blieb zwei Tage.", "", "0" * 64, None)
    for doc in (empty, undated):
        gates = Gates(NameIndex.of([doc]), lambda term: 1.0, lambda w: False, ScoringConfig(), fake_embed)
        for question in ("When did Lind come?", "How many days did Lind stay?", "?!", "Was sagte (Lind)?"):
            q = analyse(question)
            verdicts = gates.check(q, 0.9, doc, document_sentences(doc.text), 0, len(doc.text))
            assert verdicts and all(isinstance(v.passed, bool) for v in verdicts)
    assert resolve("vor 1000000 Tagen", dt.date(2024, 1, 1)) == []


def test_the_settings_are_checked():
    with pytest.raises(ValueError, match="try_count"):
        ScoringConfig(try_count=0)
    with pytest.raises(ValueError, match="min_dense"):
        ScoringConfig(min_dense=float("nan"))


def test_memo_keeps_no_text_and_holds_its_byte_budget():
    from embeddings.language.memo import text_memo

    calls = []

    @text_memo(max_bytes=20_000)
    def spans(text):
        calls.append(text)
        return tuple(range(len(text) // 100))

    for i in range(50):
        spans(f"{i} " + "x" * 5_000)
    entries, _ = spans.info()
    assert 0 < entries < 50  # older results went when the budget was spent
    spans("49 " + "x" * 5_000)
    assert len(calls) == 50  # the newest is still there


@pytest.mark.slow
def test_one_passage_asked_for_still_cites_every_quote(invented_engine):
    """k=1 with a two-sentence quote from two passages: both are cited, every [n] exists."""
    for question in ("When did Marek Lind meet Aino Saari?", "Was forderte Kalns beim Ostsee-Forum?"):
        answer = invented_engine.ask(question, k=1)
        numbers_cited = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
        assert numbers_cited <= {c.n for c in answer.citations}, answer


def test_name_counts_equal_comparing_every_word_with_every_name():
    """The bucketed count (words + names) gives what comparing all pairs gives, on the invented articles."""
    from embeddings.language.entities import document_names
    from rag.answering.ground import _name_counts, _plain, same_name
    from rag.answering.text import words

    for doc in DOCS.values():
        names = (*document_names(doc), "X", "Ö")  # and one-letter names, which are compared with every word
        brute = {n: sum(same_name(n, _plain(w)) for w in words(doc.text)) for n in names}
        assert _name_counts(doc.text, names) == brute
        assert any(brute.values())

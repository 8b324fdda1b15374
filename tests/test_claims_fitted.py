"""The fitted claim decision, the numbers written in words, and the labelled set it is fitted on.

Fast: no embedding model (an obvious fake where a similarity is needed); the system dictionary
(Debian's trans-de-en) where a test needs a translation, skipped without it.
"""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

from rag import Citation
from rag.answering.scorer import Logistic, ScorerFileError
from rag.answering.text import fold, words
from rag.fitting import choose_keep_threshold, claim_cross_validate, fit_claim_model
from rag.llm.claims import (
    CLAIM_FEATURES,
    DIRECTIONS,
    ClaimChecker,
    ClaimModel,
    _negated,
    _roles,
    cited_numbers,
    facts_of,
    number_mentions,
    shipped_model,
    strip_citations,
    turn_negation,
)
from scripts import claims_set

from .test_claims import FakeEmbedder

# Invented text: sport, science, history; no news of the seeds, nothing of the question sets.
RACE = Citation(
    1,
    "lauf.txt",
    "Stadtlauf in Falkenau",
    "Die Läuferin Mara Tessin gewann am Sonntag den Stadtlauf von Falkenau. Sie lief die 21 Kilometer in "
    "einer Stunde und elf Minuten. Dreihundert Läuferinnen und Läufer waren am Start.",
    0,
    170,
    0.5,
    "2025-05-12",
)


def _values(text: str) -> list[set[str]]:
    return [set(forms) for _, _, forms in number_mentions(text)]


@pytest.mark.parametrize(
    "text, value",
    [
        ("three hundred", "300"),
        ("dreihundert", "300"),
        ("Dreihundert", "300"),
        ("two thousand and five", "2005"),
        ("zweitausendfünf", "2005"),
        ("einundzwanzig", "21"),
        ("twenty-one", "21"),
        ("siebzehn", "17"),
        ("a thousand", "1000"),
        ("eine Million", "1000000"),
        ("2,5 Millionen", "2500000"),
        ("2.5 million", "2500000"),
        ("neunzehnhundertachtzig", "1980"),
    ],
)
def test_numbers_in_words_have_one_value_in_either_language(text, value):
    assert _values(text) == [{value}]


@pytest.mark.parametrize("text", ["ein Mann", "one of them", "a day", "Die Einheit", "Achtel", "Elfmeter", "42", ""])
def test_articles_and_words_that_merely_begin_like_numbers_are_not_numbers(text):
    assert number_mentions(text) == []


def test_a_run_of_number_words_stops_at_punctuation():
    assert _values("zwanzig, drei") == [{"20"}, {"3"}]


def test_a_number_in_words_is_checked_against_digits_and_the_other_language():
    checker = ClaimChecker([RACE])
    assert checker.check("Three hundred runners started [1].").kept
    assert checker.check("300 runners started [1].").kept
    assert checker.check("She ran 21 kilometres [1].").kept
    assert not checker.check("Four hundred runners started [1].").kept
    assert not checker.check("She ran 22 kilometres [1].").kept


def test_contractions_and_a_common_first_word_are_not_names():
    f = facts_of("I’m sure it’s true, and Don’t worry [1].")
    assert f.names == ()
    assert "Tom" in facts_of("Tom Brandt opened it [1].").names  # a run of capitalised words is a name


def test_negation_is_read_in_either_language_and_with_either_apostrophe():
    assert _negated("He didn’t win.") and _negated("She did not win.") and _negated("Sie gewann nicht.")
    assert _negated("Er hatte keine Chance.") and not _negated("Er hatte eine Chance.")
    assert not _negated("It is not untrue that he never came.".replace("untrue", "true"))  # two negations


# --- the fitted decision -------------------------------------------------------------------------------


def _keep_all() -> ClaimModel:
    return claims_set.blank_model()


def test_the_shipped_decision_loads_with_its_provenance():
    model = shipped_model()
    assert set(model.models) == set(DIRECTIONS) == set(model.thresholds)
    assert all(m.features == CLAIM_FEATURES for kinds in model.models.values() for m in kinds.values())
    assert all(0.0 < t < 1.0 for t in model.thresholds.values())
    # one model per kind of wrong claim that passes the gate often enough to fit one, in each direction
    assert {"negation", "swap"} <= set(model.models["same"]) and {"negation", "swap"} <= set(model.models["cross"])
    assert model.provenance["script"] == "scripts/claims_set.py" and "held_out" in model.provenance


def test_a_decision_file_round_trips_and_a_changed_one_is_refused(tmp_path):
    path = tmp_path / "claims.json"
    model = shipped_model()
    model.save(path)
    again = ClaimModel.load(path)
    assert again == model
    data = json.loads(path.read_text(encoding="utf-8"))
    data["claim_check"]["thresholds"]["cross"] = 0.0  # keep everything across languages
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ScorerFileError, match="checksum"):
        ClaimModel.load(path)
    with pytest.raises(ScorerFileError, match=r"claims_set\.py"):
        ClaimModel.load(tmp_path / "missing.json")


def test_a_decision_fitted_for_other_signals_is_refused(tmp_path):
    n = len(CLAIM_FEATURES) - 1
    other = Logistic(CLAIM_FEATURES[:-1], (0.0,) * n, (1.0,) * n, (0.0,) * n, 0.0)
    path = tmp_path / "old.json"
    ClaimModel({d: {"wrong": other} for d in DIRECTIONS}, dict.fromkeys(DIRECTIONS, 0.5), {}).save(path)
    with pytest.raises(ScorerFileError, match="other signals"):
        ClaimModel.load(path)


def test_no_decision_keeps_a_name_date_or_number_the_passage_lacks():
    """Even a decision that keeps everything it is asked about: the gate comes first."""
    fake = FakeEmbedder()
    checker = ClaimChecker([RACE], embed_queries=fake, embed_documents=fake, model=_keep_all())
    rng = random.Random(5)
    names = ["Mara Tessin", "Jola Brink", "Falkenau", "Ostheim"]
    numbers = ["21", "22", "three hundred", "four hundred", "elf", ""]
    kept = 0
    for _ in range(200):
        sentence = f"{rng.choice(names)} ran {rng.choice(numbers)} kilometres on Sunday [1]."
        result = checker.check(sentence)
        if not result.kept:
            continue
        kept += 1
        assert result.probability is not None  # the decision was asked
        seen = {fold(w) for w in words(f"{RACE.title} {RACE.passage}")}
        for name in facts_of(sentence).names:
            assert fold(name) in seen, sentence
        assert not re.search(r"\b22\b|four hundred", strip_citations(sentence)), sentence
    assert 0 < kept < 200


def test_the_decision_removes_what_its_threshold_rejects():
    fake = FakeEmbedder()
    n = len(CLAIM_FEATURES)
    never = Logistic(CLAIM_FEATURES, (0.0,) * n, (1.0,) * n, (0.0,) * n, -10.0)
    keep = Logistic(CLAIM_FEATURES, (0.0,) * n, (1.0,) * n, (0.0,) * n, 10.0)
    # the least of the detectors decides: one that finds the claim wrong is enough
    model = ClaimModel({d: {"swap": keep, "negation": never} for d in DIRECTIONS}, dict.fromkeys(DIRECTIONS, 0.5), {})
    result = ClaimChecker([RACE], embed_queries=fake, embed_documents=fake, model=model).check(
        "Mara Tessin gewann den Stadtlauf [1]."
    )
    assert not result.kept and "probability" in result.reason and result.probability < 0.5


@pytest.mark.parametrize("seed", range(5))
def test_the_chosen_threshold_keeps_at_most_the_target_share_of_wrong_claims(seed):
    rng = np.random.default_rng(seed)
    n = 300
    labels = rng.integers(0, 2, n)
    p = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1)
    passed = rng.random(n) < 0.8
    slices = np.array(["a", "b"])[rng.integers(0, 2, n)]
    t = choose_keep_threshold(p, passed, labels, slices, 0.05)
    kept = passed & (p >= t)
    for s in "ab":
        wrong = (labels == 0) & (slices == s)
        assert (kept & wrong).sum() <= 0.05 * wrong.sum()
    lower = [x for x in p[passed] if x < t]
    if lower:  # the lowest such threshold: one step lower breaks the target somewhere
        t2 = max(lower)
        kept2 = passed & (p >= t2)
        assert any(
            (kept2 & (labels == 0) & (slices == s)).sum() > 0.05 * ((labels == 0) & (slices == s)).sum() for s in "ab"
        )


def test_held_out_decisions_do_not_depend_on_the_held_out_labels():
    rng = np.random.default_rng(3)
    n = 240
    rows = rng.normal(size=(n, len(CLAIM_FEATURES)))
    labels = (rows[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)
    passed = np.ones(n, dtype=bool)
    groups = [f"article{i // 10}" for i in range(n)]
    slices = ["same"] * n
    kept, _ = claim_cross_validate(rows, passed, labels, groups, slices, 4, 13, 1.0, 0.05)
    fold = np.array(claims_set_folds(groups))
    flipped = labels.copy()
    flipped[fold == 0] = 1 - flipped[fold == 0]
    kept2, _ = claim_cross_validate(rows, passed, flipped, groups, slices, 4, 13, 1.0, 0.05)
    assert (kept[fold == 0] == kept2[fold == 0]).all()
    models, thresholds = fit_claim_model(rows, passed, labels, groups, slices, 4, 13, 1.0, 0.05)
    assert set(models) == set(thresholds) == {"same"}
    kinds = np.where(labels == 1, "faithful", np.array(["swap", "negation"])[rng.integers(0, 2, n)])
    kept3, _ = claim_cross_validate(rows, passed, labels, groups, slices, 4, 13, 1.0, 0.05, list(kinds))
    flipped_kinds = kinds.copy()
    flipped_kinds[(fold == 0) & (labels == 0)] = "swap"
    kept4, _ = claim_cross_validate(rows, passed, labels, groups, slices, 4, 13, 1.0, 0.05, list(flipped_kinds))
    assert (kept3[fold == 0] == kept4[fold == 0]).all()
    models, _ = fit_claim_model(rows, passed, labels, groups, slices, 4, 13, 1.0, 0.05, list(kinds))
    assert set(models["same"]) == {"swap", "negation"}


def test_a_spread_keeps_the_threshold_further_below_the_target():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 2000)
    p = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1)
    passed = np.ones(2000, dtype=bool)
    plain = choose_keep_threshold(p, passed, labels, ["a"] * 2000, 0.05)
    careful = choose_keep_threshold(p, passed, labels, ["a"] * 2000, 0.05, spread=1.0)
    wrong = labels == 0
    assert careful > plain
    n = wrong.sum()
    assert (wrong & (p >= careful)).sum() <= 0.05 * n - np.sqrt(n * 0.05 * 0.95)


def claims_set_folds(groups):
    from rag.fitting import folds

    return folds(groups, 4, 13)


# --- the labelled set ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dictionary(tmp_path_factory):
    """A few invented dictionary lines in the Ding format, with sentence entries."""
    lines = [
        "Die Läuferin gewann 2019 das Rennen in Falkenau. :: The runner won the race in Falkenau in 2019.",
        "Der Forscher maß drei Proben im Labor. :: The researcher measured three samples in the lab.",
        "Der König verlor die Schlacht bei Ostheim nicht. :: The king did not lose the battle at Ostheim.",
        "Die Mannschaft aus Kornau schlug das Team aus Birkfeld. :: The team from Kornau beat the side from Birkfeld.",
        "Im Jahr 1648 endete der Krieg nach dreißig Jahren. :: In 1648 the war ended after thirty years.",
        "Die Sonde erreichte den Mars nach sieben Monaten. :: The probe reached Mars after seven months.",
        "Der Trainer lobte die Abwehr der Mannschaft sehr. :: The coach praised the team's defence very much.",
        "Die Chemikerin fand zwei neue Verbindungen im Gestein. :: The chemist found two new compounds in the rock.",
        "Zypern {n} /CY/ [geogr.] :: Cyprus",
        "Reise {f} | Reisen {pl} :: journey; trip | journeys; trips",
    ]
    path = tmp_path_factory.mktemp("dict") / "de-en"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_dictionary_sentence_pairs_are_read_without_word_entries(dictionary):
    pairs = claims_set.dictionary_pairs(dictionary)
    assert len(pairs) == 8
    assert all(de.endswith(".") and en.endswith(".") for de, en in pairs)


def test_the_set_is_the_same_for_one_seed_and_its_wrong_claims_differ_from_their_faithful_one(dictionary):
    a = claims_set.build(3, dictionary_sentences=8, dictionary=dictionary)
    assert a == claims_set.build(3, dictionary_sentences=8, dictionary=dictionary)
    assert a != claims_set.build(4, dictionary_sentences=8, dictionary=dictionary)
    by_id = {c.id: c for c in a}
    kinds = {c.kind for c in a}
    assert kinds <= set(claims_set.KINDS) and "faithful" in kinds
    for c in a:
        assert c.claim.endswith("[1].") and cited_numbers(c.claim) == (1,)
        assert c.label == (c.kind == "faithful")
        if c.kind != "faithful":
            base = by_id[c.id.rsplit("-", 1)[0].removesuffix("-other")]
            assert strip_citations(c.claim) != strip_citations(base.claim)
            assert (c.group, c.direction, c.passage) == (base.group, base.direction, base.passage)
    assert {c.direction for c in a} == {"de-de", "en-de"}


def test_one_article_is_one_fold_unit(dictionary):
    claims = claims_set.build(3, dictionary_sentences=8, dictionary=dictionary)
    group_of_passage: dict[str, set[str]] = {}
    for c in claims:
        group_of_passage.setdefault(c.passage, set()).add(c.group)
    assert all(len(g) == 1 for g in group_of_passage.values())
    xquad = {c.group for c in claims if c.direction == "de-de"}
    assert len(xquad) == len(claims_set.xquad_articles())


@pytest.mark.parametrize(
    "sentence, language",
    [
        ("The runner Mara Tessin won the race in Falkenau in 2019.", "en"),
        ("The king did not lose the battle at Ostheim.", "en"),
        ("Die Chemikerin fand zwei neue Verbindungen im Gestein.", "de"),
        ("Der König verlor die Schlacht bei Ostheim nicht.", "de"),
        ("Die Sonde erreichte den Mars nach sieben Monaten.", "de"),
    ],
)
def test_made_wrong_claims_change_what_they_say_they_change(sentence, language):
    rng = random.Random(1)
    negated = turn_negation(sentence, language)
    if negated is not None:
        assert _negated(negated) != _negated(sentence), negated
    changed = claims_set.change_number(sentence, language, rng)
    if changed is not None:
        before = {f for _, _, fs in number_mentions(sentence) for f in fs} | set(re.findall(r"\d+", sentence))
        after = {f for _, _, fs in number_mentions(changed) for f in fs} | set(re.findall(r"\d+", changed))
        assert before != after, changed
    names = claims_set.names_in(sentence, language, known=("Ostheim", "Mars", "Mara", "Tessin", "Falkenau"))
    swapped = claims_set.swap_names(sentence, names, rng)
    if swapped is not None:
        assert swapped != sentence
        assert sorted(re.findall(r"\w+", swapped)) == sorted(re.findall(r"\w+", sentence))
    replaced = claims_set.change_name(sentence, names, ["Birkfeld", "Kornau"], rng)
    if names:
        assert replaced is not None and replaced != sentence


def test_light_rewording_of_a_german_sentence_adds_nothing():
    rng = random.Random(0)
    for sentence in [
        "Die Sonde (gebaut in Kornau) erreichte den Mars nach sieben Monaten.",
        "Die Mannschaft aus Kornau schlug das Team aus Birkfeld, das zuvor ungeschlagen war.",
        "Kornau und Birkfeld spielten am Sonntag gegeneinander.",
    ]:
        text, how = claims_set.reword_de(sentence, rng)
        assert how != "verbatim" and text != sentence
        assert {fold(w) for w in words(text)} <= {fold(w) for w in words(sentence)}


# --- with the real model: invented sport, science and history -----------------------------------------

LAB = Citation(
    2,
    "labor.txt",
    "Neue Verbindung entdeckt",
    "Die Chemikerin Ilse Vornholt entdeckte im Labor in Quellburg eine Verbindung, die Wasser bindet. "
    "Ihr Team prüfte die Probe drei Wochen lang. Die Ergebnisse erschienen im März.",
    0,
    180,
    0.5,
    "2025-04-02",
)
SIEGE = Citation(
    3,
    "belagerung.txt",
    "Die Belagerung von Harnstedt",
    "Im Jahr 1523 belagerte Graf Udo von Lemmen die Stadt Harnstedt. Die Bürger ergaben sich nicht; "
    "nach vierzig Tagen zog das Heer ab.",
    0,
    130,
    0.5,
    None,
)
FAITHFUL = [
    "Mara Tessin won the Falkenau city run on Sunday [1].",
    "She ran the 21 kilometres in one hour and eleven minutes [1].",
    "The chemist Ilse Vornholt discovered a compound that binds water [2].",
    "Her team tested the sample for three weeks [2].",
    "In 1523 Count Udo von Lemmen besieged the town of Harnstedt [3].",
    # A known miss, kept in view: its closest passage sentence also holds another clause's "nicht" ("Die Bürger
    # ergaben sich nicht; nach vierzig Tagen zog das Heer ab."), the negation signal compares whole sentences, and
    # "withdrew" (irregular) cannot be turned round to see that "did not withdraw" is no closer.
    pytest.param("After forty days the army withdrew [3].", marks=pytest.mark.xfail(strict=True)),
]
WRONG = [
    "Mara Tessin did not win the Falkenau city run [1].",  # negation
    "She ran the 42 kilometres in one hour and eleven minutes [1].",  # number
    "Her team tested the sample for five weeks [2].",  # number
    "In 1532 Count Udo von Lemmen besieged the town of Harnstedt [3].",  # date
    "The citizens of Harnstedt surrendered after forty days [3].",  # negation removed
    "Ilse Vornholt besieged the town of Harnstedt [3].",  # a name from another passage
]


@pytest.fixture(scope="module")
def real_checker(embedder):
    return ClaimChecker(
        [RACE, LAB, SIEGE],
        embed_queries=lambda t: embedder.embed_queries(list(t)),
        embed_documents=lambda t: embedder.embed_documents(list(t)),
    )


@pytest.mark.slow
@pytest.mark.parametrize("sentence", FAITHFUL)
def test_faithful_english_sentences_on_invented_german_passages_are_kept(real_checker, sentence):
    result = real_checker.check(sentence)
    assert result.kept, result.reason


@pytest.mark.slow
@pytest.mark.parametrize("sentence", WRONG)
def test_wrong_english_sentences_on_invented_german_passages_are_removed(real_checker, sentence):
    result = real_checker.check(sentence)
    assert not result.kept, (result.probability, result.similarity)


# Names swapped: every name is in the passage, only their roles changed. Invented sport, science, history.
MATCH = Citation(
    4,
    "spiel.txt",
    "Pokalspiel in Kornau",
    "Die Mannschaft aus Kornau schlug am Samstag das Team aus Birkfeld mit drei zu eins. "
    "Der Trainer von Birkfeld, Jens Auler, lobte danach den Torwart von Kornau, Timo Reck.",
    0,
    160,
    0.5,
    "2025-06-02",
)
PHYSICS = Citation(
    5,
    "physik.txt",
    "Streit um die Theorie",
    "Die Physikerin Hanne Storm widerlegte im Jahr 1911 die Theorie des Astronomen Karl Weiden. "
    "Weiden hatte behauptet, das Licht der Sterne werde im Nebel langsamer.",
    0,
    150,
    0.5,
    None,
)
BATTLE = Citation(
    6,
    "schlacht.txt",
    "Die Schlacht bei Ostheim",
    "Herzog Otto von Brandt besiegte im Jahr 1347 den Grafen Ulrich von Sellin bei Ostheim. "
    "Sellin floh danach in die Stadt Warnow.",
    0,
    130,
    0.5,
    None,
)
SWAPPED = [
    ("The team from Kornau beat the side from Birkfeld three to one on Saturday [4].",
     "The team from Birkfeld beat the side from Kornau three to one on Saturday [4]."),
    ("Physicist Hanne Storm disproved the astronomer Karl Weiden's theory in 1911 [5].",
     "Physicist Karl Weiden disproved the astronomer Hanne Storm's theory in 1911 [5]."),
    # (written so that the "von"s do not make it German to the language guess)
    ("In 1347, the duke Otto von Brandt defeated the count Ulrich von Sellin near the town of Ostheim [6].",
     "In 1347, the duke Ulrich von Sellin defeated the count Otto von Brandt near the town of Ostheim [6]."),
    ("Die Mannschaft aus Kornau schlug das Team aus Birkfeld mit drei zu eins [4].",
     "Die Mannschaft aus Birkfeld schlug das Team aus Kornau mit drei zu eins [4]."),
    ("Die Physikerin Hanne Storm widerlegte 1911 die Theorie des Astronomen Karl Weiden [5].",
     "Die Physikerin Karl Weiden widerlegte 1911 die Theorie des Astronomen Hanne Storm [5]."),
    ("Herzog Otto von Brandt besiegte 1347 den Grafen Ulrich von Sellin bei Ostheim [6].",
     "Herzog Ulrich von Sellin besiegte 1347 den Grafen Otto von Brandt bei Ostheim [6]."),
]  # fmt: skip


@pytest.fixture(scope="module")
def swap_checker(embedder):
    return ClaimChecker(
        [MATCH, PHYSICS, BATTLE],
        embed_queries=lambda t: embedder.embed_queries(list(t)),
        embed_documents=lambda t: embedder.embed_documents(list(t)),
    )


@pytest.mark.slow
@pytest.mark.parametrize("faithful, swapped", SWAPPED)
def test_names_swapped_are_removed_and_the_faithful_sentence_kept(swap_checker, faithful, swapped):
    kept = swap_checker.check(faithful)
    assert kept.kept, kept.reason
    removed = swap_checker.check(swapped)
    assert not removed.kept, (removed.probability, removed.similarity)


def test_two_names_swapped_stand_in_each_other_s_context_in_either_language():
    german = "Die Mannschaft aus Kornau schlug das Team aus Birkfeld."
    assert _roles(
        ["Kornau", "Birkfeld"], "Die Mannschaft aus Kornau schlug das Team aus Birkfeld.", german, "de", False
    )
    assert _roles(["Kornau", "Birkfeld"], "Die Mannschaft aus Kornau schlug das Team aus Birkfeld.", german, "de",
                  False) == (1.0, 0.0)  # fmt: skip
    assert _roles(["Birkfeld", "Kornau"], "Die Mannschaft aus Birkfeld schlug das Team aus Kornau.", german, "de",
                  False)[1] == 2.0  # fmt: skip
    # "und" joins names of one role: their order says nothing
    assert _roles(["Kornau", "Birkfeld"], "Birkfeld und Kornau spielten.", "Kornau und Birkfeld spielten.", "de",
                  False)[1] == 0.0  # fmt: skip
    battle = "Herzog Otto von Brandt besiegte den Grafen Ulrich von Sellin bei Ostheim."
    right = _roles(["Otto", "Brandt", "Ulrich", "Sellin"], "Duke Otto von Brandt defeated Count Ulrich von Sellin.",
                   battle, "en", True)  # fmt: skip
    swapped = _roles(["Otto", "Brandt", "Ulrich", "Sellin"], "Duke Ulrich von Sellin defeated Count Otto von Brandt.",
                     battle, "en", True)  # fmt: skip
    assert right == (1.0, 0.0) and swapped[0] < right[0]  # a duke's neighbours are not around Ulrich


def test_a_claim_s_negation_is_turned_round_in_either_language():
    assert turn_negation("Xi did not come.", "en") == "Xi did come."
    assert turn_negation("Xi won't come.", "en") == "Xi will come."  # not "Xi wo come."
    assert turn_negation("Der König verlor die Schlacht nicht.", "de") == "Der König verlor die Schlacht."
    assert _negated(turn_negation("Mara Tessin was the winner.", "en"))


def test_explain_shows_the_decision_s_probability():
    from rag import Answer
    from rag.llm.claims import explain_claims
    from rag.types import ClaimCheck

    reason = "says what [1] does not (probability 0.12, similarity 0.80)"
    claims = (ClaimCheck("Xi kam [1].", False, reason, (1,), 0.8, 0.12),)
    assert "(similarity 0.80, probability 0.12)" in explain_claims(Answer("x", False, claims=claims))

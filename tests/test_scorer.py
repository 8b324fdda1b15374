"""The fitted answer scorer: its features, its file, the fitting machinery and the shipped model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from rag.answering.questions import analyse
from rag.answering.scorer import (
    CONTEXT,
    FEATURES,
    JUDGED,
    MODEL_FILE,
    AnswerScorer,
    Logistic,
    ScorerFileError,
    feature_rows,
)
from rag.answering.select import Scored, Sentence
from rag.evaluate import Case, load_cases, normalise
from rag.fitting import (
    Example,
    Pick,
    choose_threshold,
    cross_validate,
    figures,
    fit_logistic,
    fit_ranker,
    folds,
    make_scorer,
    without_answer,
)

ROOT = Path(__file__).resolve().parent.parent


def scored(text: str, dense: float, lexical: float = 0.0, hit: int = 0, start: int = 0, source: str = "a.txt"):
    return Scored(Sentence(hit, source, start, start + len(text), text), 0.0, dense, lexical, 0.0, 0.0)


def test_features_describe_each_candidate_among_the_others():
    q = analyse("Wann gewann der FC Altdorf den Pokal?")
    ranked = [
        scored("Der FC Altdorf gewann den Pokal 1987.", 0.86, 0.8, start=0),
        scored("Das Stadion liegt am Fluss.", 0.80, 0.0, start=38),
        scored("Im Finale traf Jonas Brem zweimal.", 0.83, 0.1, hit=1, start=200),
    ]
    context = np.arange(3 * len(CONTEXT), dtype=float).reshape(3, len(CONTEXT))
    rows = feature_rows(q, ranked, context)
    col = {name: rows[:, i] for i, name in enumerate(FEATURES)}
    assert rows.shape == (3, len(FEATURES))
    assert col["dense_gap"].tolist() == pytest.approx([0.0, -0.06, -0.03])
    assert col["dense_rr"].tolist() == pytest.approx([1.0, 1 / 3, 1 / 2])
    assert col["lexical_rr"].tolist() == pytest.approx([1.0, 1 / 3, 1 / 2])
    assert col["hit_rr"].tolist() == pytest.approx([1.0, 1.0, 0.5])
    # the first two are neighbours in the text (one space apart); the third stands alone
    assert col["neighbour_dense"].tolist() == pytest.approx([0.80, 0.86, 0.0])
    assert rows[:, -len(CONTEXT) :].tolist() == context.tolist()


def test_without_context_the_context_features_are_zero():
    q = analyse("Who won the cup?")
    rows = feature_rows(q, [scored("Der FC Altdorf gewann den Pokal 1987.", 0.86)])
    assert not rows[:, -len(CONTEXT) :].any()


def _scorer(threshold: float = 0.6, ranker_weights=None) -> AnswerScorer:
    def model(names, weights=None):
        n = len(names)
        return Logistic(names, (0.0,) * n, (1.0,) * n, tuple(weights if weights is not None else [0.1] * n), 0.0)

    return AnswerScorer(model(FEATURES, ranker_weights), model(JUDGED), model(JUDGED), threshold, {"seed": 1})


def test_the_scorer_file_round_trips_and_refuses_damage(tmp_path):
    scorer = _scorer()
    path = tmp_path / "scorer.json"
    scorer.save(path)
    assert AnswerScorer.load(path) == scorer
    data = json.loads(path.read_text())
    data["scorer"]["threshold"] = 0.1  # edited by hand: the checksum no longer matches
    path.write_text(json.dumps(data))
    with pytest.raises(ScorerFileError, match="checksum"):
        AnswerScorer.load(path)
    with pytest.raises(ScorerFileError, match=r"fit\.py"):
        AnswerScorer.load(tmp_path / "missing.json")


def test_quotes_one_sentence_two_or_none_by_the_threshold():
    scorer = _scorer(threshold=0.6)
    assert scorer.quotes(0.7, 0.9, 5) == 1
    assert scorer.quotes(0.5, 0.65, 5) == 2
    assert scorer.quotes(0.5, 0.65, 1) == 0  # no second sentence to quote
    assert scorer.quotes(0.3, 0.5, 5) == 0


def _examples(n_articles: int = 8, per: int = 10, seed: int = 0) -> list[Example]:
    """Synthetic questions: the answer's candidate has a higher first feature, with noise."""
    rng = np.random.default_rng(seed)
    out = []
    for a in range(n_articles):
        for q in range(per):
            rows = rng.normal(size=(6, len(FEATURES)))
            labels = np.zeros(6, dtype=np.int8)
            labels[q % 6] = 1
            rows[q % 6, 0] += 2.5
            case = Case(f"{a}-{q}", "q", f"art{a}.txt", ())
            out.append(Example(case, f"set/art{a}.txt", rows, labels, ("s",) * 6))
    return out


def test_logistic_fit_finds_the_informative_feature():
    ex = _examples()
    rows = np.vstack([e.rows for e in ex])
    labels = np.concatenate([e.labels for e in ex])
    _, _, w, _ = fit_logistic(rows, labels, l2=1.0)
    assert int(np.argmax(np.abs(w))) == 0 and w[0] > 0


def test_the_ranker_learns_what_sets_a_candidate_above_its_own_question_s_others():
    """Feature 0 tells the answer from the other candidates of its question; feature 1 only says how
    many of a question's candidates hold the answer (easy questions: every one scores high). A
    ranker must follow feature 0: a logistic over all candidates at once is pulled to feature 1."""
    rng = np.random.default_rng(4)
    examples = []
    for q in range(300):
        rows = rng.normal(size=(8, len(FEATURES)))
        labels = np.zeros(8, dtype=np.int8)
        easy = q % 2 == 0
        labels[: 6 if easy else 1] = 1
        rows[:, 1] = 3.0 if easy else 0.0
        rows[0, 0] += 1.5  # the best of every question, easy or not
        examples.append(Example(Case(str(q), "q", "a.txt", ()), f"s/a{q % 10}.txt", rows, labels, ("s",) * 8))
    ranker = fit_ranker(examples, l2=1.0)
    w = np.asarray(ranker.weights)
    assert int(np.argmax(np.abs(w))) == 0 and w[0] > 0
    assert abs(w[1]) < 0.1 * w[0]  # the same for every candidate of a question: no help in choosing
    assert ranker.bias == 0.0
    with pytest.raises(ValueError, match="nothing to fit"):
        fit_ranker([dataclasses.replace(e, labels=np.zeros(8, dtype=np.int8)) for e in examples[:3]], l2=1.0)


def test_folds_hold_out_whole_articles_and_are_seeded():
    groups = [e.group for e in _examples()]
    f = folds(groups, 4, seed=3)
    assert f == folds(groups, 4, seed=3)
    for g in set(groups):
        assert len({fold for fold, h in zip(f, groups) if h == g}) == 1
    assert sorted(set(f)) == [0, 1, 2, 3]


def test_cross_validation_is_held_out_and_the_threshold_meets_its_precision():
    ex = _examples(n_articles=12)
    held_out, thresholds = cross_validate(ex, k=3, seed=1, l2=1.0, precision=0.9)
    assert len(held_out) == len(ex) and len(thresholds) == 3
    f = figures(held_out)
    assert f.answerable == len(ex) and 0 < f.answered <= len(ex)
    assert f.right / f.answered > 0.75  # the informative feature carries over to unseen articles


def test_threshold_counts_answered_unanswerable_questions_as_wrong():
    def pick(source, one, right):
        case = Case(str(one), "q", source, ())
        return Pick(Example(case, "s/a", np.zeros((1, 1)), np.array([int(right)]), ("s",)), one, right, 0.0, False, 0.0)

    held = [pick("a.txt", 0.6, True), pick("a.txt", 0.8, True), pick("a.txt", 0.9, True), pick(None, 0.7, False)]
    # answering the unanswerable question is a wrong answer: a precise threshold lies above it
    assert choose_threshold(held, precision=0.99) == pytest.approx(0.8)
    assert choose_threshold(held, precision=0.75) == 0.0  # answering all is precise enough: 3 of 4


def test_a_made_near_miss_loses_its_answer_and_its_ranks_are_recomputed():
    rows = np.zeros((3, len(FEATURES)))
    dense = FEATURES.index("dense")
    rows[:, dense] = [0.9, 0.8, 0.7]
    example = Example(
        Case("1", "q", "a.txt", ()), "s/a.txt", rows, np.array([1, 0, 0]), ("a", "b", "c"), ("passed",) * 3
    )
    twin = without_answer(example)
    assert twin is not None and not twin.answerable and not twin.labels.any()
    assert twin.sentences == ("b", "c")
    assert twin.rows[:, FEATURES.index("dense_rr")].tolist() == [1.0, 0.5]
    assert twin.rows[:, FEATURES.index("dense_gap")].tolist() == pytest.approx([0.0, -0.1])


def test_span_answers_count_as_whole_words_after_normalising():
    case = Case("1", "Wann?", "a.txt", (), spans=("7. Februar 2016",))
    assert case.matches("Das Spiel fand am 7. Februar 2016 statt.")
    assert case.matches("am 7 februar 2016")
    assert not case.matches("am 17. Februar 2016")
    assert normalise("„Super Bowl 50“") == "super bowl 50"


def test_the_xquad_folder_loads_as_span_cases():
    cases = load_cases(ROOT / "eval" / "xquad-dev")
    assert len(cases) == 1224
    assert {c.lang for c in cases} == {"de", "en"}
    assert all(c.spans and c.source and (ROOT / "eval" / "xquad-dev" / "corpus" / c.source).is_file() for c in cases)


def test_the_shipped_scorer_loads_and_says_where_it_came_from():
    scorer = AnswerScorer.load(MODEL_FILE)
    assert scorer.ranker.features == FEATURES and scorer.judge.features == JUDGED
    assert 0.0 < scorer.threshold < 1.0
    assert scorer.provenance["script"] == "scripts/fit.py"
    assert "held_out" in scorer.provenance and scorer.provenance["folds"] >= 3


def test_make_scorer_fits_ranker_judges_and_threshold():
    scorer = make_scorer(_examples(n_articles=6), 1.0, 0.8, seed=0)
    assert scorer.ranker.features == FEATURES and len(scorer.ranker.weights) == len(FEATURES)
    assert scorer.judge.features == JUDGED == scorer.pair_judge.features
    assert 0.0 < scorer.threshold <= 1.0


def test_a_scorer_with_one_judge_of_other_features_is_refused(tmp_path):
    import dataclasses

    scorer = _scorer()
    other = dataclasses.replace(scorer.pair_judge, features=(*JUDGED[:-1], "something else"))
    path = tmp_path / "scorer.json"
    dataclasses.replace(scorer, pair_judge=other).save(path)
    with pytest.raises(ScorerFileError, match="other features"):
        AnswerScorer.load(path)


def test_held_out_answers_report_no_latency_they_did_not_measure():
    from rag.evaluate import evaluate
    from rag.types import Answer

    cases = [Case("1", "Wann?", None, ())]
    timed = evaluate(cases, lambda q: Answer("Nicht gefunden.", True, language="de"))
    ahead = evaluate(cases, lambda q: Answer("Nicht gefunden.", True, language="de"), timed=False)
    assert "latency p50" in timed.table() and timed.latency_p50_ms is not None
    assert "latency p50" not in ahead.table() and "not measured" in ahead.table()
    assert ahead.latency_p50_ms is None and json.dumps(ahead.to_dict())

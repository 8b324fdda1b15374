"""Fit the answer scorer on question sets and measure it on articles it was not fitted on.

The data are questions with their article (``source``) and answer (spans or patterns): each
question's candidate sentences (:meth:`rag.engine.Engine.candidates`) become rows of features,
labelled 1 when the sentence is in the answer's article and holds the answer. Folds hold out
whole articles (questions on one article share its wording, so a fold split by question would
measure memory). Everything random takes a ``seed``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.answering.scorer import FEATURES, JUDGED, PASSED, AnswerScorer, Logistic, judged_row
from rag.evaluate import Case

if TYPE_CHECKING:
    from embeddings import Embedder, StoreView
    from rag.engine import Candidates, Engine
    from rag.types import Answer

# The share of answers that must hold the answer on held-out articles (an answered unanswerable question
# counting as wrong); the threshold is fitted to it. 0.80: the lowest target at which English questions over
# German text are mostly answered, chosen on held-out figures (README, "Quality on held-out articles").
TARGET_PRECISION = 0.80


@dataclass(frozen=True)
class Example:
    """One question's candidates as the scorer sees them."""

    case: Case
    group: str  # what a fold holds out whole: "<question set>/<article>"
    rows: np.ndarray  # features, one row per candidate
    labels: np.ndarray  # 1 where the candidate holds the answer
    sentences: tuple[str, ...]
    gates: tuple[
        str, ...
    ] = ()  # per candidate, the first gate that fails on it (rag.answering.scorer.GATES, or "passed")

    def gate(self, i: int) -> str:
        return self.gates[i] if self.gates else PASSED

    @property
    def answerable(self) -> bool:
        return self.case.source is not None


def label(case: Case, source: str, sentence: str) -> int:
    """1 when ``sentence`` (from ``source``) holds the case's answer."""
    return int(case.source is not None and source == case.source and case.matches(sentence))


def example_of(name: str, case: Case, found: Candidates) -> Example:
    """A question's candidates (:class:`rag.engine.Candidates`) as the scorer's data: features, labels, every
    candidate's first failing gate (the folds' rankers may pick any of them as the best)."""
    labels = np.array([label(case, s.sentence.source, s.sentence.text) for s in found.ranked], dtype=np.int8)
    gates = tuple(found.gate(i) for i in range(len(found.ranked)))
    return Example(case, group_of(name, case), found.rows, labels, tuple(s.sentence.text for s in found.ranked), gates)


def group_of(name: str, case: Case) -> str:
    """The fold unit of a question: its article; an unanswerable question is its own unit."""
    return f"{name}/{case.source}" if case.source else f"{name}/none:{case.id}"


def folds(groups: Sequence[str], k: int, seed: int) -> list[int]:
    """A fold number per item, whole groups together, groups spread evenly by a seeded shuffle.

    >>> folds(["a", "a", "b", "c"], 2, seed=1) == folds(["a", "a", "b", "c"], 2, seed=1)
    True
    >>> f = folds(["a", "a", "b", "c"], 2, seed=1); f[0] == f[1]
    True
    """
    distinct = sorted(set(groups), key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    fold_of = {g: i % k for i, g in enumerate(distinct)}
    return [fold_of[g] for g in groups]


def fit_logistic(
    rows: np.ndarray, labels: np.ndarray, l2: float = 1.0, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """L2-regularised logistic regression on standardised features (L-BFGS; deterministic).

    Returns ``mean, scale, weights, bias``.
    """
    from scipy.optimize import minimize

    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (rows - mean) / scale
    y = labels.astype(np.float64)
    w_row = np.ones(len(y)) if weights is None else weights
    n = w_row.sum()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        margin = z @ w + b
        # log(1 + exp(-m)) for positives, log(1 + exp(m)) for negatives, stable
        signed = np.where(y > 0, -margin, margin)
        value = float((w_row * np.logaddexp(0.0, signed)).sum() / n + 0.5 * l2 * (w @ w) / n)
        p = 1.0 / (1.0 + np.exp(-margin))
        g = w_row * (p - y) / n
        return value, np.append(z.T @ g + l2 * w / n, g.sum())

    theta = minimize(loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B").x
    return mean, scale, theta[:-1], float(theta[-1])


def set_weights(examples: Sequence[Example]) -> np.ndarray:
    """A weight per question such that every question set weighs alike in the judges' fit (the
    sets differ in kind: only the news sets hold unanswerable questions), with mean 1."""
    sets = [e.group.split("/")[0] for e in examples]
    counts = {name: sets.count(name) for name in set(sets)}
    w = np.array([1.0 / counts[name] for name in sets])
    return np.asarray(w * len(w) / w.sum())


def fit_model(
    names: Sequence[str], rows: np.ndarray, labels: np.ndarray, l2: float, weights: np.ndarray | None = None
) -> Logistic:
    mean, scale, w, b = fit_logistic(rows, labels, l2, weights)
    return Logistic(tuple(names), tuple(mean), tuple(scale), tuple(w), b)


def fit_ranker(examples: Sequence[Example], l2: float) -> Logistic:
    """The ranker: the probability, among a question's candidates, that the answer is in this one.

    A conditional logit (a softmax over each question's candidates, as the answer picks one of
    them): its weights say what makes one candidate better than the others *of the same question*,
    which a logistic over all candidates at once mixes with what makes a question easy. Fitted on
    the questions whose candidates hold the answer (each weighs alike; L2 on standardised
    features; L-BFGS, deterministic). The bias is 0: only differences between candidates count.
    """
    from scipy.optimize import minimize

    used = [e for e in examples if len(e.rows) and e.labels.any()]
    if not used:
        raise ValueError("no question whose candidates hold its answer: nothing to fit the ranker on")
    rows = np.vstack([e.rows for e in used])
    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (rows - mean) / scale
    right = np.concatenate([e.labels for e in used]).astype(bool)
    starts = np.concatenate([[0], np.cumsum([len(e.rows) for e in used])[:-1]])
    question = np.repeat(np.arange(len(used)), [len(e.rows) for e in used])
    n = len(used)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = z @ w
        e = np.exp(s - np.maximum.reduceat(s, starts)[question])
        total = np.add.reduceat(e, starts)
        held = np.add.reduceat(e * right, starts)
        value = float(-np.log(held / total).sum() / n + 0.5 * l2 * (w @ w) / n)
        grad_s = (e / total[question] - e * right / held[question]) / n
        return value, z.T @ grad_s + l2 * w / n

    w = minimize(loss, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B").x
    return Logistic(tuple(FEATURES), tuple(mean), tuple(scale), tuple(w), 0.0)


_COL = {name: i for i, name in enumerate(FEATURES)}


def without_answer(example: Example) -> Example | None:
    """The question with the sentences that hold its answer taken away: the article is found, the fact
    is not (a near miss, made from an answerable question). The features that compare a candidate with
    the others are computed again over what is left. ``None`` when nothing is left or nothing was taken."""
    keep = example.labels == 0
    if keep.all() or not keep.any():
        return None
    rows = example.rows[keep].copy()
    for signal in ("dense", "lexical"):
        values = rows[:, _COL[signal]]
        rank = np.empty(len(values))
        rank[np.argsort(-values, kind="stable")] = np.arange(len(values))
        rows[:, _COL[f"{signal}_gap"]] = values - values.max()
        rows[:, _COL[f"{signal}_rr"]] = 1.0 / (1.0 + rank)
    case = dataclasses.replace(example.case, id=f"{example.case.id}-without-answer", source=None)
    sentences = tuple(s for s, k in zip(example.sentences, keep) if k)
    gates = tuple(g for g, k in zip(example.gates, keep) if k)
    return Example(case, example.group, rows, np.zeros(len(rows), dtype=np.int8), sentences, gates)


def judged(ranker: Logistic, examples: Sequence[Example]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The judges' rows (one per question with candidates) and labels: the best candidate holds the
    answer; one of the two best does."""
    rows, one, two = [], [], []
    for e in examples:
        if len(e.rows):  # (questions without candidates are "not found" whatever the judges say)
            logits = ranker.logits(e.rows)
            order = np.argsort(-logits, kind="stable")
            rows.append(judged_row(e.rows, logits, e.gate(int(order[0]))))
            one.append(int(e.labels[order[0]]))
            two.append(int(e.labels[order[:2]].any()))
    return np.array(rows).reshape(-1, len(JUDGED)), np.array(one), np.array(two)


def _with_near_misses(
    rows: np.ndarray, one: np.ndarray, two: np.ndarray, w: np.ndarray, missing: Sequence[np.ndarray], share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The judges' data with the made near misses added, weighing ``share`` of the real questions' weight."""
    extra = np.vstack([m for m in missing if len(m)]) if any(len(m) for m in missing) else np.zeros((0, rows.shape[1]))
    if not share or not len(extra):
        return rows, one, two, w
    w_extra = np.full(len(extra), share * w.sum() / len(extra))
    zeros = np.zeros(len(extra), dtype=one.dtype)
    return (
        np.vstack([rows, extra]),
        np.concatenate([one, zeros]),
        np.concatenate([two, zeros]),
        np.concatenate([w, w_extra]),
    )


def make_scorer(
    examples: Sequence[Example],
    l2: float,
    precision: float,
    seed: int,
    k: int = 3,
    provenance: dict[str, Any] | None = None,
    twins: float = 0.0,
    balance: bool = False,
) -> AnswerScorer:
    """Fit the ranker, the judges and the threshold on ``examples``.

    The judges learn from rankers that did not see the question's article (``k`` inner folds by
    article), as they will meet questions at run time; the threshold is the lowest whose answers
    reach ``precision`` on the judges' own held-out inner folds (real questions only).

    Args:
        twins: the weight, as a share of the real questions', of near misses made from the answerable
            questions (:func:`without_answer`) in the judges' data: they teach the judges what a found
            article without the fact looks like, which the data hold few examples of.
        balance: every question set weighs alike in the judges' data (:func:`set_weights`).
    """
    fold = folds([e.group for e in examples], k, seed)
    weight_of = dict(zip((id(e) for e in examples), np.ones(len(examples)) if not balance else set_weights(examples)))
    parts = []
    missing: list[np.ndarray] = []  # the judges' rows of the near misses made from each fold (labels 0)
    for f in range(k):
        ranker = fit_ranker([e for e, g in zip(examples, fold) if g != f], l2)
        held = [e for e, g in zip(examples, fold) if g == f]
        parts.append((held, *judged(ranker, held), np.array([weight_of[id(e)] for e in held if len(e.rows)])))
        made = [t for e in held if e.answerable and (t := without_answer(e)) is not None]
        missing.append(judged(ranker, made)[0])
    inner_picks: list[Pick] = []
    for f in range(k):
        rows = np.vstack([r for g, (_, r, _, _, _) in enumerate(parts) if g != f])
        w = np.concatenate([x for g, (*_, x) in enumerate(parts) if g != f])
        one = np.concatenate([y for g, (_, _, y, _, _) in enumerate(parts) if g != f])
        two = np.concatenate([y for g, (_, _, _, y, _) in enumerate(parts) if g != f])
        rows, one, two, w = _with_near_misses(rows, one, two, w, [m for g, m in enumerate(missing) if g != f], twins)
        judge, pair = fit_model(JUDGED, rows, one, l2, w), fit_model(JUDGED, rows, two, l2, w)
        held, rows_f, one_f, two_f, _ = parts[f]
        if len(rows_f):
            judged_f: Iterator[tuple[float, float, float, float]] = zip(
                judge.probabilities(rows_f), one_f, pair.probabilities(rows_f), two_f
            )
        else:
            judged_f = iter(())
        for e in held:  # judged() made a row for each question with candidates, in order
            p1, r1, p2, r2 = next(judged_f) if len(e.rows) else (0.0, 0, 0.0, 0)
            inner_picks.append(Pick(e, float(p1), bool(r1), float(p2), bool(r2), 0.0))
    threshold = choose_threshold(inner_picks, precision)
    rows, w = np.vstack([p[1] for p in parts]), np.concatenate([p[4] for p in parts])
    one, two = np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts])
    rows, one, two, w = _with_near_misses(rows, one, two, w, missing, twins)
    judge, pair = fit_model(JUDGED, rows, one, l2, w), fit_model(JUDGED, rows, two, l2, w)
    return AnswerScorer(fit_ranker(examples, l2), judge, pair, threshold, provenance or {})


@dataclass(frozen=True)
class Pick:
    """A held-out question's outcome: the judges' probabilities and whether the best one, or one of the
    two best, holds the answer."""

    example: Example
    one: float
    one_right: bool
    two: float
    two_right: bool
    threshold: float  # the threshold of the scorer that made the pick

    def at(self, threshold: float) -> Pick:
        return dataclasses.replace(self, threshold=threshold)

    @property
    def quoted(self) -> int:
        return 1 if self.one >= self.threshold else 2 if self.two >= self.threshold else 0

    @property
    def answered(self) -> bool:
        return self.quoted > 0

    @property
    def right(self) -> bool:
        q = self.quoted
        return self.example.answerable and (self.one_right if q == 1 else self.two_right if q == 2 else False)


def picks(scorer: AnswerScorer, examples: Sequence[Example]) -> list[Pick]:
    out = []
    for e in examples:
        if not len(e.rows):
            out.append(Pick(e, 0.0, False, 0.0, False, scorer.threshold))
            continue
        logits, one, two = scorer.rank(e.rows, e.gate)
        order = np.argsort(-logits, kind="stable")
        out.append(Pick(e, one, bool(e.labels[order[0]]), two, bool(e.labels[order[:2]].any()), scorer.threshold))
    return out


def choose_threshold(held_out: Sequence[Pick], precision: float) -> float:
    """The lowest threshold at which the answered questions are right at least ``precision`` of the
    time, an answered unanswerable question counting as a wrong answer (held-out picks).

    With no threshold reaching it, the one with the best precision.
    """
    best_t, best_prec = 1.0, -1.0
    for t in sorted({x for p in held_out for x in (p.one, p.two)}):
        at = [p.at(t) for p in held_out]
        answered = [p for p in at if p.answered]
        if not any(p.example.answerable for p in answered):
            continue
        prec = sum(p.right for p in answered) / len(answered)
        if prec >= precision:
            return t
        if prec > best_prec:
            best_t, best_prec = t, prec
    return best_t


@dataclass(frozen=True)
class Figures:
    """Held-out figures of one slice of questions."""

    answerable: int
    right: int  # answered with a sentence that holds the answer
    answered: int
    unanswerable: int
    abstained: int  # of the unanswerable

    def row(self) -> str:
        parts = []
        if self.answerable:
            among = self.right / self.answered if self.answered else 0.0
            parts.append(
                f"right {self.right / self.answerable:.3f} ({self.right}/{self.answerable})  "
                f"answered {self.answered / self.answerable:.3f}  right among answered {among:.3f}"
            )
        if self.unanswerable:
            parts.append(f"unanswerable abstained {self.abstained}/{self.unanswerable}")
        return "  ".join(parts)


def figures(held_out: Sequence[Pick]) -> Figures:
    """Figures of held-out picks, each at the threshold of the scorer that made it."""
    answerable = [p for p in held_out if p.example.answerable]
    unanswerable = [p for p in held_out if not p.example.answerable]
    answered = [p for p in answerable if p.answered]
    return Figures(
        len(answerable),
        sum(p.right for p in answered),
        len(answered),
        len(unanswerable),
        sum(not p.answered for p in unanswerable),
    )


def fold_scorers(
    examples: Sequence[Example], k: int, seed: int, l2: float, precision: float, **options: Any
) -> Iterator[tuple[AnswerScorer, list[int]]]:
    """Per fold of ``k`` (whole articles), a scorer fitted on the other folds only, and the fold's indices."""
    fold = folds([e.group for e in examples], k, seed)
    for f in range(k):
        scorer = make_scorer([e for e, g in zip(examples, fold) if g != f], l2, precision, seed + 1, **options)
        yield scorer, [i for i, g in enumerate(fold) if g == f]


def cross_validate(
    examples: Sequence[Example], k: int, seed: int, l2: float, precision: float, **options: Any
) -> tuple[list[Pick], list[float]]:
    """Held-out picks of every example: each fold judged by a scorer fitted on the other folds only."""
    out: list[Pick | None] = [None] * len(examples)
    thresholds = []
    for scorer, held in fold_scorers(examples, k, seed, l2, precision, **options):
        thresholds.append(scorer.threshold)
        for i, p in zip(held, picks(scorer, [examples[i] for i in held])):
            out[i] = p
    return [p for p in out if p is not None], thresholds


def by(held_out: Sequence[Pick], key: Callable[[Pick], str]) -> dict[str, Figures]:
    """Figures per slice (``key``)."""
    groups: dict[str, list[Pick]] = {}
    for p in held_out:
        groups.setdefault(key(p), []).append(p)
    return {name: figures(ps) for name, ps in sorted(groups.items())}


def held_out_answers(
    engine: Engine,
    cases: Sequence[Case],
    name: str,
    *,
    k: int = 4,
    seed: int = 13,
    l2: float = 1.0,
    precision: float = TARGET_PRECISION,
) -> list[Answer]:
    """The engine's answers to ``cases``, each decided by a scorer fitted on the other folds' articles.

    The candidates are found once per question (:meth:`rag.engine.Engine.candidates`); for each
    fold a scorer is fitted on the other folds (threshold chosen on inner folds, as in
    :func:`cross_validate`) and decides that fold's answers. What this measures is how the method
    does on articles it was not fitted on.
    """
    from rag.answering.answer import compose
    from rag.engine import choose

    found = [engine.candidates(c.question) for c in cases]
    examples = [example_of(name, c, f) for c, f in zip(cases, found)]
    answers: list[Answer | None] = [None] * len(cases)
    for scorer, held in fold_scorers(examples, k, seed, l2, precision):
        for i in held:
            decision, ranked = choose(found[i], scorer)
            answers[i] = compose(found[i].question, ranked, found[i].hits, found[i].snapshot, decision)
    done = [a for a in answers if a is not None]
    if len(done) != len(cases):  # every case is in the held-out part of exactly one fold
        raise RuntimeError(f"{len(cases) - len(done)} of {len(cases)} questions fell in no held-out fold")
    return done


def retrieval_recall(
    view: StoreView,
    embedder: Embedder,
    cases: Sequence[Case],
    lexical_weights: Sequence[float | str],
    depth: int = 10,
    pool: int = 50,
) -> dict[str, dict[str, float]]:
    """Per language, the share of answerable questions for which a passage holding the answer is among
    the ``depth`` best of each ranking: dense only, BM25 only, and their reciprocal-rank fusion with
    each BM25 weight (``"coverage"``: the weight :func:`rag.retrieve.lexical_coverage` gives)."""
    from rag.answering.questions import analyse
    from rag.answering.text import terms
    from rag.retrieve import RRF_K, fuse, lexical_coverage

    hits: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    answerable = [c for c in cases if c.source is not None]
    vectors = embedder.embed_queries([analyse(c.question).text for c in answerable])
    for case, vector in zip(answerable, vectors):
        q = analyse(case.question)
        dense = [i for i, _ in view.dense_search(vector, pool, None)]
        lexical = [i for i, _ in view.lexical_search(terms(q.text), pool, None)]
        rankings = {"dense": dense, "bm25": lexical}
        for w in lexical_weights:
            weight = lexical_coverage(q.text, view) if w == "coverage" else float(w)
            fused = fuse([dense, lexical], [1.0, weight], k=RRF_K)
            rankings[f"fused {w}"] = sorted(fused, key=lambda i: (-fused[i], i))
        lang = case.lang or q.language
        totals[lang] = totals.get(lang, 0) + 1
        for name, ranking in rankings.items():
            chunks = [view.chunk(i) for i in ranking[:depth]]
            found = any(c.source == case.source and case.matches(c.text) for c in chunks)
            hits.setdefault(lang, {}).setdefault(name, 0)
            hits[lang][name] += found
    return {lang: {name: n / totals[lang] for name, n in by_name.items()} for lang, by_name in hits.items()}


# --- the claim check's decision (rag.llm.claims.ClaimModel), fitted by scripts/claims_set.py ---------------


def choose_keep_threshold(
    probabilities: np.ndarray,
    passed: np.ndarray,
    labels: np.ndarray,
    slices: Sequence[str],
    max_wrong: float,
    spread: float = 0.0,
) -> float:
    """The lowest probability threshold at which, in every slice, at most ``max_wrong`` of the wrong claims
    (label 0) are kept (a claim is kept when it passed the gate and its probability reaches the threshold),
    less ``spread`` standard errors of that share (binomial, at ``max_wrong``): the share on claims not yet
    seen varies around the one measured, and the target is a bound, not an average.

    >>> p = np.array([0.9, 0.8, 0.3, 0.7]); ok = np.array([True, True, True, True])
    >>> choose_keep_threshold(p, ok, np.array([1, 1, 0, 0]), ["a"] * 4, 0.0)
    0.8
    >>> labels = np.array([1, 1, 0, 0])
    >>> choose_keep_threshold(p, ok, labels, ["a"] * 4, 0.5), choose_keep_threshold(p, ok, labels, ["a"] * 4, 0.5, 1.0)
    (0.7, 0.8)
    """
    kinds = np.asarray(slices)
    wrong = labels == 0
    totals = {s: int((wrong & (kinds == s)).sum()) for s in set(kinds.tolist())}
    allowed = {s: max_wrong * n - spread * np.sqrt(n * max_wrong * (1 - max_wrong)) for s, n in totals.items()}
    for t in sorted({float(x) for x in probabilities[passed]}):
        kept = passed & (probabilities >= t)
        if all(((kept & wrong & (kinds == s)).sum() <= allowed[s]) for s in totals):
            return t
    return float(np.nextafter(1.0, 2.0))  # nothing reaches it: keep nothing the model decides


def fit_detectors(
    rows: np.ndarray, passed: np.ndarray, labels: np.ndarray, kinds: Sequence[str] | None, l2: float
) -> dict[str, Logistic]:
    """One logistic model per kind of wrong claim, each fitted on the faithful claims and that kind's (those
    that passed the gate); a kind with fewer such claims than there are signals gets none (the gate stops
    most of them: a changed number, another paragraph's sentence). Without ``kinds``, one model, ``"wrong"``.
    """
    from rag.llm.claims import CLAIM_FEATURES

    of = np.asarray(["wrong"] * len(labels) if kinds is None else kinds)
    faithful = passed & (labels == 1)
    out = {}
    for kind in sorted(set(of[labels == 0].tolist())):
        one = passed & (labels == 0) & (of == kind)
        if one.sum() >= len(CLAIM_FEATURES):
            out[kind] = fit_model(CLAIM_FEATURES, rows[faithful | one], labels[faithful | one], l2)
    if not out:  # too few of every kind: one model for them all
        use = passed
        out["wrong"] = fit_model(CLAIM_FEATURES, rows[use], labels[use], l2)
    return out


def detector_probability(detectors: dict[str, Logistic], rows: np.ndarray) -> np.ndarray:
    """The claim decision's probability: the least of its detectors' (:class:`rag.llm.claims.ClaimModel`)."""
    if len(rows) == 0:
        return np.zeros(0)
    return np.asarray(np.min([m.probabilities(rows) for m in detectors.values()], axis=0))


def fit_claim_model(
    rows: np.ndarray,
    passed: np.ndarray,
    labels: np.ndarray,
    groups: Sequence[str],
    slices: Sequence[str],
    k: int,
    seed: int,
    l2: float,
    max_wrong: float,
    kinds: Sequence[str] | None = None,
    spread: float = 0.0,
) -> tuple[dict[str, dict[str, Logistic]], dict[str, float]]:
    """Per slice (the claims' direction), the claim decision's detectors (:func:`fit_detectors`) fitted on
    all its claims that passed the gate, and its threshold, chosen on ``k`` inner folds by article (each
    claim's probability from detectors that did not see its article), ``spread`` standard errors below the
    target (:func:`choose_keep_threshold`).
    """
    fold = np.array(folds(groups, k, seed))
    sl = np.asarray(slices)
    kinds_ = None if kinds is None else np.asarray(kinds)
    models, thresholds = {}, {}
    for name in sorted(set(sl.tolist())):
        one = sl == name
        held = np.zeros(len(rows))
        for f in range(k):
            train, test = one & (fold != f), one & (fold == f) & passed
            detectors = fit_detectors(rows[train], passed[train], labels[train],
                                      None if kinds_ is None else kinds_[train], l2)  # fmt: skip
            held[test] = detector_probability(detectors, rows[test])
        thresholds[name] = choose_keep_threshold(held[one], passed[one], labels[one], sl[one], max_wrong, spread)
        models[name] = fit_detectors(rows[one], passed[one], labels[one], None if kinds_ is None else kinds_[one], l2)
    return models, thresholds


def claim_cross_validate(
    rows: np.ndarray,
    passed: np.ndarray,
    labels: np.ndarray,
    groups: Sequence[str],
    slices: Sequence[str],
    k: int,
    seed: int,
    l2: float,
    max_wrong: float,
    kinds: Sequence[str] | None = None,
    spread: float = 0.0,
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Whether each claim is kept by a decision fitted (detectors and thresholds) on the other folds'
    articles only; and the thresholds of each fold."""
    fold = np.array(folds(groups, k, seed))
    kept = np.zeros(len(rows), dtype=bool)
    chosen = []
    sl = np.asarray(slices)
    kinds_ = None if kinds is None else np.asarray(kinds)
    for f in range(k):
        train = fold != f
        models, thresholds = fit_claim_model(rows[train], passed[train], labels[train],
                                             [g for g, x in zip(groups, train) if x], list(sl[train]), k, seed + 1,
                                             l2, max_wrong, None if kinds_ is None else list(kinds_[train]),
                                             spread)  # fmt: skip
        for name, detectors in models.items():
            test = (fold == f) & passed & (sl == name)
            kept[test] = detector_probability(detectors, rows[test]) >= thresholds[name]
        chosen.append(thresholds)
    return kept, chosen


def claim_figures(claims: Sequence[Any], passed: np.ndarray, kept: np.ndarray) -> dict[str, dict[str, Any]]:
    """Share of claims kept per direction and kind, and of all wrong claims per direction (``claims`` have
    ``direction`` and ``kind``)."""
    out: dict[str, dict[str, Any]] = {}

    def add(name: str, i: int) -> None:
        f = out.setdefault(name, {"n": 0, "kept": 0, "passed": 0})
        f["n"] += 1
        f["kept"] += int(kept[i])
        f["passed"] += int(passed[i])

    for i, c in enumerate(claims):
        add(f"{c.direction} {c.kind}", i)
        if c.kind != "faithful":
            add(f"{c.direction} wrong (all kinds)", i)
    for f in out.values():
        f["share"] = round(f["kept"] / f["n"], 4)
    return dict(sorted(out.items()))

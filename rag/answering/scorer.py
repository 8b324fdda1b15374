"""The fitted answer scorer: the probability that a candidate sentence holds the answer.

Each candidate sentence of a question (see :func:`rag.answering.select.rank`) is described by a few
signals and their standing among the question's other candidates (:func:`features`); a logistic
model turns them into a probability. The weights and the abstention threshold are not typed in:
``scripts/fit.py`` learns them on question sets split by article and writes them, with the
held-out figures that chose them, to ``rag/models/answer_scorer.json`` (plain JSON with a
checksum; no pickle). The engine answers with the most probable sentence when its probability
reaches the threshold, and says "not found" otherwise.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embeddings import StoreView
from rag.answering.ground import anchor_share, name_share, window
from rag.answering.questions import Question
from rag.answering.select import Scored, sentences_around
from rag.answering.text import STOPWORDS, detect_language, fold, words

MODEL_FILE = Path(__file__).resolve().parents[1] / "models" / "answer_scorer.json"

# How far around a sentence its question's words and names are looked for (sentences on each side).
NEAR = 2

FEATURES: tuple[str, ...] = (
    "dense",  # cosine of question and sentence (e5)
    "dense_gap",  # ... minus the best cosine among the question's candidates
    "dense_rr",  # 1 / (1 + rank by cosine)
    "lexical",  # IDF-weighted share of the question's words in the sentence (and around it)
    "lexical_gap",  # ... minus the best among the candidates
    "lexical_rr",  # 1 / (1 + rank by lexical share)
    "kind",  # the sentence holds what the question type asks for (a date, a number, a name)
    "kind_typed",  # ... for the types whose answer has a form: when, how many
    "passage",  # how well its passage and article matched, against the best passage
    "hit_rr",  # 1 / (1 + rank of its passage)
    "foreign",  # the sentence is in another language than its article
    "cross",  # the sentence is in another language than the question
    "cross_lexical",  # lexical share when the languages differ (names and numbers only)
    "length",  # log of the sentence's words
    "neighbour_dense",  # the best cosine of the sentences right before and after it (among the candidates)
    "words_near",  # IDF-weighted share of the question's words within NEAR sentences of it
    "words_article",  # ... in its whole article
    "names_near",  # share of the question's names (capitalised words) within NEAR sentences of it
    "names_article",  # ... in its whole article
    "names_unknown",  # share of the question's names the index has never seen (the same for every candidate)
)
CONTEXT = FEATURES[-5:]  # computed from the article around the sentence (:func:`context_rows`)


def context_rows(
    question: Question,
    ranked: Sequence[Scored],
    snapshot: StoreView,
    idf: Callable[[str], float],
    known: Callable[[str], bool],
) -> np.ndarray:
    """The :data:`CONTEXT` features of each candidate: where the question's words and names stand in its article.

    Names are matched by spelling (variants, inflections, transliteration), not by meaning: a name
    written another way in the other language ("Beijing" / "Peking") counts as absent here; the dense
    signals carry that case.
    """
    names = [n for n in question.names if fold(n) not in STOPWORDS]
    unknown = sum(not known(n) for n in names) / len(names) if names else 0.0
    per_article: dict[str, tuple[float, float]] = {}
    rows = []
    for s in ranked:
        doc = snapshot.documents[s.sentence.source]
        if s.sentence.source not in per_article:
            per_article[s.sentence.source] = (
                anchor_share(question, doc.text, idf)[0],
                name_share(names, doc.text),
            )
        words_article, names_article = per_article[s.sentence.source]
        # the lines around the sentence, split alone: a long article is not split whole for one window
        spans = sentences_around(doc.text, s.sentence.start, s.sentence.end, NEAR)
        near = window(doc.text, spans, s.sentence.start, s.sentence.end, NEAR)
        rows.append(
            [anchor_share(question, near, idf)[0], words_article, name_share(names, near), names_article, unknown]
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(ranked), len(CONTEXT))


def feature_rows(question: Question, ranked: Sequence[Scored], context: np.ndarray | None = None) -> np.ndarray:
    """One row of :data:`FEATURES` per candidate of one question.

    Args:
        ranked: the question's candidate sentences with their signals.
        context: the candidates' :func:`context_rows` (omitted: zeros).
    """
    n = len(ranked)
    if not n:
        return np.zeros((0, len(FEATURES)), dtype=np.float64)
    dense = np.array([s.dense for s in ranked])
    lexical = np.array([s.lexical for s in ranked])
    dense_rank = np.empty(n)
    dense_rank[np.argsort(-dense, kind="stable")] = np.arange(n)
    lexical_rank = np.empty(n)
    lexical_rank[np.argsort(-lexical, kind="stable")] = np.arange(n)
    typed = question.kind in ("when", "quantity")
    neighbour = np.zeros(n)
    in_text = sorted(range(n), key=lambda i: (ranked[i].sentence.source, ranked[i].sentence.start))
    for a, b in itertools.pairwise(in_text):
        x, y = ranked[a].sentence, ranked[b].sentence
        if x.source == y.source and 0 <= y.start - x.end <= 3:  # separated by a space or a line break
            neighbour[a] = max(neighbour[a], dense[b])
            neighbour[b] = max(neighbour[b], dense[a])
    rows = []
    for i, s in enumerate(ranked):
        cross = float(detect_language(s.sentence.text) != question.language)
        rows.append(
            [
                dense[i],
                dense[i] - dense.max(),
                1.0 / (1.0 + dense_rank[i]),
                lexical[i],
                lexical[i] - lexical.max(),
                1.0 / (1.0 + lexical_rank[i]),
                s.kind,
                s.kind if typed else 0.0,
                s.passage,
                1.0 / (1.0 + s.sentence.hit),
                s.foreign,
                cross,
                lexical[i] * cross,
                math.log1p(len(words(s.sentence.text))),
                neighbour[i],
            ]
        )
    own = np.asarray(rows, dtype=np.float64)
    return np.hstack([own, context if context is not None else np.zeros((n, len(CONTEXT)))])


# The grounding gates of rag.answering.ground (hand-written checks) in the order they run. The judge reads which of
# them fails first on the best sentence as one more signal, and learns from data how much each one says.
GATES = ("evidence", "unknown-names", "anchor", "names-in-article", "names-near", "attached", "kind")
PASSED = "passed"

JUDGED: tuple[str, ...] = (
    "best_logit",  # the ranker's log-odds for the best candidate
    "margin",  # ... minus the runner-up's
    "dense",  # the best candidate's cosine
    "lexical",
    "words_near",
    "words_article",
    "names_near",
    "names_article",
    "names_unknown",
    "cross",  # the best candidate is in another language than the question
    "candidates",  # log of the number of candidates
    *(f"gate_{g}" for g in GATES),  # 1 when this gate is the first to fail on the best sentence
)


def judged_row(rows: np.ndarray, logits: np.ndarray, gate: str) -> np.ndarray:
    """The question-level features the judges read: the best candidate's standing, its own features,
    and ``gate``, the first gate that fails on it (:data:`PASSED` if none)."""
    order = np.argsort(-logits, kind="stable")
    best = rows[order[0]]
    col = {name: best[i] for i, name in enumerate(FEATURES)}
    margin = logits[order[0]] - logits[order[1]] if len(order) > 1 else 10.0
    own = [col[n] for n in JUDGED[2 : JUDGED.index("candidates")]]
    return np.array(
        [logits[order[0]], margin, *own, math.log(len(rows)), *(float(gate == g) for g in GATES)], dtype=np.float64
    )


class ScorerFileError(ValueError):
    """The scorer's file is missing, damaged or made for other features; the message names the fix."""


@dataclass(frozen=True)
class Logistic:
    """A logistic model on standardised features."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def logits(self, rows: np.ndarray) -> np.ndarray:
        rows = np.atleast_2d(rows)
        if rows.shape[0] == 0:
            return np.zeros(0)
        z = (rows - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.asarray(z @ np.asarray(self.weights) + self.bias)

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-self.logits(rows))))

    def contributions(self, row: np.ndarray) -> dict[str, float]:
        """Each feature's part of one row's log-odds (they add up to it with the bias)."""
        z = (row - np.asarray(self.mean)) / np.asarray(self.scale)
        return {name: float(w * v) for name, w, v in zip(self.features, self.weights, z)}

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Logistic:
        return cls(
            tuple(str(x) for x in data["features"]),
            tuple(float(x) for x in data["mean"]),
            tuple(float(x) for x in data["scale"]),
            tuple(float(x) for x in data["weights"]),
            float(data["bias"]),
        )


@dataclass(frozen=True)
class AnswerScorer:
    """Fitted models and a threshold: the ranker orders a question's candidates; the judge gives the
    probability that the best one holds the answer, the pair judge that one of the two best does.
    The answer quotes the best sentence when the judge's probability reaches ``threshold``, else the
    two best when the pair judge's does, else it is "not found"."""

    ranker: Logistic
    judge: Logistic
    pair_judge: Logistic
    threshold: float
    provenance: dict[str, Any]  # the data, folds, seed and held-out figures that chose the numbers

    def rank(self, rows: np.ndarray, gate: Callable[[int], str]) -> tuple[np.ndarray, float, float]:
        """The candidates' ranking scores (log-odds), the probability that the best one holds the answer,
        and the probability that one of the two best does.

        Args:
            gate: the first gate that fails on candidate ``i`` (asked for the best one only).
        """
        if rows.shape[0] == 0:
            return np.zeros(0), 0.0, 0.0
        logits = self.ranker.logits(rows)
        row = judged_row(rows, logits, gate(int(np.argmax(logits))))
        return logits, float(self.judge.probabilities(row)[0]), float(self.pair_judge.probabilities(row)[0])

    def quotes(self, one: float, two: float, candidates: int) -> int:
        """How many of the best candidates the answer quotes: 1, 2, or 0 (not found)."""
        return 1 if one >= self.threshold else 2 if two >= self.threshold and candidates > 1 else 0

    def to_json(self) -> str:
        payload = {
            "ranker": self.ranker.to_dict(),
            "judge": self.judge.to_dict(),
            "pair_judge": self.pair_judge.to_dict(),
            "threshold": self.threshold,
            "provenance": self.provenance,
        }
        return checked_json("scorer", payload)

    def save(self, path: Path) -> None:
        _write_atomically(Path(path), self.to_json())

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> AnswerScorer:
        """Read a scorer written by :meth:`save`, checking its checksum and its features.

        Raises:
            ScorerFileError: missing, damaged, or fitted for other features (re-run ``scripts/fit.py``).
        """
        fix = "re-run `python scripts/fit.py` to fit it again"
        payload = read_checked(path, "scorer", fix)
        try:
            scorer = cls(
                Logistic.from_dict(payload["ranker"]),
                Logistic.from_dict(payload["judge"]),
                Logistic.from_dict(payload["pair_judge"]),
                float(payload["threshold"]),
                dict(payload["provenance"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ScorerFileError(f"{path}: not a scorer file ({exc}); {fix}") from exc
        if (
            scorer.ranker.features != FEATURES
            or JUDGED not in (scorer.judge.features, scorer.pair_judge.features)
            or (scorer.judge.features != scorer.pair_judge.features)
        ):
            raise ScorerFileError(f"{path}: fitted for other features than this version computes; {fix}")
        return scorer


def checked_json(key: str, payload: dict[str, Any]) -> str:
    """``payload`` under ``key`` with the SHA-256 of its canonical JSON, as a fitted model's file holds it."""
    body = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(body.encode()).hexdigest()
    return json.dumps({"sha256": digest, key: payload}, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_checked(path: Path, key: str, payload: dict[str, Any]) -> None:
    """Write a fitted model's file (:func:`checked_json`): to a temporary path, then renamed."""
    _write_atomically(Path(path), checked_json(key, payload))


def read_checked(path: Path, key: str, fix: str) -> dict[str, Any]:
    """The payload of a file written by :func:`write_checked`, its checksum verified.

    Raises:
        ScorerFileError: missing, not JSON of that form, or its checksum does not match (``fix`` says what to do).
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        payload = data[key]
        body = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        if hashlib.sha256(body.encode()).hexdigest() != data["sha256"]:
            raise ScorerFileError(f"{path}: checksum does not match its contents; {fix}")
    except FileNotFoundError:
        raise ScorerFileError(f"{path}: no such file; {fix}") from None
    except ScorerFileError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise ScorerFileError(f"{path}: not a model file ({exc}); {fix}") from exc
    if not isinstance(payload, dict):
        raise ScorerFileError(f"{path}: not a model file; {fix}")
    return payload


_LOADED: dict[Path, AnswerScorer] = {}


def shipped() -> AnswerScorer:
    """The scorer shipped with the package (read once)."""
    scorer = _LOADED.get(MODEL_FILE)
    if scorer is None:
        scorer = _LOADED[MODEL_FILE] = AnswerScorer.load(MODEL_FILE)
    return scorer

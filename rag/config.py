"""The numbers that shape retrieval and the answer signals, in one frozen object with the provenance of each.

What decides an answer is no longer here: the fitted scorer (:mod:`rag.answering.scorer`, written by
``scripts/fit.py`` with its held-out figures) weighs the signals, chooses the sentence and decides
to abstain. The numbers below only shape the signals it reads. Their provenance, by group:

* retrieval: a cost budget (how many passages and articles are searched) and the RRF constant of
  the literature;
* the ``w_*`` weights, windows and reaches: hand-set on ``eval/dev.jsonl`` and ``eval/dev2.jsonl``
  before the scorer existed. They now order the shortlist of sentences that get embedded and shape
  the gate verdicts; the scorer learns how much each resulting signal says, on held-out articles.
  Replacing them by fitted values is open work (issue 22);
* the gates' limits: as above, they decide a gate's verdict, which the judge reads as one feature;
* ``tie``, ``adjacent``, ``try_count``, ``try_margin``: used only by the gate-by-gate decision
  (:func:`rag.answering.answer.decide`) that the scorer replaced; kept for ``--set`` compatibility.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ScoringConfig:
    """Weights, windows and thresholds of retrieval, sentence scoring and the grounding gates."""

    # --- retrieval
    candidate_passages: int = 10  # passages searched for evidence: the answer is often just below the k cited
    rrf_k: int = 60  # reciprocal-rank constant of Cormack et al. (2009); damps the influence of the top ranks
    expand_documents: int = 2  # the best articles whose other passages join the candidates (bylines, later quotes)
    expand_max_chunks: int = 40  # longer documents are not expanded: they are not about one thing

    # --- sentence scoring: score = dense + lexical + kind + passage - foreign
    w_dense: float = 1.0  # cosine of question and sentence: works across languages
    w_lexical: float = 0.15  # IDF-weighted share of the question's words in the sentence
    w_translated: float = 0.5  # a word found only in translation counts half: a dictionary lists every sense
    w_kind: float = 0.04  # the sentence holds what the question type asks for (a speech verb, a number ...)
    w_kind_strong: float = 0.08  # a *when* answer must carry a date, a *why* answer a reason: stronger signs
    w_passage: float = 0.2  # how well the sentence's passage and article matched as a whole
    around_lexical: float = 0.25  # share of the lexical signal taken from the text around the sentence
    around_chars: int = 300  # how far "around" reaches: "…“, sagte Putin." after a quote
    cross_lingual_bonus: float = 0.03  # cosine runs higher within one language; evens out EN question vs DE text
    foreign_fragment_penalty: float = 0.06  # a sentence in another language than its article is an embed or furniture
    min_words: int = 4  # shorter lines are page furniture ("Leave a Comment", "Kommentar (0)")
    shortlist: int = 16  # sentences embedded per question (cheap signals pick them)
    date_reach: int = 8  # a date farther (in words) from every question word belongs to another event ...
    far_date: float = 0.25  # ... and counts this much instead of 1
    window: int = 1  # sentences before and after the best one that are scored with it (the answer continues)
    window_weight: float = 0.35  # how much a neighbour's lexical and kind signals lift the sentence

    # --- answering
    tie: float = 0.015  # a second sentence scoring this close to the best is quoted too
    adjacent: float = 0.04  # ... or this close, when it is the sentence right before or after

    try_count: int = 6  # sentences the gates may try, best first: the best may be about another event ...
    try_margin: float = 0.06  # ... as long as they score within this of the best

    # --- grounding gates (abstain when one fails)
    min_dense: float = 0.80  # cosine of question and best sentence below which nothing is relevant
    max_unknown_names: float = 0.5  # share of the question's names absent from the whole index
    min_anchor: float = 0.5  # IDF-weighted share of the question's words in the answering article, when the
    # question names nothing it holds (off-topic questions share a word or two by chance)
    name_alias: float = 0.92  # cosine (e5) at which two names are one across languages: Beijing/Peking 0.93,
    # Russia/Russland 0.96, but China/Japan 0.89, Trump/Putin 0.87
    name_reach: int = 2  # sentences around the quoted one where each of the question's names must stand
    speaker_reach: int = 5  # words between a speech verb and the name of the one asked about
    number_noun_reach: int = 4  # words after a number where the counted noun must stand
    min_noun_similarity: float = 0.875  # cosine of the asked noun and the counted one (e5, across languages):
    # villages/Dörfern 0.885, warships/Kriegsschiffe 0.90, but villages/Kilometer 0.86, cubic meters/US-Dollar 0.82

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not value == value or value < 0:  # NaN compares unequal to itself
                raise ValueError(f"ScoringConfig.{f.name} = {value!r}: must be a number >= 0")
        if self.try_count < 1 or self.shortlist < 1:
            raise ValueError("ScoringConfig: try_count and shortlist must be at least 1")

    def explain(self) -> str:
        """``name=value`` for every field, one line (for logs and ``--explain``)."""
        return " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))

"""BM25 postings built when a segment is written, and Okapi BM25 scoring across segments.

A segment stores, per analysed term, the rows that have it and how often (a CSC
layout in four ``.npy`` files plus the term list), and the length of each row. Readers
memory-map them; nothing is rebuilt when a reader opens an index or a new version.
Collection statistics (number of chunks, average length, document frequency) are
summed over the segments a version lists, as Lucene does: a chunk deleted since its
segment was written still counts until the segment is merged.

>>> p = Postings.build([["schoigu", "peking"], ["belousow", "peking"], ["kirby"]])
>>> s = Stats.of([p])
>>> [int(r) for r in score(p, s, ["peking", "schoigu"]).argsort()[::-1][:2]]
[0, 1]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

K1 = 1.2  # term-frequency saturation (Robertson et al.)
B = 0.75  # length normalisation
FILES = ("terms.txt", "indptr.npy", "rows.npy", "tf.npy", "lengths.npy")


@dataclass(frozen=True)
class Postings:
    """The BM25 postings of one segment (rows are the segment's chunks in id order)."""

    vocab: dict[str, int]
    indptr: np.ndarray  # int64, len(vocab) + 1
    rows: np.ndarray  # int32, the rows of term t are rows[indptr[t]:indptr[t + 1]]
    tf: np.ndarray  # float32, aligned with rows
    lengths: np.ndarray  # float32, terms per row

    @property
    def n(self) -> int:
        return len(self.lengths)

    def df(self, term: str) -> int:
        col = self.vocab.get(term)
        return 0 if col is None else int(self.indptr[col + 1] - self.indptr[col])

    @classmethod
    def build(cls, term_lists: Iterable[Sequence[str]]) -> Postings:
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[int] = []
        lengths: list[int] = []
        for r, term_list in enumerate(term_lists):
            counts: dict[str, int] = {}
            for t in term_list:
                counts[t] = counts.get(t, 0) + 1
            lengths.append(len(term_list))
            for t, c in counts.items():
                rows.append(r)
                cols.append(vocab.setdefault(t, len(vocab)))
                tfs.append(c)
        cols_a = np.asarray(cols, dtype=np.int64)
        order = np.argsort(cols_a, kind="stable")  # by term, rows ascending within a term
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols_a, minlength=len(vocab)), out=indptr[1:])
        return cls(
            vocab,
            indptr,
            np.asarray(rows, dtype=np.int32)[order],
            np.asarray(tfs, dtype=np.float32)[order],
            np.asarray(lengths, dtype=np.float32),
        )

    def write(self, folder: Path) -> None:
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        (folder / "terms.txt").write_text("\n".join(terms), encoding="utf-8")
        for name, array in (("indptr", self.indptr), ("rows", self.rows), ("tf", self.tf), ("lengths", self.lengths)):
            np.save(folder / f"{name}.npy", array, allow_pickle=False)

    @classmethod
    def read(cls, folder: Path) -> Postings:
        """Memory-mapped postings of a segment folder (checksums are verified by the caller)."""
        text = (folder / "terms.txt").read_text(encoding="utf-8")
        terms = text.split("\n") if text else []
        arrays = {
            n: np.load(folder / f"{n}.npy", mmap_mode="r", allow_pickle=False)
            for n in ("indptr", "rows", "tf", "lengths")
        }
        postings = cls(
            dict(zip(terms, range(len(terms)))), arrays["indptr"], arrays["rows"], arrays["tf"], arrays["lengths"]
        )
        if len(postings.indptr) != len(terms) + 1 or len(postings.rows) != len(postings.tf):
            raise ValueError("BM25 postings of inconsistent sizes")
        if len(postings.indptr) and int(postings.indptr[-1]) != len(postings.rows):
            raise ValueError("BM25 postings point past their rows")
        return postings


@dataclass(frozen=True)
class Stats:
    """Collection statistics over the segments of one version."""

    parts: tuple[Postings, ...]
    n: int
    avgdl: float

    @classmethod
    def of(cls, parts: Sequence[Postings]) -> Stats:
        n = sum(p.n for p in parts)
        total = sum(float(p.lengths.sum(dtype=np.float64)) for p in parts)
        return cls(tuple(parts), n, total / n if n else 1.0)

    def idf(self, term: str) -> float | None:
        df = sum(p.df(term) for p in self.parts)
        return idf(self.n, df) if df else None

    @property
    def max_idf(self) -> float:
        return idf(self.n, 1) if self.n else 1.0


def idf(n: int, df: int) -> float:
    """The BM25 IDF (always positive): ``log(1 + (n - df + 0.5) / (df + 0.5))``."""
    return float(np.float32(math.log(1 + (n - df + 0.5) / (df + 0.5))))


def score(postings: Postings, stats: Stats, query_terms: Sequence[str]) -> np.ndarray:
    """BM25 score of every row of one segment for ``query_terms`` (each distinct term once)."""
    out = np.zeros(postings.n, dtype=np.float32)
    if not postings.n:
        return out
    norm_base = np.float32(K1 * (1 - B))
    norm_len = np.float32(K1 * B / max(stats.avgdl, 1e-9))
    for term in dict.fromkeys(query_terms):
        col = postings.vocab.get(term)
        if col is None:
            continue
        weight = stats.idf(term)
        a, b = int(postings.indptr[col]), int(postings.indptr[col + 1])
        rows = np.asarray(postings.rows[a:b])
        tf = np.asarray(postings.tf[a:b])
        norm = norm_base + norm_len * np.asarray(postings.lengths)[rows]
        out[rows] += np.float32(weight) * tf * np.float32(K1 + 1) / (tf + norm)
    return out


def top(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest positive scores, best first (ties by position)."""
    hits = np.flatnonzero(scores > 0)
    if len(hits) > k:
        keep = np.argpartition(-scores[hits], k - 1)[:k]
        threshold = scores[hits[keep]].min()
        hits = hits[scores[hits] >= threshold]
    return hits[np.argsort(-scores[hits], kind="stable")][:k]

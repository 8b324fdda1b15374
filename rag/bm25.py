"""Okapi BM25 over the chunks of one index snapshot, with German-aware terms.

Built once per snapshot (statistics, vocabulary and a sparse weight matrix),
so a query only sums a few columns.

>>> bm = BM25(["Schoigu traf Xi in Peking", "Belousow besuchte Peking", "Kirby sprach mit CNN"])
>>> [int(i) for i in bm.top("Wann war Schoigu in Peking?", 2)[0]]
[0, 1]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from .text import terms


class BM25:
    """BM25 scores of a fixed list of texts (``k1``, ``b`` as in Robertson et al.)."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        from scipy.sparse import csc_matrix

        self.vocab: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for i, text in enumerate(texts):
            counts = Counter(terms(text))
            lengths[i] = sum(counts.values())
            for term, tf in counts.items():
                rows.append(i)
                cols.append(self.vocab.setdefault(term, len(self.vocab)))
                tfs.append(tf)
        self.n = len(texts)
        rows_a, cols_a = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        tf = np.asarray(tfs, dtype=np.float32)
        avg = float(lengths.mean()) if self.n else 1.0
        norm = k1 * (1 - b + b * lengths[rows_a] / max(avg, 1e-9)) if len(rows_a) else tf
        weights = tf * (k1 + 1) / (tf + norm)
        df = np.bincount(cols_a, minlength=len(self.vocab)).astype(np.float32)
        self.idf = np.log(1 + (self.n - df + 0.5) / (df + 0.5)).astype(np.float32)
        self.matrix = csc_matrix((weights, (rows_a, cols_a)), shape=(self.n, len(self.vocab)), dtype=np.float32)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every text for ``query`` (zeros when no term matches)."""
        cols = [self.vocab[t] for t in set(terms(query)) if t in self.vocab]
        if not cols or not self.n:
            return np.zeros(self.n, dtype=np.float32)
        sub = self.matrix[:, cols]
        return np.asarray(sub @ self.idf[cols], dtype=np.float32).ravel()

    def top(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions and scores of the ``k`` best texts with a positive score."""
        s = self.scores(query)
        hits = np.flatnonzero(s > 0)
        order = hits[np.argsort(-s[hits], kind="stable")][:k]
        return order, s[order]

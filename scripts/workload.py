"""The benchmarks' shared workload: German man pages as articles, vector mixtures, the dev questions, timed rounds.

``scripts/bench.py``, ``scripts/bench_store.py`` and ``scripts/scale.py`` all draw from here, and
this module imports none of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MAN_ROOT = Path("/usr/share/man/de")
OVERSTRIKE = re.compile(r".\x08")


def strip_overstrike(text: str) -> str:
    """Remove groff's bold/underline overstrikes (``X\\bX``, ``_\\bX``) and escape sequences.

    >>> strip_overstrike("N\\bNA\\bAM\\bME\\bE _\\bx")
    'NAME x'
    """
    return re.sub(r"\x1b\[[0-9;]*m", "", OVERSTRIKE.sub("", text))


def head_chars(text: str, limit: int) -> str:
    """The first lines of ``text`` up to ``limit`` characters (whole lines; at least one).

    >>> head_chars("aa\\nbb\\ncc\\n", 6)
    'aa\\nbb\\n'
    """
    out, size = [], 0
    for line in text.splitlines(keepends=True):
        if out and size + len(line) > limit:
            break
        out.append(line)
        size += len(line)
    return "".join(out)


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact top-k ids that were found.

    >>> recall_at_k(np.array([[1, 2], [3, 4]]), np.array([[2, 1], [3, 5]]))
    0.75
    """
    k = exact.shape[1]
    return float(np.mean([len(set(f.tolist()) & set(e.tolist())) / k for f, e in zip(found, exact)]))


class Mixture:
    """A Gaussian mixture on the unit sphere: draws are ``centre + noise @ spread.T``, normalised.

    >>> m = Mixture.clustered(clusters=10, dim=8)
    >>> v = m.sample(1000, seed=1)
    >>> v.shape, bool(np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5))
    ((1000, 8), True)
    """

    def __init__(self, centres: np.ndarray, weights: np.ndarray, spread: np.ndarray) -> None:
        self.centres = np.ascontiguousarray(centres, dtype=np.float32)
        self.weights = weights / weights.sum()
        self.spread = np.ascontiguousarray(spread, dtype=np.float32)

    @classmethod
    def clustered(cls, clusters: int, dim: int, noise: float = 0.6, seed: int = 0) -> Mixture:
        """Isotropic clusters around random centres (cosine to the centre about 0.86 for ``noise=0.6``)."""
        centres = np.random.default_rng(seed).standard_normal((clusters, dim))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        return cls(centres, np.ones(clusters), np.eye(dim) * (noise / np.sqrt(dim)))

    @classmethod
    def fitted(cls, real: np.ndarray, clusters: int = 128, seed: int = 0) -> Mixture:
        """Fitted to real embeddings: their k-means centres and weights, and the covariance of what is
        left within the clusters. Its vectors are as anisotropic as the real ones (the same mean cosine
        of random pairs); neighbours are a little less distinct than in real text, so it is if anything
        harder for an approximate index."""
        import faiss

        real = np.ascontiguousarray(real, dtype=np.float32)
        clusters = max(2, min(clusters, len(real) // 40))  # k-means wants ~40 points per centre
        kmeans = faiss.Kmeans(real.shape[1], clusters, niter=20, seed=seed)
        kmeans.train(real)
        assigned = kmeans.index.search(real, 1)[1][:, 0]
        residual = real - kmeans.centroids[assigned]
        values, vectors = np.linalg.eigh(np.cov(residual.T))
        spread = vectors * np.sqrt(np.clip(values, 0, None))
        return cls(kmeans.centroids, np.bincount(assigned, minlength=clusters).astype(np.float64), spread)

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        dim = self.centres.shape[1]
        out = np.empty((n, dim), np.float32)
        for start in range(0, n, 100_000):
            m = min(100_000, n - start)
            x = self.centres[rng.choice(len(self.centres), m, p=self.weights)]
            x = x + rng.standard_normal((m, dim)).astype(np.float32) @ self.spread.T
            out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out


def ensure_manpages() -> list[Path]:
    """The compressed German man pages, installing ``manpages-de`` with apt-get if missing."""
    pages = sorted(MAN_ROOT.glob("man*/*.gz"))
    if len(pages) < 1000:  # other packages bring a few German pages; manpages-de brings over 1,000
        print("bench: installing manpages-de with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "man-db", "manpages-de"], check=True, env=env)
        pages = sorted(MAN_ROOT.glob("man*/*.gz"))
    if not shutil.which("man"):
        raise SystemExit("bench: `man` is missing; apt-get install man-db")
    return pages


def render(page: Path) -> str:
    """A man page as plain UTF-8 text (``man -l``, no overstrikes)."""
    env = {**os.environ, "MANWIDTH": "100", "MAN_KEEP_FORMATTING": "", "LANG": "C.UTF-8"}
    done = subprocess.run(["man", "-E", "UTF-8", "-l", str(page)], capture_output=True, env=env, timeout=60)
    return strip_overstrike(done.stdout.decode("utf-8", errors="replace"))


def dev_questions(*names: str) -> list[str]:
    """The questions of the dev sets ``eval/<name>``, in file order."""
    out = []
    for name in names:
        for line in (ROOT / "eval" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line)["question"])
    return out


def timed_rounds(engine, questions: list[str], rounds: int = 2) -> list[float]:
    """Seconds of each ``engine.ask``, one question at a time, ``rounds`` times over ``questions``.

    The second round sees memoised sentence vectors, as a running service does.
    """
    times = []
    for _round in range(rounds):
        for q in questions:
            t = time.perf_counter()
            engine.ask(q)
            times.append(time.perf_counter() - t)
    return times

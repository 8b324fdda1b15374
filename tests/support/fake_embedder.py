"""An obvious fake embedder for the fast tier: a hashed bag of words, no model and no judgement.

Like simonw/llm's ``EmbedDemo``: good enough to build, search and check an index
(same words -> similar vectors), useless for judging answers. Its index's manifest
says model ``fake-hashed-words`` and backend ``fake``, so the real code can never
mistake it for an e5 index: opening it without the fake registered fails with
"cannot be loaded here", and indexing into it with the real model asks for
``--rebuild``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

MODEL_ID = "fake-hashed-words"
BACKEND = "fake"
DIM = 128
_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Each word adds 1 to the dimension its hash picks; rows are L2-normalised (an empty text is a unit vector).

    >>> e = HashEmbedder()
    >>> v = e.embed_documents(["Peking Moskau", "peking moskau", ""])
    >>> v.shape, bool(np.allclose(v[0], v[1])), bool(np.allclose(np.linalg.norm(v, axis=1), 1))
    ((3, 128), True, True)
    """

    model_id = MODEL_ID
    backend = BACKEND

    def __init__(self, dim: int = DIM) -> None:
        self.dim = dim
        self.embedded = 0  # texts embedded so far: tests of "nothing is embedded twice" read it

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        return self._embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.casefold()):
                digest = hashlib.blake2b(word.encode("utf-8"), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
            else:
                out[row, 0] = 1.0
        return out


def load_fake(model: str, cache_dir=None) -> HashEmbedder:
    """The factory registered for backend ``fake`` (see :data:`embeddings.model.encoder.PLUGIN_BACKENDS`)."""
    from embeddings import ModelError

    if model != MODEL_ID:
        raise ModelError(f"the fake backend has only the model {MODEL_ID!r}, not {model!r}")
    return HashEmbedder()

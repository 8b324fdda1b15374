"""Reading an index of format 1 or 2 (one full copy per generation) once, to upgrade it.

``rag index`` on such a folder writes the current format and takes the vectors of
unchanged texts from here instead of embedding them again. Nothing else reads it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from embeddings.stores.embedded.faiss_index import _faiss
from embeddings.stores.manifest import REBUILD_HINT, IndexCorruptError, file_sha256

DATA_FILES = ("chunks.sqlite", "vectors.faiss")


class LegacyVectors:
    """The stored vectors of an old-format generation, by chunk text hash."""

    def __init__(self, gen: Path) -> None:
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
        for name, expected in (manifest.get("checksums") or {}).items():
            if name in DATA_FILES and file_sha256(gen / name) != expected:
                raise IndexCorruptError(f"{gen / name} is damaged; {REBUILD_HINT}")
        self.dim = int(manifest["dim"])
        con = sqlite3.connect(f"file:{gen / 'chunks.sqlite'}?mode=ro&immutable=1", uri=True)
        try:
            self._by_hash: dict[str, int] = {}
            for chunk_id, text_hash in con.execute("SELECT id, text_hash FROM chunks ORDER BY id"):
                if isinstance(chunk_id, int) and isinstance(text_hash, str):
                    self._by_hash.setdefault(text_hash, chunk_id)
        except sqlite3.Error as exc:
            raise IndexCorruptError(f"{gen / 'chunks.sqlite'} is damaged ({exc}); {REBUILD_HINT}") from exc
        finally:
            con.close()
        self._index = _faiss().read_index(str(gen / "vectors.faiss"))

    def ids_with_text(self, text_hashes: Iterable[str]) -> dict[str, int]:
        return {h: self._by_hash[h] for h in text_hashes if h in self._by_hash}

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        return np.vstack([self._index.reconstruct(int(i)) for i in ids]).astype(np.float32)

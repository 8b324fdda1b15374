"""Copy an index from one store to another without the model: ``rag migrate --to SPEC``.

Everything the answer path needs is copied as stored: documents, chunk offsets, vectors
and the manifest (model, dimension, chunking, roots). Nothing is re-read or re-embedded,
so moving an embedded index into Milvus takes the time of the writes only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from embeddings.stores.api import Store, StoreView
from embeddings.types import Chunk

#: What the indexer keeps per file besides its hash (so an unchanged file is not re-read).
FILE_INFO = ("size", "mtime_ns")
#: ``progress(done, total)`` in documents.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class MigrateReport:
    """What one migration copied."""

    documents: int
    chunks: int
    version: str

    def summary(self) -> str:
        return f"copied {self.documents} documents, {self.chunks} chunks; the target is at version {self.version}"


def chunks_of(view: StoreView, source: str) -> tuple[list[Chunk], list[int]]:
    """The chunks of one document as stored, in text order, with their ids."""
    ids = view.ids_of(source)
    return [view.chunk(i) for i in ids], ids


def migrate(
    src: Store, dst: Store, *, progress: Progress | None = None, lock_timeout: float | None = None
) -> MigrateReport:
    """Make ``dst`` hold exactly what ``src`` holds (a full rebuild of ``dst``), reading only stored data.

    Raises:
        IndexNotFoundError: ``src`` has no index.
    """
    view = src.view()  # one consistent version, whatever writers do to src meanwhile
    manifest = view.manifest
    sources = list(manifest.files)
    copied = 0
    with dst.writer(manifest=manifest, rebuild=True, lock_timeout=lock_timeout) as writer:
        for n, source in enumerate(sources, 1):
            chunks, ids = chunks_of(view, source)
            vectors = view.vectors(ids) if ids else np.zeros((0, manifest.dim), np.float32)
            entry = manifest.files[source]
            info = {k: entry[k] for k in FILE_INFO if k in entry}
            writer.add(view.documents[source], chunks, vectors, file_info=info or None)
            copied += len(ids)
            if progress:
                progress(n, len(sources))
        writer.commit(tuple(manifest.roots))
    return MigrateReport(len(sources), copied, dst.version() or "")

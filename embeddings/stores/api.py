"""The store interface: what the answer path reads from an index, and what the indexer writes.

Every storage engine implements these three protocols; :mod:`rag`, :mod:`ui` and the
indexer use nothing else. The embedded store (FAISS + SQLite in one folder,
:mod:`embeddings.stores.embedded.store`) is the default; :func:`embeddings.stores.spec.open_store`
picks an engine from a spec.

A view is a consistent snapshot: everything read through one view belongs to one
version of the index, whatever writers do meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from embeddings.stores.manifest import Manifest
from embeddings.types import Chunk, Document


@dataclass(frozen=True)
class ChunkRow:
    """A chunk as stored: where it is in which document, and the hash of its text."""

    id: int
    source: str
    start: int
    end: int
    text_hash: str


@dataclass(frozen=True)
class IndexPart:
    """A piece of the index whose words and names never change (an immutable segment).

    Readers build their word and name lookups per part and keep them by ``key`` across
    versions, so a small update costs the new part only, not the whole corpus.
    ``words`` are accent-folded word forms; ``names`` one group per document.
    """

    key: str
    words: tuple[str, ...]
    names: tuple[tuple[str, ...], ...]


@runtime_checkable
class StoreView(Protocol):
    """A read-only, consistent view of one version of an index; safe to share between threads."""

    @property
    def manifest(self) -> Manifest:
        """Model, dimension, chunking, roots and the files with their hashes."""

    @property
    def version(self) -> str:
        """Changes whenever the content changes (readers compare it to notice an update)."""

    @property
    def documents(self) -> Mapping[str, Document]:
        """Source -> :class:`Document`, read on demand."""

    def __len__(self) -> int: ...

    def dense_search(
        self, vector: np.ndarray, k: int, sources: frozenset[str] | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` chunks nearest to ``vector`` by cosine: ``[(id, score)]``, best first."""

    def lexical_search(
        self, query_terms: Sequence[str], k: int, sources: frozenset[str] | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` best chunks by BM25 for analysed terms (:func:`embeddings.language.analysis.terms`)."""

    def idf(self, term: str) -> float | None:
        """BM25 inverse document frequency of an analysed term, ``None`` when no chunk has it."""

    @property
    def max_idf(self) -> float:
        """The IDF of a term that one chunk has (what an unknown term weighs)."""

    def rows(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        """The stored rows of the given chunk ids (ids that are not stored are left out)."""

    def chunk(self, chunk_id: int) -> Chunk: ...

    def ids_of(self, source: str) -> list[int]:
        """Chunk ids of one document, in text order."""

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Stored vectors of the given chunk ids, one row each."""

    def ids_with_text(self, text_hashes: Iterable[str]) -> dict[str, int]:
        """For each text hash that is stored, one chunk id holding that text."""

    def parts(self) -> tuple[IndexPart, ...]:
        """The immutable pieces of the index with their words and names."""


@runtime_checkable
class StoreWriter(Protocol):
    """Stages changes on top of a base view and commits them atomically.

    Used as ``with store.writer() as w: ...; w.commit(roots)``; the store's lock is held
    for the whole block, and nothing is visible to readers before :meth:`commit`.
    """

    @property
    def base(self) -> StoreView | None:
        """The version the changes are staged on (``None`` for a new index or a rebuild)."""

    @property
    def changed(self) -> bool:
        """Whether anything was added or removed since the writer opened."""

    def remove(self, source: str) -> int:
        """Drop a document and its chunks; returns how many chunks went."""

    def add(
        self, doc: Document, chunks: list[Chunk], vectors: np.ndarray, *, file_info: dict[str, Any] | None = None
    ) -> None:
        """Add a document (replacing any previous version), one vector per chunk.

        ``file_info`` (size, mtime_ns of the file) is kept in the manifest's entry for the
        source, so that the next run need not read a file whose size and time did not change.
        """

    def commit(self, roots: tuple[str, ...]) -> Manifest:
        """Make the staged state the live version; returns its manifest."""

    def count(self) -> int:
        """Chunks in the index once committed."""


@runtime_checkable
class Store(Protocol):
    """One index in one storage engine."""

    @property
    def spec(self) -> str:
        """How the store was named (a folder, ``milvus:PATH`` or ``milvus://HOST:PORT``)."""

    def version(self) -> str | None:
        """The live version, cheaply (no data loaded); ``None`` when there is no index yet."""

    def view(self) -> StoreView:
        """A consistent view of the live version (raises IndexNotFoundError when there is none)."""

    def manifest(self) -> Manifest | None:
        """The live manifest without loading data, or ``None`` when there is no index."""

    def writer(
        self, *, manifest: Manifest, rebuild: bool = False, lock_timeout: float | None = None
    ) -> AbstractContextManager[StoreWriter]:
        """Lock the index and stage changes; ``manifest`` says model, dimension and chunking."""

    def verify(self, *, deep: bool = True) -> list[str]:
        """Problems found in the stored data (empty when it is sound)."""

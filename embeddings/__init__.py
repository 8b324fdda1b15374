"""Files to index: read, chunk, embed, store.

The public surface used by :mod:`rag` and the command line::

    from embeddings import Embedder, index_paths, open_snapshot
    report = index_paths([Path("seeds")], Path(".rag-index"), Embedder())
"""

from .chunking import ChunkingConfig, chunk_document, split_sentences
from .encoder import DEFAULT_MODEL, Embedder, ModelError
from .indexer import CorpusError, IndexReport, Skipped, index_paths, scan
from .readers import DocumentError, read_document
from .store import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    Manifest,
    Snapshot,
    StoreError,
    current_generation,
    open_snapshot,
    read_manifest,
)
from .types import Chunk, Document

__all__ = [
    "DEFAULT_MODEL",
    "Chunk",
    "ChunkingConfig",
    "CorpusError",
    "Document",
    "DocumentError",
    "Embedder",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexReport",
    "Manifest",
    "ModelError",
    "Skipped",
    "Snapshot",
    "StoreError",
    "chunk_document",
    "current_generation",
    "index_paths",
    "open_snapshot",
    "read_document",
    "read_manifest",
    "scan",
    "split_sentences",
]

"""Files to index: read, chunk, embed, store.

The public surface used by :mod:`rag` and the command line::

    from embeddings import Embedder, index_paths, open_snapshot
    report = index_paths([Path("seeds")], Path(".rag-index"), Embedder())
"""

from .chunking import ChunkingConfig, chunk_document, split_sentences, trim_span
from .encoder import DEFAULT_MODEL, Embedder, ModelError
from .indexer import Corpus, CorpusError, IndexReport, Skipped, index_paths, scan, scan_corpus
from .readers import MAX_FILE_BYTES, DocumentError, read_document
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
    "MAX_FILE_BYTES",
    "Chunk",
    "ChunkingConfig",
    "Corpus",
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
    "scan_corpus",
    "split_sentences",
    "trim_span",
]

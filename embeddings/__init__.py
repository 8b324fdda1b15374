"""Files to index: read, chunk, embed, store.

The public surface used by :mod:`rag` and the command line::

    from embeddings import Embedder, index_paths, open_store
    report = index_paths([Path("seeds")], Path(".rag-index"), Embedder())
"""

from embeddings.chunking import ChunkingConfig, chunk_document, split_sentences, trim_span
from embeddings.indexer import Corpus, CorpusError, IndexReport, Skipped, index_paths, scan, scan_corpus
from embeddings.model.encoder import DEFAULT_MODEL, Embedder, ModelError
from embeddings.readers.files import MAX_FILE_BYTES, DocumentError, read_document
from embeddings.stores.api import ChunkRow, IndexPart, Store, StoreView, StoreWriter
from embeddings.stores.embedded.generations import current_generation
from embeddings.stores.embedded.store import EmbeddedStore, EmbeddedView, open_snapshot, read_manifest
from embeddings.stores.manifest import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    Manifest,
    StoreError,
)
from embeddings.stores.spec import STORE_ENV, open_store, store_spec
from embeddings.types import Chunk, Document

__all__ = [
    "DEFAULT_MODEL",
    "MAX_FILE_BYTES",
    "STORE_ENV",
    "Chunk",
    "ChunkRow",
    "ChunkingConfig",
    "Corpus",
    "CorpusError",
    "Document",
    "DocumentError",
    "EmbeddedStore",
    "EmbeddedView",
    "Embedder",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexPart",
    "IndexReport",
    "Manifest",
    "ModelError",
    "Skipped",
    "Store",
    "StoreError",
    "StoreView",
    "StoreWriter",
    "chunk_document",
    "current_generation",
    "index_paths",
    "open_snapshot",
    "open_store",
    "read_document",
    "read_manifest",
    "scan",
    "scan_corpus",
    "split_sentences",
    "store_spec",
    "trim_span",
]

"""Which store a spec names, and opening it: an index folder, Milvus Lite or a Milvus server.

::

    open_store(".rag-index")            # the embedded store in that folder
    open_store("milvus:./news.db")      # Milvus Lite, a local file   (pip install -e ".[milvus]")
    open_store("milvus://host:19530")   # Milvus Standalone or Distributed

Each engine is imported only when a spec names it, so the embedded store never loads Milvus.
"""

from __future__ import annotations

import os
from pathlib import Path

from embeddings.stores.api import Store

#: Environment variable naming the store when no ``--store`` / ``store=`` is given.
STORE_ENV = "RAG_STORE"


def store_spec(spec: str | os.PathLike[str] | None, default_dir: Path | None = None) -> str:
    """The spec to open: the argument, else ``$RAG_STORE``, else ``default_dir``."""
    if spec is not None and str(spec):
        return os.fspath(spec)
    env = os.environ.get(STORE_ENV, "").strip()
    if env:
        return env
    if default_dir is None:
        raise ValueError(f"no store given: pass --store, set {STORE_ENV}, or give an index folder")
    return os.fspath(default_dir)


def is_milvus(spec: str) -> bool:
    return spec.startswith("milvus:")


def open_store(spec: str | os.PathLike[str], *, answering: bool = False) -> Store:
    """The store named by ``spec``: ``milvus:PATH.db`` / ``milvus://HOST:PORT``, else an index folder.

    ``answering``: the process serves questions, so the embedded store reads its large files
    whole in the background instead of before the first answer (see its segments module).
    """
    text = os.fspath(spec)
    if is_milvus(text):
        try:
            from embeddings.stores.milvus.store import MilvusStore
        except ImportError as exc:
            raise ImportError(
                f'{text}: the Milvus store needs its extra; install it with pip install -e ".[milvus]" ({exc})'
            ) from exc
        return MilvusStore(text)
    from embeddings.stores.embedded.store import EmbeddedStore

    return EmbeddedStore(Path(text), check_in_background=answering)

"""The Milvus store: the same read view and writer as the embedded store, kept in Milvus.

``milvus:PATH.db`` is Milvus Lite (the engine in a local file, one process at a time);
``milvus://HOST:PORT`` is Milvus Standalone or Distributed (``token=`` for a secured one).
Install with ``pip install -e ".[milvus]"`` (``milvus-lite==2.5.1``, the last Lite release with
Milvus's C++ engine, dense, BM25 and hybrid search; 3.x is a pure-Python rewrite).

This module opens versions, locks and cleans up; :mod:`embeddings.stores.milvus.view`
reads one version and :mod:`embeddings.stores.milvus.writer` writes the next.

The collections' layout and versioning: :mod:`embeddings.stores.milvus.collections`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from embeddings.stores.manifest import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    Manifest,
)
from embeddings.stores.milvus.collections import REBUILD_HINT, MilvusCollections, Pointer, family_of
from embeddings.stores.milvus.view import MilvusView
from embeddings.stores.milvus.writer import MilvusWriter


class MilvusStore(MilvusCollections):
    """One index in Milvus (see :mod:`embeddings.stores.milvus.collections` for the layout and the isolation it gives).

    Args:
        spec: ``milvus:PATH.db`` or ``milvus://HOST:PORT`` (optionally ``#PREFIX``).
        token: for a secured server (``user:password`` or an API key).
    """

    # ------------------------------------------------------------------ the Store protocol

    def version(self) -> str | None:
        p = self.live()
        return p.version if p else None

    def manifest(self) -> Manifest | None:
        p = self.live()
        return None if p is None else MilvusView(self, p).manifest

    def view(self) -> MilvusView:
        p = self.live()
        if p is None:
            raise IndexNotFoundError(f"no index in {self.spec}; build one with `rag index PATH --store {self.spec}`")
        return MilvusView(self, p)

    @contextmanager
    def writer(self, *, manifest, rebuild: bool = False, lock_timeout: float | None = None) -> Iterator[MilvusWriter]:
        """Lock the index, clean up after writers that died, and stage changes (see :class:`MilvusWriter`)."""
        with self._lock(lock_timeout):
            live = self.live()
            if live is not None and not rebuild:
                m = live.manifest
                if (m["model"], m["dim"], m.get("backend")) != (manifest.model, manifest.dim, manifest.backend):
                    raise IndexMismatchError(
                        f"{self.spec} was built with model {m['model']!r} ({m.get('backend')}, {m['dim']} dimensions), "
                        f"not {manifest.model!r} ({manifest.backend}, {manifest.dim}); use the same --model, "
                        f"or {REBUILD_HINT}"
                    )
            self._collect(live)
            yield MilvusWriter(self, live, manifest, rebuild=rebuild or live is None)

    @contextmanager
    def _lock(self, timeout: float | None):
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._thread_lock.acquire(timeout=-1 if timeout is None else timeout):
            raise IndexLockedError(f"{self.spec} is being updated by another writer; try again when it finishes")
        try:
            if self.lite:
                path = self.uri + ".lock"
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            else:  # one lock per server and prefix on this machine; other machines must not index meanwhile
                key = hashlib.sha1(f"{self.uri}#{self.prefix}".encode()).hexdigest()[:16]
                path = os.path.join(tempfile.gettempdir(), f"rag-milvus-{key}.lock")
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if deadline is not None and time.monotonic() > deadline:
                            raise IndexLockedError(
                                f"{self.spec} is being updated by another process; try again when it finishes"
                            ) from None
                        time.sleep(0.05)
                yield
            finally:
                os.close(fd)  # releases the flock
        finally:
            self._thread_lock.release()

    def _collect(self, live: Pointer | None) -> None:
        """Undo what a writer that died left (rows of a version never committed); drop unused families."""
        kept = self.pointers()[:2]
        families = {p.family for p in kept}
        for name in self.client.list_collections():
            family = family_of(name, self.prefix)
            if family is not None and family not in families:
                self.client.drop_collection(name)
        if live is None:
            return
        g = live.generation
        for kind in ("chunks", "docs"):
            self.client.delete(self.name(live.family, kind), filter=f"born > {g}")
        self.client.delete(self.name(live.family, "df"), filter=f"born > {g}")
        self.client.delete(self.name(live.family, "retired"), filter=f"gen > {g}")

    def verify(self, *, deep: bool = True) -> list[str]:
        """Problems in the stored data: the version record, counts, and (``deep``) every chunk's text hash."""
        try:
            live = self.live()
        except IndexCorruptError as exc:
            return [str(exc)]
        if live is None:
            return [f"no index in {self.spec}"]
        names = set(self.client.list_collections())
        missing = [k for k in ("chunks", "docs", "df", "retired") if self.name(live.family, k) not in names]
        if missing:
            return [f"{self.spec}: collections missing for the live version: {', '.join(missing)}; {REBUILD_HINT}"]
        view = MilvusView(self, live)
        problems = []
        ids = view.all_ids()
        expected = sum(f["chunks"] for f in view.manifest.files.values())
        if len(ids) != expected:
            problems.append(f"{self.spec}: {len(ids)} chunks stored, the documents list {expected}; {REBUILD_HINT}")
        if deep:
            for source in view.manifest.files:
                try:
                    for i in view.ids_of(source):
                        view.chunk(i)
                except (IndexCorruptError, KeyError) as exc:
                    problems.append(str(exc))
                    break
            if ids:
                v = view.vectors(ids[:1])
                if v.shape[1] != view.manifest.dim:
                    problems.append(
                        f"{self.spec}: vectors have {v.shape[1]} dimensions, the manifest says {view.manifest.dim}"
                    )
        return problems

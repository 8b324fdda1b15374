"""The embedded store: FAISS + SQLite segments in one folder, versions switched atomically.

The default implementation of :mod:`embeddings.stores.api`. An index folder holds
generations (see :mod:`embeddings.stores.embedded.generations`) that list immutable segments (see
:mod:`embeddings.stores.embedded.segments`). An update writes one new segment with the changed
files' chunks and a new generation whose manifest records which older chunk ids are
deleted; nothing else is copied. When segments pile up or a segment is mostly deleted,
the writer merges them (:data:`MAX_SEGMENTS`, :data:`MAX_DELETED`).

Readers open whatever ``CURRENT`` names and keep that view; segments already opened
by an earlier view are reused, so after an update a reader loads only the new
segment. A damaged file fails its checksum and is reported with how to rebuild; it
is never parsed, so it cannot give answers. No pickle.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from embeddings.stores.api import ChunkRow, IndexPart
from embeddings.stores.embedded import lexical
from embeddings.stores.embedded.faiss_index import FLAT_LIMIT
from embeddings.stores.embedded.generations import (
    WriteLock,
    collect_garbage,
    current_generation,
    fsync_files,
    highest_number,
    switch_current,
)
from embeddings.stores.embedded.legacy import LegacyVectors
from embeddings.stores.embedded.segments import Segment, check_chunk, write_segment
from embeddings.stores.manifest import (
    FORMAT_VERSION,
    REBUILD_HINT,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    LegacyIndexError,
    Manifest,
    SegmentEntry,
    StoreError,
)
from embeddings.types import Chunk, Document

#: More segments than this and the writer merges all but the largest into one.
MAX_SEGMENTS = 8
#: A segment with more than this share of its chunks deleted is rewritten.
MAX_DELETED = 0.3


class DocumentMap(Mapping[str, Document]):
    """The documents of a view, read from their segments on demand."""

    def __init__(self, view: EmbeddedView) -> None:
        self._view = view

    def __getitem__(self, source: str) -> Document:
        doc = self._view.document(source)
        if doc is None:
            raise KeyError(source)
        return doc

    def __contains__(self, source) -> bool:
        return source in self._view.manifest.files

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._view.manifest.files))

    def __len__(self) -> int:
        return len(self._view.manifest.files)


class EmbeddedView:
    """A consistent, read-only view of one generation; safe to share between threads."""

    def __init__(self, path: Path, manifest: Manifest, segments: Sequence[Segment]) -> None:
        self.path = path
        self.manifest = manifest
        self.version = path.name
        self.segments = tuple(segments)
        self.documents = DocumentMap(self)
        self._by_name = {s.name: s for s in self.segments}
        self._deleted = {e.name: np.asarray(sorted(e.deleted), dtype=np.int64) for e in manifest.segments if e.deleted}
        self._stats = lexical.Stats.of([s.postings for s in self.segments])
        self._idf: dict[str, float | None] = {}
        self._dead: dict[str, np.ndarray] = {}
        self._memo_lock = threading.Lock()

    @property
    def generation(self) -> int:
        return self.manifest.generation

    def __len__(self) -> int:
        return self.manifest.chunk_count

    # -- lookups by id
    def _is_deleted(self, seg: Segment, ids: np.ndarray) -> np.ndarray:
        deleted = self._deleted.get(seg.name)
        return np.isin(ids, deleted) if deleted is not None else np.zeros(len(ids), bool)

    def _group(self, ids: Sequence[int]) -> dict[str, list[int]]:
        """Segment name -> the live ids of ``ids`` it holds (KeyError for an id no segment holds)."""
        ids_a = np.asarray(ids, dtype=np.int64)
        placed = np.zeros(len(ids_a), bool)
        out: dict[str, list[int]] = {}
        for seg in self.segments:
            here = seg.holds(ids_a) & ~placed & ~self._is_deleted(seg, ids_a)
            if here.any():
                out[seg.name] = ids_a[here].tolist()
                placed |= here
        if not placed.all():
            raise KeyError(int(ids_a[~placed][0]))
        return out

    def row(self, chunk_id: int) -> ChunkRow:
        return self.rows([chunk_id])[int(chunk_id)]

    def rows(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        out: dict[int, ChunkRow] = {}
        for name, group in self._group(ids).items():
            out.update(self._by_name[name].rows(group))
        missing = [int(i) for i in ids if int(i) not in out]
        if missing:
            raise IndexCorruptError(f"{self.path}: chunk {missing[0]} has no row; {REBUILD_HINT}")
        return out

    def chunk(self, chunk_id: int) -> Chunk:
        row = self.row(chunk_id)
        doc = self.document(row.source)
        text = check_chunk(row, doc, self.path)
        return Chunk(row.source, doc.title if doc else "", row.start, row.end, text)

    def document(self, source: str) -> Document | None:
        entry = self.manifest.files.get(source)
        if entry is None:
            return None
        seg = self._by_name.get(entry.get("segment", ""))
        doc = seg.document(source) if seg is not None else None
        if doc is None:
            raise IndexCorruptError(f"{self.path}: {source!r} is listed but not stored; {REBUILD_HINT}")
        return doc

    def ids_of(self, source: str) -> list[int]:
        entry = self.manifest.files.get(source)
        seg = self._by_name.get(entry.get("segment", "")) if entry else None
        return seg.ids_of(source) if seg is not None else []

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        ids = [int(i) for i in ids]
        if not ids:
            return np.zeros((0, self.manifest.dim), np.float32)
        found: dict[int, np.ndarray] = {}
        for name, group in self._group(ids).items():
            found.update(zip(group, self._by_name[name].vectors(group)))
        return np.vstack([found[i] for i in ids]).astype(np.float32)

    def ids_with_text(self, text_hashes: Iterable[str]) -> dict[str, int]:
        hashes = list(dict.fromkeys(text_hashes))
        out: dict[str, int] = {}
        for seg in self.segments:
            for h, ids in seg.ids_with_text([h for h in hashes if h not in out]).items():
                live = [i for i, dead in zip(ids, self._is_deleted(seg, np.asarray(ids, np.int64))) if not dead]
                if live:
                    out[h] = live[0]
        return out

    # -- search
    def _source_ids(self, sources: frozenset[str]) -> np.ndarray:
        ids = [i for s in sorted(sources) for i in self.ids_of(s)]
        return np.asarray(ids, dtype=np.int64)

    def dense_search(
        self, vector: np.ndarray, k: int, sources: frozenset[str] | None = None
    ) -> list[tuple[int, float]]:
        query = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        if sources is not None:
            ids = self._source_ids(sources)
            if not len(ids):
                return []
            scores = self.vectors(ids) @ query[0]
            order = np.argsort(-scores, kind="stable")[:k]
            return [(int(ids[o]), float(scores[o])) for o in order]
        found: list[tuple[int, float]] = []
        for seg in self.segments:
            deleted = self._deleted.get(seg.name)
            extra = 0 if deleted is None else len(deleted)
            depth = min(len(seg), k + extra)
            if depth <= 0:
                continue
            scores, ids = seg.index.search(query, depth)
            keep = ids[0] >= 0
            if deleted is not None:
                keep &= ~np.isin(ids[0], deleted)
            found.extend(zip(ids[0][keep].tolist(), scores[0][keep].tolist()))
        found.sort(key=lambda p: (-p[1], p[0]))
        return found[:k]

    def lexical_search(
        self, query_terms: Sequence[str], k: int, sources: frozenset[str] | None = None
    ) -> list[tuple[int, float]]:
        allowed = self._source_ids(sources) if sources is not None else None
        found: list[tuple[int, float]] = []
        for seg in self.segments:
            scores = lexical.score(seg.postings, self._stats, query_terms)
            dead = self._dead_rows(seg)
            if dead is not None:
                scores[dead] = 0
            if allowed is not None:
                scores[~np.isin(seg.ids, allowed)] = 0
            positions = lexical.top(scores, k)
            found.extend(zip(seg.ids[positions].tolist(), scores[positions].tolist()))
        found.sort(key=lambda p: (-p[1], p[0]))
        return found[:k]

    def _dead_rows(self, seg: Segment) -> np.ndarray | None:
        """Rows of ``seg`` deleted in this version (computed once per view and segment)."""
        deleted = self._deleted.get(seg.name)
        if deleted is None:
            return None
        rows = self._dead.get(seg.name)
        if rows is None:
            rows = np.flatnonzero(np.isin(seg.ids, deleted))
            with self._memo_lock:
                self._dead[seg.name] = rows
        return rows

    def idf(self, term: str) -> float | None:
        try:
            return self._idf[term]
        except KeyError:
            value = self._stats.idf(term)
            with self._memo_lock:
                self._idf[term] = value
            return value

    @property
    def max_idf(self) -> float:
        return self._stats.max_idf

    def parts(self) -> tuple[IndexPart, ...]:
        return tuple(IndexPart(f"{self.path.parent}/{s.name}", s.words(), s.names()) for s in self.segments)


class EmbeddedStore:
    """The index in one folder (see the module docstring); cheap to make, loads on :meth:`view`."""

    def __init__(self, index_dir: Path, *, flat_limit: int = FLAT_LIMIT, check_in_background: bool = False) -> None:
        """``check_in_background``: readers check large files by their heads and read them whole
        on a background thread (a process answering questions); otherwise every file is read
        whole before it is parsed (writers, ``rag check``, copies)."""
        self.index_dir = Path(index_dir)
        self.spec = str(index_dir)
        self.flat_limit = flat_limit
        self.check_in_background = check_in_background
        self._segments: dict[str, Segment] = {}
        self._lock = threading.Lock()

    def version(self) -> str | None:
        return current_generation(self.index_dir)

    def manifest(self) -> Manifest | None:
        """The live manifest; ``None`` when there is no index, or one of an older format to upgrade."""
        try:
            return read_manifest(self.index_dir)
        except LegacyIndexError:
            return None

    def view(self, *, eager: bool = True) -> EmbeddedView:
        """The live generation. Raises IndexNotFoundError, IndexCorruptError or IndexMismatchError.

        ``eager`` verifies and loads every file of every segment now (what a reader answering
        questions needs); a writer opens lazily and reads only what it touches.
        """
        for _attempt in range(5):
            name = current_generation(self.index_dir)
            if name is None:
                raise IndexNotFoundError(f"no index in {self.index_dir}; build one with `rag index PATH`")
            try:
                return self._open(self.index_dir / name, eager=eager)
            except FileNotFoundError:
                # A writer may have replaced and collected this generation between our two reads.
                if current_generation(self.index_dir) == name:
                    raise IndexCorruptError(f"{self.index_dir / name} is incomplete; {REBUILD_HINT}") from None
        raise IndexCorruptError(f"{self.index_dir} keeps changing under the reader; try again")

    def _open(self, gen: Path, *, eager: bool) -> EmbeddedView:
        path = gen / "manifest.json"
        manifest = Manifest.from_json(path.read_text(encoding="utf-8"), path)
        with self._lock:
            segments = []
            for entry in manifest.segments:
                seg = self._segments.get(entry.name)
                if seg is None or seg.entry.checksums != entry.checksums or not (eager or seg.checked_whole):
                    seg = Segment(self.index_dir / entry.name, entry, manifest.dim)  # a writer reads whole files
                # Loaded now: once a writer collects a segment's folder, files not yet opened are gone.
                segments.append(seg.load(background=self.check_in_background) if eager else seg)
            if eager:
                self._segments = {s.name: s for s in segments}  # older views keep their own references
        listed = {e.name for e in manifest.segments}
        for source, file_entry in manifest.files.items():
            if file_entry.get("segment") not in listed:
                raise IndexCorruptError(f"{path}: {source!r} is in no segment of this version; {REBUILD_HINT}")
        return EmbeddedView(gen, manifest, segments)

    @contextmanager
    def writer(self, *, manifest: Manifest, rebuild: bool = False, lock_timeout: float | None = None):
        """Lock the folder and stage changes on the live view (or on nothing, with ``rebuild``)."""
        with WriteLock(self.index_dir, timeout=lock_timeout):
            base, reuse = None, None
            if not rebuild and current_generation(self.index_dir) is not None:
                try:
                    base = self.view(eager=False)
                except LegacyIndexError as old:  # upgrade: every file written anew, vectors taken from there
                    reuse = LegacyVectors(old.generation)
            writer = SegmentWriter(self, base, manifest)
            writer.reuse = reuse or base
            yield writer

    def verify(self, *, deep: bool = True) -> list[str]:
        """Problems in the live version: checksums always; with ``deep``, every chunk against its text."""
        try:
            view = EmbeddedStore(self.index_dir, flat_limit=self.flat_limit).view()  # fresh: checksums re-read
        except StoreError as exc:
            return [str(exc)]
        problems = []
        if deep:
            for seg in view.segments:
                try:
                    for row in seg.all_rows():
                        check_chunk(row, seg.document(row.source), seg.folder)
                except StoreError as exc:
                    problems.append(str(exc))
        return problems


class SegmentWriter:
    """Stages changes on top of a base view; :meth:`commit` writes one new segment and a new generation."""

    def __init__(self, store: EmbeddedStore, base: EmbeddedView | None, manifest: Manifest) -> None:
        if base is not None and (base.manifest.model, base.manifest.dim) != (manifest.model, manifest.dim):
            raise IndexMismatchError(
                f"{store.index_dir} was built with {base.manifest.model} ({base.manifest.dim} dimensions); "
                f"{REBUILD_HINT}"
            )
        self.store = store
        self.base = base
        self.manifest = manifest
        self.files: dict[str, dict] = dict(base.manifest.files) if base else {}
        self.deleted: dict[str, set[int]] = {e.name: set(e.deleted) for e in base.manifest.segments} if base else {}
        self.pending: dict[str, tuple[Document, list[Chunk], np.ndarray]] = {}
        #: where unchanged vectors are read from: the base view, or an old-format index being upgraded
        self.reuse: EmbeddedView | LegacyVectors | None = base
        self.next_id = max(manifest.next_id, base.manifest.next_id if base else 0)
        self.changed = False

    def remove(self, source: str) -> int:
        gone = 0
        staged = self.pending.pop(source, None)
        if staged is not None:
            gone += len(staged[1])
            self.changed = True
        entry = self.files.pop(source, None)
        if entry is not None:
            self.changed = True
            seg = entry.get("segment")
            if self.base is not None and seg in self.deleted:
                ids = self.base.ids_of(source)
                self.deleted[seg].update(ids)
                gone += len(ids)
        return gone

    def add(self, doc: Document, chunks: list[Chunk], vectors: np.ndarray, *, file_info: dict | None = None) -> None:
        if len(chunks) != len(vectors):
            raise ValueError(f"{doc.source}: {len(chunks)} chunks but {len(vectors)} vectors")
        self.remove(doc.source)
        self.pending[doc.source] = (doc, list(chunks), np.asarray(vectors, dtype=np.float32).reshape(len(chunks), -1))
        self.files[doc.source] = {
            **(file_info or {}),
            "sha256": doc.content_hash,
            "chunks": len(chunks),
            "title": doc.title,  # what a list of the documents shows, without reading any of them
            "date": doc.date.isoformat() if doc.date else "",
        }
        self.changed = True

    def count(self) -> int:
        if not self.pending and self.manifest.segments and not self.changed:
            return self.manifest.chunk_count
        base = 0
        if self.base is not None:
            base = sum(e.count - len(self.deleted[e.name]) for e in self.base.manifest.segments)
        return base + sum(len(c) for _d, c, _v in self.pending.values())

    def commit(self, roots: tuple[str, ...]) -> Manifest:
        """Write the staged state as the next generation and make it live."""
        index_dir = self.store.index_dir
        index_dir.mkdir(parents=True, exist_ok=True)
        entries = []
        if self.base is not None:
            for e in self.base.manifest.segments:
                deleted = tuple(sorted(self.deleted[e.name]))
                if len(deleted) < e.count:
                    entries.append(replace(e, deleted=deleted))
        files = {s: dict(v) for s, v in self.files.items()}
        if self.pending:
            documents, rows, vectors = [], [], []
            for doc, chunks, vecs in self.pending.values():
                documents.append(doc)
                for chunk in chunks:
                    rows.append(ChunkRow(self.next_id, doc.source, chunk.start, chunk.end, chunk.text_hash))
                    self.next_id += 1
                vectors.append(vecs)
            entry = self._write(documents, rows, np.vstack(vectors) if rows else np.zeros((0, self.manifest.dim)))
            entries.append(entry)
            for doc in documents:
                files[doc.source]["segment"] = entry.name
        entries = self._merge(entries, files)
        generation = (
            max(self.manifest.generation, self.base.generation if self.base else 0, highest_number(index_dir, "gen"))
            + 1
        )
        manifest = replace(
            self.manifest,
            roots=tuple(roots),
            files=dict(sorted(files.items())),
            generation=generation,
            next_id=self.next_id,
            format=FORMAT_VERSION,
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            segments=tuple(entries),
        )
        name = f"gen-{generation:06d}"
        tmp = index_dir / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        fsync_files(tmp)
        os.rename(tmp, index_dir / name)  # numbered above every folder present, so it never exists yet
        switch_current(index_dir, name)
        self.manifest = manifest
        self.pending.clear()
        self.changed = False
        collect_garbage(index_dir)
        return manifest

    def _write(self, documents: list[Document], rows: list[ChunkRow], vectors: np.ndarray) -> SegmentEntry:
        index_dir = self.store.index_dir
        name = f"seg-{highest_number(index_dir, 'seg') + 1:06d}"
        tmp = index_dir / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        entry = write_segment(tmp, documents, rows, vectors, flat_limit=self.store.flat_limit)
        fsync_files(tmp)
        os.rename(tmp, index_dir / name)
        return replace(entry, name=name)

    def _merge(self, entries: list[SegmentEntry], files: dict[str, dict]) -> list[SegmentEntry]:
        """Merge segments when there are too many, or one is mostly deleted (see the module docstring)."""
        worn = [e for e in entries if e.count and len(e.deleted) / e.count > MAX_DELETED]
        if len(entries) > MAX_SEGMENTS:
            largest = max(entries, key=lambda e: e.live)
            chosen = [e for e in entries if e is not largest or e in worn]
        elif worn and len(entries) > 1:
            small = [e for e in entries if e not in worn and e.live < max(x.live for x in entries) / 10]
            chosen = worn + small
        else:
            chosen = worn
        if not chosen:
            return entries
        documents, rows, vectors = self._collect(chosen, files)
        keep = [e for e in entries if e not in chosen]
        if not rows:
            return keep
        merged = self._write(documents, rows, vectors)
        for doc in documents:
            files[doc.source]["segment"] = merged.name
        return [*keep, merged]

    def _collect(self, chosen: list[SegmentEntry], files: dict[str, dict]):
        """The live documents, rows and vectors of ``chosen`` segments (new ones are opened from disk)."""
        documents, rows, vectors = [], [], []
        for entry in chosen:
            seg = self.store._segments.get(entry.name)
            if seg is None or seg.entry.checksums != entry.checksums:
                seg = Segment(self.store.index_dir / entry.name, entry, self.manifest.dim)
            dead = set(entry.deleted)
            live_rows = [
                r for r in seg.all_rows() if r.id not in dead and files.get(r.source, {}).get("segment") == entry.name
            ]
            for source in dict.fromkeys(r.source for r in live_rows):
                documents.append(seg.document(source))
            rows.extend(live_rows)
            if live_rows:
                vectors.append(seg.vectors([r.id for r in live_rows]))
        order = np.argsort([r.id for r in rows], kind="stable")
        rows = [rows[i] for i in order]
        stacked = np.vstack(vectors)[order] if vectors else np.zeros((0, self.manifest.dim), np.float32)
        return documents, rows, stacked


def read_manifest(index_dir: Path) -> Manifest | None:
    """The live manifest, or None when there is no index (cheap: no vectors are loaded)."""
    name = current_generation(index_dir)
    if name is None:
        return None
    path = Path(index_dir) / name / "manifest.json"
    try:
        return Manifest.from_json(path.read_text(encoding="utf-8"), path)
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} is missing; {REBUILD_HINT}") from None


def recorded_roots(index_dir: Path) -> tuple[str, ...]:
    """The folders the index was built from, read from the newest manifest that can still be read.

    Used to rebuild a damaged index: the live generation may be unreadable while an older one is not.
    """
    import json

    index_dir = Path(index_dir)
    for gen in sorted(index_dir.glob("gen-*"), key=lambda p: p.name, reverse=True):
        try:
            roots = json.loads((gen / "manifest.json").read_text(encoding="utf-8")).get("roots", ())
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            continue
        if roots and all(isinstance(r, str) for r in roots):
            return tuple(roots)
    return ()


def open_snapshot(index_dir: Path) -> EmbeddedView:
    """The live view of the embedded index in ``index_dir`` (a fresh store: nothing cached)."""
    return EmbeddedStore(Path(index_dir)).view()

"""The on-disk index: FAISS vectors, SQLite metadata and a JSON manifest, written atomically.

Layout of an index folder::

    LOCK                 writers hold an flock on it (released by the kernel if they die)
    CURRENT              name of the live generation; replaced with os.replace
    gen-000007/
        manifest.json    model, dimension, chunking, every article's SHA-256, and the SHA-256
                         of the two files below (checked before either is parsed)
        chunks.sqlite    documents (full text, title, date) and chunks (offsets)
        vectors.faiss    normalised vectors keyed by chunk id (inner product = cosine): exact
                         (flat) while small, an IVF index with a direct map from FLAT_LIMIT on

A generation is never modified after it is written. A writer builds the next
one in a temporary folder, renames it into place and only then switches
``CURRENT``; a crash at any point leaves the previous state or the new one.
Readers open whatever ``CURRENT`` names and keep that snapshot. A damaged
file (truncated, overwritten, from another index) fails its checksum and is
reported with how to rebuild; it is never parsed, so it cannot give answers.
No pickle.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .types import Chunk, Document

#: 2 added the checksums of the data files. Format 1 indexes are still read (and written as 2 on the next change).
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
#: Below this many vectors the index is exact (txtai's threshold); from it on, IVF.
FLAT_LIMIT = 5_000
REBUILD_HINT = "rebuild it with `rag index --rebuild`"
DATA_FILES = ("chunks.sqlite", "vectors.faiss")
_GENERATION_NAME = re.compile(r"gen-\d{6,}")


class StoreError(RuntimeError):
    """Base class of index problems; the message says what to do."""


class IndexNotFoundError(StoreError):
    """There is no index in the folder yet."""


class IndexCorruptError(StoreError):
    """Index files are missing, truncated or inconsistent."""


class IndexMismatchError(StoreError):
    """The index was built with another model, dimension or format than asked for."""


class IndexLockedError(StoreError):
    """Another process is writing the index and did not finish in time."""


def _faiss():
    import faiss

    return faiss


@dataclass(frozen=True)
class Manifest:
    """What built an index, and the files in it."""

    model: str
    dim: int
    backend: str = "torch"
    chunking: dict = field(default_factory=dict)
    roots: tuple[str, ...] = ()
    files: dict[str, dict] = field(default_factory=dict)  # source -> {"sha256", "chunks", "size"}
    generation: int = 0
    next_id: int = 0
    format: int = FORMAT_VERSION
    created: str = ""
    checksums: dict[str, str] = field(default_factory=dict)  # file of the generation -> SHA-256

    def to_json(self) -> str:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["roots"] = list(self.roots)
        return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: Path) -> Manifest:
        try:
            data = json.loads(text)
            data["roots"] = tuple(data.get("roots", ()))
            known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
            manifest = cls(**known)
        except (ValueError, TypeError, KeyError) as exc:
            raise IndexCorruptError(f"{where}: unreadable manifest ({exc}); {REBUILD_HINT}") from exc
        if manifest.format not in READABLE_FORMATS:
            raise IndexMismatchError(
                f"{where}: index format {manifest.format}, this version reads {FORMAT_VERSION}; {REBUILD_HINT}"
            )
        if manifest.format >= 2 and set(manifest.checksums) != set(DATA_FILES):
            raise IndexCorruptError(f"{where}: the checksums of the index files are missing; {REBUILD_HINT}")
        return manifest


@dataclass(frozen=True)
class ChunkRow:
    """A chunk as stored: where it is in which document, and the hash of its text."""

    id: int
    source: str
    start: int
    end: int
    text_hash: str


class Snapshot:
    """A read-only view of one generation, fully loaded into memory.

    Safe to share between threads: nothing in it changes after construction.
    """

    def __init__(self, path: Path, manifest: Manifest, faiss_index, documents: dict[str, Document], rows):
        self.path = path
        self.manifest = manifest
        self.faiss_index = faiss_index
        self.documents = documents
        self.rows: dict[int, ChunkRow] = {r.id: r for r in rows}
        self.ids = np.fromiter(self.rows, dtype=np.int64, count=len(self.rows))
        self._by_source: dict[str, list[int]] | None = None

    @property
    def generation(self) -> int:
        return self.manifest.generation

    def __len__(self) -> int:
        return len(self.rows)

    def chunk(self, chunk_id: int) -> Chunk:
        row = self.rows[int(chunk_id)]
        doc = self.documents[row.source]
        return Chunk(row.source, doc.title, row.start, row.end, doc.text[row.start : row.end])

    def ids_of(self, source: str) -> list[int]:
        """Chunk ids of one document, in text order."""
        if self._by_source is None:
            by_source: dict[str, list[int]] = {}
            for row in sorted(self.rows.values(), key=lambda r: (r.source, r.start)):
                by_source.setdefault(row.source, []).append(row.id)
            self._by_source = by_source
        return self._by_source.get(source, [])

    def chunks(self) -> list[Chunk]:
        return [self.chunk(i) for i in self.ids]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` chunk ids by cosine for each query row: ``(scores, ids)``, id -1 where fewer exist."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if not len(self.rows):
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return self.faiss_index.search(queries, min(k, len(self.rows)))

    def vectors(self, ids) -> np.ndarray:
        """Stored vectors of the given chunk ids."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.manifest.dim), np.float32)
        return np.vstack([self.faiss_index.reconstruct(int(i)) for i in ids]).astype(np.float32)


# ----------------------------------------------------------------------------- reading


def current_generation(index_dir: Path) -> str | None:
    """Name of the live generation folder, or None when there is no index."""
    try:
        raw = (Path(index_dir) / "CURRENT").read_bytes()
    except FileNotFoundError:
        return None
    name = raw.decode("ascii", errors="replace").strip()
    if not _GENERATION_NAME.fullmatch(name):
        raise IndexCorruptError(f"{index_dir}/CURRENT is damaged ({name[:40]!r}); {REBUILD_HINT}")
    return name


def open_snapshot(index_dir: Path) -> Snapshot:
    """Load the live generation of ``index_dir``.

    Raises:
        IndexNotFoundError: no index there.
        IndexCorruptError / IndexMismatchError: the files cannot be trusted.
    """
    index_dir = Path(index_dir)
    for _attempt in range(5):
        name = current_generation(index_dir)
        if name is None:
            raise IndexNotFoundError(f"no index in {index_dir}; build one with `rag index PATH`")
        try:
            return _load_generation(index_dir / name)
        except FileNotFoundError:
            # A writer may have replaced and collected this generation between our two reads.
            if current_generation(index_dir) == name:
                raise IndexCorruptError(f"{index_dir / name} is incomplete; {REBUILD_HINT}") from None
    raise IndexCorruptError(f"{index_dir} keeps changing under the reader; try again")


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


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _verify_checksums(gen: Path, manifest: Manifest) -> None:
    """Compare the generation's files with the checksums its manifest recorded.

    Run before the files are parsed: a damaged FAISS file can make the library
    allocate or read nonsense, and damaged text would be quoted as evidence.
    """
    for name, expected in sorted(manifest.checksums.items()):
        path = gen / name
        if name not in DATA_FILES:
            raise IndexCorruptError(f"{gen / 'manifest.json'} lists an unknown file {name!r}; {REBUILD_HINT}")
        if file_sha256(path) != expected:
            raise IndexCorruptError(f"{path} is damaged (its checksum does not match the manifest); {REBUILD_HINT}")


def recorded_roots(index_dir: Path) -> tuple[str, ...]:
    """The folders the index was built from, read from the newest manifest that can still be read.

    Used to rebuild a damaged index: the live generation may be unreadable while an older one is not.
    """
    index_dir = Path(index_dir)
    for gen in sorted(index_dir.glob("gen-*"), key=lambda p: p.name, reverse=True):
        path = gen / "manifest.json"
        try:
            roots = Manifest.from_json(path.read_text(encoding="utf-8"), path).roots
        except (OSError, UnicodeDecodeError, StoreError):
            continue
        if roots:
            return roots
    return ()


def _load_generation(gen: Path) -> Snapshot:
    manifest_path = gen / "manifest.json"
    manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"), manifest_path)
    db_path, vec_path = gen / "chunks.sqlite", gen / "vectors.faiss"
    if not db_path.exists() or not vec_path.exists():
        raise FileNotFoundError(db_path if not db_path.exists() else vec_path)
    _verify_checksums(gen, manifest)
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro&immutable=1", uri=True)
        try:
            documents = {}
            for row in con.execute(
                "SELECT source, title, date, date_origin, content_hash, text, metadata FROM documents"
            ):
                doc = _document_row(*row)
                documents[doc.source] = doc
            rows = [
                _chunk_row(*r) for r in con.execute("SELECT id, source, start, end, text_hash FROM chunks ORDER BY id")
            ]
        finally:
            con.close()
    except (sqlite3.Error, ValueError, TypeError) as exc:
        raise IndexCorruptError(f"{db_path} is damaged ({exc}); {REBUILD_HINT}") from exc
    try:
        faiss_index = _faiss().read_index(str(vec_path))
    except RuntimeError as exc:
        raise IndexCorruptError(f"{vec_path} is damaged ({str(exc).splitlines()[0]}); {REBUILD_HINT}") from exc
    _check_consistency(gen, manifest, faiss_index, documents, rows)
    return Snapshot(gen, manifest, faiss_index, documents, rows)


def _document_row(source, title, date, origin, chash, text, meta) -> Document:
    """A ``documents`` row as a :class:`Document`; a row of the wrong shape is a ``ValueError``.

    The checksums only say the files are the ones the manifest names: a crafted row with
    recomputed checksums (a NULL title, a number for a text) must still not reach the answerer.
    """
    if not all(isinstance(v, str) for v in (source, title, chash, text, meta)) or not source:
        raise ValueError(f"a documents row of the wrong type ({_short(source)})")
    if (date is not None and not isinstance(date, str)) or origin not in ("header", "text", "", None):
        raise ValueError(f"a documents row with a bad date ({_short(source)})")
    metadata = json.loads(meta)
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"the metadata of {_short(source)} is not a mapping of text")
    parsed = dt.date.fromisoformat(date) if date else None
    return Document(source, text, title, chash, parsed, origin, metadata)


def _chunk_row(chunk_id, source, start, end, text_hash) -> ChunkRow:
    """A ``chunks`` row as a :class:`ChunkRow`; a row of the wrong shape is a ``ValueError``."""
    if not all(type(v) is int for v in (chunk_id, start, end)) or not all(
        isinstance(v, str) for v in (source, text_hash)
    ):
        raise ValueError(f"chunk {_short(chunk_id)} has a field of the wrong type")
    return ChunkRow(chunk_id, source, start, end, text_hash)


def _short(value) -> str:
    return repr(value)[:60]


def _check_consistency(gen: Path, manifest: Manifest, faiss_index, documents, rows) -> None:
    problems = []
    if faiss_index.d != manifest.dim:
        problems.append(f"vectors have dimension {faiss_index.d}, manifest says {manifest.dim}")
    if faiss_index.ntotal != len(rows):
        problems.append(f"{faiss_index.ntotal} vectors for {len(rows)} chunks")
    if set(documents) != set(manifest.files):
        problems.append("documents and manifest list different files")
    if len({row.id for row in rows}) != len(rows):
        problems.append("two chunks share an id")
    for row in rows:
        doc = documents.get(row.source)
        if doc is None or not 0 <= row.start <= row.end <= len(doc.text):
            problems.append(f"chunk {row.id} points outside its document")
            break
        if hashlib.sha1(doc.text[row.start : row.end].encode("utf-8")).hexdigest() != row.text_hash:
            problems.append(f"chunk {row.id} does not hold the text it was embedded from")
            break
    if problems:
        raise IndexCorruptError(f"{gen}: {'; '.join(problems)}; {REBUILD_HINT}")


# ----------------------------------------------------------------------------- writing


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteLock:
    """An exclusive ``flock`` on ``index_dir/LOCK``; the kernel drops it if the holder dies."""

    def __init__(self, index_dir: Path, timeout: float | None = None) -> None:
        self.path = Path(index_dir) / "LOCK"
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> WriteLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if deadline is not None and time.monotonic() > deadline:
                    os.close(fd)
                    raise IndexLockedError(
                        f"{self.path.parent} is being updated by another process; try again when it finishes"
                    ) from None
                time.sleep(0.05)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _new_faiss(dim: int):
    faiss = _faiss()
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def ivf_lists(n: int) -> int:
    """Number of IVF lists for ``n`` vectors: about ``sqrt(n)``, so a probed list holds ~sqrt(n) vectors.

    >>> ivf_lists(10_000), ivf_lists(1_000_000)
    (100, 1000)
    """
    return max(16, round(math.sqrt(n)))


def calibrate_probes(
    index, vectors: np.ndarray, ids: np.ndarray, *, target: float = 0.97, samples: int = 100, seed: int = 0
) -> int:
    """The fewest IVF lists to scan for recall@10 >= ``target`` on a sample of the indexed vectors.

    Exact neighbours of ``samples`` stored vectors (used as queries) are found by brute
    force; ``nprobe`` doubles from 8 until the IVF search finds ``target`` of them, capped
    at a quarter of the lists. Each query's own vector is left out of both lists: it is
    always found (in the list it was filed in), which would flatter the recall that
    questions, never stored themselves, get. Real data set their own value, not a
    constant tuned once.
    """
    faiss = _faiss()
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(vectors), min(samples, len(vectors)), replace=False)
    queries, own = vectors[picked], ids[picked]
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)

    def others(found_ids) -> list[set[int]]:  # the 10 best of each row, the query's own id left out
        return [set([i for i in row.tolist() if i != me][:10]) for row, me in zip(found_ids, own)]

    exact_ids = others(ids[flat.search(queries, 11)[1]])
    ivf = faiss.downcast_index(index)
    nprobe, cap = min(8, ivf.nlist), max(8, ivf.nlist // 4)
    while True:
        ivf.nprobe = nprobe
        found = others(index.search(queries, 11)[1])
        recall = np.mean([len(exact & row) / max(1, len(exact)) for exact, row in zip(exact_ids, found)])
        if recall >= target or nprobe >= cap:
            return nprobe
        nprobe = min(cap, nprobe * 2)


def is_approximate(index) -> bool:
    """True for the IVF index used from :data:`FLAT_LIMIT` vectors on."""
    return isinstance(_faiss().downcast_index(index), _faiss().IndexIVF)


def build_faiss_index(vectors: np.ndarray, ids: np.ndarray, *, flat_limit: int = FLAT_LIMIT, seed: int = 1234):
    """An index of ``vectors`` under ``ids``: exact below ``flat_limit`` vectors, else IVF.

    The IVF index is an ``IndexIVFFlat`` (inner product) with a hash-table direct map,
    so, like the flat ``IndexIDMap2``, it supports ``remove_ids`` and ``reconstruct(id)``.
    Its k-means is trained on at most 64 vectors per list (enough for stable centroids;
    training on all of a million vectors would take minutes).
    """
    faiss = _faiss()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    dim = vectors.shape[1]
    if len(vectors) < flat_limit:
        index = _new_faiss(dim)
        if len(vectors):
            index.add_with_ids(vectors, ids)
        return index
    nlist = ivf_lists(len(vectors))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()
    sample = vectors
    if len(vectors) > 64 * nlist:
        pick = np.random.default_rng(seed).choice(len(vectors), 64 * nlist, replace=False)
        sample = vectors[np.sort(pick)]
    index.cp.max_points_per_centroid = 64
    index.cp.seed = seed
    index.train(sample)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.add_with_ids(vectors, ids)
    index.nprobe = calibrate_probes(index, vectors, ids)
    return index


def _remove_ids(index, ids: np.ndarray) -> None:
    faiss = _faiss()
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if is_approximate(index):
        # A hash-table direct map removes only by an explicit id array.
        index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))
    else:
        index.remove_ids(ids)


def _needs_rebuild(index, n: int, flat_limit: int) -> bool:
    """Whether the index kind no longer suits ``n`` vectors (with slack, so sizes near a limit do not flap)."""
    if not is_approximate(index):
        return n >= flat_limit
    if n < flat_limit // 2:
        return True
    nlist = _faiss().downcast_index(index).nlist
    return not nlist / 2 <= ivf_lists(n) <= nlist * 2


class IndexWriter:
    """Stages changes to an index and commits them as a new generation.

    Use inside a :class:`WriteLock`. Start from the live snapshot (or empty),
    :meth:`remove` and :meth:`add` documents, then :meth:`commit`.
    """

    def __init__(
        self, index_dir: Path, base: Snapshot | None, manifest: Manifest, *, flat_limit: int = FLAT_LIMIT
    ) -> None:
        self.index_dir = Path(index_dir)
        self.flat_limit = flat_limit
        self.manifest = manifest
        self.documents: dict[str, Document] = dict(base.documents) if base else {}
        self.rows: dict[int, ChunkRow] = dict(base.rows) if base else {}
        self.by_source: dict[str, list[int]] = {}
        for row in self.rows.values():
            self.by_source.setdefault(row.source, []).append(row.id)
        if base is not None:
            # An independent copy: the snapshot stays valid for readers.
            self.faiss_index = _faiss().clone_index(base.faiss_index)
        else:
            self.faiss_index = _new_faiss(manifest.dim)
        self.next_id = max(manifest.next_id, (max(self.rows) + 1) if self.rows else 0)
        self.changed = False

    def remove(self, source: str) -> int:
        """Drop a document and its chunks; returns how many chunks went."""
        ids = self.by_source.pop(source, [])
        if ids:
            _remove_ids(self.faiss_index, np.asarray(ids, dtype=np.int64))
            for i in ids:
                del self.rows[i]
        if self.documents.pop(source, None) is not None or ids:
            self.changed = True
        return len(ids)

    def add(self, doc: Document, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Add a document (replacing any previous version) with one vector per chunk."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{doc.source}: {len(chunks)} chunks but {len(vectors)} vectors")
        self.remove(doc.source)
        ids = np.arange(self.next_id, self.next_id + len(chunks), dtype=np.int64)
        self.next_id += len(chunks)
        if len(chunks):
            self.faiss_index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        for i, chunk in zip(ids, chunks):
            self.rows[int(i)] = ChunkRow(int(i), doc.source, chunk.start, chunk.end, chunk.text_hash)
        self.by_source[doc.source] = [int(i) for i in ids]
        self.documents[doc.source] = doc
        self.changed = True

    def commit(self, roots: tuple[str, ...]) -> Manifest:
        """Write the staged state as the next generation and make it live."""
        manifest = Manifest(
            model=self.manifest.model,
            dim=self.manifest.dim,
            backend=self.manifest.backend,
            chunking=self.manifest.chunking,
            roots=tuple(roots),
            files={
                s: {"sha256": d.content_hash, "chunks": len(self.by_source.get(s, ()))}
                for s, d in sorted(self.documents.items())
            },
            # Above every folder present, so a rebuild (which starts from an empty manifest) never
            # reuses the live generation's name: readers notice the switch by the name changing.
            generation=max(self.manifest.generation, _highest_generation(self.index_dir)) + 1,
            next_id=self.next_id,
            format=FORMAT_VERSION,
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        if _needs_rebuild(self.faiss_index, len(self.rows), self.flat_limit):
            ids = np.fromiter(sorted(self.rows), dtype=np.int64, count=len(self.rows))
            vectors = np.vstack([self.faiss_index.reconstruct(int(i)) for i in ids]) if len(ids) else None
            if vectors is None:
                self.faiss_index = _new_faiss(manifest.dim)
            else:
                self.faiss_index = build_faiss_index(vectors, ids, flat_limit=self.flat_limit)
        name = f"gen-{manifest.generation:06d}"
        tmp = self.index_dir / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self._write_sqlite(tmp / "chunks.sqlite")
        _faiss().write_index(self.faiss_index, str(tmp / "vectors.faiss"))
        manifest = replace(manifest, checksums={f: file_sha256(tmp / f) for f in DATA_FILES})
        (tmp / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        final = self.index_dir / name  # numbered above every folder present, so it never exists yet
        os.rename(tmp, final)
        _fsync_dir(self.index_dir)  # the new folder is on disk before CURRENT can name it
        pointer = self.index_dir / "CURRENT.tmp"
        with open(pointer, "w", encoding="utf-8") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(pointer, self.index_dir / "CURRENT")
        _fsync_dir(self.index_dir)
        self.manifest = manifest
        collect_garbage(self.index_dir)
        return manifest

    def _write_sqlite(self, path: Path) -> None:
        con = sqlite3.connect(path)
        try:
            con.executescript(
                """
                PRAGMA journal_mode = OFF;
                CREATE TABLE documents (source TEXT PRIMARY KEY, title TEXT, date TEXT, date_origin TEXT,
                                        content_hash TEXT, text TEXT, metadata TEXT);
                CREATE TABLE chunks (id INTEGER PRIMARY KEY, source TEXT REFERENCES documents(source),
                                     start INTEGER, end INTEGER, text_hash TEXT);
                CREATE INDEX chunks_source ON chunks(source);
                """
            )
            con.executemany(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (d.source, d.title, d.date.isoformat() if d.date else None, d.date_origin, d.content_hash,
                     d.text, json.dumps(d.metadata, ensure_ascii=False))
                    for d in self.documents.values()
                ),
            )  # fmt: skip
            con.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?)",
                ((r.id, r.source, r.start, r.end, r.text_hash) for r in sorted(self.rows.values(), key=lambda r: r.id)),
            )
            con.commit()
        finally:
            con.close()


def _highest_generation(index_dir: Path) -> int:
    numbers = [int(p.name[4:]) for p in Path(index_dir).glob("gen-*") if p.name[4:].isdigit()]
    return max(numbers, default=0)


def collect_garbage(index_dir: Path, keep: int = 2) -> None:
    """Remove generations older than the last ``keep`` and temp folders of dead writers.

    Call only while holding the write lock. The previous generation is kept
    so that a reader that just read ``CURRENT`` can still open it.
    """
    index_dir = Path(index_dir)
    live = current_generation(index_dir)
    if live is None:
        return
    live_number = int(live.removeprefix("gen-"))
    for gen in index_dir.glob("gen-*"):
        number = int(gen.name.removeprefix("gen-")) if gen.name[4:].isdigit() else -1
        # Newer than live: written by a writer that died before switching CURRENT.
        if number > live_number or number <= live_number - keep:
            shutil.rmtree(gen, ignore_errors=True)
    for tmp in index_dir.glob(".tmp-gen-*"):
        shutil.rmtree(tmp, ignore_errors=True)

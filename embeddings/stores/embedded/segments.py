"""Immutable segments of the embedded store: written once, shared by every version that lists them.

A segment folder holds the chunks of some documents::

    chunks.sqlite   documents (full text, title, date, metadata) and chunks (offsets, text hash)
    vectors.faiss   the chunks' normalised vectors keyed by chunk id (see embeddings.stores.embedded.faiss_index)
    ids.npy         the chunk ids in ascending order (row r of the postings is ids[r])
    terms.txt, indptr.npy, rows.npy, tf.npy, lengths.npy
                    BM25 postings (see embeddings.stores.embedded.lexical), memory-mapped by readers
    words.txt       the accent-folded words of its documents, names.json their names

Readers check each file against the digest the manifest recorded right before they
first parse it (a writer that only needs the document list never reads the vectors),
memory-map the vectors and postings, and read document text and chunk rows from SQLite
on demand (a small cache per segment), never the whole corpus. A row of the wrong
shape is reported as damage.

A reader that answers questions does not wait to read a large file whole (at a million
chunks, 2.4 GB: three seconds from disk before the first answer). As Lucene checks a
file's length and footer at open and its whole checksum on merge, it checks the size and
the digest of the part it parses (the FAISS header, centroids, id map and list sizes; the
first MiB of SQLite and of the postings) before it parses it, and reads the whole file on
the thread of :mod:`embeddings.stores.idle`, which gets the CPU and the disk only when they
are idle (``SCHED_IDLE`` and the idle I/O class, on Linux). Damage found there fails every
later read of the segment with the rebuild hint; until then the payload is read unverified,
which can only misplace a vector or a posting (SQLite checks its own pages). Writers, ``rag
check`` and segments written before heads were recorded read every file whole before parsing it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from embeddings.language.analysis import fold, terms, words
from embeddings.language.entities import document_names
from embeddings.stores.api import ChunkRow
from embeddings.stores.embedded.faiss_index import FLAT_LIMIT, _faiss, build_faiss_index
from embeddings.stores.embedded.lexical import FILES as POSTING_FILES
from embeddings.stores.embedded.lexical import Postings
from embeddings.stores.idle import run_when_idle
from embeddings.stores.manifest import (
    REBUILD_HINT,
    Head,
    IndexCorruptError,
    SegmentEntry,
    file_digest,
    head_digest,
    stream_digest,
)
from embeddings.types import Document

FILES = ("chunks.sqlite", "vectors.faiss", "ids.npy", *POSTING_FILES, "words.txt", "names.json")
DOCUMENT_CACHE = 256  # documents kept per segment (a question reads a few)
LARGE_FILE = 32 << 20  # files above this are checked by their head at open, whole in the background
HEAD_BYTES = 1 << 20  # the head of a large file whose parsed part cannot be told from its payload
_ROWS_SQL = "SELECT id, source, start, end, text_hash FROM chunks WHERE id IN ({})"


def write_segment(
    folder: Path,
    documents: Sequence[Document],
    rows: Sequence[ChunkRow],
    vectors: np.ndarray,
    *,
    flat_limit: int = FLAT_LIMIT,
) -> SegmentEntry:
    """Write a segment of ``documents`` with their chunk ``rows`` (ascending ids) and one vector per row."""
    if len(rows) != len(vectors):
        raise ValueError(f"{len(rows)} chunks but {len(vectors)} vectors")
    ids = np.asarray([r.id for r in rows], dtype=np.int64)
    if len(ids) > 1 and not (np.diff(ids) > 0).all():
        raise ValueError("chunk ids of a segment must ascend")
    folder.mkdir(parents=True)
    texts = {d.source: d.text for d in documents}
    _write_sqlite(folder / "chunks.sqlite", documents, rows)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(rows), -1)
    index = build_faiss_index(vectors, ids, flat_limit=flat_limit)
    _faiss().write_index(index, str(folder / "vectors.faiss"))
    np.save(folder / "ids.npy", ids, allow_pickle=False)
    Postings.build(terms(texts[r.source][r.start : r.end]) for r in rows).write(folder)
    vocabulary = sorted({fold(w) for d in documents for w in words(d.text)} - {""})
    (folder / "words.txt").write_text("\n".join(vocabulary), encoding="utf-8")
    names = sorted({n for d in documents for n in document_names(d)})  # the lookup needs each name once
    (folder / "names.json").write_text(json.dumps([names], ensure_ascii=False), encoding="utf-8")
    checksums = dict(zip(FILES, _hash_all([folder / f for f in FILES])))
    return SegmentEntry(folder.name, len(rows), checksums, heads=_heads(folder, payload_bytes(index)))


def payload_bytes(index) -> int:
    """Bytes at the end of a written FAISS ``index`` that are vector codes and ids, never parsed at open.

    An ``IndexIVFFlat`` file ends with its lists, each its codes then its ids (8 bytes each);
    everything before (header, centroids, id map, list sizes) is parsed. Any other index: 0.
    A test checks this layout against the installed FAISS.
    """
    faiss = _faiss()
    index = faiss.downcast_index(index)
    if not isinstance(index, faiss.IndexIVFFlat):
        return 0
    return int(index.ntotal) * (int(index.code_size) + 8)


def _heads(folder: Path, faiss_payload: int) -> dict[str, Head]:
    """The :class:`Head` of each file above :data:`LARGE_FILE`."""
    heads = {}
    for f in FILES:
        size = (folder / f).stat().st_size
        if size > LARGE_FILE:
            length = size - faiss_payload if f == "vectors.faiss" else min(size, HEAD_BYTES)
            heads[f] = Head(size, length, head_digest(folder / f, length))
    return heads


def _hash_all(paths: Sequence[Path]) -> list[str]:
    """The digest of each file, two at a time (the hash releases the GIL on large blocks)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(file_digest, paths))


def _write_sqlite(path: Path, documents: Sequence[Document], rows: Sequence[ChunkRow]) -> None:
    con = sqlite3.connect(path)
    try:
        con.executescript(
            """
            PRAGMA journal_mode = OFF;
            CREATE TABLE documents (source TEXT PRIMARY KEY, title TEXT, date TEXT, date_origin TEXT,
                                    content_hash TEXT, text TEXT, metadata TEXT);
            CREATE TABLE chunks (id INTEGER PRIMARY KEY, source TEXT, start INTEGER, end INTEGER, text_hash TEXT);
            """
        )
        con.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (d.source, d.title, d.date.isoformat() if d.date else None, d.date_origin, d.content_hash,
                 d.text, json.dumps(d.metadata, ensure_ascii=False))
                for d in documents
            ),
        )  # fmt: skip
        con.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?)", ((r.id, r.source, r.start, r.end, r.text_hash) for r in rows)
        )
        con.executescript(
            "CREATE INDEX chunks_source ON chunks(source, start); CREATE INDEX chunks_text ON chunks(text_hash);"
        )
        con.commit()
    finally:
        con.close()


class Segment:
    """A segment opened for reading; immutable, so it is shared by views and threads.

    Raises:
        IndexCorruptError: a file is missing, fails its checksum, or the files disagree.
    """

    def __init__(self, folder: Path, entry: SegmentEntry, dim: int) -> None:
        self.folder = folder
        self.entry = entry
        self.name = entry.name
        self.dim = dim
        if set(entry.checksums) != set(FILES):
            raise IndexCorruptError(f"{folder}: the manifest lists other files than a segment has; {REBUILD_HINT}")
        for f in FILES:
            if not (folder / f).is_file():
                raise FileNotFoundError(folder / f)
        self._db_path = folder / "chunks.sqlite"
        self._lock = threading.Lock()  # the SQLite connection and the document cache
        self._load_lock = threading.Lock()  # loading a part of the segment on first use
        self._loaded: dict[str | tuple[str, str], Any] = {}  # checked files and parts loaded
        self._documents: OrderedDict[str, Document] = OrderedDict()
        self._damage: str | None = None  # what the background check found
        self._whole = threading.Event()  # set while no background check is pending
        self._whole.set()

    @property
    def checked_whole(self) -> bool:
        """Every file this segment parsed was read whole and matched (no background check pending)."""
        return self._whole.is_set() and self._damage is None and not any(k[0] == "head" for k in list(self._loaded))

    def wait_checked(self, timeout: float | None = None) -> None:
        """Wait for the background check of the large files; raise IndexCorruptError for what it found."""
        if not self._whole.wait(timeout):
            raise TimeoutError(f"{self.folder}: the background check did not finish in {timeout} s")
        self._healthy()

    def _healthy(self) -> None:
        if self._damage is not None:
            raise IndexCorruptError(self._damage)

    def _verified(self, *names: str) -> None:
        """Check files against the manifest before they are parsed (each once per process)."""
        todo = [n for n in names if ("ok", n) not in self._loaded and ("head", n) not in self._loaded]
        paths = [self.folder / n for n in todo]
        for path, digest in zip(paths, _hash_all(paths)):
            if digest != self.entry.checksums[path.name]:
                raise IndexCorruptError(f"{path} is damaged (its checksum does not match the manifest); {REBUILD_HINT}")
            self._loaded["ok", path.name] = True

    def _part(self, key: str, load):
        self._healthy()
        value = self._loaded.get(key)
        if value is None:
            with self._load_lock:
                value = self._loaded.get(key)
                if value is None:
                    value = self._loaded[key] = load()
        return value

    def load(self, *, background: bool = False) -> Segment:
        """Verify and load every part now (a reader about to answer needs them all).

        With ``background``, large files with a recorded head are checked by size and head now
        and read whole on the background thread (see the module docstring).
        """
        pending = self._check_heads() if background else []
        try:
            self._verified(*FILES)
            _ = self.index, self.postings, self.words(), self.names(), self._con
        except BaseException:
            for _name, fh in pending:
                fh.close()
            raise
        if pending:
            self._whole.clear()
            run_when_idle(lambda: self._check_whole(pending))
        return self

    def _check_heads(self) -> list[tuple[str, BinaryIO]]:
        """Check the size and head of each large file not checked yet; the files, open for the background check.

        Kept open, so a writer that collects this segment's folder meanwhile does not take them away.
        """
        opened: list[tuple[str, BinaryIO]] = []
        try:
            for name, head in self.entry.heads.items():
                if ("ok", name) in self._loaded or ("head", name) in self._loaded:
                    continue
                fh: BinaryIO = open(self.folder / name, "rb")  # noqa: SIM115 - closed by the background check
                opened.append((name, fh))
                size = os.fstat(fh.fileno()).st_size
                if size != head.size or stream_digest(fh, head.length) != head.digest:
                    raise IndexCorruptError(
                        f"{self.folder / name} is damaged ({size} bytes, the manifest says {head.size}, or its "
                        f"first {head.length} bytes do not match); {REBUILD_HINT}"
                    )
        except BaseException:
            for _name, fh in opened:
                fh.close()
            raise
        for name, _fh in opened:
            self._loaded["head", name] = True
        return opened

    def _check_whole(self, files: list[tuple[str, BinaryIO]]) -> None:
        """Read ``files`` whole against the manifest (on the background thread); damage fails later reads."""
        try:
            for name, fh in files:
                fh.seek(0)
                if stream_digest(fh) != self.entry.checksums[name]:
                    self._damage = (
                        f"{self.folder / name} is damaged (its checksum does not match the manifest); {REBUILD_HINT}"
                    )
                    return
                self._loaded["ok", name] = True
                self._loaded.pop(("head", name), None)
        except OSError as exc:
            self._damage = f"{self.folder}: reading it failed ({exc}); {REBUILD_HINT}"
        finally:
            for _name, fh in files:
                fh.close()
            self._whole.set()

    @property
    def ids(self) -> np.ndarray:
        def load():
            self._verified("ids.npy")
            try:
                ids = np.load(self.folder / "ids.npy", allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise IndexCorruptError(f"{self.folder / 'ids.npy'} is damaged ({exc}); {REBUILD_HINT}") from exc
            if ids.dtype != np.int64 or len(ids) != self.entry.count or (len(ids) > 1 and not (np.diff(ids) > 0).all()):
                raise IndexCorruptError(
                    f"{self.folder}: chunk ids are not {self.entry.count} ascending integers; {REBUILD_HINT}"
                )
            return ids

        return self._part("ids", load)

    @property
    def index(self):
        def load():
            self._verified("vectors.faiss")
            path = str(self.folder / "vectors.faiss")
            faiss = _faiss()
            try:
                try:  # IVF lists memory-mapped: opening a million vectors reads nothing yet
                    index = faiss.read_index(path, faiss.IO_FLAG_MMAP)
                except RuntimeError:
                    index = faiss.read_index(path)
            except RuntimeError as exc:
                raise IndexCorruptError(f"{path} is damaged ({str(exc).splitlines()[0]}); {REBUILD_HINT}") from exc
            if index.d != self.dim or index.ntotal != self.entry.count:
                raise IndexCorruptError(
                    f"{path}: {index.ntotal} vectors of dimension {index.d}, the manifest says "
                    f"{self.entry.count} of {self.dim}; {REBUILD_HINT}"
                )
            return index

        return self._part("index", load)

    @property
    def postings(self) -> Postings:
        def load():
            self._verified(*POSTING_FILES)
            try:
                postings = Postings.read(self.folder)
            except (ValueError, OSError) as exc:
                raise IndexCorruptError(f"{self.folder}: damaged BM25 postings ({exc}); {REBUILD_HINT}") from exc
            if postings.n != self.entry.count:
                raise IndexCorruptError(
                    f"{self.folder}: {postings.n} BM25 rows for {self.entry.count} chunks; {REBUILD_HINT}"
                )
            return postings

        return self._part("postings", load)

    @property
    def _con(self) -> sqlite3.Connection:
        def load():
            self._verified("chunks.sqlite")
            return sqlite3.connect(f"file:{self._db_path}?mode=ro&immutable=1", uri=True, check_same_thread=False)

        return self._part("con", load)

    def __len__(self) -> int:
        return self.entry.count

    def holds(self, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` are in this segment (deleted or not)."""
        pos = np.searchsorted(self.ids, ids)
        pos[pos >= len(self.ids)] = 0
        return self.ids[pos] == ids if len(self.ids) else np.zeros(len(ids), bool)

    def _query(self, sql: str, args: Sequence = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._con.execute(sql, tuple(args)).fetchall()
        except sqlite3.Error as exc:
            raise IndexCorruptError(f"{self._db_path} is damaged ({exc}); {REBUILD_HINT}") from exc

    def rows(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        out: dict[int, ChunkRow] = {}
        ids = [int(i) for i in ids]
        for at in range(0, len(ids), 500):
            batch = ids[at : at + 500]
            for r in self._query(_ROWS_SQL.format(",".join("?" * len(batch))), batch):
                row = _chunk_row(*r, where=self._db_path)
                out[row.id] = row
        return out

    def ids_of(self, source: str) -> list[int]:
        return [int(r[0]) for r in self._query("SELECT id FROM chunks WHERE source = ? ORDER BY start, id", (source,))]

    def ids_with_text(self, text_hashes: Sequence[str]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for at in range(0, len(text_hashes), 500):
            batch = list(text_hashes[at : at + 500])
            sql = f"SELECT text_hash, id FROM chunks WHERE text_hash IN ({','.join('?' * len(batch))}) ORDER BY id"
            for h, i in self._query(sql, batch):
                out.setdefault(h, []).append(int(i))
        return out

    def document(self, source: str) -> Document | None:
        self._healthy()
        with self._lock:
            doc = self._documents.get(source)
            if doc is not None:
                self._documents.move_to_end(source)
                return doc
        found = self._query(
            "SELECT source, title, date, date_origin, content_hash, text, metadata FROM documents WHERE source = ?",
            (source,),
        )
        if not found:
            return None
        doc = _document_row(*found[0], where=self._db_path)
        with self._lock:
            self._documents[source] = doc
            while len(self._documents) > DOCUMENT_CACHE:
                self._documents.popitem(last=False)
        return doc

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        try:
            return np.asarray(self.index.reconstruct_batch(ids), dtype=np.float32).reshape(len(ids), -1)
        except RuntimeError as exc:  # an id the segment does not hold
            raise KeyError(f"{self.folder}: no vector for some of the ids ({str(exc).splitlines()[0]})") from exc

    def words(self) -> tuple[str, ...]:
        return self._part("words", self._read_words)

    def names(self) -> tuple[tuple[str, ...], ...]:
        return self._part("names", self._read_names)

    def _read_words(self) -> tuple[str, ...]:
        self._verified("words.txt")
        text = (self.folder / "words.txt").read_text(encoding="utf-8")
        return tuple(text.split("\n")) if text else ()

    def _read_names(self) -> tuple[tuple[str, ...], ...]:
        self._verified("names.json")
        try:
            data = json.loads((self.folder / "names.json").read_text(encoding="utf-8"))
            return tuple(tuple(str(n) for n in group) for group in data)
        except (ValueError, TypeError) as exc:
            raise IndexCorruptError(f"{self.folder / 'names.json'} is damaged ({exc}); {REBUILD_HINT}") from exc

    def all_rows(self) -> Iterable[ChunkRow]:
        for r in self._query("SELECT id, source, start, end, text_hash FROM chunks ORDER BY id"):
            yield _chunk_row(*r, where=self._db_path)


def _document_row(source, title, date, origin, chash, text, meta, *, where: Path) -> Document:
    """A ``documents`` row as a :class:`Document`; a row of the wrong shape is damage.

    The checksums only say the files are the ones the manifest names: a crafted row with
    recomputed checksums (a NULL title, a number for a text) must still not reach the answerer.
    """
    try:
        if not all(isinstance(v, str) for v in (source, title, chash, text, meta)) or not source:
            raise ValueError(f"a documents row of the wrong type ({_short(source)})")
        if (date is not None and not isinstance(date, str)) or origin not in ("header", "text", "", None):
            raise ValueError(f"a documents row with a bad date ({_short(source)})")
        metadata = json.loads(meta)
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise ValueError(f"the metadata of {_short(source)} is not a mapping of text")
        parsed = dt.date.fromisoformat(date) if date else None
    except (ValueError, TypeError) as exc:
        raise IndexCorruptError(f"{where} is damaged ({exc}); {REBUILD_HINT}") from exc
    return Document(source, text, title, chash, parsed, origin or "", metadata)


def _chunk_row(chunk_id, source, start, end, text_hash, *, where: Path) -> ChunkRow:
    if not all(type(v) is int for v in (chunk_id, start, end)) or not all(
        isinstance(v, str) for v in (source, text_hash)
    ):
        raise IndexCorruptError(
            f"{where} is damaged (chunk {_short(chunk_id)} has a field of the wrong type); {REBUILD_HINT}"
        )
    return ChunkRow(chunk_id, source, start, end, text_hash)


def check_chunk(row: ChunkRow, doc: Document | None, where: Path) -> str:
    """The text of ``row`` in ``doc``, after checking that it is the text that was embedded."""
    if doc is None or not 0 <= row.start <= row.end <= len(doc.text):
        raise IndexCorruptError(f"{where}: chunk {row.id} points outside its document; {REBUILD_HINT}")
    text = doc.text[row.start : row.end]
    if hashlib.sha1(text.encode("utf-8")).hexdigest() != row.text_hash:
        raise IndexCorruptError(f"{where}: chunk {row.id} does not hold the text it was embedded from; {REBUILD_HINT}")
    return text


def _short(value) -> str:
    return repr(value)[:60]

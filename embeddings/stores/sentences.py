"""Sentence vectors written at indexing time, so that answering a question embeds only the question.

The answerer compares the question with each candidate sentence of the retrieved passages. Those
sentences used to be embedded when a question first met them, so a process's first questions on a
topic were its slow ones. The indexer now embeds every sentence of a new or changed document once,
and, as queries, its capitalised words (the answerer's name checks compare a question's name with
them across languages: Peking / Beijing). It keeps the vectors in ``sentences.sqlite`` in the index
folder, keyed by a digest of the text (a sentence repeated in many files is stored once, and an
edited paragraph embeds only its new sentences).

The file is derived data: a reader that finds no vector for a sentence (an index written before
this file existed, a sentence split another way, a store without a folder such as Milvus) embeds
it itself, and a damaged or foreign file is read as empty, never as an error. Vectors are stored
as float16 (half the size of float32; the cosines move by about 1e-3) and :func:`rounded` gives
vectors embedded at question time the same precision, so an answer does not depend on which path
a vector took. Vectors of documents removed later stay until the file is rebuilt (``rag index
--rebuild``); they are never read for a document that is not in the index.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

FILE = "sentences.sqlite"
DTYPE = np.float16
_LOOKUP_BATCH = 500  # digests per SELECT (SQLite allows 32,766 host parameters; small batches stay fast)


QUERY = "\x00query\x00"  # the key prefix of a text embedded as a query (a name the answerer compares across languages)


def as_query(text: str) -> str:
    """The key under which ``text``'s query embedding is stored (the model embeds a query differently)."""
    return QUERY + text


def digest(text: str) -> bytes:
    """The key of a sentence's vector: 16 bytes of BLAKE2b over its UTF-8 text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def rounded(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` at the stored precision (float16), as float32: the same numbers a stored vector reads back as."""
    return np.asarray(vectors, dtype=np.float32).astype(DTYPE).astype(np.float32)


def model_key(model: str, backend: str, dim: int) -> str:
    """Which model's vectors a file holds; vectors of another model are not comparable."""
    return f"{model}|{backend}|{dim}"


# Rows in the order they are written (a rowid table; the digest has its own index), which is
# document by document: a question's candidate sentences come from a few documents, so they lie
# on a few runs of pages instead of one page each, as when rows were ordered by digest (WITHOUT
# ROWID). A file written that way still reads the same, only slower from a cold page cache.
_TABLES = (
    "CREATE TABLE IF NOT EXISTS vectors (digest BLOB PRIMARY KEY, vector BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS documents (source TEXT PRIMARY KEY, sha256 TEXT NOT NULL);"
)


class SentenceVectors:
    """The sentence vectors of one index folder, for one model (thread-safe; one connection per thread).

    Args:
        folder: the index folder.
        key: :func:`model_key` of the index's model; a file written for another model reads as empty,
            and a writer starts it anew.
        writable: create the file if it is missing, and allow :meth:`put`.
    """

    def __init__(self, folder: Path, key: str, *, writable: bool = False) -> None:
        self.path = Path(folder).absolute() / FILE  # absolute: a read-only connection opens it by file URI
        self.key = key
        self.writable = writable
        self._local = threading.local()
        self._usable = self._prepare()

    def _prepare(self) -> bool:
        if not self.writable and not self.path.is_file():
            return False
        try:
            con = self._con()
            if self.writable:
                con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT NOT NULL)")
            row = con.execute("SELECT key FROM meta").fetchone()
            if self.writable and (row is None or row[0] != self.key):
                con.executescript(
                    "DROP TABLE IF EXISTS vectors; DROP TABLE IF EXISTS documents; DELETE FROM meta;" + _TABLES
                )
                con.execute("INSERT INTO meta VALUES (?)", (self.key,))
                con.commit()
                return True
            if self.writable:  # a file of an earlier layout (no documents table) is completed, not refused
                con.executescript(_TABLES)
            return row is not None and row[0] == self.key
        except sqlite3.DatabaseError:  # damaged or not a database: derived data, so read as empty
            if self.writable:
                raise
            return False

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            if self.writable:  # a rollback journal, not WAL: a reader then never writes a file beside it
                con = sqlite3.connect(self.path, timeout=30)
            else:
                con = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=30)
            self._local.con = con
        return con

    def _ready(self) -> bool:
        """Whether the file can be read; a reader opened before the indexer wrote it (the indexer embeds
        sentences after its commit, when readers may already have opened the new version) looks again."""
        if not self._usable and not self.writable:
            self._usable = self._prepare()
        return self._usable

    def get(self, texts: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        """The stored vectors of those ``texts`` that have one (float32 rows of ``dim``)."""
        if not texts or not self._ready():
            return {}
        by_digest = {digest(t): t for t in texts}
        out: dict[str, np.ndarray] = {}
        # The model is checked in the same statement: a writer may start the file anew for another model.
        sql = "SELECT digest, vector FROM vectors JOIN meta ON meta.key = ? WHERE digest IN ({})"
        try:
            for key, blob in self._select(sql, list(by_digest), (self.key,)):
                vector = np.frombuffer(blob, dtype=DTYPE)
                if vector.shape == (dim,):
                    out[by_digest[key]] = vector.astype(np.float32)
        except sqlite3.DatabaseError:
            return out  # a reader never fails on derived data; what is missing is embedded instead
        return out

    def missing(self, texts: Iterable[str]) -> list[str]:
        """The distinct ``texts`` with no stored vector, in first-seen order."""
        by_digest = {digest(t): t for t in dict.fromkeys(texts)}
        if not self._usable:
            return list(by_digest.values())
        have = {row[0] for row in self._select("SELECT digest FROM vectors WHERE digest IN ({})", list(by_digest))}
        return [t for key, t in by_digest.items() if key not in have]

    def _select(self, sql: str, digests: list[bytes], before: tuple = ()) -> Iterable[tuple]:
        """The rows of ``sql`` (its ``{}`` the digests' placeholders) for ``digests``, a batch at a time."""
        con = self._con()
        for i in range(0, len(digests), _LOOKUP_BATCH):
            part = digests[i : i + _LOOKUP_BATCH]
            yield from con.execute(sql.format(",".join("?" * len(part))), [*before, *part])

    def done(self) -> dict[str, str]:
        """The files whose every sentence and word is stored: source -> the SHA-256 of the version done."""
        if not self._usable:
            return {}
        return dict(self._con().execute("SELECT source, sha256 FROM documents").fetchall())

    def mark_done(self, files: Iterable[tuple[str, str]], *, forget: Iterable[str] = ()) -> None:
        """Record ``(source, sha256)`` pairs as done (after their vectors are stored), and forget other sources."""
        con = self._con()
        con.executemany("INSERT OR REPLACE INTO documents VALUES (?, ?)", files)
        con.executemany("DELETE FROM documents WHERE source = ?", ((s,) for s in forget))
        con.commit()

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text (committed at once: a later crash loses nothing stored)."""
        if not self.writable:
            raise PermissionError(f"{self.path} is open read-only")
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} sentences but {len(vectors)} vectors")
        half = np.asarray(vectors, dtype=np.float32).astype(DTYPE)
        con = self._con()
        con.executemany(
            "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
            ((digest(t), half[i].tobytes()) for i, t in enumerate(texts)),
        )
        con.commit()

    def __len__(self) -> int:
        if not self._usable:
            return 0
        try:
            return int(self._con().execute("SELECT count(*) FROM vectors").fetchone()[0])
        except sqlite3.DatabaseError:
            return 0


def folder_of(store: object) -> Path | None:
    """The local folder of a store that has one (the embedded store), else None (Milvus keeps no sentence vectors)."""
    folder = getattr(store, "index_dir", None)
    return Path(folder) if isinstance(folder, (str, Path)) else None

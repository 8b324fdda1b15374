"""Milvus collections of one index: the connection, their layout, and the rows' plumbing.

:mod:`embeddings.stores.milvus.store` adds the store protocol (versions, locking, clean-up) on top;
:mod:`embeddings.stores.milvus.view` reads one version and :mod:`embeddings.stores.milvus.writer`
writes the next. Both use only this module, so none of the three imports another in a circle.

Collections (``P`` is the prefix, ``rag`` unless the spec ends in ``#NAME``; ``F`` a *family*,
the generation a full rebuild started in)::

    P_pointer        one row per committed version: generation (key), family, manifest JSON
    P_fF_chunks      id, source key, start, end, text_hash, born, the vector (COSINE),
                     terms (" ".join(terms(text)), standard tokenizer) -> BM25 sparse field
    P_fF_docs        a document as JSON cut in pieces (VARCHAR holds 64 KiB), and its words
                     and names (for :meth:`MilvusView.parts`), with born, sha256, chunk count
    P_fF_df          document frequency changes per generation and term (BM25 IDF)
    P_fF_retired     ids of rows a generation removed, until the next commit deletes them

Versions. A row is visible to the view of generation ``g`` when ``born <= g`` and its id is
not retired at ``<= g``. A writer inserts new rows with ``born = g + 1`` (invisible to every
existing view) and records the rows it removes in ``retired`` with ``g + 1`` (still visible to
views of ``g``); :meth:`MilvusWriter.commit` then inserts the pointer row of ``g + 1`` (one
insert: readers switch in one step) and deletes the rows retired by the *previous* commit.
A view therefore stays consistent while one later version is written and committed; a view
two commits old can lose rows (as the embedded store keeps two generations). A rebuild writes
a new family of collections; the old family is dropped by the commit after next. Milvus Lite
has no aliases, so the pointer collection is the switch on every deployment.

What differs from the embedded store: BM25 scores are Milvus's (its collection statistics
include rows staged by a running writer and rows retired but not yet deleted), so lexical
rankings agree with the project's own BM25 on most but not all of the top ten; IDF (for
:meth:`MilvusView.idf`) is exact, summed from ``df``. One writer at a time is enforced with a
file lock next to a Lite file; against a server, run one indexer at a time (the lock is per
machine). A source name is never put into a filter expression: filters use its SHA-1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.language.analysis import terms
from embeddings.stores.api import ChunkRow, IndexPart
from embeddings.stores.manifest import (
    IndexCorruptError,
    StoreError,
)
from embeddings.types import Document

#: Milvus caps a search's ``limit`` (and a query's) at this many rows.
MAX_LIMIT = 16_384
#: Characters per stored piece of a document: 4 bytes each at most, inside VARCHAR's 65,535 bytes.
PIECE_CHARS = 16_000
#: The chunk fields a row is made of, and how many rows a store keeps in memory.
ROW_FIELDS = ("skey", "start", "end", "text_hash")
ROW_CACHE = 500_000
#: Document pieces per query call (Milvus also caps a result's bytes).
BLOB_ROWS = 256
#: Rows per insert call (a gRPC message stays far below its 64 MiB limit at 1,024 dimensions).
INSERT_BATCH = 1_000
INSERT_BYTES = 16 * 1024**2
DUMMY_VECTOR = [0.0, 1.0]  # a vector field is required in every collection; the small ones carry this
ID_BATCH = 1_000  # ids per `in [...]` filter or get()
REBUILD_HINT = "rebuild it with `rag index --rebuild --store SPEC`"
# Stores of this process per Milvus Lite file: the server of a file stops when the last one closes.
_LITE_USERS: Counter[str] = Counter()
_LITE_LOCK = threading.Lock()


class MilvusUnavailableError(StoreError):
    """Milvus cannot be reached: the server is down, the token is wrong, or another process has the Lite file."""


class _NoMvccWarning(logging.Filter):
    """Milvus Lite has no MVCC timestamp to give, and pymilvus warns about it on every paged query."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "mvccTs" not in record.getMessage()


def _client_module():
    import warnings

    try:
        with warnings.catch_warnings():  # milvus-lite 2.5.1 imports pkg_resources (pinned setuptools<81 has it)
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            with contextlib.suppress(ImportError):  # a server URI needs pymilvus only
                import milvus_lite  # noqa: F401  (imported here so that its warning is not printed to users)
            import pymilvus
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ImportError('the Milvus store needs its extra: pip install -e ".[milvus]"') from exc
    logger = logging.getLogger("pymilvus.client.iterator.query_iterator")
    if not any(isinstance(f, _NoMvccWarning) for f in logger.filters):
        logger.addFilter(_NoMvccWarning())
    return pymilvus


def source_key(source: str) -> str:
    """What filters compare instead of the source name (which may hold quotes, newlines, anything).

    >>> len(source_key('a "quoted" name.txt'))
    40
    """
    return hashlib.sha1(source.encode("utf-8")).hexdigest()


def bm25_idf(n: int, df: int) -> float:
    """The BM25 IDF, as the embedded store computes it: ``log(1 + (n - df + 0.5) / (df + 0.5))``.

    >>> round(bm25_idf(3, 1), 4)
    0.9808
    """
    return float(np.float32(math.log(1 + (n - df + 0.5) / (df + 0.5))))


def terms_field(text: str) -> str:
    """The analysed terms of a chunk as Milvus's BM25 reads them (standard tokenizer, no filters).

    >>> terms_field("Die Verteidigungsminister trafen sich in Peking.")
    'verteidigungsminist traf peking'
    """
    out = " ".join(terms(text))
    if len(out.encode("utf-8")) > 65_000:  # a VARCHAR holds 65,535 bytes; cut at a term boundary
        out = out.encode("utf-8")[:65_000].decode("utf-8", "ignore").rsplit(" ", 1)[0]
    return out


def cut_pieces(text: str) -> list[str]:
    return [text[i : i + PIECE_CHARS] for i in range(0, len(text), PIECE_CHARS)] or [""]


def ids_filter(field: str, ids: Sequence[int], negate: bool = False) -> str:
    return f"{field} {'not in' if negate else 'in'} [{','.join(str(int(i)) for i in ids)}]"


def str_in(field: str, values: Iterable[str]) -> str:
    # Only hex digests reach here (source keys, text hashes): no quoting problems.
    return f"{field} in [{','.join(json.dumps(v) for v in values)}]"


@dataclass(frozen=True)
class Pointer:
    """A committed version: its generation, the family of collections it reads, its manifest data."""

    generation: int
    family: int
    manifest: dict

    @property
    def version(self) -> str:
        return f"milvus-f{self.family}-g{self.generation}"


def parse_spec(spec: str) -> tuple[str, str, bool]:
    """``(uri, prefix, is_lite)`` of a ``milvus:`` spec.

    >>> parse_spec("milvus:/data/news.db")
    ('/data/news.db', 'rag', True)
    >>> parse_spec("milvus://milvus.example:19530#news")
    ('http://milvus.example:19530', 'news', False)
    """
    body = spec.removeprefix("milvus:")
    prefix = "rag"
    if "#" in body:
        body, prefix = body.rsplit("#", 1)
    if not prefix.replace("_", "").isalnum() or not prefix[:1].isalpha():
        raise ValueError(f"{spec}: the name after # must be letters, digits and _ (a collection name prefix)")
    if body.startswith("//"):
        return "http:" + body, prefix, False
    if body.startswith(("http://", "https://")):
        return body, prefix, False
    if not body.endswith(".db"):
        raise ValueError(f"{spec}: a Milvus Lite file must end in .db (e.g. milvus:./news.db)")
    return str(Path(body).expanduser().resolve()), prefix, True


class MilvusCollections:
    """The collections of one index in Milvus and the connection to them (see the module docstring).

    Args:
        spec: ``milvus:PATH.db`` or ``milvus://HOST:PORT`` (optionally ``#PREFIX``).
        token: for a secured server (``user:password`` or an API key).
    """

    def __init__(self, spec: str, *, token: str | None = None) -> None:
        self.spec = spec
        self.uri, self.prefix, self.lite = parse_spec(spec)
        self._token = token
        self._client = None
        self._client_lock = threading.Lock()
        # (family, id) -> the row as Milvus returns it, or as a view completed it (ids are never reused)
        self._rows: dict[tuple[int, int], dict[str, Any] | ChunkRow] = {}
        self._parts: dict[str, IndexPart] = {}
        self._thread_lock = threading.Lock()  # writers of this process; a file lock for other processes

    def close(self) -> None:
        """Close the connection; the last store of a Milvus Lite file in this process stops its server."""
        with self._client_lock:
            if self._client is None:
                return
            self._client.close()
            self._client = None
            if self.lite:
                with _LITE_LOCK:
                    _LITE_USERS[self.uri] -= 1
                    if _LITE_USERS[self.uri] <= 0:
                        del _LITE_USERS[self.uri]
                        from milvus_lite.server_manager import server_manager_instance

                        server_manager_instance.release_server(self.uri)

    # ------------------------------------------------------------------ plumbing

    @property
    def client(self):
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    pm = _client_module()
                    if self.lite:
                        Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
                    try:
                        self._client = pm.MilvusClient(self.uri, token=self._token or "")
                        if self.lite:
                            with _LITE_LOCK:
                                _LITE_USERS[self.uri] += 1
                    except pm.exceptions.MilvusException as exc:
                        fix = (
                            "a Milvus Lite file is open in one process at a time: stop the other one (rag chat?) "
                            "or use a Milvus server (docs/deployment.md)"
                            if self.lite
                            else "is the server running and the token right?"
                        )
                        raise MilvusUnavailableError(f"{self.spec}: cannot open Milvus ({exc.message}); {fix}") from exc
        return self._client

    def name(self, family: int, kind: str) -> str:
        return f"{self.prefix}_f{family}_{kind}"

    @property
    def pointer_name(self) -> str:
        return f"{self.prefix}_pointer"

    def query(self, collection: str, expr: str, fields: list[str], *, limit: int = MAX_LIMIT) -> list[dict]:
        """Every row matching ``expr``: one call when it fits, else paged.

        Milvus caps one query at 16,384 rows and its result at a size in bytes; ``limit`` is
        the rows per call (small for the document pieces, which are up to 64 KiB each).
        """
        pm = _client_module()
        try:
            found = self.client.query(
                collection, filter=expr, output_fields=fields, limit=limit, consistency_level="Strong"
            )
            if len(found) < limit:
                return list(found)
        except pm.exceptions.MilvusException as exc:
            if "exceed the limit size" not in str(exc):
                raise
            limit = max(16, limit // 16)
        it = self.client.query_iterator(
            collection, batch_size=limit, filter=expr, output_fields=fields, consistency_level="Strong"
        )
        out: list[dict] = []
        try:
            while batch := it.next():
                out.extend(batch)
        finally:
            it.close()
        return out

    def insert(self, collection: str, rows: list[dict]) -> None:
        """Insert in calls of at most 1,000 rows and about 16 MB (gRPC refuses messages over 64 MiB)."""
        batch: list[dict] = []
        size = 0
        for row in rows:
            row_size = 4 * len(row.get("vector", ())) + 4 * sum(len(v) for v in row.values() if isinstance(v, str))
            if batch and (len(batch) >= INSERT_BATCH or size + row_size > INSERT_BYTES):
                self.client.insert(collection, batch)
                batch, size = [], 0
            batch.append(row)
            size += row_size
        if batch:
            self.client.insert(collection, batch)

    def pointers(self) -> list[Pointer]:
        """Committed versions, newest first."""
        if not self.client.has_collection(self.pointer_name):
            return []
        rows = self.query(self.pointer_name, "generation >= 0", ["generation", "family", "manifest"])
        try:
            out = [Pointer(int(r["generation"]), int(r["family"]), json.loads(r["manifest"])) for r in rows]
        except (ValueError, TypeError, KeyError) as exc:
            raise IndexCorruptError(f"{self.spec}: an unreadable version record ({exc}); {REBUILD_HINT}") from exc
        return sorted(out, key=lambda p: -p.generation)

    def live(self) -> Pointer | None:
        found = self.pointers()
        return found[0] if found else None

    def create_family(self, family: int, dim: int) -> None:
        """The collections of a new family (empty)."""
        pm = _client_module()
        dt_ = pm.DataType
        c = self.client
        vector_index = "FLAT" if self.lite else "AUTOINDEX"

        s = c.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", dt_.INT64, is_primary=True)
        s.add_field("skey", dt_.VARCHAR, max_length=40)
        s.add_field("start", dt_.INT64)
        s.add_field("end", dt_.INT64)
        s.add_field("text_hash", dt_.VARCHAR, max_length=40)
        s.add_field("born", dt_.INT64)
        s.add_field(
            "terms", dt_.VARCHAR, max_length=65_535, enable_analyzer=True, analyzer_params={"tokenizer": "standard"}
        )
        s.add_field("sparse", dt_.SPARSE_FLOAT_VECTOR)
        s.add_field("vector", dt_.FLOAT_VECTOR, dim=dim)
        s.add_function(
            pm.Function(
                name="bm25",
                function_type=pm.FunctionType.BM25,
                input_field_names=["terms"],
                output_field_names=["sparse"],
            )
        )
        ip = c.prepare_index_params()
        ip.add_index("vector", index_type=vector_index, metric_type="COSINE")
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        c.create_collection(self.name(family, "chunks"), schema=s, index_params=ip, consistency_level="Strong")

        s = c.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", dt_.INT64, is_primary=True)
        s.add_field("skey", dt_.VARCHAR, max_length=40)
        s.add_field("source", dt_.VARCHAR, max_length=65_535)
        s.add_field("kind", dt_.VARCHAR, max_length=8)  # "doc": the document as JSON; "words": words and names
        s.add_field("part", dt_.INT64)
        s.add_field("blob", dt_.VARCHAR, max_length=65_535)
        s.add_field("sha256", dt_.VARCHAR, max_length=64)
        s.add_field("chunks", dt_.INT64)
        s.add_field("first", dt_.INT64)  # the document's chunks have ids first .. first + chunks - 1, in text order
        # JSON: size and mtime_ns of the file (for the indexer), title and date (for a list of the documents)
        s.add_field("info", dt_.VARCHAR, max_length=65_535)
        s.add_field("born", dt_.INT64)
        s.add_field("dummy", dt_.FLOAT_VECTOR, dim=2)
        self._create_small(self.name(family, "docs"), s)

        s = c.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("key", dt_.VARCHAR, is_primary=True, max_length=65_535)
        s.add_field("term", dt_.VARCHAR, max_length=65_535)
        s.add_field("born", dt_.INT64)
        s.add_field("delta", dt_.INT64)
        s.add_field("dummy", dt_.FLOAT_VECTOR, dim=2)
        self._create_small(self.name(family, "df"), s)

        s = c.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", dt_.INT64, is_primary=True)
        s.add_field("gen", dt_.INT64)
        s.add_field("dummy", dt_.FLOAT_VECTOR, dim=2)
        self._create_small(self.name(family, "retired"), s)

    def ensure_pointer(self) -> None:
        if self.client.has_collection(self.pointer_name):
            return
        dt_ = _client_module().DataType
        s = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("generation", dt_.INT64, is_primary=True)
        s.add_field("family", dt_.INT64)
        s.add_field("manifest", dt_.VARCHAR, max_length=65_535)
        s.add_field("dummy", dt_.FLOAT_VECTOR, dim=2)
        self._create_small(self.pointer_name, s)

    def _create_small(self, name: str, schema) -> None:
        ip = self.client.prepare_index_params()
        ip.add_index("dummy", index_type="FLAT", metric_type="L2")
        self.client.create_collection(name, schema=schema, index_params=ip, consistency_level="Strong")

    def rows(self, family: int, ids: Sequence[int]) -> dict[int, dict[str, Any] | ChunkRow]:
        """Chunk rows by id (cached: a row never changes under its id)."""
        missing = [int(i) for i in ids if (family, int(i)) not in self._rows]
        for at in range(0, len(missing), ID_BATCH):
            batch = missing[at : at + ID_BATCH]
            self.remember_rows(
                family, self.client.get(self.name(family, "chunks"), ids=batch, output_fields=list(ROW_FIELDS))
            )
        return {int(i): self._rows[(family, int(i))] for i in ids if (family, int(i)) in self._rows}

    def remember_rows(self, family: int, rows: Iterable[dict]) -> None:
        """Keep chunk rows (as Milvus returns them; a view completes them to ChunkRows with the source)."""
        if len(self._rows) > ROW_CACHE:
            self._rows.clear()
        for r in rows:
            self._rows[(family, int(r["id"]))] = r


def family_of(collection: str, prefix: str) -> int | None:
    head = f"{prefix}_f"
    if not collection.startswith(head):
        return None
    number = collection[len(head) :].split("_", 1)[0]
    return int(number) if number.isdigit() else None


def file_entry(head: dict) -> dict:
    try:
        info = json.loads(head.get("info") or "{}")
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def document_json(doc: Document) -> str:
    return json.dumps(
        {
            "source": doc.source,
            "title": doc.title,
            "text": doc.text,
            "content_hash": doc.content_hash,
            "date": doc.date.isoformat() if doc.date else None,
            "date_origin": doc.date_origin,
            "metadata": doc.metadata,
        },
        ensure_ascii=False,
    )


def document_of(text: str) -> Document:
    d = json.loads(text)
    if not isinstance(d.get("metadata"), dict) or not all(isinstance(d[k], str) for k in ("source", "title", "text")):
        raise ValueError("a document of the wrong shape")
    date = dt.date.fromisoformat(d["date"]) if d.get("date") else None
    return Document(
        d["source"], d["text"], d["title"], d["content_hash"], date, d.get("date_origin") or "", d["metadata"]
    )

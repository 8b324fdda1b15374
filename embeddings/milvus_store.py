"""The Milvus store: the same read view and writer as the embedded store, kept in Milvus.

``milvus:PATH.db`` is Milvus Lite (the engine in a local file, one process at a time);
``milvus://HOST:PORT`` is Milvus Standalone or Distributed (``token=`` for a secured one).
Install with ``pip install -e ".[milvus]"`` (``milvus-lite==2.5.1``, the last Lite release with
Milvus's C++ engine, dense, BM25 and hybrid search; 3.x is a pure-Python rewrite).

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

import datetime as dt
import fcntl
import hashlib
import json
import logging
import math
import os
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .analysis import fold, terms, words
from .entities import document_names
from .manifest import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError, Manifest
from .store_api import ChunkRow, IndexPart
from .types import Chunk, Document

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
ALIVE = 2**62
_DUMMY = [0.0, 1.0]  # a vector field is required in every collection; the small ones carry this
_ID_BATCH = 1_000  # ids per `in [...]` filter or get()
REBUILD_HINT = "rebuild it with `rag index --rebuild --store SPEC`"
# Stores of this process per Milvus Lite file: the server of a file stops when the last one closes.
_LITE_USERS: Counter[str] = Counter()
_LITE_LOCK = threading.Lock()


class _NoMvccWarning(logging.Filter):
    """Milvus Lite has no MVCC timestamp to give, and pymilvus warns about it on every paged query."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "mvccTs" not in record.getMessage()


def _client_module():
    try:
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


def _pieces(text: str) -> list[str]:
    return [text[i : i + PIECE_CHARS] for i in range(0, len(text), PIECE_CHARS)] or [""]


def _ids_filter(field: str, ids: Sequence[int], negate: bool = False) -> str:
    return f"{field} {'not in' if negate else 'in'} [{','.join(str(int(i)) for i in ids)}]"


def _str_in(field: str, values: Iterable[str]) -> str:
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


class MilvusStore:
    """One index in Milvus (see the module docstring for the layout and the isolation it gives).

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
        self._rows: dict[tuple[int, int], ChunkRow] = {}  # (family, id) -> row: ids are never reused
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
                        where = "another process may have the Milvus Lite file open" if self.lite else "is it running?"
                        raise IndexCorruptError(f"{self.spec}: cannot open Milvus ({exc.message}); {where}") from exc
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
            family = _family_of(name, self.prefix)
            if family is not None and family not in families:
                self.client.drop_collection(name)
        if live is None:
            return
        g = live.generation
        for kind in ("chunks", "docs"):
            self.client.delete(self.name(live.family, kind), filter=f"born > {g}")
        self.client.delete(self.name(live.family, "df"), filter=f"born > {g}")
        self.client.delete(self.name(live.family, "retired"), filter=f"gen > {g}")

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

    def rows(self, family: int, ids: Sequence[int]) -> dict[int, ChunkRow]:
        """Chunk rows by id (cached: a row never changes under its id)."""
        missing = [int(i) for i in ids if (family, int(i)) not in self._rows]
        for at in range(0, len(missing), _ID_BATCH):
            batch = missing[at : at + _ID_BATCH]
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


def _family_of(collection: str, prefix: str) -> int | None:
    head = f"{prefix}_f"
    if not collection.startswith(head):
        return None
    number = collection[len(head) :].split("_", 1)[0]
    return int(number) if number.isdigit() else None


class _Documents(Mapping):
    """The documents of one view, read on demand (a few hundred kept)."""

    def __init__(self, view: MilvusView) -> None:
        self.view = view
        self._cache: OrderedDict[str, Document] = OrderedDict()
        self._lock = threading.Lock()

    def __getitem__(self, source: str) -> Document:
        with self._lock:
            if source in self._cache:
                self._cache.move_to_end(source)
                return self._cache[source]
        if source not in self.view._files:
            raise KeyError(source)
        doc = self.view._read_stream(source, "doc", _document_of)
        with self._lock:
            self._cache[source] = doc
            while len(self._cache) > 256:
                self._cache.popitem(last=False)
        return doc

    def __iter__(self) -> Iterator[str]:
        return iter(self.view._files)

    def __len__(self) -> int:
        return len(self.view._files)

    def __contains__(self, source) -> bool:
        return source in self.view._files


class MilvusView:
    """A read view of one committed version (see the module docstring for what stays consistent)."""

    def __init__(self, store: MilvusStore, pointer: Pointer) -> None:
        self.store = store
        self.pointer = pointer
        self.version = pointer.version
        self.family, self.generation = pointer.family, pointer.generation
        self._chunks, self._docs = store.name(self.family, "chunks"), store.name(self.family, "docs")
        retired = store.query(store.name(self.family, "retired"), f"gen <= {self.generation}", ["id"])
        self.hidden = frozenset(int(r["id"]) for r in retired)
        heads = store.query(
            self._docs,
            f'born <= {self.generation} and kind == "doc" and part == 0',
            ["id", "source", "sha256", "chunks", "born", "info", "first"],
        )
        heads = sorted((r for r in heads if int(r["id"]) not in self.hidden), key=lambda r: r["source"])
        self._files = {r["source"]: r for r in heads}
        m = pointer.manifest
        self.manifest = Manifest(
            model=m["model"],
            dim=int(m["dim"]),
            backend=m.get("backend", "torch"),
            chunking=m.get("chunking", {}),
            roots=tuple(m.get("roots", ())),
            files={s: {**_info(r), "sha256": r["sha256"], "chunks": int(r["chunks"])} for s, r in self._files.items()},
            generation=self.generation,
            next_id=int(m.get("next_id", 0)),
            created=m.get("created", ""),
        )
        self.n = sum(int(r["chunks"]) for r in heads)
        self.documents = _Documents(self)
        self._by_key = {source_key(s): s for s in self._files}
        self._ids_of: dict[str, list[int]] = {}
        self._idf: dict[str, float | None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.n

    def _visible(self, extra: str = "") -> str:
        expr = f"born <= {self.generation}"
        if self.hidden:
            expr += " and " + _ids_filter("id", sorted(self.hidden), negate=True)
        return f"{expr} and {extra}" if extra else expr

    def _sources_filter(self, sources: frozenset[str] | None) -> str:
        return "" if sources is None else _str_in("skey", sorted(source_key(s) for s in sources))

    def _search(self, data, field: str, metric: str, k: int, sources: frozenset[str] | None) -> list[tuple[int, float]]:
        if not self.n or k <= 0 or (sources is not None and not sources):
            return []
        found = self.store.client.search(
            self._chunks,
            data=data,
            anns_field=field,
            limit=min(k, self.n, MAX_LIMIT),
            filter=self._visible(self._sources_filter(sources)),
            search_params={"metric_type": metric},
            output_fields=list(ROW_FIELDS),
            consistency_level="Strong",
        )
        self.store.remember_rows(self.family, [{"id": h["id"], **h["entity"]} for h in found[0]])
        return [(int(h["id"]), float(h["distance"])) for h in found[0]]

    def dense_search(
        self, vector: np.ndarray, k: int, sources: frozenset[str] | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` chunks nearest to ``vector`` by cosine, best first (exact on Milvus Lite: FLAT)."""
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        return self._search([query.tolist()], "vector", "COSINE", k, sources)

    def lexical_search(
        self, query_terms: Sequence[str], k: int, sources: frozenset[str] | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` best chunks by Milvus's BM25 for analysed terms, best first."""
        text = " ".join(t for t in query_terms if t)
        if not text:
            return []
        return [(i, s) for i, s in self._search([text], "sparse", "BM25", k, sources) if s > 0]

    def idf(self, term: str) -> float | None:
        with self._lock:
            if term in self._idf:
                return self._idf[term]
        rows = self.store.query(
            self.store.name(self.family, "df"), f"term == {json.dumps(term)} and born <= {self.generation}", ["delta"]
        )
        df = sum(int(r["delta"]) for r in rows)
        value = bm25_idf(self.n, df) if df > 0 else None
        with self._lock:
            self._idf[term] = value
        return value

    @property
    def max_idf(self) -> float:
        return bm25_idf(self.n, 1) if self.n else 1.0

    def row(self, chunk_id: int) -> ChunkRow:
        return self.rows([chunk_id])[int(chunk_id)]

    def rows(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        """Rows of the given chunk ids (one call to Milvus for those not seen before)."""
        raw = self.store.rows(self.family, ids)
        out = {}
        for i in ids:
            r = raw.get(int(i))
            if r is None or int(i) in self.hidden:
                raise KeyError(f"{self.store.spec}: no chunk {i} in version {self.version}")
            if isinstance(r, dict):
                source = self._by_key.get(r["skey"])
                if source is None:
                    raise KeyError(f"{self.store.spec}: chunk {i} belongs to no document of version {self.version}")
                r = ChunkRow(int(r["id"]), source, int(r["start"]), int(r["end"]), r["text_hash"])
            out[int(i)] = r
        return out

    def chunk(self, chunk_id: int) -> Chunk:
        row = self.row(chunk_id)
        doc = self.documents[row.source]
        text = doc.text[row.start : row.end]
        if row.end > len(doc.text) or hashlib.sha1(text.encode("utf-8")).hexdigest() != row.text_hash:
            raise IndexCorruptError(
                f"{self.store.spec}: chunk {row.id} does not hold the text it was embedded from; {REBUILD_HINT}"
            )
        return Chunk(row.source, doc.title, row.start, row.end, text)

    def ids_of(self, source: str) -> list[int]:
        """Chunk ids of one document, in text order."""
        with self._lock:
            if source in self._ids_of:
                return list(self._ids_of[source])
        head = self._files.get(source)
        if head is None:
            return []
        ids = list(range(int(head["first"]), int(head["first"]) + int(head["chunks"])))
        self.store.rows(self.family, ids)  # the caller usually reads their rows next: one call for all
        with self._lock:
            self._ids_of[source] = ids
        return list(ids)

    def all_ids(self) -> list[int]:
        rows = self.store.query(self._chunks, f"born <= {self.generation}", ["id"])
        return sorted(int(r["id"]) for r in rows if int(r["id"]) not in self.hidden)

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of the given chunk ids, one row each."""
        ids = [int(i) for i in ids]
        if not ids:
            return np.zeros((0, self.manifest.dim), np.float32)
        found: dict[int, list[float]] = {}
        for at in range(0, len(ids), _ID_BATCH):
            batch = list(dict.fromkeys(ids[at : at + _ID_BATCH]))
            for r in self.store.client.get(self._chunks, ids=batch, output_fields=["vector"]):
                found[int(r["id"])] = r["vector"]
        missing = [i for i in ids if i not in found or i in self.hidden]
        if missing:
            raise KeyError(f"{self.store.spec}: no vectors for chunks {missing[:5]} in version {self.version}")
        return np.asarray([found[i] for i in ids], dtype=np.float32)

    def ids_with_text(self, text_hashes: Iterable[str]) -> dict[str, int]:
        """For each text hash that is stored, the lowest visible chunk id holding that text."""
        hashes = sorted(set(text_hashes))
        out: dict[str, int] = {}
        for at in range(0, len(hashes), _ID_BATCH):
            batch = hashes[at : at + _ID_BATCH]
            expr = f"{_str_in('text_hash', batch)} and born <= {self.generation}"
            for r in self.store.query(self._chunks, expr, ["id", "text_hash"]):
                i = int(r["id"])
                if i not in self.hidden:
                    out[r["text_hash"]] = min(out.get(r["text_hash"], i), i)
        return out

    def parts(self) -> tuple[IndexPart, ...]:
        """One part per generation that wrote documents still visible; cached by the store.

        Like a segment of the embedded store, a part keeps the words and names of its documents
        that were removed since, until a tenth more of them is gone: its key is (family,
        generation, tenths removed), so a small update reads one new part, and a version that
        removes one document reuses every part. Reading a part costs one paged query of its
        documents' word lists (about 1 s per 10,000 documents on Milvus Lite).
        """
        by_born: dict[int, list[str]] = {}
        for source, head in self._files.items():
            by_born.setdefault(int(head["born"]), []).append(source)
        written = self.pointer.manifest.get("written", {})
        out = []
        for born, sources in sorted(by_born.items()):
            total = max(int(written.get(str(born), len(sources))), len(sources))
            key = f"f{self.family}-b{born}-d{(total - len(sources)) * 10 // total}"
            part = self.store._parts.get(key)
            if part is None:
                part = self._read_part(key, born, sources)
                self.store._parts[key] = part
            out.append(part)
        return tuple(out)

    def _read_part(self, key: str, born: int, sources: list[str]) -> IndexPart:
        wanted = {source_key(s): s for s in sources}
        pieces: dict[str, list[tuple[int, str]]] = {}
        expr = f'kind == "words" and born == {born}'
        for r in self.store.query(self._docs, expr, ["id", "skey", "part", "blob"], limit=BLOB_ROWS):
            if r["skey"] in wanted and int(r["id"]) not in self.hidden:
                pieces.setdefault(r["skey"], []).append((int(r["part"]), r["blob"]))
        all_words: set[str] = set()
        names = []
        for skey, source in wanted.items():
            found = sorted(pieces.get(skey, ()))
            if [p for p, _ in found] != list(range(len(found))) or not found:
                raise IndexCorruptError(
                    f"{self.store.spec}: the stored words of {source} are incomplete; {REBUILD_HINT}"
                )
            try:
                data = json.loads("".join(b for _, b in found))
                all_words.update(data["words"])
                names.append(tuple(data["names"]))
            except (ValueError, TypeError, KeyError) as exc:
                raise IndexCorruptError(
                    f"{self.store.spec}: the stored words of {source} are damaged ({exc}); {REBUILD_HINT}"
                ) from exc
        return IndexPart(key, tuple(sorted(all_words)), tuple(names))

    def _read_stream(self, source: str, kind: str, parse):
        head = self._files[source]
        expr = f'skey == {json.dumps(source_key(source))} and kind == "{kind}" and born == {int(head["born"])}'
        rows = [
            r
            for r in self.store.query(self._docs, expr, ["id", "part", "blob"], limit=BLOB_ROWS)
            if int(r["id"]) not in self.hidden
        ]
        rows.sort(key=lambda r: r["part"])
        if [r["part"] for r in rows] != list(range(len(rows))) or not rows:
            raise IndexCorruptError(f"{self.store.spec}: the stored {kind} of {source} is incomplete; {REBUILD_HINT}")
        try:
            return parse("".join(r["blob"] for r in rows))
        except (ValueError, TypeError, KeyError) as exc:
            raise IndexCorruptError(
                f"{self.store.spec}: the stored {kind} of {source} is damaged ({exc}); {REBUILD_HINT}"
            ) from exc


def _info(head: dict) -> dict:
    try:
        info = json.loads(head.get("info") or "{}")
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _document_json(doc: Document) -> str:
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


def _document_of(text: str) -> Document:
    d = json.loads(text)
    if not isinstance(d.get("metadata"), dict) or not all(isinstance(d[k], str) for k in ("source", "title", "text")):
        raise ValueError("a document of the wrong shape")
    date = dt.date.fromisoformat(d["date"]) if d.get("date") else None
    return Document(
        d["source"], d["text"], d["title"], d["content_hash"], date, d.get("date_origin") or "", d["metadata"]
    )


class MilvusWriter:
    """Stages changes as rows of the next generation; :meth:`commit` makes them the live version.

    Rows are written as they are added (invisible to readers: their ``born`` is above every
    view's generation), so memory stays flat however large the index.
    """

    def __init__(self, store: MilvusStore, live: Pointer | None, manifest, *, rebuild: bool) -> None:
        self.store = store
        self.manifest = manifest
        self.base = None if rebuild or live is None else MilvusView(store, live)
        previous = [p.generation for p in store.pointers()]
        self.generation = max(previous, default=0) + 1
        self.next_id = max(int(live.manifest.get("next_id", 0)) if live else 0, 0)
        if self.base is not None:
            self.family = live.family
        else:
            self.family = self.generation
            store.create_family(self.family, manifest.dim)
        self.changed = False
        self._chunks = store.name(self.family, "chunks")
        self._docs = store.name(self.family, "docs")
        # documents added by this writer: source -> (chunk ids, document row ids, each chunk's terms)
        self._base_sources = set(self.base._files) if self.base else set()
        self._staged: dict[str, tuple[list[int], list[int], list[set[str]]]] = {}
        self._removed_base: set[str] = set()
        self._retire: list[int] = []
        self._df: Counter[str] = Counter()
        self._count = len(self.base) if self.base else 0
        # rows not yet sent: one insert per thousand rows, not two per document
        self._buffer: dict[str, list[dict]] = {self._chunks: [], self._docs: []}

    def _take_ids(self, n: int) -> list[int]:
        ids = list(range(self.next_id, self.next_id + n))
        self.next_id += n
        return ids

    def remove(self, source: str) -> int:
        """Drop a document and its chunks; returns how many chunks went."""
        staged = self._staged.pop(source, None)
        if staged is not None:  # added by this writer: never visible, delete outright
            self._flush()
            chunk_ids, doc_ids, terms_lists = staged
            if chunk_ids:
                self.store.client.delete(self._chunks, ids=chunk_ids)
            self.store.client.delete(self._docs, ids=doc_ids)
            for t in terms_lists:
                self._df.subtract(t)
            self._count -= len(chunk_ids)
            self.changed = True
            return len(chunk_ids)
        if source not in self._base_sources or source in self._removed_base:
            return 0
        self._removed_base.add(source)
        view = self.base
        chunk_ids = view.ids_of(source)
        for at in range(0, len(chunk_ids), _ID_BATCH):
            for r in self.store.client.get(self._chunks, ids=chunk_ids[at : at + _ID_BATCH], output_fields=["terms"]):
                self._df.subtract(set(r["terms"].split()))
        head = view._files[source]
        expr = f"skey == {json.dumps(source_key(source))} and born == {int(head['born'])}"
        doc_ids = [int(r["id"]) for r in self.store.query(self._docs, expr, ["id"]) if int(r["id"]) not in view.hidden]
        self._retire += chunk_ids + doc_ids
        self._count -= len(chunk_ids)
        self.changed = True
        return len(chunk_ids)

    def add(self, doc: Document, chunks: list[Chunk], vectors: np.ndarray, *, file_info: dict | None = None) -> None:
        """Add a document (replacing any previous version), one vector per chunk.

        ``file_info`` (size, mtime_ns of the file) is kept in the manifest's entry for the source.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(chunks) != len(vectors):
            raise ValueError(f"{doc.source}: {len(chunks)} chunks but {len(vectors)} vectors")
        if len(chunks) and vectors.shape[1] != self.manifest.dim:
            raise IndexMismatchError(
                f"{doc.source}: vectors of {vectors.shape[1]} dimensions for an index of {self.manifest.dim}"
            )
        if len(doc.source.encode("utf-8")) > 65_000:
            raise ValueError(f"{doc.source[:80]}...: a source name longer than 65,000 bytes cannot be stored in Milvus")
        entry = {**(file_info or {}), "title": doc.title[:2000], "date": doc.date.isoformat() if doc.date else ""}
        info = json.dumps(entry, ensure_ascii=False)
        if len(info) > 16_000:
            raise ValueError(f"{doc.source}: file_info too large to store ({len(info)} characters)")
        self.remove(doc.source)
        skey = source_key(doc.source)
        order = sorted(range(len(chunks)), key=lambda n: (chunks[n].start, chunks[n].end))
        chunks, vectors = [chunks[n] for n in order], vectors[order] if len(chunks) else vectors
        chunk_ids = self._take_ids(len(chunks))
        term_sets = []
        rows = []
        for i, chunk, vector in zip(chunk_ids, chunks, vectors):
            field = terms_field(chunk.text)
            term_sets.append(set(field.split()))
            rows.append(
                {
                    "id": i,
                    "skey": skey,
                    "start": chunk.start,
                    "end": chunk.end,
                    "text_hash": chunk.text_hash,
                    "born": self.generation,
                    "terms": field,
                    "vector": vector.tolist(),
                }
            )
        self._buffer[self._chunks] += rows
        folded = sorted({fold(w) for w in words(doc.text)} - {""})
        streams = [
            ("doc", _pieces(_document_json(doc))),
            ("words", _pieces(json.dumps({"words": folded, "names": list(document_names(doc))}, ensure_ascii=False))),
        ]
        doc_rows = []
        for kind, pieces in streams:
            for part, (piece_id, piece) in enumerate(zip(self._take_ids(len(pieces)), pieces)):
                doc_rows.append(
                    {
                        "id": piece_id,
                        "skey": skey,
                        "source": doc.source,
                        "kind": kind,
                        "part": part,
                        "blob": piece,
                        "sha256": doc.content_hash,
                        "chunks": len(chunks),
                        "first": chunk_ids[0] if chunk_ids else 0,
                        "info": info,
                        "born": self.generation,
                        "dummy": _DUMMY,
                    }
                )
        self._buffer[self._docs] += doc_rows
        if sum(map(len, self._buffer.values())) >= INSERT_BATCH:
            self._flush()
        for t in term_sets:
            self._df.update(t)
        self._staged[doc.source] = (chunk_ids, [r["id"] for r in doc_rows], term_sets)
        self._count += len(chunks)
        self.changed = True

    def _flush(self) -> None:
        for name, rows in self._buffer.items():
            self.store.insert(name, rows)
            rows.clear()

    def count(self) -> int:
        """Chunks in the index once committed."""
        return self._count

    def commit(self, roots: tuple[str, ...]) -> Manifest:
        """Make the staged rows the live version: one pointer insert; then delete what the previous commit retired."""
        s = self.store
        g = self.generation
        self._flush()
        if self._retire:
            s.insert(s.name(self.family, "retired"), [{"id": i, "gen": g, "dummy": _DUMMY} for i in self._retire])
        deltas = [(t, d) for t, d in self._df.items() if d]
        if deltas:
            s.insert(
                s.name(self.family, "df"),
                [{"key": f"{g}:{t}", "term": t, "born": g, "delta": d, "dummy": _DUMMY} for t, d in deltas],
            )
        m = self.manifest
        record = {
            "model": m.model,
            "dim": m.dim,
            "backend": m.backend,
            "chunking": m.chunking,
            "roots": list(roots),
            "next_id": self.next_id,
            "written": self._written(g),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        s.ensure_pointer()
        for name in (self._chunks, self._docs, s.name(self.family, "df"), s.name(self.family, "retired")):
            s.client.flush(name)
        s.insert(
            s.pointer_name, [{"generation": g, "family": self.family, "manifest": json.dumps(record), "dummy": _DUMMY}]
        )
        s.client.flush(s.pointer_name)
        self._after_commit(g)
        self._retire, self._df, self._staged = [], Counter(), {}
        self.changed = False
        return s.view().manifest

    def _written(self, g: int) -> dict[str, int]:
        """Documents each generation with visible documents wrote (how :meth:`MilvusView.parts` keys its parts)."""
        out = {}
        if self.base is not None:
            previous = self.base.pointer.manifest.get("written", {})
            for born in {int(h["born"]) for h in self.base._files.values()}:
                out[str(born)] = int(previous.get(str(born), 0))
        if self._staged:
            out[str(g)] = len(self._staged)
        return out

    def _after_commit(self, g: int) -> None:
        """Delete rows retired before this version (views of the previous version no longer need them)."""
        s = self.store
        retired = s.name(self.family, "retired")
        old = [int(r["id"]) for r in s.query(retired, f"gen < {g}", ["id"])]
        for at in range(0, len(old), _ID_BATCH):
            batch = old[at : at + _ID_BATCH]
            s.client.delete(self._chunks, ids=batch)
            s.client.delete(self._docs, ids=batch)
            s.client.delete(retired, ids=batch)
        pointers = s.pointers()
        stale = [p.generation for p in pointers[2:]]
        if stale:
            s.client.delete(s.pointer_name, ids=stale)
        kept = {p.family for p in pointers[:2]}
        for name in s.client.list_collections():
            family = _family_of(name, s.prefix)
            if family is not None and family not in kept:
                s.client.drop_collection(name)

"""A read view of one version of a Milvus index (see :mod:`embeddings.stores.milvus.collections` for the layout)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from embeddings.stores.api import ChunkRow, IndexPart
from embeddings.stores.manifest import IndexCorruptError, Manifest
from embeddings.stores.milvus.collections import (
    BLOB_ROWS,
    ID_BATCH,
    MAX_LIMIT,
    REBUILD_HINT,
    ROW_FIELDS,
    MilvusCollections,
    Pointer,
    bm25_idf,
    document_of,
    file_entry,
    ids_filter,
    source_key,
    str_in,
)
from embeddings.types import Chunk, Document


class _Documents(Mapping[str, Document]):
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
        doc = self.view._read_stream(source, "doc", document_of)
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

    def __init__(self, store: MilvusCollections, pointer: Pointer) -> None:
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
            files={
                s: {**file_entry(r), "sha256": r["sha256"], "chunks": int(r["chunks"])} for s, r in self._files.items()
            },
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
            expr += " and " + ids_filter("id", sorted(self.hidden), negate=True)
        return f"{expr} and {extra}" if extra else expr

    def _sources_filter(self, sources: frozenset[str] | None) -> str:
        return "" if sources is None else str_in("skey", sorted(source_key(s) for s in sources))

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
        out: dict[int, ChunkRow] = {}
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

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Stored vectors of the given chunk ids, one row each."""
        ids = [int(i) for i in ids]
        if not ids:
            return np.zeros((0, self.manifest.dim), np.float32)
        found: dict[int, list[float]] = {}
        for at in range(0, len(ids), ID_BATCH):
            batch = list(dict.fromkeys(ids[at : at + ID_BATCH]))
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
        for at in range(0, len(hashes), ID_BATCH):
            batch = hashes[at : at + ID_BATCH]
            expr = f"{str_in('text_hash', batch)} and born <= {self.generation}"
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

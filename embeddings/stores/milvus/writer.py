"""Writing a new version of a Milvus index (see :mod:`embeddings.stores.milvus.collections` for the layout)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import numpy as np

from embeddings.language.analysis import fold, words
from embeddings.language.entities import document_names
from embeddings.stores.manifest import IndexCorruptError, IndexMismatchError, Manifest
from embeddings.stores.milvus.collections import (
    DUMMY_VECTOR,
    ID_BATCH,
    INSERT_BATCH,
    REBUILD_HINT,
    MilvusCollections,
    Pointer,
    cut_pieces,
    document_json,
    family_of,
    source_key,
    terms_field,
)
from embeddings.stores.milvus.view import MilvusView
from embeddings.types import Chunk, Document


class MilvusWriter:
    """Stages changes as rows of the next generation; :meth:`commit` makes them the live version.

    Rows are sent in batches as they are added (invisible to readers: their ``born`` is above
    every view's generation), so memory stays flat however large the index.
    """

    def __init__(self, store: MilvusCollections, live: Pointer | None, manifest, *, rebuild: bool) -> None:
        self.store = store
        self.manifest = manifest
        self.base = None if rebuild or live is None else MilvusView(store, live)
        previous = [p.generation for p in store.pointers()]
        self.generation = max(previous, default=0) + 1
        self.next_id = max(int(live.manifest.get("next_id", 0)) if live else 0, 0)
        if self.base is not None and live is not None:
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
        if view is None:  # no base: nothing of it to remove
            return 0
        chunk_ids = view.ids_of(source)
        for at in range(0, len(chunk_ids), ID_BATCH):
            for r in self.store.client.get(self._chunks, ids=chunk_ids[at : at + ID_BATCH], output_fields=["terms"]):
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
            ("doc", cut_pieces(document_json(doc))),
            (
                "words",
                cut_pieces(json.dumps({"words": folded, "names": list(document_names(doc))}, ensure_ascii=False)),
            ),
        ]
        doc_rows: list[dict[str, Any]] = []
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
                        "dummy": DUMMY_VECTOR,
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
            s.insert(s.name(self.family, "retired"), [{"id": i, "gen": g, "dummy": DUMMY_VECTOR} for i in self._retire])
        deltas = [(t, d) for t, d in self._df.items() if d]
        if deltas:
            s.insert(
                s.name(self.family, "df"),
                [{"key": f"{g}:{t}", "term": t, "born": g, "delta": d, "dummy": DUMMY_VECTOR} for t, d in deltas],
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
            s.pointer_name,
            [{"generation": g, "family": self.family, "manifest": json.dumps(record), "dummy": DUMMY_VECTOR}],
        )
        s.client.flush(s.pointer_name)
        self._after_commit(g)
        self._retire, self._df, self._staged = [], Counter(), {}
        self.changed = False
        committed = s.live()
        if committed is None or committed.generation != g:
            raise IndexCorruptError(f"{s.spec}: the version just committed ({g}) is not the live one; {REBUILD_HINT}")
        return MilvusView(s, committed).manifest

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
        for at in range(0, len(old), ID_BATCH):
            batch = old[at : at + ID_BATCH]
            s.client.delete(self._chunks, ids=batch)
            s.client.delete(self._docs, ids=batch)
            s.client.delete(retired, ids=batch)
        pointers = s.pointers()
        stale = [p.generation for p in pointers[2:]]
        if stale:
            s.client.delete(s.pointer_name, ids=stale)
        kept = {p.family for p in pointers[:2]}
        for name in s.client.list_collections():
            family = family_of(name, s.prefix)
            if family is not None and family not in kept:
                s.client.drop_collection(name)

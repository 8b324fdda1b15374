"""Incremental indexing: bring an index in line with folders of articles, embedding only what is new.

A file is re-read only when its SHA-256 changed, and a chunk is embedded only
when no chunk with the same text is already in the index (so editing one
paragraph re-embeds one or two chunks, and a copy of a file under a new name
embeds nothing). Files that are gone lose their chunks. One bad file is
skipped with a reason; the rest of the run goes on.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.chunking import ChunkingConfig, chunk_document, split_sentences
from embeddings.language.bylines import attribution
from embeddings.language.entities import capitalised_words, document_names, plain_genitives, with_names
from embeddings.readers.cleaning import CLEANED_SUFFIXES, LineTable, clean_text, line_keys
from embeddings.readers.files import LINK_LOOP, MAX_FILE_BYTES, SUFFIXES, DocumentError, parse_document, read_bytes
from embeddings.stores.api import Store, StoreView
from embeddings.stores.embedded.store import recorded_roots
from embeddings.stores.manifest import IndexMismatchError, IndexNotFoundError, Manifest
from embeddings.stores.sentences import QUERY, SentenceVectors, as_query, folder_of, model_key
from embeddings.stores.spec import open_store
from embeddings.types import Chunk, Document

#: ``progress(stage, done, total)``; the stages are the keys of :data:`STAGE_WORDS`.
Progress = Callable[[str, int, int], None]
#: What each progress stage is doing, in words for people (the CLI's and the chat's progress lines).
STAGE_WORDS = {
    "read": "reading files",
    "embed": "embedding passages",
    "sentences": "embedding sentences",
    "write": "writing the index",
}


class CorpusError(ValueError):
    """A path to index does not exist, or two files would get the same name."""


@dataclass(frozen=True)
class Skipped:
    """A file left out of this run, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class IndexReport:
    """What one indexing run did."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[Skipped, ...] = ()  # files indexed with a remark (converted from another encoding)
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_total: int = 0
    sentences_embedded: int = 0  # sentence vectors written for the answerer (embeddings.stores.sentences)
    seconds: float = 0.0
    generation: int = 0
    #: Seconds per step of this run, in pipeline order: ``read`` (scan, stat, bytes, hash), ``clean``
    #: (bytes to a :class:`Document`: text, title, date, bylines; the corpus's boilerplate lines),
    #: ``names``, ``chunk``, ``embed`` (chunks), ``write`` (segment files: vectors, BM25 postings, words
    #: and names; the commit: the articles are searchable from here on) and ``sentences`` (the vectors of
    #: their sentences and words, for the answerer; after the commit).
    steps: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for people: ``added 2, updated 0, removed 1, unchanged 4, skipped 0; 35 chunks embedded …``."""
        return (
            f"added {len(self.added)}, updated {len(self.updated)}, removed {len(self.removed)}, "
            f"unchanged {len(self.unchanged)}, skipped {len(self.skipped)}; "
            f"{self.chunks_embedded} chunks embedded, {self.chunks_reused} reused, "
            f"{self.chunks_total} in index; {self.sentences_embedded} sentence and name vectors; {self.seconds:.2f} s"
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Corpus:
    """The files found under the paths to index, and the entries left out with a reason."""

    files: dict[str, Path]
    skipped: tuple[Skipped, ...] = ()


OUTSIDE_LINK = "symbolic link to a file outside the indexed folder; not followed (copy the file in to index it)"
FOLDER_LINK = "symbolic link to a folder; not followed (index that folder itself, or copy its files in)"
BROKEN_LINK = "broken symbolic link (its target does not exist); remove it or restore the file"


def _link_problem(path: Path, real_root: Path) -> str | None:
    """Why a symlinked file cannot be indexed, or ``None`` when it points at a file inside ``real_root``."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        return BROKEN_LINK
    except (RuntimeError, OSError) as exc:  # RuntimeError: Python < 3.13 on a loop; OSError (ELOOP) after
        if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:
            return LINK_LOOP
        return f"cannot follow symbolic link ({exc.strerror})"
    return None if target.is_relative_to(real_root) else OUTSIDE_LINK


def scan_corpus(paths: Sequence[Path]) -> Corpus:
    """Map index names to files: a folder's files by path relative to it, a file by its name.

    Hidden files and folders are ignored, as are files whose type is not
    supported. A symlinked file is followed only if it stays inside its folder;
    symlinked folders are not followed. Links left out are reported in
    :attr:`Corpus.skipped`, never silently dropped.

    Raises:
        CorpusError: a path does not exist, or two files map to the same name.
    """
    found: dict[str, Path] = {}
    skipped: list[Skipped] = []

    def put(source: str, path: Path) -> None:
        if source in found and found[source] != path:
            raise CorpusError(f"two files would both be indexed as {source!r}: {found[source]} and {path}")
        found[source] = path

    for root in paths:
        root = Path(root)
        if root.is_file():
            put(root.name, root)
        elif root.is_dir():
            real_root = root.resolve()
            for dirpath, dirnames, filenames in os.walk(root):  # does not follow symlinked folders
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in dirnames:
                    if Path(dirpath, name).is_symlink():
                        skipped.append(Skipped(Path(dirpath, name).relative_to(root).as_posix(), FOLDER_LINK))
                for name in sorted(filenames):
                    path = Path(dirpath, name)
                    if name.startswith(".") or path.suffix.lower() not in SUFFIXES:
                        continue
                    source = path.relative_to(root).as_posix()
                    problem = _link_problem(path, real_root) if path.is_symlink() else None
                    if problem:
                        skipped.append(Skipped(source, problem))
                    else:
                        put(source, path)
        else:
            raise CorpusError(f"{root}: no such file or folder")
    return Corpus(found, tuple(skipped))


def scan(paths: Sequence[Path]) -> dict[str, Path]:
    """The files to index under ``paths`` (see :func:`scan_corpus`, which also says what was left out)."""
    return scan_corpus(paths).files


def _batches(items: Sequence, size: int) -> Iterable[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass
class _Read:
    """What reading the corpus's files found: the new and changed documents, and what was left alone."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[Skipped] = field(default_factory=list)
    read: list[Document] = field(default_factory=list)
    infos: dict[str, dict[str, int]] = field(default_factory=dict)


def _read_changed(
    files: dict[str, Path],
    known: dict[str, dict[str, Any]],
    same_chunking: bool,
    clock: _Clock,
    progress: Progress | None,
    max_file_bytes: int,
) -> _Read:
    """Read the files that are new or changed since the index was written (by size and time, then by hash)."""
    out = _Read()
    for n, (source, path) in enumerate(sorted(files.items()), 1):
        if progress:
            progress("read", n, len(files))
        try:
            with clock("read"):
                stat = _file_info(path)
                if same_chunking and stat is not None and _same_file(known.get(source), stat):
                    out.unchanged.append(source)  # same size and modification time (ns): not read again
                    continue
                raw = read_bytes(path, max_file_bytes)
                digest = hashlib.sha256(raw).hexdigest()
                if same_chunking and known.get(source, {}).get("sha256") == digest:
                    out.unchanged.append(source)
                    continue
            with clock("clean"):
                doc = parse_document(raw, source, path.suffix.lower(), path)
        except DocumentError as exc:
            kept = " (the previously indexed version is kept)" if source in known else ""
            out.skipped.append(Skipped(source, exc.reason + kept))
            continue
        (out.updated if source in known else out.added).append(source)
        if encoding := doc.metadata.get("encoding"):
            out.notes.append(Skipped(source, f"not UTF-8: converted from {encoding}; check its umlauts"))
        out.read.append(doc)
        if stat is not None:
            out.infos[source] = stat
    return out


def _prepared(
    read: list[Document],
    removed: list[str],
    index_dir: Path | None,
    rebuild: bool,
    chunking: ChunkingConfig,
    clock: _Clock,
) -> list[tuple[Document, list[Chunk]]]:
    """The documents read, without the corpus's boilerplate lines, with their names, cut into chunks."""
    pending: list[tuple[Document, list[Chunk]]] = []
    # Boilerplate: short lines in MIN_FILES files of the corpus, counted with this run's files.
    with clock("clean"):
        lines = LineTable.beside(index_dir)
        if rebuild:
            lines.clear()
        lines.remove(removed)
        for doc in read:
            if Path(doc.source).suffix.lower() in CLEANED_SUFFIXES:
                lines.put(doc.source, line_keys(doc.text))
    for doc in read:
        if Path(doc.source).suffix.lower() in CLEANED_SUFFIXES:
            with clock("clean"):
                doc = without_boilerplate(doc, lines.repeated(line_keys(doc.text)))
        with clock("names"):
            doc = with_names(doc)
        with clock("chunk"):
            pending.append((doc, chunk_document(doc, chunking)))
    with clock("clean"):
        lines.commit()
        lines.close()
    return pending


def index_paths(
    paths: Sequence[Path] | None,
    index_dir: Path | str | Store,
    embedder,
    *,
    chunking: ChunkingConfig = ChunkingConfig(),
    rebuild: bool = False,
    progress: Progress | None = None,
    lock_timeout: float | None = None,
    batch_size: int = 64,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> IndexReport:
    """Make the index at ``index_dir`` hold exactly the articles under ``paths``.

    Args:
        paths: folders and files; ``None`` re-scans the folders the index was built from
            (with ``rebuild``, as recorded by any readable generation: a damaged index can be rebuilt).
        index_dir: the index folder (created if missing), a store spec (``milvus:…``) or a :class:`Store`.
        embedder: an :class:`~embeddings.model.encoder.Embedder` (or anything with
            ``model_id``, ``backend``, ``dim`` and ``embed_documents``).
        chunking: how to cut documents; a change re-chunks every file.
        rebuild: start from an empty index (needed to switch models).
        progress: called as ``progress(stage, done, total)``.
        lock_timeout: seconds to wait for another writer (``None``: wait as long as it takes).
        max_file_bytes: larger files are skipped without being read (the reason says so).

    Raises:
        CorpusError: bad paths. IndexMismatchError: the index was built with another model.
    """
    started = time.perf_counter()
    steps = dict.fromkeys(STEPS, 0.0)
    clock = _Clock(steps)
    store = index_dir if isinstance(index_dir, Store) else open_store(index_dir)
    live = None if rebuild else store.manifest()
    if paths is None:
        roots = live.roots if live is not None else _recorded_roots(store)
        if not roots:
            raise IndexNotFoundError(f"no index in {store.spec} to refresh; give the folder to index")
        paths = [Path(r) for r in roots]
    with clock("read"):
        corpus = scan_corpus(paths)
    files = corpus.files
    roots = tuple(str(Path(p).resolve()) for p in paths)
    chunk_cfg = asdict(chunking)
    manifest = _check_compatible(None if rebuild else live, embedder, chunk_cfg, store.spec)
    with store.writer(manifest=manifest, rebuild=rebuild, lock_timeout=lock_timeout) as writer:
        base = writer.base
        if base is not None:  # the live version may have changed while we waited for the lock
            _check_compatible(base.manifest, embedder, chunk_cfg, store.spec)
        same_chunking = base is not None and base.manifest.chunking == chunk_cfg
        known = base.manifest.files if base else {}

        found = _read_changed(files, known, same_chunking, clock, progress, max_file_bytes)
        skipped = [*corpus.skipped, *found.skipped]
        removed = sorted(s for s in known if s not in files)
        pending = _prepared(found.read, removed, folder_of(store), rebuild, chunking, clock)
        # An index of an older format is upgraded: every file is written anew, its vectors reused.
        reuse = getattr(writer, "reuse", base)
        with clock("embed"):
            vectors, embedded, reused = _embed_pending(pending, reuse, embedder, progress, batch_size)
        with clock("write"):
            for source in removed:
                writer.remove(source)
            for doc, chunks in pending:
                writer.add(doc, chunks, vectors[doc.source], file_info=found.infos.get(doc.source))
            written = base.manifest if base else None
            if writer.changed or base is None or tuple(base.manifest.roots) != roots:
                if progress:
                    progress("write", 0, 1)
                written = writer.commit(roots)
                if progress:
                    progress("write", 1, 1)
        chunks_total = writer.count()
    # After the commit, with the lock released: the new articles are searchable while their sentences are
    # embedded, and a run that stops here leaves them to the next run (or to question time).
    with clock("sentences"):
        docs = {doc.source: doc for doc, _chunks in pending}
        sentences = _embed_sentences(store, written, docs, embedder, chunking, progress, batch_size)
    return IndexReport(
        added=tuple(found.added),
        updated=tuple(found.updated),
        removed=tuple(removed),
        unchanged=tuple(found.unchanged),
        skipped=tuple(skipped),
        notes=tuple(found.notes),
        chunks_embedded=embedded,
        chunks_reused=reused,
        chunks_total=chunks_total,
        sentences_embedded=sentences,
        seconds=time.perf_counter() - started,
        generation=written.generation if written else 0,
        steps={name: round(seconds, 4) for name, seconds in steps.items()},
    )


def without_boilerplate(doc: Document, repeated: frozenset[str]) -> Document:
    """``doc`` without its lines in ``repeated``; its byline's metadata (author, outlets) is taken first."""
    text, dropped = clean_text(doc.text, repeated)
    if not dropped or not text.strip():
        return doc
    return replace(doc, text=text, metadata={**attribution(doc.text), **doc.metadata})


STEPS = ("read", "clean", "names", "chunk", "embed", "write", "sentences")


class _Clock:
    """Adds the seconds spent in each ``with clock(step):`` block to ``steps[step]``."""

    def __init__(self, steps: dict[str, float]) -> None:
        self.steps = steps
        self._step = ""
        self._started = 0.0

    def __call__(self, step: str) -> _Clock:
        self._step = step
        return self

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *_exc) -> None:
        self.steps[self._step] += time.perf_counter() - self._started


def _file_info(path: Path) -> dict | None:
    """Size and modification time of a file, to skip reading it when neither changed."""
    try:
        st = path.stat()
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _same_file(entry: dict | None, info: dict) -> bool:
    return entry is not None and entry.get("size") == info["size"] and entry.get("mtime_ns") == info["mtime_ns"]


def _recorded_roots(store: Store) -> tuple[str, ...]:
    index_dir = getattr(store, "index_dir", None)
    return recorded_roots(index_dir) if index_dir is not None else ()


def _check_compatible(live: Manifest | None, embedder, chunking: dict, where: str) -> Manifest:
    if live is not None:
        if (live.model, live.backend) != (embedder.model_id, embedder.backend):
            raise IndexMismatchError(
                f"{where} was built with model {live.model!r} ({live.backend}), not {embedder.model_id!r} "
                f"({embedder.backend}); use the same --model, or rebuild with `rag index --rebuild`"
            )
        return replace(live, chunking=chunking)
    return Manifest(model=embedder.model_id, dim=embedder.dim, backend=embedder.backend, chunking=chunking)


def _embed_sentences(
    store: Store,
    manifest: Manifest | None,
    written: dict[str, Document],
    embedder,
    chunking: ChunkingConfig,
    progress: Progress | None,
    batch_size: int,
) -> int:
    """Embed the sentences of the index's files, and their capitalised words as queries, where no vector is
    stored yet; how many texts were embedded.

    The sentences are the ones the answerer cuts (:func:`~embeddings.chunking.split_sentences` with the
    index's ``max_chars``); the words are the ones its name checks compare a question's names with
    (:meth:`rag.answering.ground.Gates._name_in`). A file version is marked done once its vectors are
    stored, so a run that stopped, an index written before the file existed, or a file made for another
    model is caught up by the next run. ``manifest``: the version this run left live; ``written``: the
    documents this run wrote (the others are read from the index). A store without a local folder
    (Milvus) keeps none: its answers embed them.
    """
    folder = folder_of(store)
    if folder is None or manifest is None:
        return 0
    vectors = SentenceVectors(folder, model_key(embedder.model_id, embedder.backend, embedder.dim), writable=True)
    files = {source: str(info.get("sha256", "")) for source, info in manifest.files.items()}
    done = vectors.done()
    todo = [source for source, sha in files.items() if done.get(source) != sha]
    vectors.mark_done((), forget=[source for source in done if source not in files])
    view = None
    embedded = 0
    if progress and todo:
        progress("sentences", 0, len(todo))
    for n, group in enumerate(_batches(todo, 32), start=1):
        docs = []
        for source in group:
            doc = written.get(source)
            if doc is None:
                view = view or store.view()
                doc = view.documents.get(source)
            if doc is not None:
                docs.append(doc)
        embedded += _store_vectors(docs, vectors, embedder, chunking, batch_size)
        vectors.mark_done((s, files[s]) for s in group)
        if progress:
            progress("sentences", min(n * 32, len(todo)), len(todo))
    return embedded


def _store_vectors(
    docs: Sequence[Document], vectors: SentenceVectors, embedder, chunking: ChunkingConfig, batch_size: int
) -> int:
    """Embed and store the sentences and words of ``docs`` that have no vector yet; how many."""
    texts = [d.text[a:b] for d in docs for a, b in split_sentences(d.text, max_chars=chunking.max_chars)]
    if hasattr(embedder, "embed_queries"):  # an embedder for documents only (a test's) skips the words
        texts += [as_query(w) for d in docs for w in name_like_words(d)]
    todo = vectors.missing(t for t in texts if t.strip())
    for batch in _batches(todo, batch_size):
        queries = [t for t in batch if t.startswith(QUERY)]
        documents = [t for t in batch if not t.startswith(QUERY)]
        if documents:
            vectors.put(documents, embedder.embed_documents(documents))
        if queries:
            vectors.put(queries, embedder.embed_queries([q[len(QUERY) :] for q in queries]))
    return len(todo)


def name_like_words(doc: Document) -> list[str]:
    """The capitalised words of ``doc`` and its names, with a genitive's plain form ("Russlands" -> "Russland")."""
    found = list(dict.fromkeys([*capitalised_words(doc.text), *document_names(doc)]))
    return list(dict.fromkeys([*found, *plain_genitives(found)]))


def _embed_pending(pending, base: StoreView | None, embedder, progress, batch_size):
    """Vectors for every pending chunk, reusing stored vectors of identical texts."""
    stored: dict[str, int] = {}
    if base is not None:
        stored = base.ids_with_text(c.text_hash for _doc, chunks in pending for c in chunks)
    todo: dict[str, str] = {}  # text hash -> text, each distinct text once
    for _doc, chunks in pending:
        for chunk in chunks:
            if chunk.text_hash not in stored:
                todo.setdefault(chunk.text_hash, chunk.text)
    fresh: dict[str, np.ndarray] = {}
    hashes = list(todo)
    done = 0
    if progress:
        progress("embed", 0, len(hashes))
    for batch in _batches(hashes, batch_size):
        for h, vec in zip(batch, embedder.embed_documents([todo[h] for h in batch])):
            fresh[h] = vec
        done += len(batch)
        if progress:
            progress("embed", done, len(hashes))
    reuse_hashes = {c.text_hash for _d, chunks in pending for c in chunks if c.text_hash in stored}
    reused_vecs = (
        dict(zip(reuse_hashes, base.vectors([stored[h] for h in reuse_hashes])))
        if reuse_hashes and base is not None
        else {}
    )
    out, reused = {}, 0
    for doc, chunks in pending:
        rows = []
        for chunk in chunks:
            if chunk.text_hash in fresh:
                rows.append(fresh[chunk.text_hash])
            else:
                rows.append(reused_vecs[chunk.text_hash])
                reused += 1
        out[doc.source] = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, 1), np.float32)
    return out, len(fresh), reused

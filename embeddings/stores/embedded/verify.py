"""A deep check of an index folder: does it load, and do vectors, chunks, documents and manifest agree?

Loading (:meth:`~embeddings.stores.embedded.store.EmbeddedStore.view`) already refuses damaged files
(checksums) and gross inconsistencies. This goes further, for ``rag check``,
the crash trials and the tests: every vector id has a chunk and every chunk
a vector, no chunk is stored twice, every article in the manifest has its
chunks, and the vectors are unit length. It also lists what dead writers
left behind (harmless: the next write removes it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.stores.embedded.faiss_index import is_approximate
from embeddings.stores.embedded.generations import current_generation
from embeddings.stores.embedded.segments import check_chunk
from embeddings.stores.embedded.store import open_snapshot
from embeddings.stores.manifest import REBUILD_HINT, IndexMismatchError, StoreError

#: Vectors whose norms are checked (all of them in indexes up to this size, a sample beyond).
NORM_SAMPLE = 20_000


@dataclass(frozen=True)
class IndexCheck:
    """What :func:`check_index` found. ``problems`` empty means the index is sound."""

    index_dir: str
    generation: int
    files: int
    chunks: int
    problems: tuple[str, ...]
    leftovers: tuple[str, ...] = ()  # folders of writers that died; removed by the next write
    loaded: bool = True  # False: the index could not even be opened (``problems`` says why)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: ``index OK: generation 3, 5 files, 67 chunks`` or the problems."""
        if not self.loaded:
            return self.problems[0]  # the store's own message names the file and how to rebuild
        if self.problems:
            return f"index {self.index_dir} is damaged: {'; '.join(self.problems)}; {REBUILD_HINT}"
        left = f" ({len(self.leftovers)} leftovers of interrupted writes)" if self.leftovers else ""
        return f"index OK: generation {self.generation}, {self.files} files, {self.chunks} chunks{left}"


def faiss_ids(index) -> np.ndarray:
    """Every id stored in a FAISS index of the store (flat ``IndexIDMap2`` or IVF), in storage order."""
    import faiss

    if is_approximate(index):
        ivf = faiss.extract_index_ivf(index)
        lists = ivf.invlists
        if lists is None:  # an IVF index always has its lists; a damaged file may not
            return np.zeros(0, np.int64)
        parts = []
        for n in range(ivf.nlist):
            size = lists.list_size(n)
            if size:
                parts.append(faiss.rev_swig_ptr(lists.get_ids(n), size).copy())
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return faiss.vector_to_array(index.id_map).astype(np.int64)


def check_index(index_dir: Path, *, load_model: bool = False, cache_dir: Path | None = None) -> IndexCheck:
    """Check the live generation of ``index_dir`` (see the module docstring); never raises for a bad index.

    Args:
        load_model: also load the model the manifest names and compare its dimension
            (what answering a question needs; takes a few seconds).
        cache_dir: where the default model is converted to.
    """
    index_dir = Path(index_dir)
    leftovers = _leftovers(index_dir)
    try:
        view = open_snapshot(index_dir)
    except StoreError as exc:
        return IndexCheck(str(index_dir), 0, 0, 0, (str(exc),), leftovers, loaded=False)
    problems: list[str] = []
    per_source: Counter = Counter()
    places: Counter = Counter()
    for seg in view.segments:
        ids = faiss_ids(seg.index)
        counts = Counter(ids.tolist())
        twice = [i for i, c in counts.items() if c > 1]
        if twice:
            problems.append(f"{seg.name}: {len(twice)} vector ids stored more than once (e.g. {twice[0]})")
        try:
            rows = list(seg.all_rows())
            dead = set(seg.entry.deleted)
            for row in rows:
                if row.id in dead or view.manifest.files.get(row.source, {}).get("segment") != seg.name:
                    continue
                check_chunk(row, seg.document(row.source), seg.folder)
                per_source[row.source] += 1
                places[(row.source, row.start, row.end)] += 1
        except StoreError as exc:
            problems.append(str(exc))
            continue
        row_ids = {r.id for r in rows}
        if set(counts) - row_ids:
            problems.append(f"{seg.name}: {len(set(counts) - row_ids)} vectors without a chunk")
        if row_ids - set(counts):
            problems.append(f"{seg.name}: {len(row_ids - set(counts))} chunks without a vector")
        if row_ids != set(seg.ids.tolist()):
            problems.append(f"{seg.name}: the BM25 rows and the chunks differ")
        sample = seg.ids if len(seg.ids) <= NORM_SAMPLE else np.random.default_rng(0).choice(seg.ids, NORM_SAMPLE)
        norms = np.linalg.norm(seg.vectors(sample), axis=1) if len(sample) else np.ones(0)
        if len(norms) and not np.allclose(norms, 1.0, atol=1e-3):
            problems.append(
                f"{seg.name}: {int(np.sum(~np.isclose(norms, 1.0, atol=1e-3)))} vectors are not unit length"
            )
    repeated = [p for p, c in places.items() if c > 1]
    if repeated:
        problems.append(f"{len(repeated)} chunks stored more than once (e.g. {repeated[0][0]} {repeated[0][1:]})")
    for source, entry in sorted(view.manifest.files.items()):
        if per_source.get(source, 0) != entry.get("chunks"):
            problems.append(f"{source}: manifest says {entry.get('chunks')} chunks, index has {per_source[source]}")
            break
    if load_model:
        problems += _model_problems(view.manifest, cache_dir)
    chunks = sum(per_source.values())
    return IndexCheck(str(index_dir), view.generation, len(view.manifest.files), chunks, tuple(problems), leftovers)


def _model_problems(manifest, cache_dir: Path | None) -> list[str]:
    try:
        manifest_model(manifest, cache_dir)
    except IndexMismatchError as exc:
        return [str(exc)]
    return []


def manifest_model(manifest, cache_dir: Path | None):
    """The :class:`~embeddings.model.encoder.Embedder` an index was built with, loaded and checked.

    Raises:
        IndexMismatchError: the model cannot be loaded here, or makes vectors of another dimension.
    """
    from embeddings.model.encoder import ModelError, load_embedder

    try:
        embedder = load_embedder(manifest.model, cache_dir=cache_dir, backend=manifest.backend)
        dim = embedder.dim
    except ModelError as exc:
        raise IndexMismatchError(
            f"its model {manifest.model!r} ({manifest.backend}) cannot be loaded here ({exc})"
        ) from exc
    if dim != manifest.dim:
        raise IndexMismatchError(
            f"its model {manifest.model!r} makes {dim}-dimensional vectors, the index holds {manifest.dim}"
        )
    return embedder


def _leftovers(index_dir: Path) -> tuple[str, ...]:
    try:
        live = current_generation(index_dir)
    except StoreError:
        live = None
    out = [p.name for p in index_dir.glob(".tmp-*")]
    if live is not None:
        out += [p.name for p in index_dir.glob("gen-*") if p.name > live]
    if (index_dir / "CURRENT.tmp").exists():
        out.append("CURRENT.tmp")
    return tuple(sorted(out))

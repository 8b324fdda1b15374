"""Stores side by side: ingest, a one-file update and per-question retrieval at a given size.

    .venv/bin/python scripts/bench.py --store milvus:bench-out/news.db [--chunks 200000]
    .venv/bin/python scripts/bench_store.py --store bench-out/embedded --store milvus:bench-out/news.db

Each store runs in its own process on the same synthetic corpus: documents of ten chunks
cut from the seed articles' sentences (so BM25 sees German text), with unit vectors drawn
from a clustered mixture (no model: the embedding time is the same for every store and is
measured by ``bench.py``). Measured per store, through the store interface only:

* ingest: one writer adds every document and commits (a full build);
* update: one document of ten chunks replaced and committed (what ``rag index`` does for one
  changed file, minus reading and embedding it), and the first question after it (the reader
  switches to the new version);
* question p50/p95: what one ``Engine.ask`` asks of the store (the version check, dense and
  BM25 top 50, the IDF of each question term, the chunks of the fused top 10, the other
  chunks and vectors of the two best documents), one question at a time;
* ``ask`` p50/p95: the whole ``Engine.ask`` over the store (the real model embeds the question
  and the candidate sentences; sentence selection and grounding included) on the questions
  of ``eval/dev.jsonl`` and ``eval/dev2.jsonl``, two rounds as in ``bench.py``. The stored
  vectors are mixture draws, so the answers mean nothing; the work per question is real.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.machine import machine, percentiles  # noqa: E402

DIM = 384  # multilingual-e5-small
CHUNKS_PER_DOC = 10
CHUNK_CHARS = 600
QUESTIONS = 200


def sentences() -> list[str]:
    """The sentences of the seed articles (the raw material of the synthetic corpus)."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt")))
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 20]


def synthetic_documents(n_docs: int, seed: int = 0):
    """``(Document, chunks)`` pairs: ten chunks of ~600 characters of shuffled seed sentences each."""
    from embeddings import Chunk, Document

    pool = sentences()
    rng = np.random.default_rng(seed)
    for d in range(n_docs):
        source = f"synthetic/{d:07d}.txt"
        parts = []
        for c in range(CHUNKS_PER_DOC):
            picked, size = [f"Dokument {d} Abschnitt {c}."], 0
            while size < CHUNK_CHARS:
                s = pool[int(rng.integers(len(pool)))]
                picked.append(s)
                size += len(s) + 1
            parts.append(" ".join(picked))
        text = "\n\n".join(parts)
        # names as the indexer stores them (embeddings.language.entities.with_names), so no store recomputes them
        doc = Document(source, text, f"Dokument {d}", f"{d:064x}", metadata={"names": f"Dokument {d}|Peking|Moskau"})
        chunks, start = [], 0
        for part in parts:
            chunks.append(Chunk(source, doc.title, start, start + len(part), part))
            start += len(part) + 2
        yield doc, chunks


def mixture():
    from scripts.workload import Mixture

    return Mixture.clustered(clusters=256, dim=DIM)


def fuse(rankings: list[list[int]], k: int = 60) -> list[int]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, i in enumerate(ranking):
            scores[i] = scores.get(i, 0.0) + 1 / (k + rank + 1)
    return sorted(scores, key=lambda i: (-scores[i], i))


def one_question(store, state: dict, question: str, vector: np.ndarray) -> None:
    """The store traffic of one ``Engine.ask``."""
    from embeddings.language.analysis import terms

    version = store.version()
    if state.get("version") != version:
        state["view"], state["version"] = store.view(), version
        state["view"].parts()
    view = state["view"]
    q = terms(question)
    dense = [i for i, _ in view.dense_search(vector, 50)]
    lexical = [i for i, _ in view.lexical_search(q, 50)]
    for t in q:
        view.idf(t)
    best = fuse([dense, lexical])[:10]
    chunks = [view.chunk(i) for i in best]
    for source in list(dict.fromkeys(c.source for c in chunks))[:2]:
        view.vectors(view.ids_of(source))


def worker(spec: str, n_chunks: int) -> dict:
    from embeddings import Embedder, Manifest
    from embeddings.stores.spec import open_store

    n_docs = max(1, n_chunks // CHUNKS_PER_DOC)
    mix = mixture()
    store = open_store(spec)
    model = Embedder()  # its identity is the index's, so that Engine.ask runs with the real model
    manifest = Manifest(model=model.model_id, dim=DIM, backend=model.backend)
    out: dict = {"store": spec, "chunks": n_docs * CHUNKS_PER_DOC}

    corpus = list(synthetic_documents(n_docs))
    vectors = mix.sample(n_docs * CHUNKS_PER_DOC, seed=1).reshape(n_docs, CHUNKS_PER_DOC, DIM)
    started = time.perf_counter()
    with store.writer(manifest=manifest, rebuild=True) as w:
        for (doc, chunks), v in zip(corpus, vectors):
            w.add(doc, chunks, v)
        w.commit(("/synthetic",))
    out["ingest_s"] = round(time.perf_counter() - started, 2)
    del corpus, vectors

    started = time.perf_counter()
    view = store.view()
    view.parts()
    out["first_view_s"] = round(time.perf_counter() - started, 3)

    pool = sentences()
    rng = np.random.default_rng(99)
    questions = [pool[int(rng.integers(len(pool)))] for _ in range(QUESTIONS)]
    vectors = mix.sample(QUESTIONS, seed=10**6)
    state: dict = {}
    one_question(store, state, questions[0], vectors[0])  # warm-up
    times = []
    for q, v in zip(questions, vectors):
        t = time.perf_counter()
        one_question(store, state, q, v)
        times.append(time.perf_counter() - t)
    out["question_p50_ms"], out["question_p95_ms"] = percentiles(times)
    out["ask_p50_ms"], out["ask_p95_ms"] = _asks(store, model)

    doc, chunks = next(synthetic_documents(1, seed=7))
    started = time.perf_counter()
    with store.writer(manifest=store.manifest()) as w:
        w.add(doc, chunks, mix.sample(len(chunks), seed=7))
        w.commit(("/synthetic",))
    out["update_s"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    one_question(store, state, questions[0], vectors[0])
    out["first_question_after_update_s"] = round(time.perf_counter() - started, 3)
    out["peak_rss_mib"] = round(_peak_rss_mib(), 1)
    close = getattr(store, "close", None)
    if close:
        close()
    return out


def _asks(store, model) -> tuple[float, float]:
    """p50/p95 of the whole ``Engine.ask`` over ``store`` on the dev questions, two rounds."""
    from rag import Engine
    from scripts.workload import dev_questions, timed_rounds

    questions = dev_questions("dev.jsonl", "dev2.jsonl")
    engine = Engine(store=store, embedder=model)
    engine.ask(questions[0])  # loads the view and the model's first run
    return percentiles(timed_rounds(engine, questions))


def _peak_rss_mib() -> float:
    """Peak RSS of this process and (for Milvus Lite) its server processes."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = 0.0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"PPid:\t{os.getpid()}\n" in text:
            hwm = re.search(r"VmHWM:\s+(\d+)", text)
            children += int(hwm.group(1)) / 1024 if hwm else 0
    return own + children


def run(specs: list[str], n_chunks: int) -> list[dict]:
    """Each store in its own process (its own memory), one after the other."""
    results = []
    for spec in specs:
        path = spec.removeprefix("milvus:")
        if not spec.startswith("milvus://"):
            target = Path(path)
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--worker", spec, "--chunks", str(n_chunks)]
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode:
            errors = [line for line in done.stderr.splitlines() if "Error" in line or "Exception" in line]
            results.append({"store": spec, "error": errors[-1:] or done.stderr.strip().splitlines()[-1:]})
        else:
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def table(results: list[dict]) -> str:
    keys = [
        ("chunks", "chunks"),
        ("ingest_s", "ingest (s)"),
        ("first_view_s", "open a view (s)"),
        ("question_p50_ms", "store traffic of a question p50 (ms)"),
        ("question_p95_ms", "store traffic of a question p95 (ms)"),
        ("ask_p50_ms", "`Engine.ask` p50 (ms)"),
        ("ask_p95_ms", "`Engine.ask` p95 (ms)"),
        ("update_s", "one-file update (s)"),
        ("first_question_after_update_s", "first question after it (s)"),
        ("peak_rss_mib", "peak RSS (MiB)"),
    ]
    lines = ["| | " + " | ".join(r["store"] for r in results) + " |", "|---" * (len(results) + 1) + "|"]
    for key, label in keys:
        lines.append(f"| {label} | " + " | ".join(str(r.get(key, r.get("error", ""))) for r in results) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", default=[], help="a store spec (repeat to compare)")
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.chunks)))
        return 0
    if not args.store:
        parser.error("give at least one --store")
    args.out.mkdir(parents=True, exist_ok=True)
    results = run(args.store, args.chunks)
    report = f"{machine()}\n\n{table(results)}\n"
    (args.out / "bench-stores.md").write_text(report, encoding="utf-8")
    (args.out / "bench-stores.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(report)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

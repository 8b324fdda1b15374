"""Benchmark this project against the pipeline most users would write instead, in one run.

    .venv/bin/python scripts/bench.py [--quick] [--out bench-out] [--backend onnx-int8]

Writes ``bench-results.json`` and ``bench-results.md`` (into the current folder and ``--out``).
Four parts, each timed on this machine in the same run (compare ratios, not absolute times):

1. Ingestion of Debian's German man pages (``manpages-de``, installed with apt-get if
   missing, rendered with ``man``): this project (``index_paths``) against
   ``RecursiveCharacterTextSplitter(1000, 200)`` + ``HuggingFaceEmbeddings`` +
   ``FAISS.from_documents`` on the same model folder. Each runs in its own process, so
   its peak RSS is its own.
2. One changed file in that corpus (>= 1,000 files): this project's re-index against a
   full rebuild (what the baseline must do; its time is the baseline's ingestion time).
3. Dense retrieval p50/p95 (one query at a time) and recall@10 against exact search,
   exact (flat) and the store's IVF index, on two kinds of synthetic unit vectors: *embedding-like*
   (a mixture fitted to the real vectors of part 1: their k-means centres and within-cluster
   spread, so as anisotropic as e5's: random pairs at cosine ~0.83) and *clustered* (isotropic
   clusters of ~100). Queries are fresh draws from the same distribution, never stored.
4. ``Engine.ask`` p50/p95 on the questions of ``eval/dev.jsonl`` over ``seeds/``, and
   cold start: ``rag ask`` from process start to printed answer.

``--store milvus:PATH`` runs instead the store comparison of ``scripts/bench_store.py``: ingest,
one-file update and per-question store traffic at ``--chunks`` (200,000) synthetic chunks, the
embedded store and the given one side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.machine import machine, percentiles  # noqa: E402  (one rule for every measurement)

MAN_ROOT = Path("/usr/share/man/de")
OVERSTRIKE = re.compile(r".\x08")


# ----------------------------------------------------------------------------- pure helpers


def strip_overstrike(text: str) -> str:
    """Remove groff's bold/underline overstrikes (``X\\bX``, ``_\\bX``) and escape sequences.

    >>> strip_overstrike("N\\bNA\\bAM\\bME\\bE _\\bx")
    'NAME x'
    """
    return re.sub(r"\x1b\[[0-9;]*m", "", OVERSTRIKE.sub("", text))


def head_chars(text: str, limit: int) -> str:
    """The first lines of ``text`` up to ``limit`` characters (whole lines; at least one).

    >>> head_chars("aa\\nbb\\ncc\\n", 6)
    'aa\\nbb\\n'
    """
    out, size = [], 0
    for line in text.splitlines(keepends=True):
        if out and size + len(line) > limit:
            break
        out.append(line)
        size += len(line)
    return "".join(out)


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact top-k ids that were found.

    >>> recall_at_k(np.array([[1, 2], [3, 4]]), np.array([[2, 1], [3, 5]]))
    0.75
    """
    k = exact.shape[1]
    return float(np.mean([len(set(f.tolist()) & set(e.tolist())) / k for f, e in zip(found, exact)]))


class Mixture:
    """A Gaussian mixture on the unit sphere: draws are ``centre + noise @ spread.T``, normalised.

    >>> m = Mixture.clustered(clusters=10, dim=8)
    >>> v = m.sample(1000, seed=1)
    >>> v.shape, bool(np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5))
    ((1000, 8), True)
    """

    def __init__(self, centres: np.ndarray, weights: np.ndarray, spread: np.ndarray) -> None:
        self.centres = np.ascontiguousarray(centres, dtype=np.float32)
        self.weights = weights / weights.sum()
        self.spread = np.ascontiguousarray(spread, dtype=np.float32)

    @classmethod
    def clustered(cls, clusters: int, dim: int, noise: float = 0.6, seed: int = 0) -> Mixture:
        """Isotropic clusters around random centres (cosine to the centre about 0.86 for ``noise=0.6``)."""
        centres = np.random.default_rng(seed).standard_normal((clusters, dim))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        return cls(centres, np.ones(clusters), np.eye(dim) * (noise / np.sqrt(dim)))

    @classmethod
    def fitted(cls, real: np.ndarray, clusters: int = 128, seed: int = 0) -> Mixture:
        """Fitted to real embeddings: their k-means centres and weights, and the covariance of what is
        left within the clusters. Its vectors are as anisotropic as the real ones (the same mean cosine
        of random pairs); neighbours are a little less distinct than in real text, so it is if anything
        harder for an approximate index."""
        import faiss

        real = np.ascontiguousarray(real, dtype=np.float32)
        clusters = max(2, min(clusters, len(real) // 40))  # k-means wants ~40 points per centre
        kmeans = faiss.Kmeans(real.shape[1], clusters, niter=20, seed=seed)
        kmeans.train(real)
        assigned = kmeans.index.search(real, 1)[1][:, 0]
        residual = real - kmeans.centroids[assigned]
        values, vectors = np.linalg.eigh(np.cov(residual.T))
        spread = vectors * np.sqrt(np.clip(values, 0, None))
        return cls(kmeans.centroids, np.bincount(assigned, minlength=clusters).astype(np.float64), spread)

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        dim = self.centres.shape[1]
        out = np.empty((n, dim), np.float32)
        for start in range(0, n, 100_000):
            m = min(100_000, n - start)
            x = self.centres[rng.choice(len(self.centres), m, p=self.weights)]
            x = x + rng.standard_normal((m, dim)).astype(np.float32) @ self.spread.T
            out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out


def markdown_table(results: dict) -> str:
    """The results as a Markdown table: metric, this project, baseline / reference, ratio."""
    r = results
    rows = [
        ("metric", "news-rag", "baseline / reference", "ratio"),
        ("---", "---", "---", "---"),
        (
            f"ingest chunks/s ({r['corpus_files']} man pages)",
            f"{r['ingest_chunks_per_s']:.1f} ({r['ingest_chunks']} chunks)",
            f"{r['baseline_ingest_chunks_per_s']:.1f} ({r['baseline_chunks']} chunks)",
            f"{r['ingest_chunks_per_s'] / r['baseline_ingest_chunks_per_s']:.2f}x",
        ),
        (
            "ingest characters/s (same text)",
            f"{r['ingest_chars_per_s']:.0f}",
            f"{r['baseline_ingest_chars_per_s']:.0f}",
            f"{r['ingest_chars_per_s'] / r['baseline_ingest_chars_per_s']:.2f}x",
        ),
        (
            "ingest peak RSS (MiB)",
            f"{r['ingest_peak_mib']:.0f}",
            f"{r['baseline_ingest_peak_mib']:.0f}",
            f"{r['ingest_peak_mib'] / r['baseline_ingest_peak_mib']:.2f}x",
        ),
        (
            f"one changed file of {r['corpus_files']}: update vs full rebuild (s)",
            f"{r['update_seconds']:.2f}",
            f"{r['rebuild_seconds']:.1f}",
            f"{r['rebuild_seconds'] / r['update_seconds']:.0f}x faster",
        ),
    ]
    for size in r["retrieval"]:
        rows.append(
            (
                f"retrieval p50 / p95 ms, recall@10 at {size['vectors']:,} {size.get('data', '')} vectors",
                f"{size['kind']}: {size['p50_ms']:.2f} / {size['p95_ms']:.2f}, {size['recall_at_10']:.3f}",
                f"exact: {size['exact_p50_ms']:.2f} / {size['exact_p95_ms']:.2f}, 1.000",
                f"{size['exact_p50_ms'] / size['p50_ms']:.1f}x faster",
            )
        )
    rows.append(
        (
            f"`ask` p50 / p95 ms ({r['ask_questions']} questions)",
            f"{r['ask_p50_ms']:.0f} / {r['ask_p95_ms']:.0f}",
            "",
            "",
        )
    )
    rows.append(("cold start: `rag ask` to first answer (s)", f"{r['cold_start_s']:.2f}", "", ""))
    return "\n".join("| " + " | ".join(row) + " |" for row in rows) + "\n"


# ----------------------------------------------------------------------------- corpus


def ensure_manpages() -> list[Path]:
    """The compressed German man pages, installing ``manpages-de`` with apt-get if missing."""
    pages = sorted(MAN_ROOT.glob("man*/*.gz"))
    if len(pages) < 1000:  # other packages bring a few German pages; manpages-de brings over 1,000
        print("bench: installing manpages-de with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "man-db", "manpages-de"], check=True, env=env)
        pages = sorted(MAN_ROOT.glob("man*/*.gz"))
    if not shutil.which("man"):
        raise SystemExit("bench: `man` is missing; apt-get install man-db")
    return pages


def render(page: Path) -> str:
    """A man page as plain UTF-8 text (``man -l``, no overstrikes)."""
    env = {**os.environ, "MANWIDTH": "100", "MAN_KEEP_FORMATTING": "", "LANG": "C.UTF-8"}
    done = subprocess.run(["man", "-E", "UTF-8", "-l", str(page)], capture_output=True, env=env, timeout=60)
    return strip_overstrike(done.stdout.decode("utf-8", errors="replace"))


def prepare_corpus(out: Path, files: int, chars: int) -> Path:
    """``files`` rendered man pages, each cut to its first ``chars`` characters, as .txt (cached in ``out``)."""
    target = out / f"manpages-{files}x{chars}"
    if (target / ".done").exists():
        return target
    pages = ensure_manpages()
    if len(pages) < files:
        raise SystemExit(f"bench: only {len(pages)} German man pages, {files} needed")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=4) as pool:
        texts = list(pool.map(render, pages))
    written = 0
    for page, text in zip(pages, texts):
        text = head_chars(text.strip() + "\n", chars)
        if len(text) < 200:
            continue
        (target / f"{page.parent.name}-{page.name.removesuffix('.gz')}.txt").write_text(text, encoding="utf-8")
        written += 1
        if written == files:
            break
    (target / ".done").write_text(str(written))
    return target


# ----------------------------------------------------------------------------- workers (own process each)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_ingest_project(args) -> dict:
    from embeddings import Embedder, index_paths

    embedder = Embedder(cache_dir=args.cache_dir, backend=args.backend)
    embedder.embed_documents(["warm-up"])  # model load (and a one-off ONNX build) is not ingestion
    report = index_paths([args.corpus], args.index, embedder, rebuild=True)
    chars = sum(len(p.read_text(encoding="utf-8")) for p in args.corpus.glob("*.txt"))
    # Part 2: change one file (append a paragraph), re-index, put it back.
    victim = sorted(args.corpus.glob("*.txt"))[len(report.added) // 2]
    original = victim.read_bytes()
    victim.write_text(original.decode() + "\nNachtrag: Diese Seite wurde für den Benchmark geändert.\n")
    try:
        update = index_paths([args.corpus], args.index, embedder)
    finally:
        victim.write_bytes(original)
    from embeddings import open_snapshot

    view = open_snapshot(args.index)
    ids = [i for source in view.manifest.files for i in view.ids_of(source)]
    np.save(args.index / "vectors.npy", view.vectors(ids))  # the real vectors part 3 is fitted to
    return {
        "seconds": report.seconds,
        "chunks": report.chunks_total,
        "files": len(report.added),
        "chars": chars,
        "peak_mib": peak_mib(),
        "update_seconds": update.seconds,
        "update_embedded": update.chunks_embedded,
    }


def worker_ingest_baseline(args) -> dict:
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from embeddings.encoder import resolve_model

    embeddings = HuggingFaceEmbeddings(model_name=resolve_model("multilingual-e5-small", args.cache_dir))
    embeddings.embed_documents(["warm-up"])
    started = time.perf_counter()
    docs = [
        Document(page_content=p.read_text(encoding="utf-8"), metadata={"source": p.name})
        for p in sorted(args.corpus.glob("*.txt"))
    ]
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    store = FAISS.from_documents(chunks, embeddings)
    store.save_local(str(args.index))
    seconds = time.perf_counter() - started
    chars = sum(len(d.page_content) for d in docs)
    return {"seconds": seconds, "chunks": len(chunks), "files": len(docs), "chars": chars, "peak_mib": peak_mib()}


def dev_questions(*names: str) -> list[str]:
    """The questions of the dev sets ``eval/<name>``, in file order."""
    out = []
    for name in names:
        for line in (ROOT / "eval" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line)["question"])
    return out


def timed_rounds(engine, questions: list[str], rounds: int = 2) -> list[float]:
    """Seconds of each ``engine.ask``, one question at a time, ``rounds`` times over ``questions``.

    The second round sees memoised sentence vectors, as a running service does.
    """
    times = []
    for _round in range(rounds):
        for q in questions:
            t = time.perf_counter()
            engine.ask(q)
            times.append(time.perf_counter() - t)
    return times


def worker_ask(args) -> dict:
    from embeddings import Embedder, index_paths
    from rag import Engine

    questions = dev_questions("dev.jsonl")
    index_paths([ROOT / "seeds"], args.index, Embedder(cache_dir=args.cache_dir, backend=args.backend), rebuild=True)
    engine = Engine(args.index, cache_dir=args.cache_dir)
    engine.ask("warm-up")
    times = timed_rounds(engine, questions)
    p50, p95 = percentiles(times)
    return {
        "p50_ms": p50,
        "p95_ms": p95,
        "questions": len(questions),
        "first_round_p50_ms": percentiles(times[: len(questions)])[0],
    }


WORKERS = {"ingest-project": worker_ingest_project, "ingest-baseline": worker_ingest_baseline, "ask": worker_ask}


def run_worker(name: str, **kwargs) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name]
    for key, value in kwargs.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"bench: worker {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- parts run in the parent


def bench_retrieval(sizes: list[int], real: np.ndarray, queries: int = 200) -> list[dict]:
    """Latency and recall@10 of exact and IVF search at each size, on both synthetic distributions."""
    fitted = Mixture.fitted(real)
    out = []
    for n in sizes:
        out.append(_bench_one("embedding-like", fitted, n, queries))
        # ~100 vectors per cluster at every size (a cluster is a story told in many chunks)
        out.append(_bench_one("clustered", Mixture.clustered(max(1, n // 100), real.shape[1], seed=n), n, queries))
    return out


def _timed_search(index, queries: np.ndarray) -> tuple[list[float], np.ndarray]:
    """One query at a time, as a question arrives: the latency of each, and the ids found."""
    latencies, found = [], []
    for row in queries:
        t = time.perf_counter()
        found.append(index.search(row[None], 10)[1][0])
        latencies.append(time.perf_counter() - t)
    return latencies, np.vstack(found)


def _bench_one(data: str, mixture: Mixture, n: int, queries: int) -> dict:
    """One size of one distribution: the store's index against exact search."""
    import faiss

    from embeddings.faiss_index import build_faiss_index, is_approximate

    vectors = mixture.sample(n, seed=n)
    q = mixture.sample(queries, seed=n + 1)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    truth = exact.search(q, 10)[1]
    built = time.perf_counter()
    index = build_faiss_index(vectors, np.arange(n, dtype=np.int64))
    build_s = time.perf_counter() - built
    latencies, found = _timed_search(index, q)
    exact_latencies, _ = _timed_search(exact, q[:50])
    p50, p95 = percentiles(latencies)
    ep50, ep95 = percentiles(exact_latencies)
    kind = f"IVF nprobe {faiss.downcast_index(index).nprobe}/{index.nlist}" if is_approximate(index) else "flat"
    result = {
        "data": data,
        "vectors": n,
        "kind": kind,
        "p50_ms": p50,
        "p95_ms": p95,
        "recall_at_10": round(recall_at_k(found, truth), 4),
        "exact_p50_ms": ep50,
        "exact_p95_ms": ep95,
        "build_s": round(build_s, 2),
    }
    print(f"bench: retrieval {result}", file=sys.stderr)
    return result


def cold_start(index: Path, cache_dir: Path | None, question: str) -> float:
    env = {**os.environ, "RAG_INDEX_DIR": str(index)}
    if cache_dir:
        env["RAG_CACHE_DIR"] = str(cache_dir)
    rag = Path(sys.executable).with_name("rag")
    t = time.perf_counter()
    subprocess.run([str(rag), "ask", question], check=True, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - t


def scale_table(r: dict) -> str:
    """The --scale results as a Markdown table, each figure beside its target."""
    rows = [
        ("chunks in the index", f"{r['chunks']:,}", ""),
        ("files", f"{r['files']:,}", ""),
        ("`Engine.ask` p50 / p95 (ms)", f"{r['ask_p50_ms']:.0f} / {r['ask_p95_ms']:.0f}", "≤ 100 / ≤ 300"),
        (
            "first round p50 / p95 (ms): sentences new to the process",
            f"{r['ask_first_round_p50_ms']:.0f} / {r['ask_first_round_p95_ms']:.0f}",
            "",
        ),
        (
            "second round p50 / p95 (ms): sentence vectors memoised",
            f"{r['ask_second_round_p50_ms']:.0f} / {r['ask_second_round_p95_ms']:.0f}",
            "",
        ),
        ("chat process RSS after loading (MiB)", f"{r['rss_loaded_mib']:.0f}", "≤ 3,072"),
        ("peak RSS of the chat process (MiB)", f"{r['rss_peak_mib']:.0f}", ""),
        ("open: process start to first answer (s)", f"{r['open_seconds']:.1f}", "≤ 10"),
        ("update one changed file (s)", f"{r['update_seconds']:.2f}", "≤ 2"),
        ("chunks embedded by that update", str(r["update_embedded"]), ""),
        ("first answer after the update (ms)", f"{r['answer_after_update_ms']:.0f}", ""),
        ("the reader sees the update", "yes" if r["sees_update"] else "NO", "yes"),
        ("building the index (s)", f"{r['index_seconds']:.0f}", ""),
        ("index on disk (GiB)", f"{r['index_bytes'] / 2**30:.2f}", ""),
    ]
    lines = ["| measure | measured | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines) + f"\n\nMachine: {r['machine']}\n"


def scale_main(args) -> int:
    from scripts import scale

    results = scale.run(args.out, args.chunks, args.cache_dir, args.backend)
    table = scale_table(results)
    for folder in {Path.cwd(), args.out}:
        (folder / "bench-scale-results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        (folder / "bench-scale-results.md").write_text(table, encoding="utf-8")
    print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced run: 1,000 files, 100k vectors (< 10 min)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out", help="work folder (default: bench-out/)")
    parser.add_argument("--backend", default=os.environ.get("RAG_BACKEND") or "onnx-int8")
    env_cache = os.environ.get("RAG_CACHE_DIR")
    parser.add_argument("--cache-dir", type=Path, default=Path(env_cache) if env_cache else None)
    parser.add_argument(
        "--scale", action="store_true", help="the whole ask path over --chunks chunks (scripts/scale.py)"
    )
    parser.add_argument(
        "--chunks", type=int, help="size of the --scale index (default 1,000,000) or the --store corpus (200,000)"
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--store",
        help="instead: compare this store (milvus:bench-out/news.db) with the embedded one (scripts/bench_store.py)",
    )
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return 0
    if args.scale:
        args.chunks = args.chunks or 1_000_000
        return scale_main(args)
    if args.store:
        from scripts import bench_store

        embedded = str(args.out / "bench-embedded-store")
        chunks = str(args.chunks or 200_000)
        return bench_store.main(
            ["--store", embedded, "--store", args.store, "--chunks", chunks, "--out", str(args.out)]
        )

    files, chars, sizes = (1000, 1200, [10_000, 100_000]) if args.quick else (1100, 2500, [10_000, 100_000, 1_000_000])
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    corpus = prepare_corpus(args.out, files, chars)
    common = {"cache_dir": args.cache_dir} if args.cache_dir else {}
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=args.out))
    try:
        print("bench: ingest (news-rag)", file=sys.stderr)
        ours = run_worker("ingest-project", corpus=corpus, index=work / "ours", backend=args.backend, **common)
        print(f"bench: {ours}\nbench: ingest (baseline)", file=sys.stderr)
        base = run_worker("ingest-baseline", corpus=corpus, index=work / "base", backend=args.backend, **common)
        print(f"bench: {base}\nbench: retrieval", file=sys.stderr)
        retrieval = bench_retrieval(sizes, np.load(work / "ours" / "vectors.npy"))
        print("bench: ask", file=sys.stderr)
        ask = run_worker("ask", index=work / "seeds", backend=args.backend, **common)
        first_question = json.loads((ROOT / "eval" / "dev.jsonl").read_text().splitlines()[0])["question"]
        cold = cold_start(work / "seeds", args.cache_dir, first_question)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # The headline figures: the largest size of the distribution fitted to real embeddings.
    largest = max((r for r in retrieval if r["data"] == "embedding-like"), key=lambda r: r["vectors"])
    results = {
        "mode": "quick" if args.quick else "full",
        "backend": args.backend,
        "corpus_files": ours["files"],
        "ingest_chunks": ours["chunks"],
        "ingest_chunks_per_s": round(ours["chunks"] / ours["seconds"], 2),
        "ingest_chars_per_s": round(ours["chars"] / ours["seconds"], 1),
        "ingest_peak_mib": round(ours["peak_mib"], 1),
        "baseline_chunks": base["chunks"],
        "baseline_ingest_chunks_per_s": round(base["chunks"] / base["seconds"], 2),
        "baseline_ingest_chars_per_s": round(base["chars"] / base["seconds"], 1),
        "baseline_ingest_peak_mib": round(base["peak_mib"], 1),
        "update_seconds": round(ours["update_seconds"], 3),
        "update_chunks_embedded": ours["update_embedded"],
        "rebuild_seconds": round(base["seconds"], 2),
        "project_rebuild_seconds": round(ours["seconds"], 2),
        "retrieval": retrieval,
        "vectors": largest["vectors"],
        "retrieval_p50_ms": largest["p50_ms"],
        "retrieval_p95_ms": largest["p95_ms"],
        "retrieval_recall_at_10": largest["recall_at_10"],
        "ask_p50_ms": ask["p50_ms"],
        "ask_p95_ms": ask["p95_ms"],
        "ask_first_round_p50_ms": ask["first_round_p50_ms"],
        "ask_questions": ask["questions"],
        "cold_start_s": round(cold, 3),
        "machine": machine(),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    table = markdown_table(results) + f"\nMachine: {results['machine']}\n"
    for folder in {Path.cwd(), args.out}:
        (folder / "bench-results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        (folder / "bench-results.md").write_text(table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

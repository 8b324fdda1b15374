"""The whole ``ask`` path over a million chunks on one machine (``scripts/bench.py --scale``).

    .venv/bin/python scripts/bench.py --scale [--chunks 1000000] [--out bench-out]

1. **Corpus.** Debian's German man pages (``manpages-de``), rendered, repeated and varied
   (paragraphs rotated, an issue number per copy) into files until about ``--chunks``
   chunks, plus the five seed articles, so that the dev questions have their answers in
   the haystack. Written once into ``--out`` and reused.
2. **Vectors.** The real model embeds the seed articles' chunks and a sample of the man
   page chunks; every other chunk gets a draw from a mixture fitted to that sample
   (``workload.Mixture``: as anisotropic as the real vectors). The index is built through
   ``index_paths`` like any other.
3. **A chat process** (its own process, as ``rag chat`` runs): from process start to the
   first answer (open), resident memory after loading, then ``Engine.ask`` p50/p95 over the
   questions of ``eval/dev.jsonl`` and ``eval/dev2.jsonl`` (hybrid dense + BM25, sentence
   selection and grounding included).
4. **One changed file.** A writer process appends a paragraph to one seed article and runs
   ``index_paths`` over the whole corpus (the real model embeds what changed); the chat
   process then answers a question about the new paragraph: that answer's latency includes
   seeing the new version (it opens the one new segment, nothing over the whole corpus).
"""

from __future__ import annotations

import json
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

SEED_NOTE = (
    "\n\nNachtrag der Redaktion: Die Fähre Nordlicht des Hafens Sassnitz wurde am Mittwoch, "
    "dem 4. Juni 2025, auf den Namen Nordlicht getauft, sagte Hafenmeisterin Greta Olsen.\n"
)
SEED_QUESTION = "Wann wurde die Fähre Nordlicht getauft?"


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ----------------------------------------------------------------------------- corpus


def build_corpus(out: Path, target_chunks: int) -> Path:
    """Man pages repeated and varied to about ``target_chunks`` chunks, plus the seeds (cached in ``out``)."""
    from embeddings import ChunkingConfig, chunk_document
    from embeddings.types import Document
    from scripts.workload import ensure_manpages, render

    folder = out / f"scale-corpus-{target_chunks}"
    if (folder / ".done").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    pages = ensure_manpages()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        texts = [t.strip() for t in pool.map(render, pages)]
    texts = [t for t in texts if len(t) > 2000]
    # Each paragraph on one line: a copy's lines would otherwise repeat the same short lines across the
    # copies, and the indexer drops short lines found in many files as boilerplate (most of the text).
    paragraphs = [[" ".join(p.split()) for p in re.split(r"\n\s*\n", t) if p.strip()] for t in texts]
    # chunks per character, measured on a sample of the pages as they are written
    sample = ["\n\n".join(paras) for paras in paragraphs[:: max(1, len(texts) // 50)]]
    cfg = ChunkingConfig()
    per_char = sum(len(chunk_document(Document("s", t, "s", "h"), cfg)) for t in sample) / sum(map(len, sample))
    budget = target_chunks / per_char  # characters to write
    written, n = 0, 0
    while written < budget:
        page = n % len(texts)
        paras = paragraphs[page]
        turn = (n // len(texts)) % max(1, len(paras))
        # another order in every copy, and every paragraph marked with the copy: no two chunks are equal
        body = "\n\n".join(f"Ausgabe {n}, Abschnitt {i + 1}: {p}" for i, p in enumerate(paras[turn:] + paras[:turn]))
        text = f"title: Handbuch {n}\n\nAusgabe {n} dieses Handbuchs.\n\n{body}\n"
        sub = folder / "man" / f"{n // 1000:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"seite-{n:07d}.txt").write_text(text, encoding="utf-8")
        written += len(body)
        n += 1
    shutil.copytree(ROOT / "seeds", folder / "seeds")
    (folder / ".done").write_text(str(n))
    return folder


class MixtureEmbedder:
    """The real model's identity and vectors for the given texts and for any piece of ``real_text`` (the seed
    articles: their sentences and words, which the indexer embeds for the answerer); a fitted mixture's
    draws for all others."""

    def __init__(self, real, known: dict[str, np.ndarray], mixture, seed: int = 7, real_text: str = "") -> None:
        self.real, self.known, self.mixture = real, known, mixture
        self.model_id, self.backend, self.dim = real.model_id, real.backend, real.dim
        self.rng_seed = seed
        self.real_text = real_text
        self.drawn = 0

    def _drawn(self, texts: list[str], embed) -> np.ndarray:
        out = self.mixture.sample(len(texts), seed=self.rng_seed + self.drawn)
        self.drawn += len(texts)
        ours = [i for i, t in enumerate(texts) if t not in self.known and t and t in self.real_text]
        if ours:
            out[ours] = embed([texts[i] for i in ours])
        return out

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        out = self._drawn(texts, self.real.embed_documents)
        for i, t in enumerate(texts):
            if t in self.known:
                out[i] = self.known[t]
        return out

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Words, as the indexer embeds them (embeddings.stores.sentences); the chat process has the real model."""
        return self._drawn(texts, self.real.embed_queries)


def build_index(corpus: Path, index: Path, cache_dir: Path | None, backend: str, sample: int) -> dict:
    """Index ``corpus`` (real vectors for the seeds and a sample, mixture draws for the rest)."""
    from embeddings import ChunkingConfig, Embedder, chunk_document, index_paths, read_document
    from scripts.workload import Mixture

    real = Embedder(cache_dir=cache_dir, backend=backend)
    cfg = ChunkingConfig()
    seed_chunks = [
        c.text for p in sorted((corpus / "seeds").iterdir()) for c in chunk_document(read_document(p, p.name), cfg)
    ]
    man = sorted((corpus / "man").rglob("*.txt"))
    picked = [man[i] for i in np.random.default_rng(0).choice(len(man), min(len(man), sample // 8), replace=False)]
    sample_chunks = [c.text for p in picked for c in chunk_document(read_document(p, p.name), cfg)][:sample]
    t = time.perf_counter()
    texts = list(dict.fromkeys(seed_chunks + sample_chunks))
    vectors = real.embed_documents(texts)
    real_seconds = time.perf_counter() - t
    print(f"scale: {len(texts)} chunks embedded by the model in {real_seconds:.0f} s", file=sys.stderr)
    seed_text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((corpus / "seeds").iterdir()))
    mixture = Mixture.fitted(vectors[len(seed_chunks) :])
    embedder = MixtureEmbedder(real, dict(zip(texts, vectors)), mixture, real_text=seed_text)
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30 or done == total:
            last[0] = time.perf_counter()
            print(f"scale: index {stage} {done}/{total}", file=sys.stderr, flush=True)

    report = index_paths([corpus], index, embedder, rebuild=True, progress=progress, batch_size=4096)
    return {
        "chunks": report.chunks_total,
        "files": len(report.added),
        "index_seconds": round(report.seconds, 1),
        "model_sample_chunks": len(texts),
        "index_bytes": sum(p.stat().st_size for p in index.rglob("*") if p.is_file()),
    }


# ----------------------------------------------------------------------------- the chat process


def chat_process(args) -> dict:
    """Run as its own process: open, answer, watch an update arrive (see the module docstring)."""
    started = float(args.started)
    from rag import Engine
    from scripts.workload import dev_questions, timed_rounds

    questions = dev_questions("dev.jsonl", "dev2.jsonl")
    engine = Engine(args.index, cache_dir=args.cache_dir)
    first = engine.ask(questions[0])
    open_seconds = time.time() - started
    rss_loaded = rss_mib()
    times = timed_rounds(engine, questions)
    p50, p95 = percentiles(times)
    first_p50, first_p95 = percentiles(times[: len(questions)])
    second_p50, second_p95 = percentiles(times[len(questions) :])
    # one changed file, written by another process while this one keeps its view
    writer = [sys.executable, str(Path(__file__).resolve()), "--update", "--index", str(args.index)]
    writer += ["--corpus", str(args.corpus), "--backend", args.backend]
    if args.cache_dir:
        writer += ["--cache-dir", str(args.cache_dir)]
    done = subprocess.run(writer, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"scale: the update failed:\n{done.stderr[-2000:]}")
    update = json.loads(done.stdout.strip().splitlines()[-1])
    t = time.perf_counter()
    answer = engine.ask(SEED_QUESTION)
    switch_seconds = time.perf_counter() - t
    return {
        "open_seconds": round(open_seconds, 2),
        "first_answer": first.text[:80],
        "rss_loaded_mib": round(rss_loaded, 1),
        "rss_after_questions_mib": round(rss_mib(), 1),
        "rss_peak_mib": round(hwm_mib(), 1),
        "questions": len(questions),
        "ask_p50_ms": p50,
        "ask_p95_ms": p95,
        "ask_first_round_p50_ms": first_p50,
        "ask_first_round_p95_ms": first_p95,
        "ask_second_round_p50_ms": second_p50,
        "ask_second_round_p95_ms": second_p95,
        "update_seconds": update["seconds"],
        "update_answer_ready_seconds": update["answer_ready_seconds"],
        "update_embedded": update["embedded"],
        "update_unchanged": update["unchanged"],
        "answer_after_update_ms": round(switch_seconds * 1000, 1),
        "answer_after_update": answer.text[:100],
        "sees_update": "Juni 2025" in answer.text or "June 2025" in answer.text,
    }


def update_one_file(args) -> dict:
    """Append a paragraph to one seed article and bring the index up to date (timed, model loaded first)."""
    from embeddings import Embedder, index_paths

    embedder = Embedder(cache_dir=args.cache_dir, backend=args.backend)
    embedder.embed_documents(["warm-up"])  # loading the model is not the update
    target = sorted((args.corpus / "seeds").iterdir())[0]
    original = target.read_bytes()
    target.write_text(original.decode("utf-8") + SEED_NOTE, encoding="utf-8")
    try:
        report = index_paths(None, args.index, embedder)
    finally:
        target.write_bytes(original)
    return {  # searchable at the commit; the answerer's sentence vectors follow it
        "seconds": round(report.seconds - report.steps.get("sentences", 0.0), 3),
        "answer_ready_seconds": round(report.seconds, 3),
        "embedded": report.chunks_embedded,
        "unchanged": len(report.unchanged),
        "updated": list(report.updated),
    }


def run(out: Path, chunks: int, cache_dir: Path | None, backend: str, sample: int = 2000, *, build_only=False) -> dict:
    """The whole scale benchmark; returns its results. The corpus and index are kept in ``out`` and
    reused by the next run (delete them to build again)."""
    out.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(out, chunks)
    index = out / f"scale-index-{chunks}"
    record = out / f"scale-index-{chunks}.json"
    if record.exists():
        built = json.loads(record.read_text())
    else:
        built = build_index(corpus, index, cache_dir, backend, sample)
        record.write_text(json.dumps(built))
    print(f"scale: built {built}", file=sys.stderr)
    if build_only:
        return built
    cmd = [sys.executable, str(Path(__file__).resolve()), "--chat", "--index", str(index), "--corpus", str(corpus)]
    cmd += ["--backend", backend, "--started", repr(time.time())]
    if cache_dir:
        cmd += ["--cache-dir", str(cache_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"scale: the chat process failed:\n{done.stderr[-3000:]}")
    chat = json.loads(done.stdout.strip().splitlines()[-1])
    # put the corpus back as the index holds it (the update's file was restored): one more run
    from embeddings import Embedder, index_paths

    index_paths(None, index, Embedder(cache_dir=cache_dir, backend=backend))
    return {**built, **chat, "machine": machine()}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chat", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--update", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--started", default="0")
    args = parser.parse_args(argv)
    if args.chat:
        print(json.dumps(chat_process(args)))
    elif args.update:
        print(json.dumps(update_one_file(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

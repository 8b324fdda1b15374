"""Crash trials: kill the indexer with SIGKILL at random moments, then check what it left.

    .venv/bin/python scripts/crash_trials.py [--trials 50] [--seed 0] [--out crash-results.json]

Each trial starts from a copy of an index that holds state A (some articles)
and runs a separate process that updates it to state B (articles added,
changed, renamed and deleted). That process is killed with SIGKILL at a random
moment, in three ways taken in turn:

- ``anywhere``: after a random time within the length of an undisturbed run
  (reading, embedding or writing);
- ``write``: after a random time within the writing of the new generation
  (the short window where a crash could do the most harm, which uniform
  times rarely hit);
- ``step``: at a random step of that writing: the worker counts the function
  calls it makes while writing and kills itself with SIGKILL at a chosen one,
  so kills land between every two operations (files written, folder renamed,
  ``CURRENT`` switched, old generations removed).

Afterwards the index must:

- load and pass :func:`embeddings.stores.embedded.verify.check_index` (no duplicate chunks, no
  vectors without chunks or the reverse, manifest and documents agree);
- equal state A or state B exactly: the same files, chunks and vectors as a
  clean run to that state (no chunks of deleted files, nothing half-applied);
- let the next run take the write lock at once (no lock left behind), finish,
  reach state B, and remove what the killed writer left.

The articles are made from the files in ``seeds/`` (whatever they are); the
results go to a JSON file and a one-line summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODES = ("anywhere", "write", "step")
LOCK_WAIT_S = 20.0  # the next run must get the lock within this (the kernel drops a dead holder's flock)


# ----------------------------------------------------------------------------- corpora and states


def make_corpora(seeds: Path, out: Path) -> tuple[Path, Path]:
    """Two versions of a corpus made from the seed articles: A, and B = A changed in every way.

    B drops A's first article, renames its second, appends a paragraph to its third, and
    adds the remaining seed articles.
    """
    files = sorted(p for p in seeds.iterdir() if p.is_file() and not p.name.startswith("."))
    if len(files) < 4:
        raise SystemExit(f"crash trials: {seeds} needs at least 4 articles, has {len(files)}")
    a, b = out / "corpus-a", out / "corpus-b"
    for folder in (a, b):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for f in files[:3]:
        shutil.copy(f, a / f.name)
    shutil.copy(files[1], b / f"renamed-{files[1].name}")
    changed = files[2].read_text(encoding="utf-8") + "\n\nNachtrag: Dieser Absatz wurde nachträglich ergänzt.\n"
    (b / files[2].name).write_text(changed, encoding="utf-8")
    for f in files[3:]:
        shutil.copy(f, b / f.name)
    return a, b


@dataclass(frozen=True)
class State:
    """What an index holds, to compare two indexes exactly."""

    files: dict[str, str]  # source -> sha256
    chunks: tuple[tuple[str, int, int, str], ...]  # (source, start, end, text hash), sorted
    vectors: dict[str, np.ndarray] = field(compare=False, repr=False)  # text hash -> vector

    def same(self, other: State, atol: float = 1e-5) -> bool:
        if self.files != other.files or self.chunks != other.chunks:
            return False
        return all(np.allclose(self.vectors[h], other.vectors[h], atol=atol) for h in self.vectors)


def read_state(index_dir: Path) -> State:
    from embeddings import open_snapshot

    snap = open_snapshot(index_dir)
    ids = [i for source in snap.manifest.files for i in snap.ids_of(source)]
    rows = sorted(snap.rows(ids).values(), key=lambda r: (r.source, r.start, r.end))
    vectors = dict(zip((r.text_hash for r in rows), snap.vectors([r.id for r in rows])))
    return State(
        {s: e["sha256"] for s, e in snap.manifest.files.items()},
        tuple((r.source, r.start, r.end, r.text_hash) for r in rows),
        vectors,
    )


# ----------------------------------------------------------------------------- the worker (own process)


def worker(index: Path, corpus: Path, cache_dir: Path | None, kill_at_step: int = -1) -> int:
    """Index ``corpus`` into ``index``, printing each progress stage as it starts (for the parent to aim at).

    While the new generation is written, every function call is a step; with ``kill_at_step``
    >= 0 the process kills itself with SIGKILL at that step, else it prints how many there were.
    """
    from embeddings import Embedder, index_paths

    embedder = Embedder(cache_dir=cache_dir)
    embedder.embed_documents(["warm-up"])  # the model is loaded before the clock starts
    print("ready", flush=True)
    seen = set()
    steps = 0

    def count(frame, event, arg) -> None:
        nonlocal steps
        if event in ("call", "c_call"):
            if steps == kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            steps += 1

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in seen:
            seen.add(stage)
            print(f"stage {stage}", flush=True)
        if stage == "write":
            sys.setprofile(count if done == 0 else None)

    report = index_paths([corpus], index, embedder, progress=progress)
    print(f"steps {steps}", flush=True)
    print("done " + json.dumps(report.to_dict()), flush=True)
    return 0


def start_worker(index: Path, corpus: Path, cache_dir: Path | None, kill_at_step: int = -1) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--index", str(index), "--corpus", str(corpus)]
    cmd += ["--kill-at-step", str(kill_at_step)]
    if cache_dir:
        cmd += ["--cache-dir", str(cache_dir)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)


def _read_until(proc: subprocess.Popen, prefix: str, log: list[str]) -> bool:
    """Read the worker's lines until one starts with ``prefix`` (True) or it exits (False)."""
    for line in proc.stdout:
        log.append(line.strip())
        if line.startswith(prefix):
            return True
    return False


# ----------------------------------------------------------------------------- trials


@dataclass
class Trials:
    """Everything a series of trials needs: the corpora, the two reference states, the model for resuming."""

    work: Path
    corpus_a: Path
    corpus_b: Path
    index_a: Path
    state_a: State
    state_b: State
    run_seconds: float  # an undisturbed worker run, from "ready" to "done"
    write_seconds: float  # of which writing the generation
    write_steps: int  # function calls made while writing the generation
    cache_dir: Path | None
    embedder: object

    @classmethod
    def prepare(cls, work: Path, seeds: Path = ROOT / "seeds", cache_dir: Path | None = None) -> Trials:
        from embeddings import Embedder, index_paths

        work.mkdir(parents=True, exist_ok=True)
        corpus_a, corpus_b = make_corpora(seeds, work)
        embedder = Embedder(cache_dir=cache_dir)
        index_a = work / "index-a"
        shutil.rmtree(index_a, ignore_errors=True)
        index_paths([corpus_a], index_a, embedder)
        # State B as a clean worker reaches it from A, timing the run and its write stage.
        index_b = work / "index-b"
        shutil.rmtree(index_b, ignore_errors=True)
        shutil.copytree(index_a, index_b)
        proc = start_worker(index_b, corpus_b, cache_dir)
        log: list[str] = []
        _read_until(proc, "ready", log)
        started = time.perf_counter()
        _read_until(proc, "stage write", log)
        write_started = time.perf_counter()
        finished = _read_until(proc, "done", log)
        ended = time.perf_counter()
        if proc.wait() != 0 or not finished:
            raise SystemExit(f"crash trials: the reference run failed: {log[-3:]}")
        steps = next(int(line.split()[1]) for line in log if line.startswith("steps "))
        return cls(
            work,
            corpus_a,
            corpus_b,
            index_a,
            read_state(index_a),
            read_state(index_b),
            ended - started,
            ended - write_started,
            steps,
            cache_dir,
            embedder,
        )

    def run(self, n: int, mode: str, rng: random.Random) -> dict:
        """One trial; returns what happened and any broken promise under ``problems``."""
        from embeddings import IndexLockedError, index_paths
        from embeddings.stores.embedded.verify import check_index

        index = self.work / f"trial-{n:03d}"
        shutil.rmtree(index, ignore_errors=True)
        shutil.copytree(self.index_a, index)
        step = rng.randrange(self.write_steps) if mode == "step" else -1
        proc = start_worker(index, self.corpus_b, self.cache_dir, kill_at_step=step)
        log: list[str] = []
        problems: list[str] = []
        delay = 0.0
        try:
            if not _read_until(proc, "ready", log):
                raise RuntimeError(f"worker died before it was ready: {log[-3:]}")
            if mode == "step":
                _read_until(proc, "done", log)  # it kills itself on the way
            elif mode == "write":
                _read_until(proc, "stage write", log)
                delay = rng.uniform(0, 1.5 * self.write_seconds)
            else:
                delay = rng.uniform(0, 1.1 * self.run_seconds)
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            log += [line.strip() for line in proc.stdout.read().splitlines()]
            proc.stdout.close()
        stages = [line.split()[1] for line in log if line.startswith("stage ")]
        finished = any(line.startswith("done") for line in log)
        killed_in = "finished" if finished else (stages[-1] if stages else "start")

        check = check_index(index)
        if not check.ok:
            problems.append("after the kill: " + check.summary())
            outcome = "damaged"
        else:
            state = read_state(index)
            outcome = "A" if state.same(self.state_a) else "B" if state.same(self.state_b) else "neither"
            if outcome == "neither":
                problems.append("the index equals neither the state before nor the state after the run")
            if finished and outcome != "B":
                problems.append("the run reported done but the index is not in state B")
        leftovers = check.leftovers
        try:
            resumed = index_paths([self.corpus_b], index, self.embedder, lock_timeout=LOCK_WAIT_S)
        except IndexLockedError as exc:
            problems.append(f"the next run could not take the lock: {exc}")
        else:
            after = check_index(index)
            if not after.ok or not read_state(index).same(self.state_b):
                problems.append("the next run did not reach state B: " + after.summary())
            if after.leftovers:
                problems.append(f"the next run left {after.leftovers}")
            if outcome == "B" and resumed.chunks_embedded:
                problems.append(f"the next run re-embedded {resumed.chunks_embedded} chunks of a complete index")
        shutil.rmtree(index, ignore_errors=True)
        return {
            "trial": n,
            "mode": mode,
            "delay_s": round(delay, 4),
            "step": step,
            "killed_in": killed_in,
            "outcome": outcome,
            "leftovers": list(leftovers),
            "problems": problems,
        }


def summarise(results: list[dict]) -> dict:
    """Counts over the trials: where the kills landed, which state was left, what broke."""

    def count(key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in results:
            out[r[key]] = out.get(r[key], 0) + 1
        return dict(sorted(out.items()))

    failures = [r for r in results if r["problems"]]
    return {
        "trials": len(results),
        "killed_in": count("killed_in"),
        "outcome": count("outcome"),
        "with_leftovers": sum(bool(r["leftovers"]) for r in results),
        "failures": len(failures),
        "failed_trials": failures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("crash-results.json"))
    env_cache = os.environ.get("RAG_CACHE_DIR")
    parser.add_argument("--cache-dir", type=Path, default=Path(env_cache) if env_cache else None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--kill-at-step", type=int, default=-1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.index, args.corpus, args.cache_dir, args.kill_at_step)

    started = time.perf_counter()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="crash-trials-") as tmp:
        trials = Trials.prepare(Path(tmp), cache_dir=args.cache_dir)
        print(
            f"crash trials: reference run {trials.run_seconds:.2f} s (writing {trials.write_seconds:.3f} s, "
            f"{trials.write_steps} steps); "
            f"state A {len(trials.state_a.files)} files / {len(trials.state_a.chunks)} chunks, "
            f"state B {len(trials.state_b.files)} files / {len(trials.state_b.chunks)} chunks",
            file=sys.stderr,
        )
        results = []
        for n in range(args.trials):
            result = trials.run(n, MODES[n % len(MODES)], rng)
            results.append(result)
            print(f"crash trials: {json.dumps(result)}", file=sys.stderr)
    summary = {**summarise(results), "seconds": round(time.perf_counter() - started, 1), "trials_detail": results}
    args.out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(
        f"{summary['trials']} trials: killed in {summary['killed_in']}; left state {summary['outcome']}; "
        f"{summary['with_leftovers']} left temporary folders (all removed by the next run); "
        f"{summary['failures']} failures; {summary['seconds']} s"
    )
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())

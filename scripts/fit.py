"""Fit the answer scorer (rag/models/answer_scorer.json) and report it on held-out articles.

    python scripts/fit.py                 # collect, cross-validate, fit on all, write the scorer
    python scripts/fit.py --report-only   # cross-validate and print, write nothing

The question sets: eval/xquad-dev (24 German Wikipedia articles, each question in German and in
English, answer spans) and eval/dev.jsonl + eval/dev2.jsonl over seeds/ (news, with unanswerable
near-miss and off-topic questions). Each set's articles are indexed with the real model into
.cache/fit/ (once; re-indexing is incremental). Folds hold out whole articles; the abstention
threshold is chosen on inner folds for a target precision, so every printed figure is held out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answering.scorer import FEATURES, JUDGED, MODEL_FILE, AnswerScorer, Logistic  # noqa: E402
from rag.evaluate import Case, load_cases  # noqa: E402
from rag.fitting import TARGET_PRECISION, Example, Pick, by, cross_validate, example_of, make_scorer  # noqa: E402

SETS = {
    # name: (question file or set folder, corpus folder)
    "xquad": (ROOT / "eval" / "xquad-dev", ROOT / "eval" / "xquad-dev" / "corpus"),
    "dev": (ROOT / "eval" / "dev.jsonl", ROOT / "seeds"),
    "dev2": (ROOT / "eval" / "dev2.jsonl", ROOT / "seeds"),
}
CACHE = ROOT / ".cache" / "fit"


# The code the features come from: a change there makes the cached examples stale.
FEATURE_CODE = ("rag/answering/*.py", "rag/retrieve.py", "embeddings/**/*.py")


def code_key(config) -> str:
    """A digest of what the features depend on: their code, the question sets and articles, the config."""
    import inspect

    from rag.answering import scorer
    from rag.engine import Engine

    h = hashlib.sha256(repr(config).encode())
    for code in (scorer.FEATURES, scorer.GATES, scorer.feature_rows, scorer.context_rows, Engine.candidates):
        h.update((code if isinstance(code, tuple) else inspect.getsource(code)).__repr__().encode())
    files = {p for pattern in (*FEATURE_CODE, "eval/**/*.*", "seeds/*") for p in ROOT.glob(pattern)}
    for path in sorted(files):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cached(name: str, cases: list[Case], corpus: Path, embedder, config, key: str) -> list[Example]:
    """The examples of one question set, from .cache/fit/ when the code and data are unchanged (npz, no pickle)."""
    path = CACHE / f"examples-{name}-{key}.npz"
    if path.is_file():
        data = np.load(path, allow_pickle=False)
        meta = json.loads(str(data["meta"]))
        by_id = {c.id: c for c in cases}
        return [
            Example(
                by_id[m["id"]],
                m["group"],
                data[f"rows{i}"],
                data[f"labels{i}"],
                tuple(m["sentences"]),
                tuple(m["gates"]),
            )
            for i, m in enumerate(meta)
        ]
    examples = collect(name, cases, corpus, embedder, config)
    arrays = {f"rows{i}": e.rows for i, e in enumerate(examples)} | {
        f"labels{i}": e.labels for i, e in enumerate(examples)
    }
    meta = [
        {"id": e.case.id, "group": e.group, "sentences": list(e.sentences), "gates": list(e.gates)} for e in examples
    ]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, meta=np.array(json.dumps(meta, ensure_ascii=False)), **arrays)
    return examples


def collect(name: str, cases: list[Case], corpus: Path, embedder, config) -> list[Example]:
    from embeddings import index_paths
    from rag.engine import Engine

    index = CACHE / f"index-{corpus.name}"
    index_paths([corpus], index, embedder)
    engine = Engine(index, embedder=embedder, config=config, scorer=blank_scorer())
    out = []
    t0 = time.perf_counter()
    for n, case in enumerate(cases, 1):
        found = engine.candidates(case.question)
        out.append(example_of(name, case, found))
        if n % 100 == 0:
            print(f"  {name}: {n}/{len(cases)} questions, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def blank_scorer() -> AnswerScorer:
    """A scorer that is never asked (collecting candidates needs none)."""

    def blank(names):
        return Logistic(names, (0.0,) * len(names), (1.0,) * len(names), (0.0,) * len(names), 0.0)

    return AnswerScorer(blank(FEATURES), blank(JUDGED), blank(JUDGED), 0.5, {})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the logistic model")
    ap.add_argument(
        "--precision",
        type=float,
        default=TARGET_PRECISION,
        help="target share of answers that hold the answer (unanswerable questions answered count as wrong)",
    )
    ap.add_argument("--shortlist", type=int, default=None, help="sentences embedded per question (ScoringConfig)")
    ap.add_argument("--twins", type=float, default=0.0, help="weight of made near misses in the judges' data")
    ap.add_argument("--balance", action="store_true", help="every question set weighs alike in the judges' data")
    ap.add_argument("--sets", default=",".join(SETS), help=f"question sets to fit on (of {', '.join(SETS)})")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument(
        "--retrieval", action="store_true", help="only measure retrieval: dense, BM25 and fusion weights, per language"
    )
    ap.add_argument("--out", type=Path, default=MODEL_FILE)
    ap.add_argument("--json", type=Path, help="also write the held-out figures here")
    args = ap.parse_args(argv)

    from embeddings import DEFAULT_MODEL
    from embeddings.model.encoder import load_embedder
    from rag.config import ScoringConfig

    config = ScoringConfig() if args.shortlist is None else ScoringConfig(shortlist=args.shortlist)
    embedder = load_embedder(DEFAULT_MODEL)
    examples: list[Example] = []
    if args.retrieval:
        return retrieval_report(embedder)
    key = code_key(config)
    chosen = [name.strip() for name in args.sets.split(",")]
    if unknown := [name for name in chosen if name not in SETS]:
        ap.error(f"--sets: no question set {', '.join(unknown)} (choose from {', '.join(SETS)})")
    for name, (questions, corpus) in SETS.items():
        if name not in chosen:
            continue
        examples += cached(name, load_cases(questions), corpus, embedder, config, key)

    options = {"twins": args.twins, "balance": args.balance}
    picks, thresholds = cross_validate(examples, args.folds, args.seed, args.l2, args.precision, **options)
    report = held_out_report(picks, thresholds)
    print(report["text"])
    if args.json:
        args.json.write_text(json.dumps(report["figures"], indent=1) + "\n", encoding="utf-8")
    if args.report_only:
        return 0
    provenance = {
        "script": "scripts/fit.py",
        "data": {name: str(q.relative_to(ROOT)) for name, (q, _) in SETS.items() if name in chosen},
        "folds": args.folds,
        "seed": args.seed,
        "l2": args.l2,
        **options,
        "target_precision": args.precision,
        "fold_thresholds": [round(t, 4) for t in thresholds],
        "threshold": "the lowest reaching the target precision on inner held-out folds of all the data",
        "held_out": report["figures"],
    }
    scorer = make_scorer(examples, args.l2, args.precision, args.seed + 1, provenance=provenance, **options)
    scorer.save(args.out)
    print(f"wrote {args.out} (threshold {scorer.threshold:.3f})")
    return 0


def retrieval_report(embedder, depth: int = 10) -> int:
    """Recall@depth of passages that hold the answer, per set and language, for each ranking."""
    from embeddings import index_paths, open_store
    from rag.fitting import retrieval_recall

    weights = [0.25, 0.5, 1.0, 2.0, "coverage"]
    for name, (questions, corpus) in SETS.items():
        index = CACHE / f"index-{corpus.name}"
        index_paths([corpus], index, embedder)
        view = open_store(index).view()  # the same index the examples come from
        table = retrieval_recall(view, embedder, load_cases(questions), weights, depth)
        for lang, row in sorted(table.items()):
            print(f"{name:6} {lang}  " + "  ".join(f"{k}={v:.3f}" for k, v in row.items()))
    return 0


def held_out_report(picks: list[Pick], thresholds: list[float]) -> dict:
    def set_lang(p: Pick) -> str:
        return f"{p.example.group.split('/')[0]} {p.example.case.lang or '?'}"

    def set_kind(p: Pick) -> str:
        return f"{p.example.group.split('/')[0]} {p.example.case.kind or '-'}"

    lines = [f"held-out folds; thresholds per fold: {', '.join(f'{t:.3f}' for t in thresholds)}"]
    figures = {}
    for title, key in (("by set and language", set_lang), ("by set and kind", set_kind)):
        lines.append(title)
        for name, f in by(picks, key).items():
            lines.append(f"  {name:<22} {f.row()}")
            figures[name] = f.__dict__
    return {"text": "\n".join(lines), "figures": figures}


if __name__ == "__main__":
    raise SystemExit(main())

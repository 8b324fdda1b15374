"""Pure helpers of the benchmark scripts (the benchmarks themselves are not tests)."""

from __future__ import annotations

import numpy as np

from scripts import bench, workload


def test_strip_overstrike_and_head():
    assert workload.strip_overstrike("B\bBo\bol\bld\bd _\bu\x1b[1mX\x1b[0m") == "Bold uX"
    assert workload.head_chars("eine sehr lange Zeile\nzwei\n", 3) == "eine sehr lange Zeile\n"
    assert workload.head_chars("", 10) == ""


def test_metrics():
    assert workload.recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 2, 1]])) == 1.0
    p50, p95 = bench.percentiles([0.010, 0.020, 0.030])
    assert p50 == 20.0 and 20.0 < p95 <= 30.0
    v = workload.Mixture.clustered(clusters=5, dim=16).sample(500, seed=3)
    assert v.dtype == np.float32 and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_fitted_mixture_keeps_the_anisotropy_of_real_vectors():
    """Vectors that share a strong common direction (as e5's do) are drawn with that direction too."""
    rng = np.random.default_rng(0)
    common = rng.standard_normal(32)
    real = common + 0.6 * rng.standard_normal((2000, 32))
    real = (real / np.linalg.norm(real, axis=1, keepdims=True)).astype(np.float32)
    drawn = workload.Mixture.fitted(real, clusters=8).sample(2000, seed=1)

    def mean_pair_cosine(x):
        return float(np.mean(np.sum(x[:1000] * x[1000:], axis=1)))

    assert mean_pair_cosine(real) > 0.5
    assert abs(mean_pair_cosine(drawn) - mean_pair_cosine(real)) < 0.05


def test_markdown_table_has_required_rows():
    results = {
        "corpus_files": 1000, "ingest_chunks": 2000, "ingest_chunks_per_s": 40.0, "baseline_chunks": 1500,
        "baseline_ingest_chunks_per_s": 15.0, "ingest_chars_per_s": 9000.0, "baseline_ingest_chars_per_s": 4000.0,
        "ingest_peak_mib": 900.0, "baseline_ingest_peak_mib": 1500.0, "update_seconds": 0.5,
        "rebuild_seconds": 100.0, "ask_p50_ms": 120.0, "ask_p95_ms": 180.0, "ask_questions": 28,
        "cold_start_s": 3.0,
        "retrieval": [{"data": "embedding-like", "vectors": 100_000, "kind": "IVF", "p50_ms": 1.0, "p95_ms": 2.0,
                       "recall_at_10": 0.99, "exact_p50_ms": 15.0, "exact_p95_ms": 20.0}],
    }  # fmt: skip
    table = bench.markdown_table(results)
    assert table.count("\n") == 9
    assert "200x faster" in table and "2.67x" in table and "100,000 embedding-like vectors" in table


def test_the_table_shows_the_ingest_steps_and_the_cold_start_beside_the_bare_script():
    results = {
        "corpus_files": 1000, "ingest_chunks": 2000, "ingest_chunks_per_s": 40.0, "baseline_chunks": 1500,
        "baseline_ingest_chunks_per_s": 15.0, "ingest_chars_per_s": 9000.0, "baseline_ingest_chars_per_s": 4000.0,
        "ingest_peak_mib": 900.0, "baseline_ingest_peak_mib": 1500.0, "update_seconds": 0.5,
        "rebuild_seconds": 100.0, "ask_p50_ms": 120.0, "ask_p95_ms": 180.0, "ask_questions": 28,
        "cold_start_s": 1.5, "retrieval": [],
        "ingest_steps": {"read": 0.5, "clean": 1.0, "names": 2.0, "chunk": 0.5, "embed": 50.0, "write": 3.0},
        "baseline_ingest_steps": {"read": 0.1, "chunk": 0.2, "embed+index": 90.0, "write": 0.1},
        "ingest_embedded_chars": 1_300_000, "baseline_embedded_chars": 1_000_000,
        "cold": {"runs": 5, "rag_ask_median_s": 1.5, "bare_script_median_s": 1.25, "ratio": 1.2,
                 "chat_first_answer_s": 0.2, "chat_later_answers_s": [0.1, 0.1]},
    }  # fmt: skip
    table = bench.markdown_table(results)
    assert "names 2.0" in table and "embed+index 90.0" in table and "1.30x" in table
    assert "bare script (ONNX model + tokenizer + one question): 1.25 | 1.20x" in table
    assert "first answer after it serves (s) | 0.20" in table
    assert "to first answer (s) | 1.50" not in table  # the cold rows replace the single figure


def test_the_store_benchs_corpus_keeps_offsets_and_names():
    from scripts import bench_store

    docs = list(bench_store.synthetic_documents(3))
    assert len({d.source for d, _ in docs}) == 3
    for doc, chunks in docs:
        assert len(chunks) == bench_store.CHUNKS_PER_DOC
        assert all(doc.text[c.start : c.end] == c.text for c in chunks)
        assert doc.metadata["names"]
    assert bench_store.fuse([[1, 2, 3], [3, 1]])[0] == 1
    table = bench_store.table([{"store": "a", "chunks": 10, "ingest_s": 1.0}, {"store": "b", "error": ["boom"]}])
    assert "| ingest (s) | 1.0 | ['boom'] |" in table

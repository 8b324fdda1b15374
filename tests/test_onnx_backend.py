"""The onnx-int8 backend agrees with the torch model and is built once into the cache."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings import Embedder, ModelError
from embeddings.onnx_backend import onnx_folder_for

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

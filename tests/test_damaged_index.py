"""A damaged index: one clear line that says how to rebuild, never a wrong answer or a traceback.

Each case damages a copy of the seed index (of the fake embedder; two cases also of the real
model) in one way, then checks that
``rag ask`` and ``rag check`` refuse with the rebuild hint, that the chat shows
the same message, and that ``rag index --rebuild`` (no paths: the folders the
index recorded) brings it back.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import gradio as gr
import pytest

from ui.chat.app import ChatApp
from ui.cli import main

from .conftest import SEEDS

HINT = "rag index --rebuild"


def _live(index: Path) -> Path:
    return index / (index / "CURRENT").read_text().strip()


def _segment(index: Path) -> Path:
    """The (first) segment the live generation lists: where vectors, chunks and BM25 are."""
    name = json.loads((_live(index) / "manifest.json").read_text())["segments"][0]["name"]
    return index / name


def _edit_segments(**changes):
    def damage(index: Path, embedder) -> None:
        path = _live(index) / "manifest.json"
        data = json.loads(path.read_text())
        for key, value in changes.items():
            for seg in data["segments"]:
                seg.pop(key, None) if value is None else seg.__setitem__(key, value)
        path.write_text(json.dumps(data))

    return damage


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x20
    path.write_bytes(bytes(raw))


def _edit_manifest(**changes):
    def damage(index: Path, embedder) -> None:
        path = _live(index) / "manifest.json"
        data = json.loads(path.read_text())
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        path.write_text(json.dumps(data))

    return damage


def _foreign_manifest(index: Path, embedder) -> None:
    """The manifest of another index (same model, other articles) copied over this one's."""
    from embeddings import index_paths

    corpus, other = index.parent / "other-corpus", index.parent / "other-index"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Ein ganz anderer Artikel über Kasachstan.\n", encoding="utf-8")
    index_paths([corpus], other, embedder)
    shutil.copy(_live(other) / "manifest.json", _live(index) / "manifest.json")


CASES = {
    "vectors truncated": lambda i, e: _truncate(_segment(i) / "vectors.faiss"),
    "vectors with a flipped bit": lambda i, e: _flip(_segment(i) / "vectors.faiss"),
    "vectors missing": lambda i, e: (_segment(i) / "vectors.faiss").unlink(),
    "metadata truncated": lambda i, e: _truncate(_segment(i) / "chunks.sqlite"),
    "metadata with a flipped bit": lambda i, e: _flip(_segment(i) / "chunks.sqlite"),
    "BM25 postings with a flipped bit": lambda i, e: _flip(_segment(i) / "rows.npy"),
    "BM25 terms truncated": lambda i, e: _truncate(_segment(i) / "terms.txt"),
    "segment folder deleted": lambda i, e: shutil.rmtree(_segment(i)),
    "manifest not JSON": lambda i, e: (_live(i) / "manifest.json").write_text("{'model': "),
    "manifest empty": lambda i, e: (_live(i) / "manifest.json").write_text(""),
    "manifest of another index": _foreign_manifest,
    "manifest of another dimension": _edit_manifest(dim=768),
    "manifest of another model": _edit_manifest(model="another-model"),
    "manifest without checksums": _edit_segments(checksums=None),
    "manifest with another chunk count": _edit_segments(count=3),
    "manifest from a future version": _edit_manifest(format=99),
    "CURRENT names a missing generation": lambda i, e: (i / "CURRENT").write_text("gen-000099\n"),
    "CURRENT garbage": lambda i, e: (i / "CURRENT").write_bytes(b"\x00\xff../../etc"),
    "generation folder deleted": lambda i, e: shutil.rmtree(_live(i)),
}


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("case", sorted(CASES))
def test_damage_is_reported_with_the_fix_and_rebuild_recovers(case, fake_cli_env, tmp_path, fake_embedder, monkeypatch):
    """On an index of the fake embedder: the damage is found before any model would be asked."""
    index, embedder = fake_cli_env, fake_embedder
    CASES[case](index, embedder)
    _assert_refused_with_the_fix(case, index, embedder, tmp_path)

    # The rebuild's model is the one asked for (here through the CLI's environment twins).
    monkeypatch.setenv("RAG_MODEL", embedder.model_id)
    monkeypatch.setenv("RAG_BACKEND", embedder.backend)  # an environment default is not checked against choices
    _rebuild(case)
    monkeypatch.delenv("RAG_MODEL")
    monkeypatch.delenv("RAG_BACKEND")
    rc, out, err = _run(["ask", "When did Shoigu visit Beijing?"])
    assert rc == 0 and out.strip(), (out, err)
    assert _run(["check"])[0] == 0


@pytest.mark.slow
@pytest.mark.parametrize("case", ["vectors with a flipped bit", "manifest of another dimension"])
def test_rebuild_with_the_real_model_answers_as_before(case, cli_env, tmp_path, embedder):
    index = cli_env
    CASES[case](index, embedder)
    _assert_refused_with_the_fix(case, index, embedder, tmp_path)
    _rebuild(case)
    rc, out, err = _run(["ask", "When did Shoigu visit Beijing?"])
    assert rc == 0 and out.startswith("Friday, 28 February 2025"), (out, err)
    assert _run(["check"])[0] == 0


def _assert_refused_with_the_fix(case: str, index: Path, embedder, tmp_path: Path) -> None:
    for argv in (["ask", "When did Shoigu visit Beijing?"], ["check"]):
        rc, out, err = _run(argv)
        assert rc == 1 and not out, (case, argv, out)
        assert HINT in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (case, argv, err)

    with pytest.raises(gr.Error, match="rebuild"):
        ChatApp(index, tmp_path / "corpus", embedder).answer("When did Shoigu visit Beijing?")


def _rebuild(case: str) -> None:
    # No paths: the folders the index recorded; a foreign manifest's records are not this index's.
    rc, _out, err = _run(["index", "--rebuild", *([str(SEEDS)] if case == "manifest of another index" else [])])
    assert rc == 0, err

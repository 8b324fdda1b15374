"""The manifest of an index version, its errors, and file checksums.

A manifest says what built the index (model, dimension, chunking), which files it holds
(with their SHA-256), and which immutable segments make it up: each segment with the
digests of its files (checked before they are parsed; a large file by its size and the
digest of the part a reader parses, the whole file in the background) and the chunk ids
deleted from it since it was written. No pickle: JSON only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

#: 3: segments shared between generations, BM25 stored with them, text read on demand.
#: 2 (one copy of everything per generation) is upgraded by the next ``rag index`` without re-embedding.
FORMAT_VERSION = 3
READABLE_FORMATS = (3,)
LEGACY_FORMATS = (1, 2)
REBUILD_HINT = "rebuild it with `rag index --rebuild`"


class StoreError(RuntimeError):
    """Base class of index problems; the message says what to do."""


class IndexNotFoundError(StoreError):
    """There is no index in the folder yet."""


class IndexCorruptError(StoreError):
    """Index files are missing, truncated or inconsistent."""


class IndexMismatchError(StoreError):
    """The index was built with another model, dimension or format than asked for."""


class LegacyIndexError(IndexMismatchError):
    """The live generation is of a format before segments; ``rag index`` upgrades it without re-embedding."""

    def __init__(self, message: str, generation: Path) -> None:
        super().__init__(message)
        self.generation = generation


class IndexLockedError(StoreError):
    """Another process is writing the index and did not finish in time."""


@dataclass(frozen=True)
class Head:
    """The size of a large file and the digest of its first ``length`` bytes (what a reader parses).

    A reader checks these before it parses the file and reads the whole file in the background
    (see :mod:`embeddings.stores.embedded.segments`); ``length`` is the whole file when its
    parsed part cannot be told from its payload.
    """

    size: int
    length: int
    digest: str

    def to_list(self) -> list:
        return [self.size, self.length, self.digest]

    @classmethod
    def from_list(cls, data) -> Head:
        size, length, digest = data
        if not (isinstance(size, int) and isinstance(length, int) and isinstance(digest, str) and 0 <= length <= size):
            raise TypeError("a file head of the wrong shape")
        return cls(size, length, digest)


@dataclass(frozen=True)
class SegmentEntry:
    """One segment as a version uses it: its files' checksums, the heads of its large files, and the ids deleted since.

    ``heads`` is empty for segments written before heads were recorded: their files are read whole at open.
    """

    name: str
    count: int
    checksums: dict[str, str]
    deleted: tuple[int, ...] = ()
    heads: dict[str, Head] = field(default_factory=dict)

    @property
    def live(self) -> int:
        return self.count - len(self.deleted)

    def to_dict(self) -> dict:
        data = {"name": self.name, "count": self.count, "checksums": self.checksums, "deleted": list(self.deleted)}
        if self.heads:
            data["heads"] = {f: h.to_list() for f, h in self.heads.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SegmentEntry:
        if not isinstance(data.get("checksums"), dict) or not isinstance(data.get("deleted", []), list):
            raise TypeError("a segment entry of the wrong shape")
        heads = data.get("heads", {})
        if not isinstance(heads, dict) or not set(heads) <= set(data["checksums"]):
            raise TypeError("segment heads of the wrong shape")
        return cls(
            str(data["name"]),
            int(data["count"]),
            dict(data["checksums"]),
            tuple(int(i) for i in data["deleted"]),
            {str(f): Head.from_list(h) for f, h in heads.items()},
        )


@dataclass(frozen=True)
class Manifest:
    """What built an index, the files in it and the segments that hold them."""

    model: str
    dim: int
    backend: str = "torch"
    chunking: dict = field(default_factory=dict)
    roots: tuple[str, ...] = ()
    files: dict[str, dict] = field(default_factory=dict)  # source -> {"sha256", "chunks", "segment"}
    generation: int = 0
    next_id: int = 0
    format: int = FORMAT_VERSION
    created: str = ""
    segments: tuple[SegmentEntry, ...] = ()

    @property
    def chunk_count(self) -> int:
        return sum(s.live for s in self.segments)

    def to_json(self) -> str:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["roots"] = list(self.roots)
        data["segments"] = [s.to_dict() for s in self.segments]
        return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: Path) -> Manifest:
        try:
            data = json.loads(text)
            fmt = data.get("format", 1)
            if fmt in LEGACY_FORMATS:
                raise LegacyIndexError(
                    f"{where}: index format {fmt} (before segments); run `rag index` to upgrade it "
                    "(nothing is re-embedded), or rebuild with `rag index --rebuild`",
                    where.parent,
                )
            data["roots"] = tuple(data.get("roots", ()))
            data["segments"] = tuple(SegmentEntry.from_dict(s) for s in data.get("segments", ()))
            known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
            manifest = cls(**known)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise IndexCorruptError(f"{where}: unreadable manifest ({exc}); {REBUILD_HINT}") from exc
        if manifest.format not in READABLE_FORMATS:
            raise IndexMismatchError(
                f"{where}: index format {manifest.format}, this version reads {FORMAT_VERSION}; {REBUILD_HINT}"
            )
        return manifest


def file_digest(path: Path) -> str:
    """``xxh3_128:<hex>`` of a file: finds damage (truncation, flipped bits) at memory speed.

    Not a defence against a deliberate forgery (an attacker who can write the file can also
    write the manifest); rows are validated when read for that.
    """
    with open(path, "rb") as fh:
        return stream_digest(fh)


def head_digest(path: Path, length: int) -> str:
    """``xxh3_128:<hex>`` of the first ``length`` bytes of a file (all of it if shorter)."""
    with open(path, "rb") as fh:
        return stream_digest(fh, length)


def stream_digest(fh: BinaryIO, length: int | None = None) -> str:
    """``xxh3_128:<hex>`` of an open file from its position: ``length`` bytes, or to its end."""
    import xxhash

    digest = xxhash.xxh3_128()
    while length is None or length > 0:
        block = fh.read(1 << 20 if length is None else min(length, 1 << 20))
        if not block:
            break
        digest.update(block)
        if length is not None:
            length -= len(block)
    return "xxh3_128:" + digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()

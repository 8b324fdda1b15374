"""Generations of an index folder: the ``CURRENT`` pointer, the writers' lock, garbage collection.

Layout::

    LOCK                 writers hold an flock on it (released by the kernel if they die)
    CURRENT              name of the live generation; replaced with os.replace
    gen-000007/manifest.json
                         a version: model, files, and the segments it is made of
    seg-000003/          an immutable segment (see :mod:`embeddings.stores.embedded.segments`), shared by
                         every generation that lists it

A writer writes new segments and a new generation folder, renames them into place and
only then switches ``CURRENT``; a crash at any point leaves the previous state or the
new one. Generations older than the last two, and segments no kept generation lists,
are removed by the next writer.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import time
from pathlib import Path

from embeddings.stores.manifest import REBUILD_HINT, IndexCorruptError, IndexLockedError

_GENERATION_NAME = re.compile(r"gen-\d{6,}")


def current_generation(index_dir: Path) -> str | None:
    """Name of the live generation folder, or None when there is no index."""
    try:
        raw = (Path(index_dir) / "CURRENT").read_bytes()
    except FileNotFoundError:
        return None
    name = raw.decode("ascii", errors="replace").strip()
    if not _GENERATION_NAME.fullmatch(name):
        raise IndexCorruptError(f"{index_dir}/CURRENT is damaged ({name[:40]!r}); {REBUILD_HINT}")
    return name


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteLock:
    """An exclusive ``flock`` on ``index_dir/LOCK``; the kernel drops it if the holder dies."""

    def __init__(self, index_dir: Path, timeout: float | None = None) -> None:
        self.path = Path(index_dir) / "LOCK"
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> WriteLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if deadline is not None and time.monotonic() > deadline:
                    os.close(fd)
                    raise IndexLockedError(
                        f"{self.path.parent} is being updated by another process; try again when it finishes"
                    ) from None
                time.sleep(0.05)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def fsync_files(folder: Path) -> None:
    """Flush every file of ``folder`` and the folder itself to disk."""
    for f in folder.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    fsync_dir(folder)


def highest_number(index_dir: Path, prefix: str) -> int:
    """The highest N of the ``{prefix}-N`` folders present (0 when none)."""
    numbers = [
        int(p.name[len(prefix) + 1 :])
        for p in Path(index_dir).glob(f"{prefix}-*")
        if p.name[len(prefix) + 1 :].isdigit()
    ]
    return max(numbers, default=0)


def switch_current(index_dir: Path, name: str) -> None:
    """Point ``CURRENT`` at generation ``name`` atomically (after its folder is on disk)."""
    fsync_dir(index_dir)  # the new folder is on disk before CURRENT can name it
    pointer = index_dir / "CURRENT.tmp"
    with open(pointer, "w", encoding="utf-8") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(pointer, index_dir / "CURRENT")
    fsync_dir(index_dir)


def _segments_of(gen: Path) -> set[str] | None:
    try:
        data = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
        return {str(s["name"]) for s in data.get("segments", ())}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def collect_garbage(index_dir: Path, keep: int = 2) -> None:
    """Remove generations older than the last ``keep``, segments none of them lists, and dead temp folders.

    Call only while holding the write lock. The previous generation (and its segments)
    is kept so that a reader that just read ``CURRENT`` can still open it.
    """
    index_dir = Path(index_dir)
    live = current_generation(index_dir)
    if live is None:
        return
    live_number = int(live.removeprefix("gen-"))
    kept = []
    for gen in index_dir.glob("gen-*"):
        number = int(gen.name.removeprefix("gen-")) if gen.name[4:].isdigit() else -1
        # Newer than live: written by a writer that died before switching CURRENT.
        if number > live_number or number <= live_number - keep:
            shutil.rmtree(gen, ignore_errors=True)
        else:
            kept.append(gen)
    referenced: set[str] = set()
    for gen in kept:
        names = _segments_of(gen)
        if names is None:  # unreadable: keep every segment rather than guess
            return
        referenced |= names
    for seg in index_dir.glob("seg-*"):
        if seg.name not in referenced:
            shutil.rmtree(seg, ignore_errors=True)
    for tmp in index_dir.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)

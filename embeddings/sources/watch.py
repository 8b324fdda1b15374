"""A watched corpus folder: files added, changed or removed are indexed within seconds, in batches.

:func:`watch_folder` waits on the operating system's file events (watchfiles: inotify on
Linux, no polling), lets a burst settle for ``debounce_ms`` (a copied folder of 200 articles is
one batch, not 200 runs) and then calls ``on_batch`` with what changed. The caller indexes
(``rag index --watch``, ``rag chat --watch``); a failed batch is reported and the watch goes on.
Hidden files (the corpus folder's ``.upload-…`` temporary files among them) and types the
index does not read are not events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from embeddings.readers.files import SUFFIXES

#: How long a burst of changes may go quiet before it is indexed as one batch.
DEBOUNCE_MS = 400


@dataclass(frozen=True)
class Change:
    """One file event: ``kind`` is ``"added"``, ``"modified"`` or ``"deleted"``; ``name`` relative to the folder."""

    kind: str
    name: str


def relevant(root: Path, path: str) -> bool:
    """Whether an event on ``path`` concerns an article of the folder ``root``.

    >>> relevant(Path("/c"), "/c/a.txt"), relevant(Path("/c"), "/c/.upload-1f"), relevant(Path("/c"), "/c/x.png")
    (True, False, False)
    """
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return False
    return bool(parts) and not any(p.startswith(".") for p in parts) and Path(path).suffix.lower() in SUFFIXES


def watch_folder(
    root: Path,
    on_batch: Callable[[list[Change]], object],
    *,
    stop: threading.Event | None = None,
    debounce_ms: int = DEBOUNCE_MS,
    on_error: Callable[[BaseException], object] | None = None,
) -> None:
    """Call ``on_batch(changes)`` for every settled burst of changes under ``root`` until ``stop`` is set.

    Args:
        root: the corpus folder.
        on_batch: indexes; what it raises goes to ``on_error`` (the watch goes on), or up when there is none.
        stop: set it to end the watch (checked at least every ``debounce_ms``).
        debounce_ms: quiet time that ends a burst.
    """
    from watchfiles import Change as Kind
    from watchfiles import watch  # lazy: only a watch needs it

    root = Path(root).resolve()
    names = {Kind.added: "added", Kind.modified: "modified", Kind.deleted: "deleted"}
    for events in watch(
        root,
        watch_filter=lambda _kind, path: relevant(root, path),
        debounce=debounce_ms,
        step=50,
        stop_event=stop,
        rust_timeout=max(debounce_ms, 200),
        yield_on_timeout=False,
        raise_interrupt=False,
    ):
        batch = sorted({Change(names[kind], Path(path).relative_to(root).as_posix()) for kind, path in events},
                       key=lambda c: (c.name, c.kind))  # fmt: skip
        try:
            on_batch(batch)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(exc)


def start_watch(root: Path, on_batch, *, on_error=None, debounce_ms: int = DEBOUNCE_MS) -> threading.Event:
    """Run :func:`watch_folder` in a daemon thread; returns the event that stops it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=watch_folder,
        args=(root, on_batch),
        kwargs={"stop": stop, "debounce_ms": debounce_ms, "on_error": on_error},
        name="corpus-watch",
        daemon=True,
    )
    thread.start()
    return stop

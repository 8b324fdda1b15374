"""A memo for functions of a whole document's text, bounded by bytes and keyed by a digest of the text.

``functools.lru_cache`` keyed by the text keeps every text it has seen alive (a removed 5 MB
article stays in memory) and counts entries, not bytes. :func:`text_memo` keeps a 16-byte
digest instead of the text and drops the least recently used results once their estimated
size passes ``max_bytes``. Safe for threads: one lock around the dictionary, never held while
the function runs.

>>> @text_memo(max_bytes=10_000)
... def length(text):
...     return len(text)
>>> length("Schoigu"), length("Schoigu"), length.info()
(7, 7, (1, 1))
"""

from __future__ import annotations

import functools
import hashlib
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def approx_size(value: Any) -> int:
    """Bytes a result holds, roughly: the object and, one level down, the items of a container."""
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in value.items())
    elif isinstance(value, tuple | list | frozenset | set):
        size += sum(sys.getsizeof(item) for item in value)
    return size


def text_memo(max_bytes: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Memoise ``fn(text, *args)`` by a digest of ``text`` and ``args``, holding at most ``max_bytes`` of results."""

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        store: OrderedDict[tuple, tuple[T, int]] = OrderedDict()
        lock = threading.Lock()
        used = [0, 0]  # bytes held, hits

        @functools.wraps(fn)
        def wrapper(text: str, *args):
            key = (hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest(), args)
            with lock:
                found = store.get(key)
                if found is not None:
                    store.move_to_end(key)
                    used[1] += 1
                    return found[0]
            value = fn(text, *args)
            size = approx_size(value)
            with lock:
                if key not in store and size <= max_bytes:
                    store[key] = (value, size)
                    used[0] += size
                    while used[0] > max_bytes:
                        _, (_, dropped) = store.popitem(last=False)
                        used[0] -= dropped
            return value

        def info() -> tuple[int, int]:
            """(entries, hits)."""
            with lock:
                return len(store), used[1]

        def clear() -> None:
            with lock:
                store.clear()
                used[0] = 0

        wrapper.info = info  # type: ignore[attr-defined]
        wrapper.cache_clear = clear  # type: ignore[attr-defined]
        return wrapper

    return decorate

"""How many answers one client may have running at once, across the chat page, ``/chat`` and ``/ask``.

The global limit is the Gradio queue's: every answering route shares one concurrency id
(:data:`ANSWERS`) with :data:`ANSWER_WORKERS` workers, so the chat and the API together never
run more answers at once than the machine has cores for. On top of that a client (an
address; on loopback, where every local program shares 127.0.0.1, a browser session) gets
:data:`PER_CLIENT` answer at a time: a second question sent before the first is answered
is refused at once instead of taking a second worker.

>>> slots = Slots(per_client=1)
>>> with slots.hold("a"):
...     try:
...         with slots.hold("a"):
...             pass
...     except Busy as busy:
...         print(busy)
...     with slots.hold("b"):
...         print(slots.running())
one question at a time, please: wait for the answer to the one before
2
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections.abc import Iterator
from typing import Any

ANSWERS = "answers"  # the Gradio concurrency id shared by the chat and the API
ANSWER_WORKERS = 2  # answers computed at once, in all: the machine's cores (the CPU work is the encoder)
PER_CLIENT = 1


class Busy(RuntimeError):
    """The client already has as many answers running as it may."""


class Slots:
    """Per-client counts of running answers."""

    def __init__(self, per_client: int = PER_CLIENT) -> None:
        self.per_client = per_client
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, client: str) -> None:
        """Count one more answer of ``client``.

        Raises:
            Busy: the client has ``per_client`` answers running already.
        """
        with self._lock:
            mine = self._running.get(client, 0)
            if mine >= self.per_client:
                raise Busy("one question at a time, please: wait for the answer to the one before")
            self._running[client] = mine + 1

    def release(self, client: str) -> None:
        with self._lock:
            left = self._running.get(client, 1) - 1
            if left:
                self._running[client] = left
            else:
                self._running.pop(client, None)

    @contextlib.contextmanager
    def hold(self, client: str) -> Iterator[None]:
        """:meth:`acquire` for the block, :meth:`release` after it."""
        self.acquire(client)
        try:
            yield
        finally:
            self.release(client)

    def running(self) -> int:
        with self._lock:
            return sum(self._running.values())


def client_key(request: Any) -> str:
    """Who is asking: the client's address, or on loopback its session (all local programs share 127.0.0.1).

    >>> class R: client = type("C", (), {"host": "192.0.2.7"})(); session_hash = "s1"
    >>> client_key(R()), client_key(None)
    ('192.0.2.7', 'local')
    """
    if request is None:
        return "local"  # a direct call of the handler, not over HTTP
    host = getattr(getattr(request, "client", None), "host", None) or "?"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return f"{host}#{getattr(request, 'session_hash', None) or '?'}"
    return host

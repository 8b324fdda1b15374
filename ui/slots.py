"""How many answers run at once, in all and per client, across the chat page, ``/chat`` and ``/ask``.

Every answering route shares one Gradio concurrency id (:data:`ANSWERS`, :data:`QUEUE_WORKERS`
workers), and within it :class:`Slots` lets :data:`ANSWER_WORKERS` answers compute at once (the
machine's cores) and only one *long* question (over :data:`LONG_CHARS` characters, which cost
several times a short one) at a time: clients sending the longest allowed questions queue behind
each other in that one lane, and short questions keep the other core. A client (an address; on
loopback, where every local program shares 127.0.0.1, a browser session) gets :data:`PER_CLIENT`
answer at a time: a second question sent before the first is answered is refused at once.

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
QUEUE_WORKERS = 8  # Gradio workers for answers: more than ANSWER_WORKERS, so a long question waiting
# for its lane does not keep a short one from the free core
ANSWER_WORKERS = 2  # answers computed at once, in all: the machine's cores
LONG_CHARS = 120  # a question longer than the longest of eval/dev.jsonl (103) takes the long lane
PER_CLIENT = 1
WAIT_SECONDS = 60.0  # the longest a question waits for a slot before it is refused as "busy"


class Busy(RuntimeError):
    """The client already has as many answers running as it may."""


class Slots:
    """Per-client counts of running answers."""

    def __init__(self, per_client: int = PER_CLIENT, workers: int = ANSWER_WORKERS, wait: float = WAIT_SECONDS) -> None:
        self.per_client = per_client
        self.wait = wait
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()
        self._workers = threading.BoundedSemaphore(workers)
        self._long = threading.BoundedSemaphore(1)

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
    def hold(self, client: str, chars: int = 0) -> Iterator[None]:
        """Run the block as one answer of ``client`` to a question of ``chars`` characters.

        Raises:
            Busy: the client has an answer running, or no slot came free within ``wait`` seconds.
        """
        self.acquire(client)
        try:
            with contextlib.ExitStack() as held:
                if chars > LONG_CHARS:
                    held.enter_context(_taken(self._long, self.wait))
                held.enter_context(_taken(self._workers, self.wait))
                yield
        finally:
            self.release(client)

    def running(self) -> int:
        with self._lock:
            return sum(self._running.values())


@contextlib.contextmanager
def _taken(semaphore: threading.BoundedSemaphore, wait: float) -> Iterator[None]:
    if not semaphore.acquire(timeout=wait):
        raise Busy("the server is busy answering; ask again in a minute")
    try:
        yield
    finally:
        semaphore.release()


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

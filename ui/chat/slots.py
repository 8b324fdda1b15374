"""How many answers run at once, in all and per client, across the chat page, ``/chat`` and ``/ask``.

Every answering route shares one Gradio concurrency id (:data:`ANSWERS`, :data:`QUEUE_WORKERS`
workers), and within it :class:`Slots` lets :data:`ANSWER_WORKERS` answers compute at once (the
machine's cores). When more wait than there are free workers, the one whose client has used the
least answering time lately goes first (each client's seconds decay with a half-life of
:data:`HALF_LIFE_SECONDS`), and clients whose answers have lately taken more than
:data:`COSTLY_SECONDS` each share one worker: clients that keep the workers busy with costly
questions, whatever makes them costly (length, made-up words, passages new to the process),
wait behind a client that asks now and then, and cannot take every core. A client (an address; on loopback,
where every local program shares 127.0.0.1, a browser session) gets :data:`PER_CLIENT` answer at
a time: a second question sent before the first is answered is refused at once. (Without
``--auth``, every program on the machine is trusted alike: one that opens many sessions on
loopback gets many clients' shares.)

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
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

ANSWERS = "answers"  # the Gradio concurrency id shared by the chat and the API
QUEUE_WORKERS = 32  # Gradio workers for answers, each a thread that mostly waits here: so many that the
# waiting happens in Slots, which orders it, rather than in Gradio's first-come queue (issue 23, N11)
THREADS = QUEUE_WORKERS + 32  # the server's thread pool: the answers' workers and as many for everything else
ANSWER_WORKERS = 2  # answers computed at once, in all: the machine's cores
PER_CLIENT = 1
WAIT_SECONDS = 60.0  # the longest a question waits for a slot before it is refused as "busy"
HALF_LIFE_SECONDS = 60.0  # how fast a client's used answering time is forgiven: a minute halves it
COSTLY_SECONDS = 0.5  # an answer that keeps a core busy longer is costly (over 3x the 150 ms a question should
# take, issue 22); clients whose answers are costly on average take one worker at a time between them, so
# the other cores stay free for everyone else (a budget, not a fit)
MAX_CLIENTS = 10_000  # clients whose used time is remembered (the least used are forgotten first)


class Busy(RuntimeError):
    """The client already has as many answers running as it may."""


class Slots:
    """Per-client counts of running answers, and the workers, handed out least-used client first."""

    def __init__(
        self,
        per_client: int = PER_CLIENT,
        workers: int = ANSWER_WORKERS,
        wait: float = WAIT_SECONDS,
        half_life: float = HALF_LIFE_SECONDS,
        clock=time.monotonic,
    ) -> None:
        self.per_client = per_client
        self.wait = wait
        self.half_life = half_life
        self._clock = clock
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()
        self._free = workers
        self._workers = workers
        self._turns = threading.Condition()
        self._waiting: list[tuple[float, int, str, int]] = []  # (used seconds, arrival, client, workers it leaves)
        self._tickets = itertools.count()
        self._used: dict[str, tuple[float, float, float]] = {}  # client -> (seconds, answers, when), decaying

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
        """Run the block as one answer of ``client`` (``chars``, the question's length, is not used to
        schedule: what a question costs shows in the time it takes, which is charged to its client).

        Raises:
            Busy: the client has an answer running, or no worker came free within ``wait`` seconds.
        """
        del chars
        self.acquire(client)
        try:
            self._enter(client)
            started = self._clock()
            try:
                yield
            finally:
                self._leave(client, self._clock() - started)
        finally:
            self.release(client)

    def used(self, client: str) -> float:
        """The client's answering seconds, decayed to now."""
        with self._turns:
            return self._decayed(client)[0]

    def _decayed(self, client: str) -> tuple[float, float]:
        """The client's seconds and answers, decayed to now."""
        seconds, answers, when = self._used.get(client, (0.0, 0.0, 0.0))
        if not answers:
            return 0.0, 0.0
        keep = 0.5 ** ((self._clock() - when) / self.half_life)
        return seconds * keep, answers * keep

    def costly(self, client: str) -> bool:
        """Whether the client's answers have lately taken more than :data:`COSTLY_SECONDS` each."""
        with self._turns:
            return self._costly(client)

    def _costly(self, client: str) -> bool:
        seconds, answers = self._decayed(client)
        return bool(answers) and seconds / answers > COSTLY_SECONDS

    def _enter(self, client: str) -> None:
        with self._turns:
            reserved = self._workers - 1 if self._costly(client) else 0  # workers a costly client leaves free
            ticket = (self._decayed(client)[0], next(self._tickets), client, reserved)
            self._waiting.append(ticket)
            deadline = time.monotonic() + self.wait
            while self._next() != ticket:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._waiting.remove(ticket)
                    self._turns.notify_all()
                    raise Busy("the server is busy answering; ask again in a minute")
                self._turns.wait(timeout=min(left, 1.0))
            self._waiting.remove(ticket)
            self._free -= 1
            self._turns.notify_all()  # the next in line may take another free worker

    def _next(self) -> tuple[float, int, str, int] | None:
        """The waiting answer that goes next: the least-used client's among those a free worker may take."""
        return min((t for t in self._waiting if self._free > t[3]), default=None)

    def _leave(self, client: str, seconds: float) -> None:
        with self._turns:
            self._free += 1
            used, answers = self._decayed(client)
            self._used[client] = (used + max(seconds, 0.0), answers + 1.0, self._clock())
            if len(self._used) > MAX_CLIENTS:
                least = sorted(self._used, key=lambda c: self._decayed(c)[0])
                for old in least[: len(self._used) - MAX_CLIENTS]:
                    del self._used[old]
            self._turns.notify_all()

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

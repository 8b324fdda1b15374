"""Work done when the machine is idle: one daemon thread that gets the CPU and the disk when no one else wants them.

A process that answers questions queues here what must not delay an answer: reading large
index files whole against their digests (:mod:`embeddings.stores.embedded.segments`). On Linux
the thread runs at ``SCHED_IDLE`` and in the idle I/O class (which mq-deadline and BFQ honour);
elsewhere at normal priority.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable

# ioprio_set(2): its number by machine; the idle class gets the disk only when no one else wants it
_IOPRIO_SET = {"x86_64": 251, "aarch64": 30}
_IOPRIO_IDLE = 3 << 13


def lower_priority() -> None:
    """Give the calling thread the CPU and the disk only when nothing else wants them (Linux; elsewhere nothing)."""
    import ctypes
    import platform

    tid = threading.get_native_id()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    number = _IOPRIO_SET.get(platform.machine())
    if number is not None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).syscall(number, 1, tid, _IOPRIO_IDLE)  # 1: IOPRIO_WHO_PROCESS


class _IdleWorker:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="idle-work", daemon=True)
                self._thread.start()
        self._queue.put(job)

    def _run(self) -> None:
        lower_priority()
        while True:
            job = self._queue.get()
            try:
                job()
            except Exception:  # one failed job must not stop the ones behind it
                logging.getLogger(__name__).exception("idle work failed")


_WORKER = _IdleWorker()


def run_when_idle(job: Callable[[], None]) -> None:
    """Run ``job`` on the idle thread, after the jobs queued before it."""
    _WORKER.submit(job)

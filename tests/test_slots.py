"""The answer slots: one answer per client at a time, workers handed out least-used client first."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest

from ui.chat import slots as slots_module
from ui.chat.slots import Busy, Slots


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spend(slots: Slots, clock: Clock, client: str, seconds: float) -> None:
    """One answer of ``client`` that takes ``seconds`` by the slots' clock."""
    with slots.hold(client):
        clock.now += seconds


@contextlib.contextmanager
def occupied(slots: Slots, client: str) -> Iterator[None]:
    """``client`` holds a worker (from another thread) for the duration of the block."""
    inside, leave = threading.Event(), threading.Event()

    def occupy():
        with slots.hold(client):
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=occupy)
    t.start()
    assert inside.wait(10)
    try:
        yield
    finally:
        leave.set()
        t.join(10)


def test_used_time_is_charged_to_its_client_and_decays_by_half_life():
    clock = Clock()
    slots = Slots(half_life=60.0, clock=clock)
    spend(slots, clock, "a", 4.0)
    assert slots.used("a") == pytest.approx(4.0)
    assert slots.used("b") == 0.0
    clock.now += 60.0
    assert slots.used("a") == pytest.approx(2.0)
    spend(slots, clock, "a", 1.0)
    assert slots.used("a") == pytest.approx(2.0 * 0.5 ** (1 / 60) + 1.0)


def test_a_waiting_light_client_goes_before_heavy_ones_that_came_earlier():
    clock = Clock()
    slots = Slots(workers=1, half_life=3600.0, clock=clock)
    for heavy in ("h1", "h2", "h3"):
        spend(slots, clock, heavy, 5.0)
    order: list[str] = []
    occupant_in, occupant_out = threading.Event(), threading.Event()

    def occupy():
        with slots.hold("occupant"):
            occupant_in.set()
            occupant_out.wait(10)

    def ask(client: str):
        with slots.hold(client):
            order.append(client)

    first = threading.Thread(target=occupy)
    first.start()
    assert occupant_in.wait(10)
    waiters = []
    for client in ("h1", "h2", "h3", "light"):  # the light client comes last
        t = threading.Thread(target=ask, args=(client,))
        t.start()
        waiters.append(t)
        deadline = time.monotonic() + 5
        while len(slots._waiting) < len(waiters) and time.monotonic() < deadline:
            time.sleep(0.005)
    assert len(slots._waiting) == 4
    occupant_out.set()
    for t in [first, *waiters]:
        t.join(10)
    assert order[0] == "light"
    assert sorted(order) == ["h1", "h2", "h3", "light"]


def test_no_worker_within_the_wait_is_busy_and_leaves_no_ticket_behind():
    slots = Slots(workers=1, wait=0.2)
    with occupied(slots, "a"):
        with pytest.raises(Busy, match="busy"), slots.hold("b"):
            pass
        assert slots._waiting == []
    with slots.hold("b"):  # the worker is free again and nobody is in the way
        assert slots.running() == 1
    assert slots.running() == 0


def test_a_failing_answer_frees_its_worker_and_is_still_charged():
    clock = Clock()
    slots = Slots(workers=1, clock=clock)
    with pytest.raises(ValueError), slots.hold("a"):
        clock.now += 2.0
        raise ValueError("bad question")
    assert slots.used("a") == pytest.approx(2.0)
    with slots.hold("b"):
        assert slots.running() == 1


def test_the_memory_of_used_time_is_bounded(monkeypatch):
    monkeypatch.setattr(slots_module, "MAX_CLIENTS", 3)
    clock = Clock()
    slots = Slots(clock=clock)
    for n in range(10):
        spend(slots, clock, f"c{n}", 1.0 + n)
    assert len(slots._used) == 3
    assert slots.used("c9") > 0  # the most used are kept


def test_clients_with_costly_answers_share_one_worker_and_leave_the_others_free():
    clock = Clock()
    slots = Slots(workers=2, half_life=3600.0, clock=clock)
    spend(slots, clock, "h1", 3.0)
    spend(slots, clock, "h2", 3.0)
    for _ in range(20):  # much time in all, but every answer cheap
        spend(slots, clock, "light", 0.1)
    assert slots.costly("h1") and slots.costly("h2") and not slots.costly("light")
    assert not slots.costly("new")
    slots.wait = 0.2
    with occupied(slots, "h1"):
        with pytest.raises(Busy), slots.hold("h2"):  # a second costly client may not take the last worker
            pass
        with slots.hold("light"):  # a cheap one may
            assert slots.running() == 2
    with slots.hold("h2"):  # alone, a costly client gets a worker
        pass

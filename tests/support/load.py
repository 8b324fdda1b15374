"""The load test of the web chat as a library: session plans, answer checks, rounds, the report.

``scripts/load_chat.py`` is its command line (the module docstring there says what is
measured); ``tests/test_load.py`` runs short rounds of it.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from html import escape
from itertools import cycle
from pathlib import Path

from rag.answering.followup import resolve  # pure string work: the rewrite the server must make

from .machine import cpu_seconds, machine, memory_mib, percentiles

ROOT = Path(__file__).resolve().parents[2]
DEV_SET = ROOT / "eval" / "dev.jsonl"
SEEDS = ROOT / "seeds"
#: (question, follow-up) pairs whose rewrite is known (tests/test_followup.py).
FOLLOW_UPS = (
    ("When did Shoigu visit Beijing?", "And Belousov?"),
    ("Wann war Schoigu in Peking?", "Und in Moskau?"),
    ("Wann besuchte Schoigu Peking?", "Und Belousow?"),
    ("When did Shoigu visit Beijing?", "What about Dong Jun?"),
)
FOLLOW_UP_EVERY = 4  # one follow-up pair after every few plain questions
CITATION = re.compile(r"\[(\d+)\]")
# A chat answer lists each source it carries on a line of its own that starts with its linked number:
# '<span class="rag-src">**[\[1\]](?article=…' (ui/chat/render.py, _source_block).
SOURCE_ID = re.compile(r'^<span class="rag-src">\*\*\[\\\[(\d+)\\\]\]', re.MULTILINE)
SOURCES_HEADING = re.compile(r"\n\*\*(?:Sources|Quellen)\*\*\n|\n<details>")


# ----------------------------------------------------------------------------- pure helpers


@dataclass(frozen=True)
class Step:
    """One request of a session: ``endpoint`` is ``ask`` or ``chat``; ``follows`` is the question it follows up."""

    endpoint: str
    question: str
    follows: str = ""


@dataclass(frozen=True)
class Sample:
    """One finished request: when it ran (``time.monotonic``) and what went wrong, if anything."""

    session: int
    endpoint: str
    start: float
    end: float
    error: str | None = None
    follow_up: bool = False

    @property
    def seconds(self) -> float:
        return self.end - self.start


def load_questions(path: Path = DEV_SET) -> list[str]:
    """The questions of a JSONL question file (``{"question": ...}`` per line)."""
    return [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def session_plan(questions: Sequence[str], session: int) -> Iterator[Step]:
    """The endless request sequence of one session: a question and its follow-up first (so that even a
    short run checks follow-ups), then the list from a different place per session, alternating
    endpoints, with another follow-up pair after every ``FOLLOW_UP_EVERY`` questions.

    >>> steps = session_plan(["q1", "q2", "q3"], 1)
    >>> [(s.endpoint, s.question, s.follows) for s in [next(steps) for _ in range(8)]]  # doctest: +NORMALIZE_WHITESPACE
    [('chat', 'Wann war Schoigu in Peking?', ''), ('chat', 'Und in Moskau?', 'Wann war Schoigu in Peking?'),
     ('chat', 'q2', ''), ('ask', 'q3', ''), ('chat', 'q1', ''), ('ask', 'q2', ''),
     ('ask', 'Wann besuchte Schoigu Peking?', ''), ('ask', 'Und Belousow?', 'Wann besuchte Schoigu Peking?')]
    """
    endpoints = ("ask", "chat")
    pairs = cycle(FOLLOW_UPS[session % len(FOLLOW_UPS) :] + FOLLOW_UPS[: session % len(FOLLOW_UPS)])
    for n, i in enumerate(cycle(range(len(questions)))):
        if n % FOLLOW_UP_EVERY == 0:
            base, follow = next(pairs)
            endpoint = endpoints[(n // FOLLOW_UP_EVERY + session) % 2]
            yield Step(endpoint, base)
            yield Step(endpoint, follow, follows=base)
        yield Step(endpoints[(n + session) % 2], questions[(i + session) % len(questions)])


def citation_problem(text: str, numbers: Sequence[int]) -> str | None:
    """What is wrong with an answer's citations, or ``None``: every ``[n]`` must be a returned citation.

    >>> citation_problem("Am Freitag [1] und [2].", [1, 2, 3]) is None
    True
    >>> citation_problem("Am Freitag [4].", [1, 2])
    'cites [4], but the sources are [1, 2]'
    >>> citation_problem("  ", [])
    'empty answer'
    """
    if not text.strip():
        return "empty answer"
    unknown = sorted({int(n) for n in CITATION.findall(text)} - set(numbers))
    if unknown:
        return f"cites {', '.join(f'[{n}]' for n in unknown)}, but the sources are {sorted(set(numbers))}"
    return None


def max_in_flight(samples: Sequence[Sample]) -> int:
    """The most requests that were running at the same moment.

    >>> max_in_flight([Sample(0, "ask", 0, 2), Sample(1, "ask", 1, 3), Sample(2, "chat", 2.5, 4)])
    2
    """
    events = sorted([(s.start, 1) for s in samples] + [(s.end, -1) for s in samples], key=lambda e: (e[0], e[1]))
    running = best = 0
    for _t, step in events:
        running += step
        best = max(best, running)
    return best


@dataclass(frozen=True)
class RoundResult:
    """What one round measured (latencies in milliseconds, memory in MiB)."""

    sessions: int
    seconds: float
    requests: int
    errors: int
    requests_by_endpoint: dict[str, int]
    sessions_served: int  # sessions that got at least one good answer
    follow_ups: int  # good answers to follow-up questions (read against their session's previous one)
    max_in_flight: int
    req_per_s: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    error_examples: tuple[str, ...] = ()
    stuck_sessions: int = 0
    rss_mib: float | None = None
    hwm_mib: float | None = None
    server_cpu_ms_per_request: float | None = None  # the server's CPU time (all threads) over requests served


def summarise(samples: Sequence[Sample], sessions: int, seconds: float, stuck: int = 0) -> RoundResult:
    """One round's numbers from its samples (connection attempts count as requests only when they fail).

    >>> r = summarise([Sample(0, "ask", 0, 0.1), Sample(1, "chat", 0.05, 0.3), Sample(1, "chat", 0.3, 0.4, "boom")],
    ...               sessions=2, seconds=1.0)
    >>> r.requests, r.errors, r.sessions_served, r.max_in_flight, r.requests_by_endpoint
    (3, 1, 2, 2, {'ask': 1, 'chat': 2})
    """
    counted = [s for s in samples if s.endpoint != "connect" or s.error]
    good = [s for s in counted if s.error is None]
    errors = [s for s in counted if s.error is not None]
    latencies = [s.seconds for s in good] or [0.0]
    p50, p95 = percentiles(latencies)
    examples = tuple(f"{msg} (x{n})" for msg, n in Counter(s.error for s in errors).most_common(5))
    return RoundResult(
        sessions=sessions,
        seconds=round(seconds, 2),
        requests=len(counted),
        errors=len(errors) + stuck,
        requests_by_endpoint=dict(sorted(Counter(s.endpoint for s in counted).items())),
        sessions_served=len({s.session for s in good}),
        follow_ups=sum(s.follow_up for s in good),
        max_in_flight=max_in_flight(counted),
        req_per_s=round(len(counted) / seconds, 2) if seconds else 0.0,
        p50_ms=round(p50),
        p95_ms=round(p95),
        max_ms=round(max(latencies) * 1000),
        error_examples=examples,
        stuck_sessions=stuck,
    )


def markdown(report: dict) -> str:
    """The report as a Markdown table, one column per round, then memory and the machine."""
    rounds = report["rounds"]
    head = ["", *(f"round {i}" for i in range(1, len(rounds) + 1))]

    def row(label: str, fmt: Callable[[dict], str]) -> list[str]:
        return [label, *(fmt(r) for r in rounds)]

    def num(value) -> str:
        return "n/a" if value is None else f"{value:.0f}"

    rows = [
        head,
        ["---"] * len(head),
        row("sessions x seconds", lambda r: f"{r['sessions']} x {report['seconds']:g}"),
        row("requests (ask / chat)", lambda r: _by_endpoint(r)),
        row("of which follow-ups", lambda r: str(r["follow_ups"])),
        row("errors", lambda r: str(r["errors"])),
        row("requests/s", lambda r: f"{r['req_per_s']:.1f}"),
        row("latency p50 / p95 / max ms", lambda r: f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f} / {r['max_ms']:.0f}"),
        row("sessions served / most in flight", lambda r: f"{r['sessions_served']} / {r['max_in_flight']}"),
        row("server CPU ms per request", lambda r: num(r["server_cpu_ms_per_request"])),
        row("load generator CPU s (this process)", lambda r: f"{r['client_cpu_s']:.0f}"),
        row("server RSS after (peak) MiB", lambda r: f"{num(r['rss_mib'])} ({num(r['hwm_mib'])})"),
    ]
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    growth = report.get("growth_mib")
    lines += [
        "",
        f"Server RSS before round 1 (after a warm-up question): {num(report['rss_before_mib'])} MiB"
        f" (peak {num(report['hwm_before_mib'])} MiB); growth from round 1 to round 2: "
        + ("n/a" if growth is None else f"{growth:+.1f} MiB")
        + f" (target <= {report['max_growth_mib']} MiB).",
        f"Targets met: {'yes' if report['passed'] else 'no'}. Server: {report['server']}.",
        f"Machine: {report['machine']}; load average at start {report['loadavg']}.",
    ]
    for i, r in enumerate(rounds, start=1):
        lines += [f"Round {i} error: {e}" for e in r["error_examples"]]
    return "\n".join(lines) + "\n"


def _by_endpoint(r: dict) -> str:
    by = r["requests_by_endpoint"]
    return f"{r['requests']} ({by.get('ask', 0)} / {by.get('chat', 0)})"


# ----------------------------------------------------------------------------- the sessions


def _client(url: str, auth: tuple[str, str] | None, timeout: float):
    from gradio_client import Client

    return Client(
        url, verbose=False, download_files=False, auth=auth, analytics_enabled=False, httpx_kwargs={"timeout": timeout}
    )


def run_step(client, step: Step, chat_history: list[str], timeout: float) -> str | None:
    """Send one request and check the answer; returns what is wrong, or ``None``.

    ``chat_history`` is this session's ``/chat`` questions so far (the server keeps the
    chat per session); it is extended when the question was sent.
    """
    if step.endpoint == "ask":
        data = client.submit(step.question, step.follows, api_name="/ask").result(timeout=timeout)
        problem = citation_problem(data["text"], [c["n"] for c in data["citations"]])
        expected = resolve([step.follows, step.question]) if step.follows else None
        if problem is None and expected and data["question"] != expected:
            problem = f"follow-up {step.question!r} was read as {data['question']!r}, not {expected!r}"
        return problem
    expected = resolve([*chat_history, step.question]) if step.follows else None
    chat_history.append(step.question)
    message = client.submit(step.question, api_name="/chat").result(timeout=timeout)
    text = SOURCES_HEADING.split(message, maxsplit=1)[0]  # the answer; its sources follow in the same message
    text = re.sub(r"\[\\\[(\d+)\\\]\]\([^)]*\)", r"[\1]", text)  # linked [n] back to plain [n]
    problem = citation_problem(text, [int(n) for n in SOURCE_ID.findall(message)])
    if problem is None and expected and escape(expected, quote=False) not in message:
        problem = f"follow-up {step.question!r} was not read as {expected!r} (another session's history?)"
    return problem


def run_session(
    url: str,
    session: int,
    questions: Sequence[str],
    stop_at: float,
    hard_deadline: float,
    samples: list[Sample],
    auth: tuple[str, str] | None = None,
) -> None:
    """One client: connect, then send requests until ``stop_at``; every outcome goes into ``samples``."""
    start = time.monotonic()
    try:
        client = _client(url, auth, timeout=max(1.0, hard_deadline - start))
    except Exception as exc:  # a failed connection is a failed request, reported, never raised
        samples.append(Sample(session, "connect", start, time.monotonic(), _describe(exc)))
        return
    samples.append(Sample(session, "connect", start, time.monotonic()))
    history: list[str] = []
    try:
        for step in session_plan(questions, session):
            start = time.monotonic()
            if start >= stop_at:
                break
            try:
                error = run_step(client, step, history, timeout=max(0.1, hard_deadline - start))
            except Exception as exc:
                error = _describe(exc)
            samples.append(Sample(session, step.endpoint, start, time.monotonic(), error, bool(step.follows)))
            if error and step.endpoint == "chat":  # the server's copy of the chat is unknown now: start afresh
                client.reset_session()
                history.clear()
    finally:
        client.close()


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_round(
    url: str,
    sessions: int,
    seconds: float,
    questions: Sequence[str],
    *,
    grace: float = 60,
    auth: tuple[str, str] | None = None,
) -> RoundResult:
    """``sessions`` concurrent sessions for ``seconds``; requests still running ``grace`` s later are errors."""
    samples: list[Sample] = []  # list.append is atomic: the sessions share it without a lock
    started = time.monotonic()
    stop_at, hard_deadline = started + seconds, started + seconds + grace
    threads = [
        threading.Thread(
            target=run_session,
            args=(url, n, questions, stop_at, hard_deadline, samples, auth),
            name=f"load-session-{n}",
            daemon=True,  # a session stuck in a library call must not keep the process alive
        )
        for n in range(sessions)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, hard_deadline + 10 - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    wall = time.monotonic() - started
    return summarise(list(samples), sessions, min(wall, seconds + grace), stuck=stuck)


def warm_up(url: str, question: str, auth: tuple[str, str] | None = None, timeout: float = 120) -> None:
    """One question through ``/ask`` so the model and index are loaded before memory is first read."""
    client = _client(url, auth, timeout)
    try:
        client.submit(question, api_name="/ask").result(timeout=timeout)
    finally:
        client.close()


# ----------------------------------------------------------------------------- main


def run(
    url: str,
    pid: int | None,
    *,
    sessions: int,
    seconds: float,
    rounds: int,
    grace: float,
    max_growth_mib: float,
    questions: Sequence[str],
    server: str,
    auth: tuple[str, str] | None = None,
    log: Callable[[str], object] = lambda _msg: None,
) -> dict:
    """Warm up, measure memory, run the rounds; the report as a dict (see :func:`markdown`)."""
    loadavg = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    warm_up(url, questions[0], auth)
    before = memory_mib(pid) if pid else (None, None)
    results = []
    for n in range(1, rounds + 1):
        log(f"load: round {n}: {sessions} sessions x {seconds:g} s")
        cpu, own_cpu = cpu_seconds(pid) if pid else None, time.process_time()
        result = run_round(url, sessions, seconds, questions, grace=grace, auth=auth)
        own_cpu = round(time.process_time() - own_cpu, 1)
        rss, hwm = memory_mib(pid) if pid else (None, None)
        cpu_ms = None
        if pid and result.requests:
            cpu_ms = round((cpu_seconds(pid) - cpu) * 1000 / result.requests)
        results.append(
            {
                **asdict(result),
                "rss_mib": rss,
                "hwm_mib": hwm,
                "server_cpu_ms_per_request": cpu_ms,
                "client_cpu_s": own_cpu,  # the load generator's own CPU time, on the same machine
            }
        )
        log(f"load: round {n}: {result.requests} requests, {result.errors} errors, p50 {result.p50_ms} ms, RSS {rss}")
    growth = None
    if pid and rounds >= 2:
        growth = round(results[-1]["rss_mib"] - results[0]["rss_mib"], 1)
    errors = sum(r["errors"] for r in results)
    return {
        "server": server,
        "sessions": sessions,
        "seconds": seconds,
        "rounds": results,
        "rss_before_mib": before[0],
        "hwm_before_mib": before[1],
        "growth_mib": growth,
        "max_growth_mib": max_growth_mib,
        "passed": errors == 0 and (growth is None or growth <= max_growth_mib),
        "machine": machine(),
        "loadavg": loadavg,
    }

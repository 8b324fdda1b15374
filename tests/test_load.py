"""The chat under load (:mod:`tests.support.load`), short, against a real ``rag chat`` process on loopback.

The full-size run (50 sessions x 60 s, two rounds) is the script's default and is not a test:
it takes minutes and its timings depend on the machine. Here 8 sessions run for 10 s, twice,
and the assertions are about behaviour: no errors, every answer's ``[n]`` among its sources,
follow-ups read against their own session's previous question, sessions served at the same
time, the server gone afterwards, and no gross memory growth from one round to the next.
"""

from __future__ import annotations

import doctest
import shutil
import subprocess
import sys
import time

import pytest

from tests.support import load, servers

from .conftest import ROOT, SEEDS, served_chat

SESSIONS = 8
SECONDS = 10
# Generous on purpose (allocator noise, Gradio's per-session state of ~70 KB, caches that fill
# in round 1): a leak of about a megabyte per request (~100 per round here) still breaks it.
MAX_GROWTH_MIB = 50


# ---- pure helpers (fast) ------------------------------------------------------------------------


def test_doctests_of_the_load_library():
    assert doctest.testmod(load).failed == 0


def test_the_script_is_a_command_line_over_the_support_package():
    """``python -m scripts.load_chat`` from the checkout: imports resolve normally, bad arguments are one line."""
    done = subprocess.run(
        [sys.executable, "-m", "scripts.load_chat", "--sessions", "0"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 1 and done.stderr == "load: error: --sessions, --seconds and --rounds must be positive\n"


def test_citation_problem():
    assert load.citation_problem("Am 14. Oktober [1] [3].", [1, 2, 3]) is None
    assert load.citation_problem("Nicht gefunden.", []) is None  # an abstention cites nothing
    assert "[2]" in load.citation_problem("Laut [2].", [1])
    assert load.citation_problem("", [1]) == "empty answer"


def test_session_plans_mix_endpoints_and_follow_ups():
    from itertools import islice

    questions = load.load_questions()
    plans = [list(islice(load.session_plan(questions, n), 40)) for n in range(4)]
    assert len({plan[2].question for plan in plans}) == 4  # after the first pair, sessions start at different places
    for plan in plans:
        assert {s.endpoint for s in plan} == {"ask", "chat"}
        follow_ups = [i for i, s in enumerate(plan) if s.follows]
        assert follow_ups[0] == 1 and len(follow_ups) > 3
        for i in follow_ups:  # a follow-up comes right after its question, on the same endpoint
            assert plan[i - 1].question == plan[i].follows and plan[i - 1].endpoint == plan[i].endpoint


def test_summarise_counts_errors_and_overlap():
    S = load.Sample
    samples = [
        S(0, "connect", 0.0, 0.1),
        S(0, "ask", 0.1, 0.5),
        S(1, "connect", 0.0, 0.2, "ConnectError: refused"),
        S(2, "chat", 0.2, 0.6, follow_up=True),
        S(2, "chat", 0.6, 0.9, "cites [7], but the sources are [1]"),
    ]
    r = load.summarise(samples, sessions=3, seconds=1.0, stuck=1)
    assert r.requests == 4 and r.errors == 3  # two failed requests and one stuck session
    assert r.sessions_served == 2 and r.max_in_flight == 2 and r.follow_ups == 1
    assert r.requests_by_endpoint == {"ask": 1, "chat": 2, "connect": 1}
    assert r.p50_ms == 400 and r.max_ms == 400
    assert any("cites [7]" in e for e in r.error_examples)


def test_server_stop_kills_a_process_that_ignores_sigterm(tmp_path):
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(99)"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert process.stdout.readline() == b"up\n"
    log = tmp_path / "server.log"
    log.write_text("")
    server = servers.Server(process, "http://127.0.0.1:1/", log)
    started = time.monotonic()
    server.stop(timeout=1)
    assert process.poll() is not None and time.monotonic() - started < 10
    assert not log.exists()


# ---- the real thing (slow) ----------------------------------------------------------------------


@pytest.mark.slow
def test_start_server_reports_why_it_cannot_start(tmp_path, model_cache):
    why = r"rag chat exited with status 1:[\s\S]*rag chat: error: \S*missing: no such folder"
    with pytest.raises(RuntimeError, match=why):
        servers.start_server(tmp_path / "missing", tmp_path / "index", cache_dir=model_cache, timeout=120)


@pytest.mark.slow
def test_short_load_run(tmp_path, seed_index, model_cache):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(SEEDS, corpus)
    shutil.copytree(seed_index, index)
    server = servers.start_server(corpus, index, cache_dir=model_cache, timeout=180)
    try:
        report = load.run(
            server.url,
            server.pid,
            sessions=SESSIONS,
            seconds=SECONDS,
            rounds=2,
            grace=60,
            max_growth_mib=MAX_GROWTH_MIB,
            questions=load.load_questions(),
            server="test",
        )
    finally:
        log = server.log_tail(6000)  # the server's own account of any error (its log goes with it)
        server.stop()
    assert server.process.poll() is not None  # stopped, not left running
    print(load.markdown(report))
    for r in report["rounds"]:
        assert r["errors"] == 0, (r["error_examples"], log)
        assert r["stuck_sessions"] == 0
        assert r["sessions_served"] == SESSIONS
        assert r["follow_ups"] > 0  # every session starts with a question and its follow-up
        assert r["requests_by_endpoint"].get("ask") and r["requests_by_endpoint"].get("chat")
        assert r["max_in_flight"] >= SESSIONS // 2  # sessions were served at the same time, not one by one
        assert r["server_cpu_ms_per_request"] > 0
    assert report["rss_before_mib"] > 0 and report["growth_mib"] is not None
    assert report["growth_mib"] < MAX_GROWTH_MIB, load.markdown(report)
    assert report["passed"]


@pytest.mark.slow
def test_per_session_state_is_bounded(tmp_path, seed_index, embedder, monkeypatch):
    """Gradio keeps state for every client session (~60-70 KB each, measured); the chat caps how many."""
    from gradio_client import Client

    monkeypatch.setattr("ui.chat.app.MAX_SESSIONS", 3)
    with served_chat(tmp_path, seed_index, embedder) as served:
        client = Client(served.url, verbose=False, download_files=False, analytics_enabled=False)
        seen = set()
        for _ in range(6):
            client.reset_session()  # a new visitor, as far as the server can tell
            seen.add(client.session_hash)
            assert client.predict(api_name="/documents")["data"]
        client.close()
        sessions = set(served.blocks.state_holder.session_data)
        assert len(seen) == 6 and len(sessions) <= 3
        assert client.session_hash in sessions  # the least recently used go first

"""Load test of the web chat: concurrent gradio_client sessions on loopback, two rounds, then stop.

    .venv/bin/python -m scripts.load_chat                          # 50 sessions x 60 s, 2 rounds (~3 min)
    .venv/bin/python -m scripts.load_chat --sessions 8 --seconds 10
    .venv/bin/python -m scripts.load_chat --url http://127.0.0.1:7860/ --pid 4242   # a chat already running
    .venv/bin/python -m scripts.load_chat --abuse                  # the attacks of issues 13 and 23 instead (~6 min)

A thin command line over :mod:`tests.support.load` (sessions, checks, report) and
:mod:`tests.support.servers` (starting and stopping the chat); run it from the checkout.

Without ``--url`` it starts ``rag chat`` as a separate process on a free 127.0.0.1 port over
a temporary copy of ``seeds/`` (real model, real index; ``--cache-dir`` as for ``rag``), and
stops it at the end, also on Ctrl-C or failure. Each session is one ``gradio_client.Client``
(like one browser tab) that starts with a question and its follow-up ("And Belousov?"),
then loops over the questions of ``eval/dev.jsonl``, alternating the ``/ask`` API and the
streamed ``/chat`` endpoint, with more follow-ups on both.

A request is an error if it raises, times out, or its answer breaks an invariant: the text
is empty, a ``[n]`` in it is not one of the returned citations, or a follow-up was not read
against that session's own previous question (which would mean chat histories got mixed up).

Server memory is VmRSS (and the peak, VmHWM) from ``/proc/PID/status``: after a warm-up
question, after round 1 and after round 2; "growth" is round 2's minus round 1's. Targets:
0 errors and growth <= ``--max-growth-mib``. Also reported: the server's CPU time per request
(``/proc/PID/stat``) and this process's own CPU time. The load generator shares the machine,
and gradio_client is not cheap (two threads per request poll every 50 ms), so on a small
machine latency and requests/s understate the server; its CPU per request does not.
Prints a Markdown table and writes
``load-results.json`` and ``load-results.md`` into ``--out`` (default ``load-out/``).
Exit status 0 when the targets are met, 1 when not (or the server cannot be started).

Bounded: sessions start no request after ``--seconds``; a request still running
``--grace`` seconds later is an error; session threads are joined (a stuck one is reported);
the server process group is terminated in a ``finally``.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tests.support.load import DEV_SET, ROOT, SEEDS, load_questions, markdown, run
from tests.support.machine import machine
from tests.support.servers import QUIET_ENV, start_server


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50, help="concurrent client sessions (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=60, help="length of each round (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; memory growth compares the last to the first")
    parser.add_argument(
        "--grace", type=float, default=60, help="seconds a request may still run after a round ends (default 60)"
    )
    parser.add_argument("--max-growth-mib", type=float, default=25, help="memory growth target (default 25 MiB)")
    parser.add_argument("--questions", type=Path, default=DEV_SET, help="JSONL question file (default eval/dev.jsonl)")
    parser.add_argument("--url", help="test a chat that is already running here instead of starting one")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, to read its memory")
    parser.add_argument("--auth", help="user:password, when the chat asks for a login")
    parser.add_argument("--cache-dir", type=Path, help="model cache for the server (as `rag --cache-dir`)")
    parser.add_argument("--out", type=Path, default=ROOT / "load-out", help="where the results go (default load-out/)")
    parser.add_argument(
        "--abuse",
        action="store_true",
        help="run the abuse round instead (tests/support/abuse.py): each attack of issues 13 and 23, bounded, "
        "against two fresh servers on 127.0.0.1; writes abuse-results.md",
    )
    return parser


def run_abuse(args) -> int:
    """The abuse round: a table of attacks, whether the server held and the figures; exit 1 if one did not hold."""
    from tests.support import abuse

    os.environ.update(QUIET_ENV)
    work = Path(tempfile.mkdtemp(prefix="load-abuse-"))
    try:
        results = abuse.abuse_round(
            start_server, SEEDS, work, cache_dir=args.cache_dir, log=lambda m: print(m, file=sys.stderr, flush=True)
        )
    except RuntimeError as exc:
        print(f"load: error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = "\n".join([*abuse.as_rows(results), "", f"Machine: {machine()}."]) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "abuse-results.md").write_text(table, encoding="utf-8")
    print(table)
    return 0 if all(r.ok for r in results.values()) else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.abuse:
        return run_abuse(args)
    if args.sessions < 1 or args.seconds <= 0 or args.rounds < 1:
        print("load: error: --sessions, --seconds and --rounds must be positive", file=sys.stderr)
        return 1
    os.environ.update(QUIET_ENV)
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    questions = load_questions(args.questions)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="load-chat-"))
    server = None
    try:
        if args.url:
            url, pid, label = args.url.rstrip("/") + "/", args.pid, f"attached to {args.url}"
        else:
            shutil.copytree(SEEDS, work / "corpus")
            log("load: starting rag chat over a copy of seeds/")
            server = start_server(work / "corpus", work / "index", cache_dir=args.cache_dir)
            url, pid, label = server.url, server.pid, f"rag chat started on {server.url} (pid {server.pid})"
            log(f"load: {label}")
        report = run(
            url,
            pid,
            sessions=args.sessions,
            seconds=args.seconds,
            rounds=args.rounds,
            grace=args.grace,
            max_growth_mib=args.max_growth_mib,
            questions=questions,
            server=label,
            auth=auth,
            log=log,
        )
    except RuntimeError as exc:
        print(f"load: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("load: interrupted; server stopped", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    table = markdown(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load-results.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (args.out / "load-results.md").write_text(table, encoding="utf-8")
    print(table)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``rag`` command line: index folders, ask questions, evaluate, start the chat.

Environment variables are read here and nowhere else; each has a flag:
``RAG_INDEX_DIR`` (``--index-dir``), ``RAG_STORE`` (``--store``, e.g. ``milvus://HOST:19530``),
``MILVUS_TOKEN`` (``--milvus-token``, never printed), ``RAG_MODEL`` (``--model``),
``RAG_CACHE_DIR`` (``--cache-dir``); for ``rag index --ray`` ``RAY_ADDRESS`` (``--ray-address``);
for ``ask``, ``eval`` and ``chat`` ``RAG_LLM`` (``--llm``),
``RAG_LLM_BASE_URL`` (``--base-url``) and ``RAG_LLM_MODEL`` (``--llm-model``); for ``rag chat`` also
``RAG_HOST``, ``RAG_PORT``, ``RAG_ALLOWED_HOSTS``, ``RAG_CORPUS``, ``RAG_AUTH``, ``RAG_MAX_UPLOAD_MB``,
``RAG_MAX_CORPUS_MB``, ``RAG_TRASH_DAYS`` and ``RAG_TRUSTED_PROXIES``.
``OPENAI_API_KEY`` is read only for ``--llm openai`` and is never printed. Errors print one line and exit 1.
The defaults of those folders come from :mod:`rag.defaults` (the checkout's, or under ``RAG_HOME``
or the user data folder when installed); the first ``rag ask``, ``rag index`` or ``rag chat``
without an index copies the demo articles there and indexes them, and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from embeddings import DEFAULT_MODEL, MAX_FILE_BYTES, CorpusError, DocumentError, ModelError, StoreError
from embeddings.indexer import STAGE_WORDS
from embeddings.model.encoder import BACKENDS, DEFAULT_BACKEND, default_cache_dir
from embeddings.sources.corpus_folder import MAX_CORPUS_BYTES, TRASH_DAYS
from embeddings.sources.web import FetchError
from rag import QuestionError
from rag.answering.scorer import ScorerFileError
from rag.defaults import defaults
from rag.evaluate import EvalFileError
from rag.llm.answers import PASSAGES, PROVIDERS, LLMError


class SettingError(ValueError):
    """A ``--set NAME=VALUE`` that names no setting or gives a value of the wrong type."""


EXPECTED_ERRORS = (
    QuestionError, StoreError, DocumentError, CorpusError, ModelError, EvalFileError, LLMError, OSError, SettingError,
    ScorerFileError, FetchError,
)  # fmt: skip


K_HELP = f"passages to retrieve and cite (default 5; {PASSAGES} with --llm: the passages the model reads)"


def _k(args, llm) -> int:
    return args.k or (PASSAGES if llm is not None else 5)


def _common(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    places = defaults()
    parser.add_argument(
        "--index-dir",
        type=Path,
        default=Path(env("RAG_INDEX_DIR") or places.index_dir),
        help="index folder (env RAG_INDEX_DIR; default: %(default)s)",
    )
    parser.add_argument(
        "--store",
        default=env("RAG_STORE") or None,
        metavar="SPEC",
        help="the index in another store: milvus:PATH.db (Milvus Lite), milvus://HOST:19530 (a Milvus server), "
        "or a folder (env RAG_STORE; default: --index-dir); see docs/deployment.md",
    )
    parser.add_argument(
        "--milvus-token",
        default=env("MILVUS_TOKEN") or None,
        help="token of a secured Milvus server, user:password or an API key (env MILVUS_TOKEN)",
    )
    parser.add_argument(
        "--model",
        default=env("RAG_MODEL") or None,
        help=f"embedding model: {DEFAULT_MODEL} (default), a SentenceTransformer folder or name (env RAG_MODEL)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=env("RAG_BACKEND") or None,
        help=f"how the model runs (env RAG_BACKEND; default: the index's, else {DEFAULT_BACKEND})",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(env("RAG_CACHE_DIR") or places.cache_dir or default_cache_dir()),
        help="where the default model is converted to (env RAG_CACHE_DIR; default: %(default)s)",
    )


def _llm_flags(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--llm",
        choices=PROVIDERS,
        default=env("RAG_LLM") or None,
        help="write the answer with a language model (env RAG_LLM); default: extractive",
    )
    parser.add_argument(
        "--base-url",
        default=env("RAG_LLM_BASE_URL") or None,
        help="the model server, e.g. http://127.0.0.1:8080/v1 (llama.cpp, vLLM) or Ollama's address "
        "(env RAG_LLM_BASE_URL)",
    )
    parser.add_argument(
        "--llm-model",
        default=env("RAG_LLM_MODEL") or None,
        help="model name (env RAG_LLM_MODEL; default: local for --base-url, gpt-4o-mini, gemma3:270m)",
    )


def _corpus_flags(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(env("RAG_CORPUS") or defaults().corpus),
        help="the articles folder (env RAG_CORPUS; default: %(default)s)",
    )


def _corpus_folder(args):
    """The corpus folder with its trash in the index folder, and the function that re-indexes it."""
    from embeddings import index_paths
    from embeddings.sources.corpus_folder import CorpusFolder

    if args.corpus == defaults().corpus:
        _demo_corpus()  # installed: the demo articles are copied out of the package on first run
    if not args.corpus.is_dir():
        raise CorpusError(f"{args.corpus}: no such folder; give the articles' folder with --corpus")
    # The trash stays in the index folder. The disk and passage budgets are for the chat's visitors;
    # the command line is the folder's owner.
    folder = CorpusFolder.for_index(args.corpus, args.index_dir, max_bytes=sys.maxsize, max_chunks=sys.maxsize)
    return folder, lambda: index_paths([args.corpus], _store(args), _embedder(args), progress=_progress_bar())


def cmd_add(args) -> int:
    """Files are copied; web addresses (``http://``, ``https://``) are fetched and their article saved as ``.txt``."""
    from embeddings.readers.files import read_bytes
    from embeddings.sources.web import FetchError, article_file, article_name, fetch_article

    folder, index = _corpus_folder(args)
    uploads, refused = [], []
    for item in args.files:
        try:
            if "://" in item:
                article = fetch_article(item)
                uploads.append((article_name(article), article_file(article)))
            else:
                uploads.append((Path(item).name, read_bytes(Path(item), folder.max_file_bytes)))
        except (DocumentError, FetchError) as exc:
            refused.append((item, exc.reason))
    saved, more, report = folder.save(uploads, index, replace=args.replace)
    for item in saved:
        print(f"{item.status:9} {item.name}")
    for name, reason in [*refused, *more]:
        print(f"refused   {name}: {reason}", file=sys.stderr)
    print(report.summary())
    return 1 if refused or more else 0


def cmd_follow(args) -> int:
    """Read the feeds once, or every ``--every`` until interrupted (or ``--rounds`` times)."""
    import time

    from embeddings.sources.feeds import STATE_FILE, FeedState, follow, parse_every

    feeds = list(args.feeds)
    if args.feed_list is not None:
        lines = args.feed_list.read_text(encoding="utf-8").splitlines()
        feeds += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    state_path = args.index_dir / STATE_FILE
    if not feeds:  # the feeds followed before
        feeds = list(FeedState.load(state_path).feeds)
    if not feeds:
        raise CorpusError("no feeds to follow; give a feed's address (rag follow https://example.org/feed.xml)")
    try:
        every = parse_every(args.every) if args.every else None
    except ValueError as exc:
        raise SettingError(str(exc)) from None
    folder, index = _corpus_folder(args)
    failed = False
    rounds = args.rounds if args.rounds is not None else (None if every else 1)
    done = 0
    while rounds is None or done < rounds:
        started = time.monotonic()
        for report in follow(feeds, folder, index, state_path):
            print(report.summary())
            for name in report.added:
                print(f"added     {name}")
            for url, reason in report.refused:
                print(f"refused   {url}: {reason}", file=sys.stderr)
                failed = True
        done += 1
        if every is None or (rounds is not None and done >= rounds):
            break
        time.sleep(max(0.0, every - (time.monotonic() - started)))
    return 1 if failed and every is None else 0


def cmd_remove(args) -> int:
    folder, index = _corpus_folder(args)
    moved, report = folder.remove(args.names, index)
    for item in moved:
        print(f"trashed   {item.name} (rag restore {item.name})")
    print(report.summary())
    return 0


def cmd_restore(args) -> int:
    folder, index = _corpus_folder(args)
    if args.name is None:
        import datetime as dt

        for item in folder.trashed():
            when = dt.datetime.fromtimestamp(item.removed_ns / 1e9).isoformat(" ", "seconds")
            print(f"{item.name}  (removed {when})")
        return 0
    item, report = folder.restore(args.name, index)
    print(f"restored  {item.name}")
    print(report.summary())
    return 0


def _set_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one number of the scoring configuration (rag.config.ScoringConfig), e.g. --set window=2",
    )


def scoring_config(assignments: list[str]):
    """A :class:`rag.config.ScoringConfig` with ``NAME=VALUE`` overrides.

    >>> scoring_config(["window=2", "min_dense=0.75"]).window, scoring_config([]).window
    (2, 1)

    Raises:
        SettingError: an unknown name or a value of the wrong type (the message names both).
    """
    from dataclasses import fields, replace

    from rag.config import ScoringConfig

    config = ScoringConfig()
    types = {f.name: type(getattr(config, f.name)) for f in fields(config)}
    changes = {}
    for item in assignments:
        name, _, value = item.partition("=")
        if name not in types:
            raise SettingError(f"--set {item}: no such setting; the settings are {', '.join(types)}")
        try:
            changes[name] = types[name](value)
        except ValueError:
            raise SettingError(f"--set {item}: {name} takes a {types[name].__name__}") from None
    try:
        return replace(config, **changes)
    except ValueError as exc:
        raise SettingError(f"--set: {exc}") from None


def format_explanation(x, most: int = 5) -> str:
    """``rag ask --explain``: the most probable sentences with their probability and the features that
    weighed most in it, then the threshold that decided."""
    lines = [f"question: kind={x.question.kind} language={x.question.language} since={x.question.since}"
             f" counted={x.question.counted!r}"]  # fmt: skip
    chosen = x.decision.candidate
    for n, s in enumerate(x.ranked, 1):
        mark = "chosen" if s is chosen and not x.answer.abstained else "best" if s is chosen else ""
        lines.append(f"{n}. rank score {s.score:+.2f} {mark:6} [{s.sentence.source}]")
        parts = sorted(x.contributions[n - 1].items(), key=lambda kv: -abs(kv[1]))[:most]
        lines.append("   " + " ".join(f"{k}={v:+.2f}" for k, v in parts))
        lines.append(f"   {s.sentence.text[:200]}")
    decided = "; ".join(f"{v.gate}: {v.detail}" for v in x.decision.verdicts)
    lines.append(f"decided by: {decided}{' (abstained)' if x.answer.abstained else ' (answered)'}")
    return "\n".join(lines)


def _chat_model(args):
    """The LangChain model for --llm, or None. The API key is read here and only passed on, never printed."""
    if not getattr(args, "llm", None):
        return None
    from rag.llm.answers import chat_model

    api_key = os.environ.get("OPENAI_API_KEY") or None if args.llm == "openai" else None
    return chat_model(args.llm, model=args.llm_model, base_url=args.base_url, api_key=api_key)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions about a folder of news articles.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_index,
        _add_migrate,
        _add_check,
        _add_ask,
        _add_eval,
        _add_add,
        _add_follow,
        _add_remove,
        _add_restore,
        _add_chat,
    ):
        add(sub)
    return parser


def _add_index(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index new and changed files, drop deleted ones")
    p.add_argument(
        "paths", nargs="*", type=Path, help="folders or files (default: the folders indexed before, else seeds/)"
    )
    p.add_argument("--rebuild", action="store_true", help="start from an empty index (e.g. to switch models)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--ray", action="store_true", help='embed on a Ray cluster (pip install -e ".[ray]")')
    p.add_argument(
        "--ray-address",
        default=os.environ.get("RAY_ADDRESS") or "local",
        help="the cluster: auto (the one this machine is in), ray://HEAD:10001, or local (start one here; "
        "env RAY_ADDRESS; default %(default)s)",
    )
    p.add_argument("--ray-actors", type=int, default=2, help="encoder actors, one model each (default %(default)s)")
    p.add_argument("--watch", action="store_true", help="then keep watching the folders: index changes within seconds")
    p.add_argument(
        "--explain-cleaning",
        type=Path,
        metavar="FILE",
        help="show the lines dropped from FILE as boilerplate (lines in several of the corpus's files); index nothing",
    )
    _common(p)


def _add_migrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="copy the index into another store (no model, no files read)")
    p.add_argument(
        "--to", required=True, metavar="SPEC", help="the target: milvus:PATH.db, milvus://HOST:19530, a folder"
    )
    _common(p)


def _add_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="check that the index is sound (loads, vectors and chunks agree)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    _common(p)


def _add_ask(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="answer a question with cited passages")
    p.add_argument("question")
    p.add_argument("-k", type=int, help=K_HELP)
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument(
        "--explain",
        action="store_true",
        help="also print why: the best sentences with each signal's part of their score and every gate's verdict; "
        "with --llm, each generated sentence kept or removed",
    )
    _set_flag(p)
    _llm_flags(p)
    _common(p)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score answers on a question file (JSONL) or a question set folder")
    p.add_argument(
        "file",
        type=Path,
        help="eval/dev.jsonl (patterns, over the index), or a folder with corpus/ and questions.jsonl "
        "(answer spans, XQuAD style; its corpus is indexed into the cache folder first)",
    )
    p.add_argument(
        "--folds",
        type=int,
        default=0,
        help="held out: refit the answer scorer on the other articles' folds for each fold of K (K >= 3)",
    )
    p.add_argument("--seed", type=int, default=13, help="the folds' shuffle (with --folds)")
    p.add_argument("--scorer", type=Path, help="an answer scorer written by scripts/fit.py (default: the shipped one)")
    p.add_argument("-k", type=int, help=K_HELP)
    p.add_argument("--json", action="store_true", help="print the report, with every answer, as JSON")
    _set_flag(p)
    _llm_flags(p)
    _common(p)


def _add_add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("add", help="copy article files, or fetch web articles (URLs), into the corpus folder and index")
    p.add_argument("files", nargs="+", metavar="FILE_OR_URL", help="article files, or http(s) addresses of articles")
    p.add_argument("--replace", action="store_true", help="replace an article of the same name with this version")
    _corpus_flags(p)
    _common(p)


def _add_follow(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("follow", help="add the new entries of RSS/Atom feeds to the corpus folder, once or --every")
    p.add_argument("feeds", nargs="*", metavar="FEED_URL", help="feed addresses (default: the feeds followed before)")
    p.add_argument("--feeds", dest="feed_list", type=Path, metavar="FILE", help="a file of feed addresses, one a line")
    p.add_argument("--every", metavar="INTERVAL", help="read the feeds again every INTERVAL (15m, 1h) until stopped")
    p.add_argument("--rounds", type=int, help="with --every: stop after this many readings")
    _corpus_flags(p)
    _common(p)


def _add_remove(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("remove", help="move files of the corpus folder to the trash and drop them from the index")
    p.add_argument("names", nargs="+", help="file names relative to the corpus folder")
    _corpus_flags(p)
    _common(p)


def _add_restore(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restore", help="bring a removed file back from the trash (without NAME: list the trash)")
    p.add_argument("name", nargs="?")
    _corpus_flags(p)
    _common(p)


def _add_chat(sub: argparse._SubParsersAction) -> None:
    env = os.environ.get
    p = sub.add_parser("chat", help="serve the web chat (indexes the corpus folder first)")
    p.add_argument(
        "--host",
        default=env("RAG_HOST") or "127.0.0.1",
        help="address to listen on (env RAG_HOST; default %(default)s: this machine only; "
        "0.0.0.0 serves every network the machine is on, so add --auth)",
    )
    p.add_argument("--port", type=int, default=env("RAG_PORT") or 7860, help="port (env RAG_PORT; default %(default)s)")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[h for h in (env("RAG_ALLOWED_HOSTS") or "").split(",") if h.strip()],
        metavar="NAME",
        help="a further name the chat may be called by, e.g. the machine's name with --host 0.0.0.0 "
        "(repeatable; env RAG_ALLOWED_HOSTS, comma-separated); 127.0.0.1, localhost, [::1] and --host always are",
    )
    p.add_argument(
        "--corpus",
        type=Path,
        default=Path(env("RAG_CORPUS") or defaults().corpus),
        help="articles folder; uploads are saved here (env RAG_CORPUS; default: %(default)s)",
    )
    p.add_argument(
        "--auth",
        default=env("RAG_AUTH") or None,
        help="require a login: user:password, a user name alone (a password is generated and printed), or a "
        "file holding user:password or user:scrypt$... from `python -m ui.chat.passwords USER` "
        "(env RAG_AUTH; default: no login)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=env("RAG_MAX_UPLOAD_MB") or f"{MAX_FILE_BYTES / 2**20:g}",
        help="largest file an upload may be, in MB (env RAG_MAX_UPLOAD_MB; default %(default)s)",
    )
    p.add_argument(
        "--max-corpus-mb",
        type=float,
        default=env("RAG_MAX_CORPUS_MB") or f"{MAX_CORPUS_BYTES / 2**20:g}",
        help="disk budget of the corpus folder and its trash together, in MB; uploads past it are refused "
        "(env RAG_MAX_CORPUS_MB; default %(default)s)",
    )
    p.add_argument(
        "--trash-days",
        type=float,
        default=env("RAG_TRASH_DAYS") or f"{TRASH_DAYS:g}",
        help="days a removed file stays restorable before the trash forgets it (env RAG_TRASH_DAYS; "
        "default %(default)s)",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[h for h in (env("RAG_TRUSTED_PROXIES") or "").split(",") if h.strip()],
        metavar="ADDR",
        help="the address of a reverse proxy whose X-Forwarded-For names the client (repeatable; env "
        "RAG_TRUSTED_PROXIES, comma-separated); without it the header is ignored",
    )
    p.add_argument(
        "--watch", action="store_true", help="index files added, changed or removed in the corpus folder within seconds"
    )
    p.add_argument("-k", type=int, help=K_HELP)
    _llm_flags(p)
    _common(p)


def _progress_bar():
    """A tqdm-backed ``progress(stage, done, total)``; silent when stderr is not a terminal."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(
                total=total, desc=stage, unit="chunk" if stage == "embed" else "file", disable=None
            )
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return progress


def _progress_lines(out=None):
    """``progress(stage, done, total)`` as log lines: ``rag: embedding passages 40/67``.

    For a server's log (``rag chat`` with stderr not a terminal): one line per stage at its start,
    about every 10 %, and at its end, so a first start that indexes for minutes is not silent.

    >>> import io; out = io.StringIO(); p = _progress_lines(out)
    >>> for n in range(0, 21): p("embed", n, 20)
    >>> lines = out.getvalue().splitlines()
    >>> lines[:2], lines[-1], len(lines)
    (['rag: embedding passages 0/20', 'rag: embedding passages 2/20'], 'rag: embedding passages 20/20', 11)
    """
    shown: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        step = max(total // 10, 1)
        last = shown.get(stage)
        if last is not None and done < total and done - last < step:
            return
        if last == done:
            return
        shown[stage] = done
        print(f"rag: {STAGE_WORDS.get(stage, stage)} {done}/{total}", file=out or sys.stderr, flush=True)

    return progress


def _demo_corpus() -> Path:
    """The demo articles' folder (``seeds/`` in a checkout; installed, a copy made on first use)."""
    return defaults().ensure_corpus()


def open_store_for(spec: str, token: str | None = None):
    """The store named by ``spec``; a Milvus server's with its token.

    Raises:
        StoreError: a spec that names no store (a bad collection name, the Milvus extra not installed).
    """
    from embeddings.stores.spec import is_milvus, open_store

    try:
        if token and is_milvus(spec):
            from embeddings.stores.milvus.store import MilvusStore

            return MilvusStore(spec, token=token)
        return open_store(spec)
    except (ValueError, ImportError) as exc:  # the spec, not the program, is wrong: one line, no traceback
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise StoreError(message if spec in message else f"--store {spec}: {message}") from None


def _store(args):
    """The store the flags name (``--store``, else the ``--index-dir`` folder), opened once per command."""
    if getattr(args, "_opened_store", None) is None:
        args._opened_store = open_store_for(args.store or str(args.index_dir), args.milvus_token)
    return args._opened_store


def _where(args) -> str:
    return args.store or str(args.index_dir)


def _embedder(args):
    from embeddings.model.encoder import load_embedder

    model, backend = args.model, args.backend
    manifest = None if getattr(args, "rebuild", False) else _store(args).manifest()
    if model is None:
        model = manifest.model if manifest else DEFAULT_MODEL
    if backend is None:
        backend = manifest.backend if manifest else DEFAULT_BACKEND
    return load_embedder(model, cache_dir=args.cache_dir, backend=backend)


def cmd_index(args) -> int:
    from embeddings import index_paths
    from embeddings.stores.embedded.store import recorded_roots

    if args.explain_cleaning is not None:
        return cmd_explain_cleaning(args)
    store = _store(args)
    paths = args.paths or None
    if paths is None:
        # The folders indexed before (for --rebuild even when the live generation is damaged), else seeds/.
        if args.rebuild and not args.store:
            known = bool(recorded_roots(args.index_dir))
        else:
            known = store.manifest() is not None
        paths = None if known else [_demo_corpus()]
    embedder, batch_size = _embedder(args), 64
    if args.ray:
        from embeddings.model.ray_embed import RayEmbedder

        # one Ray job for all the run's new texts: the actor pool spreads them, the indexer's batches would not
        embedder = RayEmbedder(embedder, address=args.ray_address, concurrency=args.ray_actors)
        batch_size = 1 << 30
    report = index_paths(paths, store, embedder, rebuild=args.rebuild, progress=_progress_bar(), batch_size=batch_size)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return 0
    for label, names in (("added", report.added), ("updated", report.updated), ("removed", report.removed)):
        for name in names:
            print(f"{label:9} {name}")
    for skipped in report.skipped:
        print(f"skipped   {skipped.source}: {skipped.reason}")
    for note in report.notes:
        print(f"note      {note.source}: {note.reason}")
    print(report.summary())
    if args.watch:
        _watch_and_index(paths or [Path(r) for r in store.manifest().roots], store, embedder, batch_size)
    return 0


def _watch_and_index(paths, store, embedder, batch_size) -> None:
    """``rag index --watch``: index every settled burst of changes in the folders until interrupted."""
    import threading

    from embeddings import index_paths
    from embeddings.sources.watch import watch_folder

    folders = [Path(p) for p in paths if Path(p).is_dir()]
    if not folders:
        raise CorpusError("--watch needs a folder to watch; give one (rag index FOLDER --watch)")
    embedder.embed_documents(["warm-up"])  # the model loads now, not when the first file arrives
    print(f"watching {', '.join(map(str, folders))} (Ctrl-C to stop)", file=sys.stderr, flush=True)

    def on_batch(changes) -> None:
        report = index_paths(paths, store, embedder, batch_size=batch_size)
        print(f"{len(changes)} changes: {report.summary()}", flush=True)

    def on_error(exc) -> None:
        print(f"rag: error: {exc}", file=sys.stderr, flush=True)

    if len(folders) == 1:
        watch_folder(folders[0], on_batch, on_error=on_error)
        return
    from embeddings.sources.watch import start_watch

    stops = [start_watch(folder, on_batch, on_error=on_error) for folder in folders]
    try:
        threading.Event().wait()
    finally:
        for stop in stops:
            stop.set()


def cmd_explain_cleaning(args) -> int:
    """``rag index --explain-cleaning FILE``: the lines of FILE that indexing drops, with the files that share them."""
    from embeddings.readers.cleaning import CLEANED_SUFFIXES, LINES_FILE, LineTable, explain_cleaning
    from embeddings.readers.files import read_document

    path = args.explain_cleaning
    if path.suffix.lower() not in CLEANED_SUFFIXES:
        print(f"{path}: only {', '.join(CLEANED_SUFFIXES)} files lose repeated lines; nothing is dropped")
        return 0
    if not (args.index_dir / LINES_FILE).is_file():
        raise StoreError(f"no line table in {args.index_dir}; run `rag index` first")
    doc = read_document(path)
    manifest = _store(args).manifest()
    source = path.name
    for root in manifest.roots if manifest else ():
        if path.resolve().is_relative_to(Path(root)):
            source = path.resolve().relative_to(Path(root)).as_posix()
    table = LineTable(args.index_dir / LINES_FILE)
    try:
        dropped = explain_cleaning(doc.text, source, table)
    finally:
        table.close()
    if not dropped:
        print(f"{source}: no line is dropped")
    for item in dropped:
        shown = ", ".join(item.files[:3]) + (f" and {len(item.files) - 3} more" if len(item.files) > 3 else "")
        print(f"dropped   {item.line!r} (also in {len(item.files)} other files: {shown})")
    return 0


def cmd_check(args) -> int:
    from embeddings.stores.embedded.verify import check_index

    if args.store and not Path(args.store).is_dir():  # a Milvus store checks itself
        problems = _store(args).verify(deep=True)
        if args.json:
            print(json.dumps({"store": args.store, "problems": problems, "ok": not problems}, indent=2))
        elif problems:
            print(f"rag: error: {'; '.join(problems)}", file=sys.stderr)
        else:
            print(f"index OK: {args.store}, {len(_store(args).view())} chunks")
        return 0 if not problems else 1
    check = check_index(args.index_dir, load_model=True, cache_dir=args.cache_dir)
    if args.json:
        print(json.dumps({**asdict(check), "ok": check.ok}, indent=2, ensure_ascii=False))
    elif check.ok:
        print(check.summary())
    else:
        print(f"rag: error: {check.summary()}", file=sys.stderr)
    return 0 if check.ok else 1


def _engine(args):
    from embeddings import index_paths
    from rag import Engine

    store = _store(args)
    if store.manifest() is None:
        if args.store:
            raise StoreError(f"no index in {args.store}; build one with `rag index PATH --store {args.store}`")
        if args.index_dir.resolve() != defaults().index_dir.resolve():
            raise StoreError(
                f"no index in {args.index_dir}; build one with `rag index PATH --index-dir {args.index_dir}`"
            )
        corpus = _demo_corpus()
        print(f"rag: first run: indexing the demo articles in {corpus} into {args.index_dir}", file=sys.stderr)
        index_paths([corpus], store, _embedder(args), progress=_progress_bar())
    manifest = store.manifest()
    if args.model and manifest and args.model != manifest.model:
        raise StoreError(
            f"{args.index_dir} was built with {manifest.model!r}, not {args.model!r}; "
            "drop --model or rebuild with `rag index --rebuild --model ...`"
        )
    if args.backend and manifest and args.backend != manifest.backend:
        raise StoreError(
            f"{args.index_dir} was built with the {manifest.backend} backend, not {args.backend}; "
            "drop --backend or rebuild with `rag index --rebuild --backend ...`"
        )
    config = scoring_config(getattr(args, "set", []))
    scorer = None
    if getattr(args, "scorer", None):
        from rag.answering.scorer import AnswerScorer

        scorer = AnswerScorer.load(args.scorer)
    return Engine(_where(args), store=store, cache_dir=args.cache_dir, config=config, scorer=scorer)


def cmd_migrate(args) -> int:
    """Copy documents, chunks, vectors and manifest from the store of the flags into ``--to``."""
    from embeddings.stores.migrate import migrate

    target = args.to
    if target == _where(args):
        raise StoreError(f"--to {target} is the index itself; name another store")
    source = _store(args)
    if source.manifest() is None:
        raise StoreError(f"no index in {_where(args)} to copy")
    report = migrate(source, open_store_for(target, args.milvus_token), progress=_progress_bar_of("copy"))
    print(report.summary())
    return 0


def _progress_bar_of(stage: str):
    bar = _progress_bar()
    return lambda done, total: bar(stage, done, total)


def format_answer(answer) -> str:
    """The answer, then one block per cited passage."""
    lines = [answer.text]
    if answer.citations:
        lines.append("")
        lines.append("Sources:" if answer.language == "en" else "Quellen:")
    for c in answer.citations:
        date = f", {c.date}" if c.date else ""
        lines.append(f"[{c.n}] {c.title} ({c.source}{date})")
        passage = " ".join(c.passage.split())
        lines.append(f"    {passage[:300]}{'…' if len(passage) > 300 else ''}")
    return "\n".join(lines)


def _answerer(args, engine=None):
    """The answerer the flags ask for: the LLM's with --llm, else the extractive one.

    The model is built first, so a bad --llm is reported before the index is opened.
    """
    from rag.answerer import answerers

    llm = _chat_model(args)
    engine = engine or _engine(args)
    return next(iter(answerers(engine, k=_k(args, None), llm=llm, llm_k=_k(args, llm)).values()))


def cmd_ask(args) -> int:
    """Print the answer's words as they come, then what changed, then the sources (and with --explain, why)."""
    from rag.llm.claims import explain_claims, removed_summary

    answerer = _answerer(args)
    shown = ""
    for item in answerer.stream(args.question):
        if isinstance(item, str):
            shown += item
            if not args.json:
                print(item, end="", flush=True)
            continue
        if args.json:
            print(json.dumps(asdict(item), indent=2, ensure_ascii=False))
            continue
        if shown:
            print()
        for note in item.notes:
            print(f"note: {note}")
        if summary := removed_summary(item.claims):
            print(f"note: {summary}")
        if args.explain and item.claims:  # an LLM answer: each generated sentence kept or removed
            print(explain_claims(item))
        print(format_answer(item) if item.text != shown.strip() else format_answer(item).split("\n", 1)[-1])
    if args.explain:  # the extractive evidence, which the LLM also reads
        print("\n" + format_explanation(answerer.engine.explain(args.question, k=_k(args, None))))
    return 0


def cmd_eval(args) -> int:
    from rag.answerer import final_answer
    from rag.evaluate import evaluate, load_cases

    cases = load_cases(args.file)
    if args.file.is_dir():  # a question set with its own articles: index them apart from the user's index
        from embeddings import index_paths

        args.index_dir = Path(args.cache_dir) / "eval-indexes" / _digest(args.file.resolve())
        index_paths([args.file / "corpus"], args.index_dir, _embedder(args), progress=_progress_bar())
        args.store = None
    engine = _engine(args)
    if args.folds:
        if args.folds < 3:
            raise EvalFileError(f"--folds {args.folds}: held-out evaluation needs at least 3 folds")
        from rag.fitting import held_out_answers

        answers = iter(held_out_answers(engine, cases, args.file.name, k=args.folds, seed=args.seed))
        report = evaluate(cases, lambda q: next(answers), timed=False)
        print(f"held out: {args.folds} folds by article, seed {args.seed}; latencies are not measured", file=sys.stderr)
    else:
        answerer = _answerer(args, engine)
        engine.ask("warm-up", k=_k(args, None))  # model load and index statistics are not part of per-question latency
        report = evaluate(cases, lambda q: final_answer(answerer, q), answerer.answered_by)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.table())
    return 0


def _digest(path: Path) -> str:
    import hashlib

    return f"{path.name}-{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"


def exposure_warning(host: str, auth) -> str | None:
    """What to tell the user who serves the chat beyond this machine without a login, else ``None``.

    >>> exposure_warning("127.0.0.1", None) is None, exposure_warning("0.0.0.0", ("anna", "geheim")) is None
    (True, True)
    >>> exposure_warning("0.0.0.0", None)
    'serving on 0.0.0.0 without --auth: anyone who can reach this machine can ask, upload and remove documents'
    """
    if auth is not None or host in ("127.0.0.1", "localhost", "::1"):
        return None
    return f"serving on {host} without --auth: anyone who can reach this machine can ask, upload and remove documents"


def cmd_chat(args) -> int:
    from rag.llm.answers import describe
    from ui.chat.app import ChatApp  # imports gradio: only when the chat is asked for
    from ui.chat.passwords import parse_login

    try:
        auth, generated = parse_login(args.auth)
    except ValueError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 1
    if generated and auth is not None:
        print(f"rag chat: log in as {auth.user} with the password {generated}", file=sys.stderr)
    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-corpus-mb", args.max_corpus_mb)):
        if value <= 0:
            print(f"rag: error: {flag} must be positive, not {value:g}", file=sys.stderr)
            return 1
    if args.trash_days < 0:
        print(f"rag: error: --trash-days must be 0 or more, not {args.trash_days:g}", file=sys.stderr)
        return 1
    warning = exposure_warning(args.host, auth)
    if warning:
        print(f"rag chat: warning: {warning}", file=sys.stderr)
    if args.corpus == defaults().corpus:
        _demo_corpus()  # installed: the demo articles are copied out of the package on first run
    if args.host in ("0.0.0.0", "::") and not args.allowed_host:
        print(
            f"rag chat: note: only requests to 127.0.0.1, localhost or [::1] are answered; add --allowed-host NAME "
            f"for each name or address others use to reach port {args.port}",
            file=sys.stderr,
        )
    print("rag chat: loading the model", file=sys.stderr, flush=True)
    embedder = _embedder(args)  # one model for answering and for indexing uploads
    max_file_bytes = int(args.max_upload_mb * 2**20)  # the same limit for the folder's files and uploads
    llm = _chat_model(args)
    label = describe(llm) if llm is not None else "LLM"
    app = ChatApp(
        args.index_dir,
        args.corpus,
        embedder,
        k=_k(args, None),
        max_file_bytes=max_file_bytes,
        max_corpus_bytes=int(args.max_corpus_mb * 2**20),
        trash_days=args.trash_days,
        llm=llm,
        llm_k=_k(args, llm),
        llm_label=label,
        store=_store(args),
    )
    # The page is served at once and shows how far the indexing got (a first start indexes for
    # minutes); the log gets the same progress as lines. Questions are answered once it is done.
    app.indexing = "starting"
    blocks = app.launch(
        args.host, args.port, auth, allowed=args.allowed_host, trusted_proxies=args.trusted_proxy, block=False
    )
    url = f"http://{args.host}:{args.port}"
    print(f"rag chat: serving {url}; indexing {args.corpus} first", file=sys.stderr, flush=True)
    # First run: index the corpus; later: pick up what changed in the folder meanwhile.
    progress = _progress_bar() if sys.stderr.isatty() else _progress_lines()
    try:
        report = app.first_indexing(progress)
    except Exception as exc:
        print(f"rag chat: error: {exc}", file=sys.stderr)
        blocks.close()
        return 1
    print(f"rag chat: {report.summary()}", file=sys.stderr, flush=True)
    if args.watch:
        from embeddings.sources.watch import start_watch

        def on_batch(changes) -> None:
            print(f"rag chat: {len(changes)} changes in {args.corpus}: {app.sync().summary()}", file=sys.stderr)

        start_watch(args.corpus, on_batch, on_error=lambda exc: print(f"rag chat: error: {exc}", file=sys.stderr))
        print(f"rag chat: watching {args.corpus} for changes", file=sys.stderr)
    app.engine.warm_up()  # the model and the dictionary load now, not on the first question
    print(f"rag chat: ready at {url}", file=sys.stderr, flush=True)
    blocks.block_thread()
    return 0


COMMANDS = {
    "index": cmd_index,
    "check": cmd_check,
    "ask": cmd_ask,
    "eval": cmd_eval,
    "chat": cmd_chat,
    "add": cmd_add,
    "follow": cmd_follow,
    "remove": cmd_remove,
    "restore": cmd_restore,
    "migrate": cmd_migrate,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except EXPECTED_ERRORS as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130
    finally:
        close = getattr(getattr(args, "_opened_store", None), "close", None)
        if close is not None:  # a Milvus Lite file is free for the next process
            close()


if __name__ == "__main__":
    sys.exit(main())

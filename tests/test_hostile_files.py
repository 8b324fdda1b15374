"""Hostile and odd files: each is indexed correctly or skipped with its reason, the rest of the run
goes on, and nothing is written outside the index folder.

One table (``CASES``) drives one indexing run over the seed articles plus every odd file; each row
is then checked on its own. Uploads through the chat, duplicates and pathological lines follow.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from embeddings import ChunkingConfig, IndexReport, index_paths, open_snapshot
from embeddings.chunking import chunk_spans, split_sentences
from rag.evaluate import load_cases

from .conftest import DEV_SET, ROOT, SEEDS
from .support.stores import all_ids
from .test_index import CountingEmbedder

INDEXED = "indexed"
SHOIGU_FILE = "003_5d407fa9e5e9a813.txt"
MB = 2**20
LIMIT = "the limit is 20.0 MB; split it into smaller files"
OUTSIDE = "symbolic link to a file outside the indexed folder; not followed (copy the file in to index it)"


# ---- helpers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail instead of hanging (a pipe that is read, a symlink loop that is followed)."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def listing(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` (links not followed) with its type, size and modification time."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            out[path.relative_to(root).as_posix()] = (stat.S_IFMT(info.st_mode), info.st_size, info.st_mtime_ns)
    return out


def changed_paths(before: dict, after: dict) -> set[str]:
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def assert_only_changed_under(before: dict, after: dict, allowed: list[str]) -> None:
    """Nothing changed except inside the ``allowed`` folders (their parents' mtimes may change as they appear)."""
    for path in changed_paths(before, after):
        inside = any(path == a or path.startswith(a + "/") for a in allowed)
        parent_of = any(a.startswith(path + "/") for a in allowed)
        assert inside or (parent_of and path in before and before[path][:2] == after.get(path, (None,))[:2]), path


def write_random_text(path: Path, size: int) -> None:
    """``size`` bytes of distinct lines of text (base64), written 1 MB at a time: no chunk repeats another."""
    rng = random.Random(0)
    with path.open("wb") as f:
        while f.tell() < size:
            f.write(base64.encodebytes(rng.randbytes(min(786_432, size - f.tell()))))
        f.truncate(size)


def blank_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# ---- the table ----------------------------------------------------------------------------------

Make = Callable[[Path, Path], None]  # (path in the corpus, a folder outside it)


def raw(data: bytes) -> Make:
    return lambda path, outside: path.write_bytes(data)


def symlink(target: str) -> Make:
    return lambda path, outside: path.symlink_to(target.format(outside=outside))


def huge(path: Path, outside: Path) -> None:
    write_random_text(path, 100 * MB)


def pipe(path: Path, outside: Path) -> None:
    os.mkfifo(path)


def folder_link(path: Path, outside: Path) -> None:
    (outside / "articles").mkdir(exist_ok=True)
    (outside / "articles" / "draußen.txt").write_text("Ein Artikel außerhalb des Korpus.\n", encoding="utf-8")
    path.symlink_to(outside / "articles", target_is_directory=True)


ONE_LINE = " ".join(f"wort{i}" for i in range(150_000))[:MB]  # 1 MB of distinct words, no sentence end
# Indexed, the line repeats a phrase: its chunks are then few distinct texts, so the run embeds a handful
# instead of 1,500 (minutes on a shared CPU). Cutting it is the same work as cutting ONE_LINE.
LONG_LINE = ("Xi Jinping traf Schoigu in Peking und " * 30_000)[:MB]
INVISIBLE = (
    "Sch\u200boigu traf\u200d am Freitag Xi\u00ad Jinping in Peking.\x07\x1b[31m Der Bericht\u202e geht weiter."
    "\u2028Zweite Zeile\x85dritte Zeile.\n"
)
HTML = (
    "<html><head><title>Gipfel in Peking</title><script>alert('Werbung')</script>"
    "<style>p{color:red}</style></head><body><nav>Menü</nav><article><h1>Gipfel</h1>"
    "<p onclick=\"alert('x')\">" + "Xi Jinping empfing am Freitag Schoigu in Peking. " * 6 + "</p>"
    "<script>document.write('eingeschleust')</script><img src=x onerror=\"alert('y')\"></article>"
    "<footer>Impressum</footer></body></html>"
)


@dataclass(frozen=True)
class Case:
    name: str
    make: Make
    expect: str  # INDEXED, or the exact reason in the report


CASES = [
    Case("empty.txt", raw(b""), "empty file; add text or remove it"),
    Case("whitespace.txt", raw(b"  \n\t\r\n   \n"), "empty file; add text or remove it"),
    Case("binary.txt", raw(bytes(range(256)) * 8),
         "binary file (contains NUL bytes), not text; convert it to .txt or .pdf"),
    Case("huge.txt", huge, f"too large (100.0 MB; {LIMIT})"),
    Case("invalid-utf8.txt", raw("Grüße aus Köln. ".encode() + b"\xc3\x28 kaputt."),
         "not valid UTF-8 (byte 0xc3 at offset 19); save it as UTF-8 text and add it again"),
    Case("latin1.txt", raw("Grüße aus Köln.".encode("latin-1")), INDEXED),  # converted, with a note
    Case("utf16-bom.txt", raw("title: Grüße\n\nGrüße aus Köln an Xi Jinping.\n".encode("utf-16")), INDEXED),
    Case("utf16-broken.txt", raw(b"\xff\xfeG\x00r\x00\xfc"),
         "broken UTF-16 (truncated data); re-save the file as UTF-8"),
    Case("crlf.txt", raw(b"Zeile eins ueber Peking.\r\nZeile zwei ueber Moskau.\r\n\r\nAbsatz drei.\r\n"), INDEXED),
    Case("one-line.txt", raw(LONG_LINE.encode()), INDEXED),
    Case("dots.txt", raw(("Inhalt " + "." * MB + " Seite 3").encode()), INDEXED),
    Case("invisible.txt", raw(INVISIBLE.encode()), INDEXED),
    Case("script.html", raw(HTML.encode()), INDEXED),
    Case("scanned.pdf", raw(blank_pdf()), "PDF without a text layer (scanned?); OCR it first; nothing to index"),
    Case("fake.pdf", raw(b"<html>not a pdf</html>"), "not a PDF (missing %PDF signature)"),
    Case("copy-of-003.txt", lambda path, outside: shutil.copy(SEEDS / SHOIGU_FILE, path), INDEXED),
    Case("link-inside.txt", symlink(SHOIGU_FILE), INDEXED),
    Case("link-outside.txt", symlink("{outside}/secret.txt"), OUTSIDE),
    Case("link-to-passwd.txt", symlink("/etc/passwd"), OUTSIDE),
    Case("link-dotdot.txt", symlink("../../outside/secret.txt"), OUTSIDE),
    Case("loop.txt", symlink("loop.txt"), "symbolic link loop; remove or fix the link"),
    Case("dangling.txt", symlink("no-such-file.txt"),
         "broken symbolic link (its target does not exist); remove it or restore the file"),
    Case("linked-folder", folder_link,
         "symbolic link to a folder; not followed (index that folder itself, or copy its files in)"),
    Case("pipe.txt", pipe, "not a regular file (a pipe, socket or device); nothing to read"),
    Case("Über Peking & Moskau (1).md", raw("# Über Peking\n\nEin Bericht über Peking und Moskau.\n".encode()),
         INDEXED),
]  # fmt: skip


@dataclass(frozen=True)
class Run:
    corpus: Path
    index_dir: Path
    report: IndexReport
    seconds: float
    before: dict
    after: dict
    root: Path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, fake_embedder):
    """Seeds plus every odd file of ``CASES`` in one corpus, indexed once (fake embedder); HOME and TMPDIR watched."""
    embedder = fake_embedder
    root = tmp_path_factory.mktemp("hostile")
    corpus, index_dir = root / "sandbox" / "corpus", root / "sandbox" / "index"
    outside, home, tmp = root / "outside", root / "home", root / "tmp"
    for folder in (outside, home, tmp):
        folder.mkdir()
    (outside / "secret.txt").write_text("Geheim: das Passwort ist hunter2.\n", encoding="utf-8")
    shutil.copytree(SEEDS, corpus)
    for case in CASES:
        case.make(corpus / case.name, outside)
    embedder.embed_documents(["warm-up"])  # the model is built into the session's cache first, not during the run
    before = listing(root)
    with pytest.MonkeyPatch.context() as mp, deadline(300):
        mp.setenv("HOME", str(home))
        mp.setenv("XDG_CACHE_HOME", str(home / ".cache"))
        mp.setattr(tempfile, "tempdir", str(tmp))
        started = time.perf_counter()
        report = index_paths([corpus], index_dir, embedder)
        seconds = time.perf_counter() - started
    after = listing(root)
    yield Run(corpus, index_dir, report, seconds, before, after, root)
    (corpus / "huge.txt").unlink(missing_ok=True)  # 100 MB need not outlive the module


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_odd_file_is_indexed_or_skipped_with_its_reason(hostile, case):
    report = hostile.report
    reasons = {s.source: s.reason for s in report.skipped}
    snapshot = open_snapshot(hostile.index_dir)
    if case.expect == INDEXED:
        assert case.name in report.added and case.name not in reasons
        doc = snapshot.documents[case.name]
        chunks = [snapshot.chunk(i) for i in snapshot.ids_of(case.name)]
        assert chunks, case.name
        for chunk in chunks:
            assert doc.text[chunk.start : chunk.end] == chunk.text
            assert len(chunk.text) <= ChunkingConfig().max_chars
    else:
        assert reasons.get(case.name) == case.expect
        assert case.name not in snapshot.documents and case.name not in report.added


def test_the_rest_of_the_run_goes_on(hostile):
    snapshot = open_snapshot(hostile.index_dir)
    indexed = {c.name for c in CASES if c.expect == INDEXED} | {p.name for p in SEEDS.iterdir()}
    assert set(snapshot.documents) == indexed == set(hostile.report.added)
    assert len(hostile.report.skipped) == sum(c.expect != INDEXED for c in CASES)
    print(f"hostile corpus: {hostile.report.summary()}")
    assert hostile.seconds < 240, f"the run took {hostile.seconds:.0f} s"


def test_nothing_is_written_outside_the_index(hostile):
    """Corpus, the folder outside it (symlink targets), HOME and TMPDIR are untouched; only the index changed."""
    changed = changed_paths(hostile.before, hostile.after)
    assert any(p.startswith("sandbox/index/") for p in changed)
    assert_only_changed_under(hostile.before, hostile.after, ["sandbox/index"])
    assert not any((hostile.root / "home").iterdir()) and not any((hostile.root / "tmp").iterdir())


def test_odd_texts_are_read_faithfully(hostile):
    docs = open_snapshot(hostile.index_dir).documents
    assert docs["utf16-bom.txt"].title == "Grüße" and docs["utf16-bom.txt"].text == "Grüße aus Köln an Xi Jinping.\n"
    assert docs["crlf.txt"].text == "Zeile eins ueber Peking.\nZeile zwei ueber Moskau.\n\nAbsatz drei.\n"
    assert docs["invisible.txt"].text == (
        "Schoigu traf am Freitag Xi Jinping in Peking.  [31m Der Bericht geht weiter.\nZweite Zeile\ndritte Zeile.\n"
    )
    page = docs["script.html"].text
    # trafilatura's title: the headline (a <title> often carries the site's name too)
    assert page.startswith("Gipfel\nXi Jinping empfing") and docs["script.html"].title == "Gipfel"
    for noise in ("alert", "Werbung", "eingeschleust", "Menü", "Impressum", "<", "color:red"):
        assert noise not in page
    assert docs["copy-of-003.txt"].text == docs["link-inside.txt"].text == docs[SHOIGU_FILE].text
    assert docs["one-line.txt"].text == LONG_LINE


def test_running_again_changes_nothing(hostile, fake_embedder):
    counting = CountingEmbedder(fake_embedder)
    with deadline(120):
        again = index_paths([hostile.corpus], hostile.index_dir, counting)
    assert counting.embedded == 0 and not (again.added or again.updated or again.removed)
    assert again.generation == hostile.report.generation
    assert again.skipped == hostile.report.skipped


@pytest.mark.slow
def test_indexing_from_the_command_line_writes_nothing_in_home_or_tmp(tmp_path, embedder, model_cache):
    """A whole ``rag index`` process, started with HOME and TMPDIR in a watched folder, writes only its index.

    In a process of its own because libraries decide where to write when they are imported
    (onnxruntime's telemetry store did, under ~/.cache/Microsoft, until it was switched off).
    """
    embedder.embed_documents(["warm-up"])  # the session's model cache is complete: reading it writes nothing
    corpus, index_dir = tmp_path / "sandbox" / "corpus", tmp_path / "sandbox" / "index"
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    for folder in (corpus, home, tmp):
        folder.mkdir(parents=True)
    (corpus / "klein.txt").write_text("Ein kleiner Artikel über Astana und Tokajew.\n", encoding="utf-8")
    (corpus / "latin1.txt").write_bytes("Grüße aus Köln.".encode("latin-1"))
    (corpus / "passwd.txt").symlink_to("/etc/passwd")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_", "RAG_"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), TMPDIR=str(tmp))
    argv = ["-m", "ui.cli", "index", str(corpus), "--index-dir", str(index_dir), "--cache-dir", str(model_cache)]
    before = listing(tmp_path)
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    after = listing(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "added     klein.txt" in done.stdout
    assert "note      latin1.txt: not UTF-8: converted from cp1252" in done.stdout
    assert f"skipped   passwd.txt: {OUTSIDE}" in done.stdout
    assert_only_changed_under(before, after, ["sandbox/index"])
    assert not any(home.iterdir()) and not any(tmp.iterdir())


# ---- size limit ---------------------------------------------------------------------------------


def test_oversized_file_is_refused_before_it_is_read(tmp_path, fake_embedder):
    embedder = fake_embedder
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_random_text(corpus / "huge.txt", 100 * MB)
    (corpus / "klein.txt").write_text("Ein kleiner Artikel über Astana und Tokajew.\n", encoding="utf-8")
    embedder.embed_documents(["warm-up"])  # loading the model is not part of the run measured here
    tracemalloc.start()
    try:
        started = time.perf_counter()
        report = index_paths([corpus], tmp_path / "index", embedder)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        (corpus / "huge.txt").unlink()
    print(f"100 MB file: index run {seconds:.2f} s, peak traced memory {peak / MB:.1f} MB")
    assert report.added == ("klein.txt",)
    assert report.skipped[0].source == "huge.txt" and report.skipped[0].reason == f"too large (100.0 MB; {LIMIT})"
    assert seconds < 30 and peak < 10 * MB  # the 100 MB were never read into memory


def test_the_size_limit_is_an_argument(tmp_path, corpus, fake_embedder):
    embedder = fake_embedder
    limit = (corpus / SHOIGU_FILE).stat().st_size  # the smallest seed: exactly at the limit is allowed
    report = index_paths([corpus], tmp_path / "index", embedder, max_file_bytes=limit)
    assert report.added == (SHOIGU_FILE,)
    size = (corpus / "004_35a91f1ce311ecb5.txt").stat().st_size
    assert {s.source: s.reason for s in report.skipped}["004_35a91f1ce311ecb5.txt"] == (
        f"too large ({size:,} bytes; the limit is {limit:,} bytes; split it into smaller files)"
    )
    assert len(report.skipped) == 4


# ---- chunking pathological lines ----------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        ONE_LINE,
        "x" * MB,
        "." * MB,
        "…" * MB,
        "!?" * (MB // 2),
        ". " * (MB // 2),
        "A. " * (MB // 3),
        "„“" * (MB // 2),
        "Satz." + " " * MB + "Ende.",
    ],
    ids=["words", "no-space", "dots", "ellipses", "bangs", "dot-space", "initials", "quotes", "blank-run"],
)
def test_a_one_megabyte_line_is_cut_quickly_into_bounded_chunks(line):
    config = ChunkingConfig()
    started = time.perf_counter()
    spans = chunk_spans(line, config)
    seconds = time.perf_counter() - started
    assert seconds < 10, f"{seconds:.1f} s"  # linear time; the quadratic regex took hours here
    assert spans and all(0 < e - s <= config.max_chars for s, e in spans)
    assert all(line[s:e] == line[s:e].strip() for s, e in spans)
    covered = sum(e - s for s, e in spans)
    assert covered >= len(line.replace(" ", "")) * 0.99  # overlap aside, the whole line is in some chunk
    assert split_sentences(line)  # and sentence splitting alone is as quick (it ran inside chunk_spans)


# ---- duplicates ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue 22: a question near the fitted threshold flips when another article shifts the features; open",
)
def test_duplicate_content_is_embedded_once_cited_once_and_outlives_its_twin(tmp_path, corpus, embedder, engine):
    """A copy under another name: both files are indexed, the text embedded once, no passage cited twice,
    the answers are those of the seeds alone, and deleting the original leaves the copy answering."""
    from rag import Engine

    shutil.copy(corpus / SHOIGU_FILE, corpus / "kopie.txt")
    counting = CountingEmbedder(embedder)
    index_dir = tmp_path / "index"
    report = index_paths([corpus], index_dir, counting)
    snapshot = open_snapshot(index_dir)
    assert {SHOIGU_FILE, "kopie.txt"} <= set(report.added)
    distinct = len({snapshot.chunk(i).text for i in all_ids(snapshot)})
    assert counting.embedded == report.chunks_embedded == distinct == len(snapshot) - len(snapshot.ids_of("kopie.txt"))

    twins = Engine(index_dir, embedder=embedder)
    for case in load_cases(DEV_SET):
        answer = twins.ask(case.question)
        passages = [c.passage for c in answer.citations]
        assert len(passages) == len(set(passages)), (case.id, [c.source for c in answer.citations])
        quotes = [part for q in re.findall(r"[“„](.+?)[”“] \[\d+\]", answer.text) for part in q.split(" … ")]
        assert len(quotes) == len(set(quotes)), case.id
        assert answer.text == engine.ask(case.question).text, case.id  # the copy changes nothing that is said

    (corpus / SHOIGU_FILE).unlink()
    counting.embedded = 0
    report = index_paths([corpus], index_dir, counting)
    assert report.removed == (SHOIGU_FILE,) and counting.embedded == 0
    answer = twins.ask("When did Shoigu visit Beijing?")
    assert answer.text.startswith("Friday, 28 February 2025") and answer.citations[0].source == "kopie.txt"


# ---- uploads through the chat -------------------------------------------------------------------


@pytest.fixture
def chat(tmp_path, fake_index, fake_embedder):
    """The chat over a sandbox (corpus + index, fake embedder); uploads come from ``tmp_path / "uploads"``."""
    seed_index, embedder = fake_index, fake_embedder
    from ui.chat.app import ChatApp

    corpus, index_dir = tmp_path / "sandbox" / "corpus", tmp_path / "sandbox" / "index"
    shutil.copytree(SEEDS, corpus)
    shutil.copytree(seed_index, index_dir)
    (tmp_path / "uploads").mkdir()
    app = ChatApp(index_dir, corpus, embedder)
    app.sync()
    return app


def _article(n: int) -> bytes:
    return f"Tokajew eröffnete in Astana das Werk Nummer {n}. Es beschäftigt {n * 10} Menschen.\n".encode()


SAVED = "saved as "
UPLOAD_NAMES = [
    # (the uploaded file's name, "saved as <name>" or the error)
    ("..\\..\\etc\\passwd.txt", SAVED + "passwd.txt"),  # backslashes are legal in a Linux file name
    (".hidden.md", SAVED + "hidden.md"),
    ("Über Peking (2).TXT", SAVED + "Über_Peking_2_.txt"),
    ("a" * 250 + ".txt", SAVED + "a" * 116 + ".txt"),
    ("Ü" * 120 + ".md", SAVED + "Ü" * 117 + ".md"),
    ("中" * 80 + ".txt", SAVED + "中" * 78 + ".txt"),  # 3 bytes a character: cut to 240 bytes
    ("-rf *.txt", SAVED + "rf_.txt"),  # never an option to a shell command (issue 23, N15)
    ("passwd", "no usable file name"),
    ("..", "no usable file name"),
    ("nul\x00byte.txt", "file name contains a NUL byte"),
    ("evil.sh", "unsupported file type .sh"),
    (SHOIGU_FILE, "an article with this name is in the corpus; replace it, or rename yours"),
]


@pytest.mark.parametrize("name, outcome", UPLOAD_NAMES, ids=[repr(n)[:40] for n, _ in UPLOAD_NAMES])
def test_upload_names_stay_in_the_corpus_and_never_replace_an_article_unasked(chat, name, outcome):
    import gradio as gr

    root = chat.corpus_dir.parent.parent
    uploads = root / "uploads"
    if name == "..":
        path = uploads / "sub" / ".."  # its name is ".."; the folder itself exists
        (uploads / "sub").mkdir()
    elif "\x00" in name:
        path = uploads / name  # no such file can exist: the path itself is hostile
    else:
        path = uploads / name
        path.write_bytes(_article(7))
    before, documents = listing(root), chat.documents()
    original = (chat.corpus_dir / SHOIGU_FILE).read_bytes()
    if outcome.startswith(SAVED):
        rows, status = chat.upload([str(path)])
        saved = outcome.removeprefix(SAVED)
        assert (chat.corpus_dir / saved).read_bytes() == _article(7) and "Added 1 article" in status
        assert saved in {row[0] for row in rows} and len(saved.encode()) <= 240
    else:
        with pytest.raises(gr.Error) as error:
            chat.upload([str(path)])
        assert outcome in error.value.message and "\n" not in error.value.message
        assert chat.documents() == documents
        assert_only_changed_under(before, listing(root), [])  # nothing saved, nothing indexed
    assert_only_changed_under(before, listing(root), ["sandbox/corpus", "sandbox/index"])
    assert (chat.corpus_dir / SHOIGU_FILE).read_bytes() == original


def test_uploading_the_same_article_again_changes_nothing(chat):
    upload = chat.corpus_dir.parent.parent / "uploads" / SHOIGU_FILE
    shutil.copy(chat.corpus_dir / SHOIGU_FILE, upload)
    generation = open_snapshot(chat.index_dir).generation
    _, status = chat.upload([str(upload)])
    assert "Nothing changed." in status and open_snapshot(chat.index_dir).generation == generation


def test_two_uploads_under_one_name_keep_the_first_and_say_why_for_the_second(chat):
    uploads = chat.corpus_dir.parent.parent / "uploads"
    (uploads / "a b.txt").write_bytes(_article(1))
    (uploads / "a_b.txt").write_bytes(_article(2))
    (uploads / "fine.txt").write_bytes(_article(3))
    _, status = chat.upload([str(uploads / "fine.txt"), str(uploads / "a b.txt"), str(uploads / "a_b.txt")])
    assert "refused a\\_b.txt: two different files in this batch have this name; rename one" in status  # Markdown
    assert (chat.corpus_dir / "a_b.txt").read_bytes() == _article(1) and (chat.corpus_dir / "fine.txt").is_file()


def test_oversized_upload_is_refused_before_it_is_read(chat):
    import gradio as gr

    from ui.chat.app import ChatApp

    small = ChatApp(chat.index_dir, chat.corpus_dir, chat.embedder, max_file_bytes=1000)
    upload = chat.corpus_dir.parent.parent / "uploads" / "gross.txt"
    upload.write_bytes(_article(5) * 30)
    with pytest.raises(gr.Error, match=r"gross\.txt: too large \(2,\d{3} bytes; the limit is 1,000 bytes"):
        small.upload([str(upload)])
    assert not (chat.corpus_dir / "gross.txt").exists()


# ---- read_bytes ---------------------------------------------------------------------------------


def _lying_fstat(monkeypatch):
    """fstat says the file is empty: the file 'grows' after it was measured."""
    import embeddings.readers.files as readers

    real = os.fstat

    def fstat(fd):
        info = real(fd)
        return os.stat_result((info.st_mode, *info[1:6], 0, *info[7:]))

    monkeypatch.setattr(readers.os, "fstat", fstat)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p, mp: p.mkdir(), "is a directory, not a file"),
        (lambda p, mp: os.mkfifo(p), "not a regular file (a pipe, socket or device); nothing to read"),
        (lambda p, mp: None, "no such file (or a symbolic link to a missing file)"),
        (lambda p, mp: p.symlink_to(p.name), "symbolic link loop; remove or fix the link"),
        (lambda p, mp: p.write_bytes(b"x" * 101), "too large (101 bytes; the limit is 100 bytes; split it"),
        (lambda p, mp: (p.write_bytes(b"x" * 300), _lying_fstat(mp)), "too large (grew past the limit while"),
    ],
    ids=["folder", "pipe", "missing", "loop", "too-large", "grows"],
)
def test_read_bytes_refuses_what_is_not_a_small_regular_file(tmp_path, monkeypatch, make, reason):
    from embeddings import DocumentError
    from embeddings.readers.files import read_bytes

    path = tmp_path / "article.txt"
    make(path, monkeypatch)
    with deadline(10), pytest.raises(DocumentError) as error:
        read_bytes(path, max_bytes=100)
    assert reason in error.value.reason and str(path) in str(error.value)


def test_read_bytes_reads_up_to_the_limit(tmp_path):
    from embeddings.readers.files import read_bytes

    path = tmp_path / "a.txt"
    path.write_bytes(b"x" * 100)
    assert read_bytes(path, max_bytes=100) == b"x" * 100

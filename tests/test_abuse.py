"""Issue 13's findings, each attack reproduced: first against the pieces (fast), then against a real
``rag chat`` on 127.0.0.1 (slow; the attacks themselves are in :mod:`tests.support.abuse`).

Removing a symlinked document (M8), trash and restore, write -> fsync -> index with rollback,
the folder's file mode and look-alike names are the corpus-folder file operations, tested with
them in the chat's tests.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from .conftest import SEEDS
from .support import abuse
from .support.servers import start_server

USER, PASSWORD = "anna", "Geheim-4711"
VICTIM = "003_5d407fa9e5e9a813.txt"  # the file the rebinding page deleted in the finding


# ---- the front door (Guard) without a server ----------------------------------------------------


def _guarded(auth: bool = False, **config):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from ui.guard import Guard, GuardConfig

    async def echo(request):
        body = await request.body()
        return PlainTextResponse(f"ok {len(body)}")

    async def login(request):
        form = await request.form()
        return PlainTextResponse(
            "in" if form.get("password") == PASSWORD else "no", 200 if form.get("password") == PASSWORD else 400
        )

    routes = [
        Route(path, echo, methods=["GET", "POST"]) for path in ("/", "/gradio_api/upload", "/gradio_api/heartbeat/x")
    ]
    routes.append(Route("/login", login, methods=["POST"]))
    app = Starlette(routes=routes, middleware=[Middleware(Guard, config=GuardConfig(port=7860, auth=auth, **config))])
    return app


def _client(app, host: str = "127.0.0.1:7860"):
    from starlette.testclient import TestClient

    return TestClient(app, base_url=f"http://{host}")


@pytest.mark.parametrize("host", ["127.0.0.1:7860", "localhost:7860", "[::1]:7860", "LOCALHOST:7860"])
def test_own_names_are_let_in(host):
    assert _client(_guarded(), host).get("/").text == "ok 0"


@pytest.mark.parametrize(
    "host", ["rebind.attacker.example:7860", "127.0.0.1:7861", "127.0.0.1", "localhost.attacker.example:7860", ""]
)
def test_foreign_host_is_refused_before_anything_runs(host):
    response = _client(_guarded(), "127.0.0.1:7860").post("/", headers={"host": host}, content=b"x")
    assert response.status_code == 403 and response.text.count("\n") == 1 and "Host" in response.text


def test_origin_must_be_ours_and_same_for_changes():
    client = _client(_guarded())
    assert client.get("/", headers={"origin": "http://rebind.attacker.example:7860"}).status_code == 403
    assert client.get("/", headers={"origin": "null"}).status_code == 403
    assert client.post("/", headers={"origin": "http://127.0.0.1:7860"}).status_code == 200
    # our own other name reads, but may not change anything from there
    assert client.get("/", headers={"origin": "http://localhost:7860"}).status_code == 200
    assert client.post("/", headers={"origin": "http://localhost:7860"}).status_code == 403
    assert client.post("/", headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert client.post("/", content=b"no origin: not a browser").text == "ok 24"


def test_allowed_host_is_let_in():
    from ui.guard import allowed_hosts

    app = _guarded(hosts=allowed_hosts("0.0.0.0", ["chat.example.org"]))
    assert (
        _client(app, "chat.example.org:7860").post("/", headers={"origin": "http://chat.example.org:7860"}).status_code
        == 200
    )
    assert _client(app, "0.0.0.0:7860").get("/").status_code == 403


def test_body_limit_by_length_and_while_streaming():
    client = _client(_guarded(max_body_bytes=1000))
    assert client.post("/", content=b"x" * 1000).text == "ok 1000"
    assert client.post("/", content=b"x" * 1001).status_code == 413

    def chunked():
        for _ in range(10):
            yield b"x" * 500

    response = client.post("/", content=chunked())  # no Content-Length: counted while it arrives
    assert response.status_code == 413


def test_upload_file_count_is_limited():
    client = _client(_guarded(max_upload_files=3))
    files = [("files", (f"a{i}.txt", b"text", "text/plain")) for i in range(3)]
    assert client.post("/gradio_api/upload", files=files).status_code == 200
    files.append(("files", ("a3.txt", b"text", "text/plain")))
    assert client.post("/gradio_api/upload", files=files).status_code == 413


def test_login_lockout_backs_off_and_right_password_resets():
    client = _client(_guarded())
    statuses = [client.post("/login", data={"username": USER, "password": f"x{n}"}).status_code for n in range(30)]
    assert statuses[:10] == [400] * 10  # ten free tries
    assert statuses[10] == 400 and set(statuses[11:]) == {429}  # then locked out, unchecked
    refused = client.post("/login", data={"username": USER, "password": PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_login_limiter_doubles_and_caps():
    from ui.guard import LoginLimiter

    limiter = LoginLimiter(free=0, base=1.0, most=60.0)
    locks = [limiter.failed("c", now=0.0) for _ in range(10)]
    assert locks == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]


def test_streams_need_a_login_when_there_is_one():
    assert _client(_guarded(auth=True)).get("/gradio_api/heartbeat/x").status_code == 401
    assert _client(_guarded(auth=False)).get("/gradio_api/heartbeat/x").status_code == 200


# ---- parsers with budgets -----------------------------------------------------------------------


def test_long_comments_parse_in_linear_time_and_an_unclosed_one_is_refused():
    from embeddings.html_text import html_to_text
    from embeddings.readers import DocumentError, parse_document

    for size in (200 * 1024, 800 * 1024):
        page = abuse.unclosed_comment_html(size)
        start = time.process_time()
        text, meta = html_to_text((page + b"-->").decode())
        assert time.process_time() - start < 1.0  # html.parser: 178 s for 800 KB (unclosed)
        assert text == "Ein Absatz." and meta == {"title": "Kommentar"}
        start = time.process_time()
        with pytest.raises(DocumentError, match=r"kommentar\.html: a comment \(<!--\) is never closed"):
            parse_document(page, "kommentar.html", ".html")
        assert time.process_time() - start < 1.0


def test_attribute_flood_and_tag_flood_are_refused_quickly():
    from embeddings.readers import DocumentError, parse_document

    start = time.process_time()
    with pytest.raises(DocumentError, match="a tag longer than 64 KB"):
        parse_document(abuse.attribute_flood_html(), "flood.html", ".html")
    many = b"<html><body>" + b"<b>x</b>" * 250_000 + b"</body></html>"
    with pytest.raises(DocumentError, match="more than 200,000 tags"):
        parse_document(many, "tags.html", ".html")
    assert time.process_time() - start < 5.0


def test_html_reading_keeps_its_rules():
    from embeddings.html_text import html_to_text

    page = (
        "<html><head><title>Titel &amp; mehr</title><meta property='article:published_time' content='2025-02-28'>"
        "</head><body><nav>Menü</nav><article><h1>Kopf</h1><p>" + "Satz über Peking. " * 20 + "</p></article>"
        "<footer>Impressum</footer><script>alert(1)</script></body></html>"
    )
    text, meta = html_to_text(page)
    assert meta == {"title": "Titel & mehr", "date": "2025-02-28"}
    assert text.startswith("Kopf\nSatz über Peking.") and "Menü" not in text and "Impressum" not in text
    assert "alert" not in text


def test_shared_stream_pdf_is_refused_within_its_budget():
    from embeddings.pdf_worker import PdfBudgetError, pdf_text

    start = time.monotonic()
    with pytest.raises(PdfBudgetError, match=r"took longer than 1 s"):
        pdf_text(abuse.shared_stream_pdf(), seconds=1.0)
    assert time.monotonic() - start < 3.0  # killed, not waited for


def test_pdf_memory_budget_is_enforced():
    from embeddings.pdf_worker import PdfBudgetError, pdf_text

    with pytest.raises(PdfBudgetError, match=r"needed more than 64 MB of memory"):
        pdf_text(abuse.shared_stream_pdf(pages=2), memory_bytes=64 * 2**20)


def test_pdf_worker_reads_a_good_pdf_and_names_a_broken_one():
    from embeddings.pdf_worker import PdfBudgetError, pdf_text

    pages = pdf_text(abuse.shared_stream_pdf(pages=2, operations=3))
    assert len(pages) == 2 and "Schoigu in Peking" in pages[0]
    with pytest.raises(PdfBudgetError, match="unreadable PDF"):
        pdf_text(b"%PDF-1.4\n garbage")


# ---- what the client sees -----------------------------------------------------------------------


def test_lookalike_citation_markers_are_elided():
    from rag.answer import without_markers

    for marker in ("［1］", "⁽²⁾", "₍₃₎", "[ 4 ]", "【5】", "［１２］"):
        text = f"Er sagte {marker} es sei vorbei."
        assert [text[a:b] for a, b in without_markers(text, 0, len(text))] == ["Er sagte", "es sei vorbei."]


def test_quoted_urls_are_not_links():
    from ui.render import answer_markdown

    shown = answer_markdown("„Mehr unter https://evil.example/a und www.evil.example/b“ [1]")
    assert "https://" not in shown and "www." not in shown and "evil.example/a" in shown


def test_file_names_are_escaped_in_the_status():
    from embeddings.indexer import IndexReport, Skipped
    from ui.chat import _report_line

    report = IndexReport(skipped=(Skipped("<img src=x onerror=alert(1)>.txt", "empty file; add text or remove it"),))
    line = _report_line(report)
    assert "<img" not in line and "&lt;img" in line


def test_client_errors_are_one_line_without_server_paths():
    from ui.chat import public_error

    error = public_error(OSError("/srv/rag/index/generations/7/chunks.sqlite is damaged (x)\nTraceback: y"))
    assert error.message == "chunks.sqlite is damaged (x) Traceback: y" and "\n" not in error.message


# ---- auth ---------------------------------------------------------------------------------------


def test_weak_passwords_are_refused_and_a_user_alone_gets_one_generated(tmp_path):
    from ui.passwords import hash_password, parse_login

    for weak in ("a:b", "anna:geheim", "anna:geheim4711", "anna:1234567890"):
        with pytest.raises(ValueError, match="too weak"):
            parse_login(weak)
    login, generated = parse_login("anna")
    assert generated and len(generated) >= 20 and login("anna", generated)
    hashed = tmp_path / "auth"
    hashed.write_text(f"anna:{hash_password(PASSWORD, n=2**10)}\n")
    login, generated = parse_login(str(hashed))
    assert generated is None and PASSWORD not in hashed.read_text()
    assert login("anna", PASSWORD) and not login("anna", PASSWORD.lower())


def test_cli_refuses_a_weak_password_in_one_line(tmp_path, capsys):
    from ui.cli import main

    assert main(["chat", "--auth", "a:b", "--corpus", str(tmp_path), "--index-dir", str(tmp_path / "i")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "too weak" in err


# ---- tampered index -----------------------------------------------------------------------------


def _tamper(index_dir: Path, sql: str) -> None:
    """Change the live segment's SQLite file and recompute its checksum in the manifest, as an attacker could."""
    import json

    from embeddings.generations import current_generation
    from embeddings.manifest import file_digest

    gen = index_dir / current_generation(index_dir)
    manifest = json.loads((gen / "manifest.json").read_text())
    (segment,) = manifest["segments"]
    db = index_dir / segment["name"] / "chunks.sqlite"
    con = sqlite3.connect(db)
    con.execute(sql)
    con.commit()
    con.close()
    segment["checksums"]["chunks.sqlite"] = file_digest(db)
    (gen / "manifest.json").write_text(json.dumps(manifest))


TAMPERING = [  # each gave a traceback, or a crash in the chat, before rows were validated
    "UPDATE documents SET title = NULL",
    "UPDATE documents SET metadata = '[1, 2]'",
    "UPDATE chunks SET start = 'a'",
    # rows are checked when read: this one is of the article that answers the question asked below
    "UPDATE chunks SET text_hash = 'x' WHERE id = (SELECT min(id) FROM chunks WHERE source LIKE '003%')",
]


@pytest.mark.slow
@pytest.mark.parametrize("sql", TAMPERING)
def test_tampered_rows_give_the_one_line_rebuild_error(tmp_path, seed_index, model_cache, embedder, sql, capsys):
    import gradio as gr

    from ui.chat import ChatApp
    from ui.cli import main

    index_dir = tmp_path / "index"
    shutil.copytree(seed_index, index_dir)
    _tamper(index_dir, sql)
    code = main(
        ["ask", "When did Shoigu visit Beijing?", "--index-dir", str(index_dir), "--cache-dir", str(model_cache)]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "rag index --rebuild" in err, err
    assert "checksum" not in err  # the checksums were recomputed: the rows themselves were caught
    app = ChatApp(index_dir, SEEDS, embedder)
    with pytest.raises(gr.Error) as caught:
        app.answer("When did Shoigu visit Beijing?")
    assert "rag index --rebuild" in caught.value.message and str(tmp_path) not in caught.value.message


# ---- against a real server on 127.0.0.1 ---------------------------------------------------------


def _server(tmp_path_factory, seed_index, model_cache, name: str, extra: list[str]):
    root = tmp_path_factory.mktemp(name)
    corpus, index = root / "corpus", root / "index"
    shutil.copytree(SEEDS, corpus)
    shutil.copytree(seed_index, index)
    return start_server(corpus, index, cache_dir=model_cache, extra_args=extra, timeout=180), corpus


@pytest.fixture(scope="module")
def open_server(tmp_path_factory, seed_index, model_cache):
    """``rag chat`` without a login; yields ``(server, corpus)``."""
    server, corpus = _server(tmp_path_factory, seed_index, model_cache, "abuse-open", [])
    try:
        abuse.warm_up(server.url)
        yield server, corpus
    finally:
        server.stop()


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory, seed_index, model_cache):
    """``rag chat --auth anna:...``; yields ``(server, corpus)``."""
    server, corpus = _server(tmp_path_factory, seed_index, model_cache, "abuse-auth", ["--auth", f"{USER}:{PASSWORD}"])
    try:
        yield server, corpus
    finally:
        server.stop()


@pytest.mark.slow
def test_rebinding_gets_4xx_and_deletes_nothing(open_server):
    server, corpus = open_server
    result = abuse.rebinding(server.url, corpus, VICTIM)
    assert result.ok, result
    assert (corpus / VICTIM).exists()


@pytest.mark.slow
def test_huge_questions_leave_memory_where_it_was(open_server):
    server, _corpus = open_server
    result = abuse.huge_questions(server.url, server.pid, count=8, mb=100)
    assert result.ok, result
    assert result.seconds < 60


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, make", [("kommentar.html", abuse.unclosed_comment_html), ("seiten.pdf", abuse.shared_stream_pdf)]
)
def test_slow_files_are_refused_within_budget_while_questions_are_answered(open_server, tmp_path, name, make):
    server, corpus = open_server
    before = sorted(p.name for p in corpus.iterdir())
    result = abuse.slow_upload(server.url, name, make(), tmp_path)
    assert result.ok, result
    assert name in result.message
    assert sorted(p.name for p in corpus.iterdir()) == before


@pytest.mark.slow
def test_uploaded_temporary_copies_are_removed_when_the_handler_returns(open_server, tmp_path):
    import tempfile
    import uuid

    from gradio_client import Client, handle_file

    server, corpus = open_server
    name = f"kopie{uuid.uuid4().hex[:8]}.txt"
    path = tmp_path / name
    path.write_text("title: Kopie\n\nDie Brücke in Xylofon wurde am Montag eröffnet.\n", encoding="utf-8")
    client = Client(server.url, verbose=False, download_files=False, analytics_enabled=False)
    client.predict([handle_file(str(path))], api_name="/upload")
    client.close()
    assert (corpus / name).exists()
    cache = Path(tempfile.gettempdir()) / "gradio"  # the server's GRADIO_TEMP_DIR (not set: the default)
    assert not list(cache.glob(f"**/{name}"))


@pytest.mark.slow
def test_longest_questions_do_not_slow_the_others_down(open_server):
    from rag.questions import MAX_QUESTION_CHARS

    server, _corpus = open_server
    result = abuse.expensive_questions(server.url, MAX_QUESTION_CHARS, attackers=4, seconds=10)
    assert result.ok, result


@pytest.mark.slow
def test_heartbeat_flood_does_not_lock_out_the_right_password(locked_server):
    server, _corpus = locked_server
    result = abuse.stream_flood(server.url, USER, PASSWORD, streams=1012)
    assert result.ok, result
    assert result.refused >= 1000  # a stranger's streams are answered 401 and closed


@pytest.mark.slow
def test_password_guessing_is_locked_out(locked_server):
    """Last on this server: it leaves 127.0.0.1 locked out."""
    server, _corpus = locked_server
    result = abuse.password_guessing(server.url, USER, PASSWORD, attempts=1000)
    assert result.ok, result
    assert result.checked <= 20

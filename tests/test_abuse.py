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

from rag import Answer, Citation

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

    from ui.chat.guard import Guard, GuardConfig

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
    from ui.chat.guard import allowed_hosts

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
    from ui.chat.guard import LoginLimiter

    limiter = LoginLimiter(free=0, base=1.0, most=60.0)
    locks = [limiter.failed("c", now=0.0) for _ in range(10)]
    assert locks == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]


def test_streams_need_a_login_when_there_is_one():
    assert _client(_guarded(auth=True)).get("/gradio_api/heartbeat/x").status_code == 401
    assert _client(_guarded(auth=False)).get("/gradio_api/heartbeat/x").status_code == 200


# ---- parsers with budgets -----------------------------------------------------------------------


def test_long_comments_parse_in_linear_time_and_an_unclosed_one_is_refused():
    from embeddings.readers.files import DocumentError, parse_document
    from embeddings.readers.html_text import html_to_text

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
    from embeddings.readers.files import DocumentError, parse_document

    start = time.process_time()
    with pytest.raises(DocumentError, match="a tag longer than 64 KB"):
        parse_document(abuse.attribute_flood_html(), "flood.html", ".html")
    many = b"<html><body>" + b"<b>x</b>" * 250_000 + b"</body></html>"
    with pytest.raises(DocumentError, match="more than 200,000 tags"):
        parse_document(many, "tags.html", ".html")
    assert time.process_time() - start < 5.0


def test_html_reading_keeps_its_rules():
    from embeddings.readers.html_text import html_to_text

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
    from embeddings.readers.pdf_worker import PdfBudgetError, pdf_text

    start = time.monotonic()
    with pytest.raises(PdfBudgetError, match=r"took longer than 1 s"):
        pdf_text(abuse.shared_stream_pdf(), seconds=1.0)
    assert time.monotonic() - start < 3.0  # killed, not waited for


def test_pdf_memory_budget_is_enforced():
    from embeddings.readers.pdf_worker import PdfBudgetError, pdf_text

    with pytest.raises(PdfBudgetError, match=r"needed more than 64 MB of memory"):
        pdf_text(abuse.shared_stream_pdf(pages=2), memory_bytes=64 * 2**20)


def test_pdf_worker_reads_a_good_pdf_and_names_a_broken_one():
    from embeddings.readers.pdf_worker import PdfBudgetError, pdf_text

    pages = pdf_text(abuse.shared_stream_pdf(pages=2, operations=3))
    assert len(pages) == 2 and "Schoigu in Peking" in pages[0]
    with pytest.raises(PdfBudgetError, match="unreadable PDF"):
        pdf_text(b"%PDF-1.4\n garbage")


# ---- what the client sees -----------------------------------------------------------------------


def test_lookalike_citation_markers_are_elided():
    from rag.answering.answer import without_markers

    for marker in ("［1］", "⁽²⁾", "₍₃₎", "[ 4 ]", "【5】", "［１２］"):
        text = f"Er sagte {marker} es sei vorbei."
        assert [text[a:b] for a, b in without_markers(text, 0, len(text))] == ["Er sagte", "es sei vorbei."]


def test_quoted_urls_are_not_links():
    from ui.chat.render import answer_markdown

    shown = answer_markdown("„Mehr unter https://evil.example/a und www.evil.example/b“ [1]")
    assert "https://" not in shown and "www." not in shown and "evil.example/a" in shown


def test_file_names_are_escaped_in_the_status():
    from embeddings.indexer import IndexReport, Skipped
    from ui.chat.app import _report_line

    report = IndexReport(skipped=(Skipped("<img src=x onerror=alert(1)>.txt", "empty file; add text or remove it"),))
    line = _report_line(report)
    assert "<img" not in line and "&lt;img" in line


def test_client_errors_are_one_line_without_server_paths():
    from ui.chat.app import public_error

    error = public_error(OSError("/srv/rag/index/generations/7/chunks.sqlite is damaged (x)\nTraceback: y"))
    assert error.message == "chunks.sqlite is damaged (x) Traceback: y" and "\n" not in error.message


# ---- auth ---------------------------------------------------------------------------------------


def test_weak_passwords_are_refused_and_a_user_alone_gets_one_generated(tmp_path):
    from ui.chat.passwords import hash_password, parse_login

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


# ---- issue 23: the pieces --------------------------------------------------------------------


@pytest.mark.parametrize("mark", ["**", "__", "*", "_", "~~", "`", "[", "!["])
def test_markdown_that_froze_the_server_parses_quickly(mark):
    """N1: 64 KB of ``**x **x …`` took the old patterns 115 s holding the GIL; any mark, now about a second at most."""
    from embeddings.readers.markdown_text import IN_PROCESS_CHARS, markdown_to_text

    flood = abuse.markdown_flood(repeats=(IN_PROCESS_CHARS - 20) // (len(mark) + 2), mark=mark).decode()
    assert len(flood) <= IN_PROCESS_CHARS  # the in-process path, the one that holds the GIL
    start = time.process_time()
    text, _meta = markdown_to_text(flood)
    assert time.process_time() - start < 2.5 and text.startswith("Text.")


def test_long_markdown_runs_in_a_child_killed_past_its_budget():
    from embeddings.readers.markdown_text import MarkdownBudgetError, markdown_to_text

    start = time.monotonic()
    with pytest.raises(MarkdownBudgetError, match=r"took longer than 1 s"):
        markdown_to_text("![x" + " ![x" * 2_000_000, seconds=1.0)
    assert time.monotonic() - start < 3.0  # killed, not waited for
    text, meta = markdown_to_text("# Titel\n\n" + "Ein **Satz** mit [Link](http://x.example).\n\n" * 3000)
    assert meta == {"title": "Titel"} and text.count("Ein Satz mit Link.") == 3000


def test_a_markdown_budget_refusal_names_the_file(monkeypatch):
    import embeddings.readers.files as readers
    from embeddings.readers.markdown_text import MarkdownBudgetError

    def over(_text):
        raise MarkdownBudgetError("reading the Markdown took longer than 8 s (the limit for one file); split it")

    monkeypatch.setattr(readers, "markdown_to_text", over)
    with pytest.raises(readers.DocumentError, match=r"flut\.md: reading the Markdown took longer than 8 s"):
        readers.parse_document(b"Text.", "flut.md", ".md")


def test_markdown_keeps_its_reading_rules():
    from embeddings.readers.markdown_text import markdown_to_text

    md = (
        "# Titel\n\nEin <b>fetter</b> Satz mit ![Bild](http://127.0.0.1:9/p.png) und <https://x.example>.\n\n"
        "| a | b |\n|---|---|\n| eins | zwei |\n\n```\ncode bleibt\n```\n\n[ref]: http://x.example\n\n"
        "\\*kein\\* Fett, &amp; Entität"
    )
    text, meta = markdown_to_text(md)
    assert meta == {"title": "Titel"}
    assert text == (
        "Ein fetter Satz mit Bild und https://x.example.\n\na b\neins zwei\n\ncode bleibt\n\n*kein* Fett, & Entität"
    )


HOSTILE_ARTICLE = {
    "title": "Titel ![t](http://127.0.0.1:9/p.png) [click](https://evil.example/t2)",
    "outlet": "Agentur ![o](http://127.0.0.1:9/o.png) [Mehr](https://evil.example/x) a@evil.example",
    "source": "x![s](http://127.0.0.1:9/s.png).txt",
    "passage": "Xi traf Schoigu. Siehe https://evil.example/phish, www.evil.example/login, <https://evil.example/a>"
    " und ![p](http://127.0.0.1:9/q.png) [hier](https://evil.example/h) <img src=x onerror=alert(1)>.",
}


def _rendered_links(markdown: str) -> tuple[list[str], list[str]]:
    """The ``href`` and ``src`` values of ``markdown`` rendered as CommonMark, and what GFM would autolink.

    GFM's extended autolinks (``https://…``, ``www.…``, ``a@b.c``) are found in the source, as the
    chat's renderer finds them; a character reference (``&#58;``) there is no longer one of them.
    """
    import re

    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown)
    autolinks = re.findall(r"(?i)\b(?:https?|ftp)://\S+|\bwww\.\S+|[\w.+-]+@[\w-]+\.\w+", markdown)
    return re.findall(r'href="([^"]*)"', html) + autolinks, re.findall(r'(?i)<img[^>]*src="?([^" >]*)', html)


def test_article_metadata_and_passages_are_text_in_the_sources():
    """N2, N3: title, outlet, file name and passage hold links, images and bare addresses; none is live."""
    from ui.chat.render import message_markdown

    a = HOSTILE_ARTICLE
    passage = a["passage"]
    cited = Citation(1, a["source"], a["title"], passage, 0, len(passage), 0.5, "2025-02-28", (0, 16))
    other = Citation(2, a["source"], a["title"], passage, 0, len(passage), 0.4)
    answer = Answer("Freitag — „Xi traf Schoigu.“ [1]", False, [cited, other], "de")
    markdown = message_markdown(answer, outlets={a["source"]: a["outlet"]})
    links, images = _rendered_links(markdown)
    assert images == []
    assert links and all(link.startswith("?article=") for link in links), links
    for words in ("Agentur", "evil.example/phish", "Titel", "onerror=alert(1)"):
        assert words in markdown.replace("&#40;", "(").replace("&#41;", ")").replace("&#46;", ".")


def test_the_article_view_and_api_take_odd_input_as_no_input():
    """N12: ``at=²-3`` and 5,000 digits raised ValueError; a lone surrogate raised TypeError."""
    import gradio as gr

    from ui.chat.app import _span, _text_argument

    assert _span("²-3") is None and _span("9" * 5000 + "-1") is None and _span("18-23") == (18, 23)
    for bad in ("\ud800", "Wann \udfff?"):
        with pytest.raises(gr.Error, match="not text"):
            _text_argument(bad)


def test_refusals_in_the_status_area_are_escaped_once():
    """N15: a restore refusal showed ``&amp;lt;``."""
    from ui.chat.app import _status, public_error

    def refused():
        raise public_error(OSError("<b>kaputt</b> & weg"))

    _rows, shown = _status(refused, lambda: [])
    assert "&amp;lt;" not in shown and "&lt;b&gt;kaputt&lt;/b&gt; &amp; weg" in shown


def test_forwarded_for_is_believed_only_from_a_named_proxy(monkeypatch):
    """N4: uvicorn believes X-Forwarded-For from loopback unless told otherwise; the launcher tells it."""
    import os

    import ui.chat.app as chat

    launched = {}

    class FakeBlocks:
        def queue(self, **_options):
            return self

        def launch(self, **options):
            launched.update(options, forwarded=os.environ.get("FORWARDED_ALLOW_IPS"))

    app = chat.ChatApp.__new__(chat.ChatApp)
    app.max_file_bytes = 2**20
    monkeypatch.setattr(chat.ChatApp, "create_app", lambda self: FakeBlocks())
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    app.launch(block=False)
    assert launched["forwarded"] == ""
    app.launch(block=False, trusted_proxies=["10.0.0.5", " "])
    assert launched["forwarded"] == "10.0.0.5"
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)

    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    seen = {}

    async def inner(scope, receive, send):
        seen["client"] = scope["client"]

    import asyncio

    scope = {"type": "http", "client": ("127.0.0.1", 5), "headers": [(b"x-forwarded-for", b"198.51.100.7")]}
    asyncio.run(ProxyHeadersMiddleware(inner, trusted_hosts="")(scope, None, None))
    assert seen["client"][0] == "127.0.0.1"


def test_the_real_user_is_not_locked_out_by_a_strangers_guessing():
    """N5: the right password from a browser that logged in before passes; a stranger stays locked out."""
    app = _guarded()
    real, stranger = _client(app), _client(app)
    assert real.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
    assert any(name.startswith("rag-device-") for name in real.cookies)
    statuses = [stranger.post("/login", data={"username": USER, "password": f"x{n}"}).status_code for n in range(60)]
    assert statuses.count(429) >= 45
    assert stranger.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 429
    assert real.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
    # a device cookie is for its own account only, and its own failures lock it too
    other = real.post("/login", data={"username": "bert", "password": PASSWORD})
    assert other.status_code == 429
    statuses = [real.post("/login", data={"username": USER, "password": f"y{n}"}).status_code for n in range(15)]
    assert statuses[-1] == 429


def test_failed_logins_are_forgiven_over_time():
    from ui.chat.guard import LoginLimiter

    limiter = LoginLimiter(free=10, base=1.0, most=900.0, forgive=60.0)
    for _ in range(1000):
        limiter.failed("account:anna", now=0.0)
    assert limiter.wait("account:anna", now=1.0) == 899.0
    # an hour later the count is forgiven down to where one more failure locks for a second only
    assert limiter.failed("account:anna", now=1000 * 60.0 - 60 * 10) <= 2.0


def _hold_streams(config, sessions: list[str], client: str = "127.0.0.1") -> list[int]:
    """Open streams for ``sessions`` through the guard at once, all held; the status each got."""
    import asyncio

    from ui.chat.guard import Guard, GuardConfig

    async def run() -> list[int]:
        release = asyncio.Event()

        async def app(scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await release.wait()
            await send({"type": "http.response.body", "body": b""})

        guard = Guard(app, GuardConfig(port=7860, **config))
        statuses: list[int] = []

        async def one(session: str) -> None:
            scope = {
                "type": "http",
                "method": "GET",
                "path": f"/gradio_api/heartbeat/{session}",
                "headers": [(b"host", b"127.0.0.1:7860")],
                "client": (client, 1),
            }

            async def send(message):
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            async def receive():
                await release.wait()
                return {"type": "http.disconnect"}

            await guard(scope, receive, send)

        tasks = [asyncio.create_task(one(s)) for s in sessions]
        for _ in range(50):
            await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*tasks)
        return statuses

    return asyncio.run(run())


def test_streams_are_limited_per_session_not_per_loopback():
    """N6: 260 held streams of strangers on 127.0.0.1 left no stream for the user; now each session has its own."""
    statuses = _hold_streams({}, [f"s{n}" for n in range(260)] + ["user"])
    assert statuses.count(200) == 261
    statuses = _hold_streams({}, ["same"] * 20)
    assert statuses.count(200) == 16 and statuses.count(429) == 4
    statuses = _hold_streams({"streams_per_client": 5}, [f"r{n}" for n in range(8)], client="192.0.2.9")
    assert statuses.count(200) == 5  # a remote address keeps its own cap


def test_upload_rate_is_limited():
    """N7: 300 MiB of uploads in 3 s sat in gradio's cache for 10 minutes; now there is a budget per window."""
    client = _client(_guarded(upload_bytes=50_000, upload_window=600))
    files = [("files", ("a.txt", b"x" * 20_000, "text/plain"))]
    assert [client.post("/gradio_api/upload", files=files).status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=AAAA; boundary=BBBBBBBB",
        'multipart/form-data; boundary="AAAA;boundary=BBBBBBBB"',
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "a" * 71,
    ],
)
def test_ambiguous_multipart_headers_are_refused(content_type):
    """N8: a second boundary let 25 files past the 20-file limit."""
    parts = b"".join(
        b'--BBBBBBBB\r\nContent-Disposition: form-data; name="files"; filename="d%d.txt"\r\n\r\nx\r\n' % n
        for n in range(25)
    )
    client = _client(_guarded())
    response = client.post(
        "/gradio_api/upload", content=parts + b"--BBBBBBBB--\r\n", headers={"content-type": content_type}
    )
    assert response.status_code == 400 and response.text.count("\n") == 1


def test_quoted_angle_brackets_do_not_hide_a_long_tag():
    """N9: ``zN="<"`` every 2,000 characters took one tag of 1.9 M attributes past the 64 KB check."""
    from embeddings.readers.files import DocumentError, parse_document

    for payload in (abuse.quoted_lt_html(), abuse.quoted_lt_html().replace(b'"<"', b'">"')):
        start = time.process_time()
        with pytest.raises(DocumentError, match="a tag longer than 64 KB"):
            parse_document(payload, "attribute.html", ".html")
        assert time.process_time() - start < 2.0
    from embeddings.readers.html_text import html_to_text

    text, _meta = html_to_text('<p title="a < b > c">Erster.</p><script>if (a<b) x = "<p>";</script><p>Zweiter.</p>')
    assert text == "Erster.\nZweiter."


def test_a_file_of_too_many_passages_is_refused_before_anything_is_written(tmp_path):
    """N10: a 1 MB text made 3,031 passages and held the write slot for 242 s; the corpus caps passages per file."""
    from embeddings.sources.corpus_folder import CorpusFolder

    folder = CorpusFolder(tmp_path / "corpus", tmp_path / "trash", max_chunks=50)
    (tmp_path / "corpus").mkdir()
    long = ("Ein Satz über die Brücke in Xylofon, der lang genug ist. " * 12 + "\n\n") * 100
    saved, refused, _ = folder.save([("lang.txt", long.encode()), ("kurz.txt", b"Kurz und gut.")], lambda: None)
    assert [s.name for s in saved] == ["kurz.txt"]
    assert refused[0][0] == "lang.txt" and "passages; the limit is 50" in refused[0][1]
    assert not (tmp_path / "corpus" / "lang.txt").exists()


def test_corpus_and_trash_stop_at_their_disk_budget_and_the_trash_forgets(tmp_path):
    """N7: upload-then-remove grew corpus + trash by 152 MiB in 13 s, for good."""
    from embeddings.sources.corpus_folder import CorpusFolder

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    folder = CorpusFolder(corpus, tmp_path / "trash", max_bytes=100_000, trash_days=7)
    body = ("Ein Satz. " * 3000).encode()  # 30 KB
    refused_at = None
    for n in range(10):
        saved, refused, _ = folder.save([(f"f{n}.txt", body)], lambda: None)
        if refused:
            refused_at = n
            assert "disk budget" in refused[0][1]
            break
        folder.remove([f"f{n}.txt"], lambda: None)
    assert refused_at == 3 and folder.usage() <= 100_000
    week_later = time.time_ns() + 8 * 86400 * 10**9
    assert sorted(folder.purge_trash(week_later)) == ["f0.txt", "f1.txt", "f2.txt"]
    assert folder.trashed() == [] and folder.usage() == 0
    saved, refused, _ = folder.save([("f9.txt", body)], lambda: None)
    assert saved and not refused


def test_a_removed_symlinked_folder_is_listed_for_restore_and_names_cannot_be_options(tmp_path):
    """N15: a removed link to a folder was not listed; uploads could be called ``-rf.txt``."""
    from embeddings.sources.corpus_folder import CorpusFolder, safe_filename

    assert safe_filename("-rf.txt") == "rf.txt" and safe_filename("--x.md") == "x.md"
    corpus, elsewhere = tmp_path / "corpus", tmp_path / "elsewhere"
    corpus.mkdir()
    elsewhere.mkdir()
    (elsewhere / "a.txt").write_text("Ein Satz.")
    (corpus / "linked").symlink_to(elsewhere)
    folder = CorpusFolder(corpus, tmp_path / "trash")
    folder.remove(["linked"], lambda: None)
    assert [t.name for t in folder.trashed()] == ["linked"] and (elsewhere / "a.txt").exists()
    folder.restore("linked", lambda: None)
    assert (corpus / "linked").is_symlink()


def test_cli_names_a_bad_store_spec_in_one_line(tmp_path, capsys):
    """N14: ``--store "milvus:x.db#bad name"`` and a Milvus spec without the extra printed tracebacks."""
    from ui.cli import main

    for spec in ("milvus:x.db#bad name", "milvus:/etc/passwd"):
        code = main(["ask", "--store", spec, "--index-dir", str(tmp_path), "Wann?"])
        err = capsys.readouterr().err
        assert code == 1 and err.startswith("rag: error:") and err.count("\n") == 1, err


# ---- tampered index -----------------------------------------------------------------------------


def _tamper(index_dir: Path, sql: str) -> None:
    """Change the live segment's SQLite file and recompute its checksum in the manifest, as an attacker could."""
    import json

    from embeddings.stores.embedded.generations import current_generation
    from embeddings.stores.manifest import file_digest

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

    from ui.chat.app import ChatApp
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
    extra = ["--max-corpus-mb", str(abuse.CHURN_BUDGET_MIB)]
    server, corpus = _server(tmp_path_factory, seed_index, model_cache, "abuse-open", extra)
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
    from rag.answering.questions import MAX_QUESTION_CHARS

    server, _corpus = open_server
    result = abuse.expensive_questions(server.url, MAX_QUESTION_CHARS, attackers=4, seconds=10)
    assert result.ok, result


@pytest.mark.slow
def test_many_costly_questions_just_short_of_any_length_limit_do_not_slow_the_others_down(open_server):
    """N11: 8 sessions of 120-character made-up-word questions stayed out of the long-question lane and
    held another client's answers at a median of 2.1 s; workers now go to the least-used client first."""
    server, _corpus = open_server
    result = abuse.expensive_questions(server.url, 120, attackers=8, seconds=10)
    assert result.ok, result
    assert result.question_chars == 120


@pytest.mark.slow
def test_markdown_flood_upload_leaves_the_server_answering(open_server, tmp_path):
    """N1: the upload took 115 s and every route froze for 112 s."""
    server, _corpus = open_server
    result = abuse.markdown_upload(server.url, abuse.markdown_flood(), tmp_path)
    assert result.ok, result
    assert result.upload_s < 10


@pytest.mark.slow
def test_held_streams_leave_the_user_an_answer(open_server):
    """N6: 260 held heartbeat streams on loopback used up the one shared budget of 256."""
    server, _corpus = open_server
    result = abuse.held_streams_then_ask(server.url, streams=260)
    assert result.ok, result
    assert result.refused == 0


@pytest.mark.slow
def test_duplicate_boundary_and_bad_inputs_are_refused_in_one_line(open_server):
    """N8, N12, N13."""
    server, corpus = open_server
    result = abuse.duplicate_boundary(server.url, corpus)
    assert result.ok, result
    result = abuse.bad_inputs(server.url, lambda: server.log_tail(10**8))
    assert result.ok, result
    assert all("not text" in answer for answer in result.answers.values()), result.answers


@pytest.mark.slow
def test_upload_remove_churn_stops_at_the_disk_budget(open_server, tmp_path):
    """N7: corpus + trash grew 152 MiB in 13 s, for good."""
    server, corpus = open_server
    index = Path(server.process.args[server.process.args.index("--index-dir") + 1])
    result = abuse.upload_remove_churn(
        server.url, corpus, index / "trash", tmp_path, abuse.CHURN_BUDGET_MIB, mib=abuse.CHURN_MIB
    )
    assert result.ok, result
    assert "disk budget" in result.message


@pytest.mark.slow
def test_heartbeat_flood_does_not_lock_out_the_right_password(locked_server):
    server, _corpus = locked_server
    result = abuse.stream_flood(server.url, USER, PASSWORD, streams=1012)
    assert result.ok, result
    assert result.refused >= 1000  # a stranger's streams are answered 401 and closed


@pytest.mark.slow
def test_forged_forwarded_for_and_the_real_user_after_guessing(locked_server):
    """N4: X-Forwarded-For from loopback escaped the per-address limit; N5: the real user was locked out too."""
    server, _corpus = locked_server
    browser = abuse.real_user_browser(server.url, USER, PASSWORD)
    forged = abuse.forged_forwarded_for(server.url, USER, 40, lambda: server.log_tail(10**8))
    assert forged.ok, forged
    assert forged.checked <= 12  # ten free tries, then locked: the forged addresses are not new clients
    real = abuse.real_user_after_guessing(server.url, USER, PASSWORD, browser, attempts=1000)
    assert real.ok, real
    assert real.stranger_right_password == 429


@pytest.mark.slow
def test_password_guessing_is_locked_out(locked_server):
    """Last on this server: it leaves 127.0.0.1 locked out."""
    server, _corpus = locked_server
    result = abuse.password_guessing(server.url, USER, PASSWORD, attempts=1000)
    assert result.ok, result
    assert result.checked <= 20

"""Exposure: who can reach the chat, what it accepts, and what a stranger gets.

(a) ``rag chat`` and ``ChatApp.launch()`` listen on 127.0.0.1 unless told otherwise: the
listening socket (read from ``/proc/net/tcp*``) and a connection attempt on the machine's
other addresses say so. (b) Uploads over HTTP: too big, wrong type, or binary dressed as
``.txt`` are refused with a message that names the file; nothing is saved, nothing indexed
is lost. (c) With a login, a stranger and a wrong password get no answer, no upload, no
document names; the right password gets answers.
"""

from __future__ import annotations

import itertools
import re
import shutil
import socket
from pathlib import Path

import pytest

from tests.support.servers import start_server

from .conftest import SEEDS, served_chat
from .test_chat import NEW_ARTICLE, SHOIGU, SHOIGU_FILE

USER, PASSWORD = "anna", "Geheim-4711"
UPLOAD_LIMIT_MB = 1  # the CLI server's --max-upload-mb: small, so a too-big file is quick to make


# ---- helpers ------------------------------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (IPv4 and IPv6), from ``/proc/net``."""
    found = set()
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
            found.add(socket.inet_ntop(family, b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))))
    return found


def other_addresses() -> list[tuple[int, str]]:
    """This machine's non-loopback IP addresses, as ``(family, address)``."""
    out = []
    lines = Path("/proc/net/fib_trie").read_text().splitlines() if Path("/proc/net/fib_trie").exists() else []
    for previous, line in itertools.pairwise(lines):
        if "/32 host LOCAL" in line:
            address = previous.split()[-1]
            if not address.startswith("127."):
                out.append((socket.AF_INET, address))
    if Path("/proc/net/if_inet6").exists():
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            hex_address, _index, _prefix, scope, _flags, device = line.split()
            if device != "lo" and scope == "00":  # global scope; link-local needs an interface to connect
                out.append((socket.AF_INET6, socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hex_address))))
    return sorted(set(out))


def connects(family: int, address: str, port: int) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        try:
            s.connect((address, port))
        except OSError:
            return False
        return True


def _port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def _client(url: str, auth=None):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, auth=auth, analytics_enabled=False)


def _corpus_listing(corpus: Path) -> list[str]:
    return sorted(p.name for p in corpus.iterdir())  # hidden files too: no half-written upload may remain


# ---- the command line (fast) --------------------------------------------------------------------


def test_chat_defaults_to_loopback_and_says_so(monkeypatch, capsys):
    from embeddings.readers.files import MAX_FILE_BYTES
    from ui.cli import build_parser, main

    for var in ("RAG_HOST", "RAG_AUTH", "RAG_MAX_UPLOAD_MB"):
        monkeypatch.delenv(var, raising=False)
    args = build_parser().parse_args(["chat"])
    assert args.host == "127.0.0.1" and args.auth is None and args.max_upload_mb == MAX_FILE_BYTES / 2**20
    assert build_parser().parse_args(["chat", "--max-upload-mb", "0.5"]).max_upload_mb == 0.5
    with pytest.raises(SystemExit):
        main(["chat", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default 127.0.0.1: this machine only" in text
    assert "--max-upload-mb" in text and "RAG_MAX_UPLOAD_MB" in text and "default 20)" in text
    monkeypatch.setenv("RAG_MAX_UPLOAD_MB", "5")
    assert build_parser().parse_args(["chat"]).max_upload_mb == 5


def test_bad_upload_limit_is_one_line_and_exit_1(tmp_path, capsys):
    from ui.cli import main

    assert main(["chat", "--max-upload-mb", "0", "--corpus", str(tmp_path), "--index-dir", str(tmp_path / "i")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-upload-mb must be positive" in err


def test_exposure_warning():
    from ui.cli import exposure_warning

    assert exposure_warning("127.0.0.1", None) is None
    assert exposure_warning("0.0.0.0", (USER, PASSWORD)) is None
    assert "without --auth" in exposure_warning("0.0.0.0", None)


# ---- (a) + (b): `rag chat` with its defaults, as a separate process ----------------------------


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory, seed_index, model_cache):
    """``rag chat`` without ``--host`` (and no RAG_* variables), uploads limited to 1 MB; yields ``(url, corpus)``."""
    root = tmp_path_factory.mktemp("exposed")
    corpus, index = root / "corpus", root / "index"
    shutil.copytree(SEEDS, corpus)
    shutil.copytree(seed_index, index)
    server = start_server(
        corpus,
        index,
        cache_dir=model_cache,
        host=None,
        extra_args=["--max-upload-mb", str(UPLOAD_LIMIT_MB)],
        timeout=180,
    )
    try:
        yield server.url, corpus
    finally:
        server.stop()


@pytest.mark.slow
def test_default_bind_is_loopback_only(cli_server):
    url, _corpus = cli_server
    port = _port(url)
    assert listening_addresses(port) == {"127.0.0.1"}  # not 0.0.0.0, not ::
    assert connects(socket.AF_INET, "127.0.0.1", port)


@pytest.mark.slow
def test_not_reachable_on_the_machines_other_addresses(cli_server):
    url, _corpus = cli_server
    others = other_addresses()
    if not others:
        pytest.skip("this machine has no address but loopback")
    reachable = [address for family, address in others if connects(family, address, _port(url))]
    assert reachable == [], f"the chat answers on {reachable}"


@pytest.mark.slow
def test_upload_over_the_limit_is_refused_by_the_server(cli_server, tmp_path):
    """Sent by hand (gradio_client would refuse it itself, from the limit in the page config)."""
    import httpx

    url, corpus = cli_server
    before = _corpus_listing(corpus)
    big = ("Ein Satz über die neue Brücke in Xylofon. " * 40_000).encode()  # ~1.7 MB of real text
    assert len(big) > UPLOAD_LIMIT_MB * 2**20
    response = httpx.post(f"{url}gradio_api/upload", files={"files": ("gross.txt", big, "text/plain")}, timeout=60)
    assert response.status_code == 413 and "maximum allowed size" in response.text

    from gradio_client import handle_file

    path = tmp_path / "gross.txt"
    path.write_bytes(big)
    with pytest.raises(ValueError, match="exceeds the maximum file size"):
        _client(url).predict([handle_file(str(path))], api_name="/upload")
    assert _corpus_listing(corpus) == before


def _refused(url: str, files: list[Path]) -> str:
    """Why the upload refused a file: Gradio's own error, or the status line the page keeps showing."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    try:
        _table, status, _files = _client(url).predict([handle_file(str(f)) for f in files], False, api_name="/upload")
    except AppError as caught:
        return str(caught)
    assert "refused" in status or status.startswith("⚠️"), status
    return status


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
LATIN1 = "Die Brücke über die Zeller".encode("latin-1") + bytes(range(128, 256))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, content, message",
    [
        # the chat names the types it takes (Gradio's own check refused a whole batch with one toast)
        ("programm.exe", b"MZ\x90\x00\x03\x00\x00\x00", r"programm\.exe: unsupported file type \.exe; upload \.txt"),
        ("bild.txt", PNG, r"bild\.txt: binary file"),
        ("latin.txt", LATIN1, r"latin\.txt: not valid UTF-8"),
        ("bericht.pdf", b"Dies ist kein PDF, nur Text mit der Endung .pdf.", r"bericht\.pdf: not a PDF"),
    ],
)
def test_wrong_type_is_refused_with_a_readable_error(cli_server, tmp_path, name, content, message):
    url, corpus = cli_server
    before = _corpus_listing(corpus)
    bad = tmp_path / name
    bad.write_bytes(content)
    assert re.search(message, _refused(url, [bad]))
    assert _corpus_listing(corpus) == before


@pytest.mark.slow
def test_one_bad_file_is_named_and_the_good_one_saved(cli_server, tmp_path):
    url, corpus = cli_server
    client = _client(url)
    before = _corpus_listing(corpus)
    good, bad = tmp_path / "xylofon.txt", tmp_path / "kaputt.txt"
    good.write_text(NEW_ARTICLE, encoding="utf-8")
    bad.write_bytes(b"\xff\xfe\x00" + bytes(range(256)))  # a UTF-16 byte-order mark, then no UTF-16
    assert "refused kaputt.txt: broken UTF\\-16" in _refused(url, [good, bad])  # Markdown-escaped
    assert _corpus_listing(corpus) == sorted([*before, "xylofon.txt"])  # the bad one was not saved
    assert "xylofon.txt" in {row[0] for row in client.predict(api_name="/documents")["data"]}
    assert client.predict(SHOIGU, api_name="/ask")["citations"][0]["source"] == SHOIGU_FILE
    data = client.predict("Wer eröffnete die Brücke in Xylofon?", api_name="/ask")
    assert "xylofon.txt" in {c["source"] for c in data["citations"]}


def test_upload_handler_refuses_a_file_over_the_limit(tmp_path, fake_embedder):
    """The handler's own check, for a file that reached it some other way than Gradio's upload route."""
    import gradio as gr

    from ui.chat.app import ChatApp

    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    app = ChatApp(tmp_path / "index", corpus, fake_embedder, max_file_bytes=2**20 // 4)
    article = tmp_path / "artikel.txt"
    article.write_text(NEW_ARTICLE + "Die Brücke ist lang. " * 20_000, encoding="utf-8")  # ~0.4 MB
    with pytest.raises(gr.Error) as refused:
        app.upload([str(article)])
    assert (
        refused.value.message
        == "artikel.txt: too large (440,234 bytes; the limit is 262,144 bytes; split it into smaller files)"
    )
    assert _corpus_listing(corpus) == sorted(p.name for p in SEEDS.iterdir())


# ---- (c) login ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, seed_index, embedder):
    """``ChatApp.launch(auth=...)`` with the default host, on a free port; yields ``(url, corpus)``."""
    root = tmp_path_factory.mktemp("locked")
    with served_chat(root, seed_index, embedder, launch={"auth": (USER, PASSWORD)}) as served:
        yield served.url, served.app.corpus_dir


def _stranger_gets_nothing(http, url: str, corpus: Path) -> None:
    """Every way in that answers, uploads or lists documents is refused to ``http`` (an ``httpx.Client``)."""
    before = _corpus_listing(corpus)
    ask = {"data": [SHOIGU, ""]}
    assert http.get(f"{url}config").status_code == 401
    assert http.get(f"{url}gradio_api/info").status_code == 401
    assert http.post(f"{url}gradio_api/call/ask", json=ask).status_code == 401
    assert http.post(f"{url}gradio_api/run/ask", json=ask).status_code == 401
    assert http.post(f"{url}gradio_api/queue/join", json={**ask, "fn_index": 0, "session_hash": "x"}).status_code == 401
    upload = http.post(f"{url}gradio_api/upload", files={"files": ("neu.txt", NEW_ARTICLE.encode(), "text/plain")})
    assert upload.status_code == 401
    seed_file = corpus / SHOIGU_FILE
    assert http.get(f"{url}gradio_api/file={seed_file}").status_code == 401
    page = http.get(url)
    assert '"auth_required":true' in page.text.replace(" ", "")  # the page is the login form
    for name in before:  # and names no document, nor any article text
        assert name not in page.text
    assert "Schoigu" not in page.text and "Shoigu" not in page.text
    assert _corpus_listing(corpus) == before


@pytest.mark.slow
def test_launch_default_host_is_loopback(auth_server):
    url, _corpus = auth_server
    assert listening_addresses(_port(url)) == {"127.0.0.1"}


@pytest.mark.slow
def test_without_login_nothing_is_answered(auth_server):
    import httpx
    from gradio_client.exceptions import AuthenticationError

    url, corpus = auth_server
    with pytest.raises(AuthenticationError):
        _client(url)
    with httpx.Client(timeout=30) as http:
        _stranger_gets_nothing(http, url, corpus)


@pytest.mark.slow
@pytest.mark.parametrize(
    "user, password",
    [(USER, "geheim"), (USER, ""), (USER, PASSWORD + " "), ("bob", PASSWORD), (USER.upper(), PASSWORD)],
)
def test_wrong_password_is_rejected_and_still_gets_nothing(auth_server, user, password):
    import httpx

    url, corpus = auth_server
    with pytest.raises(ValueError, match="Could not login"):  # AuthenticationError is a ValueError too
        _client(url, auth=(user, password))
    with httpx.Client(timeout=30) as http:
        response = http.post(f"{url}login", data={"username": user, "password": password})
        assert response.status_code in (400, 401, 422) and not http.cookies
        _stranger_gets_nothing(http, url, corpus)  # with whatever the failed login left behind


@pytest.mark.slow
def test_right_password_gets_answers(auth_server):
    import httpx

    url, _corpus = auth_server
    data = _client(url, auth=(USER, PASSWORD)).predict(SHOIGU, api_name="/ask")
    assert "Friday, 28 February 2025" in data["text"] and data["citations"][0]["source"] == SHOIGU_FILE
    with httpx.Client(timeout=30) as http:
        assert http.post(f"{url}login", data={"username": USER, "password": PASSWORD}).status_code == 200
        assert http.get(f"{url}config").status_code == 200

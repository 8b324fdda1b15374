"""The abuse round: the attacks of issue 13, each bounded in count and time, against a chat on loopback.

Each function takes the chat's URL (``http://127.0.0.1:PORT/``; nothing else is accepted) and
returns a small frozen result whose ``ok`` says whether the server held; the numbers in it
are what the README's Reliability section quotes. ``tests/test_abuse.py`` runs them against
a real ``rag chat``; ``scripts/load_chat.py --abuse`` runs them all and prints a table.

- :func:`rebinding`: requests with a foreign ``Host``/``Origin`` (DNS rebinding, a foreign page).
- :func:`huge_questions`: 100 MB request bodies, announced and chunked; server memory after.
- :func:`slow_upload`: an 800 KB unclosed-comment HTML and a shared-content-stream PDF,
  uploaded while a second client keeps asking.
- :func:`expensive_questions`: clients sending the longest allowed question while another asks.
- :func:`password_guessing`: wrong passwords from one client until locked out.
- :func:`stream_flood`: a stranger's heartbeat streams, then the right password.

Issue 23's, each named by its row:

- :func:`markdown_upload` (N1): a Markdown file that made the old inline patterns quadratic,
  uploaded while another client reads ``/gradio_api/info`` every 0.2 s.
- :func:`forged_forwarded_for` (N4): wrong passwords, each "from" another ``X-Forwarded-For``.
- :func:`real_user_after_guessing` (N5): the real user (a browser that logged in before) after
  1,000 wrong passwords from the same address.
- :func:`held_streams_then_ask` (N6): 260 heartbeat streams held open, then a question.
- :func:`upload_remove_churn` (N7): upload-then-remove cycles against the disk budget.
- :func:`duplicate_boundary` (N8): 25 files behind ``boundary=A; boundary=B``.
- :func:`bad_inputs` (N12, N13): lone surrogates to ``/ask``, what ``/config`` shows.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import statistics
import string
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from .pdf import assemble

QUESTION = "When did Shoigu visit Beijing?"
#: N7: the open server's disk budget for corpus + trash, and the size of each churned page.
CHURN_BUDGET_MIB, CHURN_MIB = 40, 8
REBIND_HOST = "rebind.attacker.example"


def _loopback(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or not parts.port:
        raise ValueError(f"the abuse round runs against loopback only, not {url}")
    return parts.hostname, parts.port


def _listing(corpus: Path | None) -> list[str] | None:
    return sorted(p.name for p in corpus.iterdir()) if corpus else None


def memory_mib(pid: int) -> float:
    """VmRSS of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")


# ---- payloads -----------------------------------------------------------------------------------


def unclosed_comment_html(size: int = 800 * 1024) -> bytes:
    """A page whose comment never closes: quadratic for Python's ``html.parser``."""
    head = b"<html><head><title>Kommentar</title></head><body><p>Ein Absatz.</p><!--"
    return head + b"a -- b <c> " * ((size - len(head)) // 11)


def attribute_flood_html(attributes: int = 200_000) -> bytes:
    """One tag with very many attributes (the finding's had 4.9 M; the limit stops it at the first few KB)."""
    return b"<html><body><p " + b" ".join(b"a%d=1" % i for i in range(attributes)) + b">Text</p></body></html>"


def shared_stream_pdf(pages: int = 400, operations: int = 40_000) -> bytes:
    """A small PDF whose pages all draw one large compressed content stream: slow to extract, page by page."""
    content = b"BT /F1 9 Tf 20 20 Td (Schoigu in Peking) Tj ET\n" * operations
    stream = zlib.compress(content, 9)
    kids = " ".join(f"{5 + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R"
        b" /Resources << /Font << /F1 3 0 R >> >> >>"
    )
    objects += [page] * pages
    return assemble(objects)


def markdown_flood(repeats: int = 16_000, mark: str = "**") -> bytes:
    """``Text.`` then ``**x **x …``: 64 KB that took the old emphasis patterns 115 s (N1)."""
    return ("Text.\n\n" + mark + "x" + (" " + mark + "x") * repeats).encode()


def quoted_lt_html(attributes: int = 200_000) -> bytes:
    """One ``<p>`` with very many attributes and ``zN="<"`` every 2,000: the tag check stopped at the "<" (N9)."""
    attrs = b" ".join(b'z%d="<"' % i if i % 200 == 0 else b"a%d=1" % i for i in range(attributes))
    return b"<html><body><p " + attrs + b">Text</p></body></html>"


def longest_question(chars: int, seed: int = 0) -> str:
    """A question of ``chars`` characters of made-up capitalised words, different for each ``seed``.

    The costly kind: every word is compared with every word of the candidate sentences, and
    new words each time defeat the caches of those comparisons.
    """
    rnd = random.Random(seed)
    words, n = ["When", "did"], 8
    while n < chars:
        word = "".join(rnd.choice(string.ascii_lowercase) for _ in range(rnd.randint(6, 9))).capitalize()
        words.append(word)
        n += len(word) + 1
    return " ".join(words)[: chars - 1].rstrip() + "?"


# ---- attacks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RebindResult:
    statuses: dict[str, int]  # what each attempt got
    deleted: list[str]  # corpus files that disappeared
    added: list[str]

    @property
    def ok(self) -> bool:
        return all(400 <= s < 500 for s in self.statuses.values()) and not self.deleted and not self.added


def rebinding(url: str, corpus: Path | None, victim: str, timeout: float = 20) -> RebindResult:
    """Every route a rebinding page would use, with ``Host`` and ``Origin`` naming the attacker's site."""
    import httpx

    _host, port = _loopback(url)
    before = _listing(corpus)
    foreign = {"host": f"{REBIND_HOST}:{port}", "origin": f"http://{REBIND_HOST}:{port}"}
    cross = {"origin": f"http://{REBIND_HOST}:{port}"}  # the right Host, a foreign page
    statuses = {}
    with httpx.Client(timeout=timeout) as http:
        for label, headers in (("rebind", foreign), ("cross-origin", cross)):
            statuses[f"{label} GET /config"] = http.get(f"{url}config", headers=headers).status_code
            statuses[f"{label} GET /gradio_api/info"] = http.get(f"{url}gradio_api/info", headers=headers).status_code
            upload = http.post(
                f"{url}gradio_api/upload",
                headers=headers,
                files={"files": ("planted.txt", b"title: Planted\n\nPlanted text.", "text/plain")},
            )
            statuses[f"{label} POST /gradio_api/upload"] = upload.status_code
            for api in ("remove", "ask"):
                body = {"data": [victim] if api == "remove" else [QUESTION, ""]}
                call = http.post(f"{url}gradio_api/call/{api}", headers=headers, json=body)
                statuses[f"{label} POST /gradio_api/call/{api}"] = call.status_code
                if call.status_code == 200:  # the attack got in: let it finish, so the damage shows
                    event = call.json().get("event_id")
                    with contextlib.suppress(httpx.HTTPError):
                        http.get(f"{url}gradio_api/call/{api}/{event}", headers=headers)
    after = _listing(corpus)
    deleted = sorted(set(before or ()) - set(after or ()))
    added = sorted(set(after or ()) - set(before or ()))
    return RebindResult(statuses, deleted, added)


@dataclass(frozen=True)
class HugeResult:
    statuses: list[str]
    rss_before_mib: float | None
    rss_after_mib: float | None
    seconds: float

    @property
    def growth_mib(self) -> float | None:
        if self.rss_before_mib is None or self.rss_after_mib is None:
            return None
        return round(self.rss_after_mib - self.rss_before_mib, 1)

    @property
    def ok(self) -> bool:
        refused = all(s.startswith(("413", "400", "closed")) for s in self.statuses)
        return refused and (self.growth_mib is None or self.growth_mib <= 200)


def huge_questions(url: str, pid: int | None, count: int = 8, mb: int = 100, timeout: float = 60) -> HugeResult:
    """``count`` questions of ``mb`` MB to ``/gradio_api/queue/join``: half announced, half chunked."""
    import httpx

    _loopback(url)
    before = memory_mib(pid) if pid else None
    block = b"A" * 2**20
    statuses = []
    start = time.monotonic()
    for n in range(count):
        head = b'{"data": ["'
        tail = b'", ""], "fn_index": 0, "session_hash": "%s"}' % uuid.uuid4().hex.encode()

        def chunks(head=head, tail=tail):
            yield head
            for _ in range(mb):
                yield block
            yield tail

        try:
            with httpx.Client(timeout=timeout) as http:
                if n % 2 == 0:
                    body = head + block * mb + tail
                    response = http.post(f"{url}gradio_api/queue/join", content=body)
                    del body
                else:
                    response = http.post(f"{url}gradio_api/queue/join", content=chunks())
            statuses.append(f"{response.status_code} {response.text.strip()[:80]}")
        except httpx.HTTPError as exc:  # the server closed the connection while the body was still going
            statuses.append(f"closed ({type(exc).__name__})")
    seconds = time.monotonic() - start
    time.sleep(1.0)
    after = memory_mib(pid) if pid else None
    return HugeResult(statuses, before and round(before, 1), after and round(after, 1), round(seconds, 1))


def _ask_loop(
    url: str,
    stop: threading.Event,
    latencies: list[float],
    errors: list[str],
    question: Callable[[int], str] = lambda _n: QUESTION,
):
    """Ask ``question(n)`` through ``/ask`` again and again until ``stop``; latencies and errors are appended."""
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    n = 0
    try:
        while not stop.is_set():
            start = time.monotonic()
            n += 1
            try:
                client.predict(question(n), "", api_name="/ask")
                latencies.append(time.monotonic() - start)
            except Exception as exc:
                errors.append(" ".join(str(exc).split())[:120] or type(exc).__name__)
                time.sleep(0.2)
    finally:
        client.close()


@dataclass(frozen=True)
class UploadResult:
    name: str
    refused: bool
    seconds: float
    message: str
    asks_meanwhile: int
    ask_p50_s: float | None
    budget_s: float = 10.0

    @property
    def ok(self) -> bool:
        return self.refused and self.seconds <= self.budget_s and self.asks_meanwhile > 0


def slow_upload(url: str, name: str, content: bytes, workdir: Path) -> UploadResult:
    """Upload ``content`` as ``name`` through ``/upload`` while another client asks; how long until refused."""
    from gradio_client import Client, handle_file

    _loopback(url)
    path = workdir / name
    path.write_bytes(content)
    stop, latencies, errors = threading.Event(), [], []
    asker = threading.Thread(target=_ask_loop, args=(url, stop, latencies, errors), daemon=True)
    asker.start()
    time.sleep(1.0)
    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    start = time.monotonic()
    try:
        # The page keeps a refusal in its status area (it starts with the warning sign) instead of raising.
        _table, status, _files = client.predict([handle_file(str(path))], False, api_name="/upload")
        refused = status.startswith("⚠️")
        message = " ".join(status.split())[:200] if refused else "accepted"
    except Exception as exc:
        refused, message = True, " ".join(str(exc).split())[:200]
    seconds = time.monotonic() - start
    client.close()
    time.sleep(0.5)
    stop.set()
    asker.join(30)
    p50 = round(statistics.median(latencies), 3) if latencies else None
    return UploadResult(name, refused, round(seconds, 2), message, len(latencies), p50)


@dataclass(frozen=True)
class ExpensiveResult:
    attackers: int
    question_chars: int
    attacker_requests: int
    others_requests: int
    others_p50_s: float | None
    others_errors: list[str] = field(default_factory=list)
    attacker_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        held = self.others_p50_s is not None and self.others_p50_s < 1.0 and not self.others_errors
        return held and self.attacker_requests > 0


def expensive_questions(url: str, chars: int, attackers: int = 4, seconds: float = 20) -> ExpensiveResult:
    """``attackers`` clients send the longest allowed question for ``seconds``; one other client asks meanwhile."""
    _loopback(url)
    stop = threading.Event()
    bad_latencies: list[float] = []
    bad_errors: list[str] = []
    threads = [
        threading.Thread(
            target=_ask_loop,
            args=(url, stop, bad_latencies, bad_errors, lambda n, a=a: longest_question(chars, seed=a * 100_000 + n)),
            daemon=True,
        )
        for a in range(attackers)
    ]
    for t in threads:
        t.start()
    time.sleep(2.0)  # the attackers are busy before the measured client starts
    latencies: list[float] = []
    errors: list[str] = []
    other = threading.Thread(target=_ask_loop, args=(url, stop, latencies, errors), daemon=True)
    other.start()
    time.sleep(seconds)
    stop.set()
    for t in [*threads, other]:
        t.join(60)
    p50 = round(statistics.median(latencies), 3) if latencies else None
    chars = len(longest_question(chars))
    return ExpensiveResult(attackers, chars, len(bad_latencies), len(latencies), p50, errors[:5], bad_errors[:3])


@dataclass(frozen=True)
class GuessResult:
    attempts: int
    checked: int  # answered by the login check (400/401)
    locked: int  # refused without a check (429)
    seconds: float
    right_password_after: int  # status of the right password from the same client, right after

    @property
    def ok(self) -> bool:
        return self.locked >= self.attempts - 20 and self.right_password_after == 429


def password_guessing(url: str, user: str, right: str, attempts: int = 1000, timeout: float = 10) -> GuessResult:
    """``attempts`` wrong passwords from one client, as fast as it is answered; then the right one."""
    import httpx

    _loopback(url)
    checked = locked = 0
    start = time.monotonic()
    with httpx.Client(timeout=timeout) as http:
        for n in range(attempts):
            status = http.post(f"{url}login", data={"username": user, "password": f"wrong-{n}"}).status_code
            checked += status in (400, 401, 422)
            locked += status == 429
        right_after = http.post(f"{url}login", data={"username": user, "password": right}).status_code
    return GuessResult(attempts, checked, locked, round(time.monotonic() - start, 1), right_after)


@dataclass(frozen=True)
class FloodResult:
    opened: int
    refused: int  # streams the server answered with 401/429 and closed
    login_status: int
    login_seconds: float

    @property
    def ok(self) -> bool:
        return self.login_status == 200


def stream_flood(
    url: str, user: str, password: str, streams: int = 1012, login: Callable[..., int] | None = None
) -> FloodResult:
    """A stranger opens ``streams`` heartbeat streams at once and keeps them; then the right password logs in."""
    import httpx

    host, port = _loopback(url)
    sockets: list[socket.socket] = []
    refused = 0
    try:
        for n in range(streams):
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(
                f"GET /gradio_api/heartbeat/flood{n} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Accept: text/event-stream\r\n\r\n".encode()
            )
            sockets.append(s)
        time.sleep(1.0)
        for s in sockets:
            s.settimeout(0.05)
            with contextlib.suppress(OSError):
                head = s.recv(64)
                refused += head.startswith((b"HTTP/1.1 401", b"HTTP/1.1 429"))
        start = time.monotonic()
        with httpx.Client(timeout=30) as http:
            status = http.post(f"{url}login", data={"username": user, "password": password}).status_code
        took = time.monotonic() - start
    finally:
        for s in sockets:
            with contextlib.suppress(OSError):
                s.close()
    return FloodResult(len(sockets), refused, status, round(took, 2))


@dataclass(frozen=True)
class FreezeResult:
    name: str
    refused: bool
    upload_s: float
    probes: int  # GET /gradio_api/info while the upload ran
    probe_max_s: float | None
    message: str

    @property
    def ok(self) -> bool:
        return self.probes > 0 and self.probe_max_s is not None and self.probe_max_s < 1.0


def markdown_upload(url: str, content: bytes, workdir: Path, name: str = "flut.md") -> FreezeResult:
    """Upload ``content`` as a Markdown file; meanwhile another client times ``GET /gradio_api/info``."""
    import httpx
    from gradio_client import Client, handle_file

    _loopback(url)
    path = workdir / name
    path.write_bytes(content)
    stop = threading.Event()
    probes: list[float] = []

    def probe() -> None:
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                start = time.monotonic()
                http.get(f"{url}gradio_api/info")
                probes.append(time.monotonic() - start)
                time.sleep(0.2)

    prober = threading.Thread(target=probe, daemon=True)
    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    prober.start()
    start = time.monotonic()
    try:
        _table, status, _files = client.predict([handle_file(str(path))], False, api_name="/upload")
        refused, message = status.startswith("⚠️"), " ".join(status.split())[:200]
    except Exception as exc:
        refused, message = True, " ".join(str(exc).split())[:200]
    seconds = time.monotonic() - start
    time.sleep(0.5)
    stop.set()
    prober.join(60)
    client.close()
    worst = round(max(probes), 3) if probes else None
    return FreezeResult(name, refused, round(seconds, 2), len(probes), worst, message)


@dataclass(frozen=True)
class ForgedResult:
    attempts: int
    checked: int
    locked: int
    logged_as_forged: bool  # the server's log names an address the attacker made up

    @property
    def ok(self) -> bool:
        return self.locked >= self.attempts - 20 and not self.logged_as_forged


def forged_forwarded_for(url: str, user: str, attempts: int = 40, log_text: Callable[[], str] = str) -> ForgedResult:
    """``attempts`` wrong passwords, each with another ``X-Forwarded-For`` (N4)."""
    import httpx

    _loopback(url)
    checked = locked = 0
    with httpx.Client(timeout=10) as http:
        for n in range(attempts):
            forged = f"198.51.100.{n + 1}"
            status = http.post(
                f"{url}login",
                data={"username": user, "password": f"wrong-{n}"},
                headers={"x-forwarded-for": forged, "x-real-ip": forged, "forwarded": f"for={forged}"},
            ).status_code
            checked += status in (400, 401, 422)
            locked += status == 429
    return ForgedResult(attempts, checked, locked, "198.51.100." in log_text())


@dataclass(frozen=True)
class RealUserResult:
    attempts: int
    locked: int
    stranger_right_password: int  # the right password without a device cookie, right after
    real_user_status: int  # the right password from the browser that logged in before
    real_user_s: float

    @property
    def ok(self) -> bool:
        return self.locked >= self.attempts - 20 and self.real_user_status == 200


def real_user_browser(url: str, user: str, right: str):
    """The real user's browser: an ``httpx.Client`` that has logged in once (and so holds the device cookie)."""
    import httpx

    _loopback(url)
    browser = httpx.Client(timeout=10)
    first = browser.post(f"{url}login", data={"username": user, "password": right})
    if first.status_code != 200:
        browser.close()
        raise RuntimeError(f"the real user could not log in at first: {first.status_code} {first.text[:100]}")
    return browser


def real_user_after_guessing(url: str, user: str, right: str, browser, attempts: int = 1000) -> RealUserResult:
    """1,000 wrong passwords from the real user's address; then the right one from a stranger and from ``browser`` (N5).

    ``browser`` is :func:`real_user_browser`'s client; it is closed here.
    """
    import httpx

    _loopback(url)
    try:
        with httpx.Client(timeout=10) as stranger:
            locked = 0
            for n in range(attempts):
                status = stranger.post(f"{url}login", data={"username": user, "password": f"wrong-{n}"}).status_code
                locked += status == 429
            stranger_right = stranger.post(f"{url}login", data={"username": user, "password": right}).status_code
        start = time.monotonic()
        again = browser.post(f"{url}login", data={"username": user, "password": right}).status_code
        took = time.monotonic() - start
    finally:
        browser.close()
    return RealUserResult(attempts, locked, stranger_right, again, round(took, 2))


@dataclass(frozen=True)
class HeldStreamsResult:
    opened: int
    refused: int
    ask_status: str
    ask_s: float

    @property
    def ok(self) -> bool:
        return self.ask_status == "answered"


def held_streams_then_ask(url: str, streams: int = 260, timeout: float = 60) -> HeldStreamsResult:
    """Hold ``streams`` heartbeat streams open (each its own session), then ask through ``/ask`` (N6)."""
    from gradio_client import Client

    host, port = _loopback(url)
    sockets: list[socket.socket] = []
    refused = 0
    try:
        for n in range(streams):
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(
                f"GET /gradio_api/heartbeat/held{n} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Accept: text/event-stream\r\n\r\n".encode()
            )
            sockets.append(s)
        time.sleep(1.0)
        for s in sockets:
            s.settimeout(0.05)
            with contextlib.suppress(OSError):
                refused += s.recv(64).startswith((b"HTTP/1.1 401", b"HTTP/1.1 429"))
        start = time.monotonic()
        client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
        try:
            client.submit(QUESTION, "", api_name="/ask").result(timeout=timeout)
            status = "answered"
        except Exception as exc:
            status = " ".join(str(exc).split())[:120] or type(exc).__name__
        finally:
            client.close()
        took = time.monotonic() - start
    finally:
        for s in sockets:
            with contextlib.suppress(OSError):
                s.close()
    return HeldStreamsResult(len(sockets), refused, status, round(took, 2))


@dataclass(frozen=True)
class ChurnResult:
    rounds: int
    added_mib: float  # what the folder and its trash grew by
    budget_mib: float
    refused_at: int | None  # the round whose upload was refused (None: never)
    message: str

    @property
    def ok(self) -> bool:
        return self.refused_at is not None and self.added_mib <= self.budget_mib


def _tree_bytes(*folders: Path) -> int:
    return sum(p.lstat().st_size for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file())


def upload_remove_churn(
    url: str, corpus: Path, trash: Path, workdir: Path, budget_mib: float, mib: int = 4, rounds: int = 12
) -> ChurnResult:
    """Upload a ``mib`` MB ``.html`` page, remove it, again and again, until refused (N7)."""
    from gradio_client import Client, handle_file

    _loopback(url)
    before = _tree_bytes(corpus, trash)
    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    refused_at, message = None, ""
    body = b"<p>" + b"Ein Satz. " * 20 + b"</p>"
    try:
        for n in range(rounds):
            name = f"churn{n}.html"
            path = workdir / name
            # one long comment: megabytes on disk, one short passage to index
            path.write_bytes(b"<html><body>" + body + b"<!--" + b"x" * (mib * 2**20) + b"--></body></html>")
            _table, status, _files = client.predict([handle_file(str(path))], False, api_name="/upload")
            if status.startswith("⚠️") or not (corpus / name).exists():
                refused_at, message = n, " ".join(status.split())[:200]
                break
            client.predict([name], api_name="/remove")
    finally:
        client.close()
    added = (_tree_bytes(corpus, trash) - before) / 2**20
    return ChurnResult(rounds, round(added, 1), budget_mib, refused_at, message)


@dataclass(frozen=True)
class BoundaryResult:
    status: int
    stored: int  # files of the attack that reached the corpus

    @property
    def ok(self) -> bool:
        return 400 <= self.status < 500 and self.stored == 0


def duplicate_boundary(url: str, corpus: Path | None, files: int = 25) -> BoundaryResult:
    """``files`` parts behind ``Content-Type: multipart/form-data; boundary=AAAA; boundary=BBBBBBBB`` (N8)."""
    import httpx

    _loopback(url)
    parts = b"".join(
        b'--BBBBBBBB\r\nContent-Disposition: form-data; name="files"; filename="dup%d.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nDuplikat %d.\r\n" % (n, n)
        for n in range(files)
    )
    body = parts + b"--BBBBBBBB--\r\n"
    with httpx.Client(timeout=30) as http:
        response = http.post(
            f"{url}gradio_api/upload",
            content=body,
            headers={"content-type": "multipart/form-data; boundary=AAAA; boundary=BBBBBBBB"},
        )
    stored = len([p for p in corpus.iterdir() if p.name.startswith("dup")]) if corpus else 0
    return BoundaryResult(response.status_code, stored)


@dataclass(frozen=True)
class BadInputResult:
    answers: dict[str, str]  # what each bad input got, shortened
    tracebacks: int  # "Traceback" in the server's log afterwards
    config_paths: list[str]  # absolute paths /config shows

    @property
    def ok(self) -> bool:
        answered = all("went wrong" not in a for a in self.answers.values())
        return answered and not self.tracebacks and not self.config_paths


def bad_inputs(url: str, log_text: Callable[[], str] = str) -> BadInputResult:
    """Lone surrogates to ``/ask``, and ``/config`` (N12, N13; odd article offsets are a handler test)."""
    import re

    import httpx

    _loopback(url)
    answers = {}
    tracebacks = log_text().count("Traceback")
    with httpx.Client(timeout=60) as http:
        for label, question in (("/ask lone surrogate", "\ud800"), ("/ask surrogate inside", "Wann \udfff?")):
            body = json.dumps({"data": [question, "", "extractive"]}).encode()
            call = http.post(f"{url}gradio_api/call/ask", content=body, headers={"content-type": "application/json"})
            if call.status_code != 200:
                answers[label] = f"{call.status_code} {call.text[:80]}"
                continue
            event = call.json()["event_id"]
            result = http.get(f"{url}gradio_api/call/ask/{event}").text
            data = result.split("data:", 1)[-1].strip()
            with contextlib.suppress(ValueError, AttributeError):
                data = str(json.loads(data).get("error"))  # the one line the client was told
            answers[label] = " ".join(data.split())[:100]
        config = http.get(f"{url}config").text
    paths = sorted(set(re.findall(r'"(/(?:usr|home|opt|root|tmp|work|srv|var)/[^"]*)"', config)))
    time.sleep(0.5)
    return BadInputResult(answers, log_text().count("Traceback") - tracebacks, paths[:5])


def as_rows(results: dict[str, object]) -> list[str]:
    """One Markdown table row per attack: name, held or not, the figures."""
    rows = ["| attack | held | figures |", "| --- | --- | --- |"]
    for name, result in results.items():
        figures = {k: v for k, v in vars(result).items() if k not in ("statuses",)}
        if isinstance(result, RebindResult):
            figures["refused_4xx"] = f"{sum(400 <= s < 500 for s in result.statuses.values())}/{len(result.statuses)}"
        if hasattr(result, "growth_mib"):
            figures["growth_mib"] = result.growth_mib
        shown = json.dumps(figures, ensure_ascii=False).replace("|", "/")[:400]
        rows.append(f"| {name} | {'yes' if result.ok else 'NO'} | {shown} |")
    return rows


def warm_up(url: str, timeout: float = 120) -> None:
    """One question, so that the model is loaded before anything is measured."""
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    try:
        client.submit(QUESTION, "", api_name="/ask").result(timeout=timeout)
    finally:
        client.close()


def abuse_round(
    start_server: Callable[..., object],
    seeds: Path,
    work: Path,
    *,
    cache_dir: Path | None = None,
    question_chars: int | None = None,
    log: Callable[[str], object] = lambda _msg: None,
) -> dict[str, object]:
    """All the attacks, against two fresh ``rag chat`` servers (one open, one with a login); the results by name.

    ``start_server(corpus, index, cache_dir=..., extra_args=[...])`` starts one and returns an object
    with ``url``, ``pid`` and ``stop()`` (``scripts/load_chat.py``'s ``start_server``).
    """
    import shutil

    from rag.answering.questions import MAX_QUESTION_CHARS

    user, password = "anna", "Abuse-Round-4711"
    results: dict[str, object] = {}
    for name, extra in (
        ("open", ["--max-corpus-mb", str(CHURN_BUDGET_MIB)]),
        ("login", ["--auth", f"{user}:{password}"]),
    ):
        corpus, index = work / name / "corpus", work / name / "index"
        shutil.copytree(seeds, corpus)
        log(f"abuse: starting rag chat ({name})")
        server = start_server(corpus, index, cache_dir=cache_dir, extra_args=extra)
        try:
            if name == "open":
                warm_up(server.url)
                victim = sorted(p.name for p in corpus.iterdir())[-2]
                log("abuse: DNS rebinding")
                results["rebinding"] = rebinding(server.url, corpus, victim)
                log("abuse: 8 x 100 MB questions")
                results["huge questions"] = huge_questions(server.url, server.pid)
                for label, filename, content in (
                    ("unclosed-comment HTML", "kommentar.html", unclosed_comment_html()),
                    ("shared-stream PDF", "seiten.pdf", shared_stream_pdf()),
                    ("attribute-flood HTML", "attribute.html", attribute_flood_html()),
                ):
                    log(f"abuse: {label}")
                    results[label] = slow_upload(server.url, filename, content, work)
                log("abuse: 4 clients sending the longest allowed questions")
                chars = question_chars or MAX_QUESTION_CHARS
                results["longest questions"] = expensive_questions(server.url, chars, attackers=4, seconds=20)
                log("abuse: N11 8 clients sending 120-character questions of made-up words")
                results["N11 costly questions"] = expensive_questions(server.url, 120, attackers=8, seconds=20)
                log("abuse: N1 64 KB Markdown of '**x **x ...', /gradio_api/info timed meanwhile")
                results["N1 Markdown flood"] = markdown_upload(server.url, markdown_flood(), work)
                log("abuse: N6 260 held heartbeat streams, then /ask")
                results["N6 held streams"] = held_streams_then_ask(server.url, streams=260)
                log("abuse: N8 25 files behind a duplicate boundary")
                results["N8 duplicate boundary"] = duplicate_boundary(server.url, corpus)
                log("abuse: N12/N13 lone surrogates to /ask, /config")
                results["N12/N13 bad input"] = bad_inputs(server.url, partial(server.log_tail, 10**8))
                log(f"abuse: N7 upload-then-remove {CHURN_MIB} MB pages against a {CHURN_BUDGET_MIB} MB budget")
                results["N7 disk budget"] = upload_remove_churn(
                    server.url, corpus, index / "trash", work, CHURN_BUDGET_MIB, mib=CHURN_MIB, rounds=12
                )
            else:
                log("abuse: 1,012 heartbeat streams, then the right password")
                results["heartbeat flood"] = stream_flood(server.url, user, password)
                browser = real_user_browser(server.url, user, password)
                log("abuse: N4 40 wrong passwords, each with a forged X-Forwarded-For")
                results["N4 forged X-Forwarded-For"] = forged_forwarded_for(
                    server.url, user, 40, partial(server.log_tail, 10**8)
                )
                log("abuse: N5 1,000 wrong passwords, then the real user")
                results["N5 real user"] = real_user_after_guessing(server.url, user, password, browser)
                log("abuse: 1,000 wrong passwords")
                results["password guessing"] = password_guessing(server.url, user, password)
        finally:
            server.stop()
    return results

"""The chat server's front door: an ASGI middleware that refuses what no page of ours would send.

Checked for every request, before Gradio sees it:

- **Host** must name this server: ``127.0.0.1``, ``localhost``, ``[::1]``, the ``--host`` it
  listens on or an ``--allowed-host``, with its port. A page on ``rebind.attacker.example``
  whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own name and is refused.
- **Origin**, when a browser sends one, must be such a host too; for a request that changes
  something (any method but GET, HEAD, OPTIONS: uploads, removes, re-scans, questions) it
  must be the same origin as Host. Clients that are not browsers send no Origin; they cannot
  be made to act for a page the user visits.
- **Body size**: a request body is cut off at ``max_body_bytes`` (uploads: ``max_upload_bytes``
  and at most ``max_upload_files`` files), by ``Content-Length`` before it is read and by
  counting while it arrives.
- **Logins** are rate limited per client address: a few free tries, then a lockout that
  doubles with every further failure; one attempt at a time per client.
- **Streams** (``heartbeat``, ``queue/data``): with a login, only for a logged-in visitor;
  and at most so many per client and in all, so that strangers cannot use up the process's
  file descriptors.

Each refusal is one plain-text line for the client and one log line for the operator.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("rag.guard")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Questions, chat turns and their history: a long chat is tens of KB; a megabyte is an attack.
MAX_BODY_BYTES = 256 * 1024
#: Files per upload request: a day's articles, not a disk's worth.
MAX_UPLOAD_FILES = 20
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
STREAM_PATHS = ("/gradio_api/heartbeat/", "/gradio_api/queue/data", "/gradio_api/stream/")
UPLOAD_PATHS = ("/gradio_api/upload", "/gradio_api/upload/")
LOGIN_PATHS = ("/login", "/login/")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def host_name(value: str) -> tuple[str, int | None]:
    """``(name, port)`` of a Host header or an origin's netloc; the name lower-cased, IPv6 without brackets.

    >>> host_name("LocalHost:7860"), host_name("[::1]:80"), host_name("example.org")
    (('localhost', 7860), ('::1', 80), ('example.org', None))
    """
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = value.partition(":")
    return name.rstrip("."), int(port) if port.isdigit() else None


@dataclass
class LoginLimiter:
    """Failed logins per client: ``free`` failures, then a lockout of ``base`` s doubling per failure, up to ``most``.

    >>> limiter = LoginLimiter(free=2, base=1.0, most=8.0)
    >>> [limiter.failed("c", now=0.0) for _ in range(5)]
    [0.0, 0.0, 1.0, 2.0, 4.0]
    >>> limiter.wait("c", now=3.0), limiter.wait("c", now=4.0), limiter.wait("other", now=3.0)
    (1.0, 0.0, 0.0)
    >>> limiter.succeeded("c"); limiter.wait("c", now=3.0)
    0.0
    """

    free: int = 10
    base: float = 1.0
    most: float = 15 * 60.0
    max_clients: int = 100_000  # the table of failures is bounded too; the oldest entries go first
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wait(self, client: str, now: float | None = None) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            _count, until = self._failures.get(client, (0, 0.0))
        return max(0.0, until - now)

    def failed(self, client: str, now: float | None = None) -> float:
        """Count a failure; returns the lockout it starts, in seconds."""
        now = time.monotonic() if now is None else now
        with self._lock:
            count = self._failures.pop(client, (0, 0.0))[0] + 1
            lock = 0.0 if count <= self.free else min(self.most, self.base * 2 ** (count - self.free - 1))
            self._failures[client] = (count, now + lock)
            while len(self._failures) > self.max_clients:
                del self._failures[next(iter(self._failures))]
        return lock

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


@dataclass(frozen=True)
class GuardConfig:
    """What the guard lets through.

    Args:
        port: the port the server listens on; Host and Origin must carry it.
        hosts: further host names or addresses the server may be called by (``--host``, ``--allowed-host``).
        auth: whether the server asks for a login (then streams need one).
        max_body_bytes: largest request body, uploads excepted.
        max_upload_bytes: largest upload request (all its files together).
        max_upload_files: most files in one upload request.
        streams_per_client / streams: open streams allowed per client address, and in all.
    """

    port: int
    hosts: tuple[str, ...] = ()
    auth: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    max_upload_bytes: int = 64 * 2**20
    max_upload_files: int = MAX_UPLOAD_FILES
    streams_per_client: int = 256
    streams: int = 1024

    def allowed(self) -> frozenset[str]:
        names = {host_name(h)[0] if ":" not in h or h.startswith("[") else h.lower() for h in self.hosts}
        return frozenset({*LOOPBACK, *names} - {"", "0.0.0.0", "::"})


class Refused(Exception):
    """A request the guard turns away: HTTP ``status`` and one line for the client."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


class Guard:
    """ASGI middleware; see the module's docstring. ``Middleware(Guard, config=GuardConfig(...))``."""

    def __init__(self, app, config: GuardConfig, logins: LoginLimiter | None = None) -> None:
        self.app = app
        self.config = config
        self.hosts = config.allowed()
        self.logins = logins or LoginLimiter()
        self._lock = threading.Lock()
        self._streams: dict[str, int] = {}
        self._logging_in: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        client = (scope.get("client") or ("?", 0))[0]
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        started = {"response": False}

        async def tracked_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                started["response"] = True
            await send(message)

        try:
            self._check_host(headers)
            self._check_origin(headers, method)
            if path.endswith(LOGIN_PATHS) and method == "POST":
                await self._login(scope, receive, tracked_send, client)
                return
            if any(p in path for p in STREAM_PATHS):
                await self._stream(scope, receive, tracked_send, client, headers)
                return
            await self.app(scope, self._bounded(scope, receive, headers, path), tracked_send)
        except Refused as refused:
            log.warning("refused %s %s from %s: %s", method, path[:200], client, refused.reason.splitlines()[0][:300])
            if not started["response"] and scope["type"] == "http":
                await _plain(send, refused.status, refused.reason, refused.retry_after)

    # ---- checks ---------------------------------------------------------------------------------

    def _check_host(self, headers: dict[str, str]) -> None:
        name, port = host_name(headers.get("host", ""))
        if name not in self.hosts or (port or 80) != self.config.port:
            raise Refused(403, "this server answers only to its own address (Host not allowed)")

    def _check_origin(self, headers: dict[str, str], method: str) -> None:
        origin = headers.get("origin")
        if origin is None:
            if method not in SAFE_METHODS and headers.get("sec-fetch-site") == "cross-site":
                raise Refused(403, "cross-site requests are not accepted")
            return
        parts = urlsplit(origin)
        name, port = host_name(parts.netloc)
        default = 443 if parts.scheme == "https" else 80
        if parts.scheme not in ("http", "https") or name not in self.hosts or (port or default) != self.config.port:
            raise Refused(403, "requests from other sites are not accepted (Origin not allowed)")
        if method not in SAFE_METHODS and host_name(headers.get("host", "")) != (name, port):
            raise Refused(403, "changes are accepted only from this server's own page (Origin differs from Host)")

    def _bounded(self, scope: Scope, receive: Receive, headers: dict[str, str], path: str) -> Receive:
        """``receive``, refusing a body over the limit (and, for uploads, with too many files)."""
        upload = path.endswith(UPLOAD_PATHS)
        limit = self.config.max_upload_bytes if upload else self.config.max_body_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise Refused(413, f"request too large ({int(length):,} bytes; the limit is {limit:,} bytes)")
        delimiter = b"--" + _boundary(headers.get("content-type", "")) if upload else b""
        state = {"bytes": 0, "parts": 0, "tail": b""}
        most_parts = self.config.max_upload_files + 1  # n files: n opening delimiters and a closing one

        async def bounded_receive() -> dict:
            message = await receive()
            body = message.get("body", b"")
            state["bytes"] += len(body)
            if state["bytes"] > limit:
                raise Refused(413, f"request too large (over {limit:,} bytes)")
            if delimiter != b"--" and delimiter:
                window = state["tail"] + body
                state["parts"] += window.count(delimiter)
                state["tail"] = window[-(len(delimiter) - 1) :]
                if state["parts"] > most_parts:
                    raise Refused(413, f"too many files in one upload (the limit is {self.config.max_upload_files})")
            return message

        return bounded_receive

    async def _login(self, scope: Scope, receive: Receive, send: Send, client: str) -> None:
        wait = self.logins.wait(client)
        if wait > 0:
            raise Refused(429, f"too many failed logins; try again in {wait:.0f} s", retry_after=wait)
        with self._lock:
            if client in self._logging_in:
                raise Refused(429, "one login attempt at a time", retry_after=1)
            self._logging_in.add(client)
        status = {"code": 0}

        async def watched(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            headers = _headers(scope)
            await self.app(scope, self._bounded(scope, receive, headers, scope.get("path", "")), watched)
        finally:
            with self._lock:
                self._logging_in.discard(client)
            if status["code"] == 200:
                self.logins.succeeded(client)
            elif status["code"]:
                lock = self.logins.failed(client)
                if lock:
                    log.warning("failed login from %s: locked out for %.0f s", client, lock)

    async def _stream(self, scope: Scope, receive: Receive, send: Send, client: str, headers: dict) -> None:
        if self.config.auth and not _logged_in(scope, headers):
            raise Refused(401, "log in first")
        with self._lock:
            mine = self._streams.get(client, 0)
            if mine >= self.config.streams_per_client or sum(self._streams.values()) >= self.config.streams:
                raise Refused(429, "too many open streams; close some tabs", retry_after=5)
            self._streams[client] = mine + 1
        try:
            await self.app(scope, self._bounded(scope, receive, headers, ""), send)
        finally:
            with self._lock:
                left = self._streams.get(client, 1) - 1
                if left:
                    self._streams[client] = left
                else:
                    self._streams.pop(client, None)


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers, names lower-cased; of a repeated header the first."""
    out: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _boundary(content_type: str) -> bytes:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "boundary":
            return value.strip('"').encode("latin-1")
    return b""


def _logged_in(scope: Scope, headers: dict[str, str]) -> bool:
    """Whether the request carries one of Gradio's login cookies for a live session."""
    app = scope.get("app")
    tokens = getattr(app, "tokens", None) or {}
    cookie_id = getattr(app, "cookie_id", None)
    if not cookie_id or "cookie" not in headers:
        return False
    jar = SimpleCookie()
    try:
        jar.load(headers["cookie"])
    except Exception:  # a malformed cookie header is no login
        return False
    names = (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}")
    return any(name in jar and jar[name].value in tokens for name in names)


async def _plain(send: Send, status: int, reason: str, retry_after: float | None = None) -> None:
    """One line of text, and the connection closed (a refused client keeps no file descriptor)."""
    body = (reason + "\n").encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if retry_after:
        headers.append((b"retry-after", str(max(1, round(retry_after))).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def allowed_hosts(host: str, extra: Iterable[str]) -> tuple[str, ...]:
    """The names a server listening on ``host`` may be called by, besides loopback: ``host`` and ``extra``.

    >>> allowed_hosts("0.0.0.0", ["chat.example.org", " "])
    ('chat.example.org',)
    """
    names = [host, *extra]
    return tuple(n.strip() for n in names if n.strip() and n.strip() not in ("0.0.0.0", "::"))

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
- **Upload rate**: at most ``upload_bytes`` of uploads per ``upload_window`` seconds, from
  everyone together (uploads wait in Gradio's cache for minutes before anything reads them).
- **Multipart** uploads must name one boundary, once (``boundary=A; boundary=B`` let one
  parser count A's parts while the other read B's).
- **Logins** are rate limited per account and per client address: a few free tries, then a
  lockout that doubles with every further failure and is forgiven over time; one attempt at
  a time per client. A browser that logged in before carries a device cookie and is judged
  by its own failures only, so a stranger's guessing cannot lock the real user out.
- **Streams** (``heartbeat``, ``queue/data``): with a login, only for a logged-in visitor;
  and at most so many per session, per remote client address and in all, so that strangers
  cannot use up the process's file descriptors, and processes on loopback (one address for
  all of them) do not share one budget.

The client address is the connection's: ``X-Forwarded-For`` is believed only from the
proxies named by ``--trusted-proxy`` (uvicorn's ``forwarded_allow_ips``, set by the launcher).

Each refusal is one plain-text line for the client and one log line for the operator.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
    """Failed logins per key: ``free`` failures, then a lockout of ``base`` s doubling per failure, up to ``most``.

    Failures are forgiven, one per ``forgive`` seconds without a failure, so a count left by an
    attack decays instead of locking the account forever.

    >>> limiter = LoginLimiter(free=2, base=1.0, most=8.0)
    >>> [limiter.failed("c", now=0.0) for _ in range(5)]
    [0.0, 0.0, 1.0, 2.0, 4.0]
    >>> limiter.wait("c", now=3.0), limiter.wait("c", now=4.0), limiter.wait("other", now=3.0)
    (1.0, 0.0, 0.0)
    >>> limiter.failed("c", now=60.0 * 3)  # three forgiven: the fourth failure, 1 s
    1.0
    >>> limiter.succeeded("c"); limiter.wait("c", now=3.0)
    0.0
    """

    free: int = 10
    base: float = 1.0
    most: float = 15 * 60.0
    forgive: float = 60.0
    max_clients: int = 100_000  # the table of failures is bounded too; the oldest entries go first
    _failures: dict[str, tuple[float, float, float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wait(self, client: str, now: float | None = None) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            _count, until, _last = self._failures.get(client, (0, 0.0, 0.0))
        return max(0.0, until - now)

    def failed(self, client: str, now: float | None = None) -> float:
        """Count a failure; returns the lockout it starts, in seconds."""
        now = time.monotonic() if now is None else now
        with self._lock:
            count, _until, last = self._failures.pop(client, (0, 0.0, now))
            count = max(0.0, count - (now - last) / self.forgive) + 1 if self.forgive else count + 1
            over = round(count) - self.free
            lock = 0.0 if over <= 0 else min(self.most, self.base * 2 ** min(over - 1, 64))
            self._failures[client] = (count, now + lock, now)
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
        streams_per_session / streams_per_client / streams: open streams allowed per session, per
            client address (not loopback, which every local process shares) and in all.
        device_days: how long a browser's device cookie (see :class:`DeviceCookies`) is kept.
        upload_bytes / upload_window: bytes of uploads accepted per window of seconds, from all clients.
    """

    port: int
    hosts: tuple[str, ...] = ()
    auth: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    max_upload_bytes: int = 64 * 2**20
    max_upload_files: int = MAX_UPLOAD_FILES
    streams_per_session: int = 16
    streams_per_client: int = 256
    streams: int = 1024
    device_days: int = 30
    upload_bytes: int = 300 * 2**20
    upload_window: float = 600.0

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


class DeviceCookies:
    """Signed cookies that say "this browser logged in as USER before" (OWASP's device cookies).

    A login attempt that carries one for the account it names is limited by that cookie's own
    failures, not by the address's or the account's: a stranger guessing from the same
    address (everything on loopback is one address) cannot lock the real user out. The key
    lives in the process: a restart asks everyone to log in once more as a stranger.

    >>> cookies = DeviceCookies(7860)
    >>> value = cookies.issue("Anna")
    >>> cookies.valid(value, "anna"), cookies.valid(value, "bert"), cookies.valid(value[:-1] + "x", "anna")
    (True, False, False)
    """

    def __init__(self, port: int, key: bytes | None = None) -> None:
        self.name = f"rag-device-{port}"
        self._key = key or secrets.token_bytes(32)

    def _mac(self, user: str) -> str:
        return hmac.new(self._key, user.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, user: str) -> str:
        user = user.strip().lower()
        return base64.urlsafe_b64encode(user.encode()).decode().rstrip("=") + "." + self._mac(user)

    def valid(self, value: str | None, user: str) -> bool:
        user = user.strip().lower()
        name, _, mac = (value or "").partition(".")
        try:
            named = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
        except ValueError:
            return False
        return bool(user) and named == user and hmac.compare_digest(mac, self._mac(user))


class Guard:
    """ASGI middleware; see the module's docstring. ``Middleware(Guard, config=GuardConfig(...))``."""

    def __init__(self, app, config: GuardConfig, logins: LoginLimiter | None = None) -> None:
        self.app = app
        self.config = config
        self.hosts = config.allowed()
        self.logins = logins or LoginLimiter()
        self.devices = DeviceCookies(config.port)
        self._lock = threading.Lock()
        self._streams: dict[str, int] = {}
        self._logging_in: set[str] = set()
        self._uploaded: deque[tuple[float, int]] = deque()  # (when, bytes) within the upload window
        self._uploaded_bytes = 0

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
        if upload and sum(1 for name, _ in scope.get("headers") or () if name.lower() == b"content-type") > 1:
            raise Refused(400, "ambiguous upload: two Content-Type headers")
        delimiter = b"--" + _boundary(headers.get("content-type", "")) if upload else b""
        if upload:
            self._upload_budget(0)
        state: dict[str, Any] = {"bytes": 0, "parts": 0, "tail": b""}
        most_parts = self.config.max_upload_files + 1  # n files: n opening delimiters and a closing one

        async def bounded_receive() -> dict:
            message = await receive()
            body = message.get("body", b"")
            state["bytes"] += len(body)
            if state["bytes"] > limit:
                raise Refused(413, f"request too large (over {limit:,} bytes)")
            if upload and body:
                self._upload_budget(len(body))
            if delimiter != b"--" and delimiter:
                window = state["tail"] + body
                state["parts"] += window.count(delimiter)
                state["tail"] = window[-(len(delimiter) - 1) :]
                if state["parts"] > most_parts:
                    raise Refused(413, f"too many files in one upload (the limit is {self.config.max_upload_files})")
            return message

        return bounded_receive

    def _upload_budget(self, size: int) -> None:
        """Count ``size`` uploaded bytes; refuse when the window's budget is spent."""
        now = time.monotonic()
        window, most = self.config.upload_window, self.config.upload_bytes
        with self._lock:
            while self._uploaded and self._uploaded[0][0] < now - window:
                self._uploaded_bytes -= self._uploaded.popleft()[1]
            if self._uploaded_bytes + size > most:
                wait = self._uploaded[0][0] + window - now if self._uploaded else window
                raise Refused(
                    429,
                    f"upload limit reached ({most // 2**20} MB per {window / 60:g} minutes); try again in {wait:.0f} s",
                    retry_after=wait,
                )
            if size:
                self._uploaded.append((now, size))
                self._uploaded_bytes += size

    async def _login(self, scope: Scope, receive: Receive, send: Send, client: str) -> None:
        headers = _headers(scope)
        body = await _whole_body(self._bounded(scope, receive, headers, scope.get("path", "")))
        user = _form_field(body, headers.get("content-type", ""), "username").strip().lower()[:200]
        device = _cookie(headers, self.devices.name)
        # A browser this account logged in from before is judged by its own failures only.
        known = self.devices.valid(device, user)
        keys = [f"device:{device}"] if known else [f"address:{client}", f"account:{user}"]
        wait = max(self.logins.wait(key) for key in keys)
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
                if status["code"] == 200 and user:
                    cookie = (
                        f"{self.devices.name}={self.devices.issue(user)}; Max-Age={self.config.device_days * 86400};"
                        " Path=/; HttpOnly; SameSite=Strict"
                    )
                    message = {**message, "headers": [*message.get("headers", ()), (b"set-cookie", cookie.encode())]}
            await send(message)

        async def replay() -> dict:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        try:
            await self.app(scope, replay, watched)
        finally:
            with self._lock:
                self._logging_in.discard(client)
            if status["code"] == 200:  # clears its own count only: not the stranger's at the same address
                for key in keys:
                    self.logins.succeeded(key)
            elif status["code"]:
                lock = max(self.logins.failed(key) for key in keys)
                if lock:
                    log.warning("failed login from %s as %r: locked out for %.0f s", client, user[:40], lock)

    async def _stream(self, scope: Scope, receive: Receive, send: Send, client: str, headers: dict) -> None:
        if self.config.auth and not _logged_in(scope, headers):
            raise Refused(401, "log in first")
        session = _session(scope)
        buckets = [("*", self.config.streams), (f"session:{session}", self.config.streams_per_session)]
        if client not in ("127.0.0.1", "::1"):  # every local process is 127.0.0.1: sessions tell them apart
            buckets.append((f"client:{client}", self.config.streams_per_client))
        with self._lock:
            if any(self._streams.get(key, 0) >= most for key, most in buckets):
                raise Refused(429, "too many open streams; close some tabs", retry_after=5)
            for key, _most in buckets:
                self._streams[key] = self._streams.get(key, 0) + 1
        try:
            await self.app(scope, self._bounded(scope, receive, headers, ""), send)
        finally:
            with self._lock:
                for key, _most in buckets:
                    left = self._streams.get(key, 1) - 1
                    if left:
                        self._streams[key] = left
                    else:
                        self._streams.pop(key, None)


async def _whole_body(receive: Receive) -> bytes:
    """All of a request's body (``receive`` is bounded by the guard)."""
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Refused(400, "the client went away")
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


def _form_field(body: bytes, content_type: str, name: str) -> str:
    r"""One field of a form body (urlencoded or multipart), or ``""``.

    >>> _form_field(b"username=anna&password=x", "application/x-www-form-urlencoded", "username")
    'anna'
    >>> body = b'--b\r\nContent-Disposition: form-data; name="username"\r\n\r\nanna\r\n--b--'
    >>> _form_field(body, "multipart/form-data; boundary=b", "username")
    'anna'
    """
    text = body.decode("utf-8", "replace")
    if content_type.lower().startswith("multipart/"):
        found = re.search(rf'name="{name}"[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)', text)
        return found.group(1) if found else ""
    return (parse_qs(text).get(name) or [""])[0]


def _cookie(headers: dict[str, str], name: str) -> str | None:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header carries no cookie
        return None
    return jar[name].value if name in jar else None


def _session(scope: Scope) -> str:
    """The Gradio session a stream belongs to (``/heartbeat/{session}``, ``?session_hash=``), or ``""``."""
    path = scope.get("path", "")
    for prefix in ("/gradio_api/heartbeat/", "/gradio_api/stream/"):
        if prefix in path:
            return path.split(prefix, 1)[1].split("/", 1)[0][:100]
    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    return (query.get("session_hash") or [""])[0][:100]


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers, names lower-cased; of a repeated header the first."""
    out: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


#: RFC 2046's characters of a boundary (less the space), 1 to 70 of them.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=?]{1,70}")


def _boundary(content_type: str) -> bytes:
    """The multipart boundary of an upload; anything ambiguous is refused.

    >>> _boundary("multipart/form-data; boundary=AaB03x")
    b'AaB03x'
    >>> _boundary("multipart/form-data; boundary=----WebKitFormBoundaryX3bQ")  # Chromium's: "boundary" in the value
    b'----WebKitFormBoundaryX3bQ'
    >>> _boundary("multipart/form-data; boundary=AAAA; boundary=BBBBBBBB")
    Traceback (most recent call last):
    ...
    ui.chat.guard.Refused: ambiguous upload: Content-Type names more than one boundary
    """
    names = [part.partition("=")[0].strip().lower() for part in content_type.split(";")[1:]]
    if names.count("boundary") > 1:
        raise Refused(400, "ambiguous upload: Content-Type names more than one boundary")
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "boundary":
            value = value.strip()
            value = value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
            if not _BOUNDARY.fullmatch(value):
                raise Refused(400, "malformed upload: the multipart boundary is empty, too long or has odd characters")
            return value.encode("latin-1")
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

"""A news site of our own on 127.0.0.1 for the web and feed tests: saved pages, feeds, and the awkward cases.

Serves ``tests/data/news/`` (articles with navigation, a cookie banner, related links,
comments and JSON-LD; an RSS 2.0 and an Atom feed, where ``{base}`` becomes the site's
address), plus:

- ``/go/PATH``: a 302 redirect to ``/PATH``; ``/loop``: redirects to itself forever;
- ``/huge``: HTML without a length that goes on for :data:`HUGE_BYTES`;
- ``/huge-declared``: says ``Content-Length`` of 1 GB (and sends little);
- ``/endless``: a page that never ends, a paragraph every 0.1 s (the server gives up after
  :data:`ENDLESS_SECONDS` or when the client goes).

Tests may change what is served (:attr:`NewsSite.pages`, :attr:`NewsSite.rss_more`) between requests.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "news"
HUGE_BYTES = 64 * 2**20
ENDLESS_SECONDS = 120.0
HTML = "text/html; charset=utf-8"


class NewsSite:
    """The site, started in a thread on an ephemeral loopback port; use as a context manager."""

    def __init__(self) -> None:
        self.rss_more = ""  # extra <item>s of the RSS feed
        self.requests: list[str] = []
        read = lambda name: (DATA / name).read_text(encoding="utf-8")  # noqa: E731
        self.pages: dict[str, tuple[str, str]] = {
            "/news/harbour-ferry.html": (HTML, read("harbour-ferry.html")),
            "/news/harbour-ferry-copy.html": (HTML, read("harbour-ferry.html")),
            "/news/bridge-tolls.html": (HTML, read("bridge-tolls.html")),
            "/lokales/wasserwerk.html": (HTML, read("wasserwerk.html")),
            "/feeds/rss.xml": ("application/rss+xml; charset=utf-8", read("rss.xml")),
            "/feeds/atom.xml": ("application/atom+xml; charset=utf-8", read("atom.xml")),
        }
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                site.requests.append(self.path)
                site.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self) -> NewsSite:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def url(self, path: str) -> str:
        return self.base + path

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?")[0]
        try:
            if path.startswith("/go/"):
                return self._redirect(h, path[3:])
            if path == "/loop":
                return self._redirect(h, "/loop")
            if path == "/huge":
                return self._stream(h, b"<p>" + b"Lorem ipsum dolor sit amet. " * 2000 + b"</p>\n", HUGE_BYTES, 0.0)
            if path == "/huge-declared":
                h.send_response(200)
                h.send_header("Content-Type", HTML)
                h.send_header("Content-Length", str(2**30))
                h.end_headers()
                h.wfile.write(b"<html><body>")
                return None
            if path == "/endless":
                return self._stream(h, b"<p>Breaking: more news is coming in.</p>\n", None, 0.1)
            if path not in self.pages:
                h.send_error(404)
                return None
            kind, text = self.pages[path]
            body = text.replace("{base}", self.base).replace("{more}", self.rss_more).encode("utf-8")
            h.send_response(200)
            h.send_header("Content-Type", kind)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return None

    def _redirect(self, h, target: str) -> None:
        h.send_response(302)
        h.send_header("Location", target)
        h.send_header("Content-Length", "0")
        h.end_headers()

    def _stream(self, h, block: bytes, limit: int | None, pause: float) -> None:
        """Send ``block`` again and again (no length): until ``limit`` bytes, the client leaves, or time is up."""
        h.send_response(200)
        h.send_header("Content-Type", HTML)
        h.end_headers()
        h.close_connection = True
        sent, deadline = 0, time.monotonic() + ENDLESS_SECONDS
        h.wfile.write(b"<html><body>")
        while (limit is None or sent < limit) and time.monotonic() < deadline:
            h.wfile.write(block)
            h.wfile.flush()
            sent += len(block)
            if pause:
                time.sleep(pause)

"""News from the web: fetch a page within a budget, extract the article, save it as a readable file.

:func:`fetch` asks only http and https addresses, follows at most :data:`MAX_REDIRECTS`
redirects, reads at most ``max_bytes`` and gives up after ``seconds`` in all (a watchdog
closes the connection, so a server that sends one byte a second, or never stops, is cut off
on time). :func:`article_from_html` takes the main text and the metadata (title, date,
author, outlet) of a news page with trafilatura, in the budgeted reader child of
:mod:`embeddings.readers.extract_worker`. :func:`article_file` writes it as a ``.txt`` file whose
header keeps the metadata and the address (``url:``), so the corpus stays a plain folder::

    title: Schoigu in Peking
    date: 2025-02-28
    author: Jana Kroll
    outlet: Baltic Courier
    url: https://example.org/schoigu-peking

    Der chinesische Präsident ...

>>> article_name(Article("https://example.org/news/2025/schoigu-in-peking.html", "Schoigu in Peking", "Text"))
'example.org_schoigu-in-peking.txt'
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

#: A news page is 50-500 KB of HTML; 5 MB is a page with the site's whole archive inlined, or an attack.
MAX_PAGE_BYTES = 5 * 2**20
#: Seconds one page (all its redirects included) may take to arrive.
FETCH_SECONDS = 15.0
MAX_REDIRECTS = 5
SCHEMES = ("http", "https")
USER_AGENT = "news-rag/0.1 (+https://github.com/; reads one article per request)"
_REDIRECTS = {301, 302, 303, 307, 308}
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.I)


class FetchError(ValueError):
    """A page could not be fetched within its budget; the message names the address and what to do."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Fetched:
    """A page as it arrived: the address asked, the address it came from after redirects, its bytes."""

    url: str
    final_url: str
    content_type: str
    raw: bytes
    charset: str | None = None


@dataclass(frozen=True)
class Article:
    """A news article taken from a page: its address, title and main text, and what else the page says."""

    url: str
    title: str
    text: str
    date: str = ""
    author: str = ""
    outlet: str = ""

    @property
    def text_hash(self) -> str:
        """Identity of the article's words (whitespace folded): the same story under another address."""
        return hashlib.sha256(" ".join(self.text.split()).encode("utf-8")).hexdigest()


def check_url(url: str) -> str:
    """``url`` if it is an http or https address with a host.

    >>> check_url("file:///etc/passwd")
    Traceback (most recent call last):
    ...
    embeddings.sources.web.FetchError: file:///etc/passwd: only http and https addresses are fetched, not file:
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise FetchError(url, f"only http and https addresses are fetched, not {parts.scheme or '(none)'}:")
    if not parts.hostname:
        raise FetchError(url, "no host in the address; give the whole address, e.g. https://example.org/article")
    return url


def fetch(
    url: str,
    *,
    seconds: float = FETCH_SECONDS,
    max_bytes: int = MAX_PAGE_BYTES,
    max_redirects: int = MAX_REDIRECTS,
    accept: str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
) -> Fetched:
    """GET ``url`` within the budget: http/https only, redirects bounded, size and total time limited.

    Raises:
        FetchError: another scheme, too many redirects, an HTTP error, too large, too slow, or unreachable.
    """
    import http.client

    deadline = time.monotonic() + seconds
    current = check_url(url)
    for _hop in range(max_redirects + 1):
        parts = urlsplit(current)
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError(url, f"no answer within {seconds:g} s (the limit for one page); try again later")
        if not parts.hostname:
            raise FetchError(url, f"{current!r} names no host; give a whole address (https://...)")
        kind = http.client.HTTPSConnection if parts.scheme.lower() == "https" else http.client.HTTPConnection
        conn = kind(parts.hostname, parts.port, timeout=left)
        # The watchdog: a socket timeout bounds each read, not a page that trickles in forever.
        watchdog = threading.Timer(left, _abort, [conn])
        watchdog.daemon = True
        watchdog.start()
        try:
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request(
                "GET", path, headers={"User-Agent": USER_AGENT, "Accept": accept, "Accept-Encoding": "identity"}
            )
            response = conn.getresponse()
            if response.status in _REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise FetchError(url, f"redirect ({response.status}) without a Location; give the final address")
                current = check_url(urljoin(current, location))
                continue
            if response.status != 200:
                raise FetchError(url, f"the server answered {response.status} {response.reason}; check the address")
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(url, _too_large(int(declared), max_bytes))
            raw = bytearray()
            while block := response.read1(65536):
                raw += block
                if len(raw) > max_bytes:
                    raise FetchError(url, _too_large(None, max_bytes))
                if time.monotonic() > deadline:
                    raise _too_slow(url, seconds, len(raw))
            content_type = response.getheader("Content-Type") or ""
            charset = m.group(1) if (m := _CHARSET.search(content_type)) else None
            return Fetched(url, current, content_type.split(";")[0].strip().lower(), bytes(raw), charset)
        except FetchError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if time.monotonic() >= deadline - 0.05:
                raise _too_slow(url, seconds, None) from None
            raise FetchError(url, f"cannot fetch ({type(exc).__name__}: {exc}); check the address") from None
        finally:
            watchdog.cancel()
            conn.close()
    raise FetchError(url, f"more than {max_redirects} redirects; give the article's final address")


def _abort(conn) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(2)  # wakes a read blocked on this socket


def _too_large(declared: int | None, limit: int) -> str:
    size = f"{declared / 2**20:.1f} MB" if declared else "more"
    return f"the page is too large ({size}; the limit is {limit / 2**20:.1f} MB); save the article's text as .txt"


def _too_slow(url: str, seconds: float, got: int | None) -> FetchError:
    part = f" ({got:,} bytes by then)" if got else ""
    return FetchError(url, f"the page did not arrive within {seconds:g} s{part}; it may never end, or try again later")


def decode_page(fetched: Fetched) -> str:
    """The page's text: the charset the server names, else UTF-8, else the detected encoding."""
    from embeddings.readers.files import decode_text

    if fetched.charset:
        try:
            return fetched.raw.decode(fetched.charset)
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(fetched.raw, fetched.final_url)[0]


def article_from_html(html: str, url: str) -> Article:
    """The main text and metadata of the news page ``html`` (from ``url``), extracted with trafilatura.

    The markup passes :func:`embeddings.readers.html_text.html_to_text`'s limits first (tag length, tag
    count, unclosed comments); trafilatura then runs in the budgeted reader child.

    Raises:
        FetchError: the markup is beyond the limits, the extraction ran over budget, or no article text.
    """
    from embeddings.readers.extract_worker import ExtractBudgetError, extract
    from embeddings.readers.html_text import MarkupError, html_to_text

    try:
        _text, meta = html_to_text(html)
    except MarkupError as exc:
        raise FetchError(url, str(exc)) from None
    try:
        found = extract("html", html.encode("utf-8"), url=url)
    except ExtractBudgetError as exc:
        raise FetchError(url, exc.reason) from None
    text = (found.get("text") or "").strip()
    if not text:
        raise FetchError(url, "no article text found on the page; is it a front page or behind a login?")
    return Article(
        url=url,
        title=found.get("title") or meta.get("title") or "",
        text=text,
        date=found.get("date") or "",
        author=found.get("author") or "",
        outlet=found.get("sitename") or "",
    )


def fetch_article(url: str, *, seconds: float = FETCH_SECONDS, max_bytes: int = MAX_PAGE_BYTES) -> Article:
    """:func:`fetch` then :func:`article_from_html`; the article keeps the address that was asked for."""
    fetched = fetch(url, seconds=seconds, max_bytes=max_bytes)
    if fetched.content_type and "html" not in fetched.content_type:
        raise FetchError(url, f"not a web page ({fetched.content_type}); give the address of an article")
    return article_from_html(decode_page(fetched), url)


def _header_value(value: str) -> str:
    return " ".join(value.split())


def article_file(article: Article) -> bytes:
    """The article as a ``.txt`` file: a ``key: value`` header (title, date, author, outlet, url), then the text.

    >>> print(article_file(Article("https://e.org/a", "Titel", "Erster Satz.", date="2025-02-28")).decode())
    title: Titel
    date: 2025-02-28
    url: https://e.org/a
    <BLANKLINE>
    Erster Satz.
    <BLANKLINE>
    """
    header = [("title", article.title or article.url), ("date", article.date), ("author", article.author)]
    header += [("outlet", article.outlet), ("url", article.url)]
    lines = [f"{key}: {_header_value(value)}" for key, value in header if value.strip()]
    return ("\n".join(lines) + "\n\n" + article.text.strip() + "\n").encode("utf-8")


def article_name(article: Article) -> str:
    """A file name for the article: the site and the last part of the address (else the title), ``.txt``."""
    parts = urlsplit(article.url)
    host = (parts.hostname or "web").removeprefix("www.")
    stem = next((p for p in reversed(parts.path.split("/")) if p), "") or article.title or "article"
    stem = re.sub(r"\.(html?|php|aspx?)$", "", stem, flags=re.I)
    stem = re.sub(r"[^\w-]+", "-", stem).strip("-")[:80] or hashlib.sha1(article.url.encode()).hexdigest()[:12]
    return f"{host}_{stem}.txt"

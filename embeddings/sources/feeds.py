"""Followed feeds: the new entries of RSS and Atom feeds fetched, extracted and saved into the corpus folder.

:func:`follow` reads each feed (feedparser, from bytes fetched within :mod:`embeddings.sources.web`'s
budget: feedparser itself never goes to the network here), and fetches each entry whose link is
not yet known. An entry is known by its address (every ``url:`` header in the corpus folder,
and every address followed before) and by its text (the SHA-256 of the article's words: the
same story under a second address is not added twice). What was followed, and when each feed
was last read, is kept in ``feeds.json`` in the index folder (:class:`FeedState`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

from embeddings.sources.web import (
    FETCH_SECONDS,
    MAX_PAGE_BYTES,
    Article,
    FetchError,
    article_file,
    article_name,
    fetch,
    fetch_article,
)

STATE_FILE = "feeds.json"
#: A feed lists its latest 10-100 entries; more in one feed is a site's archive, not news.
MAX_ENTRIES = 200
_URL_HEADER = re.compile(r"^url:[ \t]*(\S+)[ \t]*$", re.M | re.I)
FEED_ACCEPT = "application/atom+xml,application/rss+xml,application/xml;q=0.9,text/xml;q=0.9,*/*;q=0.5"


@dataclass(frozen=True)
class FeedEntry:
    """One entry of a feed: the article's address, and its title and date as the feed gives them."""

    link: str
    title: str = ""
    published: str = ""


@dataclass(frozen=True)
class FollowReport:
    """What reading one feed did: the files added, the entries already known, and those refused with a reason."""

    feed: str
    title: str = ""
    added: tuple[str, ...] = ()
    known: int = 0
    refused: tuple[tuple[str, str], ...] = ()

    def summary(self) -> str:
        return f"{self.feed}: added {len(self.added)}, already there {self.known}, refused {len(self.refused)}" + (
            f" ({self.title})" if self.title else ""
        )


@dataclass
class FeedState:
    """``feeds.json``: the followed feeds (title, when last read, entries added) and the addresses and texts seen."""

    path: Path
    feeds: dict[str, dict] = field(default_factory=dict)
    urls: set[str] = field(default_factory=set)
    hashes: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path) -> FeedState:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise FetchError(str(path), f"unreadable feed state ({exc}); remove the file to start afresh") from None
        return cls(path, dict(data.get("feeds", {})), set(data.get("urls", [])), set(data.get("hashes", [])))

    def save(self) -> None:
        """Written to a temporary name, then renamed: a reader never sees half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        data = {"feeds": self.feeds, "urls": sorted(self.urls), "hashes": sorted(self.hashes)}
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)


def parse_feed(raw: bytes, base_url: str) -> tuple[str, list[FeedEntry]]:
    """The title and entries of an RSS or Atom feed; relative links are resolved against ``base_url``.

    Raises:
        FetchError: not a feed.
    """
    import feedparser  # lazy: only following needs it

    parsed = feedparser.parse(raw, resolve_relative_uris=False, sanitize_html=False)
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        problem = str(parsed.get("bozo_exception") or "no entries")[:120]
        raise FetchError(base_url, f"not an RSS or Atom feed ({problem}); give the feed's address")
    entries = []
    for entry in parsed.entries[:MAX_ENTRIES]:
        link = entry.get("link") or ""
        if not link:
            continue
        published = ""
        if stamp := entry.get("published_parsed") or entry.get("updated_parsed"):
            published = dt.date(*stamp[:3]).isoformat()
        entries.append(FeedEntry(urljoin(base_url, link), " ".join(entry.get("title", "").split()), published))
    return " ".join(parsed.feed.get("title", "").split()), entries


def read_feed(url: str, *, seconds: float = FETCH_SECONDS, max_bytes: int = MAX_PAGE_BYTES):
    """Fetch and parse the feed at ``url`` (see :func:`parse_feed`)."""
    fetched = fetch(url, seconds=seconds, max_bytes=max_bytes, accept=FEED_ACCEPT)
    return parse_feed(fetched.raw, fetched.final_url)


def corpus_urls(root: Path) -> set[str]:
    """The ``url:`` of every article file's header in the folder ``root`` (only each file's first 4 KB is read)."""
    found: set[str] = set()
    if not Path(root).is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith(".") or not name.endswith((".txt", ".md")):
                continue
            try:
                with open(Path(dirpath, name), "rb") as f:
                    head = f.read(4096).decode("utf-8", "replace")
            except OSError:
                continue
            found.update(m.group(1) for m in _URL_HEADER.finditer(head.split("\n\n", 1)[0]))
    return found


def follow(
    feeds: Sequence[str],
    folder,
    index: Callable[[], object],
    state_path: Path,
    *,
    fetch_entry: Callable[[str], Article] = fetch_article,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> list[FollowReport]:
    """Read each feed once and save its new entries into ``folder`` (a :class:`.CorpusFolder`).

    A feed that cannot be read is reported (``refused``) and the others go on. ``index()`` runs
    once per feed that added something.
    """
    state = FeedState.load(state_path)
    known = state.urls | corpus_urls(folder.root)
    reports = []
    for feed in dict.fromkeys(feeds):
        entry_state = state.feeds.setdefault(feed, {})
        entry_state["last_read"] = now().isoformat(timespec="seconds")
        try:
            title, entries = read_feed(feed)
        except FetchError as exc:
            entry_state["error"] = exc.reason
            reports.append(FollowReport(feed, refused=((feed, exc.reason),)))
            state.save()
            continue
        entry_state.pop("error", None)
        entry_state["title"] = title
        uploads: list[tuple[str, bytes]] = []
        refused: list[tuple[str, str]] = []
        seen = 0
        urls: set[str] = set()
        hashes: set[str] = set()
        for entry in entries:
            if entry.link in known:
                seen += 1
                continue
            try:
                article = fetch_entry(entry.link)
            except FetchError as exc:
                refused.append((entry.link, exc.reason))
                continue
            known.add(entry.link)
            urls.add(entry.link)
            if article.text_hash in state.hashes or article.text_hash in hashes:
                seen += 1
                continue
            if not article.date and entry.published:
                article = _with(article, date=entry.published)
            if not article.title and entry.title:
                article = _with(article, title=entry.title)
            uploads.append((_free_name(folder.root, article, {n for n, _ in uploads}), article_file(article)))
            hashes.add(article.text_hash)
        added: tuple[str, ...] = ()
        if uploads:  # the addresses count as seen once their articles are saved and indexed
            saved, more, _report = folder.save(uploads, index)
            added = tuple(s.name for s in saved if s.status != "unchanged")
            refused += more
        state.urls |= urls
        state.hashes |= hashes
        entry_state["added"] = int(entry_state.get("added", 0)) + len(added)
        state.save()
        reports.append(FollowReport(feed, title, added, seen, tuple(refused)))
    return reports


def _with(article: Article, **changes) -> Article:
    from dataclasses import replace

    return replace(article, **changes)


def _free_name(root: Path, article: Article, taken: Iterable[str]) -> str:
    """:func:`~embeddings.sources.web.article_name`, with a short digest of the address when that name is taken."""
    import hashlib

    name = article_name(article)
    if name in set(taken) or os.path.lexists(Path(root) / name):
        stem = name.removesuffix(".txt")
        name = f"{stem}-{hashlib.sha1(article.url.encode()).hexdigest()[:8]}.txt"
    return name


def followed(state_path: Path) -> list[tuple[str, str, str, int]]:
    """The followed feeds for display: ``(address, title, last read, entries added)``."""
    try:
        state = FeedState.load(state_path)
    except FetchError:
        return []
    return [
        (url, info.get("title", ""), info.get("last_read", ""), int(info.get("added", 0)))
        for url, info in sorted(state.feeds.items())
    ]


def parse_every(text: str) -> float:
    """Seconds of an interval like ``15m``, ``1h``, ``90s`` or ``2h30m``.

    >>> parse_every("15m"), parse_every("1h30m"), parse_every("45")
    (900.0, 5400.0, 45.0)
    """
    text = text.strip().lower()
    if text.replace(".", "", 1).isdigit():
        return float(text)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or parts is None or not any(parts.groups()):
        raise ValueError(f"--every {text!r}: give an interval like 15m, 1h or 90s")
    h, m, s = (int(g or 0) for g in parts.groups())
    return float(h * 3600 + m * 60 + s)

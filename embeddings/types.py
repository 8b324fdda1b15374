"""The shared vocabulary of the index: a read :class:`Document` and its :class:`Chunk` s."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One article as read from disk.

    ``text`` is the article body (header lines and markup removed); chunk
    offsets point into it. ``content_hash`` is the SHA-256 of the file's bytes,
    which decides whether a file changed since it was indexed.
    """

    source: str
    text: str
    title: str
    content_hash: str
    date: dt.date | None = None
    date_origin: str = ""  # "header", "text" or "" (unknown): where ``date`` came from
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: ``document.text[start:end] == text``."""

    source: str
    title: str
    start: int
    end: int
    text: str

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end or self.end - self.start != len(self.text):
            raise ValueError(f"chunk of {self.source}: offsets {self.start}..{self.end} do not fit its text")

    @property
    def text_hash(self) -> str:
        """Identity of the text alone: equal texts share one embedding, whatever file they are in."""
        return hashlib.sha1(self.text.encode("utf-8")).hexdigest()

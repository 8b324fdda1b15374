"""Boilerplate of plain-text articles: short lines that repeat across the corpus's files are not the story.

Articles saved from one outlet share lines that belong to the site, not to the article:
"Leave a Comment", "Your email address will not be published.", the outlet's byline or
newsletter line. A line is dropped from a ``.txt``/``.md`` article when it is short (at most
:data:`MAX_WORDS` words) and the same line (case and spacing folded) is in at least
:data:`MIN_FILES` files of the corpus. Which files hold which lines is kept in a small SQLite
table beside the index (:class:`LineTable`, ``lines.sqlite``), so an update reads only the files
that changed; a file indexed before a line became common keeps it until it is read again
(``rag index --rebuild`` cleans everything anew). The bylines' metadata (author, outlets) is
taken before the lines go (:mod:`embeddings.language.bylines`).

>>> keys = line_keys("Leave a Comment\\nDer Minister kam am Montag in Peking an und sprach dort lange mit Xi.\\n")
>>> len(keys)
1
>>> clean_text("Erster Satz.\\nLeave a Comment\\nZweiter Satz.", keys)
('Erster Satz.\\nZweiter Satz.', ('Leave a Comment',))
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: A line in this many files is the site's, not a story's: two articles may quote the same sentence.
MIN_FILES = 3
#: Page furniture is short; a long line that repeats is a quoted statement and stays.
MAX_WORDS = 12
CLEANED_SUFFIXES = (".txt", ".md")
LINES_FILE = "lines.sqlite"


def _fold(line: str) -> str:
    return " ".join(line.split()).casefold()


def _key(line: str) -> str:
    return hashlib.sha1(_fold(line).encode("utf-8")).hexdigest()[:16]


def _candidate(line: str) -> bool:
    words = line.split()
    return 0 < len(words) <= MAX_WORDS


def line_keys(text: str) -> frozenset[str]:
    """The keys of the short lines of ``text``, each once."""
    return frozenset(_key(line) for line in text.split("\n") if _candidate(line))


def clean_text(text: str, repeated: Iterable[str] | frozenset[str]) -> tuple[str, tuple[str, ...]]:
    """``text`` without its lines whose key is in ``repeated``, and the lines dropped (in order)."""
    repeated = frozenset(repeated)
    kept, dropped = [], []
    for line in text.split("\n"):
        if _candidate(line) and _key(line) in repeated:
            dropped.append(line.strip())
        else:
            kept.append(line)
    if not dropped:
        return text, ()
    return "\n".join(kept).strip("\n"), tuple(dropped)


@dataclass(frozen=True)
class Dropped:
    """A line dropped from a file as boilerplate and the other files that hold it."""

    line: str
    files: tuple[str, ...]


class LineTable:
    """Which files hold which short lines: a SQLite table beside the index (``:memory:`` without a folder).

    Written only by the indexer, under the index's writer lock.
    """

    def __init__(self, path: Path | str | None) -> None:
        self.path = str(path) if path is not None else ":memory:"
        self._db = sqlite3.connect(self.path)
        self._db.execute("CREATE TABLE IF NOT EXISTS lines (key TEXT NOT NULL, source TEXT NOT NULL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS lines_key ON lines (key)")
        self._db.execute("CREATE INDEX IF NOT EXISTS lines_source ON lines (source)")

    @classmethod
    def beside(cls, index_dir: Path | str | None) -> LineTable:
        """The table of the index folder ``index_dir`` (in memory when the store has no folder)."""
        if index_dir is None or not Path(index_dir).is_dir():
            return cls(None)
        return cls(Path(index_dir) / LINES_FILE)

    def clear(self) -> None:
        self._db.execute("DELETE FROM lines")

    def put(self, source: str, keys: Iterable[str]) -> None:
        """Record the lines of ``source`` (replacing what it held before)."""
        self._db.execute("DELETE FROM lines WHERE source = ?", (source,))
        self._db.executemany("INSERT INTO lines VALUES (?, ?)", ((k, source) for k in set(keys)))

    def remove(self, sources: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM lines WHERE source = ?", ((s,) for s in sources))

    def repeated(self, keys: Iterable[str], *, min_files: int = MIN_FILES) -> frozenset[str]:
        """Those of ``keys`` that are in at least ``min_files`` files."""
        # A row is one (line, file) pair, so counting stops at ``min_files`` rows of the key: a line that
        # opens every file of a large corpus costs ``min_files`` steps, not one per file (that made the
        # check quadratic in how often a line repeats: minutes at 20,000 files).
        sql = "SELECT COUNT(*) FROM (SELECT 1 FROM lines WHERE key = ? LIMIT ?)"
        return frozenset(k for k in set(keys) if self._db.execute(sql, (k, min_files)).fetchone()[0] >= min_files)

    def files_with(self, line: str) -> tuple[str, ...]:
        rows = self._db.execute("SELECT DISTINCT source FROM lines WHERE key = ? ORDER BY source", (_key(line),))
        return tuple(row[0] for row in rows)

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.close()


def explain_cleaning(text: str, source: str, table: LineTable, *, min_files: int = MIN_FILES) -> list[Dropped]:
    """What :func:`clean_text` drops from ``text`` (the file ``source``) given the corpus's ``table``."""
    out = []
    for line in dict.fromkeys(line.strip() for line in text.split("\n") if _candidate(line)):
        files = table.files_with(line)
        others = tuple(f for f in files if f != source)
        if len(others) + 1 >= min_files:
            out.append(Dropped(line, others))
    return out

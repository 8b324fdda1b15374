"""Word lists kept as data files: one entry per line, each with where it comes from.

A list file (``embeddings/data/*.txt``, ``rag/data/*.txt``) holds entries one per line.
``#`` starts a comment; a line that is only a comment beginning with ``# source:``
names where the entries below it come from, until the next such line. An entry may
have its own comment after it. Every entry must have a provenance, or the file does
not load: a list that grows one entry per failing question is a smell, and an entry
nobody can explain should not be there.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "demo.txt").write_text("# source: German articles\\nder\\ndie  # also a pronoun\\n", encoding="utf-8")
>>> read_list(folder / "demo.txt")
('der', 'die')
"""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path


class WordListError(ValueError):
    """A word list file is malformed (an entry without provenance, or none at all)."""


def read_list(path: Path) -> tuple[str, ...]:
    """The entries of one list file, in order, once each (see the module doc).

    Raises:
        WordListError: an entry stands before any ``# source:`` line, or the file has no entries.
    """
    entries: list[str] = []
    source = ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if line.startswith("#"):
            if line[1:].strip().casefold().startswith("source:"):
                source = line
            continue
        entry = line.split("  #", 1)[0].strip()
        if not entry:
            continue
        if not source:
            raise WordListError(f"{path}:{number}: {entry!r} has no '# source:' line above it; say where it comes from")
        entries.append(entry)
    if not entries:
        raise WordListError(f"{path}: no entries")
    return tuple(dict.fromkeys(entries))


@functools.cache
def word_list(name: str, package: str = "embeddings") -> tuple[str, ...]:
    """The entries of ``<package>/data/<name>.txt`` (read once per process)."""
    return read_list(Path(str(files(package) / "data" / f"{name}.txt")))


@functools.cache
def word_set(name: str, package: str = "embeddings") -> frozenset[str]:
    """The entries of a list as a set, lower-cased (for membership tests)."""
    return frozenset(w.casefold() for w in word_list(name, package))


@functools.cache
def word_values(name: str, package: str = "embeddings") -> dict[str, int]:
    """The entries of a list of ``word value`` lines as a dictionary, the words lower-cased."""
    out = {}
    for entry in word_list(name, package):
        word, value = entry.rsplit(None, 1)
        out[word.casefold()] = int(value)
    return out


def alternation(name: str, package: str = "embeddings") -> str:
    """The entries of a list as a regular-expression alternation, longest first (entries may be patterns)."""
    return "|".join(sorted(word_list(name, package), key=len, reverse=True))

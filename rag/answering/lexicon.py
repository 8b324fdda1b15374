"""A German-English dictionary, to find an English question's words in German sentences.

Word overlap and spelling variants connect names and cognates ("Shoigu"/"Schoigu",
"European"/"europäischen"), and the embedding model connects sentences, but neither connects
ordinary words across the languages: "trip" is "Reise", "supply lines" are "Versorgungsleitungen",
and single-word embeddings are too noisy to say so. A general dictionary does. The default is
Debian's ``trans-de-en`` (the Ding dictionary of TU Chemnitz, some 200,000 entries of general
language, GPL; read from the system, not shipped); without it the lexicon is empty and nothing
is translated.

A dictionary line pairs German and English senses group by group::

    Reise {f} | Reisen {pl} :: journey; trip | journeys; trips

>>> lex = Lexicon.parse(["Reise {f} | Reisen {pl} :: journey; trip | journeys; trips"])
>>> sorted(lex.translations("trips"))
['reise', 'reisen']

Parsing the 25 MB dictionary takes seconds, so it is done once: :func:`load` compiles it into
a small file in the model cache (``trans-de-en-<path>-<parser>.lex``: sorted English words and their
German words, a checksum, and the size, modification time and SHA-256 of the text it came
from) and memory-maps that file in every process after; the page cache shares it. The compiled
file is rebuilt when the dictionary changes, when the parser changes (:data:`FORMAT_VERSION`) or
when its checksum fails. :func:`main` compiles it ahead (``scripts/setup.sh`` calls it).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import logging
import mmap
import os
import re
import struct
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rag.answering.text import STOPWORDS, fold

DEFAULT_PATH = Path("/usr/share/trans/de-en")
# {f}, [Br.], (tool), <abbreviation>, and the country codes of places: "Zypern {n} /CY/ [geogr.] :: Cyprus"
_NOTE = re.compile(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)|<[^>]*>|/[A-Z]{2,3}/")
# Plain English endings, so that "drills", "supplied", "hunting" find "drill", "supply", "hunt".
_ENDINGS = (("ies", "y"), ("ied", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"))

#: Bump when :meth:`Lexicon.parse` or the compiled layout changes, so older compiled files are rebuilt.
FORMAT_VERSION = 2
NAME_MARK = "!name"  # the first sense of an English word the dictionary writes only capitalised
MAGIC = b"NRLEX\x00\x00\x01"
_HEADER = struct.Struct("<8sI")  # magic, length of the JSON header that follows
log = logging.getLogger(__name__)


class Lexicon:
    """English words to their German translations (accent-folded single words)."""

    def __init__(self, entries: Mapping[str, str]) -> None:
        # English word -> its German words, space-separated (one string: 100,000 of them); a dict,
        # or the memory-mapped table of a compiled file (:class:`CompiledEntries`).
        self.entries = entries

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Lexicon:
        """Read dictionary lines (``German | German forms :: English | English forms``); other lines are skipped."""
        found: dict[str, dict[str, None]] = {}
        lower: set[str] = set()  # English words written in lower case somewhere: not names only
        for line in lines:
            if line.startswith("#") or " :: " not in line:
                continue
            german, english = line.rstrip("\n").split(" :: ", 1)
            german_groups, english_groups = german.split(" | "), english.split(" | ")
            if len(german_groups) != len(english_groups):
                continue  # the groups do not pair up: nothing says which word translates which
            for de, en in zip(german_groups, english_groups):
                words_de = [w for w in (_NOTE.sub("", x).strip() for x in de.split(";")) if w and " " not in w]
                if not words_de:
                    continue
                for x in en.split(";"):
                    written = re.sub(r"^to ", "", _NOTE.sub("", x).strip())
                    word = written.casefold()
                    if not word or " " in word or word in STOPWORDS:
                        continue
                    if not written[0].isupper():
                        lower.add(word)
                    senses = found.setdefault(word, {})
                    for w in words_de:
                        senses.setdefault(fold(w), None)
        # A word the dictionary writes only capitalised is a name (Cyprus, Switzerland): marked by a first sense
        # NAME_MARK, which no German word can be.
        return cls({w: " ".join([*([NAME_MARK] if w not in lower else []), *s]) for w, s in found.items()})

    def is_name(self, word: str) -> bool:
        """Whether the dictionary writes this English word only capitalised (a place, a people, a language).

        >>> lex = Lexicon.parse(["Zypern {n} /CY/ [geogr.] :: Cyprus", "Chef {m} :: chief", "Häuptling {m} :: Chief"])
        >>> lex.is_name("cyprus"), lex.is_name("Chief"), sorted(lex.translations("Cyprus"))
        (True, False, ['zypern'])
        """
        return self.entries.get(word.casefold(), "").startswith(NAME_MARK)

    def translations(self, word: str) -> frozenset[str]:
        """The German words for an English word or a plain inflection of it (empty when none)."""
        low = word.casefold()
        forms = [low] + [
            low[: -len(end)] + rep for end, rep in _ENDINGS if low.endswith(end) and len(low) > len(end) + 2
        ]
        return frozenset(t for f in forms for t in self.entries.get(f, "").split() if t != NAME_MARK)

    def __len__(self) -> int:
        return len(self.entries)


EMPTY = Lexicon({})


class CompiledError(ValueError):
    """A compiled dictionary file is damaged, of another version, or of another source."""


class _Keys:
    """The sorted keys of a compiled file as a sequence of ``bytes``, for :mod:`bisect`."""

    def __init__(self, offsets: memoryview, blob: memoryview) -> None:
        self.offsets, self.blob = offsets, blob

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        return bytes(self.blob[self.offsets[i] : self.offsets[i + 1]])


class CompiledEntries(Mapping[str, str]):
    """The read-only ``{English word: German words}`` table of a compiled file, looked up by binary search.

    The file's layout after its header: ``u32 key_offsets[n+1]``, ``u32 value_offsets[n+1]``,
    the UTF-8 keys (sorted by their bytes) and the values, each concatenated.
    """

    def __init__(self, buffer: Any, n: int, keys_len: int) -> None:  # bytes, mmap: what memoryview takes
        view = memoryview(buffer)
        width = 4 * (n + 1)
        self._keys = _Keys(view[:width].cast("I"), view[2 * width : 2 * width + keys_len])
        self._values = _Keys(view[width : 2 * width].cast("I"), view[2 * width + keys_len :])

    def get(self, word: str, default: str | None = None) -> str | None:  # type: ignore[override]
        key = word.encode("utf-8")
        i = bisect.bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            return self._values[i].decode("utf-8")
        return default

    def __getitem__(self, word: str) -> str:
        found = self.get(word)
        if found is None:
            raise KeyError(word)
        return str(found)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self.get(word) is not None

    def __iter__(self) -> Iterator[str]:
        return (self._keys[i].decode("utf-8") for i in range(len(self._keys)))

    def __len__(self) -> int:
        return len(self._keys)


def _source_identity(source: Path, *, digest: bool = True) -> dict[str, Any]:
    st = source.stat()
    out = {"path": str(source), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if digest:
        out["sha256"] = _file_sha256(source)
    return out


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@functools.lru_cache(maxsize=1)
def _parser_tag() -> str:
    """The parser's inputs besides the source: the format version and the stop words it drops."""
    words = "\n".join(sorted(STOPWORDS)).encode("utf-8")
    return f"{FORMAT_VERSION}-{hashlib.sha256(words).hexdigest()[:16]}"


def write_compiled(lexicon: Lexicon, target: Path, source: dict[str, Any]) -> Path:
    """Write ``lexicon`` to ``target`` in the compiled layout (temporary file, fsync, rename).

    ``source`` identifies the text it was parsed from (``path``, ``size``, ``mtime_ns``, ``sha256``).
    """
    items = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in lexicon.entries.items())
    key_offsets, value_offsets, k, v = [0], [0], 0, 0
    for key, value in items:
        k, v = k + len(key), v + len(value)
        key_offsets.append(k)
        value_offsets.append(v)
    keys = b"".join(key for key, _ in items)
    body = b"".join(
        [
            struct.pack(f"<{len(items) + 1}I", *key_offsets),
            struct.pack(f"<{len(items) + 1}I", *value_offsets),
            keys,
            b"".join(value for _, value in items),
        ]
    )
    header = {
        "format": _parser_tag(),
        "entries": len(items),
        "keys_bytes": len(keys),
        "body_bytes": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "source": source,
    }
    head = json.dumps(header, sort_keys=True).encode("utf-8")
    head += b" " * (-(_HEADER.size + len(head)) % 8)  # the body starts 8-aligned (the offsets are u32)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_HEADER.pack(MAGIC, len(head)) + head + body)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # shared by every process and user, like the model files beside it
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def open_compiled(target: Path, source: Path | None = None) -> Lexicon:
    """The lexicon in the compiled file ``target``, memory-mapped and checked against its checksum.

    With ``source``, the file must also have been compiled from that dictionary as it is now: the
    same size and modification time, or else the same SHA-256.

    Raises:
        CompiledError: damaged (bad magic, header or checksum), of another format, or of another source.
        OSError: ``target`` cannot be read.
    """
    with open(target, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < _HEADER.size:
            raise CompiledError(f"{target}: truncated")
        buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    magic, head_len = _HEADER.unpack_from(buffer)
    if magic != MAGIC:
        raise CompiledError(f"{target}: not a compiled dictionary (bad magic)")
    try:
        header = json.loads(bytes(buffer[_HEADER.size : _HEADER.size + head_len]))
        start = _HEADER.size + head_len
        body = memoryview(buffer)[start:]
        if header["format"] != _parser_tag():
            raise CompiledError(f"{target}: compiled by another version of the parser")
        if len(body) != header["body_bytes"] or hashlib.sha256(body).hexdigest() != header["body_sha256"]:
            raise CompiledError(f"{target}: checksum mismatch (damaged)")
        if source is not None and not _same_source(header["source"], source):
            raise CompiledError(f"{target}: compiled from another version of {source}")
        return Lexicon(CompiledEntries(body, int(header["entries"]), int(header["keys_bytes"])))
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, CompiledError):
            raise
        raise CompiledError(f"{target}: unreadable header ({exc})") from exc


def _same_source(recorded: dict[str, Any], source: Path) -> bool:
    now = _source_identity(source, digest=False)
    if recorded.get("path") == now["path"] and all(recorded.get(k) == now[k] for k in ("size", "mtime_ns")):
        return True
    return recorded.get("size") == now["size"] and recorded.get("sha256") == _file_sha256(source)


def compiled_path(source: Path, cache_dir: Path) -> Path:
    """Where the compiled form of the dictionary ``source`` is kept in ``cache_dir``: one file per source
    and parser version, so two installations of different versions sharing the cache do not compile
    over each other's file at every start.

    >>> name = compiled_path(Path("/usr/share/trans/de-en"), Path("/c")).name
    >>> name.startswith("trans-de-en-a80d78ac198f-") and name.endswith(".lex")
    True
    """
    tag = hashlib.sha256(str(Path(source).absolute()).encode()).hexdigest()[:12]
    parser = hashlib.sha256(_parser_tag().encode()).hexdigest()[:8]
    return Path(cache_dir) / f"trans-{Path(source).name}-{tag}-{parser}.lex"


def default_cache_dir() -> Path:
    """The model cache (``RAG_HOME``'s ``models/``, else ``~/.cache/newsrag``): compiled files live with the model."""
    from embeddings.model.encoder import default_cache_dir as model_cache
    from rag.defaults import defaults

    return defaults().cache_dir or model_cache()


def parse_file(path: Path) -> Lexicon:
    """Parse the dictionary text at ``path`` (seconds for the full dictionary: prefer :func:`load`)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return Lexicon.parse(f)


def compile_file(source: Path, target: Path) -> Lexicon:
    """Parse ``source`` and write its compiled form to ``target``; the parsed lexicon."""
    identity = _source_identity(source)
    lexicon = parse_file(source)
    write_compiled(lexicon, target, identity)
    return lexicon


@functools.lru_cache(maxsize=4)
def load(path: Path = DEFAULT_PATH, cache_dir: Path | None = None) -> Lexicon:
    """The dictionary at ``path``, read once per process; the empty lexicon when there is none.

    Its compiled form in ``cache_dir`` (default: the model cache) is memory-mapped; it is
    compiled first when missing, damaged, or older than the dictionary. When the cache cannot
    be written, the dictionary is parsed in memory (seconds) and a warning says why.
    """
    path = Path(path)
    if not path.is_file():
        return EMPTY
    target = compiled_path(path, cache_dir if cache_dir is not None else default_cache_dir())
    try:
        return open_compiled(target, path)
    except FileNotFoundError:
        pass
    except (CompiledError, OSError) as exc:
        log.warning("%s; compiling it again", exc)
    try:
        compile_file(path, target)
        return open_compiled(target, path)
    except FileNotFoundError:
        if not path.is_file():  # the dictionary went away meanwhile
            return EMPTY
        raise
    except OSError as exc:
        log.warning(
            "cannot write the compiled dictionary %s (%s); parsing %s in every process instead. "
            "Make that folder writable, or set RAG_HOME / --cache-dir to one that is.",
            target,
            exc.strerror or exc,
            path,
        )
        return parse_file(path)


def main() -> int:
    """Compile the dictionary (``sys.argv[1]``, default the system one) into the model cache now."""
    import sys

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH
    if not source.is_file():
        print(f"lexicon: no dictionary at {source}; nothing to compile (apt-get install trans-de-en)")
        return 0
    lexicon = load(source)
    print(f"lexicon: {len(lexicon)} English words, compiled in {compiled_path(source, default_cache_dir())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

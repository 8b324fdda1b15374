"""Read article files (.txt, .md, .html, .pdf, .docx) into :class:`~embeddings.types.Document` s.

Text is UTF-8 (or UTF-16 with a byte-order mark); a file in another encoding (Latin-1,
Windows-1252 …) is converted from the encoding charset-normalizer detects, and the document
says so (``metadata["encoding"]``, shown as a note when it is indexed). A file that is UTF-8
with broken bytes is refused, never guessed. HTML pages and Word files are read with
trafilatura and python-docx in a budgeted child process (:mod:`embeddings.readers.extract_worker`).
An optional header of ``key: value`` lines at the top (or ``---`` front matter)
is metadata, not text::

    title: Schoigu in Peking
    date: 2025-02-28

    Der chinesische Präsident ...
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import unicodedata
from pathlib import Path

from embeddings.language.dates import infer_date, parse_date
from embeddings.readers.extract_worker import ExtractBudgetError, extract
from embeddings.readers.html_text import MarkupError, html_to_text
from embeddings.readers.markdown_text import MarkdownBudgetError, markdown_to_text
from embeddings.readers.pdf_worker import PdfBudgetError, pdf_text
from embeddings.readers.reflow import reflow, split_pdf_header
from embeddings.types import Document

SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
#: Files larger than this are refused before they are read: a news article is a few KB, and a
#: 100 MB "article" would take hours to embed and hold the whole text in memory meanwhile.
MAX_FILE_BYTES = 20 * 1024 * 1024
#: Bytes charset-normalizer looks at to find a file's encoding (it is quadratic-ish in what it is given).
MAX_DETECT_BYTES = 256 * 1024
LINK_LOOP = "symbolic link loop; remove or fix the link"
HEADER_KEYS = {
    "title", "date", "published", "author", "source", "url", "lang", "language", "description", "tags",
}  # fmt: skip
_HEADER_LINE = re.compile(r"^([A-Za-z][\w-]{0,30}):[ \t]*(.*)$")
# Zero-width and other invisible format characters carry no meaning for search and break tokens;
# bidirectional overrides and isolates can make quoted text display in another order than it reads.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad"
             "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)  # fmt: skip
# C0 and C1 controls (terminal escapes among them) except tab and line ends.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"\r\n?|[\x85\u2028\u2029]")


class DocumentError(ValueError):
    """A file cannot be read as an article. The message names the file and what to do."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


# A multi-byte UTF-8 sequence: a file that has one is UTF-8 with damage, not Latin-1 (whose
# umlauts are single bytes that never form one).
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def decode(raw: bytes, path: Path | str) -> str:
    """Bytes to text: UTF-8 (BOM allowed), UTF-16 with BOM, or a detected legacy encoding (see :func:`decode_text`)."""
    return decode_text(raw, path)[0]


def decode_text(raw: bytes, path: Path | str) -> tuple[str, str]:
    """Bytes to text, and the encoding it was converted from when that was not UTF-8 (else ``""``).

    >>> decode_text("Grüße aus Köln, schöne Straße.".encode("cp1252"), "a.txt")
    ('Grüße aus Köln, schöne Straße.', 'cp1252')

    Raises:
        DocumentError: binary, broken UTF-16, UTF-8 with damaged bytes, or no encoding fits.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), ""
        except UnicodeDecodeError as exc:
            raise DocumentError(path, f"broken UTF-16 ({exc.reason}); re-save the file as UTF-8") from exc
    if b"\x00" in raw[:8192]:
        raise DocumentError(path, "binary file (contains NUL bytes), not text; convert it to .txt or .pdf")
    try:
        return raw.decode("utf-8-sig"), ""
    except UnicodeDecodeError as exc:
        refusal = DocumentError(
            path,
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8 text and add it again",
        )
        if _UTF8_SEQUENCE.search(raw):
            raise refusal from exc
    from charset_normalizer import from_bytes  # lazy: only files that are not UTF-8 need it

    best = from_bytes(raw[:MAX_DETECT_BYTES]).best()
    if best is None or best.encoding in ("utf_8", "utf_16", "utf_32"):
        raise refusal
    try:
        text = raw.decode(best.encoding)
    except (UnicodeDecodeError, LookupError):
        raise refusal from None
    try:  # Windows-1252 when it reads the same: cp1250 and Latin-1 agree with it on German text
        if raw.decode("cp1252") == text:
            return text, "cp1252"
    except UnicodeDecodeError:
        pass
    return text, best.encoding


def normalize_text(text: str) -> str:
    r"""Unify line ends, compose umlauts (NFC), drop invisible and control characters.

    >>> normalize_text("Sch\u200boigu\r\nin\u2028Peking\x1b[31m")
    'Schoigu\nin\nPeking [31m'
    """
    text = _LINE_BREAKS.sub("\n", text)
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return _CONTROL.sub(" ", text)


def split_header(text: str) -> tuple[dict[str, str], str]:
    """Separate a leading metadata header from the body.

    >>> split_header("title: A\\ndate: 2025-02-28\\n\\nBody")
    ({'title': 'A', 'date': '2025-02-28'}, 'Body')
    >>> split_header("Quelle: nirgends\\n\\nBody")[0]
    {}
    """
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":  # front matter
        for i in range(1, min(len(lines), 50)):
            if lines[i].strip() == "---":
                meta = _parse_pairs(lines[1:i])
                if meta is not None:
                    return meta, "\n".join(lines[i + 1 :]).lstrip("\n")
                break
        return {}, text
    end = 0
    while end < len(lines) and end < 50 and lines[end].strip():
        end += 1
    meta = _parse_pairs(lines[:end]) if end < len(lines) else None
    if not meta or next(iter(meta)) not in HEADER_KEYS:
        return {}, text
    return meta, "\n".join(lines[end:]).lstrip("\n")


def _parse_pairs(lines: list[str]) -> dict[str, str] | None:
    meta: dict[str, str] = {}
    for line in lines:
        m = _HEADER_LINE.match(line.strip())
        if not m:
            return None
        meta[m.group(1).lower()] = m.group(2).strip().strip("\"'")
    return meta if meta and any(k in HEADER_KEYS for k in meta) else None


def guess_title(text: str, fallback: str) -> str:
    """A headline: the first line if it reads like one, else the start of the first sentence."""
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    first = re.sub(r"^#+\s*", "", first)
    if not first:
        return fallback
    if len(first) <= 160 and not first.endswith((".", "!", "?", ":", ";", ",")):
        return first
    words = first.split()
    return " ".join(words[:12]) + (" …" if len(words) > 12 else "")


def pdf_to_text(raw: bytes, path: Path | str) -> str:
    """Text layer of a PDF (no OCR), read in a child process with a time and memory budget."""
    try:
        pages = pdf_text(raw)
    except PdfBudgetError as exc:
        raise DocumentError(path, exc.reason) from None
    return "\n\n".join(p.strip() for p in pages if p.strip())


def html_main_text(html: str, where: Path | str) -> tuple[str, dict[str, str]]:
    """An HTML page's main text and metadata: trafilatura's, behind :func:`html_to_text`'s markup limits.

    The project's own lxml reader runs first as the gate (tag length, tag count, unclosed
    comments) and is the fallback when trafilatura finds no main text.
    """
    try:
        text, meta = html_to_text(html)
    except MarkupError as exc:
        raise DocumentError(where, str(exc)) from None
    found, main = _extracted("html", html.encode("utf-8"), where)
    if not main.strip():
        return text, meta
    return normalize_text(main), {**meta, **found}


def _extracted(kind: str, raw: bytes, where: Path | str) -> tuple[dict[str, str], str]:
    """``(metadata, text)`` of a page or Word file from the budgeted child (:mod:`.extract_worker`)."""
    try:
        found = extract(kind, raw)
    except ExtractBudgetError as exc:
        raise DocumentError(where, exc.reason) from None
    meta = {key: " ".join(found[key].split()) for key in ("title", "date", "author") if found.get(key)}
    if found.get("sitename"):
        meta["outlet"] = " ".join(found["sitename"].split())
    return meta, found.get("text", "")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n:,} bytes"


def read_bytes(path: Path | str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """A file's bytes; what is not a regular file, or is larger than ``max_bytes``, is refused before reading.

    The size is taken from the opened file (``fstat``), and never more than ``max_bytes + 1``
    bytes are read, so a file that grows meanwhile cannot slip past the limit. A
    pipe or device is opened without blocking and refused, never read.

    Raises:
        DocumentError: missing, a folder, a pipe or device, a symlink loop, unreadable or too large.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except ValueError:  # a NUL byte in the name: no such file can exist
        raise DocumentError(repr(str(path)), "file name contains a NUL byte; rename the file") from None
    except FileNotFoundError:
        raise DocumentError(path, "no such file (or a symbolic link to a missing file)") from None
    except IsADirectoryError:
        raise DocumentError(path, "is a directory, not a file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DocumentError(path, LINK_LOOP) from None
        raise DocumentError(path, f"cannot read ({exc.strerror})") from exc
    too_large = f"the limit is {_size(max_bytes)}; split it into smaller files"
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DocumentError(path, "is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise DocumentError(path, "not a regular file (a pipe, socket or device); nothing to read")
        if info.st_size > max_bytes:
            raise DocumentError(path, f"too large ({_size(info.st_size)}; {too_large})")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        raw = bytearray()
        try:  # in blocks, to at most one byte past the limit: a file still growing cannot slip through
            while len(raw) <= max_bytes and (block := f.read(min(max_bytes + 1 - len(raw), 2**20))):
                raw += block
        except OSError as exc:
            raise DocumentError(path, f"cannot read ({exc.strerror})") from exc
    if len(raw) > max_bytes:
        raise DocumentError(path, f"too large (grew past the limit while being read; {too_large})")
    return bytes(raw)


def read_document(path: Path, source: str | None = None, *, max_bytes: int = MAX_FILE_BYTES) -> Document:
    """Read one article file.

    Args:
        path: the file.
        source: its name in the index (default: the file name).
        max_bytes: larger files are refused without being read.

    Raises:
        DocumentError: unsupported type, unreadable, too large, binary, badly encoded or empty.
    """
    path = Path(path)
    source = source or path.name
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DocumentError(path, f"unsupported file type {suffix or '(none)'}; use one of {', '.join(SUFFIXES)}")
    return parse_document(read_bytes(path, max_bytes), source, suffix, path)


def parse_document(raw: bytes, source: str, suffix: str, path: Path | str | None = None) -> Document:
    """Build a :class:`Document` from a file's bytes (see :func:`read_document`)."""
    where = path or source
    content_hash = hashlib.sha256(raw).hexdigest()
    if not raw.strip():
        raise DocumentError(where, "empty file; add text or remove it")
    meta: dict[str, str] = {}
    if suffix == ".pdf":
        if not raw.startswith(b"%PDF"):
            raise DocumentError(where, "not a PDF (missing %PDF signature)")
        # Header first: reflowing would join its lines into one.
        meta, text = split_pdf_header(normalize_text(pdf_to_text(raw, where)), HEADER_KEYS)
        text = reflow(text)
    elif suffix == ".docx":
        if not raw.startswith(b"PK"):
            raise DocumentError(where, "not a Word file (a .docx is a zip; this is not one); save it again as .docx")
        meta, text = _extracted("docx", raw, where)
        meta_header, text = split_header(normalize_text(text))
        meta.update(meta_header)
    else:
        text, encoding = decode_text(raw, where)
        text = normalize_text(text)
        if suffix in (".html", ".htm"):
            text, meta = html_main_text(text, where)
        meta_header, text = split_header(text)
        if encoding:
            meta["encoding"] = encoding
        if suffix == ".md":
            try:
                text, meta = markdown_to_text(text)
            except MarkdownBudgetError as exc:
                raise DocumentError(where, exc.reason) from None
        meta.update(meta_header)
    if not text.strip():
        reason = "PDF without a text layer (scanned?); OCR it first" if suffix == ".pdf" else "no text"
        raise DocumentError(where, f"{reason}; nothing to index")
    date, origin = None, ""
    if meta.get("date") or meta.get("published"):
        date = parse_date(meta.get("date") or meta["published"])
        origin = "header" if date else ""
    if date is None:
        date = infer_date(text)
        origin = "text" if date else ""
    title = meta.get("title") or guess_title(text, Path(source).stem)
    return Document(source, text, title, content_hash, date, origin, meta)

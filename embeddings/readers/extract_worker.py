"""Web pages (trafilatura) and Word files (python-docx) read in a child process with a time and memory budget.

Both libraries parse whatever they are given: a ``.docx`` is a zip that may unpack to
gigabytes, and a page's markup can make an extractor's heuristics slow. So, like PDFs
(:mod:`embeddings.readers.pdf_worker`), they run in a separate Python process (this file, run as a
script: it imports nothing of the project) with an address-space limit, and are killed after
``seconds``. The upload path and the folder path both read through here.

Protocol: argv ``--worker KIND MEMORY URL``, the file's bytes on stdin; on stdout one JSON
object, the fields found (``text``, ``title``, ``date``, ``author``, ``sitename``) or ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: Wall-clock seconds one page or document may take: trafilatura reads a news page in well under 1 s.
EXTRACT_SECONDS = 10.0
#: Address space of the child: trafilatura's imports take ~250 MB; a Word file that needs more is a zip bomb.
EXTRACT_MEMORY_BYTES = 1024 * 2**20
KINDS = ("html", "docx")


class ExtractBudgetError(ValueError):
    """The file could not be read within its budget, or not at all; ``reason`` says which, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def extract(
    kind: str, raw: bytes, *, url: str = "", seconds: float = EXTRACT_SECONDS, memory_bytes: int = EXTRACT_MEMORY_BYTES
) -> dict[str, str]:
    """The text and metadata of ``raw`` (an HTML page or a ``.docx``), read in a child process within the budget.

    Raises:
        ExtractBudgetError: over time or memory, or the library could not read the file.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    what = "the page" if kind == "html" else "the Word file"
    fix = "save the article's text as .txt"
    cmd = [sys.executable, "-I", str(Path(__file__).resolve()), "--worker", kind, str(memory_bytes), url]
    try:
        done = subprocess.run(cmd, input=raw, capture_output=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:  # run() has killed the child and reaped it
        raise ExtractBudgetError(f"reading {what} took longer than {seconds:g} s (the limit); {fix}") from None
    try:
        result = json.loads(done.stdout or b"{}")
    except ValueError:
        result = {}
    if "error" in result:
        raise ExtractBudgetError(f"unreadable ({result['error']}); {fix}")
    if "text" in result:
        return {k: str(v) for k, v in result.items() if v}
    if b"MemoryError" in done.stderr or done.returncode < 0:
        raise ExtractBudgetError(f"reading {what} needed more than {memory_bytes // 2**20} MB of memory; {fix}")
    raise ExtractBudgetError(f"unreadable (the reader stopped with status {done.returncode}); {fix}")


def _html(raw: bytes, url: str) -> dict:
    import trafilatura

    found = trafilatura.bare_extraction(
        raw.decode("utf-8"),
        url=url or None,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        include_links=False,
        favor_precision=True,
        deduplicate=False,
    )
    if found is None:
        return {"text": ""}
    get = found.as_dict().get if hasattr(found, "as_dict") else found.get
    return {key: get(key) or "" for key in ("text", "title", "date", "author", "sitename")}


def _docx(raw: bytes) -> dict:
    import io

    import docx

    document = docx.Document(io.BytesIO(raw))
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    props = document.core_properties
    return {"text": "\n".join(line for line in lines if line.strip()), "title": props.title or "",
            "author": props.author or ""}  # fmt: skip


def _worker(kind: str, memory_bytes: int, url: str) -> int:
    """The child: limit its memory, read stdin, print what was found (or the error) as JSON."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    raw = sys.stdin.buffer.read()
    try:
        found = _html(raw, url) if kind == "html" else _docx(raw)
    except MemoryError:
        raise
    except Exception as exc:  # both libraries raise many types for damaged files
        message = " ".join(str(exc).split())[:200] or type(exc).__name__
        sys.stdout.write(json.dumps({"error": message}))
        return 0
    sys.stdout.write(json.dumps(found, ensure_ascii=False))
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    sys.exit(_worker(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else ""))

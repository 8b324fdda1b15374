"""A PDF's text layer, read in a child process that is killed when it runs over its time or memory budget.

pypdf's own limits do not bound time: a PDF whose pages all share one content stream
(8 KB) took 108 s, linear in pages, and held the index's write slot meanwhile. So
:func:`pdf_text` runs pypdf in a separate Python process (this file, run as a script: it
imports nothing of the project) with an address-space limit, waits at most
``seconds`` and kills it after that. The file is then refused with the reason.

Protocol: the PDF's bytes on stdin; on stdout one JSON object, ``{"pages": [...]}`` or
``{"error": "..."}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: Wall-clock seconds one PDF may take: a 100-page article reads in about 2 s on one core.
PDF_SECONDS = 6.0
#: Address space of the child: pypdf on a 20 MB PDF needs a few hundred MB; more is an attack.
PDF_MEMORY_BYTES = 1024 * 2**20


class PdfBudgetError(ValueError):
    """The PDF could not be read within its budget, or not at all; ``reason`` says which, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _limit_memory(limit: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def pdf_text(raw: bytes, *, seconds: float = PDF_SECONDS, memory_bytes: int = PDF_MEMORY_BYTES) -> list[str]:
    """The text of each page of the PDF ``raw``, extracted in a child process within the budget.

    Raises:
        PdfBudgetError: over time or memory, or pypdf could not read the file.
    """
    # The child limits its own memory first thing (no preexec_fn: unsafe in the threaded server).
    cmd = [sys.executable, "-I", str(Path(__file__).resolve()), "--worker", str(memory_bytes)]
    try:
        done = subprocess.run(cmd, input=raw, capture_output=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:  # run() has killed the child and reaped it
        raise PdfBudgetError(
            f"reading it took longer than {seconds:g} s (the limit for one PDF); export it again or convert it to .txt"
        ) from None
    try:
        result = json.loads(done.stdout or b"{}")
    except ValueError:
        result = {}
    if "pages" in result:
        return [str(page) for page in result["pages"]]
    if "error" in result:
        raise PdfBudgetError(f"unreadable PDF ({result['error']}); export it again or convert it to .txt")
    if b"MemoryError" in done.stderr or done.returncode < 0:
        raise PdfBudgetError(
            f"reading it needed more than {memory_bytes // 2**20} MB of memory; export it again or convert it to .txt"
        )
    raise PdfBudgetError(f"unreadable PDF (the reader stopped with status {done.returncode}); convert it to .txt")


def _worker(memory_bytes: int) -> int:
    """The child: limit its memory, read stdin as a PDF, print its pages' text (or the error) as JSON."""
    import io

    _limit_memory(memory_bytes)
    raw = sys.stdin.buffer.read()
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(raw))
        pages = [page.extract_text() or "" for page in reader.pages]
    except MemoryError:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files
        message = " ".join(str(exc).split())[:200] or type(exc).__name__
        sys.stdout.write(json.dumps({"error": message}))
        return 0
    sys.stdout.write(json.dumps({"pages": pages}))
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    sys.exit(_worker(int(sys.argv[2])))

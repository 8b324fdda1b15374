"""Markdown to the text a reader sees: headings become metadata, markup disappears.

A ``.md`` article read as plain text puts ``# Neue Gas-Leitstelle`` and
``**fett**`` into quotes. :func:`markdown_to_text` keeps the words and drops
the markup; the first heading is the title, the other headings are left out
of the text (they are not sentences and would be glued to the next one):

>>> md = "# Neue Leitstelle\\n\\nDer **Betreiber** hat [hier](http://x.de) eröffnet.\\n\\n## Mehr\\n\\n- Punkt *eins*"
>>> text, meta = markdown_to_text(md)
>>> meta
{'title': 'Neue Leitstelle'}
>>> print(text)
Der Betreiber hat hier eröffnet.
<BLANKLINE>
Punkt eins

The parsing is markdown-it-py's (CommonMark, with GFM tables and strikethrough): its inline
parser is linear in the input, by construction. The hand-written patterns it replaces
(``(\\*\\*|__)(?=\\S)(.+?)(?<=\\S)\\1`` and friends) backtracked: 64 KB of ``**x **x …``
took 115 s while holding the GIL, and every route of the chat froze meanwhile (issue 23, N1).

Linear is not fast: a 12 MB article takes markdown-it-py about a minute, and some inputs
(``![x ![x …``, unclosed link labels) are still worse than linear. So a body longer than
:data:`IN_PROCESS_CHARS` is parsed in a child process (this file run as a script; it imports
nothing of the project) that is killed past :data:`MARKDOWN_SECONDS` or
:data:`MARKDOWN_MEMORY_BYTES`, as PDFs are (:mod:`embeddings.readers.pdf_worker`): no file can stall
the server, whatever the parser does.

Front matter (``---`` … ``---``) is read before this, by :func:`embeddings.readers.files.split_header`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

#: Bodies up to this long are parsed in the process: at most ~1 s of CPU whatever they hold.
IN_PROCESS_CHARS = 64 * 1024
#: Wall-clock seconds of the child for a longer body: a 1 MB article parses in about 4 s on one core.
MARKDOWN_SECONDS = 8.0
#: Address space of the child.
MARKDOWN_MEMORY_BYTES = 1024 * 2**20


class MarkdownBudgetError(ValueError):
    """The Markdown could not be read within its budget; ``reason`` says which, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Tags inside a raw HTML block: each scan stops at the next "<" or ">", so this is linear too.
_TAG = re.compile(r"<[^<>]*>")
_BLANK_RUNS = re.compile(r"\n{3,}")


@lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt  # lazy: only .md files need it

    # html: raw HTML is recognised (and then dropped) instead of being read as words.
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def _inline(children) -> str:
    """The words of an inline token's children: text, code and image alt text; no markup, no addresses."""
    out: list[str] = []
    for child in children or ():
        kind = child.type
        if kind in ("text", "code_inline"):
            out.append(child.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "image":
            out.append(_inline(child.children))
        # link_open/close, em/strong/s, html_inline: markup, not words
    return "".join(out)


def inline_text(line: str) -> str:
    """A line without its inline markup.

    >>> inline_text("Die **neue** `Leitung` ist ~~alt~~ [online](https://x.example) \\\\*wichtig\\\\*")
    'Die neue Leitung ist alt online *wichtig*'
    """
    tokens = _parser().parseInline(line)
    return "".join(_inline(t.children) for t in tokens).strip()


def markdown_to_text(
    markdown: str, *, seconds: float = MARKDOWN_SECONDS, memory_bytes: int = MARKDOWN_MEMORY_BYTES
) -> tuple[str, dict[str, str]]:
    """The readable text of a Markdown body and ``{"title": first heading}`` (if there is one).

    Raises:
        MarkdownBudgetError: a long body took more than ``seconds`` or ``memory_bytes`` to parse.
    """
    if len(markdown) <= IN_PROCESS_CHARS:
        return _to_text(markdown)
    cmd = [sys.executable, "-I", str(Path(__file__).resolve()), "--worker", str(memory_bytes)]
    raw = markdown.encode("utf-8", "surrogatepass")
    try:
        done = subprocess.run(cmd, input=raw, capture_output=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:  # run() has killed the child and reaped it
        raise MarkdownBudgetError(
            f"reading the Markdown took longer than {seconds:g} s (the limit for one file); split it or save it as .txt"
        ) from None
    try:
        result = json.loads(done.stdout or b"{}")
    except ValueError:
        result = {}
    if "text" in result:
        return str(result["text"]), {str(k): str(v) for k, v in result.get("meta", {}).items()}
    if b"MemoryError" in done.stderr or done.returncode < 0:
        raise MarkdownBudgetError(
            f"reading the Markdown needed more than {memory_bytes // 2**20} MB of memory; split it or save it as .txt"
        )
    raise MarkdownBudgetError(f"unreadable Markdown (the reader stopped with status {done.returncode}); save as .txt")


def _to_text(markdown: str) -> tuple[str, dict[str, str]]:
    meta: dict[str, str] = {}
    blocks: list[tuple[str, str]] = []  # (separator before it, text)
    in_heading = tight = False
    previous = ""  # the kind of the block before: "tight" (a tight list's item), "row" or another
    row: list[str] | None = None
    for token in _parser().parse(markdown):
        kind = token.type
        if kind == "heading_open":
            in_heading = True
        elif kind == "heading_close":
            in_heading = False
        elif kind == "paragraph_open":
            tight = token.hidden  # a tight list's item: one line, no blank line before it
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close":  # a table's rows follow each other line by line
            blocks.append(("\n" if previous == "row" else "\n\n", " ".join(c for c in row or () if c)))
            row, previous = None, "row"
        elif kind == "inline":
            words = _inline(token.children)
            if in_heading:
                meta.setdefault("title", " ".join(words.split()))
            elif row is not None:
                row.append(words.strip())
            else:  # items of a tight list follow each other line by line
                blocks.append(("\n" if tight and previous == "tight" else "\n\n", words))
                previous, tight = "tight" if tight else "", False
        elif kind in ("fence", "code_block"):
            blocks.append(("\n\n", token.content.rstrip("\n")))
            previous = ""
        elif kind == "html_block":
            blocks.append(("\n\n", _TAG.sub("", token.content).strip("\n")))
            previous = ""
    text = "".join(sep + "\n".join(line.rstrip() for line in words.split("\n")) for sep, words in blocks)
    text = _BLANK_RUNS.sub("\n\n", text).strip("\n")
    return text, {k: v for k, v in meta.items() if v}


def _worker(memory_bytes: int) -> int:
    """The child: limit its memory, read stdin as Markdown, print its text and metadata as JSON."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    text, meta = _to_text(sys.stdin.buffer.read().decode("utf-8", "surrogatepass"))
    sys.stdout.write(json.dumps({"text": text, "meta": meta}))
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    sys.exit(_worker(int(sys.argv[2])))

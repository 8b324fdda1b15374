"""The web chat: a thin Gradio shell over :class:`rag.Engine` and :func:`embeddings.index_paths`.

``ChatApp`` holds the state (engine, shared model, corpus folder); its
handlers are plain methods, tested without a server. ``create_app()`` wires
them into a ``gr.Blocks`` page, ``launch()`` serves it. The index mirrors the
corpus folder: uploads are saved into it, removing a document deletes its
file, and each change is an incremental ``index_paths`` run. Answering goes
on meanwhile, because the engine reads immutable snapshots and switches to
the new one when the writer is done.

With a LangChain chat model (``llm=``), the page offers a choice of answerer:
the extractive one, or the model, whose checked words stream in while the
sources panel shows the passages it is reading (see :mod:`rag.llm`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import resource
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, replace
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr

from embeddings import CorpusError, DocumentError, Embedder, IndexReport, StoreError, index_paths, read_manifest
from embeddings.readers import MAX_FILE_BYTES, SUFFIXES, parse_document, read_bytes
from rag import Answer, Engine, QuestionError
from rag.followup import message_text, resolve
from rag.llm import PASSAGES, REPLACED, LLMError, answered_by, generate, prepare
from rag.llm import answer as llm_answer
from rag.questions import clean

from .guard import Guard, GuardConfig, allowed_hosts
from .passwords import Login
from .render import SOURCES_CSS, answer_markdown, claims_markdown, sources_html
from .slots import ANSWERS, QUEUE_WORKERS, Busy, Slots, client_key

EXAMPLES = (
    "When did Shoigu visit Beijing?",
    "Wann besuchte Belousow Peking?",
    "Wer ist der Sprecher des chinesischen Außenministeriums?",
    "Where did Putin meet Xi Jinping?",
)
DOC_HEADERS = ["file", "title", "date", "chunks"]
MAX_NAME_CHARS = 120
MAX_NAME_BYTES = 240  # file systems allow 255 bytes per name; umlauts and CJK take 2-3 bytes each
STREAM_WORDS = 6  # words added per streamed update
STREAM_DELAY = 0.02  # seconds between updates: enough to see the answer arrive, not enough to wait for it
LIBRARY_ERRORS = (QuestionError, StoreError, DocumentError, CorpusError, OSError)
DEFAULT_HOST = "127.0.0.1"  # this machine only; another address must be asked for (rag chat --host)
# Gradio keeps every client session's state (a copy of the page config, the chat history:
# 60-70 KB each, measured) until this many sessions exist, then drops the least recently used.
# Its default, 10,000, lets the server grow by ~600 MB; 1,000 caps it near 60 MB.
MAX_SESSIONS = 1_000
MAX_UPLOAD_FILES = 20  # files in one upload request; the guard refuses more before they are stored
MAX_UPLOAD_BYTES = 100 * 2**20  # one upload request, all files (at least one file of the largest allowed size)
EXTRACTIVE, LLM = "extractive", "llm"  # the answerer choices
# Gradio keeps each uploaded file in its temporary folder; the upload event removes its own
# files when the handler returns, and every 5 minutes files older than 10 minutes go (uploads
# whose handler never ran: a stranger's POST to /gradio_api/upload).
UPLOAD_CACHE = (300, 600)
log = logging.getLogger("rag.chat")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[^\s/:;,'\"()]+/)+(?=[^\s/:;,'\"()])")

#: ``progress(fraction, desc)``, the shape of ``gr.Progress``.
PageProgress = Callable[..., object]


def safe_filename(name: str) -> str:
    """A file name that stays inside the corpus folder: no folders, NULs, control characters or leading dots.

    >>> safe_filename("../../etc/pass\\x00wd.txt")
    'pass_wd.txt'
    >>> safe_filename("Nachricht über Peking (1).md")
    'Nachricht_über_Peking_1_.md'

    Raises:
        DocumentError: nothing usable is left, or the type is not one the index reads.
    """
    base = unicodedata.normalize("NFC", name.replace("\\", "/")).split("/")[-1]
    base = re.sub(r"[^\w.-]+", "_", base).lstrip("._")
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem:
        raise DocumentError(name, f"no usable file name; upload a {', '.join(SUFFIXES)} file")
    if f".{suffix.lower()}" not in SUFFIXES:
        raise DocumentError(name, f"unsupported file type .{suffix}; upload {', '.join(SUFFIXES)}")
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1]
    while len(f"{stem}.{suffix}".encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return f"{stem}.{suffix.lower()}"


def public_error(exc: BaseException) -> gr.Error:
    """What the client is told about ``exc``: one line, no server folders, HTML-escaped; logged as one line.

    >>> public_error(OSError("/srv/rag/index/gen-3/chunks.sqlite is damaged; rebuild")).message
    'chunks.sqlite is damaged; rebuild'
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    log.warning("refused: %s", text[:500])
    return gr.Error(escape(_ABSOLUTE_PATH.sub("", text)[:400], quote=False), print_exception=False)


def user_questions(history: Sequence[dict]) -> list[str]:
    """The text of the user turns of a Gradio chat history (content as a string or a list of parts)."""
    out = []
    for message in history or ():
        if message.get("role") != "user":
            continue
        text = message_text(message.get("content"))
        if text.strip():
            out.append(text)
    return out


class ChatApp:
    """The chat over one index that mirrors one corpus folder.

    Args:
        index_dir: the index folder (built from ``corpus_dir`` by :meth:`sync` if missing).
        corpus_dir: where the articles are, and where uploads are saved.
        embedder: the model, shared by answering and indexing so it is loaded once.
        k: passages cited per extractive answer.
        examples: questions offered as clickable examples.
        max_file_bytes: larger uploads are refused (and files in the folder skipped) without being read.
        llm: a LangChain chat model; the page then offers it as a second answerer.
        llm_k: passages given to the LLM.
        llm_label: how the page names it, e.g. ``"local at http://127.0.0.1:8080/v1"``.
    """

    def __init__(
        self,
        index_dir: Path,
        corpus_dir: Path,
        embedder: Embedder,
        *,
        k: int = 5,
        examples: Sequence[str] = EXAMPLES,
        max_file_bytes: int = MAX_FILE_BYTES,
        llm: Any = None,
        llm_k: int = PASSAGES,
        llm_label: str = "LLM",
    ) -> None:
        self.index_dir = Path(index_dir)
        self.max_file_bytes = max_file_bytes
        self.corpus_dir = Path(corpus_dir)
        self.embedder = embedder
        self.k = k
        self.examples = list(examples)
        self.llm = llm
        self.llm_k = llm_k
        self.llm_label = llm_label
        self.engine = Engine(self.index_dir, embedder=embedder, cache_dir=getattr(embedder, "cache_dir", None))
        self.slots = Slots()

    # ---- indexing -------------------------------------------------------------------------------

    def sync(self, progress: PageProgress | None = None) -> IndexReport:
        """Bring the index in line with the corpus folder (incremental)."""
        if not self.corpus_dir.is_dir():
            raise CorpusError(f"{self.corpus_dir}: no such folder; give the articles' folder with --corpus")
        return index_paths(
            [self.corpus_dir],
            self.index_dir,
            self.embedder,
            progress=_stages(progress),
            max_file_bytes=self.max_file_bytes,
        )

    def documents(self) -> list[list]:
        """Rows of the documents panel: file, title, date, chunks."""
        if read_manifest(self.index_dir) is None:
            return []
        snapshot = self.engine.loaded().snapshot
        files = snapshot.manifest.files
        return [
            [source, doc.title, doc.date.isoformat() if doc.date else "", files.get(source, {}).get("chunks", 0)]
            for source, doc in sorted(snapshot.documents.items())
        ]

    def upload(self, files: Sequence[str] | None, progress: PageProgress | None = None) -> tuple[list[list], str]:
        """Save uploaded files into the corpus folder and index them.

        Every file is checked first (size, type, readable as an article); if one fails, or
        its (sanitised) name is taken by a different file in the folder or another upload,
        nothing is saved, so a bad upload cannot disturb the index. An upload identical to
        the file already there is accepted and changes nothing.

        Returns:
            The documents table and a one-line report.
        Raises:
            gr.Error: a bad file (the message names it and says why).
        """
        if not files:
            raise gr.Error("choose one or more .txt, .md, .html or .pdf files first")
        ready: dict[str, bytes] = {}
        try:
            for upload in files:
                path = Path(upload)
                name = safe_filename(path.name)
                try:
                    raw = read_bytes(path, self.max_file_bytes)
                except DocumentError as exc:  # named as the person uploaded it, not by the server's temp path
                    raise DocumentError(path.name, exc.reason) from exc
                parse_document(raw, name, Path(name).suffix, name)  # the indexer would skip it; say why now
                if ready.get(name, raw) != raw:
                    raise DocumentError(name, "two different uploads would both be saved under this name; rename one")
                if not self._same_as_saved(name, raw):
                    ready[name] = raw
            for name, raw in ready.items():
                _write_new(self.corpus_dir / name, raw)
            report = self.sync(progress)
        except LIBRARY_ERRORS as exc:
            raise public_error(exc) from None
        return self.documents(), _report_line(report)

    def _same_as_saved(self, name: str, raw: bytes) -> bool:
        """True if the corpus folder holds exactly these bytes under ``name``; refuses to replace anything else."""
        target = self.corpus_dir / name
        if not os.path.lexists(target):
            return False
        if target.is_file() and not target.is_symlink() and read_bytes(target, self.max_file_bytes) == raw:
            return True
        raise DocumentError(
            name, "another file with this name is in the corpus; remove that document first, or rename yours"
        )

    def remove(self, source: str | None, progress: PageProgress | None = None) -> tuple[list[list], str]:
        """Delete a document's file from the corpus folder and drop it from the index."""
        if not source:
            raise gr.Error("choose a document to remove")
        known = {row[0] for row in self.documents()}
        root = self.corpus_dir.resolve()
        path = (root / source).resolve()
        if source not in known or not path.is_relative_to(root):
            raise gr.Error(f"{source}: not a document of the corpus folder {self.corpus_dir}")
        try:
            path.unlink(missing_ok=True)
            report = self.sync(progress)
        except LIBRARY_ERRORS as exc:
            raise public_error(exc) from None
        return self.documents(), _report_line(report)

    def rescan(self, progress: PageProgress | None = None) -> tuple[list[list], str]:
        """Re-read the corpus folder: pick up files added, changed or deleted outside the chat."""
        try:
            report = self.sync(progress)
        except LIBRARY_ERRORS as exc:
            raise public_error(exc) from None
        return self.documents(), _report_line(report)

    # ---- answering ------------------------------------------------------------------------------

    def answer(self, message: str, history: Sequence[dict] = ()) -> tuple[Answer, str]:
        """The answer to ``message`` read in the context of the chat, and the question actually asked.

        The question is ``message`` itself unless it was a follow-up and rewritten.
        Control characters are stripped first; an empty or over-long message is an error, and
        earlier turns that were refused as questions are not read as context.
        """
        try:
            earlier = [text for text in map(_askable, user_questions(history)) if text]
            cleaned = clean(message)
            question = resolve([*earlier, cleaned])
            return self.engine.ask(question, k=self.k), message if question == cleaned else question
        except LIBRARY_ERRORS as exc:
            raise public_error(exc) from None

    def respond(
        self, message: str, history: Sequence[dict], answerer: str = EXTRACTIVE, request: gr.Request | None = None
    ) -> Iterator[tuple[str, str]]:
        """Stream the answer into the chat: growing text, and the sources panel.

        ``answerer`` is ``"extractive"`` or ``"llm"`` (the model given to the constructor);
        ``request`` (given by Gradio) says who asks: one answer at a time per client.
        """
        if _answerer(answerer) == LLM:
            with self._slot(request, message):
                yield from self._respond_llm(message, history)
            return
        with self._slot(request, message):
            answer, asked = self.answer(message, history)
        sources = sources_html(answer, asked if asked != message else None)
        words = answer_markdown(answer.text).split(" ")
        for n in range(STREAM_WORDS, len(words), STREAM_WORDS):
            yield " ".join(words[:n]), sources
            time.sleep(STREAM_DELAY)
        yield " ".join(words), sources

    def _respond_llm(self, message: str, history: Sequence[dict]) -> Iterator[tuple[str, str]]:
        """The model's checked words as they arrive beside the passages it reads; then the final answer and notes."""
        llm = self._require_llm()
        try:
            prepared = prepare(message, llm, engine=self.engine, k=self.llm_k, history=list(history or ()))
            asked = prepared.standalone if prepared.standalone != message else None
            # The extractive answer's highlights say nothing about what the model used.
            seen = [replace(c, highlight=None) for c in prepared.passages]
            sources = sources_html(Answer("", False, seen, prepared.language), asked)
            shown, final = "", None
            yield "", sources  # the passages at once; each sentence follows once the claim check passed it
            for item in generate(prepared, llm):
                if isinstance(item, str):
                    shown += item
                    yield answer_markdown(shown), sources
                else:
                    final = item
        except (LLMError, *LIBRARY_ERRORS) as exc:
            raise public_error(exc) from None
        assert final is not None
        # A fallback shows the extractive answer with its highlights; otherwise the passages the model read.
        panel = final if answered_by(final) in REPLACED else replace(final, citations=seen)
        yield llm_markdown(final), sources_html(panel, asked)

    @contextlib.contextmanager
    def _slot(self, request: gr.Request | None, question: object = "") -> Iterator[None]:
        """Run the block as one answer slot of the client (see :mod:`ui.slots`); no slot is a one-line refusal."""
        chars = len(question) if isinstance(question, str) else 0
        try:
            with self.slots.hold(client_key(request), chars):
                yield
        except Busy as exc:
            raise public_error(exc) from None

    def _require_llm(self) -> Any:
        if self.llm is None:
            raise gr.Error("no LLM configured: start the chat with --llm openai --base-url URL (or RAG_LLM)")
        return self.llm

    def ask(
        self, question: str, previous_question: str = "", answerer: str = EXTRACTIVE, request: gr.Request | None = None
    ) -> dict:
        """API ``ask``: the answer and its sources as data.

        Args:
            question: in English or German.
            previous_question: the question before, if this one is a follow-up ("And Belousov?").
            answerer: ``"extractive"`` (default) or ``"llm"``.

        Returns:
            ``{"question", "text", "abstained", "language", "citations": [{n, source, title, passage,
            start, end, score, date, highlight}, ...], "notes"}``; ``question`` is the question answered;
            ``notes`` say what was changed in an LLM answer (e.g. replaced by the extractive one).
        """
        history = [{"role": "user", "content": previous_question}] if previous_question else []
        if _answerer(answerer) == EXTRACTIVE:
            with self._slot(request, question):
                answer, _asked = self.answer(question, history)
            return asdict(answer)
        llm = self._require_llm()
        try:
            with self._slot(request, question):
                return asdict(llm_answer(question, llm, engine=self.engine, k=self.llm_k, history=history))
        except (LLMError, *LIBRARY_ERRORS) as exc:
            raise public_error(exc) from None

    # ---- the page -------------------------------------------------------------------------------

    def create_app(self) -> gr.Blocks:
        """The page: chat and sources side by side, the documents panel below."""
        with gr.Blocks(title="News RAG", analytics_enabled=False, delete_cache=UPLOAD_CACHE) as app:
            gr.Markdown("## Ask the news articles\nAnswers quote and cite `[n]` the passages they come from.")
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    sources = gr.HTML(sources_html(None), render=False, elem_id="rag-sources")
                    choice = []
                    if self.llm is not None:
                        choice = [
                            gr.Radio(
                                [("Extractive (quotes the passages)", EXTRACTIVE), (f"LLM: {self.llm_label}", LLM)],
                                value=LLM,
                                label="Answerer",
                                elem_id="rag-answerer",
                            )
                        ]
                    gr.ChatInterface(
                        self.respond,
                        chatbot=gr.Chatbot(elem_id="rag-chat", height=480, label="Chat"),
                        textbox=gr.Textbox(placeholder="Ask a question in English or German", elem_id="rag-question"),
                        additional_inputs=choice,
                        additional_outputs=[sources],
                        # with an additional input Gradio wants each example as a list
                        examples=[[q] for q in self.examples] if choice else self.examples,
                        cache_examples=False,
                        api_name="chat",
                        fill_height=False,
                    )
                with gr.Column(scale=2):
                    gr.Markdown("### Sources")
                    sources.render()

            with gr.Accordion("Documents", open=True, elem_id="rag-documents"):
                table = gr.Dataframe(
                    value=self.documents,
                    headers=DOC_HEADERS,
                    interactive=False,
                    wrap=True,
                    column_widths=["28%", "52%", "12%", "8%"],
                    elem_id="rag-doc-table",
                )
                status = gr.Markdown(elem_id="rag-status")
                with gr.Row():
                    files = gr.File(
                        label="Add articles", file_count="multiple", file_types=list(SUFFIXES), elem_id="rag-upload"
                    )
                    with gr.Column():
                        # Custom values allowed: the choices change with every upload, and remove() checks the name.
                        # Filled per visitor by app.load below, not built into the page: Gradio puts the API
                        # description (with a dropdown's choices) even into the login page it shows strangers.
                        choice = gr.Dropdown(
                            choices=[],
                            label="Document",
                            allow_custom_value=True,
                            elem_id="rag-remove-choice",
                        )
                        remove = gr.Button("Remove document", variant="stop", elem_id="rag-remove")
                        rescan = gr.Button("Re-scan corpus folder", elem_id="rag-rescan")

            # Writers share one queue slot (they would wait for the index lock anyway); the chat has its own.
            writes = {"concurrency_id": "index-writes", "concurrency_limit": 1, "show_progress": "full"}

            def on_upload(paths, progress=gr.Progress()):
                try:
                    return self.upload(paths, progress)
                finally:  # Gradio's copies of this request's files: saved into the corpus or refused by now
                    _remove_uploaded(paths)

            def on_remove(source, progress=gr.Progress()):
                return self.remove(source, progress)

            def on_rescan(progress=gr.Progress()):
                return self.rescan(progress)

            refresh = {"fn": self._dropdown, "outputs": choice, "api_visibility": "undocumented"}
            files.upload(on_upload, files, [table, status], api_name="upload", **writes).then(**refresh)
            remove.click(on_remove, choice, [table, status], api_name="remove", **writes).then(**refresh)
            rescan.click(on_rescan, None, [table, status], api_name="rescan", **writes).then(**refresh)
            gr.api(self._api_ask, api_name="ask", concurrency_id=ANSWERS, concurrency_limit=QUEUE_WORKERS)
            app.load(self._dropdown, None, choice, api_visibility="undocumented")
        for fn in app.fns.values():  # the chat page and /chat share the API's workers (ChatInterface takes no id)
            if fn.api_name in ("chat", "ask"):
                fn.concurrency_id, fn.concurrency_limit = ANSWERS, QUEUE_WORKERS
        return app

    def _api_ask(
        self, question: str, previous_question: str = "", answerer: str = EXTRACTIVE, request: gr.Request = None
    ) -> dict:
        """Answer a question; returns the answer text and its sources (citations) as data.

        ``answerer``: "extractive" (default) or "llm" when the chat was started with an LLM.
        """
        return self.ask(question, previous_question, answerer, request)

    def _document_names(self) -> list[str]:
        return [row[0] for row in self.documents()]

    def _dropdown(self):
        return gr.Dropdown(choices=self._document_names(), value=None)

    def launch(
        self,
        host: str = DEFAULT_HOST,
        port: int = 7860,
        auth: tuple[str, str] | Login | None = None,
        *,
        block: bool = True,
        allowed: Sequence[str] = (),
    ) -> gr.Blocks:
        """Serve the page on ``host:port``; with ``block=False`` return the running app (for tests).

        Args:
            host: the address to listen on; the default is reachable from this machine only.
            auth: ``(user, password)`` or a :class:`~ui.passwords.Login`: nothing but the login page without it.
            allowed: more host names the page may be called by (besides loopback and ``host``).

        Every request passes :class:`~ui.guard.Guard` first (Host and Origin, body size, login
        attempts, streams). Files over ``max_file_bytes`` (the constructor's) are refused by
        Gradio while they arrive, and :meth:`upload` checks again before reading.
        """
        from starlette.middleware import Middleware

        guard = GuardConfig(
            port=port,
            hosts=allowed_hosts(host, allowed),
            auth=auth is not None,
            max_upload_bytes=max(self.max_file_bytes, min(self.max_file_bytes * MAX_UPLOAD_FILES, MAX_UPLOAD_BYTES))
            + 2**20,  # the multipart framing
            max_upload_files=MAX_UPLOAD_FILES,
        )
        _raise_file_limit()
        app = self.create_app()
        # api_open=False: /gradio_api/run/* would answer outside the queue and its limits.
        app.queue(default_concurrency_limit=2, api_open=False)
        app.launch(
            server_name=host,
            server_port=port,
            auth=auth,
            prevent_thread_lock=not block,
            css=SOURCES_CSS,
            show_error=False,  # gr.Error messages (made by public_error) reach the client; other exceptions do not
            quiet=not block,
            app_kwargs={"middleware": [Middleware(Guard, config=guard)]},
            max_file_size=self.max_file_bytes,  # refused by gradio before the upload reaches its temp folder
            state_session_capacity=MAX_SESSIONS,
        )
        return app


def _remove_uploaded(paths: Sequence[str] | None) -> None:
    for path in paths or ():
        with contextlib.suppress(OSError, TypeError):
            Path(path).unlink(missing_ok=True)


def _raise_file_limit() -> None:
    """Raise the soft limit of open files to the hard one: each open stream holds a descriptor."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


def _answerer(name: str | None) -> str:
    if name in (None, "", EXTRACTIVE):
        return EXTRACTIVE
    if name == LLM:
        return LLM
    raise gr.Error(f"unknown answerer {name!r}: use {EXTRACTIVE!r} or {LLM!r}")


def llm_markdown(answer: Answer) -> str:
    """The final LLM answer for the chat window: the text, then what was changed, in italics (all escaped).

    >>> llm_markdown(Answer("Am <b>28.</b> [1]", False, notes=("Removed citations that point at no passage: [7].",)))
    'Am &lt;b&gt;28.&lt;/b&gt; [1]\\n\\n*Removed citations that point at no passage: [7].*'
    """
    notes = [f"*{escape(note, quote=False)}*" for note in answer.notes]
    notes += [line for line in [claims_markdown(answer)] if line]  # "1 sentence removed: not supported by [1]"
    return "\n\n".join([answer_markdown(answer.text), *notes])


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``user:password``, or a file whose first line is ``user:password``.

    >>> parse_auth("anna:geheim")
    ('anna', 'geheim')

    Raises:
        ValueError: not in that form.
    """
    if not value:
        return None
    text = value
    if Path(value).is_file():  # a file keeps the password out of the process list and shell history
        text = (Path(value).read_text(encoding="utf-8").strip().splitlines() or [""])[0]
    user, sep, password = text.strip().partition(":")
    if not sep or not user or not password:
        raise ValueError("--auth takes user:password or a file holding user:password")
    return user, password


def _askable(question: str) -> str | None:
    """The cleaned question, or ``None`` if it would be refused (empty, too long)."""
    try:
        return clean(question)
    except QuestionError:
        return None


def _stages(progress: PageProgress | None):
    """Adapt the page's ``progress(fraction, desc=…)`` to the indexer's ``progress(stage, done, total)``."""
    if progress is None:
        return None
    labels = {"read": "Reading files", "embed": "Embedding new passages", "write": "Writing the index"}

    def report(stage: str, done: int, total: int) -> None:
        progress(done / total if total else 1.0, desc=f"{labels.get(stage, stage)} ({done}/{total})")

    return report


def _report_line(report: IndexReport) -> str:
    """The status Markdown after a change: the summary, then each skipped file (names escaped)."""
    lines = [markdown_text(report.summary())]
    lines += [f"skipped {markdown_text(s.source)}: {markdown_text(s.reason)}" for s in report.skipped]
    return "  \n".join(lines)


def markdown_text(text: str) -> str:
    r"""``text`` as literal text in Markdown: HTML escaped, Markdown's punctuation backslashed, one line.

    >>> markdown_text("<img src=x onerror=alert(1)>_[a](b)*.txt")
    '&lt;img src=x onerror=alert\\(1\\)&gt;\\_\\[a\\]\\(b\\)\\*.txt'
    """
    text = escape(" ".join(text.split()), quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+!|~-])", r"\\\1", text)


def _write_new(target: Path, raw: bytes) -> None:
    """Write a file that must not exist yet: to a hidden name, then hard-linked into place (never replacing).

    The indexer never sees half a file, and if another file appeared under the name
    meanwhile it is kept and this write is refused.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.link(tmp, target)
    except FileExistsError:
        raise DocumentError(target.name, "a file with this name appeared in the corpus meanwhile; try again") from None
    finally:
        Path(tmp).unlink(missing_ok=True)

"""The web chat: a thin Gradio shell over :mod:`rag.answerer` and :mod:`embeddings.sources.corpus_folder`.

``ChatApp`` holds the state (engine, answerers, corpus folder); its handlers
are plain methods, tested without a server. ``create_app()`` wires them into
a ``gr.Blocks`` page, ``launch()`` serves it.

The chat never locks: :meth:`ChatApp.respond` turns every refusal or failure
into a message in the conversation (and one log line), so the box is usable
again at once. Each answer is one self-contained message: the text with
``[n]`` linked to the article, then the sources it cites (one title per
article), then the other retrieved passages folded. So Undo, Retry, Clear,
copying and the browser-saved history keep every answer with its own sources.
A source's link opens the whole article on the page (``?article=…&at=…``),
the answering sentence highlighted.

The index mirrors the corpus folder: uploads are saved into it, removing a
document moves its file to the trash in the index folder (restorable), and
each change is an incremental ``index_paths`` run; answering goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import resource
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, replace
from html import escape, unescape
from pathlib import Path
from typing import Any

import gradio as gr

from embeddings import CorpusError, DocumentError, Embedder, IndexReport, Store, StoreError, index_paths
from embeddings.indexer import STAGE_WORDS
from embeddings.readers.files import MAX_FILE_BYTES, SUFFIXES, read_bytes
from embeddings.sources.corpus_folder import MAX_CORPUS_BYTES, TRASH_DAYS, CorpusFolder, safe_filename
from rag import Answer, Engine, QuestionError
from rag.answerer import Answerer, ExtractiveAnswerer, LlmAnswerer, answerers, final_answer
from rag.answering.followup import message_text
from rag.answering.questions import MAX_QUESTION_CHARS, clean
from rag.llm.answers import PASSAGES, LLMError
from ui.chat.guard import Guard, GuardConfig, allowed_hosts
from ui.chat.passwords import Login
from ui.chat.render import SOURCES_CSS, answer_markdown, article_html, message_markdown
from ui.chat.slots import ANSWERS, QUEUE_WORKERS, THREADS, WAIT_SECONDS, Busy, Slots, client_key

__all__ = ["ChatApp", "answered_turns", "chat_name", "named", "parse_auth", "safe_filename", "user_questions"]

log = logging.getLogger("rag.chat")

EXAMPLES = (
    "When did Shoigu visit Beijing?",
    "Wann besuchte Belousow Peking?",
    "Wer ist der Sprecher des chinesischen Außenministeriums?",
    "Where did Putin meet Xi Jinping?",
)
DOC_HEADERS = ["file", "title", "date", "passages"]
ARTICLE_TYPES = ", ".join(SUFFIXES)  # what the documents panel reads, named in its label
MAX_CHAT_NAME = 60  # characters of a chat's name: the past-chats list is a narrow column
# Gradio keeps only its own keys of a message's metadata; "id" without "title" is not drawn
# (it only nests thoughts), so a chat's name rides in its first question's metadata id.
CHAT_NAME = "rag-chat-name:"
LIBRARY_ERRORS = (QuestionError, StoreError, DocumentError, CorpusError, LLMError, OSError)
DEFAULT_HOST = "127.0.0.1"  # this machine only; another address must be asked for (rag chat --host)
# Gradio keeps every client session's state (a copy of the page config, the chat history:
# 60-70 KB each, measured) until this many sessions exist, then drops the least recently used.
# Its default, 10,000, lets the server grow by ~600 MB; 1,000 caps it near 60 MB.
MAX_SESSIONS = 1_000
EXTRACTIVE, LLM = "extractive", "llm"  # the answerers' names (rag.answerer)
MAX_PASSAGES = 10  # the settings' slider: more passages than this only add noise below the answer
# Fewer than two passages: rag.answering.answer.compose (issue 12's code) fails with KeyError at k=1 when the
# answer quotes a second passage; the slider starts at 2 until that is fixed.
MIN_PASSAGES = 2
MAX_UPLOAD_FILES = 20  # files in one upload request; the guard refuses more before they are stored
MAX_UPLOAD_BYTES = 100 * 2**20  # one upload request, all files (at least one file of the largest allowed size)
# Gradio keeps each uploaded file in its temporary folder; the upload event removes its own
# files when the handler returns, and every 5 minutes files older than 10 minutes go (uploads
# whose handler never ran: a stranger's POST to /gradio_api/upload).
UPLOAD_CACHE = (300, 600)
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[^\s/:;,'\"()]+/)+(?=[^\s/:;,'\"()])")
# The page's own behaviour (ui/chat/page.js): focus back in the box, the view following each question,
# plain-text Copy, the preview of [n], the article in a side panel, labels, the character counter.
PAGE_JS = Path(__file__).with_name("page.js").read_text(encoding="utf-8").replace("__LIMIT__", str(MAX_QUESTION_CHARS))

#: ``progress(fraction, desc)``, the shape of ``gr.Progress``.
PageProgress = Callable[..., object]


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


def answered_turns(history: Sequence[dict]) -> list[dict]:
    """The chat history without the turns that were refused: a question answered with a warning is no context.

    >>> answered_turns([{"role": "user", "content": "Who did he meet?"}, {"role": "assistant", "content": "⚠️ …"},
    ...                 {"role": "user", "content": "When?"}, {"role": "assistant", "content": "Friday [1]"}])
    [{'role': 'user', 'content': 'When?'}, {'role': 'assistant', 'content': 'Friday [1]'}]
    """
    turns = list(history or ())
    out = []
    for i, message in enumerate(turns):
        reply = turns[i + 1] if i + 1 < len(turns) else None
        if message.get("role") == "user" and reply is not None and _refused(reply):
            continue
        if message.get("role") == "assistant" and _refused(message):
            continue
        out.append(message)
    return out


def _refused(message: dict) -> bool:
    return message.get("role") == "assistant" and message_text(message.get("content")).lstrip().startswith("⚠️")


def public_error(exc: BaseException) -> gr.Error:
    """What the client is told about ``exc``: one line, no server folders, HTML-escaped; logged as one line.

    >>> public_error(OSError("/srv/rag/index/gen-3/chunks.sqlite is damaged; rebuild")).message
    'chunks.sqlite is damaged; rebuild'
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    log.warning("refused: %s", text[:500])
    return gr.Error(escape(_ABSOLUTE_PATH.sub("", text)[:400], quote=False), print_exception=False)


def refusal_markdown(reason: str) -> str:
    """Why a question got no answer, as a chat message (escaped).

    >>> refusal_markdown("empty question; ask something")
    '⚠️ empty question; ask something'
    """
    return f"⚠️ {answer_markdown(reason)}"


class ChatApp:
    """The chat over one index that mirrors one corpus folder.

    Args:
        index_dir: the index folder (built from ``corpus_dir`` by :meth:`sync` if missing); it also holds the trash.
        store: the index in another store (``--store``), instead of the folder's.
        corpus_dir: where the articles are, and where uploads are saved.
        embedder: the model, shared by answering and indexing so it is loaded once.
        k: passages cited per extractive answer (the page's default).
        examples: questions offered as clickable examples.
        max_file_bytes: larger uploads are refused (and files in the folder skipped) without being read.
        max_corpus_bytes: the disk budget of the corpus folder and its trash (uploads past it are refused).
        trash_days: how long removed files stay restorable.
        llm: a LangChain chat model; the page then offers it as a second answerer (and the default).
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
        max_corpus_bytes: int = MAX_CORPUS_BYTES,
        trash_days: float = TRASH_DAYS,
        llm: Any = None,
        llm_k: int = PASSAGES,
        llm_label: str = "LLM",
        store: Store | None = None,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.store = store
        self.max_file_bytes = max_file_bytes
        self.corpus_dir = Path(corpus_dir)
        self.embedder = embedder
        self.k = k
        self.examples = list(examples)
        self.llm = llm
        self.llm_k = llm_k
        cache_dir = getattr(embedder, "cache_dir", None)
        self.engine = Engine(self.index_dir, store=store, embedder=embedder, cache_dir=cache_dir)
        self.answerers: dict[str, ExtractiveAnswerer | LlmAnswerer] = answerers(self.engine, k=k, llm=llm, llm_k=llm_k)
        if llm is not None:
            self.answerers[LLM] = replace(self.answerers[LLM], label=f"LLM: {llm_label}")
        self.folder = CorpusFolder.for_index(
            self.corpus_dir,
            self.index_dir,
            max_file_bytes=max_file_bytes,
            max_bytes=max_corpus_bytes,
            trash_days=trash_days,
        )
        self.slots = Slots()
        # Answers stopped on the page whose last piece is still being made, by client (see respond_stoppable).
        self._stopping: dict[str, threading.Event] = {}
        # The first indexing of a start (rag chat serves the page meanwhile): None when there is none.
        self.indexing: str | None = None

    # ---- indexing -------------------------------------------------------------------------------

    def first_indexing(self, log_progress: Callable[[str, int, int], None] | None = None) -> IndexReport:
        """Index the corpus folder while the page is served: the page shows how far it got.

        ``log_progress`` also gets every ``(stage, done, total)`` (the server log's lines).
        """

        def progress(stage: str, done: int, total: int) -> None:
            self.indexing = f"{STAGE_WORDS.get(stage, stage)} {done:,}/{total:,}"
            if log_progress is not None:
                log_progress(stage, done, total)

        self.indexing = "starting"
        try:
            return self._index(progress)
        finally:
            self.indexing = None

    def _not_ready(self) -> bool:
        """Whether the first indexing runs and there is no index yet (an index of before answers meanwhile)."""
        if self.indexing is None:
            return False
        try:
            return self.engine.store.manifest() is None
        except LIBRARY_ERRORS:
            return True

    def indexing_markdown(self) -> str:
        """The page's line while the first indexing runs ("" once it is done)."""
        if self.indexing is None:
            return ""
        return f"**Indexing the articles** … ({markdown_text(self.indexing)}); questions are answered when it is done."

    def sync(self, progress: PageProgress | None = None) -> IndexReport:
        """Bring the index in line with the corpus folder (incremental)."""
        return self._index(_stages(progress))

    def _index(self, progress: Callable[[str, int, int], None] | None) -> IndexReport:
        """Index the corpus folder into the index (incremental), reporting ``(stage, done, total)``."""
        if not self.corpus_dir.is_dir():
            raise CorpusError(f"{self.corpus_dir}: no such folder; give the articles' folder with --corpus")
        return index_paths(
            [self.corpus_dir],
            self.store if self.store is not None else self.index_dir,
            self.embedder,
            progress=progress,
            max_file_bytes=self.max_file_bytes,
        )

    def feeds_markdown(self) -> str:
        """The feeds ``rag follow`` reads into this corpus, and when each was last read (empty when none)."""
        from embeddings.sources.feeds import STATE_FILE, followed

        rows = followed(self.index_dir / STATE_FILE)
        if not rows:
            return ""
        lines = ["**Followed feeds** (`rag follow`)"]
        lines += [f"- {markdown_text(title or url)}: last read {markdown_text(when or 'never')}, {added} added"
                  for url, title, when, added in rows]  # fmt: skip
        return "\n".join(lines)

    def documents(self) -> list[list]:
        """Rows of the documents panel: file, title, date, passages."""
        if self.engine.store.manifest() is None:
            return []
        snapshot = self.engine.loaded().snapshot
        rows = []
        for source, entry in sorted(snapshot.manifest.files.items()):
            if "title" not in entry:  # written before titles were kept in the manifest: read the document
                doc = snapshot.documents[source]
                entry = {**entry, "title": doc.title, "date": doc.date.isoformat() if doc.date else ""}
            rows.append([source, entry["title"], entry.get("date") or "", entry.get("chunks", 0)])
        return rows

    def upload(
        self, files: Sequence[str] | None, progress: PageProgress | None = None, *, replace: bool = False
    ) -> tuple[list[list], str]:
        """Save uploaded files into the corpus folder and index them; a bad file does not stop the good ones.

        Each file is checked (size, type, readable as an article, name free or ``replace``) and
        only those that pass are written and indexed; if indexing fails the folder is put back.

        Returns:
            The documents table and a report: one line per file, then the index summary.
        Raises:
            gr.Error: no file could be saved (the message names each and says why).
        """
        if not files:
            raise gr.Error(f"choose one or more files first ({ARTICLE_TYPES})")
        uploads, refused = [], []
        for upload in files:
            path = Path(upload)
            try:
                safe_filename(path.name)  # a name that cannot be saved is refused before the file is read
                uploads.append((path.name, read_bytes(path, self.max_file_bytes)))
            except DocumentError as exc:  # named as the person uploaded it, not by the server's temp path
                refused.append((path.name, exc.reason))
        try:
            saved, more, report = self.folder.save(uploads, lambda: self.sync(progress), replace=replace)
        except LIBRARY_ERRORS as exc:
            raise public_error(exc) from None
        refused += more
        lines = [f"{item.status} {markdown_text(item.name)}" for item in saved]
        lines += [f"refused {markdown_text(name)}: {markdown_text(reason)}" for name, reason in refused]
        if refused:
            log.info("upload refused: %s", "; ".join(f"{n}: {r}" for n, r in refused))
        if not saved and refused:
            raise gr.Error("; ".join(f"{name}: {reason}" for name, reason in refused))
        return self.documents(), "  \n".join([*lines, _report_line(report)])

    def remove(
        self, sources: str | Sequence[str] | None, progress: PageProgress | None = None
    ) -> tuple[list[list], str]:
        """Move files of the corpus folder (indexed or not) to the trash and drop them from the index."""
        names = [sources] if isinstance(sources, str) else list(sources or ())
        if not [n for n in names if n]:
            raise gr.Error("choose a document to remove")
        try:
            moved, report = self.folder.remove(names, lambda: self.sync(progress))
        except LIBRARY_ERRORS as exc:
            log.info("remove refused: %s", exc)
            raise public_error(exc) from None
        lines = [f"moved to the trash: {markdown_text(t.name)} (restore it below)" for t in moved]
        return self.documents(), "  \n".join([*lines, _report_line(report)])

    def restore(self, name: str | None, progress: PageProgress | None = None) -> tuple[list[list], str]:
        """Bring a removed file back from the trash and index it again."""
        if not name:
            raise gr.Error("choose a removed file to restore")
        try:
            item, report = self.folder.restore(name, lambda: self.sync(progress))
        except LIBRARY_ERRORS as exc:
            log.info("restore refused: %s", exc)
            raise public_error(exc) from None
        return self.documents(), "  \n".join([f"restored {markdown_text(item.name)}", _report_line(report)])

    def rescan(self, progress: PageProgress | None = None) -> tuple[list[list], str]:
        """Re-read the corpus folder: pick up files added, changed or deleted outside the chat."""
        try:
            report = self.sync(progress)
        except LIBRARY_ERRORS as exc:
            raise public_error(exc) from None
        return self.documents(), _report_line(report)

    # ---- answering ------------------------------------------------------------------------------

    def answerer(
        self, name: str | None = None, passages: int | None = None, documents: Sequence[str] | None = None
    ) -> Answerer:
        """The answerer called ``name`` (default: the first offered), citing ``passages``, searching ``documents``.

        ``documents``: file names to search; empty or ``None`` searches them all.
        """
        if name in (None, ""):
            name = next(iter(self.answerers))
        if name not in self.answerers:
            if name == LLM:
                raise gr.Error("no LLM configured: start the chat with --llm openai --base-url URL (or RAG_LLM)")
            raise gr.Error(f"unknown answerer {name!r}: use one of {', '.join(map(repr, self.answerers))}")
        chosen = self.answerers[name]
        if passages:
            chosen = replace(chosen, k=int(passages))
        if documents:
            chosen = replace(chosen, sources=frozenset(documents))
        return chosen

    def answer(
        self, message: str, history: Sequence[dict] = (), answerer: str | None = EXTRACTIVE
    ) -> tuple[Answer, str]:
        """The answer to ``message`` read in the context of the chat, and the question actually asked.

        Raises:
            gr.Error: the question is refused (empty, too long, a follow-up to rephrase) or the index failed.
        """
        try:
            answer = final_answer(self.answerer(answerer), message, list(history or ()))
        except LIBRARY_ERRORS as exc:
            raise public_error(exc) from None
        return answer, answer.question or message

    def respond(
        self,
        message: str,
        history: Sequence[dict] = (),
        answerer: str | None = None,
        passages: int | None = None,
        documents: Sequence[str] | None = None,
        request: gr.Request | None = None,
    ) -> Iterator[str]:
        """Stream the answer into the chat as one Markdown message, its sources included; never raises.

        A refused question (empty, too long, a follow-up to rephrase) or a failure (index, model)
        ends as a message saying why, so the page is never left locked. ``request`` (given by
        Gradio) says who asks: one answer at a time per client (:mod:`ui.chat.slots`).
        """
        shown = ""
        try:
            message = _text_argument(message)
            if self._not_ready():
                yield refusal_markdown(f"the articles are still being indexed ({self.indexing}); ask again in a moment")
                return
            chosen = self.answerer(answerer, passages, documents)
            with self._slot(request, message):
                for item in chosen.stream(message, answered_turns(history)):
                    if isinstance(item, str):
                        shown += item
                        yield answer_markdown(shown)
                        continue
                    asked = item.question if item.question and item.question != _plain(message) else None
                    yield message_markdown(item, asked, self._outlets(item))
        except (gr.Error, *LIBRARY_ERRORS) as exc:
            reason = exc.message if isinstance(exc, gr.Error) else str(exc)
            log.info("question refused: %s", reason)  # one line; the user reads it in the chat
            yield "\n\n".join(x for x in (answer_markdown(shown), refusal_markdown(reason)) if x)
        except Exception as exc:  # a bug: the page must stay usable, the log gets the traceback
            log.exception("answering failed")
            yield refusal_markdown(f"something went wrong ({type(exc).__name__}); please try again")

    async def respond_stoppable(
        self,
        message: str,
        history: Sequence[dict] = (),
        answerer: str | None = None,
        passages: int | None = None,
        documents: Sequence[str] | None = None,
        request: gr.Request | None = None,
    ) -> AsyncIterator[str]:
        """:meth:`respond` for the page, where **Stop** ends the answer at once.

        Gradio stops a plain generator only when its thread hands over the next piece (an LLM's
        first checked sentence can take many seconds), so each piece is made in a thread this
        coroutine can leave. A stopped answer's thread ends at its next piece and keeps the
        client's slot until then (the server is still busy with it): the client's next question
        waits for that instead of being refused as a second question at once. Such threads are
        outside Gradio's count of workers, so new questions also wait while :data:`QUEUE_WORKERS`
        of them run.
        """
        client = client_key(request)
        deadline = time.monotonic() + WAIT_SECONDS

        def must_wait() -> bool:
            # Its own stopped answer first; and stopped answers' threads, which Gradio no longer counts
            # among its workers, stay as few as those workers (many sessions of one local program).
            self._stopping = {c: e for c, e in self._stopping.items() if not e.is_set()}
            return client in self._stopping or len(self._stopping) >= QUEUE_WORKERS

        while must_wait() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        pieces = _Pieces(self.respond(message, history, answerer, passages, documents, request))
        shown = ""  # nothing yet: Gradio shows that it is waiting
        try:
            while (piece := await _in_thread(pieces.next)) is not _DONE:
                if piece != shown:  # an empty piece (a token held for its check) changes nothing on the page
                    shown = piece
                    yield piece
        finally:
            if not pieces.stop():  # stopped while its thread makes a piece: it ends there
                self._stopping[client] = pieces.finished

    @contextlib.contextmanager
    def _slot(self, request: gr.Request | None, question: object = "") -> Iterator[None]:
        """Run the block as one answer slot of the client (see :mod:`ui.chat.slots`); no slot is a one-line refusal."""
        chars = len(question) if isinstance(question, str) else 0
        try:
            with self.slots.hold(client_key(request), chars):
                yield
        except Busy as exc:
            raise public_error(exc) from None

    def _outlets(self, answer: Answer) -> dict[str, str]:
        """The outlet (``source:``/``publisher:`` header) of each cited article, when its file names one."""
        try:
            documents = self.engine.loaded().snapshot.documents
        except LIBRARY_ERRORS:
            return {}
        out = {}
        for c in answer.citations:
            doc = documents.get(c.source)
            meta = doc.metadata if doc else {}
            outlet = meta.get("source") or meta.get("publisher") or meta.get("outlet")
            if outlet:
                out[c.source] = outlet
        return out

    def article(self, source: str | None, at: str | None = None) -> str:
        """HTML of the whole article ``source`` with the characters ``at`` (``"start-end"``) highlighted."""
        if not source:
            return ""
        try:
            doc = self.engine.loaded().snapshot.documents.get(source)
        except LIBRARY_ERRORS as exc:
            return f'<p class="rag-empty">{escape(str(exc))}</p>'
        if doc is None:
            return f'<p class="rag-empty">{escape(source)}: not in the index (removed?)</p>'
        return article_html(doc, _span(at))

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
        question, previous_question = _text_argument(question), _text_argument(previous_question)
        if self._not_ready():
            raise gr.Error(f"the articles are still being indexed ({self.indexing}); ask again in a moment")
        history = [{"role": "user", "content": previous_question}] if previous_question else []
        with self._slot(request, question):
            answer, _asked = self.answer(question, history, answerer or EXTRACTIVE)
        return asdict(answer)

    # ---- the page -------------------------------------------------------------------------------

    def create_app(self) -> gr.Blocks:
        """The page: settings, the chat (answers carry their sources), the documents panel; an article view on top."""
        with gr.Blocks(title="News RAG", analytics_enabled=False, delete_cache=UPLOAD_CACHE) as app:
            with gr.Column(visible=False, elem_id="rag-article-view") as article_view:
                gr.Markdown("[← Back to the chat](./)", elem_id="rag-back")
                article = gr.HTML("", elem_id="rag-article")
            # The article a source's [n] opens, beside the chat (ui/chat/page.js writes "file|start-end|nonce"
            # into the hidden request box; the answer comes outside the queue, in a fraction of a second).
            with gr.Column(elem_id="rag-panel"):
                gr.Button("Close article (Esc)", elem_id="rag-panel-close", size="sm")
                panel_article = gr.HTML("", elem_id="rag-panel-article")
                panel_request = gr.Textbox(
                    "", elem_id="rag-panel-request", show_label=False, container=False, label="article request"
                )
            gr.Markdown(
                "## Ask the news articles\nAnswers quote and cite `[n]` the passages they come from. "
                "Add your own articles under **Documents**, just below."
            )
            indexing = gr.Markdown(self.indexing_markdown, elem_id="rag-indexing")
            # Polls while the first indexing of a start runs, then stops (ui/cli.py serves the page first).
            ticks = gr.Timer(1.0, active=self.indexing is not None)
            with gr.Accordion("Settings", open=False, elem_id="rag-settings"):
                with gr.Row():
                    choice = gr.Radio(
                        [(a.label, name) for name, a in self.answerers.items()],
                        value=next(iter(self.answerers)),
                        label="Answerer",
                        interactive=len(self.answerers) > 1,
                        elem_id="rag-answerer",
                    )
                    passages = gr.Slider(
                        MIN_PASSAGES,
                        MAX_PASSAGES,
                        value=self._passages(next(iter(self.answerers))),
                        step=1,
                        label="Passages per answer",
                        elem_id="rag-passages",
                    )
                scope = gr.Dropdown(
                    choices=[],
                    multiselect=True,
                    allow_custom_value=True,  # filled per visitor on load; unknown names simply match nothing
                    label="Search only these documents (none chosen: all)",
                    elem_id="rag-scope",
                )
                # Each answerer has its own good default (the LLM reads fewer passages).
                choice.change(self._passages, choice, passages, api_visibility="undocumented", queue=False)
            with gr.Accordion("Documents: add, remove or restore articles", open=False, elem_id="rag-documents"):
                status = gr.Markdown(elem_id="rag-status")
                table = gr.Dataframe(
                    value=self.documents,
                    headers=DOC_HEADERS,
                    interactive=False,
                    wrap=False,
                    max_chars=70,
                    elem_id="rag-doc-table",
                )
                with gr.Row():
                    with gr.Column():
                        # No file_types: Gradio would refuse a whole batch with one toast for one file of
                        # another type; upload() refuses that file alone, in the status, and adds the others.
                        files = gr.File(
                            label=f"Add articles ({ARTICLE_TYPES})", file_count="multiple", elem_id="rag-upload"
                        )
                        overwrite = gr.Checkbox(
                            label="Replace articles of the same name with the uploaded version", elem_id="rag-replace"
                        )
                    with gr.Column():
                        # Filled per visitor by app.load below, not built into the page: Gradio puts the API
                        # description (with a dropdown's choices) even into the login page it shows strangers.
                        # Custom values allowed: the choices change with every upload, and the handlers check names.
                        chosen = gr.Dropdown(
                            choices=[],
                            multiselect=True,
                            label="Files in the corpus folder",
                            allow_custom_value=True,
                            elem_id="rag-remove-choice",
                        )
                        remove = gr.Button("Remove…", variant="stop", elem_id="rag-remove")
                        with gr.Row(visible=False, elem_id="rag-confirm") as confirm_row:
                            confirm_text = gr.Markdown()
                            confirm = gr.Button("Yes, move to the trash", variant="stop", elem_id="rag-remove-yes")
                            cancel = gr.Button("Cancel", elem_id="rag-remove-no")
                        trashed = gr.Dropdown(
                            choices=[],
                            label="Removed files (trash)",
                            allow_custom_value=True,
                            elem_id="rag-trash-choice",
                        )
                        restore = gr.Button("Restore", elem_id="rag-restore")
                        rescan = gr.Button("Re-scan corpus folder", elem_id="rag-rescan")
                        feeds = gr.Markdown(elem_id="rag-feeds")

            chat = gr.ChatInterface(
                self.respond_stoppable,
                # ui/chat/page.js scrolls: each new question to the top, so an answer is read from its start.
                chatbot=gr.Chatbot(
                    elem_id="rag-chat",
                    height=560,
                    label="Conversation",
                    show_label=False,
                    buttons=["copy"],
                    layout="panel",
                    autoscroll=False,
                ),
                textbox=gr.Textbox(
                    placeholder="Ask a question in English or German",
                    label="Your question",
                    elem_id="rag-question",
                    submit_btn="Send",
                    stop_btn="Stop",  # shown while an answer is written (an LLM's can take seconds)
                    autofocus=True,
                    lines=1,
                    max_lines=6,
                    max_length=MAX_QUESTION_CHARS,
                ),
                additional_inputs=[choice, passages, scope],
                examples=[[q] for q in self.examples],
                cache_examples=False,
                api_name="chat",
                fill_height=False,
                save_history=True,
            )
            # Gradio titles a saved chat by its first question, or shows its raw translation key.
            chat._generate_chat_title = _chat_title  # type: ignore[method-assign,assignment]  # Gradio's own hook
            # Its "New chat" icon is a file of the installation: /config would show where gradio is installed.
            chat.new_chat_button.icon = None
            with chat.new_chat_button.parent:  # the past-chats column: the chat in use can be named
                chat_name = gr.Textbox(
                    label="Rename this chat",
                    placeholder="New name",
                    max_length=MAX_CHAT_NAME,
                    submit_btn="Rename",
                    elem_id="rag-chat-name",
                )
            renamed = chat_name.submit(
                _rename_chat,
                [chat_name, chat.conversation_id, chat.chatbot, chat.saved_conversations],
                [chat_name, chat.chatbot, chat.saved_conversations],
                api_visibility="undocumented",
                queue=False,
            )
            # The next question continues the chat from its state: it must carry the name too.
            renamed.then(lambda x: x, chat.chatbot, chat.chatbot_state, api_visibility="undocumented", queue=False)

            # Writers share one queue slot (they would wait for the index lock anyway); the chat has its own.
            writes: dict[str, Any] = {
                "concurrency_id": "index-writes",
                "concurrency_limit": 1,
                "show_progress": "minimal",
            }

            def on_upload(paths, replace_them, progress=gr.Progress()):
                # The file box is emptied: it would add the next upload to these files and send all again.
                run = lambda: self.upload(paths, progress, replace=bool(replace_them))  # noqa: E731
                try:
                    return (*_status(run, self.documents), None)
                finally:  # Gradio's copies of this request's files: saved into the corpus or refused by now
                    _remove_uploaded(paths)

            def ask_confirmation(names):
                names = [n for n in names or () if n]
                if not names:
                    return gr.Row(visible=False), "", "⚠️ choose the files to remove first"
                listed = ", ".join(f"`{answer_markdown(n)}`" for n in names)
                return gr.Row(visible=True), f"Move {listed} to the trash? You can restore them below.", gr.skip()

            def on_remove(names, progress=gr.Progress()):
                return (*_status(lambda: self.remove(names, progress), self.documents), gr.Row(visible=False))

            def on_restore(name, progress=gr.Progress()):
                return _status(lambda: self.restore(name, progress), self.documents)

            def on_rescan(progress=gr.Progress()):
                return _status(lambda: self.rescan(progress), self.documents)

            refresh: dict[str, Any] = {
                "fn": self._choices,
                "outputs": [chosen, trashed, scope],
                "api_visibility": "undocumented",
            }
            uploaded = files.upload(on_upload, [files, overwrite], [table, status, files], api_name="upload", **writes)
            uploaded.then(**refresh)
            # "Replace" is for the upload it was ticked for: the next one asks again.
            uploaded.then(lambda: False, None, overwrite, queue=False, api_visibility="undocumented")
            remove.click(ask_confirmation, chosen, [confirm_row, confirm_text, status], api_visibility="undocumented")
            cancel.click(lambda: gr.Row(visible=False), None, confirm_row, api_visibility="undocumented")
            confirm.click(on_remove, chosen, [table, status, confirm_row], api_name="remove", **writes).then(**refresh)
            restore.click(on_restore, trashed, [table, status], api_name="restore", **writes).then(**refresh)
            rescan.click(on_rescan, None, [table, status], api_name="rescan", **writes).then(**refresh)
            panel_request.change(
                self._panel_article, panel_request, panel_article, queue=False, api_visibility="undocumented"
            )

            def on_tick():
                if self.indexing is not None:
                    return self.indexing_markdown(), *[gr.skip()] * 5
                return "", gr.Timer(active=False), self.documents(), *self._choices()  # done: filled once

            ticks.tick(
                on_tick,
                None,
                [indexing, ticks, table, chosen, trashed, scope],
                queue=False,
                api_visibility="undocumented",
            )
            gr.api(self._api_ask, api_name="ask", concurrency_id=ANSWERS, concurrency_limit=QUEUE_WORKERS)
            app.load(**refresh)
            app.load(self.feeds_markdown, None, feeds, api_visibility="undocumented")
            app.load(self._article_view, None, [article_view, article], api_visibility="undocumented")
            # A reload shows a saved conversation instead of an empty chat: the newest here, and then
            # ui/chat/page.js opens the one that was in use (it keeps its place in the list in the browser).
            app.load(
                _latest_conversation,
                chat.saved_conversations,
                [chat.conversation_id, chat.chatbot, chat.chatbot_state],
                api_visibility="undocumented",
                queue=False,
            )
        for fn in app.fns.values():  # the chat page and /chat share the API's workers (ChatInterface takes no id)
            if fn.api_name in ("chat", "ask"):
                fn.concurrency_id, fn.concurrency_limit = ANSWERS, QUEUE_WORKERS
        return app

    def _api_ask(
        self,
        question: str,
        previous_question: str = "",
        answerer: str = EXTRACTIVE,
        request: gr.Request = None,  # type: ignore[assignment]  # Gradio fills it in by its annotation
    ) -> dict:
        """Answer a question; returns the answer text and its sources (citations) as data.

        ``answerer``: "extractive" (default) or "llm" when the chat was started with an LLM.
        """
        return self.ask(question, previous_question, answerer, request)

    def _passages(self, name: str) -> int:
        return getattr(self.answerers.get(name), "k", None) or self.k

    def _article_view(self, request: gr.Request):
        params = request.query_params if request is not None else {}
        html = self.article(params.get("article"), params.get("at"))
        return gr.Column(visible=bool(html)), html

    def _panel_article(self, request: str | None) -> str:
        """The side panel's article for ``"file|start-end|nonce"`` (what ui/chat/page.js sends)."""
        source, _, rest = (request or "").partition("|")
        return self.article(source, rest.partition("|")[0]) if source else ""

    def _choices(self):
        names = self.folder.files()
        removed = list(dict.fromkeys(t.name for t in self.folder.trashed()))
        # The documents to search are offered by title (and date); the file name is the value.
        indexed = [(_document_label(title, date, source), source) for source, title, date, _n in self.documents()]
        return (
            gr.Dropdown(choices=names, value=[]),
            gr.Dropdown(choices=removed, value=None),
            gr.Dropdown(choices=indexed),  # the reader's choice of documents to search is kept
        )

    def launch(
        self,
        host: str = DEFAULT_HOST,
        port: int = 7860,
        auth: tuple[str, str] | Login | None = None,
        *,
        block: bool = True,
        allowed: Sequence[str] = (),
        trusted_proxies: Sequence[str] = (),
    ) -> gr.Blocks:
        """Serve the page on ``host:port``; with ``block=False`` return the running app (for tests).

        Args:
            host: the address to listen on; the default is reachable from this machine only.
            auth: ``(user, password)`` or a :class:`~ui.chat.passwords.Login`: nothing but the login page without it.
            allowed: more host names the page may be called by (besides loopback and ``host``).
            trusted_proxies: addresses of reverse proxies whose ``X-Forwarded-For`` names the client;
                from anyone else the header is ignored (uvicorn's default believes any local process).

        Every request passes :class:`~ui.chat.guard.Guard` first (Host and Origin, body size, login
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
        # Gradio gives uvicorn no forwarded_allow_ips, so uvicorn reads this variable (default: loopback,
        # i.e. every local process could name any client address and escape the per-address limits).
        os.environ["FORWARDED_ALLOW_IPS"] = ",".join(a.strip() for a in trusted_proxies if a.strip())
        app = self.create_app()
        # api_open=False: /gradio_api/run/* would answer outside the queue and its limits.
        app.queue(default_concurrency_limit=2, api_open=False)
        app.launch(
            server_name=host,
            server_port=port,
            auth=auth,
            prevent_thread_lock=not block,
            # In <head> as written: Gradio's css= is rescoped under its container, and these rules also
            # style <body> (the article panel's state, the phone's pinned box) and the theme's colours.
            head=f"<style>{SOURCES_CSS}</style>",
            js=PAGE_JS,
            show_error=False,  # gr.Error messages (made by public_error) reach the client; other exceptions do not
            quiet=not block,
            app_kwargs={"middleware": [Middleware(Guard, config=guard)]},
            max_file_size=self.max_file_bytes,  # refused by gradio before the upload reaches its temp folder
            state_session_capacity=MAX_SESSIONS,
            max_threads=THREADS,
        )
        return app


_DONE = object()


async def _in_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` in a worker thread; a cancelled caller leaves at once, the thread runs ``fn`` to its end."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)


class _Pieces:
    """A generator whose pieces are made in worker threads and which may be stopped while one is made.

    >>> pieces = _Pieces(iter("ab"))
    >>> pieces.next(), pieces.stop(), pieces.next()
    ('a', True, <object ...>)
    """

    def __init__(self, pieces: Iterator[Any]) -> None:
        self._pieces = pieces
        self._lock = threading.Lock()
        self._busy = False
        self._stopped = False
        self.finished = threading.Event()  # set when no thread makes a piece any more

    def next(self) -> Any:
        """The next piece, or ``_DONE`` (at the end, or once stopped). Runs in a worker thread."""
        with self._lock:
            if self._stopped:
                return _DONE
            self._busy = True
        try:
            return next(self._pieces, _DONE)
        finally:
            with self._lock:
                self._busy = False
                if self._stopped:
                    self._close()

    def stop(self) -> bool:
        """Stop: ``True`` if closed now, ``False`` if a thread is making a piece (closed when it is done)."""
        with self._lock:
            self._stopped = True
            if self._busy:
                return False
            self._close()
            return True

    def _close(self) -> None:
        try:
            close = getattr(self._pieces, "close", None)
            if close is not None:
                close()  # a generator's ``with`` blocks (the client's answer slot) end here
        finally:
            self.finished.set()


def _text_argument(value: Any) -> Any:
    """A question from the API, refused in one line if it holds lone surrogates (UTF-8 cannot write them).

    Other types pass: answering refuses them with its own message.

    >>> _text_argument("Wann?"), _text_argument(None)
    ('Wann?', None)
    >>> _text_argument("a" + chr(0xD800))
    Traceback (most recent call last):
    ...
    gradio.exceptions.Error: 'the question holds characters that are not text (a lone surrogate); type it again'
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise gr.Error(
                "the question holds characters that are not text (a lone surrogate); type it again",
                print_exception=False,
            ) from None
    return value


def _span(at: object) -> tuple[int, int] | None:
    """``"start-end"`` of an article link as offsets; anything else (``²-3``, 5,000 digits) is no span.

    >>> _span("18-23"), _span("²-3"), _span("9" * 5000 + "-1"), _span(None)
    ((18, 23), None, None, None)
    """
    found = _AT.fullmatch(at) if isinstance(at, str) else None
    return (int(found.group(1)), int(found.group(2))) if found else None


_AT = re.compile(r"([0-9]{1,12})-([0-9]{1,12})")


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


def _chat_title(conversation: list[dict]) -> str:
    """The history list's name of a saved chat: the name it was given, else its first question, shortened.

    >>> _chat_title([{"role": "user", "content": [{"type": "text", "text": " "}]}, {"role": "user", "content": "Wer?"}])
    'Wer?'
    """
    if name := chat_name(conversation):
        return name
    for text in user_questions(conversation):
        text = " ".join(text.split())
        return text if len(text) <= 40 else text[:40] + "…"
    return "(no question yet)"


def chat_name(conversation: Sequence[dict]) -> str:
    """The name a reader gave this chat ("" if none): kept in its first question's metadata.

    >>> chat_name([{"role": "user", "content": "Wer?", "metadata": {"id": CHAT_NAME + "Reise"}}])
    'Reise'
    """
    for message in conversation or ():
        key = str((message.get("metadata") or {}).get("id") or "")
        return key[len(CHAT_NAME) :] if key.startswith(CHAT_NAME) else ""
    return ""


def named(conversation: Sequence[dict], name: str) -> list[dict]:
    """``conversation`` named ``name`` (blank: its name removed, so its first question titles it again).

    >>> named([{"role": "user", "content": "Wer?"}], " Die  Reise ")[0]["metadata"]
    {'id': 'rag-chat-name:Die Reise'}
    >>> named(named([{"role": "user", "content": "Wer?"}], "Reise"), "")[0]["metadata"]
    {}
    """
    out = [dict(m) for m in conversation]
    if not out:
        return out
    name = " ".join((name or "").split())[:MAX_CHAT_NAME]
    metadata = {k: v for k, v in (out[0].get("metadata") or {}).items() if k != "id"}
    out[0]["metadata"] = {**metadata, "id": CHAT_NAME + name} if name else metadata
    return out


def _rename_chat(name: str, index: int | None, conversation: list[dict], saved: list[list[dict]]):
    """``(name box, chatbot, saved chats)`` after naming the chat in use; a chat not saved yet cannot be named."""
    if index is None or not conversation or not saved or not 0 <= index < len(saved):
        gr.Warning("Ask a question first: a chat is saved, and can be named, once it has one.")
        return gr.skip(), gr.skip(), gr.skip()
    conversation = named(conversation, name)
    saved = list(saved)
    saved[index] = conversation
    return "", conversation, saved


def _latest_conversation(saved):
    """``(conversation id, chatbot, chat state)`` for the newest saved conversation, or an empty chat."""
    if saved and saved[0]:
        return 0, saved[0], saved[0]
    return None, [], []


def _document_label(title: str, date: str, source: str) -> str:
    """How the search filter names a document: its title and date, the file name only without a title.

    >>> _document_label("Xi traf Schoigu", "2025-02-28", "003_5d40.txt"), _document_label(" ", "", "a.txt")
    ('Xi traf Schoigu (2025-02-28)', 'a.txt')
    """
    title = " ".join((title or "").split()) or source
    return f"{title} ({date})" if date else title


def _status(run: Callable[[], tuple[list[list], str]], documents: Callable[[], list[list]]) -> tuple[Any, str]:
    """Run a documents-panel handler; a refusal goes into the status area (it stays), not into a toast."""
    try:
        return run()
    except gr.Error as exc:
        try:
            rows = documents()
        except LIBRARY_ERRORS:
            rows = gr.skip()
        # public_error's messages are HTML-escaped for the toast; the status area escapes them itself.
        return rows, refusal_markdown(unescape(exc.message))


def _plain(message: str) -> str:
    """The message as the answerer reads it (cleaned), to tell whether it was rewritten."""
    try:
        return clean(message)
    except QuestionError:
        return message


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


def _stages(progress: PageProgress | None):
    """Adapt the page's ``progress(fraction, desc=…)`` to the indexer's ``progress(stage, done, total)``."""
    if progress is None:
        return None

    def report(stage: str, done: int, total: int) -> None:
        words = STAGE_WORDS.get(stage, stage)
        progress(done / total if total else 1.0, desc=f"{words[:1].upper()}{words[1:]} ({done}/{total})")

    return report


def _report_line(report: IndexReport) -> str:
    """The status Markdown after a change, in plain words: what changed, then each skipped file (names escaped).

    The indexer's figures (chunks embedded, reused, seconds) are for the server log, not the reader.
    """
    log.info("index: %s", report.summary())
    lines = [plain_summary(report)]
    lines += [f"skipped {markdown_text(s.source)}: {markdown_text(s.reason)}" for s in report.skipped]
    lines += [f"note {markdown_text(s.source)}: {markdown_text(s.reason)}" for s in report.notes]
    return "  \n".join(lines)


def plain_summary(report: IndexReport) -> str:
    """What an indexing run changed, for a reader: ``Added 2 articles, 5 passages.``

    >>> plain_summary(IndexReport(added=("a.txt", "b.txt"), chunks_embedded=5, chunks_total=70))
    'Added 2 articles, 5 passages. The index holds 70 passages.'
    >>> plain_summary(IndexReport(updated=("a.txt",), removed=("b.txt",), chunks_embedded=1, chunks_total=3))
    'Updated 1 article, 1 new passage. Removed 1 article. The index holds 3 passages.'
    >>> plain_summary(IndexReport(unchanged=("a.txt",), chunks_total=3))
    'Nothing changed. The index holds 3 passages.'
    """

    def count(n: int, word: str) -> str:
        return f"{n:,} {word}{'' if n == 1 else 's'}"

    parts = []
    new = report.chunks_embedded + report.chunks_reused
    if report.added:
        parts.append(f"Added {count(len(report.added), 'article')}, {count(new, 'passage')}.")
    if report.updated:
        extra = "" if report.added else f", {count(new, 'new passage')}"
        parts.append(f"Updated {count(len(report.updated), 'article')}{extra}.")
    if report.removed:
        parts.append(f"Removed {count(len(report.removed), 'article')}.")
    if not parts:
        parts.append("Nothing changed.")
    parts.append(f"The index holds {count(report.chunks_total, 'passage')}.")
    return " ".join(parts)


def markdown_text(text: str) -> str:
    r"""``text`` as literal text in Markdown: HTML escaped, Markdown's punctuation backslashed, one line.

    >>> markdown_text("<img src=x onerror=alert(1)>_[a](b)*.txt")
    '&lt;img src=x onerror=alert\\(1\\)&gt;\\_\\[a\\]\\(b\\)\\*.txt'
    """
    text = escape(" ".join(text.split()), quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+!|~-])", r"\\\1", text)

"""Answers written by a language model, held to the extractive answerer's guarantees.

The model sees the numbered passages the extractive answerer would cite (with
each article's title and date, and relative dates such as "am Freitag"
resolved in place) and is asked to answer in the question's language, citing
``[n]``. Its output is checked while it streams: a ``[n]`` that points at no
passage is dropped (and noted); an answer without a single valid citation is
replaced by the extractive answer, with a note. Each sentence is then held back
until :mod:`rag.llm.claims` has checked it against the passages it cites (names,
dates, numbers, meaning): an unsupported sentence is removed, and an answer left
with none is replaced by the extractive answer; ``Answer.claims`` says which
sentences were kept or removed and why. When the extractive answerer abstains
the model is not asked at all (``gate=True``), so it cannot make something up.

Any LangChain chat model works; :func:`chat_model` builds the two shipped
configurations (an OpenAI-compatible endpoint such as llama.cpp's server or
vLLM, and Ollama). LangChain is imported inside the functions, so the core
runs without the ``llm`` extra installed.

The prompt itself (passages, dates, worked examples) is :mod:`rag.llm.prompt`.

For a chat UI::

    from rag.llm.answers import chat_model, generate, prepare
    llm = chat_model("openai", base_url="http://127.0.0.1:8080/v1")
    prepared = prepare("Und wann war er in Peking?", llm, engine=engine, history=history)
    show_sources(prepared.passages)    # what the model is about to read
    for item in generate(prepared, llm):
        if isinstance(item, str):
            show_more(item)        # checked text, token by token ("" while a sentence is checked)
        else:
            show_final(item)       # the Answer: its text replaces what was shown (fallback, notes)

(:func:`answer_stream` is the two in one.)
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag.answering.answer import NOT_FOUND
from rag.answering.followup import message_text, resolve
from rag.answering.questions import analyse
from rag.llm.claims import ClaimChecker, ClaimFilter
from rag.llm.prompt import EXAMPLES, annotate_dates, build_messages, condense_messages
from rag.types import Answer, AnswerEngine, Citation

PROVIDERS = ("openai", "ollama")
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "ollama": "gemma3:270m"}
LOCAL_MODEL = "local"  # llama.cpp's server answers with its one model whatever the name
PLACEHOLDER_KEY = "sk-no-key-needed"  # local servers ignore the key, the client insists on one
OLLAMA_URL = "http://127.0.0.1:11434"
MAX_TOKENS = 200
# Passages given to the model unless told otherwise. On the dev set Gemma 3 270M wrote 20 answers of
# its own with valid citations from three passages (6 right) against 15 from five (1 right), and
# three are read in about two thirds of the time.
PASSAGES = 3
# Where a reply that has started to repeat the prompt is cut off.
STOP = ["\nQuestion:", "Passages:", "\nFrage:", "<end_of_turn>"]
# Text that only a reply copying the prompt contains.
_ECHO = re.compile(r"article date:|numbered passages only|passage it comes from|Rewritten question:", re.I)
_NUMBER = re.compile(r"\d+")
_WORD = re.compile(r"[^\W\d_]{2,}")  # two letters in a row: the answer says something besides [n]
_REFUSAL_PATTERNS = re.compile(
    r"not (?:be )?found in the passages|passages do not (?:contain|mention|say)|nicht in den passagen"
    r"|passagen enthalten (?:die antwort )?nicht|\bnot found\b|\bnicht gefunden\b",
    re.IGNORECASE,
)
_CITATION = re.compile(r"\s*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_OPEN_CITATION = re.compile(r"\s*\[[\d,\s]{0,12}$")  # the start of a citation still arriving


class LLMError(RuntimeError):
    """The language model could not be reached or refused the request; the message says how to fix it."""


@dataclass(frozen=True)
class CitationCheck:
    """Model output with its citations checked against the passages.

    ``text`` keeps only valid markers; ``valid`` are the passage numbers cited,
    ``invalid`` the numbers removed because no passage has them.
    """

    text: str
    valid: tuple[int, ...]
    invalid: tuple[int, ...]


def check_citations(text: str, passages: int) -> CitationCheck:
    """Drop every ``[n]`` with ``n`` outside ``1..passages``; ``[1, 7]`` keeps ``[1]``.

    >>> check_citations("Am 28. Februar [1]. Nach Moskau [7].", 2)
    CitationCheck(text='Am 28. Februar [1]. Nach Moskau.', valid=(1,), invalid=(7,))
    >>> check_citations("Both [2, 9] and [1][2].", 3).text
    'Both [2] and [1][2].'
    """
    valid: list[int] = []
    invalid: list[int] = []

    def keep(m: re.Match[str]) -> str:
        numbers = [int(x) for x in m.group(1).split(",")]
        good = [n for n in numbers if 1 <= n <= passages]
        valid.extend(good)
        invalid.extend(n for n in numbers if n not in good)
        if not good:
            return ""
        space = m.group(0)[: len(m.group(0)) - len(m.group(0).lstrip())]
        return str(space) + "".join(f"[{n}]" for n in good)

    cleaned = _CITATION.sub(keep, text)
    return CitationCheck(cleaned, tuple(dict.fromkeys(valid)), tuple(dict.fromkeys(invalid)))


class CitationFilter:
    """Applies :func:`check_citations` to a token stream: ``feed`` returns the text that is safe to show.

    Text is held back only while a ``[`` might still become a citation, and
    trailing whitespace is held so that a dropped marker leaves no gap.

    >>> f = CitationFilter(2)
    >>> [f.feed(t) for t in ["Am Freitag ", "[", "3", "] und", " [", "1", "]."]] + [f.flush()]
    ['Am Freitag', '', '', ' und', '', '', ' [1].', '']
    """

    def __init__(self, passages: int) -> None:
        self.passages = passages
        self.raw = ""
        self.shown = 0

    def feed(self, token: str) -> str:
        self.raw += token
        text = self.raw.lstrip()
        end = len(text.rstrip())
        pending = _OPEN_CITATION.search(text[:end])
        if pending:
            end = pending.start()
        return self._emit(text[:end])

    def flush(self) -> str:
        return self._emit(self.raw.strip())

    def result(self) -> CitationCheck:
        return check_citations(self.raw.strip(), self.passages)

    def _emit(self, prefix: str) -> str:
        cleaned = check_citations(prefix, self.passages).text
        new = cleaned[self.shown :]
        self.shown = max(self.shown, len(cleaned))
        return new


def is_refusal(text: str) -> bool:
    """Whether the model said the passages do not hold the answer.

    >>> is_refusal("Not found in the passages."), is_refusal("Nicht in den Passagen gefunden."), is_refusal("Am 28.")
    (True, True, False)
    """
    return bool(_REFUSAL_PATTERNS.search(text))


def unsupported_numbers(text: str, passages: Sequence[Citation]) -> list[str]:
    """Numbers in ``text`` that none of ``passages`` contains (nor its article date): invented, or miscopied.

    ``[n]`` markers do not count; dates in the passages count in every spelling the prompt showed.

    >>> p = Citation(1, "a.txt", "T", "Schoigu kam am Freitag nach Peking.", 0, 35, 1.0, date="2025-02-28")
    >>> unsupported_numbers("On 28 February 2025 [1].", [p]), unsupported_numbers("On 20 February [1].", [p])
    ([], ['20'])
    """
    allowed: set[str] = set()
    for c in passages:
        date = dt.date.fromisoformat(c.date) if c.date else None
        seen = f"{c.title} {annotate_dates(c.passage, date)} {date.isoformat() if date else ''}"
        allowed.update(n.lstrip("0") for n in _NUMBER.findall(seen))
    found = _NUMBER.findall(_CITATION.sub(" ", text))
    return list(dict.fromkeys(n for n in found if n.lstrip("0") not in allowed))


def leaked_names(text: str, sources: Sequence[str]) -> list[str]:
    """Names of the prompt's invented worked examples that ``text`` repeats and no source text contains.

    >>> leaked_names("Mayor Jana Roth and Paul Weber came [1].", ["Paul Weber kam nach Linz."])
    ['Jana', 'Roth']
    """
    seen = {w.casefold() for source in sources for w in re.findall(r"\w+", source)}
    said = {w.casefold() for w in re.findall(r"\w+", text)}
    names = dict.fromkeys(n for example in EXAMPLES for n in example.names)
    return [n for n in names if n.casefold() in said and n.casefold() not in seen]


def _messages(history: Sequence[Any]) -> list[tuple[str, str]]:
    """History as (role, text) pairs; accepts pairs, ``{"role", "content"}`` dicts and LangChain messages.

    Content may be a string or a list of parts (``{"type": "text", "text": ...}``, as Gradio sends it).

    >>> _messages([{"role": "user", "content": [{"type": "text", "text": "Wer kam?"}]}, ("assistant", " Xi [1]. ")])
    [('user', 'Wer kam?'), ('assistant', 'Xi [1].')]
    """
    out = []
    for item in history:
        if isinstance(item, dict):
            role, text = item.get("role", "user"), item.get("content", "")
        elif isinstance(item, tuple | list):
            role, text = item
        else:
            role, text = getattr(item, "type", "user"), getattr(item, "content", "")
        text = message_text(text)
        role = "assistant" if role in ("assistant", "ai", "bot") else "user"
        if isinstance(text, str) and text.strip():
            out.append((role, " ".join(text.split())))
    return out


def condense_question(history: Sequence[Any], question: str, llm: Any, *, max_turns: int = 6) -> str:
    """Rewrite a follow-up question into one that stands alone, for retrieval.

    An elliptical follow-up the rules of :func:`rag.answering.followup.resolve` recognise ("And Belousov?")
    is rewritten by them, as for the extractive answerer; any other is given to the model, whose
    rewrite is used only when it looks like a question (one line ending in "?", no citation
    markers, no names from the worked examples, not far longer than the follow-up).

    Args:
        history: earlier turns, oldest first, as ``(role, text)`` pairs, ``{"role", "content"}``
            dicts (Gradio's format) or LangChain messages; only the last ``max_turns`` are used.
        question: the follow-up ("Und wann war er in Peking?").
        llm: a LangChain chat model.

    Returns:
        The standalone question; ``question`` itself when there is no history or the
        model's rewrite is unusable.

    Raises:
        LLMError: the model could not be reached.
    """
    turns = _messages(history)[-max_turns:]
    if not turns:
        return question
    ruled = resolve([*(t for role, t in turns if role == "user"), question])
    if ruled != question:  # an elliptical "And Belousov?": the rules know it, the model is not needed
        return ruled
    conversation = [(role, text[:600]) for role, text in turns]
    text = "".join(stream_text(llm, condense_messages(conversation, question))).strip()
    line = next((x for x in text.splitlines() if x.strip()), "")
    line = re.sub(r"^(?:rewritten|standalone)?\s*question\s*:\s*", "", line.strip(), flags=re.I).strip(" \"'„“”*")
    if _usable_rewrite(line, question) and not leaked_names(line, [question, *(t for _, t in conversation)]):
        return line
    return question


def _usable_rewrite(line: str, question: str) -> bool:
    """One question, about as long as a question: not a list item, a transcript line or an answer with [n].

    >>> _usable_rewrite("Who opened the pool in Tannfeld?", "Who opened it?")
    True
    >>> _usable_rewrite("1. Shoigu met [2].", "And who did he meet?")
    False
    """
    return (
        line.endswith("?")
        and 0 < len(line) <= 3 * len(question) + 200
        and not _CITATION.search(line)
        and not re.match(r"^(?:\d+[.)]|user:|assistant:)", line, re.I)
    )


def _where(llm: Any) -> str:
    """The server's address, without any ``user:password@`` in it."""
    for attr in ("openai_api_base", "base_url"):
        value = getattr(llm, attr, None)
        if value:
            return re.sub(r"//[^/@]*@", "//", str(value))
    return type(llm).__name__


def describe(llm: Any) -> str:
    """The model's name and where it runs, for people to read (never the key).

    >>> class M: model_name, openai_api_base = "local", "http://u:pw@127.0.0.1:8080/v1"
    >>> describe(M())
    'local at http://127.0.0.1:8080/v1'
    """
    model = getattr(llm, "model_name", None) or getattr(llm, "model", None) or type(llm).__name__
    where = _where(llm)
    return f"{model} at {where}" if where != type(llm).__name__ else str(model)


_REFUSED = {"BadRequestError", "APIStatusError", "InternalServerError", "ResponseError", "UnprocessableEntityError"}


def _explain(exc: Exception, llm: Any) -> LLMError | None:
    """A one-line error that names the fix, for the failures people actually hit.

    Matched by class name along the MRO, so no client library has to be imported here.
    """
    names = {c.__name__ for c in type(exc).__mro__}
    where = _where(llm)
    model = getattr(llm, "model_name", None) or getattr(llm, "model", None)
    if names & {"APIConnectionError", "ModelConnectionError", "ConnectError", "ConnectTimeout", "ConnectionError"}:
        if names & {"APITimeoutError"}:
            return LLMError(f"{where} did not answer in time: check the server, or use a smaller model or -k")
        return LLMError(f"cannot reach {where}: start the server or fix --base-url")
    if names & {"ReadTimeout", "TimeoutException", "APITimeoutError"}:
        return LLMError(f"{where} did not answer in time: check the server, or use a smaller model or -k")
    if "AuthenticationError" in names:
        return LLMError(f"{where} refused the API key: set OPENAI_API_KEY (or use --base-url for a local server)")
    if "NotFoundError" in names or ("ResponseError" in names and "not found" in str(exc).lower()):
        hint = f"run `ollama pull {model}` or " if "ResponseError" in names else ""
        return LLMError(f"{where} has no model {model!r}: {hint}fix --llm-model")
    if names & _REFUSED:
        message = " ".join(str(exc).split())[:300]
        return LLMError(f"{where} refused the request ({message}); if the prompt is too long, use a smaller -k")
    return None


def stream_text(llm: Any, prompt: str | Sequence[tuple[str, str]], *, max_chars: int = 6 * MAX_TOKENS) -> Iterator[str]:
    """The model's reply, chunk by chunk, as it is generated.

    Args:
        prompt: one user message, or ``("user" | "assistant", text)`` turns ending with a user turn.
        max_chars: where to stop (a server that ignores the token limit cannot run on forever).

    Raises:
        LLMError: the model could not be reached or refused the request.
    """
    from langchain_core.messages import AIMessage, HumanMessage

    turns = [("user", prompt)] if isinstance(prompt, str) else prompt
    messages = [AIMessage(text) if role == "assistant" else HumanMessage(text) for role, text in turns]
    total = 0
    try:
        for chunk in llm.stream(messages, stop=STOP):
            text = (
                chunk.content
                if isinstance(chunk.content, str)
                else "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in chunk.content)
            )
            if text:
                yield text
                total += len(text)
                if total >= max_chars:
                    return
    except Exception as exc:
        explained = _explain(exc, llm)
        if explained is None:
            raise
        raise explained from exc


def _citations_from_hits(engine: AnswerEngine, question: str, k: int) -> list[Citation]:
    """The ``k`` retrieved passages as citations (used when the extractive answerer found no evidence)."""
    documents = engine.loaded().snapshot.documents
    citations = []
    for n, hit in enumerate(engine.retrieve(question, k), 1):
        c = hit.chunk
        doc = documents.get(c.source)
        date = doc.date.isoformat() if doc is not None and doc.date else None
        citations.append(Citation(n, c.source, c.title, c.text, c.start, c.end, round(hit.score, 6), date))
    return citations


NOTES = {
    "not_asked": "The model was not asked: the index holds no good evidence for this question.",
    "removed": "Removed citations that point at no passage: {numbers}.",
    "fallback": "The model's answer cited no passage, so the extractive answer is shown instead.",
    "empty": "The model's answer has no words besides its citations, so the extractive answer is shown instead.",
    "echo": "The model repeated the prompt instead of answering, so the extractive answer is shown instead.",
    "numbers": "The model's answer has numbers that are in no passage ({numbers}), "
    "so the extractive answer is shown instead.",
    "leak": "The model's answer repeats names from the prompt's worked examples ({names}), "
    "so the extractive answer is shown instead.",
    "unsupported": "No sentence of the model's answer is supported by the passage it cites, "
    "so the extractive answer is shown instead.",
    "refused": "The model found no answer in the passages.",
    "condensed": "Searched for: {question}",
}
#: What :func:`answered_by` reports, in the order ``rag eval`` lists them.
ANSWERED_BY = ("model", "fallback", "empty", "echo", "numbers", "leak", "unsupported", "refused", "not_asked")
#: The kinds of :data:`ANSWERED_BY` where the extractive answer replaced the model's.
REPLACED = ("fallback", "empty", "echo", "numbers", "leak", "unsupported")


def answered_by(answer: Answer) -> str:
    """Who wrote a final answer of :func:`answer_stream`, read from its notes.

    ``"model"``: the model's own answer with valid citations; ``"fallback"``, ``"empty"``, ``"echo"``,
    ``"numbers"``, ``"leak"``, ``"unsupported"``: replaced by the extractive answer (no valid citation,
    nothing but citations, a repeated prompt, an invented number, a name copied from a worked example,
    no sentence supported by its cited passage);
    ``"refused"``: the model said the passages hold no answer; ``"not_asked"``: no good evidence,
    so the model was not asked.

    >>> answered_by(Answer("Am 28. Februar [1].", False, notes=("Removed citations that point at no passage: [7].",)))
    'model'
    >>> answered_by(Answer("Freitag — „…“ [1]", False, notes=(NOTES["fallback"],)))
    'fallback'
    """
    for kind in ANSWERED_BY[1:]:
        head = NOTES[kind].split("{", 1)[0]
        if any(note.startswith(head) for note in answer.notes):
            return kind
    return "model"


@dataclass(frozen=True)
class Prepared:
    """What the model is to be asked, worked out before it is asked.

    ``passages`` are numbered as the model sees them (``[1]`` first); ``extractive`` is the
    answer to fall back on; ``final`` is set when the model is not to be asked at all;
    ``claim_checker`` builds the :class:`rag.llm.claims.ClaimChecker` for the passages (by default
    one without a model: the lexical checks only).
    """

    question: str
    standalone: str
    language: str
    passages: tuple[Citation, ...]
    extractive: Answer
    notes: tuple[str, ...] = ()
    final: Answer | None = None
    claim_checker: Callable[[Sequence[Citation]], ClaimChecker] | None = None


def prepare(
    question: str,
    llm: Any,
    *,
    engine: AnswerEngine,
    k: int = PASSAGES,
    history: Sequence[Any] = (),
    gate: bool = True,
) -> Prepared:
    """Condense a follow-up, retrieve the passages and the extractive answer (the first half of :func:`answer_stream`).

    A chat shows ``passages`` as the sources while :func:`generate` streams the answer.
    """
    language = analyse(question).language
    notes: list[str] = []
    standalone = condense_question(history, question, llm) if history else question
    if standalone != question:
        notes.append(NOTES["condensed"].format(question=standalone))
    asked = engine.ask(standalone, k=k)
    extractive = replace(asked, language=language, question=question)
    if extractive.abstained and gate:
        # Abstention first: the extractive gates say the fact is not in the articles, so the model is not
        # asked to invent one. The extractive text (which may say what the articles do hold) is kept.
        text = asked.text if asked.language == language else NOT_FOUND[language]
        return Prepared(
            question, standalone, language, (), extractive, tuple(notes),
            replace(extractive, text=text, notes=(*notes, NOTES["not_asked"])),
        )  # fmt: skip
    passages = tuple(extractive.citations or _citations_from_hits(engine, standalone, k))
    final: Answer | None = None
    if not passages:
        final = replace(extractive, text=NOT_FOUND[language], abstained=True, notes=tuple(notes))
    checker = functools.partial(ClaimChecker.for_engine, engine=engine)
    return Prepared(question, standalone, language, passages, extractive, tuple(notes), final, checker)


def generate(prepared: Prepared, llm: Any) -> Iterator[str | Answer]:
    """Ask the model and check its answer (the second half of :func:`answer_stream`): text chunks, then the Answer.

    Raises:
        LLMError: the model could not be reached or refused the request.
    """
    if prepared.final is not None:
        yield prepared.final
        return
    passages, language, question = prepared.passages, prepared.language, prepared.question
    notes = list(prepared.notes)
    checker = CitationFilter(len(passages))
    # Each sentence is held back until the claim check has passed it (rag.llm.claims).
    claim_checker = (prepared.claim_checker or ClaimChecker)(passages)
    claims = ClaimFilter(claim_checker)
    for token in stream_text(llm, build_messages(prepared.standalone, passages)):
        shown = checker.feed(token)
        passed = claims.feed(shown) if shown else ""
        # "" while a sentence waits for its check: one piece per token, so a caller can stop between
        # tokens (the chat's Stop) instead of waiting for the next checked sentence.
        yield passed
    passed = claims.feed(checker.flush()) + claims.flush()
    if passed:
        yield passed
    check = checker.result()
    checked = tuple(claims.claims)
    if check.invalid:
        notes.append(NOTES["removed"].format(numbers=", ".join(f"[{n}]" for n in check.invalid)))
    if not check.valid and is_refusal(check.text):
        yield Answer(NOT_FOUND[language], True, [], language, question, (*notes, NOTES["refused"]), claims=checked)
        return
    kept = claims.text
    problem = None
    if not check.valid:
        problem = NOTES["fallback"]
    elif _ECHO.search(check.text):
        problem = NOTES["echo"]
    elif not _CITATION.search(kept):
        problem = NOTES["unsupported"]
    elif not _WORD.search(_CITATION.sub(" ", kept)):
        problem = NOTES["empty"]
    elif invented := unsupported_numbers(kept, passages):
        problem = NOTES["numbers"].format(numbers=", ".join(invented))
    elif copied := leaked_names(kept, [f"{c.title} {c.passage}" for c in passages]):
        problem = NOTES["leak"].format(names=", ".join(copied))
    if problem:
        # The extractive answer quotes the passages verbatim: nothing in it can be invented.
        yield replace(prepared.extractive, notes=(*notes, problem), claims=checked)
        return
    yield Answer(kept, False, list(passages), language, question, tuple(notes), claims=checked)


def answer_stream(
    question: str,
    llm: Any,
    *,
    engine: AnswerEngine | None = None,
    index_dir: Any = None,
    k: int = PASSAGES,
    history: Sequence[Any] = (),
    gate: bool = True,
) -> Iterator[str | Answer]:
    """Answer with a language model, streaming: yields text chunks, then the final :class:`Answer`.

    The chunks are the model's words with invalid citations already removed; the
    final ``Answer`` is what to keep and show (its text may be the extractive
    answer when the model cited nothing valid), with ``notes`` saying what was
    changed. Its citations are the passages the model saw, numbered as in the text.

    Args:
        question: in English or German; with ``history``, a follow-up is first rewritten
            into a standalone question (:func:`condense_question`).
        llm: any LangChain chat model (see :func:`chat_model`).
        engine: a :class:`rag.Engine`; by default the shared one for ``index_dir``.
        k: passages to give the model.
        history: earlier turns of a chat, oldest first.
        gate: skip the model and abstain when the extractive answerer finds no good evidence.

    Raises:
        LLMError: the model could not be reached or refused the request.
        QuestionError: empty or over-long question.
    """
    if engine is None:
        from pathlib import Path

        from rag.engine import engine_for

        engine = engine_for(Path(index_dir) if index_dir else None)
    yield from generate(prepare(question, llm, engine=engine, k=k, history=history, gate=gate), llm)


def answer(question: str, llm: Any, **kwargs: Any) -> Answer:
    """:func:`answer_stream` without the streaming: the final :class:`Answer` (same arguments)."""
    final = None
    for item in answer_stream(question, llm, **kwargs):
        if isinstance(item, Answer):
            final = item
    assert final is not None
    return final


def chat_model(
    provider: str,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    temperature: float = 0.0,
    max_tokens: int = MAX_TOKENS,
    timeout: float = 120.0,
) -> Any:
    """A LangChain chat model for ``provider``: ``"openai"`` (any OpenAI-compatible endpoint) or ``"ollama"``.

    Args:
        model: the model name; default ``gpt-4o-mini`` on OpenAI, ``local`` on another
            OpenAI-compatible server (llama.cpp's ignores it), ``gemma3:270m`` on Ollama.
        base_url: e.g. ``http://127.0.0.1:8080/v1`` for llama.cpp's server or vLLM; Ollama's
            default is ``http://127.0.0.1:11434``.
        api_key: for OpenAI itself; a placeholder is sent to other servers when it is None.

    Raises:
        LLMError: unknown provider, missing key, or the ``llm`` extra is not installed.
    """
    if provider not in PROVIDERS:
        raise LLMError(f"unknown LLM provider {provider!r}: use one of {', '.join(PROVIDERS)}")
    try:
        if provider == "openai":
            from langchain_openai import ChatOpenAI
            from pydantic import SecretStr
        else:
            from langchain_ollama import ChatOllama
    except ImportError as exc:
        raise LLMError(f"--llm {provider} needs the llm extra: pip install -e '.[llm]' ({exc.name} missing)") from exc
    if provider == "ollama":
        return ChatOllama(
            model=model or DEFAULT_MODELS["ollama"],
            base_url=base_url or OLLAMA_URL,
            temperature=temperature,
            num_predict=max_tokens,
            client_kwargs={"timeout": timeout},
        )
    if api_key is None and base_url is None:
        raise LLMError("--llm openai needs OPENAI_API_KEY in the environment, or --base-url for a local server")
    return ChatOpenAI(
        model=model or (LOCAL_MODEL if base_url else DEFAULT_MODELS["openai"]),
        base_url=base_url,
        api_key=SecretStr(api_key or PLACEHOLDER_KEY),  # what ChatOpenAI makes of a str
        temperature=temperature,
        max_tokens=max_tokens,  # type: ignore[call-arg]  # a field alias mypy does not see
        timeout=timeout,
        max_retries=1,
        # langchain-openai sends the limit as max_completion_tokens, which llama.cpp's
        # server ignores; local servers get the older max_tokens too.
        extra_body={"max_tokens": max_tokens} if base_url else None,
    )

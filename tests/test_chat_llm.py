"""The chat with an LLM answerer: handlers called directly, then the page served and driven through gradio_client.

The model is the real Gemma 3 270M behind llama.cpp's server (fixture ``llm_server``);
the assertions are about the guarantees (valid citations or a noted fallback, streaming,
the sources the model read), not about the small model's wisdom.
"""

from __future__ import annotations

import re

import gradio as gr
import pytest

from rag.llm.answers import NOTES, answered_by, chat_model
from ui.chat.app import LLM

from .conftest import TEST_TOKENS, chat_app, free_port, served_chat
from .test_chat import SHOIGU, SHOIGU_FILE


def _markers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\[\\?\[?(\d+)\\?\]", text)}


def _source_numbers(message: str) -> set[int]:
    """The numbers of the sources a chat message carries (each source's line starts with its [n])."""
    return {int(n) for n in re.findall(r'^<span class="rag-src">\*\*\[\\\[(\d+)\\\]\]', message, re.MULTILINE)}


def _answer_part(message: str) -> str:
    return re.split(r"\n\*\*(?:Sources|Quellen)\*\*\n|\n<details>", message, maxsplit=1)[0]


def _answered_by(notes: list[str]) -> str:
    from rag import Answer

    return answered_by(Answer("", False, notes=tuple(notes)))


def _assert_checked(message: str) -> None:
    """The chat's final message: cited answer whose every [n] is among its sources, or a refusal with its note."""
    text = _answer_part(message)
    if _markers(text):
        assert _markers(text) <= _source_numbers(message), message
    else:
        assert "Not found in the indexed articles." in text, text
        assert NOTES["refused"] in text or NOTES["not_asked"] in text, text


@pytest.fixture
def llm_app(tmp_path, seed_index, embedder, llm):
    return chat_app(tmp_path, seed_index, embedder, llm=llm, llm_label="gemma3-270m (test)")


@pytest.mark.slow
def test_llm_answer_streams_then_carries_the_passages_it_read(llm_app):
    updates = list(llm_app.respond(SHOIGU, [], LLM))
    assert len(updates) >= 1  # each sentence once the claim check passed it, then the final answer
    # the final message lists the passages the model read: the cited ones, the others folded
    assert SHOIGU_FILE in updates[-1] and _source_numbers(updates[-1]) == {1, 2, 3}
    _assert_checked(updates[-1])


@pytest.mark.slow
def test_api_ask_with_the_llm_returns_checked_data(llm_app):
    data = llm_app.ask(SHOIGU, answerer=LLM)
    assert _markers(data["text"]) <= {c["n"] for c in data["citations"]}
    if _answered_by(data["notes"]) != "model":
        assert data["notes"], data


@pytest.mark.slow
def test_llm_follow_up_is_condensed_with_the_chat_history(llm_app):
    history = [
        {"role": "user", "content": SHOIGU},
        {"role": "assistant", "content": "According to [1], Shoigu visited Beijing on Friday, 28 February 2025 [1]."},
    ]
    updates = list(llm_app.respond("And who did he meet there?", history, LLM))
    _assert_checked(updates[-1])
    # The rewritten question is shown when the model changed it, and it was searched for.
    if updates[-1].startswith("*Understood as:"):
        assert NOTES["condensed"].format(question="").strip() in updates[-1]


@pytest.mark.slow
def test_extractive_stays_the_default(llm_app):
    data = llm_app.ask(SHOIGU)
    assert data["text"].startswith("Friday, 28 February 2025") and not data["notes"]


@pytest.mark.slow
def test_unreachable_server_is_one_readable_line(tmp_path, seed_index, embedder):
    # Slow: the model is asked only when the real model finds evidence (the fake's answer abstains first).
    url = f"http://127.0.0.1:{free_port()}/v1"
    app = chat_app(tmp_path, seed_index, embedder, llm=chat_model("openai", base_url=url, timeout=5))
    [shown] = app.respond(SHOIGU, [], LLM)  # said in the chat, which stays usable
    assert shown.startswith("⚠️ cannot reach http") and shown.endswith(": start the server or fix --base-url")
    with pytest.raises(gr.Error, match="cannot reach"):
        app.ask(SHOIGU, answerer=LLM)


def test_llm_choice_without_a_model_names_the_fix(tmp_path, fake_index, fake_embedder):
    app = chat_app(tmp_path, fake_index, fake_embedder)
    [shown] = app.respond(SHOIGU, [], LLM)
    assert shown.startswith("⚠️") and "--llm openai --base-url" in shown
    with pytest.raises(gr.Error, match="unknown answerer 'gpt'"):
        app.ask(SHOIGU, answerer="gpt")


# ---- served ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm_client(tmp_path_factory, seed_index, embedder, llm_server):
    from gradio_client import Client

    llm = chat_model("openai", base_url=llm_server, max_tokens=TEST_TOKENS, timeout=180)
    root = tmp_path_factory.mktemp("chat-llm")
    with served_chat(root, seed_index, embedder, llm=llm, llm_label="gemma3-270m") as served:
        yield Client(served.url, verbose=False, download_files=False)


@pytest.mark.slow
def test_served_chat_streams_the_llm_answer(llm_client):
    job = llm_client.submit(SHOIGU, LLM, api_name="/chat")
    message = job.result(timeout=300)
    updates = job.outputs()
    assert len(updates) >= 1 and SHOIGU_FILE in message
    _assert_checked(message)


@pytest.mark.slow
def test_served_ask_takes_the_answerer(llm_client):
    data = llm_client.predict(SHOIGU, "", LLM, api_name="/ask")
    assert _markers(data["text"]) <= {c["n"] for c in data["citations"]}
    if _answered_by(data["notes"]) == "model":
        assert _markers(data["text"]) and not data["abstained"]
    else:
        assert data["notes"], data
    # existing callers: question only, extractive answer
    assert llm_client.predict(SHOIGU, api_name="/ask")["text"].startswith("Friday, 28 February 2025")

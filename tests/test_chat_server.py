"""The chat served for real, driven through ``gradio_client``: ask, upload, ask again, remove."""

from __future__ import annotations

import pytest

from .test_chat import NEW_ARTICLE, SHOIGU, SHOIGU_FILE


@pytest.fixture(scope="module")
def client(chat_server):
    from gradio_client import Client

    url, _app = chat_server
    return Client(url, verbose=False, download_files=False)


def _sources(data: dict) -> set[str]:
    return {c["source"] for c in data["citations"]}


@pytest.mark.slow
def test_api_ask_answers_with_sources(client):
    data = client.predict(SHOIGU, api_name="/ask")
    assert "Friday, 28 February 2025" in data["text"] and "[1]" in data["text"]
    assert data["citations"][0]["source"] == SHOIGU_FILE
    assert data["citations"][0]["date"] == "2025-02-28"


@pytest.mark.slow
def test_api_ask_follow_up(client):
    data = client.predict("And Belousov?", SHOIGU, api_name="/ask")
    assert data["question"] == "When did Belousov visit Beijing?" and "14 October 2024" in data["text"]


@pytest.mark.slow
def test_chat_endpoint_returns_the_answer_with_its_sources(client):
    job = client.submit(SHOIGU, api_name="/chat")
    message = job.result(timeout=120)
    assert message.startswith('<span class="rag-short">Friday, 28 February 2025') and SHOIGU_FILE in message


@pytest.mark.slow
def test_upload_ask_remove(client, tmp_path):
    from gradio_client import handle_file

    question = "Wann eröffnete Ramona Quast die Brücke?"
    article = tmp_path / "xylofon.txt"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    table, status, _files = client.predict([handle_file(str(article))], False, api_name="/upload")
    assert "Added 1 article" in status and "xylofon.txt" in [row[0] for row in table["data"]]

    data = client.predict(question, api_name="/ask")
    assert data["citations"][0]["source"] == "xylofon.txt"

    table, status = client.predict(["xylofon.txt"], api_name="/remove")
    assert (
        "moved to the trash: xylofon.txt" in status
        and "Removed 1 article" in status
        and "xylofon.txt" not in [row[0] for row in table["data"]]
    )
    assert "xylofon.txt" not in _sources(client.predict(question, api_name="/ask"))


@pytest.mark.slow
def test_bad_upload_is_reported_and_nothing_is_lost(client, tmp_path):
    from gradio_client import handle_file

    bad = tmp_path / "leer.txt"
    bad.write_bytes(b"")
    _table, status, _files = client.predict([handle_file(str(bad))], False, api_name="/upload")
    assert status.startswith("⚠️") and "leer.txt: empty file" in status  # kept on the page, not a toast
    assert SHOIGU_FILE in _sources(client.predict(SHOIGU, api_name="/ask"))

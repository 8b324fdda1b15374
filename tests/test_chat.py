"""The chat's handlers, called directly (no server): answers, sources, follow-ups, uploads, removal."""

from __future__ import annotations

import shutil
import threading

import gradio as gr
import pytest

from embeddings import DocumentError
from rag import Answer, Citation
from ui.chat import ChatApp, parse_auth, safe_filename, user_questions
from ui.render import sources_html

SHOIGU = "When did Shoigu visit Beijing?"
SHOIGU_FILE = "003_5d407fa9e5e9a813.txt"
NEW_ARTICLE = (
    "title: Neue Brücke in Xylofon\n"
    "date: 2025-03-03\n\n"
    "Die Bürgermeisterin von Xylofon, Ramona Quast, eröffnete am Montag die neue Hängebrücke über die Zeller. "
    "Die Brücke ist 240 Meter lang und verbindet die Altstadt mit dem Bahnhof.\n"
)
HOSTILE = '<script>window.__xss = 1</script> <img src=x onerror="window.__xss = 2">'


# ---- pure helpers (fast) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("artikel.txt", "artikel.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\win\\evil.md", "evil.md"),
        ("nul\x00byte.txt", "nul_byte.txt"),
        (".hidden.html", "hidden.html"),
        ("Über Peking (2).PDF", "Über_Peking_2_.pdf"),
    ],
)
def test_safe_filename_stays_in_the_folder(name, expected):
    assert safe_filename(name) == expected


@pytest.mark.parametrize("name", ["", "..", "/", "noext", "virus.exe", "archive.tar.gz", ".txt"])
def test_safe_filename_refuses_what_cannot_be_indexed(name):
    with pytest.raises(DocumentError):
        safe_filename(name)


def test_user_questions_reads_both_content_shapes():
    history = [
        {"role": "user", "content": "When did Shoigu visit Beijing?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Friday [1]"}]},
        {"role": "user", "content": [{"type": "text", "text": "And Belousov?"}]},
    ]
    assert user_questions(history) == ["When did Shoigu visit Beijing?", "And Belousov?"]
    assert user_questions([]) == []


def test_parse_auth(tmp_path):
    assert parse_auth(None) is None
    assert parse_auth("anna:ge:heim") == ("anna", "ge:heim")
    secret = tmp_path / "auth"
    secret.write_text("bob:pw\n", encoding="utf-8")
    assert parse_auth(str(secret)) == ("bob", "pw")
    for bad in ("anna", "anna:", ":pw"):
        with pytest.raises(ValueError):
            parse_auth(bad)


def test_sources_escape_article_text():
    passage = f"Vorher. {HOSTILE} Nachher."
    citation = Citation(1, "x<script>.txt", f"Titel {HOSTILE}", passage, 0, len(passage), 0.5, None, (8, 20))
    html = sources_html(Answer("a [1]", False, [citation]), asked=HOSTILE)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "onerror=&quot;" in html
    assert "<mark>" in html


# ---- handlers (the real model's answers are slow; the fake's handle the rest) ---------------------


@pytest.fixture
def app(tmp_path, seed_index, embedder, corpus):
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index, index_dir)
    chat = ChatApp(index_dir, corpus, embedder)
    chat.sync()  # same files, new folder: nothing to embed
    return chat


@pytest.fixture
def fake_app(tmp_path, fake_index, fake_embedder, corpus):
    """The handlers over the fake embedder's index: for what does not depend on the model's judgement."""
    index_dir = tmp_path / "index"
    shutil.copytree(fake_index, index_dir)
    chat = ChatApp(index_dir, corpus, fake_embedder)
    chat.sync()
    return chat


def _stream(app, message, history=()):
    updates = list(app.respond(message, list(history)))
    return updates, updates[-1][0], updates[-1][1]


@pytest.mark.slow
def test_answer_streams_with_markers_and_sources(app):
    updates, text, sources = _stream(app, SHOIGU)
    assert len(updates) > 1 and all(text.startswith(t) for t, _ in updates)  # grows, never rewrites
    assert text.startswith("Friday, 28 February 2025") and "[1]" in text
    assert SHOIGU_FILE in sources and "2025-02-28" in sources and "<mark>" in sources
    assert "Understood as" not in sources


@pytest.mark.slow
def test_answer_in_the_question_language(app):
    _, text, sources = _stream(app, "Wann besuchte Belousow Peking?")
    assert text.startswith("Montag, 14. Oktober 2024") and "[1]" in text
    assert "004_35a91f1ce311ecb5.txt" in sources


@pytest.mark.slow
def test_follow_up_uses_the_previous_turn(app):
    history = [{"role": "user", "content": SHOIGU}, {"role": "assistant", "content": "Friday, 28 February 2025 [1]"}]
    _, text, sources = _stream(app, "And Belousov?", history)
    assert text.startswith("Monday, 14 October 2024")
    assert "Understood as" in sources and "When did Belousov visit Beijing?" in sources


@pytest.mark.slow
def test_api_ask_returns_structured_answer(app):
    data = app.ask(SHOIGU)
    assert data["text"].startswith("Friday, 28 February 2025") and data["abstained"] is False
    assert data["citations"][0]["source"] == SHOIGU_FILE
    assert {"n", "title", "passage", "date", "highlight"} <= set(data["citations"][0])
    assert app.ask("And Belousov?", previous_question=SHOIGU)["question"] == "When did Belousov visit Beijing?"


def test_empty_question_is_a_readable_error(fake_app):
    app = fake_app
    with pytest.raises(gr.Error, match="empty question"):
        list(app.respond("   ", []))


@pytest.mark.slow
def test_upload_ask_remove(app, tmp_path):
    upload = tmp_path / "uploads" / "xylofon.txt"
    upload.parent.mkdir()
    upload.write_text(NEW_ARTICLE, encoding="utf-8")
    seen = []
    rows, status = app.upload([str(upload)], progress=lambda fraction, desc="": seen.append((fraction, desc)))
    assert "added 1" in status and (app.corpus_dir / "xylofon.txt").is_file()
    row = next(r for r in rows if r[0] == "xylofon.txt")
    assert row[1] == "Neue Brücke in Xylofon" and row[2] == "2025-03-03" and row[3] >= 1
    assert seen and seen[-1][0] == 1.0 and any("Embedding" in desc for _, desc in seen)

    answer, _ = app.answer("Wann eröffnete Ramona Quast die Brücke?")
    assert not answer.abstained and answer.citations[0].source == "xylofon.txt"

    rows, status = app.remove("xylofon.txt")
    assert "removed 1" in status and "xylofon.txt" not in {r[0] for r in rows}
    assert not (app.corpus_dir / "xylofon.txt").exists()
    answer, _ = app.answer("Wann eröffnete Ramona Quast die Brücke?")
    assert "xylofon.txt" not in {c.source for c in answer.citations}


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.txt", b"", "empty"),
        ("binary.txt", b"\x00\xff\x00\x01", "binary file"),
        ("latin.txt", "Grüße aus Köln".encode("latin-1"), "UTF-8"),
        ("broken.pdf", b"%PDF-1.4 not really", "pdf"),
        ("tool.exe", b"MZ", "unsupported file type"),
    ],
)
def test_bad_upload_is_an_error_and_loses_nothing(fake_app, tmp_path, name, content, message):
    app = fake_app
    before = app.documents()
    files_before = sorted(p.name for p in app.corpus_dir.iterdir())
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(gr.Error) as info:
        app.upload([str(bad)])
    assert message.lower() in info.value.message.lower()
    assert app.documents() == before and sorted(p.name for p in app.corpus_dir.iterdir()) == files_before


def test_remove_refuses_unknown_and_outside_names(fake_app):
    app = fake_app
    before = app.documents()
    for name in ("nope.txt", "../seeds/003_5d407fa9e5e9a813.txt", "", None):
        with pytest.raises(gr.Error):
            app.remove(name)
    assert app.documents() == before


def test_rescan_picks_up_files_changed_outside(fake_app):
    app = fake_app
    (app.corpus_dir / "neu.md").write_text("# Neu\n\nTokajew besuchte Astana.\n", encoding="utf-8")
    (app.corpus_dir / "001_9e99df9deeaf148b.txt").unlink()
    rows, status = app.rescan()
    names = {r[0] for r in rows}
    assert "neu.md" in names and "001_9e99df9deeaf148b.txt" not in names
    assert "added 1" in status and "removed 1" in status


@pytest.mark.slow
def test_answering_goes_on_while_indexing(app, tmp_path):
    """The writer is held inside index_paths (lock taken, embedding under way) while a question is answered."""
    upload = tmp_path / "xylofon.txt"
    upload.write_text(NEW_ARTICLE, encoding="utf-8")
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold(fraction, desc=""):
        if desc.startswith("Embedding") and fraction < 1.0:
            inside.set()
            release.wait(60)

    def run():
        try:
            app.upload([str(upload)], progress=hold)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    writer = threading.Thread(target=run)
    writer.start()
    try:
        assert inside.wait(60), "indexing never reached the embedding stage"
        answer, _ = app.answer(SHOIGU)  # would hang here if readers waited for the writer
        assert answer.text.startswith("Friday, 28 February 2025")
        assert "xylofon.txt" not in {r[0] for r in app.documents()}  # still the old snapshot
    finally:
        release.set()
        writer.join(60)
    assert not errors and "xylofon.txt" in {r[0] for r in app.documents()}

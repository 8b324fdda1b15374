"""The chat's handlers, called directly (no server): answers, sources, follow-ups, uploads, removal."""

from __future__ import annotations

import shutil
import threading

import gradio as gr
import pytest

from rag import Answer, Citation
from rag.answerer import final_answer
from ui.chat.app import ChatApp, parse_auth, user_questions
from ui.chat.render import message_markdown, sources_html

SHOIGU = "When did Shoigu visit Beijing?"
SHOIGU_FILE = "003_5d407fa9e5e9a813.txt"
NEW_ARTICLE = (
    "title: Neue Brücke in Xylofon\n"
    "date: 2025-03-03\n\n"
    "Die Bürgermeisterin von Xylofon, Ramona Quast, eröffnete am Montag die neue Hängebrücke über die Zeller. "
    "Die Brücke ist 240 Meter lang und verbindet die Altstadt mit dem Bahnhof.\n"
)
SHORT = '<span class="rag-short">'  # how a chat message starts when the answer leads with its short fact
HOSTILE = '<script>window.__xss = 1</script> <img src=x onerror="window.__xss = 2">'


# ---- pure helpers (fast) ------------------------------------------------------------------------


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


def _stream(app, message, history=(), **options):
    updates = list(app.respond(message, list(history), **options))
    return updates, updates[-1]


def test_the_short_fact_leads_and_quotes_are_marked_with_their_language():
    """Issue 24, 2: the short fact on its own line first; the German quote ``lang="de"`` in an English answer."""
    passage = "Kirby sagte, Putin sei sehr unter Druck und Stress."
    cited = Citation(1, "a.txt", "Kirby über Putin", passage, 0, len(passage), 0.5, "2025-02-28", (0, len(passage)))
    answer = Answer(f"28 February 2025 — “{passage}” [1]", False, [cited], "en", short="28 February 2025")
    text = message_markdown(answer)
    assert text.startswith('<span class="rag-short">28 February 2025</span>\n')
    assert f'<span lang="de">“{passage}”</span> [\\[1\\]]' in text


def test_sources_are_numbered_in_the_order_the_answer_cites_them():
    """Issue 24, 6: [2], [4], [5], [3] in the sources; now the first cited is [1], the next [2], ..."""
    cites = [Citation(n, f"{n}.txt", f"T{n}", "Satz.", 0, 5, 0.5) for n in (1, 2, 3)]
    text = message_markdown(Answer("„A“ [3] und „B“ [1].", False, cites, "de"))
    assert "[\\[1\\]](?article=3.txt" in text and "[\\[2\\]](?article=1.txt" in text
    assert text.index("T3") < text.index("T1") < text.index("T2")


def test_answer_message_links_its_sources_cited_first_others_folded():
    passage = f"Vorher. Xi traf Schoigu. {HOSTILE}"
    cited = Citation(1, "a.txt", "Titel", passage, 100, 100 + len(passage), 0.5, "2025-02-28", (8, 24))
    also = Citation(2, "a.txt", "Titel", "Noch eine Stelle.", 300, 317, 0.4)
    other = Citation(3, "b.txt", "Anderes", "Etwas anderes.", 0, 14, 0.3)
    text = message_markdown(Answer("Freitag — „Xi traf Schoigu.“ [1]", False, [cited, also, other], "de"))
    head, folded = text.split("<details>")
    assert "[\\[1\\]](?article=a.txt&at=108-124)" in head  # [n] opens its article at the sentence
    assert head.count('<span class="rag-src">') == 1 and "b.txt" not in head  # only what is cited
    assert "Titel &#40;2025-02-28&#41;" in head  # named by title (date), the file name only in the link
    assert "Außerdem gefunden (2)" in folded and "b.txt" in folded and folded.count('<span class="rag-src">') == 2
    assert "<script" not in text and "<img" not in text and "<mark>Xi traf Schoigu.</mark>" in text


@pytest.mark.slow
def test_answer_arrives_with_markers_and_its_own_sources(app):
    _, text = _stream(app, SHOIGU)
    assert text.startswith(f"{SHORT}Friday, 28 February 2025") and "[\\[1\\]](?article=" + SHOIGU_FILE in text
    assert SHOIGU_FILE in text and "2025-02-28" in text and "<mark>" in text
    assert "Understood as" not in text


@pytest.mark.slow
def test_answer_in_the_question_language(app):
    _, text = _stream(app, "Wann besuchte Belousow Peking?")
    assert text.startswith(f"{SHORT}Montag, 14. Oktober 2024") and "**Quellen**" in text
    assert "004_35a91f1ce311ecb5.txt" in text


@pytest.mark.slow
def test_follow_up_uses_the_previous_turn(app):
    history = [{"role": "user", "content": SHOIGU}, {"role": "assistant", "content": "Friday, 28 February 2025 [1]"}]
    _, text = _stream(app, "And Belousov?", history)
    assert text.startswith("*Understood as: When did Belousov visit Beijing?*")
    assert "Monday, 14 October 2024" in text


@pytest.mark.slow
def test_pronoun_follow_up_is_rewritten_or_asks_to_rephrase(app):
    history = [{"role": "user", "content": SHOIGU}, {"role": "assistant", "content": "Friday [1]"}]
    _, text = _stream(app, "Who did he meet there?", history)
    assert text.startswith("*Understood as: Who did Shoigu meet in Beijing?*")
    _, text = _stream(app, "Who did he meet there?", [])
    assert text.startswith("⚠️") and "Please ask again with the name" in text


@pytest.mark.slow
def test_api_ask_returns_structured_answer(app):
    data = app.ask(SHOIGU)
    assert data["text"].startswith("Friday, 28 February 2025") and data["abstained"] is False
    assert data["citations"][0]["source"] == SHOIGU_FILE
    assert {"n", "title", "passage", "date", "highlight"} <= set(data["citations"][0])
    assert app.ask("And Belousov?", previous_question=SHOIGU)["question"] == "When did Belousov visit Beijing?"


@pytest.mark.slow
@pytest.mark.parametrize("message", ["", "   ", "\n\t", "x" * 2001, "Who is he?"])
def test_refused_question_is_a_message_not_an_error(app, message, caplog):
    with caplog.at_level("INFO", logger="rag.chat"):
        updates, text = _stream(app, message)
    assert len(updates) == 1 and text.startswith("⚠️ ")
    assert [r.getMessage().count("\n") for r in caplog.records] == [0] and not caplog.records[0].exc_info
    with pytest.raises(gr.Error):  # the data API still says it is an error
        app.answer(message)


@pytest.mark.slow
def test_passages_setting_limits_the_sources(app):
    _, text = _stream(app, SHOIGU, passages=2)
    assert 1 <= text.count('<span class="rag-src">') <= 2


@pytest.mark.slow
def test_documents_setting_limits_the_search(app):
    other = "004_35a91f1ce311ecb5.txt"
    answer = final_answer(app.answerer(documents=[other]), SHOIGU)
    assert {c.source for c in answer.citations} <= {other}  # that article only (or no answer from it)
    assert {h.chunk.source for h in app.engine.retrieve(SHOIGU, 5, sources=frozenset([other]))} == {other}
    _, text = _stream(app, SHOIGU, documents=[SHOIGU_FILE])
    assert SHOIGU_FILE in text and other not in text
    _, text = _stream(app, SHOIGU, documents=[])  # none chosen: all
    assert text.startswith(f"{SHORT}Friday, 28 February 2025")


@pytest.mark.slow
def test_article_view_shows_the_whole_article_with_the_sentence_marked(app):
    data = app.ask(SHOIGU)
    c = data["citations"][0]
    start, end = c["start"] + c["highlight"][0], c["start"] + c["highlight"][1]
    html = app.article(c["source"], f"{start}-{end}")
    document = app.engine.loaded().snapshot.documents[c["source"]]
    assert SHOIGU_FILE in html and "2025-02-28" in html and len(html) > len(document.text)
    assert f'<mark id="rag-highlight">{document.text[start:end]}</mark>' in html
    assert "not in the index" in app.article("nope.txt", "1-2") and app.article(None) == ""


def test_a_follow_up_that_could_not_be_read_never_blocks_the_next_question(fake_app):
    """Issue 24, 1: "Who did he meet there?" first, a rephrase request; the next questions are answered."""
    history: list[dict] = []
    for question in ("Was hat er gesagt?", "Who did he meet there?", SHOIGU, "And Belousov?"):
        _, text = _stream(fake_app, question, history)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": text}]
    replies = [m["content"] for m in history if m["role"] == "assistant"]
    assert replies[0].startswith("⚠️") and "beginnt neu" in replies[0]
    assert replies[1].startswith("⚠️") and "starts afresh" in replies[1]
    assert not replies[2].startswith("⚠️")
    assert not replies[3].startswith("⚠️") and "Understood as: When did Belousov visit Beijing?" in replies[3]


def test_empty_question_is_a_readable_message(fake_app):
    [shown] = fake_app.respond("   ", [])
    assert shown.startswith("⚠️") and "empty question" in shown
    with pytest.raises(gr.Error, match="empty question"):
        fake_app.answer("   ")


@pytest.mark.slow
def test_upload_ask_remove(app, tmp_path):
    upload = tmp_path / "uploads" / "xylofon.txt"
    upload.parent.mkdir()
    upload.write_text(NEW_ARTICLE, encoding="utf-8")
    seen = []
    rows, status = app.upload([str(upload)], progress=lambda fraction, desc="": seen.append((fraction, desc)))
    assert "Added 1 article" in status and (app.corpus_dir / "xylofon.txt").is_file()
    row = next(r for r in rows if r[0] == "xylofon.txt")
    assert row[1] == "Neue Brücke in Xylofon" and row[2] == "2025-03-03" and row[3] >= 1
    assert seen and seen[-1][0] == 1.0 and any("Embedding" in desc for _, desc in seen)

    answer, _ = app.answer("Wann eröffnete Ramona Quast die Brücke?")
    assert not answer.abstained and answer.citations[0].source == "xylofon.txt"

    rows, status = app.remove("xylofon.txt")
    assert "Removed 1 article" in status and "xylofon.txt" not in {r[0] for r in rows}
    assert not (app.corpus_dir / "xylofon.txt").exists()
    answer, _ = app.answer("Wann eröffnete Ramona Quast die Brücke?")
    assert "xylofon.txt" not in {c.source for c in answer.citations}

    rows, status = app.restore("xylofon.txt")  # removed files wait in the trash
    assert "restored xylofon.txt" in status and "xylofon.txt" in {r[0] for r in rows}
    answer, _ = app.answer("Wann eröffnete Ramona Quast die Brücke?")
    assert answer.citations[0].source == "xylofon.txt"


@pytest.mark.slow
def test_replace_an_article_and_the_new_fact_is_cited(app, tmp_path):
    upload = tmp_path / "xylofon.txt"
    upload.write_text(NEW_ARTICLE, encoding="utf-8")
    app.upload([str(upload)])
    upload.write_text(NEW_ARTICLE.replace("240 Meter", "310 Meter"), encoding="utf-8")
    with pytest.raises(gr.Error, match="replace it"):
        app.upload([str(upload)])
    _, status = app.upload([str(upload)], replace=True)
    assert "replaced xylofon.txt" in status and "Updated 1 article" in status
    answer, _ = app.answer("Wie lang ist die Hängebrücke in Xylofon?")
    cited = " ".join(c.passage for c in answer.citations if c.source == "xylofon.txt")
    assert "310 Meter" in cited and "240 Meter" not in cited


@pytest.mark.slow
def test_mixed_batch_adds_the_good_files_and_names_each_bad_one(app, tmp_path):
    good = tmp_path / "xylofon.txt"
    good.write_text(NEW_ARTICLE, encoding="utf-8")
    (tmp_path / "leer.txt").write_bytes(b"")
    (tmp_path / "tool.exe").write_bytes(b"MZ")
    rows, status = app.upload([str(tmp_path / "leer.txt"), str(good), str(tmp_path / "tool.exe")])
    assert "xylofon.txt" in {r[0] for r in rows} and "added xylofon.txt" in status
    assert "refused leer.txt: empty file" in status and "refused tool.exe: unsupported file type" in status


@pytest.mark.slow
def test_a_skipped_file_in_the_folder_can_be_removed(app):
    (app.corpus_dir / "kaputt.txt").write_bytes(b"Gr\x00\x00sse aus K\x00ln")  # NUL bytes: binary, not text
    _, status = app.rescan()
    assert "skipped kaputt.txt" in status
    _, status = app.remove(["kaputt.txt"])
    assert "moved to the trash: kaputt.txt" in status and not (app.corpus_dir / "kaputt.txt").exists()


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.txt", b"", "empty"),
        ("binary.txt", b"\x00\xff\x00\x01", "binary file"),
        ("broken.txt", "Grüße aus Köln ".encode() + b"\xc3\x28", "UTF-8"),
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


def test_a_latin1_upload_is_converted_with_a_note(fake_app, tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Grüße aus Köln: die Brücke über den Rhein wird gesperrt.".encode("latin-1"))
    _rows, status = fake_app.upload([str(latin)])
    assert "added latin.txt" in status and "note latin.txt: not UTF\\-8: converted from cp1252" in status
    assert fake_app.engine.loaded().snapshot.documents["latin.txt"].text.startswith("Grüße aus Köln")
    fake_app.remove(["latin.txt"])


def test_the_followed_feeds_are_listed_with_when_each_was_last_read(fake_app):
    from embeddings.sources.feeds import STATE_FILE, FeedState

    assert fake_app.feeds_markdown() == ""
    state = FeedState(fake_app.index_dir / STATE_FILE)
    state.feeds["https://example.org/feed.xml"] = {
        "title": "Harbour <b>Daily</b>",
        "last_read": "2025-03-04T08:00:00+00:00",
        "added": 3,
    }
    state.save()
    shown = fake_app.feeds_markdown()
    assert "Harbour &lt;b&gt;Daily&lt;/b&gt;: last read 2025\\-03\\-04T08:00:00\\+00:00, 3 added" in shown


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
    assert "Added 1 article" in status and "Removed 1 article" in status


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


def test_a_stopped_answer_ends_at_its_next_piece_and_only_then_frees_its_slot():
    """Issue 24, 11: Stop leaves the page at once; the thread making a piece runs to that piece's end."""
    from ui.chat.app import _DONE, _Pieces
    from ui.chat.slots import Busy, Slots

    slots, may_go, started = Slots(), threading.Event(), threading.Event()

    def answer():
        with slots.hold("reader"):
            yield "Friday"
            started.set()
            may_go.wait(5)  # a language model reading the passages
            yield "Friday, 28 February"
            yield "never made"

    pieces = _Pieces(answer())
    assert pieces.next() == "Friday"
    worker = threading.Thread(target=lambda: made.append(pieces.next()))
    made: list = []
    worker.start()
    assert started.wait(5)
    assert pieces.stop() is False  # a thread is making a piece: it is closed when that is done
    with pytest.raises(Busy), slots.hold("reader"):  # the server is still busy with it: the slot is held
        pass
    may_go.set()
    worker.join(5)
    assert pieces.finished.wait(5) and made == ["Friday, 28 February"]
    assert pieces.next() is _DONE  # nothing more is made once stopped
    with slots.hold("reader"):  # closed: its slot is free again
        pass

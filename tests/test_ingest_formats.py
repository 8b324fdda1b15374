"""Readers of the formats people have: legacy encodings (a note, not a refusal), .docx, HTML main text,
and the corpus's repeated lines dropped as boilerplate (issue 27). Fast tier: the fake embedder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from embeddings import index_paths
from embeddings.readers.cleaning import LINES_FILE, LineTable
from embeddings.readers.files import DocumentError, read_document

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
NEWS = ROOT / "tests" / "data" / "news"
BOILERPLATE = ("Leave a Comment", "Your email address will not be published", "cookie", "Subscribe now",
               "Related articles", "seafarer77", "Share this article", "All rights reserved")  # fmt: skip

LATIN1 = "Grüße aus Köln: Die Brücke über den Rhein wird im März für Fußgänger gesperrt, sagte Bürgermeisterin Jäger."
CP1252 = "„Wir müssen die Straßenbahn bis Öhringen verlängern“, sagte der Bürgermeister – am Dienstag in Heilbronn."


def _index(corpus: Path, index_dir: Path, embedder):
    return index_paths([corpus], index_dir, embedder)


def test_latin1_and_windows1252_files_are_indexed_with_their_umlauts_and_a_note(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "latin1.txt").write_bytes(LATIN1.encode("latin-1"))
    (corpus / "cp1252.txt").write_bytes(CP1252.encode("cp1252"))
    report = _index(corpus, tmp_path / "index", fake_embedder)
    assert set(report.added) == {"latin1.txt", "cp1252.txt"} and not report.skipped
    assert {n.source for n in report.notes} == {"latin1.txt", "cp1252.txt"}
    assert all("not UTF-8: converted from" in n.reason for n in report.notes)
    assert read_document(corpus / "latin1.txt").text == LATIN1
    assert read_document(corpus / "cp1252.txt").text == CP1252


def test_utf8_with_broken_bytes_is_still_refused(tmp_path):
    f = tmp_path / "kaputt.txt"
    f.write_bytes("Grüße aus Köln. ".encode() + b"\xc3\x28 kaputt.")
    with pytest.raises(DocumentError, match="not valid UTF-8"):
        read_document(f)


def _docx(path: Path, paragraphs: list[str], title: str = "") -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(path)


def test_a_docx_is_read_and_retrieved(tmp_path, fake_embedder):
    from rag import Engine

    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    _docx(
        corpus / "protokoll.docx",
        ["Der Gemeinderat von Kleinmachnow beschloss am Montag, das Hallenbad am Seeberg zu sanieren.",
         "Die Sanierung des Hallenbads kostet 7,5 Millionen Euro und beginnt im Juni."],
        title="Hallenbad wird saniert",
    )  # fmt: skip
    doc = read_document(corpus / "protokoll.docx")
    assert doc.title == "Hallenbad wird saniert" and "7,5 Millionen Euro" in doc.text
    _index(corpus, tmp_path / "index", fake_embedder)
    hits = Engine(tmp_path / "index", embedder=fake_embedder).retrieve("Wie viel kostet die Sanierung des Hallenbads?")
    assert hits[0].chunk.source == "protokoll.docx"  # answered with the real model: tests/test_news_web.py


def test_a_damaged_docx_is_refused_with_the_fix(tmp_path):
    f = tmp_path / "kaputt.docx"
    f.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DocumentError, match=r"kaputt.docx: unreadable .*save the article's text as .txt"):
        read_document(f)


def test_html_in_the_folder_is_read_to_its_main_text_and_metadata(tmp_path):
    f = tmp_path / "harbour-ferry.html"
    shutil.copy(NEWS / "harbour-ferry.html", f)
    doc = read_document(f)
    assert doc.title == "Harbour ferry line to Tallinn resumes after storm damage"
    assert str(doc.date) == "2025-03-04" and doc.metadata["outlet"] == "Harbour Daily"
    assert "Jussi Korhonen" in doc.text and "no jobs were at risk" in doc.text
    assert not [b for b in BOILERPLATE if b.lower() in doc.text.lower()]


def test_html_markup_limits_still_gate_the_page(tmp_path):
    f = tmp_path / "flood.html"
    f.write_text("<p>Text</p><!-- never closed " + "x" * 1000, encoding="utf-8")
    with pytest.raises(DocumentError, match="never closed"):
        read_document(f)


def _outlet_article(n: int, story: str) -> str:
    return (f"Baltic Courier – your news from the coast\n\nArtikel {n}: {story}\n\n"
            "Leave a Comment\nYour email address will not be published.\n")  # fmt: skip


STORIES = [
    "Die Fähre nach Tallinn fährt seit Dienstag wieder sechsmal am Tag, sagte der Hafenmeister.",
    "Der Stadtrat erhöht die Brückenmaut zum Jahreswechsel um zehn Prozent auf 2,75 Euro.",
    "Das neue Wasserwerk in Warnemünde soll im Herbst 2027 fertig sein und 48 Millionen Euro kosten.",
]


def test_lines_repeated_across_files_are_dropped_and_explained(tmp_path, fake_embedder, capsys):
    from ui.cli import main

    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    for n, story in enumerate(STORIES[:2], 1):
        (corpus / f"a{n}.txt").write_text(_outlet_article(n, story), encoding="utf-8")
    _index(corpus, index_dir, fake_embedder)  # two files: a shared line may be a quote; kept
    assert "Leave a Comment" in read_document(corpus / "a1.txt").text
    (corpus / "a3.txt").write_text(_outlet_article(3, STORIES[2]), encoding="utf-8")
    _index(corpus, index_dir, fake_embedder)
    from embeddings.stores.embedded.store import open_snapshot

    text = open_snapshot(index_dir).documents["a3.txt"].text
    assert text.strip() == f"Artikel 3: {STORIES[2]}"
    assert main(["index", "--explain-cleaning", str(corpus / "a3.txt"), "--index-dir", str(index_dir)]) == 0
    out = capsys.readouterr().out
    assert "dropped   'Leave a Comment' (also in 2 other files: a1.txt, a2.txt)" in out
    assert "Your email address will not be published." in out and "Artikel 3" not in out
    # the files indexed before the line became common lose it when read again (--rebuild reads all)
    index_paths([corpus], index_dir, fake_embedder, rebuild=True)
    assert "Leave a Comment" not in open_snapshot(index_dir).documents["a1.txt"].text


def test_the_seed_articles_lose_no_line(tmp_path, fake_embedder):
    """`rag eval` on the seeds gives the same answers: no seed line repeats in three files, so none is dropped."""
    _index(SEEDS, tmp_path / "index", fake_embedder)
    from embeddings.stores.embedded.store import open_snapshot

    view = open_snapshot(tmp_path / "index")
    names = sorted(view.manifest.files)
    assert len(names) == 5
    for name in names:
        assert view.documents[name].text == read_document(SEEDS / name).text, name
    table = LineTable(tmp_path / "index" / LINES_FILE)
    from embeddings.readers.cleaning import line_keys

    assert not table.repeated(k for name in names for k in line_keys(view.documents[name].text))


def test_the_extractor_child_is_killed_after_its_time_budget():
    from embeddings.readers.extract_worker import ExtractBudgetError, extract

    with pytest.raises(ExtractBudgetError, match=r"reading the page took longer than 0.05 s \(the limit\)"):
        extract("html", b"<html><body><p>Text.</p></body></html>", seconds=0.05)


def test_a_word_file_that_unpacks_to_too_much_is_refused_by_the_memory_budget(tmp_path):
    """A zip bomb: 200 MB of paragraphs packed into a few hundred KB."""
    import zipfile

    from embeddings.readers.extract_worker import ExtractBudgetError, extract

    bomb = tmp_path / "bomb.docx"
    _docx(tmp_path / "ok.docx", ["Ein Absatz."])
    with zipfile.ZipFile(tmp_path / "ok.docx") as ok, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for item in ok.infolist():
            if item.filename != "word/document.xml":
                out.writestr(item, ok.read(item))
        body = b"<w:p><w:r><w:t>Absatz</w:t></w:r></w:p>" * (200 * 2**20 // 40)
        head = ok.read("word/document.xml").split(b"<w:body>")[0]
        out.writestr("word/document.xml", head + b"<w:body>" + body + b"</w:body></w:document>")
    assert bomb.stat().st_size < 2 * 2**20
    with pytest.raises(ExtractBudgetError, match=r"needed more than 256 MB of memory|took longer than"):
        extract("docx", bomb.read_bytes(), memory_bytes=256 * 2**20)

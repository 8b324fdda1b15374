"""Markdown and PDF articles read as a reader sees them: no markup in the text, sentences whole across lines."""

from __future__ import annotations

import datetime as dt

from embeddings import read_document, split_sentences
from embeddings.readers.markdown_text import markdown_to_text
from embeddings.readers.reflow import reflow

from .support.pdf import assemble

MARKDOWN = """---
title: Neue Gas-Leitstelle in Xylofon
date: 2025-03-03
---

# Neue Gas-Leitstelle in Xylofon

Der Betreiber der **Gasleitung** hat am Montag in [Xylofon](https://example.invalid/x) eine neue Leitstelle eröffnet.
Sie überwacht *rund 400 Kilometer* Leitungen.

## Hintergrund

> Die alte Leitstelle war seit 1998 in Betrieb.

- Die Kosten lagen bei `12 Millionen Euro`.
"""
WRAPPED = [
    "title: Neue Brücke in Xylofon",
    "date: 2025-03-03",
    "Die Bürgermeisterin von Xylofon, Ramona Quast, eröffnete am Montag die neue",
    "Hängebrücke über die Zeller. Die Brücke ist 240 Meter lang und verbin-",
    "det die Altstadt mit dem Bahnhof, wie die Stadtverwaltung mitteilte.",
    "Der Bau der Brücke dauerte zwei Jahre und kostete nach Angaben der Stadt",
    "rund 18 Millionen Euro.",
]


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def text_pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text layer holds ``lines`` as printed lines (Helvetica, WinAnsi: umlauts work)."""
    ops = []
    for i, line in enumerate(lines):
        escaped = line.encode("cp1252").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
        ops.append(b"BT /F1 10 Tf 50 %d Td (" % (780 - 14 * i) + escaped + b") Tj ET")
    stream = b"\n".join(ops)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    return assemble(objects)


def test_markdown_is_read_without_markup_and_front_matter_is_metadata(tmp_path):
    f = tmp_path / "leitstelle.md"
    f.write_text(MARKDOWN, encoding="utf-8")
    doc = read_document(f)
    assert doc.title == "Neue Gas-Leitstelle in Xylofon" and doc.date == dt.date(2025, 3, 3)
    assert doc.date_origin == "header"
    for mark in ("#", "**", "](", "`", "> ", "- ", "---", "title:"):
        assert mark not in doc.text, mark
    found = sentences(doc.text)
    assert found[0] == "Der Betreiber der Gasleitung hat am Montag in Xylofon eine neue Leitstelle eröffnet."
    assert "Hintergrund" not in doc.text  # a heading is not a sentence to quote
    assert "Die alte Leitstelle war seit 1998 in Betrieb." in found
    assert "Die Kosten lagen bei 12 Millionen Euro." in found


def test_markdown_title_from_the_first_heading_without_front_matter():
    text, meta = markdown_to_text("Neue Leitstelle\n===\n\nText *eins*.\n\n***\n\nZwei.")
    assert meta == {"title": "Neue Leitstelle"}
    assert text == "Text eins.\n\nZwei."


def test_pdf_sentences_are_whole_across_lines_and_hyphenation(tmp_path):
    f = tmp_path / "bruecke.pdf"
    f.write_bytes(text_pdf(WRAPPED))
    doc = read_document(f)
    assert doc.title == "Neue Brücke in Xylofon" and doc.date == dt.date(2025, 3, 3)  # a header, as in .txt
    assert doc.date_origin == "header" and "title:" not in doc.text
    assert sentences(doc.text) == [
        "Die Bürgermeisterin von Xylofon, Ramona Quast, eröffnete am Montag die neue Hängebrücke über die Zeller.",
        "Die Brücke ist 240 Meter lang und verbindet die Altstadt mit dem Bahnhof, wie die Stadtverwaltung mitteilte.",
        "Der Bau der Brücke dauerte zwei Jahre und kostete nach Angaben der Stadt rund 18 Millionen Euro.",
    ]


def test_reflow_keeps_compounds_paragraphs_and_headings():
    assert reflow("Die Gas-\nLeitstelle ist neu und wurde am Montag von der Stadt eröffnet.") == (
        "Die Gas-Leitstelle ist neu und wurde am Montag von der Stadt eröffnet."
    )
    two = "Erster Absatz, der lang genug ist, um eine ganze Zeile zu füllen.\n\nZweiter Absatz."
    assert reflow(two) == two
    assert reflow("Kurz\nDer Text danach ist eine lange Zeile, die bis an den Rand der Spalte reicht.").startswith(
        "Kurz\n"
    )
    assert reflow("") == ""

"""Reading files: headers, HTML, encodings, and one clear error per bad file."""

from __future__ import annotations

import datetime as dt

import pytest

from embeddings import DocumentError, read_document
from embeddings.language.dates import find_dates, infer_date

from .conftest import SEEDS


def test_header_is_metadata_not_text(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("title: Schoigu in Peking\ndate: 2025-02-28\n\nXi traf am Freitag Schoigu.\n", encoding="utf-8")
    doc = read_document(f)
    assert doc.title == "Schoigu in Peking"
    assert doc.date == dt.date(2025, 2, 28) and doc.date_origin == "header"
    assert doc.text.startswith("Xi traf") and "title:" not in doc.text


def test_text_that_looks_like_a_header_is_kept(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("Quelle: irgendwo\n\nText.", encoding="utf-8")
    assert read_document(f).text.startswith("Quelle: irgendwo")


def test_html_main_text_only(tmp_path):
    f = tmp_path / "a.html"
    f.write_text(
        "<html><head><title>Titel</title><script>var x='Werbung';</script></head><body>"
        "<nav>Menü Startseite</nav><article><h1>Überschrift</h1><p>"
        + "Der Hauptinhalt des Artikels steht hier. " * 8
        + "</p></article><footer>Impressum</footer></body></html>",
        encoding="utf-8",
    )
    doc = read_document(f)
    assert doc.title == "Überschrift"  # trafilatura's: the headline
    assert "Hauptinhalt" in doc.text
    for noise in ("Werbung", "Menü", "Impressum", "<p>"):
        assert noise not in doc.text


def test_seed_dates_are_inferred():
    assert read_document(SEEDS / "003_5d407fa9e5e9a813.txt").date == dt.date(2025, 2, 28)
    assert read_document(SEEDS / "004_35a91f1ce311ecb5.txt").date == dt.date(2024, 10, 14)


def test_date_forms():
    text = "am 14. Oktober 2024, February 28, 2025, 2023-05-01, 3.7.2022 und im März 2021"
    found = [m.date.isoformat() if m.date else (m.year, m.month) for m in find_dates(text)]
    assert found == ["2024-10-14", "2025-02-28", "2023-05-01", "2022-07-03", (2021, 3)]
    assert infer_date("Kein Datum hier.") is None


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.txt", b"", "empty file"),
        ("blank.txt", b"  \n\t\n", "empty file"),
        ("binary.txt", b"\x00\x01\x02binary\x00", "binary file"),
        ("broken-utf8.txt", "Grüße ".encode() + b"\xc3\x28", "not valid UTF-8"),
        ("page.pdf", b"not really a pdf", "not a PDF"),
        ("image.png", b"\x89PNG", "unsupported file type"),
    ],
)
def test_bad_files_name_the_file_and_the_fix(tmp_path, name, content, message):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(DocumentError) as err:
        read_document(f)
    assert message in str(err.value) and name in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DocumentError, match="no such file"):
        read_document(tmp_path / "nope.txt")


def test_utf16_bom_and_crlf_are_read(tmp_path):
    f = tmp_path / "u16.txt"
    f.write_bytes("Zeile eins.\r\nGrüße.".encode("utf-16"))
    assert read_document(f).text == "Zeile eins.\nGrüße."

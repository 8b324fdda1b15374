"""Sentences and chunks: offsets always round-trip, German punctuation is understood."""

from __future__ import annotations

import itertools

import pytest

from embeddings import ChunkingConfig, Document, chunk_document, read_document, split_sentences
from embeddings.chunking import chunk_spans

from .conftest import SEEDS

AWKWARD = [
    "",
    "   \n\n  ",
    "Ein Satz ohne Punkt",
    "Emoji 🎉 und Umlaute: Grüße aus Köln. Noch ein Satz! Und?",
    "Am 14. Oktober 2024 traf er ein. Am 3. Mai kam z. B. Dr. Li an.",
    '„Wir sind Freunde.“ Danach ging er. "Quoted." Next one.',
    "Zeile eins\r\nZeile zwei\n\n\nZeile drei",
    "x" * 5000,
    ("Wort " * 2000).strip(),
    "a.b.c. d! e? f… g",
]


def _doc(text: str) -> Document:
    return Document("t.txt", text, "t", "hash")


@pytest.mark.parametrize("text", AWKWARD + [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))])
def test_offsets_round_trip(text):
    for s, e in split_sentences(text):
        assert 0 <= s < e <= len(text)
        assert text[s:e] == text[s:e].strip()
    config = ChunkingConfig()
    chunks = chunk_document(_doc(text), config)
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert len(chunk.text) <= config.max_chars
    # Together the chunks cover every sentence of the text.
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    for s, e in split_sentences(text):
        assert all(i in covered for i in range(s, e) if not text[i].isspace())


def test_chunks_are_ordered_and_overlap_by_at_most_a_sentence():
    text = " ".join(f"Das ist Satz Nummer {i} mit ein paar Wörtern mehr." for i in range(60))
    spans = chunk_spans(text, ChunkingConfig(max_chars=300, min_chars=100, overlap_sentences=1))
    assert len(spans) > 5
    for (s1, e1), (s2, e2) in itertools.pairwise(spans):
        assert s1 < s2 and e1 < e2
        overlap = text[s2:e1] if s2 < e1 else ""
        assert len(split_sentences(overlap)) <= 1


def test_german_sentence_rules():
    text = "Belousow traf am 14. Oktober 2024 in Peking ein. Er sagte: „Wir sind Partner.“ Dong Jun u. a. stimmten zu."
    sentences = [text[s:e] for s, e in split_sentences(text)]
    assert sentences == [
        "Belousow traf am 14. Oktober 2024 in Peking ein.",
        "Er sagte: „Wir sind Partner.“",
        "Dong Jun u. a. stimmten zu.",
    ]


def test_seed_chunks_keep_provenance():
    doc = read_document(SEEDS / "003_5d407fa9e5e9a813.txt")
    chunks = chunk_document(doc)
    assert chunks and all(c.source == "003_5d407fa9e5e9a813.txt" and c.title == doc.title for c in chunks)
    assert chunks[0].start == 0

"""The German-English dictionary compiled once: same translations as the text, rebuilt when stale or damaged."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from rag.answering.lexicon import (
    DEFAULT_PATH,
    EMPTY,
    CompiledError,
    Lexicon,
    compiled_path,
    load,
    open_compiled,
    parse_file,
)

# Invented lines in the dictionary's format (German senses :: English senses, group by group).
LINES = [
    "# a comment line",
    "Reise {f} | Reisen {pl} :: journey; trip | journeys; trips",
    "Werft {f} | Werften {pl} :: shipyard; dockyard | shipyards; dockyards",
    "Versorgung {f} [econ.] :: supply",
    "Übung {f} | Übungen {pl} :: exercise; drill | exercises; drills",
    "Fähre {f} | Fähren {pl} :: ferry",
    "jagen {vt} :: to hunt",
    "Größe {f} :: größe; size",
    "Café {n} :: café",
]
WORDS = ["trip", "trips", "journey", "shipyard", "dockyards", "supply", "supplied", "drills", "hunting", "hunt",
         "ferry", "size", "café", "größe", "unknown", "", "a", "zzz", "émigré"]  # fmt: skip


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fresh_load(source: Path, cache: Path) -> Lexicon:
    return load.__wrapped__(source, cache)  # not the per-process memo: every call reads the disk


def test_the_compiled_dictionary_translates_as_the_text_does(tmp_path):
    source = write(tmp_path / "de-en", LINES)
    parsed = Lexicon.parse(LINES)
    compiled = fresh_load(source, tmp_path / "cache")
    assert compiled_path(source, tmp_path / "cache").is_file()
    assert len(compiled) == len(parsed) and dict(compiled.entries.items()) == parsed.entries
    for word in WORDS:
        assert compiled.translations(word) == parsed.translations(word), word
    assert sorted(compiled.translations("trips")) == ["reise", "reisen"]
    again = fresh_load(source, tmp_path / "cache")  # the second process maps the same file
    assert again.translations("drills") == parsed.translations("drills")


def test_a_changed_dictionary_is_compiled_again(tmp_path):
    source = write(tmp_path / "de-en", LINES)
    cache = tmp_path / "cache"
    assert not fresh_load(source, cache).translations("lighthouse")
    write(source, [*LINES, "Leuchtturm {m} :: lighthouse"])
    os.utime(source, ns=(1, 1))  # even with an old modification time: the size differs
    assert fresh_load(source, cache).translations("lighthouse") == {"leuchtturm"}
    write(source, [*LINES, "Leuchtfeuer {n} :: lighthouse"])  # same size, other text, old time kept
    os.utime(source, ns=(1, 1))
    assert fresh_load(source, cache).translations("lighthouse") == {"leuchtfeuer"}


def test_two_parser_versions_sharing_a_cache_keep_a_file_each(tmp_path, monkeypatch):
    """Two installations of different versions (other stop words) on one machine: each compiled the
    other's file away at every start (7 s), as the file was named by the dictionary only."""
    from rag.answering import lexicon

    source = write(tmp_path / "de-en", LINES)
    cache = tmp_path / "cache"
    files = []
    for version in ("3-aaaa", "3-bbbb"):
        monkeypatch.setattr(lexicon, "_parser_tag", lambda version=version: version)
        fresh_load(source, cache)
        files.append(compiled_path(source, cache))
    assert files[0] != files[1] and all(f.is_file() for f in files)
    stamps = [f.stat().st_mtime_ns for f in files]
    for version in ("3-aaaa", "3-bbbb"):  # each version opens its own file, compiles nothing
        monkeypatch.setattr(lexicon, "_parser_tag", lambda version=version: version)
        assert fresh_load(source, cache).translations("trips") == {"reise", "reisen"}
    assert [f.stat().st_mtime_ns for f in files] == stamps


def test_a_damaged_compiled_file_is_detected_and_rebuilt(tmp_path, caplog):
    source = write(tmp_path / "de-en", LINES)
    cache = tmp_path / "cache"
    fresh_load(source, cache)
    target = compiled_path(source, cache)
    data = bytearray(target.read_bytes())
    data[-3] ^= 0xFF  # a flipped byte in the German words
    target.write_bytes(bytes(data))
    with pytest.raises(CompiledError, match="checksum"):
        open_compiled(target, source)
    with caplog.at_level(logging.WARNING, logger="rag.answering.lexicon"):
        rebuilt = fresh_load(source, cache)
    assert "checksum" in caplog.text and str(target) in caplog.text
    assert rebuilt.translations("trip") == Lexicon.parse(LINES).translations("trip")
    open_compiled(target, source)  # sound again
    target.write_bytes(b"not a dictionary at all")
    with pytest.raises(CompiledError, match="magic"):
        open_compiled(target, source)
    assert fresh_load(source, cache).translations("trip") == {"reise"}


def test_no_dictionary_is_the_empty_lexicon(tmp_path):
    assert fresh_load(tmp_path / "missing", tmp_path / "cache") is EMPTY
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_parses_in_memory_and_says_so(tmp_path, caplog):
    source = write(tmp_path / "de-en", LINES)
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a file where the cache folder should be
    with caplog.at_level(logging.WARNING, logger="rag.answering.lexicon"):
        lexicon = fresh_load(source, blocked)
    assert lexicon.translations("trip") == {"reise"}
    assert "cannot write the compiled dictionary" in caplog.text


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_PATH.is_file(), reason="trans-de-en is not installed")
def test_the_system_dictionary_compiles_to_the_same_table(tmp_path):
    parsed = parse_file(DEFAULT_PATH)
    compiled = fresh_load(DEFAULT_PATH, tmp_path)
    assert len(parsed) > 50_000 and dict(compiled.entries.items()) == parsed.entries

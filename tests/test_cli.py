"""The command line: index, ask, eval; bad input gives one line and a non-zero exit."""

from __future__ import annotations

import json
import re

import pytest

from ui.cli import main

from .conftest import DEV_SET, SEEDS


@pytest.mark.slow
def test_ask_prints_answer_and_sources(cli_env, capsys):
    assert main(["ask", "When did Shoigu visit Beijing?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Friday, 28 February 2025")
    assert "[1] " in out and "003_5d407fa9e5e9a813.txt" in out


@pytest.mark.slow
def test_ask_json(cli_env, capsys):
    assert main(["ask", "--json", "Wann traf Xi Jinping Schoigu?"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["abstained"] is False and data["citations"][0]["source"] == "003_5d407fa9e5e9a813.txt"


def test_index_reports_changes(fake_cli_env, corpus, capsys):
    assert main(["index", str(corpus)]) == 0  # same files, new root: nothing to embed
    out = capsys.readouterr().out
    assert "0 chunks embedded" in out and "unchanged 5" in out
    (corpus / "neu.txt").write_text("Ein neuer Artikel über Tokajew und Kasachstan.\n", encoding="utf-8")
    (corpus / "001_9e99df9deeaf148b.txt").unlink()
    assert main(["index", "--json", str(corpus)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == ["neu.txt"] and report["removed"] == ["001_9e99df9deeaf148b.txt"]


def test_eval_prints_metrics(fake_cli_env, capsys):
    assert main(["eval", str(DEV_SET)]) == 0
    out = capsys.readouterr().out
    for label in ("source hit@1", "source hit@3", "MRR", "answer accuracy", "abstention accuracy", "latency p95"):
        assert label in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ask", ""], "empty question"),
        (["index", "/does/not/exist"], "no such file or folder"),
        (["eval", "/does/not/exist.jsonl"], "no such file"),
        (["ask", "--model", "another-model", "Wer?"], "was built with"),
    ],
)
def test_bad_input_one_line_no_traceback(fake_cli_env, capsys, argv, message):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_bad_files_are_skipped_with_reason(cli_env, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text("Ein guter Artikel über Peking und Moskau.\n", encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x00\xff\x00")
    (folder / "latin.txt").write_bytes("Grüße".encode("latin-1"))
    assert main(["index", "--index-dir", str(tmp_path / "fresh"), str(folder)]) == 0
    out = capsys.readouterr().out
    assert "added     good.txt" in out
    for name in ("empty.txt", "binary.txt"):
        assert f"skipped   {name}" in out
    assert "added     latin.txt" in out  # a legacy encoding is converted, with a note


def test_bad_environment_value_is_a_usage_error_not_a_traceback(monkeypatch, capsys):
    from ui.cli import build_parser

    monkeypatch.setenv("RAG_PORT", "siebzig")
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["chat"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "argument --port: invalid int value: 'siebzig'" in err
    assert "Traceback" not in err


BRIDGE = (
    "title: Neue Brücke in Xylofon\ndate: 2025-03-03\n\n"
    "Die Bürgermeisterin von Xylofon, Ramona Quast, eröffnete am Montag die neue Hängebrücke über die Zeller. "
    "Die Brücke ist 240 Meter lang und verbindet die Altstadt mit dem Bahnhof.\n"
)


def test_add_replace_remove_restore(cli_env, corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_CORPUS", str(corpus))
    upload = tmp_path / "bruecke.txt"
    upload.write_text(BRIDGE, encoding="utf-8")
    assert main(["add", str(upload)]) == 0
    assert "added     bruecke.txt" in capsys.readouterr().out
    assert main(["ask", "Wie lang ist die Hängebrücke in Xylofon?"]) == 0
    assert "240 Meter" in capsys.readouterr().out

    upload.write_text(BRIDGE.replace("240 Meter", "310 Meter"), encoding="utf-8")
    assert main(["add", str(upload)]) == 1  # the name is taken: one line saying how to replace
    assert "replace it" in capsys.readouterr().err
    assert main(["add", "--replace", str(upload)]) == 0
    assert main(["ask", "Wie lang ist die Hängebrücke in Xylofon?"]) == 0
    assert "310 Meter" in capsys.readouterr().out

    assert main(["remove", "bruecke.txt"]) == 0
    assert not (corpus / "bruecke.txt").exists()
    assert main(["restore"]) == 0 and "bruecke.txt" in capsys.readouterr().out
    assert main(["restore", "bruecke.txt"]) == 0
    assert "310 Meter" in (corpus / "bruecke.txt").read_text(encoding="utf-8")
    assert main(["remove", "nicht-da.txt"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_ask_prints_an_answer_and_its_sources_or_not_found(fake_cli_env, capsys):
    """The output's shape, whatever the answer: every ``[n]`` in the text has its source block."""
    assert main(["ask", "When did Shoigu visit Beijing?"]) == 0
    out = capsys.readouterr().out
    text, _, sources = out.partition("\nSources:\n")
    for n in set(re.findall(r"\[(\d+)\]", text)):
        assert f"[{n}] " in sources, out
    assert main(["ask", "--json", "Wann traf Xi Jinping Schoigu?"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"text", "citations", "abstained"} <= set(data)


def test_first_run_indexes_the_demo_articles_and_says_so(tmp_path, fake_embedder, monkeypatch, capsys):
    """No index yet at the default place: ``rag ask`` indexes the demo articles first and says so on stderr."""
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RAG_INDEX_DIR", raising=False)
    monkeypatch.setenv("RAG_MODEL", fake_embedder.model_id)
    monkeypatch.setenv("RAG_BACKEND", fake_embedder.backend)  # an environment default is not checked against choices
    assert main(["ask", "Wann traf Xi Jinping Schoigu?"]) == 0
    err = capsys.readouterr().err
    assert "first run: indexing the demo articles" in err
    home = tmp_path / "home"
    assert sorted(p.name for p in (home / "corpus").iterdir()) == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert (home / "index" / "CURRENT").exists()
    assert main(["ask", "Wann traf Xi Jinping Schoigu?"]) == 0
    assert "first run" not in capsys.readouterr().err

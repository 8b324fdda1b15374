"""Concurrency: writers are serialised by the lock; readers answer from consistent snapshots meanwhile."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time

import pytest

from embeddings import open_snapshot, read_document
from embeddings.stores.embedded.verify import check_index
from rag import Engine
from scripts import crash_trials

from .conftest import ROOT, SEEDS

NEW_ARTICLE = """title: Neue Brücke in Tromsø eröffnet
date: 2025-03-03

Die norwegische Stadt Tromsø hat am Montag eine neue Brücke über den Tromsøysund eröffnet.
Die Brücke ist 1.200 Meter lang und verbindet die Insel mit dem Festland, sagte Bürgermeisterin Kari Nilsen.
"""


def _report(proc) -> dict:
    lines = proc.communicate(timeout=600)[0].splitlines()
    assert proc.returncode == 0, lines[-3:]
    return json.loads(next(line for line in lines if line.startswith("done "))[5:])


@pytest.mark.slow
def test_two_indexers_at_once_are_serialised(tmp_path, model_cache):
    seeds = sorted(SEEDS.iterdir())
    x, y = tmp_path / "x", tmp_path / "y"
    x.mkdir()
    y.mkdir()
    for f in seeds[:3]:
        shutil.copy(f, x / f.name)
    for f in seeds[2:]:
        shutil.copy(f, y / f.name)
    index = tmp_path / "index"
    procs = [crash_trials.start_worker(index, corpus, model_cache) for corpus in (x, y)]
    first, second = sorted((_report(p) for p in procs), key=lambda r: r["generation"])
    assert (first["generation"], second["generation"]) == (1, 2)
    # The later run started from what the earlier one committed: it saw the earlier files as
    # indexed (kept or removed them), never an empty index (which interleaving would give).
    earlier = set(first["added"])
    assert set(second["unchanged"]) | set(second["removed"]) == earlier
    later = set(second["unchanged"]) | set(second["added"]) | set(second["updated"])
    assert later in ({f.name for f in x.iterdir()}, {f.name for f in y.iterdir()})
    assert set(open_snapshot(index).documents) == later
    assert check_index(index).ok


def _answers_are_consistent(answer, *folders) -> bool:
    """Every [n] is a citation and every passage is text of its article (in the first folder that has it)."""
    cited = {c.n for c in answer.citations}
    if not {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)} <= cited:
        return False
    for c in answer.citations:
        path = next(f / c.source for f in folders if (f / c.source).exists())
        if c.passage not in read_document(path).text:
            return False
    return True


@pytest.mark.slow
def test_readers_keep_answering_during_an_update_and_then_see_it(tmp_path, seed_index, embedder, model_cache):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    engine = Engine(index, embedder=embedder, cache_dir=model_cache)
    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "dev.jsonl").read_text().splitlines()]
    before = engine.ask("When did Shoigu visit Beijing?")
    deleted = before.citations[0].source

    answered, errors, stop = [], [], threading.Event()
    kept = tmp_path / "kept"  # the old version of every article, for checking passages
    shutil.copytree(SEEDS, kept)

    def reader() -> None:
        i = 0
        while not stop.is_set():
            try:
                answer = engine.ask(questions[i % len(questions)])
                answered.append((time.monotonic(), _answers_are_consistent(answer, kept, corpus)))
            except Exception as exc:  # any error fails the test below
                errors.append(repr(exc))
            i += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        (corpus / "tromso.txt").write_text(NEW_ARTICLE, encoding="utf-8")
        (corpus / deleted).unlink()
        proc = crash_trials.start_worker(index, corpus, model_cache)
        lines = []
        assert crash_trials._read_until(proc, "stage read", lines)
        update_started = time.monotonic()
        report = _report(proc)
        update_ended = time.monotonic()
    finally:
        stop.set()
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert all(ok for _, ok in answered)
    during = [t for t, _ in answered if update_started <= t <= update_ended]
    assert during, "no question was answered while the index was being updated"
    assert report["added"] == ["tromso.txt"] and report["removed"] == [deleted]

    after = engine.ask("Wann wurde die neue Brücke in Tromsø eröffnet?")
    assert after.citations and after.citations[0].source == "tromso.txt"
    again = engine.ask("When did Shoigu visit Beijing?")
    assert deleted not in {c.source for c in again.citations}

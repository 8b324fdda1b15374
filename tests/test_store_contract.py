"""The store contract (tests/store_contract.py) for the embedded store, and what only it promises:
an update writes one small segment, readers reuse the segments they have, segments get merged."""

from __future__ import annotations

import json

import pytest

from embeddings.store import MAX_SEGMENTS, EmbeddedStore
from embeddings.verify import check_index

from .store_contract import ARTICLES, StoreContract, content, write


class TestEmbeddedStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        return EmbeddedStore(tmp_path / "index")


def _segments(index) -> list[str]:
    live = (index / "CURRENT").read_text().strip()
    return [s["name"] for s in json.loads((index / live / "manifest.json").read_text())["segments"]]


def test_an_update_writes_only_the_changed_file_and_readers_reuse_the_rest(tmp_path):
    index = tmp_path / "index"
    store = EmbeddedStore(index)
    first = write(store, ARTICLES)
    (base,) = first.segments
    base_files = {p.name: p.stat().st_mtime_ns for p in (index / base.name).iterdir()}
    second = write(store, {"markt.txt": "Der Markt bleibt. Er ist klein."})
    assert _segments(index) == [base.name, second.segments[1].name]
    assert second.segments[0] is base  # the same opened segment: nothing re-read, nothing rebuilt
    assert len(second.segments[1]) == 2  # the new segment holds only the changed file's chunks
    assert {p.name: p.stat().st_mtime_ns for p in (index / base.name).iterdir()} == base_files
    assert set(second.manifest.segments[0].deleted) == set(first.ids_of("markt.txt"))
    assert check_index(index).ok


def test_many_small_updates_are_merged_and_old_segments_collected(tmp_path):
    index = tmp_path / "index"
    store = EmbeddedStore(index)
    write(store, ARTICLES)
    for n in range(MAX_SEGMENTS + 2):
        view = write(store, {f"neu{n}.txt": f"Artikel Nummer {n}. Er handelt von Booten."})
        assert len(view.segments) <= MAX_SEGMENTS
    assert len(view.documents) == len(ARTICLES) + MAX_SEGMENTS + 2
    assert content(view) == content(EmbeddedStore(index).view())
    # only the segments the last two generations list are on disk
    kept = set(_segments(index))
    previous = sorted(p.name for p in index.glob("gen-*"))[0]
    kept |= {s["name"] for s in json.loads((index / previous / "manifest.json").read_text())["segments"]}
    assert {p.name for p in index.glob("seg-*")} == kept
    assert check_index(index).ok

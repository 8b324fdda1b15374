"""Large segment files: checked by size and head before they are parsed, read whole in the background.

The layout the head relies on (an IVF file ends with its lists' codes and ids) is checked
against the installed FAISS; damage in the head or the size fails the open, damage in the
payload fails every read once the background check has read it, and a store that does not
check in the background (writers, ``rag check``) still reads every file whole first.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from embeddings import index_paths
from embeddings.stores import idle
from embeddings.stores.embedded import segments
from embeddings.stores.embedded.faiss_index import _faiss, build_faiss_index
from embeddings.stores.embedded.store import EmbeddedStore
from embeddings.stores.embedded.verify import check_index
from embeddings.stores.manifest import Head, IndexCorruptError, Manifest, SegmentEntry

from .conftest import SEEDS

HINT = "rag index --rebuild"


def test_an_ivf_file_ends_with_its_lists_codes_and_ids(tmp_path):
    """What :func:`segments.payload_bytes` assumes of the installed FAISS's file layout."""
    faiss = _faiss()
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((2000, 24)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = build_faiss_index(vectors, np.arange(7, 2007, dtype=np.int64), flat_limit=100)
    faiss.write_index(index, str(tmp_path / "v.faiss"))
    raw = (tmp_path / "v.faiss").read_bytes()
    payload = segments.payload_bytes(index)
    ivf = faiss.extract_index_ivf(index)
    lists = []
    for n in range(ivf.nlist):
        size = ivf.invlists.list_size(n)
        lists.append(faiss.rev_swig_ptr(ivf.invlists.get_codes(n), size * ivf.code_size).tobytes())
        lists.append(faiss.rev_swig_ptr(ivf.invlists.get_ids(n), size).tobytes())
    assert 0 < payload < len(raw)
    assert raw[len(raw) - payload :] == b"".join(lists)
    assert segments.payload_bytes(faiss.IndexIDMap2(faiss.IndexFlatIP(24))) == 0  # a flat file is read whole


def test_heads_round_trip_and_a_bad_head_is_damage(tmp_path):
    entry = SegmentEntry("seg-1", 3, {"a": "xxh3_128:00"}, (1,), {"a": Head(100, 10, "xxh3_128:ff")})
    assert SegmentEntry.from_dict(json.loads(json.dumps(entry.to_dict()))) == entry
    assert "heads" not in SegmentEntry("seg-1", 3, {"a": "x"}).to_dict()  # older readers see what they knew
    for bad in ({"a": [100, 200, "x"]}, {"a": "x"}, {"b": [1, 1, "x"]}, [1]):
        data = {"model": "m", "dim": 2, "format": 3, "segments": [dict(entry.to_dict(), heads=bad)]}
        with pytest.raises(IndexCorruptError, match="unreadable manifest"):
            Manifest.from_json(json.dumps(data), tmp_path / "manifest.json")


@pytest.fixture
def ivf_index(tmp_path, fake_embedder, monkeypatch) -> Path:
    """The seeds indexed into one IVF segment whose every file counts as large."""
    monkeypatch.setattr(segments, "LARGE_FILE", 0)
    path = tmp_path / "index"
    index_paths([SEEDS], EmbeddedStore(path, flat_limit=16), fake_embedder)
    return path


def _segment(index: Path) -> Path:
    gen = index / (index / "CURRENT").read_text().strip()
    return index / json.loads((gen / "manifest.json").read_text())["segments"][0]["name"]


def _flip(path: Path, at: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0x20
    path.write_bytes(bytes(raw))


def test_a_clean_index_opens_on_heads_and_is_checked_whole_later(ivf_index):
    view = EmbeddedStore(ivf_index, check_in_background=True).view()
    (seg,) = view.segments
    assert set(seg.entry.heads) == set(segments.FILES)
    faiss_head = seg.entry.heads["vectors.faiss"]
    assert faiss_head.length == faiss_head.size - segments.payload_bytes(seg.index) < faiss_head.size
    seg.wait_checked(60)
    assert seg.checked_whole
    assert view.dense_search(view.vectors([int(seg.ids[0])])[0], 3)[0][0] == int(seg.ids[0])


def test_payload_damage_is_found_in_the_background_and_fails_later_reads(ivf_index, fake_embedder):
    from rag import Engine

    _flip(_segment(ivf_index) / "vectors.faiss", -3)  # an id of the last list: parsed by no one at open
    view = EmbeddedStore(ivf_index, check_in_background=True).view()  # the head holds: it opens
    (seg,) = view.segments
    with pytest.raises(IndexCorruptError, match=rf"vectors\.faiss is damaged.*{HINT}"):
        seg.wait_checked(60)
    with pytest.raises(IndexCorruptError, match=HINT):
        view.dense_search(np.ones(fake_embedder.dim, np.float32), 3)
    with pytest.raises(IndexCorruptError, match=HINT):
        view.document(next(iter(view.manifest.files)))

    engine = Engine(ivf_index, embedder=fake_embedder)  # what `rag ask` and the chat open
    with pytest.raises(IndexCorruptError, match=HINT):
        engine.loaded().snapshot.segments[0].wait_checked(60)
    with pytest.raises(IndexCorruptError, match=HINT):
        engine.ask("When did Shoigu visit Beijing?")

    with pytest.raises(IndexCorruptError, match=r"vectors\.faiss is damaged"):
        EmbeddedStore(ivf_index).view()  # writers and copies read every file whole first
    assert any("vectors.faiss is damaged" in p for p in check_index(ivf_index).problems)


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("vectors.faiss", lambda p: _flip(p, 20)),  # the header: FAISS must never parse it
        ("rows.npy", lambda p: _flip(p, 10)),  # the .npy header
        ("chunks.sqlite", lambda p: p.write_bytes(p.read_bytes()[:-4096])),  # truncated: the size tells
        ("tf.npy", lambda p: p.write_bytes(p.read_bytes() + b"\0")),  # grown: the size tells
    ],
)
def test_head_or_size_damage_fails_the_open(ivf_index, name, damage):
    damage(_segment(ivf_index) / name)
    with pytest.raises(IndexCorruptError, match=rf"{re.escape(name)} is damaged.*{HINT}"):
        EmbeddedStore(ivf_index, check_in_background=True).view()


def test_a_writer_of_the_answering_store_reads_whole_files(ivf_index, fake_embedder, tmp_path):
    """A segment opened on its heads is not handed to a writer, which would copy unchecked vectors on."""
    store = EmbeddedStore(ivf_index, flat_limit=16, check_in_background=True)
    reader_seg = store.view().segments[0]
    writer_seg = store.view(eager=False).segments[0]
    assert writer_seg is not reader_seg or reader_seg.checked_whole
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "sport.txt").write_text("Der FC Musterstadt gewann am Samstag mit 3:1 gegen Beispielhausen.\n")
    index_paths([SEEDS, extra], store, fake_embedder)
    assert "sport.txt" in {Path(s).name for s in store.view().manifest.files}


@pytest.mark.skipif(not hasattr(__import__("os"), "SCHED_IDLE"), reason="Linux scheduling classes")
def test_the_background_check_yields_the_cpu_to_answers():
    import os
    import threading

    seen = {}

    def probe():
        idle.lower_priority()
        seen["policy"] = os.sched_getscheduler(threading.get_native_id())

    worker = threading.Thread(target=probe)
    worker.start()
    worker.join()
    assert seen["policy"] == os.SCHED_IDLE
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the caller's own thread keeps its class

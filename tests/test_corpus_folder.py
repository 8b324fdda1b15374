"""The corpus folder's file operations: save, replace, remove to the trash, restore; always in step with the index.

``index`` here is a plain function standing in for ``index_paths`` (it records the folder it
saw, or fails on purpose); the real indexer runs in tests/test_chat.py and tests/test_cli.py.
"""

from __future__ import annotations

import os
import stat

import pytest

from embeddings import DocumentError
from embeddings.sources.corpus_folder import CorpusFolder, safe_filename, skeleton

ARTICLE = "title: Brücke\ndate: 2025-03-03\n\nDie Bürgermeisterin eröffnete am Montag die neue Brücke.\n"
NEWER = ARTICLE.replace("Montag", "Dienstag")


class IndexFailed(RuntimeError):
    pass


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "alt.txt").write_text(ARTICLE, encoding="utf-8")
    return CorpusFolder.for_index(root, tmp_path / "index")


def snapshot(folder) -> dict[str, bytes]:
    return {n: (folder.root / n).read_bytes() for n in folder.files() if (folder.root / n).is_file()}


def seen(folder):
    """An index stand-in: returns the folder's content as it was when indexing ran."""
    return lambda: snapshot(folder)


def failing():
    raise IndexFailed("disk full while writing the index")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("artikel.txt", "artikel.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\win\\evil.md", "evil.md"),
        ("nul\x00byte.txt", "nul_byte.txt"),
        (".hidden.html", "hidden.html"),
        ("Über Peking (2).PDF", "Über_Peking_2_.pdf"),
    ],
)
def test_safe_filename_stays_in_the_folder(name, expected):
    assert safe_filename(name) == expected


@pytest.mark.parametrize("name", ["", "..", "/", "noext", "virus.exe", "archive.tar.gz", ".txt"])
def test_safe_filename_refuses_what_cannot_be_indexed(name):
    with pytest.raises(DocumentError):
        safe_filename(name)


def test_save_adds_a_new_file_with_the_folders_normal_mode(folder):
    saved, refused, content = folder.save([("neu.txt", NEWER.encode())], seen(folder))
    assert [(s.name, s.status) for s in saved] == [("neu.txt", "added")] and refused == []
    assert content["neu.txt"] == NEWER.encode()  # on disk before the index ran
    mode = stat.S_IMODE(os.stat(folder.root / "neu.txt").st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's 0600
    assert not [n for n in os.listdir(folder.root) if n.startswith(".")]  # no temporary files left


def test_existing_name_needs_replace_and_replace_keeps_no_old_copy(folder):
    saved, refused, _ = folder.save([("alt.txt", NEWER.encode())], seen(folder))
    assert saved == [] and "replace it" in refused[0][1]
    assert (folder.root / "alt.txt").read_text(encoding="utf-8") == ARTICLE
    saved, refused, _ = folder.save([("alt.txt", NEWER.encode())], seen(folder), replace=True)
    assert [(s.name, s.status) for s in saved] == [("alt.txt", "replaced")]
    assert (folder.root / "alt.txt").read_text(encoding="utf-8") == NEWER
    assert os.listdir(folder.root) == ["alt.txt"]
    saved, _, _ = folder.save([("alt.txt", NEWER.encode())], seen(folder))  # the same bytes again: nothing to do
    assert saved[0].status == "unchanged"


def test_a_batch_keeps_its_good_files_and_says_why_for_each_bad_one(folder):
    batch = [("gut.txt", NEWER.encode()), ("leer.txt", b"   "), ("bild.exe", b"MZ"), ("x.txt", b"\xff\xfe\x00")]
    saved, refused, _ = folder.save(batch, seen(folder))
    assert [s.name for s in saved] == ["gut.txt"]
    assert [name for name, _ in refused] == ["leer.txt", "bild.exe", "x.txt"]
    assert all(reason for _, reason in refused)


@pytest.mark.parametrize("lookalike", ["ALT.txt", "аlt.txt", "ａｌｔ.txt"])  # case, Cyrillic а, full-width
def test_lookalike_of_an_existing_name_is_refused_with_a_reason(folder, lookalike):
    assert skeleton(lookalike) == skeleton("alt.txt")
    saved, refused, _ = folder.save([(lookalike, NEWER.encode())], seen(folder))
    assert saved == [] and "looks the same as the article 'alt.txt'" in refused[0][1]


def test_failed_indexing_rolls_the_folder_back(folder):
    before = snapshot(folder)
    with pytest.raises(IndexFailed):
        folder.save([("neu.txt", NEWER.encode()), ("alt.txt", NEWER.encode())], failing, replace=True)
    assert snapshot(folder) == before
    assert sorted(os.listdir(folder.root)) == ["alt.txt"]  # no backup or temporary file left
    with pytest.raises(IndexFailed):
        folder.remove(["alt.txt"], failing)
    assert snapshot(folder) == before and folder.trashed() == []


def test_remove_moves_to_trash_and_restore_brings_it_back(folder):
    moved, content = folder.remove(["alt.txt"], seen(folder))
    assert content == {} and not (folder.root / "alt.txt").exists()
    assert [t.name for t in folder.trashed()] == ["alt.txt"]
    assert moved[0].path.is_relative_to(folder.trash)
    _restored, content = folder.restore("alt.txt", seen(folder))
    assert content == {"alt.txt": ARTICLE.encode()} and folder.trashed() == []
    with pytest.raises(DocumentError, match="not in the trash"):
        folder.restore("alt.txt", seen(folder))


def test_restore_never_overwrites_a_new_file_of_that_name(folder):
    folder.remove(["alt.txt"], seen(folder))
    (folder.root / "alt.txt").write_text(NEWER, encoding="utf-8")
    with pytest.raises(DocumentError, match="in the corpus again"):
        folder.restore("alt.txt", seen(folder))
    assert (folder.root / "alt.txt").read_text(encoding="utf-8") == NEWER


def test_remove_takes_the_link_not_its_target(folder, tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text(ARTICLE, encoding="utf-8")
    (folder.root / "link.txt").symlink_to(outside)
    (folder.root / "broken.txt").symlink_to(tmp_path / "missing.txt")
    folder.remove(["link.txt", "broken.txt"], seen(folder))
    assert outside.read_text(encoding="utf-8") == ARTICLE
    assert not os.path.lexists(folder.root / "link.txt") and not os.path.lexists(folder.root / "broken.txt")
    assert all(t.path.is_symlink() for t in folder.trashed())


def test_every_file_in_the_folder_can_be_removed(folder):
    (folder.root / "notizen.docx").write_bytes(b"PK\x03\x04")  # never indexed
    (folder.root / "kaputt.txt").write_bytes(b"\xff\xfe\x00")  # skipped by the indexer
    (folder.root / "unter").mkdir()
    (folder.root / "unter" / "b.md").write_text(ARTICLE, encoding="utf-8")
    names = folder.files()
    assert names == ["alt.txt", "kaputt.txt", "notizen.docx", "unter/b.md"]
    folder.remove(names, seen(folder))
    assert folder.files() == []


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "", "nicht-da.txt", "unter/../../x.txt"])
def test_remove_refuses_names_that_are_not_files_of_the_folder(folder, name):
    with pytest.raises(DocumentError):
        folder.remove([name], seen(folder))
    assert folder.files() == ["alt.txt"]


def test_a_file_appearing_meanwhile_is_not_replaced(folder):
    with pytest.raises(DocumentError, match="appeared in the corpus meanwhile"):
        folder._write("alt.txt", NEWER.encode(), [], replace=False)  # checked as new, but it exists now
    assert (folder.root / "alt.txt").read_text(encoding="utf-8") == ARTICLE
    assert os.listdir(folder.root) == ["alt.txt"]

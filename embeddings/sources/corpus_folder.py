"""The corpus folder as something a user edits: save, replace, remove to a trash folder, restore.

Used by the chat's Documents panel and by ``rag add`` / ``rag remove`` / ``rag restore``.
Every change is made so that the folder and the index stay in step
(:meth:`CorpusFolder.apply`): files are written to a hidden name, flushed to disk,
moved into place, then the index is updated; if indexing fails, the folder is put
back as it was. Removing moves a file (or a symbolic link, never its target)
into ``<index dir>/trash/``, from where :meth:`CorpusFolder.restore` brings it back
until the trash's retention has passed (:data:`TRASH_DAYS`).

Bounded, so that a visitor of the chat cannot fill the disk or hold the index's write slot:
the folder and its trash together stay under a disk budget (:data:`MAX_CORPUS_BYTES`), and
one file may make at most :data:`MAX_FILE_CHUNKS` passages.

>>> safe_filename("../../etc/pass\\x00wd.txt")
'pass_wd.txt'
>>> safe_filename("Nachricht über Peking (1).md")
'Nachricht_über_Peking_1_.md'
>>> safe_filename("-rf.txt")  # a name no shell command can take for an option
'rf.txt'
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from embeddings.chunking import chunk_spans
from embeddings.readers.files import MAX_FILE_BYTES, SUFFIXES, DocumentError, parse_document, read_bytes

R = TypeVar("R")  # what the caller's index() returns (an IndexReport), handed back unchanged

MAX_NAME_CHARS = 120
MAX_NAME_BYTES = 240  # file systems allow 255 bytes per name; umlauts and CJK take 2-3 bytes each
TRASH = "trash"  # folder inside the index folder
#: The folder and its trash together: thousands of articles take tens of MB; a GB is an attack.
MAX_CORPUS_BYTES = 1024 * 2**20
#: Removed files are kept this long for `rag restore`, then the trash forgets them.
TRASH_DAYS = 7.0
#: Passages one uploaded file may make: a long feature is ~200; a 1 MB text made 3,031 and held
#: the index's only write slot for 242 s of embedding.
MAX_FILE_CHUNKS = 600
# Letters from other scripts that look like Latin ones: "Pеking.txt" with a Cyrillic е is not a new article.
_LOOKALIKES = str.maketrans(
    "аеорсухіјѕԁӏАВЕКМНОРСТХІЈЅαεορτυνκΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdlABEKMHOPCTXIJSaeoptuvkABEZHIKMNOPTYX",
)


def safe_filename(name: str) -> str:
    """A file name that stays inside the corpus folder: no folders, NULs, control characters or leading dots.

    Raises:
        DocumentError: nothing usable is left, or the type is not one the index reads.
    """
    base = unicodedata.normalize("NFC", name.replace("\\", "/")).split("/")[-1]
    base = re.sub(r"[^\w.-]+", "_", base).lstrip("._-")
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem:
        raise DocumentError(name, f"no usable file name; upload a {', '.join(SUFFIXES)} file")
    if f".{suffix.lower()}" not in SUFFIXES:
        raise DocumentError(name, f"unsupported file type .{suffix}; upload {', '.join(SUFFIXES)}")
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1]
    while len(f"{stem}.{suffix}".encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return f"{stem}.{suffix.lower()}"


def skeleton(name: str) -> str:
    """What a name looks like: NFKC, case-folded, look-alike letters of other scripts mapped to Latin.

    >>> skeleton("Pеking.TXT") == skeleton("peking.txt")  # a Cyrillic е
    True
    >>> skeleton("ｐｅｋｉｎｇ.txt")  # full-width letters
    'peking.txt'
    """
    return unicodedata.normalize("NFKC", name).casefold().translate(_LOOKALIKES)


@dataclass(frozen=True)
class Saved:
    """What :meth:`CorpusFolder.save` did with one file: ``"added"``, ``"replaced"`` or ``"unchanged"``."""

    name: str
    status: str


@dataclass(frozen=True)
class Trashed:
    """A removed file in the trash: its name in the corpus and when it was removed (``time.time_ns()``)."""

    name: str
    removed_ns: int
    path: Path


class CorpusFolder:
    """One corpus folder and its trash.

    Args:
        root: the articles' folder.
        trash: where removed files go (by default ``<index_dir>/trash``; give it as
            ``CorpusFolder.for_index(root, index_dir)``).
        max_file_bytes: larger files are refused.
        max_bytes: the disk budget of the folder and the trash together; a save past it is refused.
        trash_days: how long removed files are kept in the trash.
        max_chunks: passages one saved file may make.
    """

    def __init__(
        self,
        root: Path,
        trash: Path,
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        max_bytes: int = MAX_CORPUS_BYTES,
        trash_days: float = TRASH_DAYS,
        max_chunks: int = MAX_FILE_CHUNKS,
    ) -> None:
        self.root = Path(root)
        self.trash = Path(trash)
        self.max_file_bytes = max_file_bytes
        self.max_bytes = max_bytes
        self.trash_days = trash_days
        self.max_chunks = max_chunks

    @classmethod
    def for_index(cls, root: Path, index_dir: Path, **options) -> CorpusFolder:
        return cls(root, Path(index_dir) / TRASH, **options)

    # ---- what is there ---------------------------------------------------------------------------

    def files(self) -> list[str]:
        """Every file the folder holds (relative names), indexed or not, links included; hidden ones left out."""
        if not self.root.is_dir():
            return []
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):  # does not follow symlinked folders
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            out += [Path(dirpath, n).relative_to(self.root).as_posix() for n in filenames if not n.startswith(".")]
            out += [
                Path(dirpath, d).relative_to(self.root).as_posix() for d in dirnames if Path(dirpath, d).is_symlink()
            ]
        return sorted(out)

    def trashed(self) -> list[Trashed]:
        """Removed files, newest first."""
        out = []
        if self.trash.is_dir():
            for stamp in self.trash.iterdir():
                if not stamp.name.isdigit():
                    continue
                for dirpath, dirs, filenames in os.walk(stamp):  # a removed link to a folder is one entry
                    for n in [*filenames, *(d for d in dirs if Path(dirpath, d).is_symlink())]:
                        path = Path(dirpath, n)
                        out.append(Trashed(path.relative_to(stamp).as_posix(), int(stamp.name), path))
        return sorted(out, key=lambda t: (-t.removed_ns, t.name))

    def usage(self) -> int:
        """Bytes the folder and its trash take (files and links as they are, never what links point at)."""
        total = 0
        for top in (self.root, self.trash):
            for dirpath, _dirs, filenames in os.walk(top):
                for n in filenames:
                    with contextlib.suppress(OSError):  # gone meanwhile
                        total += os.lstat(os.path.join(dirpath, n)).st_size
        return total

    def purge_trash(self, now_ns: int | None = None) -> list[str]:
        """Forget what was removed more than ``trash_days`` ago; returns the names forgotten."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        cutoff = now_ns - int(self.trash_days * 86400 * 1e9)
        gone = []
        if self.trash.is_dir():
            for stamp in self.trash.iterdir():
                if stamp.name.isdigit() and int(stamp.name) < cutoff and not stamp.is_symlink():
                    gone += [t.name for t in self.trashed() if t.path.is_relative_to(stamp)]
                    shutil.rmtree(stamp, ignore_errors=True)
        return gone

    def _path(self, name: str) -> Path:
        """The path of ``name`` inside the folder; refuses anything that would leave it."""
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts or "\x00" in name:
            raise DocumentError(name, f"not a file of the corpus folder {self.root}")
        path = self.root / name
        parent = path.parent.resolve()  # the file itself may be a link (removed as a link); its folder may not
        if not parent.is_relative_to(self.root.resolve()):
            raise DocumentError(name, f"not a file of the corpus folder {self.root}")
        return path

    # ---- checks ----------------------------------------------------------------------------------

    def check(self, filename: str, raw: bytes, *, replace: bool = False) -> str:
        """The name ``raw`` would be saved under; raises if it cannot be saved.

        Raises:
            DocumentError: bad name or type, unreadable as an article, a look-alike of another
                article's name, or the name is taken by a different file and ``replace`` is off.
        """
        name = safe_filename(filename)
        if len(raw) > self.max_file_bytes:
            raise DocumentError(filename, f"too large ({len(raw):,} bytes; the limit is {self.max_file_bytes:,})")
        doc = parse_document(raw, name, Path(name).suffix, name)  # the indexer would skip it; say why now
        chunks = len(chunk_spans(doc.text))
        if chunks > self.max_chunks:
            raise DocumentError(
                filename,
                f"too long for one article ({chunks:,} passages; the limit is {self.max_chunks:,}); split it into"
                " smaller files",
            )
        look = skeleton(name)
        for other in self.files():
            if other != name and "/" not in other and skeleton(other) == look:
                raise DocumentError(
                    filename,
                    f"looks the same as the article {other!r} but is a different name; rename it or replace {other!r}",
                )
        target = self.root / name
        if os.path.lexists(target) and not replace and not self._same(target, raw):
            raise DocumentError(name, "an article with this name is in the corpus; replace it, or rename yours")
        return name

    def _same(self, target: Path, raw: bytes) -> bool:
        if target.is_symlink() or not target.is_file():
            return False
        try:
            return read_bytes(target, self.max_file_bytes) == raw
        except DocumentError:
            return False

    # ---- changes ---------------------------------------------------------------------------------

    def save(
        self, uploads: Sequence[tuple[str, bytes]], index: Callable[[], R], *, replace: bool = False
    ) -> tuple[list[Saved], list[tuple[str, str]], R]:
        """Save files (``(name, bytes)``) and index them; a file that fails its check is left out.

        Returns:
            ``(saved, refused, index_result)``: a :class:`Saved` per written or unchanged file, a
            ``(name, reason)`` per refused one, and what ``index()`` returned.
        Raises:
            whatever ``index()`` raises, after the folder was put back as it was.
        """
        ready: dict[str, bytes] = {}
        refused: list[tuple[str, str]] = []
        for filename, raw in uploads:
            try:
                name = self.check(filename, raw, replace=replace)
                if ready.get(name, raw) != raw:
                    raise DocumentError(name, "two different files in this batch have this name; rename one")
                ready[name] = raw
            except DocumentError as exc:
                refused.append((filename, exc.reason))
        saved = [Saved(n, "unchanged") for n, raw in ready.items() if self._same(self.root / n, raw)]
        writes = {n: raw for n, raw in ready.items() if not self._same(self.root / n, raw)}
        if writes:
            self.purge_trash()
            used = self.usage()
            for n in list(writes):
                old = self.root / n
                grows = len(writes[n]) - (os.lstat(old).st_size if os.path.lexists(old) else 0)
                if used + grows > self.max_bytes:
                    del writes[n]
                    refused.append((n, self._over_budget(used)))
                else:
                    used += grows
        status = {n: "replaced" if os.path.lexists(self.root / n) else "added" for n in writes}
        backups: list[Path] = []

        def change(undo: list) -> None:
            for n, raw in writes.items():
                undo.append(self._write(n, raw, backups, replace=status[n] == "replaced"))

        result = self.apply(change, index)
        for backup in backups:  # the index has the new versions now
            backup.unlink(missing_ok=True)
        return [*saved, *(Saved(n, status[n]) for n in writes)], refused, result

    def _over_budget(self, used: int) -> str:
        return (
            f"the corpus folder and its trash are at their disk budget ({used / 2**20:.0f} of"
            f" {self.max_bytes / 2**20:.0f} MB); remove articles, or wait for the trash to be emptied"
            f" ({self.trash_days:g} days after removal)"
        )

    def remove(self, names: Iterable[str], index: Callable[[], R]) -> tuple[list[Trashed], R]:
        """Move files (or links, never their targets) into the trash, then index.

        Raises:
            DocumentError: a name that is not a file of the folder (nothing is moved then).
        """
        names = list(dict.fromkeys(names))
        self.purge_trash()
        known = set(self.files())
        for name in names:
            path = self._path(name)
            if name not in known or not os.path.lexists(path):
                raise DocumentError(name, f"not a file of the corpus folder {self.root}")
        stamp = self.trash / str(time.time_ns())
        moved: list[Trashed] = []

        def change(undo: list) -> None:
            for name in names:
                source, target = self._path(name), stamp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(source, target)  # rename moves a link itself, never what it points at
                undo.append(lambda s=source, t=target: os.rename(t, s))
                moved.append(Trashed(name, int(stamp.name), target))

        result = self.apply(change, index)
        return moved, result

    def restore(self, name: str, index: Callable[[], R]) -> tuple[Trashed, R]:
        """Bring the most recently removed file called ``name`` back from the trash, then index.

        Raises:
            DocumentError: no such file in the trash, or a file of that name is in the corpus again.
        """
        found = next((t for t in self.trashed() if t.name == name), None)
        if found is None:
            raise DocumentError(name, "not in the trash; `rag restore` lists what is")
        target = self._path(name)
        if os.path.lexists(target):
            raise DocumentError(name, "a file with this name is in the corpus again; remove or rename it first")

        def change(undo: list) -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(found.path, target)
            undo.append(lambda: os.rename(target, found.path))

        result = self.apply(change, index)
        _prune_empty(found.path.parent, self.trash)
        return found, result

    def apply(self, change: Callable[[list], None], index: Callable[[], object]):
        """Make ``change``, then ``index()``; if either fails, undo what was done, newest first.

        ``change(undo)`` appends a function per step that reverses it, as it goes, so a change
        that fails half-way is reversed too.
        """
        undo: list[Callable[[], object]] = []
        try:
            change(undo)
            return index()
        except BaseException:
            for step in reversed(undo):
                step()
            raise

    def _write(self, name: str, raw: bytes, backups: list[Path], *, replace: bool) -> Callable[[], None]:
        """Write ``raw`` as ``name``: hidden temporary file, fsync, then renamed into place; returns the undo.

        The file is created with mode 0666 minus the umask, like any file a user saves there
        (``mkstemp``'s 0600 would hide uploads from the other readers of the folder).
        """
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".upload-{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            backup = None
            if not replace:  # a link never replaces: a file that appeared since the check is kept
                os.link(tmp, target)
                Path(tmp).unlink()
            else:
                if os.path.lexists(target):  # keep the old version until the index has the new one
                    backup = target.parent / f".replaced-{secrets.token_hex(8)}"
                    os.link(target, backup, follow_symlinks=False)
                os.replace(tmp, target)
        except FileExistsError:
            Path(tmp).unlink(missing_ok=True)
            raise DocumentError(name, "a file with this name appeared in the corpus meanwhile; try again") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)

        def undo() -> None:
            if backup is not None:
                os.replace(backup, target)
            else:
                target.unlink(missing_ok=True)

        if backup is not None:
            backups.append(backup)
        return undo


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _prune_empty(folder: Path, stop: Path) -> None:
    """Remove empty folders from ``folder`` up to (not including) ``stop``."""
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent

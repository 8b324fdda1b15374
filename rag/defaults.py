"""Where the index, the model cache and the demo articles live when nobody says otherwise.

In a source checkout (``pyproject.toml`` and ``seeds/`` beside the packages) nothing
changes: the index is ``.rag-index/`` in the checkout and the demo corpus is ``seeds/``.
Installed as a package (a wheel in site-packages), nothing is ever written next to the
code: everything goes under one user data folder, ``RAG_HOME`` if set, else the
platform's (``~/.local/share/news-rag`` on Linux)::

    index/      the default index
    corpus/     the demo articles, copied from the package on first run; uploads go here
    models/     the converted embedding model
    indexes/    one index per folder given to ``rag.ask(..., corpus=PATH)``

``RAG_HOME`` is read here, when a default is asked for (like ``XDG_DATA_HOME`` by
platformdirs): it chooses where defaults point, never what a given path means.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
APP_NAME = "news-rag"
#: The demo articles inside an installed package: the checkout's ``seeds/``, shipped as ``rag/demo/``.
DEMO_FOLDER = Path(__file__).resolve().parent / "demo"


def is_checkout(root: Path = CHECKOUT) -> bool:
    """Whether the packages run from a source checkout (not from site-packages).

    >>> is_checkout(Path("/nonexistent"))
    False
    """
    return (root / "pyproject.toml").is_file() and (root / "seeds").is_dir()


@dataclass(frozen=True)
class Defaults:
    """The default places, for one home (``None``: the source checkout)."""

    home: Path | None

    @property
    def index_dir(self) -> Path:
        return CHECKOUT / ".rag-index" if self.home is None else self.home / "index"

    @property
    def corpus(self) -> Path:
        """The demo corpus folder (in a checkout ``seeds/``; installed, a copy made by :meth:`ensure_corpus`)."""
        return CHECKOUT / "seeds" if self.home is None else self.home / "corpus"

    @property
    def cache_dir(self) -> Path | None:
        """Where the model is converted to (``None``: the encoder's own default, ``~/.cache/newsrag``)."""
        return None if self.home is None else self.home / "models"

    def index_for(self, corpus: Path) -> Path:
        """The index folder kept for ``corpus`` by ``rag.ask(..., corpus=...)``: one per folder, named after it.

        >>> Defaults(Path("/h")).index_for(Path("/data/news")).parent
        PosixPath('/h/indexes')
        """
        path = Path(corpus).expanduser().resolve()
        tag = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        base = self.home / "indexes" if self.home is not None else CHECKOUT / ".rag-indexes"
        return base / f"{path.name or 'root'}-{tag}"

    def ensure_corpus(self) -> Path:
        """The demo corpus folder, filled with the package's demo articles if it does not exist yet."""
        target = self.corpus
        if self.home is None or target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        for article in demo_articles():
            shutil.copyfile(article, scratch / article.name)
        try:
            scratch.rename(target)  # atomic: a second process finds all of it or none
        except OSError:
            shutil.rmtree(scratch, ignore_errors=True)
            if not target.exists():
                raise
        return target


def demo_articles() -> list[Path]:
    """The demo articles shipped in the package (the checkout's ``seeds/``)."""
    folder = CHECKOUT / "seeds" if is_checkout() else DEMO_FOLDER
    return sorted(folder.glob("*.txt"))


def user_home() -> Path:
    """``RAG_HOME`` if set, else the platform's user data folder for the app."""
    explicit = os.environ.get("RAG_HOME")
    if explicit:
        return Path(explicit).expanduser()
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def defaults() -> Defaults:
    """The defaults for this installation: the checkout's folders, or ``RAG_HOME`` / the user data folder.

    ``RAG_HOME`` wins in a checkout too, so a test or a second instance can move everything.
    """
    if os.environ.get("RAG_HOME") or not is_checkout():
        return Defaults(user_home())
    return Defaults(None)

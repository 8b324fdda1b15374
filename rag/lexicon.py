"""A German-English dictionary, to find an English question's words in German sentences.

Word overlap and spelling variants connect names and cognates ("Shoigu"/"Schoigu",
"European"/"europäischen"), and the embedding model connects sentences, but neither connects
ordinary words across the languages: "trip" is "Reise", "supply lines" are "Versorgungsleitungen",
and single-word embeddings are too noisy to say so. A general dictionary does. The default is
Debian's ``trans-de-en`` (the Ding dictionary of TU Chemnitz, some 200,000 entries of general
language, GPL; read from the system, not shipped); without it the lexicon is empty and nothing
is translated.

A dictionary line pairs German and English senses group by group::

    Reise {f} | Reisen {pl} :: journey; trip | journeys; trips

>>> lex = Lexicon.parse(["Reise {f} | Reisen {pl} :: journey; trip | journeys; trips"])
>>> sorted(lex.translations("trips"))
['reise', 'reisen']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path

from .text import STOPWORDS, fold

DEFAULT_PATH = Path("/usr/share/trans/de-en")
_NOTE = re.compile(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)|<[^>]*>")  # {f}, [Br.], (tool), <abbreviation>
# Plain English endings, so that "drills", "supplied", "hunting" find "drill", "supply", "hunt".
_ENDINGS = (("ies", "y"), ("ied", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"))


class Lexicon:
    """English words to their German translations (accent-folded single words)."""

    def __init__(self, entries: dict[str, str]) -> None:
        self.entries = entries  # English word -> its German words, space-separated (one string: 100,000 of them)

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Lexicon:
        """Read dictionary lines (``German | German forms :: English | English forms``); other lines are skipped."""
        found: dict[str, dict[str, None]] = {}
        for line in lines:
            if line.startswith("#") or " :: " not in line:
                continue
            german, english = line.rstrip("\n").split(" :: ", 1)
            german_groups, english_groups = german.split(" | "), english.split(" | ")
            if len(german_groups) != len(english_groups):
                continue  # the groups do not pair up: nothing says which word translates which
            for de, en in zip(german_groups, english_groups):
                words_de = [w for w in (_NOTE.sub("", x).strip() for x in de.split(";")) if w and " " not in w]
                if not words_de:
                    continue
                for x in en.split(";"):
                    word = re.sub(r"^to ", "", _NOTE.sub("", x).strip()).casefold()
                    if not word or " " in word or word in STOPWORDS:
                        continue
                    senses = found.setdefault(word, {})
                    for w in words_de:
                        senses.setdefault(fold(w), None)
        return cls({word: " ".join(senses) for word, senses in found.items()})

    def translations(self, word: str) -> frozenset[str]:
        """The German words for an English word or a plain inflection of it (empty when none)."""
        low = word.casefold()
        forms = [low] + [
            low[: -len(end)] + rep for end, rep in _ENDINGS if low.endswith(end) and len(low) > len(end) + 2
        ]
        return frozenset(t for f in forms for t in self.entries.get(f, "").split())

    def __len__(self) -> int:
        return len(self.entries)


EMPTY = Lexicon({})


@functools.lru_cache(maxsize=4)
def load(path: Path = DEFAULT_PATH) -> Lexicon:
    """The dictionary at ``path``, read once; the empty lexicon when there is none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return Lexicon.parse(f)
    except FileNotFoundError:
        return EMPTY

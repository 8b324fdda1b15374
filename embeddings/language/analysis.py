"""The text analysis shared by the index and the questions: tokens, stop words, stems, folding, language.

The embedded store builds its BM25 postings with :func:`terms` when a document is written,
and questions go through the same function, so both sides of every lexical match agree.

>>> terms("Die Verteidigungsminister trafen sich in Peking.")
['verteidigungsminist', 'traf', 'peking']
>>> fold("Schoigu Grüße Straße")
'schoigu grusse strasse'
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata

from embeddings.language.wordlists import word_set

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)

GERMAN_STOPWORDS = word_set("stopwords_de")  # data/stopwords_de.txt

ENGLISH_STOPWORDS = word_set("stopwords_en")  # data/stopwords_en.txt

STOPWORDS = GERMAN_STOPWORDS | ENGLISH_STOPWORDS
QUOTE_MARK = re.compile(r"[„“”\"»«]")  # German, English and French quotation marks


@functools.lru_cache(maxsize=200_000)
def fold(text: str) -> str:
    """Lower-case and strip accents: ``Grüße`` -> ``grusse``. Used on both sides of every match."""
    text = unicodedata.normalize("NFKD", text.casefold().replace("ß", "ss"))
    if text.isascii():
        return text  # nothing combines
    drop = {ord(c): None for c in set(text) if unicodedata.combining(c)}  # the accents, looked up once each
    return text.translate(drop) if drop else text


_PER_THREAD = threading.local()


def _stemmer():
    """This thread's Snowball stemmer: a stemmer keeps the word it works on in itself, so two threads
    sharing one corrupt each other's words (an IndexError, or a wrong stem)."""
    stemmer = getattr(_PER_THREAD, "stemmer", None)
    if stemmer is None:
        stemmer = _PER_THREAD.stemmer = german_stemmer()
    return stemmer


def german_stemmer(compiled: bool = True):
    """Snowball's German stemmer: PyStemmer's C build when installed (the same stems, about 25x faster), else
    snowballstemmer's Python one, imported alone (its package would import thirty languages)."""
    if compiled:
        try:
            import Stemmer

            return Stemmer.Stemmer("german")
        except ImportError:
            pass
    from snowballstemmer.german_stemmer import GermanStemmer

    return GermanStemmer()


@functools.lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """German Snowball stem, accent-folded: ``Verteidigungsministers`` -> ``verteidigungsminist``."""
    return fold(_stemmer().stemWord(word.casefold()))


def words(text: str) -> list[str]:
    """Word tokens as written (hyphenated compounds split)."""
    return WORD.findall(text)


def terms(text: str) -> list[str]:
    """Search terms: stems of the words that are not stop words."""
    out = []
    for w in words(text):
        low = w.casefold()
        if low in STOPWORDS or (len(low) < 2 and not low.isdigit()):
            continue
        out.append(stem(low))
    return out


_GERMAN_ONLY = GERMAN_STOPWORDS - ENGLISH_STOPWORDS
_ENGLISH_ONLY = ENGLISH_STOPWORDS - GERMAN_STOPWORDS
# Words of one language that are no stop words but are frequent in questions and news text.
_GERMAN_CUES = frozenset(
    "sagte sagt sagten erklärte hat hatte haben ist sind wurde wurden welche welcher welches wessen wieso "  # noqa: SIM905
    "weshalb nicht auch noch schon gesagt laut gegen zwischen nach".split()
)
_ENGLISH_CUES = frozenset(
    "did does do doing is are were has have had what which who whom whose why how the of and "  # noqa: SIM905
    "not also still against between after".split()
)


def detect_language(text: str) -> str:
    """``"de"`` or ``"en"``: words only one of the languages has, and German letters; English when nothing tells.

    Words both languages share ("was", "will", "in", "so") are not counted: "Was sagte Kirby?" is German.

    >>> detect_language("Was sagte Kirby?"), detect_language("What about Li Shangfu?"), detect_language("Xi")
    ('de', 'en', 'en')
    """
    de, en = language_scores(text)
    return "de" if de > en else "en"


def language_scores(text: str) -> tuple[int, int]:
    """The evidence for German and for English in ``text`` (see :func:`detect_language`); ``(0, 0)`` when
    nothing tells."""
    tokens = [w.casefold() for w in words(text)]
    de = sum(t in _GERMAN_ONLY or t in _GERMAN_CUES for t in tokens) + 2 * len(re.findall(r"[äöüß]", text.casefold()))
    en = sum(t in _ENGLISH_ONLY or t in _ENGLISH_CUES for t in tokens)
    en += len(re.findall(r"\w(?:'s|’s|n't|n’t)\b", text))
    return de, en

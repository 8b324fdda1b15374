"""The text analysis shared by the index and the questions: tokens, stop words, stems, folding.

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
import unicodedata

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)

GERMAN_STOPWORDS = frozenset(
    """
    aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes anders
    auch auf aus bei beim bin bis bist da damit dann das dass daß dein deine dem den denn der des deshalb
    dessen die dies diese diesem diesen dieser dieses doch dort du durch ein eine einem einen einer eines
    einig einige er es etwas euer eure für gegen gewesen hab habe haben hat hatte hatten hier hin hinter ich
    ihm ihn ihnen ihr ihre ihrem ihren ihrer ihres im in indem ins ist jede jedem jeden jeder jedes jene
    jenem jenen jener jenes jetzt kann kein keine keinem keinen keiner können könnte laut machen man manche
    mein meine mit muss musste nach nicht nichts noch nun nur ob oder ohne sehr sei seien sein seine seinem
    seinen seiner seit sich sie sind so solche soll sollte sondern sonst um und uns unser unter viel vom von
    vor wann war waren warst warum was weg weil weiter welch welche welchem welchen welcher welches wem wen
    wenn wer werde werden weshalb wessen wie wieder wieso will wir wird wirst wo woher wohin wollen wollte
    worden wurde wurden während würde würden zu zum zur zwar zwischen über
    """.split()  # noqa: SIM905
)

ENGLISH_STOPWORDS = frozenset(
    """
    a about above according after again against all am an and any are article as at be because been before
    being below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just me
    mentioned more most my myself name named no nor not now of off on once only or other our ours out over
    own report said same say says she should so some such tell than that the their theirs them themselves
    then there these they this those through to told too under until up very was we were what when where
    which while who whom whose why will with would you your yours
    """.split()  # noqa: SIM905
)

STOPWORDS = GERMAN_STOPWORDS | ENGLISH_STOPWORDS
QUOTE_MARK = re.compile(r"[„“”\"»«]")  # German, English and French quotation marks


@functools.lru_cache(maxsize=200_000)
def fold(text: str) -> str:
    """Lower-case and strip accents: ``Grüße`` -> ``grusse``. Used on both sides of every match."""
    text = text.casefold().replace("ß", "ss")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@functools.lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("german")


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

"""Find calendar dates and years in German and English text, and the date a text gives itself.

Pure functions, no I/O. A :class:`DateMention` keeps the character span it was
found at, so callers can cite or highlight it.

A year is any year, not only this century's: "am 5. Juli 1687", "im Jahr 800", "800 n. Chr.",
and a four-digit number that counts nothing ("1687 veröffentlichte Newton", "in 1687, Newton";
but "1500 Soldaten", "1500 villages", "2000 Euro" count something and are no years).

>>> [m.date.isoformat() for m in find_dates("am 14. Oktober 2024 in Peking; February 28, 2025; 5. Juli 1687")]
['2024-10-14', '2025-02-28', '1687-07-05']
>>> [y.year for y in find_years("Im Jahr 800 wurde Karl gekrönt. 1687 veröffentlichte Newton 1500 Seiten.")]
[800, 1687]
>>> infer_date("Berlin, 3. März 2025 – Der Minister traf am 14. Oktober 2024 ein.").isoformat()
'2025-03-03'
>>> infer_date("Der Minister traf am 14. Oktober 2024 ein.") is None  # an event's date, not the text's
True
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

from embeddings.language.analysis import STOPWORDS, language_scores
from embeddings.language.wordlists import alternation, word_set

MONTHS = {
    # German
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "april": 4, "mai": 5, "juni": 6,
    "juli": 7, "august": 8, "september": 9, "oktober": 10, "november": 11, "dezember": 12,
    # English
    "january": 1, "february": 2, "march": 3, "may": 5, "june": 6, "july": 7,
    "october": 10, "december": 12,
    # abbreviations (both languages)
    "jan": 1, "feb": 2, "mär": 3, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8,
    "sep": 9, "sept": 9, "okt": 10, "oct": 10, "nov": 11, "dez": 12, "dec": 12,
}  # fmt: skip

WEEKDAYS = {
    "montag": 0, "dienstag": 1, "mittwoch": 2, "donnerstag": 3, "freitag": 4, "samstag": 5, "sonnabend": 5,
    "sonntag": 6, "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5,
    "sunday": 6,
}  # fmt: skip
#: German glues the time of day to the weekday: "am Mittwochabend", "Freitagnachmittag".
TIMES_OF_DAY = ("früh", "morgen", "vormittag", "mittag", "nachmittag", "abend", "nacht")

_MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(?P<year>\d{3,4})(?![.,]\d)"  # any year; whether it counts something instead is checked after
_DAY = r"(?P<day>[0-3]?\d)"

_PATTERNS = [
    # 2025-02-28
    re.compile(r"\b(?P<year>\d{4})-(?P<mnum>[01]\d)-(?P<day>[0-3]\d)\b"),
    # 28.02.2025 / 28.2.2025
    re.compile(r"\b" + _DAY + r"\.\s?(?P<mnum>[01]?\d)\.\s?(?P<year>\d{4})\b"),
    # 14. Oktober 2024 / 14. Oktober / 28 February 2025
    re.compile(r"\b" + _DAY + r"\.?\s+" + _MONTH + r"(?:\s+" + _YEAR + r")?\b", re.IGNORECASE),
    # February 28, 2025 / Feb. 28
    re.compile(r"\b" + _MONTH + r"\s+" + _DAY + r"(?:st|nd|rd|th)?\b(?:,?\s+" + _YEAR + r"\b)?", re.IGNORECASE),
    # Februar 2025 (month and year, no day)
    re.compile(r"\b" + _MONTH + r"\s+" + _YEAR + r"\b", re.IGNORECASE),
]


@dataclass(frozen=True)
class DateMention:
    """A date written in the text. Missing parts are ``None`` (``day`` for "Februar 2025")."""

    start: int
    end: int
    year: int | None
    month: int
    day: int | None

    @property
    def date(self) -> dt.date | None:
        """The full date, when day, month and year are all known."""
        if self.year is None or self.day is None:
            return None
        return dt.date(self.year, self.month, self.day)


def _valid(year: int | None, month: int, day: int | None) -> bool:
    if not 1 <= month <= 12:
        return False
    if day is None:
        return True
    try:
        dt.date(year or 2000, month, day)  # 2000 is a leap year, so 29 February passes
    except ValueError:
        return False
    return True


def find_dates(text: str) -> list[DateMention]:
    """All date mentions in ``text``, in order, without overlaps (the longest wins).

    A number after a month is its year unless it counts something ("am 5. Mai 300 Menschen").

    >>> [(m.year, m.month, m.day) for m in find_dates("Am 5. Mai 300 Menschen; im Oktober 1687")]
    [(None, 5, 5), (1687, 10, None)]
    """
    found: list[DateMention] = []
    language: str | None = None
    for number, pattern in enumerate(_PATTERNS):
        for m in pattern.finditer(text):
            groups = m.groupdict()
            month = int(groups["mnum"]) if groups.get("mnum") else MONTHS.get(groups["month"].lower().rstrip("."), 0)
            day = int(groups["day"]) if groups.get("day") else None
            year = int(groups["year"]) if groups.get("year") else None
            end = m.end()
            if year is not None and number >= 2:  # a year written as words after a month: does it count something?
                language = text_language(text) if language is None else language
                if counts_something(text, m.end("year"), language):
                    if day is None:
                        continue  # "Mai 300 Menschen": no date at all
                    year, end = None, len(text[: m.start("year")].rstrip(" ,\t"))
            if month and _valid(year, month, day):
                found.append(DateMention(m.start(), end, year, month, day))
    found.sort(key=lambda d: (d.start, -(d.end - d.start)))
    result: list[DateMention] = []
    for mention in found:
        if result and mention.start < result[-1].end:
            continue
        result.append(mention)
    return result


@dataclass(frozen=True)
class YearMention:
    """A year written in the text, with the words that mark it ("im Jahr 800", "44 v. Chr."); BC years are negative."""

    start: int
    end: int
    year: int


_ERA = alternation("eras")
_BC = re.compile(r"^(v|vor|BC|BCE)", re.I)
_MARKED_YEAR = re.compile(
    r"\b(?:" + alternation("year_words") + r")\s+(?P<year>\d{1,4})\b(?![.,]\d)(?:\s*(?P<era>" + _ERA + r")(?!\w))?"
    r"|\b(?P<year2>\d{1,4})\s*(?P<era2>" + _ERA + r")(?!\w)"
    r"|\bAD\s+(?P<year3>\d{1,4})\b",
    re.IGNORECASE,
)
# A four-digit number on its own: not part of a longer number ("1.500", "2,000", "12000"), no money ("€1500").
_BARE_YEAR = re.compile(r"(?<![\d.,:/€$£¥#])\b(?P<year>[12]\d{3})\b(?![.,]\d|\s*%|:\d)")
_NEXT_WORD = re.compile(r"[ \t]+([^\W\d_][\w-]*)")
_UNITS = word_set("units")


def text_language(text: str) -> str:
    """``"de"``, ``"en"`` or ``""`` when the text does not tell (a short phrase)."""
    de, en = language_scores(text)
    return "de" if de > en else "en" if en > de else ""


def counts_something(text: str, end: int, language: str) -> bool:
    """Whether the number ending at ``end`` counts the word after it: a unit or currency; in German a
    capitalised noun ("1500 Soldaten"), in English a lower-case word that is not a stop word ("1500 villages").
    A year stands before a verb ("1687 veröffentlichte Newton"), a name ("In 1687 Newton"), a stop word or
    punctuation. When the language is not known (``""``), any word but a stop word counts.

    >>> counts_something("1500 Soldaten", 4, "de"), counts_something("1687 veröffentlichte Newton", 4, "de")
    (True, False)
    >>> counts_something("1500 villages", 4, "en"), counts_something("In 1687 Newton", 7, "en")
    (True, False)
    """
    m = _NEXT_WORD.match(text, end)
    if m is None:
        return False
    word = m.group(1)
    low = word.casefold()
    if low in _UNITS:
        return True
    if low in STOPWORDS or low in MONTHS or low.startswith(tuple(WEEKDAYS)):
        return False
    if language == "en":
        return word[:1].islower()
    return word[:1].isupper() or not language


def find_years(text: str) -> list[YearMention]:
    """Years that stand alone (not in a full date): marked ("im Jahr 800", "800 n. Chr.", "AD 800") or a
    four-digit number from 1000 to 2999 that counts nothing (see :func:`counts_something`).

    >>> [(text[y.start:y.end], y.year) for text in ["Rom fiel 476 n. Chr.", "Seit 2014 regiert er."]
    ...  for y in find_years(text)]
    [('476 n. Chr.', 476), ('2014', 2014)]
    >>> find_years("Seit einem Jahr 20 Soldaten im Einsatz.")
    []
    """
    out: list[YearMention] = []
    taken: list[tuple[int, int]] = []
    language = text_language(text) if any(c.isdigit() for c in text) else ""
    for m in _MARKED_YEAR.finditer(text):
        digits = m.group("year") or m.group("year2") or m.group("year3")
        era = m.group("era") or m.group("era2") or ""
        year = int(digits)
        # "seit einem Jahr 20 Soldaten": after "Jahr" a number that counts something is no year (the marker
        # is evidence enough otherwise, so an unknown language reads as German, where nouns are capitalised).
        if year == 0 or (not era and counts_something(text, m.end(), language or "de")):
            continue
        out.append(YearMention(m.start(), m.end(), -year if _BC.match(era) else year))
        taken.append((m.start(), m.end()))
    for m in _BARE_YEAR.finditer(text):
        if any(a <= m.start() < b for a, b in taken):
            continue
        if not counts_something(text, m.end(), language):
            out.append(YearMention(m.start(), m.end(), int(m.group("year"))))
    return sorted(out, key=lambda y: y.start)


def parse_date(value: str) -> dt.date | None:
    """Parse one date written in any supported form (header values such as ``date: 2025-02-28``)."""
    value = value.strip()
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        pass
    for mention in find_dates(value):
        if mention.date:
            return mention.date
    return None


# A photo caption: the photo's place in the layout, or its credit ("Foto: Reuters").
_CAPTION = re.compile(r"\((?:links|rechts|mitte|left|right|centre|center)\)|\b(?:foto|bild|photo|image)\s*:", re.I)
_LINE_WORD = re.compile(r"[^\W\d_]+")


def _dateline(line: str, a: int, b: int) -> bool:
    """Whether the date at ``line[a:b]`` is one the text gives itself rather than an event's date in a sentence:
    on a short line that is not a sentence (a dateline, a byline, a time stamp: "Berlin, 3. März 2025",
    "— Global Times (@globaltimesnews) February 28, 2025"), at the head of a line before a dash, colon or
    parenthesis ("Berlin, 3. März 2025 (dpa) – Der …"), or in a photo caption (a news photo shows the reported
    event: "… am 14. Oktober 2024 in Peking. Foto: Ministerium")."""
    before, after = line[:a], line[b:]
    if _CAPTION.search(line):
        return True
    if len(_LINE_WORD.findall(before)) <= 3 and re.match(r"\s*(?:\([^)]*\)\s*)?(?:[–—:|-]|$)", after):
        return True
    rest = len(_LINE_WORD.findall(before + " " + after))
    return rest <= 8 and not after.strip().endswith((".", "!", "?"))


def infer_date(text: str) -> dt.date | None:
    """The date a text gives itself, from its datelines (see :func:`_dateline`): never the date of an event
    it reports, so a text with no header date and no dateline stays undated, and its "heute" resolves to no day.

    The most frequent such date wins; ties go to the latest. ``None`` when the text has none.
    """
    counts: Counter[dt.date] = Counter()
    for m in find_dates(text):
        if m.date is None:
            continue
        line_start = text.rfind("\n", 0, m.start) + 1
        line_end = text.find("\n", m.end)
        line = text[line_start : line_end if line_end >= 0 else len(text)]
        if _dateline(line, m.start - line_start, m.end - line_start):
            counts[m.date] += 1
    if not counts:
        return None
    return max(counts, key=lambda d: (counts[d], d))

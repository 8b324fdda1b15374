"""Resolve the time expressions of a sentence against its article's date.

News text says "am Freitag" or "yesterday"; the reader needs a calendar date.
A weekday is taken as the most recent such day on or before the article date
(news reports what happened that week), "gestern" as the day before, a day
without a year ("am 14. Oktober") gets the article's year.

>>> import datetime as dt
>>> [t.format("en") for t in resolve("Xi traf am Freitag Schoigu.", dt.date(2025, 2, 28))]
['Friday, 28 February 2025']
>>> [t.format("de") for t in resolve("Er kam am Donnerstag an.", dt.date(2025, 2, 28))]
['Donnerstag, 27. Februar 2025']
>>> [t.format("en") for t in resolve("Xi reiste am Mittwochabend nach Usbekistan.", dt.date(2022, 9, 15))]
['Wednesday, 14 September 2022']
>>> [t.format("de") for t in resolve("Anfang des Monats übten die Flotten.", dt.date(2024, 10, 14))]
['Anfang Oktober 2024']
>>> [t.format("en") for t in resolve("Im vergangenen Monat übten sie, vor zwei Tagen kam er.", dt.date(2024, 10, 14))]
['September 2024', 'Saturday, 12 October 2024']
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass

from embeddings.language.dates import (
    MONTHS,
    TIMES_OF_DAY,
    WEEKDAYS,
    counts_something,
    find_dates,
    find_years,
    text_language,
)
from embeddings.language.wordlists import word_list, word_values

MONTH_NAMES = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"],
}  # fmt: skip
DAY_NAMES = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "de": ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"],
}
RELATIVE_DAYS = {"heute": 0, "today": 0, "gestern": -1, "yesterday": -1, "vorgestern": -2, "morgen": 1,
                 "tomorrow": 1, "übermorgen": 2}  # fmt: skip

_WEEKDAY = re.compile(
    r"\b(?:am\s+|on\s+|last\s+|vergangenen\s+|letzten\s+)?(" + "|".join(WEEKDAYS) + r")"
    r"(?:" + "|".join(TIMES_OF_DAY) + r")?\b",
    re.I,
)
_RELATIVE = re.compile(r"\b(" + "|".join(RELATIVE_DAYS) + r")\b", re.I)
_MONTH_ONLY = re.compile(
    r"\b(?:im|in|diesen|this|last|vergangenen|letzten)\s+("
    + "|".join(m for m in MONTHS if len(m) > 3)
    + r")\b(?:\s+(dieses|des vergangenen|letzten|vergangenen)\s+Jahres)?",
    re.I,
)
# Words that belong to a year's span when they stand right before it ("seit 2014", "Ende 1687").
_YEAR_LEAD = re.compile(r"(?:\b(?:in|seit|since|bis|until|Anfang|Ende|Mitte|um|ab)\s+)$", re.I)
PARTS = {"anfang": "early", "beginn": "early", "early": "early", "mitte": "mid", "mid": "mid", "ende": "late",
         "late": "late"}  # fmt: skip
PART_NAMES = {"en": {"early": "early", "mid": "mid", "late": "late"}, "de": {"early": "Anfang", "mid": "Mitte",
              "late": "Ende"}}  # fmt: skip
# "Anfang des Monats", "earlier this month", "Ende Oktober": a part of a month.
_MONTH_PART = re.compile(
    r"\b(anfang|beginn|mitte|ende|early|mid|late)(?:\s+(?:des|dieses|des laufenden|this|the|of the|of this))?"
    r"\s+(monats|month|" + "|".join(m for m in MONTHS if len(m) > 3) + r")\b(?:\s+(\d{3,4})\b(?![.,]\d))?",
    re.I,
)
# "im vergangenen Monat", "last month", "letzte Woche", "last week": the month or week before the article's.
_LAST_PERIOD = re.compile(
    r"\b(?:im\s+|in\s+der\s+|in the\s+)?(vergangenen|letzten|vorigen|vergangene|letzte|vorige|last|past|previous)"
    r"\s+(monat|month|woche|week)\b",
    re.I,
)
_NEXT_YEAR = re.compile(r"\b(nächste[ns]?|kommende[ns]?|next|coming)\s+(jahr|jahres|year)\b", re.I)
# Counts as words before a unit of time: embeddings/data/number_words.txt and one_words.txt.
_NUMBER_WORDS = {**word_values("number_words"), **dict.fromkeys(word_list("one_words"), 1)}
# "vor zwei Tagen", "three days ago", "vor einer Woche".
_AGO = re.compile(
    r"\bvor\s+(\d+|" + "|".join(_NUMBER_WORDS) + r")\s+(tagen|wochen|woche)\b"
    r"|\b(\d+|" + "|".join(_NUMBER_WORDS) + r")\s+(days?|weeks?)\s+ago\b",
    re.I,
)


@dataclass(frozen=True)
class TimeRef:
    """A time expression in a sentence and what it resolves to.

    ``precision`` is ``"day"``, ``"month"`` or ``"year"``; parts not known are None.
    """

    start: int
    end: int
    year: int | None
    month: int | None = None
    day: int | None = None
    weekday: int | None = None
    precision: str = "day"
    resolved: bool = False  # derived from the article date rather than written out
    part: str = ""  # "early", "mid" or "late" (of the month), or "week" for a week (day = its Monday)

    @property
    def date(self) -> dt.date | None:
        if self.year and self.month and self.day:
            return dt.date(self.year, self.month, self.day)
        return None

    def format(self, lang: str) -> str:
        """``Friday, 28 February 2025`` / ``Freitag, 28. Februar 2025``; partial dates as far as known."""
        lang = lang if lang in MONTH_NAMES else "en"
        months, days = MONTH_NAMES[lang], DAY_NAMES[lang]
        if self.part == "week" and (d := self.date):
            monday = f"{d.day}. {months[d.month - 1]} {d.year}" if lang == "de" else (
                f"{d.day} {months[d.month - 1]} {d.year}")  # fmt: skip
            return f"Woche vom {monday}" if lang == "de" else f"week of {monday}"
        if self.part and self.month and self.precision == "month":
            year = f" {self.year}" if self.year else ""
            return f"{PART_NAMES[lang][self.part]} {months[self.month - 1]}{year}"
        if d := self.date:
            day = days[d.weekday()]
            if lang == "de":
                return f"{day}, {d.day}. {months[d.month - 1]} {d.year}"
            return f"{day}, {d.day} {months[d.month - 1]} {d.year}"
        if self.precision == "day" and self.month and self.day:
            return f"{self.day}. {months[self.month - 1]}" if lang == "de" else f"{self.day} {months[self.month - 1]}"
        if self.weekday is not None:
            return days[self.weekday]
        if self.month:
            return f"{months[self.month - 1]} {self.year}" if self.year else months[self.month - 1]
        if self.year and self.year < 0:
            return f"{-self.year} v. Chr." if lang == "de" else f"{-self.year} BC"
        return str(self.year) if self.year else ""


def _weekday_before(anchor: dt.date, weekday: int) -> dt.date:
    return anchor - dt.timedelta(days=(anchor.weekday() - weekday) % 7)


# Between a weekday and the date it names: "Freitag, 28. Februar", "Friday 28 February", "Freitag, den 28.".
_WEEKDAY_OF = re.compile(r",?\s*(?:den\s+|the\s+)?")


class _Found:
    """The time expressions found so far in one sentence, and the spans they cover."""

    def __init__(self, sentence: str, article_date: dt.date | None) -> None:
        self.sentence, self.article_date = sentence, article_date
        self.refs: list[TimeRef] = []
        self.taken: list[tuple[int, int]] = []
        self._language: str | None = None

    def lang(self) -> str:
        if self._language is None:
            self._language = text_language(self.sentence)
        return self._language

    def free(self, a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in self.taken)

    def add(self, ref: TimeRef) -> None:
        self.refs.append(ref)
        self.taken.append((ref.start, ref.end))


def _written_dates(f: _Found) -> None:
    """Dates written out: a day and month, with or without a year (the article's year when none is written)."""
    for mention in find_dates(f.sentence):
        year = mention.year
        resolved = False
        if year is None and f.article_date is not None:
            year = f.article_date.year
            later = mention.day and dt.date(year, mention.month, min(mention.day, 28)) > f.article_date + dt.timedelta(
                31
            )
            if later:
                year -= 1  # "am 20. Dezember" in a January article: last year
            resolved = True
        f.add(TimeRef(mention.start, mention.end, year, mention.month, mention.day, None,
                    "day" if mention.day else "month", resolved))  # fmt: skip


def _relative_days(f: _Found) -> None:
    """Days relative to the time of writing: heute, gestern, morgen."""
    for m in _RELATIVE.finditer(f.sentence):
        if f.free(m.start(), m.end()) and f.article_date is not None:
            d = f.article_date + dt.timedelta(days=RELATIVE_DAYS[m.group(1).lower()])
            f.add(TimeRef(m.start(), m.end(), d.year, d.month, d.day, d.weekday(), "day", True))


def _weekdays(f: _Found) -> None:
    """Weekdays: of the date written after them, else the last such day before the article's date."""
    for m in _WEEKDAY.finditer(f.sentence):
        if not f.free(m.start(), m.end()):
            continue
        weekday = WEEKDAYS[m.group(1).lower()]
        written = next((r for r in f.refs if _WEEKDAY_OF.fullmatch(f.sentence, m.end(), r.start)), None)
        if (
            written is not None
        ):  # "Freitag, 28. Februar 1687": the weekday of the date written, not of the article's week
            i = f.refs.index(written)
            f.refs[i] = TimeRef(m.start(), written.end, written.year, written.month, written.day,
                              weekday if written.date is None else written.date.weekday(), written.precision,
                              written.resolved, written.part)  # fmt: skip
            f.taken[i] = (m.start(), written.end)
            continue
        if f.article_date is not None:
            d = _weekday_before(f.article_date, weekday)
            f.add(TimeRef(m.start(), m.end(), d.year, d.month, d.day, weekday, "day", True))
        else:
            f.add(TimeRef(m.start(), m.end(), None, None, None, weekday, "day"))


def _month_parts(f: _Found) -> None:
    """Parts of a month: Anfang, Mitte, Ende Oktober (the year written after them wins)."""
    for m in _MONTH_PART.finditer(f.sentence):
        inside = [r for r in f.refs if m.start() <= r.start and r.end <= m.end() and r.day is None]
        for r in inside:  # "Anfang Oktober 1687": the part of the month takes the month written after it
            f.taken.remove((r.start, r.end))
            f.refs.remove(r)
        if not f.free(m.start(), m.end()):
            continue
        word = m.group(2).casefold()
        month = MONTHS.get(word) or (f.article_date.month if f.article_date else None)
        if month is None:
            continue
        year_written = m.group(3) and word in MONTHS and not counts_something(f.sentence, m.end(3), f.lang())
        if year_written:  # "Anfang Oktober 1687": the year written wins over the article's
            f.add(
                TimeRef(
                    m.start(), m.end(), int(m.group(3)), month, None, None, "month", False, PARTS[m.group(1).casefold()]
                )
            )
            continue
        end = m.end(2)
        year = f.article_date.year if f.article_date else None
        if year and f.article_date and word in MONTHS and month > f.article_date.month + 1:
            year -= 1  # "Ende Dezember" in a January article: last year
        f.add(TimeRef(m.start(), end, year, month, None, None, "month", True, PARTS[m.group(1).casefold()]))


def _last_periods(f: _Found) -> None:
    """The last week or month before the article's date."""
    for m in _LAST_PERIOD.finditer(f.sentence):
        if not f.free(m.start(), m.end()) or f.article_date is None:
            continue
        if m.group(2).casefold() in ("monat", "month"):
            first = f.article_date.replace(day=1) - dt.timedelta(days=1)
            f.add(TimeRef(m.start(), m.end(), first.year, first.month, None, None, "month", True))
        else:
            monday = f.article_date - dt.timedelta(days=f.article_date.weekday() + 7)
            f.add(TimeRef(m.start(), m.end(), monday.year, monday.month, monday.day, None, "day", True, "week"))


def _ago(f: _Found) -> None:
    """Periods ago: vor drei Tagen, two weeks ago."""
    for m in _AGO.finditer(f.sentence):
        if not f.free(m.start(), m.end()) or f.article_date is None:
            continue
        count, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        n = int(count) if count.isdigit() else _NUMBER_WORDS[count.casefold()]
        if n > 3_650:  # "vor 1000000 Tagen" is no date
            continue
        days = n * (7 if unit.casefold().startswith(("woche", "week")) else 1)
        d = f.article_date - dt.timedelta(days=days)
        f.add(TimeRef(m.start(), m.end(), d.year, d.month, d.day, d.weekday(), "day", True))


def _months_only(f: _Found) -> None:
    """A month alone: im März, im vergangenen Dezember."""
    for m in _MONTH_ONLY.finditer(f.sentence):
        if not f.free(m.start(), m.end()):
            continue
        month = MONTHS[m.group(1).lower()]
        year = None
        if f.article_date is not None:
            year = f.article_date.year
            if (m.group(2) or "").lower() in ("des vergangenen", "letzten", "vergangenen"):
                year -= 1
        f.add(TimeRef(m.start(), m.end(), year, month, None, None, "month", year is not None))


def _next_year(f: _Found) -> None:
    """Next year: nächstes Jahr, next year."""
    for m in _NEXT_YEAR.finditer(f.sentence):
        if f.free(m.start(), m.end()):  # a time even when the article's date is unknown (then no year)
            year = f.article_date.year + 1 if f.article_date else None
            f.add(TimeRef(m.start(), m.end(), year, precision="year", resolved=year is not None))


def _years(f: _Found) -> None:
    """Years alone, of any century: 800, 1687, 2025."""
    for y in find_years(f.sentence):
        if f.free(y.start, y.end):
            lead = _YEAR_LEAD.search(f.sentence, 0, y.start)
            f.add(TimeRef(lead.start() if lead else y.start, y.end, y.year, precision="year"))


_STAGES = (
    _written_dates,
    _relative_days,
    _weekdays,
    _month_parts,
    _last_periods,
    _ago,
    _months_only,
    _next_year,
    _years,
)


def resolve(sentence: str, article_date: dt.date | None) -> list[TimeRef]:
    """All time expressions of ``sentence``, most specific first within each span, in text order.

    A year written in the sentence wins over the article's ("am 14. Oktober 1687", "Anfang Oktober 1687");
    words relative to the time of writing ("heute", "am Freitag", "letzte Woche") resolve only against
    ``article_date`` and are left unresolved without one (no date is made up for an undated text).

    >>> [t.format("en") for t in resolve("Am 14. Oktober 1687 kam er an.", dt.date(2025, 2, 28))]
    ['Tuesday, 14 October 1687']
    >>> [(t.year, t.resolved) for t in resolve("Heute und im Jahr 800.", None)]
    [(800, False)]
    """
    return list(_resolved(sentence, article_date))


@functools.lru_cache(maxsize=8192)  # pure; a sentence is a candidate of many questions (TimeRef is frozen)
def _resolved(sentence: str, article_date: dt.date | None) -> tuple[TimeRef, ...]:
    found = _Found(sentence, article_date)
    for find in _STAGES:  # most specific first: a later stage takes only spans no earlier one took
        find(found)
    return tuple(sorted(found.refs, key=lambda r: r.start))


def has_time(sentence: str) -> bool:
    """Whether the sentence mentions any date, weekday, month or year."""
    return bool(resolve(sentence, None))

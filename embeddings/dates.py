"""Find calendar dates in German and English news text, and infer an article's date.

Pure functions, no I/O. A :class:`DateMention` keeps the character span it was
found at, so callers can cite or highlight it.

>>> [m.date.isoformat() for m in find_dates("am 14. Oktober 2024 in Peking; February 28, 2025")]
['2024-10-14', '2025-02-28']
>>> infer_date("Der Minister traf am 14. Oktober 2024 ein.").isoformat()
'2024-10-14'
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

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
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_DAY = r"(?P<day>[0-3]?\d)"

_PATTERNS = [
    # 2025-02-28
    re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<mnum>[01]\d)-(?P<day>[0-3]\d)\b"),
    # 28.02.2025 / 28.2.2025
    re.compile(r"\b" + _DAY + r"\.\s?(?P<mnum>[01]?\d)\.\s?" + _YEAR + r"\b"),
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
    """All date mentions in ``text``, in order, without overlaps (the longest wins)."""
    found: list[DateMention] = []
    for pattern in _PATTERNS:
        for m in pattern.finditer(text):
            groups = m.groupdict()
            month = int(groups["mnum"]) if groups.get("mnum") else MONTHS.get(groups["month"].lower().rstrip("."), 0)
            day = int(groups["day"]) if groups.get("day") else None
            year = int(groups["year"]) if groups.get("year") else None
            if month and _valid(year, month, day):
                found.append(DateMention(m.start(), m.end(), year, month, day))
    found.sort(key=lambda d: (d.start, -(d.end - d.start)))
    result: list[DateMention] = []
    for mention in found:
        if result and mention.start < result[-1].end:
            continue
        result.append(mention)
    return result


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


def infer_date(text: str) -> dt.date | None:
    """Best guess of when an article was written, from the full dates it mentions.

    The most frequent full date wins; ties go to the latest, since news text
    refers back to earlier events more than forward. ``None`` when the text
    has no full date.
    """
    counts = Counter(m.date for m in find_dates(text) if m.date)
    if not counts:
        return None
    return max(counts, key=lambda d: (counts[d], d))

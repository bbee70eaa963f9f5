"""Official public holidays and make-up working days (调休) of mainland China.

Data only. Source for 2026: the State Council General Office notice on the 2026
holiday arrangements (国务院办公厅关于2026年部分节假日安排的通知). A holiday break is
listed day by day, weekend days included; make-up working days are weekend days
that are worked.

Later years: the State Council publishes each year's notice late in the year
before. Until it is added here, an admin must load it into the calendar table
(``calendar_days``) when it is published; 2027 below only has New Year's Day,
so that deadlines running past the end of 2026 do not count it as a working day.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

Entry = tuple[date, str, str]
Row = tuple[date, Literal["holiday", "workday"], str, str]


def _break(first: date, last: date, name_zh: str, name_en: str) -> list[Entry]:
    """Every day from ``first`` to ``last`` inclusive, with the same names."""
    days = (last - first).days + 1
    return [(first + timedelta(days=i), name_zh, name_en) for i in range(days)]


NEW_YEAR = ("元旦", "New Year's Day")
SPRING_FESTIVAL = ("春节", "Spring Festival")
QINGMING = ("清明节", "Qingming Festival")
LABOUR_DAY = ("劳动节", "Labour Day")
DRAGON_BOAT = ("端午节", "Dragon Boat Festival")
MID_AUTUMN = ("中秋节", "Mid-Autumn Festival")
NATIONAL_DAY = ("国庆节", "National Day")


def _makeup(day: date, holiday: tuple[str, str]) -> Entry:
    return (day, f"{holiday[0]}调休上班", f"{holiday[1]} make-up working day")


HOLIDAYS_2026: list[Entry] = [
    *_break(date(2026, 1, 1), date(2026, 1, 3), *NEW_YEAR),
    *_break(date(2026, 2, 15), date(2026, 2, 23), *SPRING_FESTIVAL),
    *_break(date(2026, 4, 4), date(2026, 4, 6), *QINGMING),
    *_break(date(2026, 5, 1), date(2026, 5, 5), *LABOUR_DAY),
    *_break(date(2026, 6, 19), date(2026, 6, 21), *DRAGON_BOAT),
    *_break(date(2026, 9, 25), date(2026, 9, 27), *MID_AUTUMN),
    *_break(date(2026, 10, 1), date(2026, 10, 7), *NATIONAL_DAY),
]

WORKDAYS_2026: list[Entry] = [
    _makeup(date(2026, 1, 4), NEW_YEAR),  # Sunday
    _makeup(date(2026, 2, 14), SPRING_FESTIVAL),  # Saturday
    _makeup(date(2026, 2, 28), SPRING_FESTIVAL),  # Saturday
    _makeup(date(2026, 5, 9), LABOUR_DAY),  # Saturday
    _makeup(date(2026, 9, 20), NATIONAL_DAY),  # Sunday
    _makeup(date(2026, 10, 10), NATIONAL_DAY),  # Saturday
]

# Only the statutory New Year's Day (a Friday): the 2027 notice is not out yet.
# Load the rest of 2027 (and later years) from the official notice when published.
HOLIDAYS_2027: list[Entry] = [(date(2027, 1, 1), *NEW_YEAR)]
WORKDAYS_2027: list[Entry] = []

_YEARS: dict[int, tuple[list[Entry], list[Entry]]] = {
    2026: (HOLIDAYS_2026, WORKDAYS_2026),
    2027: (HOLIDAYS_2027, WORKDAYS_2027),
}

KNOWN_YEARS: tuple[int, ...] = tuple(sorted(_YEARS))


def rows_for(year: int) -> list[Row]:
    """Calendar rows ``(day, "holiday"|"workday", name_zh, name_en)`` for ``year``, by day.

    Empty for a year this module has no data for.
    """
    holidays, workdays = _YEARS.get(year, ([], []))
    rows: list[Row] = [(d, "holiday", zh, en) for d, zh, en in holidays]
    rows += [(d, "workday", zh, en) for d, zh, en in workdays]
    return sorted(rows)

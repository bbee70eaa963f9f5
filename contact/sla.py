"""Deadline arithmetic over a business calendar. Pure: no database, no I/O.

Working time is counted in the calendar's time zone; every datetime returned is
timezone-aware UTC. Naive datetimes are refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from types import MappingProxyType
from typing import Protocol
from zoneinfo import ZoneInfo

from contact.models import CalendarDayKind, Priority, SlaState

Period = tuple[time, time]

# Default working periods of a Monday–Friday: 09:00–12:00 and 13:30–17:30.
STANDARD_PERIODS: tuple[Period, ...] = ((time(9, 0), time(12, 0)), (time(13, 30), time(17, 30)))

# How far ahead a deadline may be searched for before giving up.
MAX_SEARCH_DAYS = 3 * 366

_MINUTE = timedelta(minutes=1)


class WorkingHoursRow(Protocol):
    """What :meth:`BusinessCalendar.from_rows` reads from a working-hours row."""

    @property
    def weekday(self) -> int: ...
    @property
    def start_time(self) -> time: ...
    @property
    def end_time(self) -> time: ...


class CalendarDayRow(Protocol):
    """What :meth:`BusinessCalendar.from_rows` reads from a calendar-day row."""

    @property
    def day(self) -> date: ...
    @property
    def kind(self) -> str: ...


class PolicyLike(Protocol):
    """The deadline-policy fields :func:`deadlines` uses."""

    @property
    def accept_minutes(self) -> int: ...
    @property
    def resolve_minutes(self) -> int: ...
    @property
    def urgent_accept_minutes(self) -> int: ...
    @property
    def urgent_resolve_minutes(self) -> int: ...
    @property
    def working_time(self) -> bool: ...


def _zone(tz: ZoneInfo | str) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def _aware(value: datetime, name: str = "datetime") -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


def _normalise_periods(weekday: int, periods: Iterable[Period]) -> tuple[Period, ...]:
    if not 0 <= weekday <= 6:
        raise ValueError(f"weekday must be 0..6, got {weekday}")
    ordered = tuple(sorted((start, end) for start, end in periods))
    for start, end in ordered:
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError("working periods are local wall times: no tzinfo")
        if not start < end:
            raise ValueError(f"working period {start}–{end} must start before it ends")
    for (_, end), (start, _) in pairwise(ordered):
        if start < end:
            raise ValueError(f"working periods overlap on weekday {weekday}")
    return ordered


@dataclass(frozen=True)
class BusinessCalendar:
    """Weekly working periods plus holiday and make-up working-day exceptions."""

    tz: ZoneInfo
    hours: Mapping[int, tuple[Period, ...]] = field(hash=False)
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    # Periods of an ordinary working day, used by make-up working days on a weekend.
    _ordinary: tuple[Period, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        hours = {}
        for weekday, periods in sorted(self.hours.items()):
            normalised = _normalise_periods(weekday, periods)
            if normalised:
                hours[weekday] = normalised
        holidays = frozenset(self.holidays)
        workdays = frozenset(self.workdays)
        clash = holidays & workdays
        if clash:
            raise ValueError(f"days both holiday and workday: {sorted(clash)}")
        ordinary = hours.get(0) or next(iter(hours.values()), ())
        object.__setattr__(self, "tz", _zone(self.tz))
        object.__setattr__(self, "hours", MappingProxyType(hours))
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "workdays", workdays)
        object.__setattr__(self, "_ordinary", ordinary)

    # ------------------------------------------------------------ construction

    @classmethod
    def standard(
        cls,
        tz: ZoneInfo | str,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
    ) -> BusinessCalendar:
        """Monday–Friday 09:00–12:00 and 13:30–17:30."""
        return cls(
            tz=_zone(tz),
            hours={weekday: STANDARD_PERIODS for weekday in range(5)},
            holidays=frozenset(holidays),
            workdays=frozenset(workdays),
        )

    @classmethod
    def from_rows(
        cls,
        tz: ZoneInfo | str,
        working_hours_rows: Iterable[WorkingHoursRow],
        calendar_day_rows: Iterable[CalendarDayRow],
    ) -> BusinessCalendar:
        """Build from ``WorkingHours`` and ``CalendarDay`` rows (or look-alikes)."""
        hours: dict[int, list[Period]] = {}
        for row in working_hours_rows:
            hours.setdefault(row.weekday, []).append((row.start_time, row.end_time))
        holidays: set[date] = set()
        workdays: set[date] = set()
        for day_row in calendar_day_rows:
            kind = CalendarDayKind(day_row.kind)
            (holidays if kind is CalendarDayKind.holiday else workdays).add(day_row.day)
        return cls(
            tz=_zone(tz),
            hours={weekday: tuple(periods) for weekday, periods in hours.items()},
            holidays=frozenset(holidays),
            workdays=frozenset(workdays),
        )

    # ------------------------------------------------------------ days

    def periods(self, d: date) -> tuple[Period, ...]:
        """Working periods of ``d`` (local wall times); empty when not a working day."""
        if d in self.holidays:
            return ()
        own = self.hours.get(d.weekday(), ())
        if d in self.workdays:
            return own or self._ordinary
        return own

    def is_working_day(self, d: date) -> bool:
        return bool(self.periods(d))

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` falls in working time."""
        at = _aware(at, "at").astimezone(UTC)
        return any(begin <= at < end for begin, end in self._spans(at.astimezone(self.tz).date()))

    def _spans(self, d: date) -> list[tuple[datetime, datetime]]:
        """The working periods of ``d`` as UTC instants."""
        return [
            (
                datetime.combine(d, start, tzinfo=self.tz).astimezone(UTC),
                datetime.combine(d, end, tzinfo=self.tz).astimezone(UTC),
            )
            for start, end in self.periods(d)
        ]

    # ------------------------------------------------------------ arithmetic

    def add_working_minutes(self, start: datetime, minutes: int) -> datetime:
        """The instant ``minutes`` of working time after ``start`` (UTC).

        Counting begins at the next working period when ``start`` is outside working
        time; a deadline that uses up a period exactly stays at that period's end.
        """
        current = _aware(start, "start").astimezone(UTC)
        if minutes < 0:
            raise ValueError("minutes must not be negative")
        if minutes == 0:
            return current
        if not self.hours:
            raise ValueError("the business calendar has no working hours")
        remaining = timedelta(minutes=minutes)
        day = start.astimezone(self.tz).date()
        for _ in range(MAX_SEARCH_DAYS):
            for begin, end in self._spans(day):
                if end <= current:
                    continue
                begin = max(begin, current)
                available = end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
                current = end
            day += timedelta(days=1)
        raise ValueError(f"no deadline within {MAX_SEARCH_DAYS} days of {start.isoformat()}")

    def working_minutes_between(self, a: datetime, b: datetime) -> float:
        """Minutes of working time from ``a`` to ``b``; 0 when ``b <= a``."""
        lo = _aware(a, "a").astimezone(UTC)
        hi = _aware(b, "b").astimezone(UTC)
        if hi <= lo:
            return 0.0
        total = timedelta()
        day = lo.astimezone(self.tz).date()
        last = hi.astimezone(self.tz).date()
        while day <= last:
            for begin, end in self._spans(day):
                overlap = min(end, hi) - max(begin, lo)
                if overlap > timedelta():
                    total += overlap
            day += timedelta(days=1)
        return total / _MINUTE


from_rows = BusinessCalendar.from_rows


def due_at(
    start: datetime, minutes: int, calendar: BusinessCalendar, working_time: bool
) -> datetime:
    """``minutes`` after ``start``: working time over ``calendar``, or plain clock time (UTC)."""
    if working_time:
        return calendar.add_working_minutes(start, minutes)
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    return _aware(start, "start").astimezone(UTC) + timedelta(minutes=minutes)


def deadlines(
    start: datetime,
    policy: PolicyLike,
    priority: Priority | str,
    calendar: BusinessCalendar,
) -> tuple[datetime, datetime]:
    """``(accept_due_at, resolve_due_at)`` for a ticket received at ``start``."""
    if Priority(priority) is Priority.urgent:
        accept, resolve = policy.urgent_accept_minutes, policy.urgent_resolve_minutes
    else:
        accept, resolve = policy.accept_minutes, policy.resolve_minutes
    working = bool(policy.working_time)
    return (
        due_at(start, accept, calendar, working),
        due_at(start, resolve, calendar, working),
    )


def sla_state(now: datetime, start: datetime, due: datetime, due_soon_fraction: float) -> SlaState:
    """``overdue`` after ``due``; ``due_soon`` in the last ``fraction`` of the window; else ok."""
    if not 0.0 <= due_soon_fraction <= 1.0:
        raise ValueError("due_soon_fraction must be between 0 and 1")
    if now > due:
        return SlaState.overdue
    window = due - start
    if window <= timedelta() or due - now <= window * due_soon_fraction:
        return SlaState.due_soon
    return SlaState.ok


def final_state(resolved_at: datetime, due: datetime) -> SlaState:
    """``met`` when resolved by ``due`` (inclusive), else ``missed``."""
    return SlaState.met if resolved_at <= due else SlaState.missed

"""Deadlines a citizen and a department would see, over the 2026 Chinese calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from contact import calendar_cn
from contact.models import (
    CalendarDay,
    CalendarDayKind,
    DeadlinePolicy,
    Priority,
    SlaState,
    WorkingHours,
)
from contact.sla import (
    BusinessCalendar,
    deadlines,
    due_at,
    final_state,
    sla_state,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
WORKING_DAY = 7 * 60  # 09:00–12:00 + 13:30–17:30


def _working_hours_rows() -> list[WorkingHours]:
    rows = []
    for weekday in range(5):
        rows.append(WorkingHours(weekday=weekday, start_time=time(9), end_time=time(12)))
        rows.append(WorkingHours(weekday=weekday, start_time=time(13, 30), end_time=time(17, 30)))
    return rows


def _calendar_day_rows() -> list[CalendarDay]:
    return [
        CalendarDay(day=day, kind=CalendarDayKind(kind), name_zh=zh, name_en=en)
        for year in (2026, 2027)
        for day, kind, zh, en in calendar_cn.rows_for(year)
    ]


CAL = BusinessCalendar.from_rows(SHANGHAI, _working_hours_rows(), _calendar_day_rows())


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def utc_of(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return local(year, month, day, hour, minute).astimezone(UTC)


def policy(*, working_time: bool) -> DeadlinePolicy:
    return DeadlinePolicy(
        code="p",
        name_zh="测试",
        name_en="Test",
        accept_minutes=2 * 60,
        resolve_minutes=5 * WORKING_DAY,
        urgent_accept_minutes=30,
        urgent_resolve_minutes=60,
        working_time=working_time,
    )


# ---------------------------------------------------------------- the 2026 calendar data


def test_calendar_data_matches_the_2026_notice() -> None:
    holidays = {d for d, *_ in calendar_cn.HOLIDAYS_2026}
    workdays = {d for d, *_ in calendar_cn.WORKDAYS_2026}
    assert len(holidays) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert workdays == {
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    }
    assert all(d.weekday() >= 5 for d in workdays)
    assert not holidays & workdays
    rows = calendar_cn.rows_for(2026)
    assert rows == sorted(rows)
    assert (date(2026, 10, 1), "holiday", "国庆节", "National Day") in rows
    assert calendar_cn.rows_for(2027)[0][:2] == (date(2027, 1, 1), "holiday")
    assert calendar_cn.rows_for(1999) == []


# ---------------------------------------------------------------- working-time deadlines


def test_friday_afternoon_ticket_is_due_monday_morning_after_lunch_rules() -> None:
    # Fri 16:00–17:30 is 90 minutes; the remaining 150 run Monday 09:00–11:30.
    due = CAL.add_working_minutes(local(2026, 3, 6, 16, 0), 4 * 60)
    assert due == utc_of(2026, 3, 9, 11, 30)
    assert due.tzinfo is UTC


def test_four_hours_from_monday_morning_crosses_the_lunch_break() -> None:
    assert CAL.add_working_minutes(local(2026, 3, 9, 10, 0), 4 * 60) == utc_of(2026, 3, 9, 15, 30)


def test_national_day_week_is_skipped_and_the_october_10_saturday_counts() -> None:
    start = local(2026, 9, 30, 10, 0)
    due = CAL.add_working_minutes(start, 5 * WORKING_DAY)
    # Sep 30 (6h), Oct 8, Oct 9, Sat Oct 10 (make-up), Oct 12, then one hour on Oct 13.
    assert due == utc_of(2026, 10, 13, 10, 0)
    without_makeup = BusinessCalendar.standard(SHANGHAI, holidays=CAL.holidays)
    assert without_makeup.add_working_minutes(start, 5 * WORKING_DAY) == utc_of(2026, 10, 14, 10, 0)


def test_make_up_saturday_is_a_working_day_and_the_sunday_after_is_not() -> None:
    assert CAL.is_working_day(date(2026, 2, 28))
    assert CAL.periods(date(2026, 2, 28)) == CAL.periods(date(2026, 3, 2))
    assert not CAL.is_working_day(date(2026, 3, 1))
    assert CAL.periods(date(2026, 3, 1)) == ()
    # Friday 17:00 plus an hour: 30 minutes on Friday, 30 on the make-up Saturday.
    assert CAL.add_working_minutes(local(2026, 2, 27, 17, 0), 60) == utc_of(2026, 2, 28, 9, 30)


def test_public_holiday_on_a_weekday_is_not_a_working_day() -> None:
    assert not CAL.is_working_day(date(2026, 10, 1))  # Thursday
    assert not CAL.is_working_day(date(2026, 1, 1))  # Thursday
    assert CAL.is_working_day(date(2026, 1, 4))  # Sunday, make-up
    assert CAL.is_working_day(date(2026, 3, 2))  # ordinary Monday


def test_spring_festival_ticket_waits_for_the_end_of_the_break() -> None:
    # Fri Feb 13 16:00 (90 min), Sat Feb 14 make-up (420), Feb 15–23 off, Tue Feb 24.
    due = CAL.add_working_minutes(local(2026, 2, 13, 16, 0), 2 * WORKING_DAY)
    assert due == utc_of(2026, 2, 24, 16, 0)


def test_ticket_received_in_the_evening_starts_counting_next_morning() -> None:
    assert CAL.add_working_minutes(local(2026, 3, 10, 19, 0), 30) == utc_of(2026, 3, 11, 9, 30)


def test_ticket_received_before_opening_starts_counting_at_nine() -> None:
    assert CAL.add_working_minutes(local(2026, 3, 10, 7, 0), 30) == utc_of(2026, 3, 10, 9, 30)


def test_ticket_received_on_sunday_starts_counting_on_monday() -> None:
    assert CAL.add_working_minutes(local(2026, 3, 8, 11, 0), 30) == utc_of(2026, 3, 9, 9, 30)


def test_ticket_received_during_lunch_starts_counting_at_half_past_one() -> None:
    assert CAL.add_working_minutes(local(2026, 3, 10, 12, 15), 30) == utc_of(2026, 3, 10, 14, 0)


def test_deadline_that_uses_up_the_morning_is_noon_not_half_past_one() -> None:
    assert CAL.add_working_minutes(local(2026, 3, 10, 9, 0), 180) == utc_of(2026, 3, 10, 12, 0)
    assert CAL.add_working_minutes(local(2026, 3, 10, 9, 0), 181) == utc_of(2026, 3, 10, 13, 31)


def test_deadline_that_uses_up_the_day_is_half_past_five_not_next_morning() -> None:
    due = CAL.add_working_minutes(local(2026, 3, 10, 9, 0), WORKING_DAY)
    assert due == utc_of(2026, 3, 10, 17, 30)


def test_zero_minutes_returns_the_start_unchanged() -> None:
    start = local(2026, 3, 8, 22, 15)  # Sunday night
    assert CAL.add_working_minutes(start, 0) == start
    assert CAL.add_working_minutes(start, 0).tzinfo is UTC


def test_negative_minutes_are_refused() -> None:
    with pytest.raises(ValueError):
        CAL.add_working_minutes(local(2026, 3, 10, 9, 0), -1)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError):
        CAL.add_working_minutes(datetime(2026, 3, 10, 9, 0), 10)


# ---------------------------------------------------------------- time zones


def test_utc_start_is_counted_in_shanghai_working_hours() -> None:
    # Sunday 23:00 UTC is Monday 07:00 in Shanghai: counting starts Monday 09:00 local.
    start = datetime(2026, 3, 8, 23, 0, tzinfo=UTC)
    due = CAL.add_working_minutes(start, 60)
    assert due == datetime(2026, 3, 9, 2, 0, tzinfo=UTC)
    assert due.astimezone(SHANGHAI) == local(2026, 3, 9, 10, 0)


def test_start_in_another_zone_gives_the_same_deadline() -> None:
    shanghai_start = local(2026, 3, 9, 16, 0)
    new_york_start = shanghai_start.astimezone(ZoneInfo("America/New_York"))
    assert CAL.add_working_minutes(new_york_start, 120) == CAL.add_working_minutes(
        shanghai_start, 120
    )


# ---------------------------------------------------------------- policies


def test_clock_time_urgent_policy_runs_through_saturday_night() -> None:
    start = local(2026, 3, 7, 23, 30)  # Saturday
    accept, resolve = deadlines(start, policy(working_time=False), Priority.urgent, CAL)
    assert accept == utc_of(2026, 3, 8, 0, 0)
    assert resolve == utc_of(2026, 3, 8, 0, 30)  # Sunday 00:30


def test_working_time_normal_policy_uses_normal_minutes() -> None:
    start = local(2026, 3, 6, 16, 0)  # Friday
    accept, resolve = deadlines(start, policy(working_time=True), "normal", CAL)
    assert accept == utc_of(2026, 3, 9, 9, 30)
    assert resolve == CAL.add_working_minutes(start, 5 * WORKING_DAY)
    assert resolve == utc_of(2026, 3, 13, 16, 0)


def test_working_time_urgent_policy_uses_urgent_minutes() -> None:
    start = local(2026, 3, 6, 17, 15)  # Friday, 15 minutes before closing
    accept, resolve = deadlines(start, policy(working_time=True), Priority.urgent, CAL)
    assert accept == utc_of(2026, 3, 9, 9, 15)
    assert resolve == utc_of(2026, 3, 9, 9, 45)


def test_due_at_in_clock_time_ignores_the_calendar() -> None:
    start = local(2026, 10, 1, 10, 0)  # National Day
    assert due_at(start, 90, CAL, working_time=False) == utc_of(2026, 10, 1, 11, 30)
    assert due_at(start, 90, CAL, working_time=True) == utc_of(2026, 10, 8, 10, 30)


# ---------------------------------------------------------------- measuring working time


def test_working_minutes_between_skips_lunch_nights_and_weekends() -> None:
    assert CAL.working_minutes_between(local(2026, 3, 10, 11, 0), local(2026, 3, 10, 14, 0)) == 90
    friday, monday = local(2026, 3, 6, 17, 0), local(2026, 3, 9, 9, 30)
    assert CAL.working_minutes_between(friday, monday) == 60
    assert CAL.working_minutes_between(monday, friday) == 0


def test_working_minutes_between_over_the_national_day_week() -> None:
    start = local(2026, 9, 30, 10, 0)
    assert CAL.working_minutes_between(start, local(2026, 10, 13, 10, 0)) == 5 * WORKING_DAY


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1),
        max_value=datetime(2026, 12, 31, 23, 59),
        timezones=st.just(SHANGHAI),
    ),
    minutes=st.integers(min_value=0, max_value=20000),
)
def test_measuring_an_added_deadline_gives_back_the_minutes(start: datetime, minutes: int) -> None:
    due = CAL.add_working_minutes(start, minutes)
    assert due >= start
    assert CAL.working_minutes_between(start, due) == minutes


@settings(max_examples=200, deadline=None)
@given(
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31)),
    which=st.integers(min_value=0, max_value=1),
    offset=st.integers(min_value=0, max_value=240),
    minutes=st.integers(min_value=0, max_value=20000),
)
def test_from_inside_working_time_deadline_and_measure_agree(
    day: date, which: int, offset: int, minutes: int
) -> None:
    periods = CAL.periods(day)
    assume(periods)
    begin, end = periods[which]
    start = datetime.combine(day, begin, tzinfo=SHANGHAI) + timedelta(minutes=offset)
    start = min(start, datetime.combine(day, end, tzinfo=SHANGHAI))
    due = CAL.add_working_minutes(start, minutes)
    assert CAL.working_minutes_between(start, due) == minutes
    if minutes:
        local_due = due.astimezone(SHANGHAI)
        assert CAL.is_working_day(local_due.date())
        assert any(s < local_due.time() <= e for s, e in CAL.periods(local_due.date()))


# ---------------------------------------------------------------- SLA states


def test_sla_state_thresholds() -> None:
    start = local(2026, 3, 9, 9, 0)
    due = start + timedelta(minutes=100)

    def at(minutes: int) -> datetime:
        return start + timedelta(minutes=minutes)

    assert sla_state(at(0), start, due, 0.2) is SlaState.ok
    assert sla_state(at(79), start, due, 0.2) is SlaState.ok
    assert sla_state(at(80), start, due, 0.2) is SlaState.due_soon
    assert sla_state(due, start, due, 0.2) is SlaState.due_soon
    assert sla_state(due + timedelta(seconds=1), start, due, 0.2) is SlaState.overdue
    assert sla_state(at(99), start, due, 0.0) is SlaState.ok


def test_sla_state_refuses_a_fraction_outside_zero_to_one() -> None:
    start = local(2026, 3, 9, 9, 0)
    with pytest.raises(ValueError):
        sla_state(start, start, start + timedelta(hours=1), 1.5)


def test_resolved_on_the_deadline_is_met_and_a_second_late_is_missed() -> None:
    due = utc_of(2026, 3, 9, 17, 30)
    assert final_state(due, due) is SlaState.met
    assert final_state(due - timedelta(hours=1), due) is SlaState.met
    assert final_state(due + timedelta(seconds=1), due) is SlaState.missed


# ---------------------------------------------------------------- misconfigured calendars


def test_calendar_without_working_hours_cannot_compute_a_deadline() -> None:
    empty = BusinessCalendar.from_rows(SHANGHAI, [], [])
    with pytest.raises(ValueError):
        empty.add_working_minutes(local(2026, 3, 9, 9, 0), 60)
    assert empty.working_minutes_between(local(2026, 3, 9), local(2026, 3, 20)) == 0


def test_deadline_beyond_three_years_is_refused() -> None:
    with pytest.raises(ValueError):
        CAL.add_working_minutes(local(2026, 3, 9, 9, 0), 4 * 365 * WORKING_DAY)


def test_overlapping_working_periods_are_refused() -> None:
    with pytest.raises(ValueError):
        BusinessCalendar(SHANGHAI, {0: ((time(9), time(12)), (time(11), time(14)))})


def test_make_up_day_uses_monday_hours_or_else_the_first_weekday_with_hours() -> None:
    hours = {0: ((time(8), time(11)),), 1: ((time(9), time(17)),)}
    cal = BusinessCalendar(SHANGHAI, hours, workdays=frozenset({date(2026, 2, 28)}))
    assert cal.periods(date(2026, 2, 28)) == ((time(8), time(11)),)
    tuesday_only = BusinessCalendar(
        SHANGHAI, {1: ((time(9), time(17)),)}, frozenset(), frozenset({date(2026, 2, 28)})
    )
    assert tuesday_only.periods(date(2026, 2, 28)) == ((time(9), time(17)),)

"""Working-hours arithmetic: due times count only working windows, and counting back is exact."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbot.core.working_hours import WorkCalendar, add_working_time, working_time_between

HOLIDAYS = frozenset({date(2026, 12, 24), date(2026, 12, 25), date(2027, 1, 1)})
OFFICE = WorkCalendar(weekdays=frozenset(range(5)), start=time(9), end=time(17), holidays=HOLIDAYS)

moments = st.datetimes(
    min_value=datetime(2026, 11, 1), max_value=datetime(2027, 3, 1), timezones=st.just(UTC)
)
amounts = st.integers(min_value=0, max_value=200 * 60).map(lambda minutes: timedelta(minutes=minutes))


@given(moments, amounts)
def test_counting_back_the_added_working_time_gives_it_again(start: datetime, amount: timedelta) -> None:
    due = add_working_time(start, amount, OFFICE)
    assert working_time_between(start, due, OFFICE) == amount


@given(moments, amounts)
def test_a_due_time_never_falls_on_a_weekend_a_holiday_or_outside_hours(
    start: datetime, amount: timedelta
) -> None:
    due = add_working_time(start, amount, OFFICE)
    assert OFFICE.works_on(due.date())
    assert time(9) <= due.time() <= time(17)


@given(st.dates(min_value=date(2026, 11, 1), max_value=date(2027, 3, 1)))
def test_a_whole_day_counts_its_window_if_worked_and_nothing_if_off(day: date) -> None:
    midnight = datetime.combine(day, time(), UTC)
    counted = working_time_between(midnight, midnight + timedelta(days=1), OFFICE)
    expected = timedelta(hours=8) if day.weekday() < 5 and day not in HOLIDAYS else timedelta(0)
    assert counted == expected


@given(moments, moments)
def test_working_time_between_is_antisymmetric(a: datetime, b: datetime) -> None:
    assert working_time_between(a, b, OFFICE) == -working_time_between(b, a, OFFICE)


def test_mail_on_friday_evening_is_due_on_monday_with_a_working_day_allowed() -> None:
    friday_evening = datetime(2026, 12, 4, 18, 30, tzinfo=UTC)
    assert add_working_time(friday_evening, timedelta(hours=8), OFFICE) == datetime(
        2026, 12, 7, 17, tzinfo=UTC
    )


def test_the_christmas_holidays_are_skipped() -> None:
    wednesday = datetime(2026, 12, 23, 16, tzinfo=UTC)
    assert add_working_time(wednesday, timedelta(hours=2), OFFICE) == datetime(2026, 12, 28, 10, tzinfo=UTC)


def test_hours_are_counted_in_the_calendars_zone() -> None:
    shanghai = WorkCalendar(
        weekdays=frozenset(range(5)), start=time(9), end=time(18), zone=timezone(timedelta(hours=8))
    )
    # 02:00 UTC on a Monday is 10:00 in Shanghai: eight hours of work remain that day.
    due = add_working_time(datetime(2026, 12, 7, 2, tzinfo=UTC), timedelta(hours=8), shanghai)
    assert due.astimezone(UTC) == datetime(2026, 12, 7, 10, tzinfo=UTC)


def test_a_calendar_without_working_days_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one working weekday"):
        WorkCalendar(weekdays=frozenset(), start=time(9), end=time(17))


def test_a_working_day_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="must end after it starts"):
        WorkCalendar(weekdays=frozenset({0}), start=time(17), end=time(9))

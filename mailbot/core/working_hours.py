"""Working-hours arithmetic: when is a case due, and how much working time is left or overdue.

Pure: a `WorkCalendar` (working weekdays, one daily window, holidays, the zone they are meant in)
and plain datetimes in, datetimes and timedeltas out. Due times are promised to buyers in working
hours, so a case that arrives on Friday evening must not be overdue on Monday morning; counting
that by hand is where helpdesks get SLAs wrong, hence one small tested module.

Inputs are timezone-aware datetimes; the work happens on local wall-clock time in the calendar's
zone, and results come back in that zone. One daily window per calendar (no split shifts, no
windows across midnight): that is what the configuration can express, and it keeps the two
functions exact inverses of each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

__all__ = ["WorkCalendar", "add_working_time", "working_time_between"]

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class WorkCalendar:
    """When people work: weekdays (0 = Monday), the daily window, and the days off."""

    weekdays: frozenset[int]
    start: time
    end: time
    holidays: frozenset[date] = frozenset()
    zone: tzinfo = UTC

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise ValueError("a calendar needs at least one working weekday (0 = Monday … 6 = Sunday)")
        if not self.start < self.end:
            raise ValueError(f"the working day must end after it starts ({self.start}–{self.end})")

    def works_on(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The working window of `day` as naive local datetimes."""
        return datetime.combine(day, self.start), datetime.combine(day, self.end)


def _local(moment: datetime, calendar: WorkCalendar) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("working-time arithmetic needs timezone-aware datetimes")
    return moment.astimezone(calendar.zone).replace(tzinfo=None)


def add_working_time(start: datetime, amount: timedelta, calendar: WorkCalendar) -> datetime:
    """The moment `amount` of working time after `start` has passed.

    Time outside the windows (nights, weekends, holidays) does not count; a start outside a window
    begins at the next window. The answer always lies inside a working window, so a case opened on
    Saturday with zero hours allowed is due when Monday's window opens.
    """
    if amount < timedelta(0):
        raise ValueError("the working time to add must not be negative")
    moment = _local(start, calendar)
    remaining = amount
    day = moment.date()
    while True:
        if calendar.works_on(day):
            opens, closes = calendar.window(day)
            moment = max(moment, opens)
            if moment < closes:
                available = closes - moment
                if remaining <= available:
                    return (moment + remaining).replace(tzinfo=calendar.zone)
                remaining -= available
        day += _DAY
        moment = datetime.combine(day, time())


def working_time_between(earlier: datetime, later: datetime, calendar: WorkCalendar) -> timedelta:
    """Working time from `earlier` to `later`; negative when `later` comes first.

    With it the console says "3 h left" or "overdue by 5 h" in the same working hours the due time
    was counted in.
    """
    first, last = _local(earlier, calendar), _local(later, calendar)
    if last < first:
        return -working_time_between(later, earlier, calendar)
    total = timedelta(0)
    day = first.date()
    while day <= last.date():
        if calendar.works_on(day):
            opens, closes = calendar.window(day)
            begin, finish = max(opens, first), min(closes, last)
            if begin < finish:
                total += finish - begin
        day += _DAY
    return total

"""The `[due]` section of the settings: how long each kind of case may wait, in working hours.

Kept apart from settings.py (which is near its size limit) and imported by it. Supervisors set a
policy per category and priority and the calendar those hours are counted in; the values are
checked here so a typo names its key in one line instead of surfacing as a wrong due time.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mailbot.core.working_hours import WorkCalendar

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PRIORITY_NAMES = ("low", "normal", "high", "urgent")
ANY_CATEGORY = "*"
_HOURS = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")

Hours = Annotated[float, Field(gt=0, le=10_000)]


class DueSettings(BaseModel):
    """Due-time policy and working calendar; the defaults are a plain Monday-to-Friday office."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    working_days: tuple[str, ...] = DAY_NAMES[:5]
    hours: str = "09:00-17:00"
    holidays: tuple[date, ...] = ()
    default_hours: Hours = 16.0
    due_soon_hours: Annotated[float, Field(ge=0, le=10_000)] = 2.0
    # category (or "*" for any other) -> priority -> working hours
    policy: dict[str, dict[str, Hours]] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name like 'UTC' or 'Asia/Shanghai'") from None
        return value

    @field_validator("working_days")
    @classmethod
    def _days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        days = tuple(d.strip().lower()[:3] for d in value)
        unknown = [d for d in days if d not in DAY_NAMES]
        if unknown or not days:
            raise ValueError(f"working days are some of {', '.join(DAY_NAMES)}")
        return days

    @field_validator("hours")
    @classmethod
    def _window(cls, value: str) -> str:
        match = _HOURS.match(value.replace(" ", ""))
        if match is None:
            raise ValueError("write the working hours as HH:MM-HH:MM, like 09:00-18:00")
        start, end = (int(match[1]), int(match[2])), (int(match[3]), int(match[4]))
        if end <= start or end > (24, 0):
            raise ValueError("the working day must end after it starts, on the same day")
        return value.replace(" ", "")

    @field_validator("policy")
    @classmethod
    def _priorities(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for category, table in value.items():
            for priority in table:
                if priority not in PRIORITY_NAMES:
                    raise ValueError(f"{category}.{priority}: priorities are {', '.join(PRIORITY_NAMES)}")
        return value

    def calendar(self) -> WorkCalendar:
        first, last = self.hours.split("-")
        start_h, start_m = (int(p) for p in first.split(":"))
        end_h, end_m = (int(p) for p in last.split(":"))
        end = time.max if (end_h, end_m) == (24, 0) else time(end_h, end_m)
        return WorkCalendar(
            weekdays=frozenset(DAY_NAMES.index(d) for d in self.working_days),
            start=time(start_h, start_m),
            end=end,
            holidays=frozenset(self.holidays),
            zone=ZoneInfo(self.timezone),
        )

    def hours_for(self, category: str, priority: str) -> float:
        """The working hours a case may wait: its category's policy, then "*", then the default."""
        for key in (category, ANY_CATEGORY):
            table = self.policy.get(key)
            if table is not None and priority in table:
                return table[priority]
        return self.default_hours

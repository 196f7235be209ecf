"""Due times: when each case must be answered, counted in working hours from when it was opened
(or from the buyer's mail that reopened it: a reply owed since this morning is not overdue because
the case was first opened last week).

The intake does not know the policy: a new case has no due time until `fill_due_times` gives it
one (the queue, the case view and `cases list --overdue` call it first, so a case is never shown
without one). Only cases someone at our end owes an answer have a clock: "new" and "open".
Waiting on the buyer, resolved and closed cases are never due soon nor overdue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.core.working_hours import add_working_time, working_time_between
from mailbot.settings_due import DueSettings
from mailbot.store import case_moves_repo as repo
from mailbot.store.db import session_scope

log = logging.getLogger(__name__)

DUE_STATUSES = ("new", "open")
FILL_BATCH = 500

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """Stored datetimes come back naive on SQLite; they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DueState:
    """A case's due time as staff read it: the moment, and how it stands now."""

    due_at: datetime | None
    state: str  # overdue | soon | later | none (no clock: waiting, resolved, closed or no due time)
    working_left: timedelta  # negative when overdue

    @property
    def label(self) -> str:
        if self.state == "none" or self.due_at is None:
            return ""
        hours = abs(self.working_left).total_seconds() / 3600
        amount = f"{hours:.0f} h" if hours >= 1 else f"{abs(self.working_left).total_seconds() // 60:.0f} min"
        return f"overdue by {amount}" if self.state == "overdue" else f"due in {amount}"


def due_at_for(created_at: datetime, category: str, priority: str, due: DueSettings) -> datetime:
    """The due time of a case of this category and priority opened at `created_at` (in UTC)."""
    hours = due.hours_for(category, priority)
    return add_working_time(_aware(created_at), timedelta(hours=hours), due.calendar()).astimezone(UTC)


def due_state(due_at: datetime | None, status: str, now: datetime, due: DueSettings) -> DueState:
    if due_at is None or status not in DUE_STATUSES:
        return DueState(due_at, "none", timedelta(0))
    left = working_time_between(_aware(now), _aware(due_at), due.calendar())
    if _aware(due_at) <= _aware(now):
        state = "overdue"
    elif left <= timedelta(hours=due.due_soon_hours):
        state = "soon"
    else:
        state = "later"
    return DueState(_aware(due_at), state, left)


def fill_due_times(engine: Engine, due: DueSettings, *, limit: int = 10_000) -> int:
    """Give every case that owes an answer and has no due time one; how many were given.

    Idempotent, in batches of FILL_BATCH so a backlog after an upgrade does not hold one long
    transaction. When nothing is missing it costs one indexed query.
    """
    filled = 0
    while filled < limit:
        with session_scope(engine) as session:
            cases = repo.cases_without_due(session, DUE_STATUSES, min(FILL_BATCH, limit - filled))
            for case in cases:
                owed_since = case.owed_since or case.created_at
                case.due_at = due_at_for(owed_since, case.category, case.priority, due)
                session.add(case)
        filled += len(cases)
        if len(cases) < FILL_BATCH:
            break
    return filled


def keep_filling(
    engine: Engine, due: DueSettings, stop: threading.Event, every_seconds: float = 30.0
) -> None:
    """Run in a thread beside the console: new cases get their due time within `every_seconds`."""
    while not stop.is_set():
        try:
            fill_due_times(engine, due)
        except Exception:  # due times are shown, not enforced: the console keeps serving without them
            log.exception("filling due times failed; retrying in %.0f s", every_seconds)
        stop.wait(every_seconds)


def window(which: str, now: datetime, due: DueSettings) -> tuple[datetime | None, datetime]:
    """The due_at range of a queue filter: "overdue" (before now) or "soon" (now up to the warning)."""
    if which == "overdue":
        return None, _aware(now)
    if which == "soon":
        until = add_working_time(_aware(now), timedelta(hours=due.due_soon_hours), due.calendar())
        return _aware(now), until.astimezone(UTC)
    raise ValueError(f"unknown due filter {which!r}; one of: overdue, soon")


@dataclass(frozen=True)
class OverdueCase:
    ref: str
    category: str
    priority: str
    status: str
    assignee: str | None
    buyer: str
    mailbox: str
    due: DueState


def overdue_cases(
    engine: Engine, due: DueSettings, *, limit: int = 200, clock: Clock = _now
) -> tuple[OverdueCase, ...]:
    """Cases past their due time, the most overdue first (filling missing due times first)."""
    fill_due_times(engine, due)
    now = clock()
    with Session(engine) as session:
        cases = repo.due_before(session, DUE_STATUSES, now, limit)
        return tuple(
            OverdueCase(
                ref=c.ref,
                category=c.category,
                priority=c.priority,
                status=c.status,
                assignee=c.assignee,
                buyer=c.buyer,
                mailbox=c.mailbox,
                due=due_state(c.due_at, c.status, now, due),
            )
            for c in cases
        )

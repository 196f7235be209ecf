"""Case work: status, assignment, internal notes and corrections, one implementation for CLI and web.

Every action runs in one transaction and writes an audit event (`case_event`) that records who did
it and when; the functions return frozen dataclasses the entry points render. Bad input raises
`CaseworkError` with one line saying what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.core.types import Intent
from mailbot.store import casework_repo as repo
from mailbot.store.db import session_scope
from mailbot.store.tables import Case, Correction

# new: opened by mailbot, nobody has looked; open: someone works it; waiting: on the buyer;
# resolved: answered, reopens when the buyer writes; closed: done.
STATUSES = ("new", "open", "waiting", "resolved", "closed")
STATUS_LABELS = {
    "new": "new",
    "open": "open",
    "waiting": "waiting on buyer",
    "resolved": "resolved",
    "closed": "closed",
}
STAFF_STATUSES = STATUSES[1:]  # "new" is set by the intake only
CORRECTABLE = ("category", "intent")
INTENTS = tuple(i.value for i in Intent)
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_NOTE = 20_000

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class CaseworkError(ValueError):
    """An action that cannot be done, in one line (unknown case, bad status, unknown assignee…)."""


@dataclass(frozen=True)
class ActionResult:
    """What an action changed, for the CLI line or the web flash message."""

    ref: str
    kind: str
    summary: str
    by: str
    at: datetime


def _case(session: Session, ref: str) -> Case:
    case = repo.case_by_ref(session, normalise_ref(ref))
    if case is None or case.id is None:
        raise CaseworkError(f"no case {ref}")
    return case


def normalise_ref(ref: str) -> str:
    """`#K7Q2XZ`, `[Case #k7q2xz]` and `K7Q2XZ` all name the same case."""
    return ref.strip().strip("[]").removeprefix("Case").strip().strip("#").strip().upper()


def set_status(engine: Engine, ref: str, status: str, *, by: str, clock: Clock = _now) -> ActionResult:
    if status not in STAFF_STATUSES:
        raise CaseworkError(f"unknown status {status!r}; one of: {', '.join(STAFF_STATUSES)}")
    now = clock()
    with session_scope(engine) as session:
        case = _case(session, ref)
        assert case.id is not None
        before = case.status
        if before == status:
            raise CaseworkError(f"case {case.ref} is already {STATUS_LABELS[status]}")
        case.status = status
        case.resolved_at = now if status == "resolved" else None
        case.updated_at = now
        session.add(case)
        summary = f"status {STATUS_LABELS.get(before, before)} → {STATUS_LABELS[status]} by {by}"
        repo.add_event(session, case.id, "status", summary, {"by": by, "from": before, "to": status}, now)
        return ActionResult(case.ref, "status", summary, by, now)


def assign(engine: Engine, ref: str, assignee: str | None, *, by: str, clock: Clock = _now) -> ActionResult:
    """Give the case to a staff account (None: unassign). A new case someone takes becomes open."""
    now = clock()
    with session_scope(engine) as session:
        case = _case(session, ref)
        assert case.id is not None
        if assignee is not None:
            user = repo.user_by_email(session, assignee)
            if user is None:
                raise CaseworkError(f"no staff account {assignee!r} (mailbot users add …)")
            if user.disabled:
                raise CaseworkError(f"the account {user.email} is disabled")
            assignee = user.email
        before = case.assignee
        if before == assignee:
            who = assignee or "nobody"
            raise CaseworkError(f"case {case.ref} is already assigned to {who}")
        case.assignee = assignee
        if assignee is not None and case.status == "new":
            case.status = "open"
        case.updated_at = now
        session.add(case)
        summary = f"assigned to {assignee} by {by}" if assignee else f"unassigned by {by}"
        repo.add_event(session, case.id, "assigned", summary, {"by": by, "from": before, "to": assignee}, now)
        return ActionResult(case.ref, "assigned", summary, by, now)


def add_note(engine: Engine, ref: str, body: str, *, by: str, clock: Clock = _now) -> ActionResult:
    text = body.strip()
    if not text:
        raise CaseworkError("the note is empty")
    if len(text) > _MAX_NOTE:
        raise CaseworkError(f"the note is longer than {_MAX_NOTE} characters")
    now = clock()
    with session_scope(engine) as session:
        case = _case(session, ref)
        assert case.id is not None
        repo.add_note(session, case.id, by, text, now)
        case.updated_at = now
        session.add(case)
        summary = f"note by {by}"
        repo.add_event(session, case.id, "note", summary, {"by": by, "length": len(text)}, now)
        return ActionResult(case.ref, "note", summary, by, now)


def recategorize(
    engine: Engine, ref: str, field: str, value: str, *, by: str, clock: Clock = _now
) -> ActionResult:
    """Correct the category or the intent; kept as a labelled example of the message that opened the case.

    A new category also means a new due time (see due_times: the policy is per category).
    """
    if field not in CORRECTABLE:
        raise CaseworkError(f"cannot correct {field!r}; one of: {', '.join(CORRECTABLE)}")
    value = value.strip().lower()
    if field == "intent" and value not in {i.value for i in Intent}:
        raise CaseworkError(f"unknown intent {value!r}; one of: {', '.join(i.value for i in Intent)}")
    if field == "category" and not _CATEGORY.match(value):
        raise CaseworkError(f"category {value!r}: lower-case letters, digits and _ only")
    now = clock()
    with session_scope(engine) as session:
        case = _case(session, ref)
        assert case.id is not None
        mail = repo.first_mail(session, case.id)
        decided = dict(mail.decision) if mail is not None else {}
        mailbot_said = str(decided.get(field) or (case.category if field == "category" else ""))
        current = case.category if field == "category" else _latest_intent(session, case.id, mailbot_said)
        if value == current:
            raise CaseworkError(f"case {case.ref}: {field} is already {value}")
        repo.add_correction(
            session,
            Correction(
                case_id=case.id,
                mail_id=mail.id if mail is not None else None,
                field=field,
                mailbot_said=mailbot_said[:64],
                staff_said=value,
                author=by,
                created_at=now,
            ),
        )
        if field == "category":
            case.category = value
            # The due time follows the policy of the category: cleared here, the next
            # fill_due_times (the case page and the queue run it first) recomputes it from the
            # case's opening time, with the installation's policy, which this function does not know.
            case.due_at = None
        case.updated_at = now
        session.add(case)
        summary = f"{field} {current or '?'} → {value} by {by}"
        repo.add_event(
            session,
            case.id,
            "corrected",
            summary,
            {"by": by, "field": field, "mailbot_said": mailbot_said, "from": current, "to": value},
            now,
        )
        return ActionResult(case.ref, "corrected", summary, by, now)


def _latest_intent(session: Session, case_id: int, mailbot_said: str) -> str:
    latest = mailbot_said
    for correction in repo.case_corrections(session, case_id):
        if correction.field == "intent":
            latest = correction.staff_said
    return latest


def close_resolved(
    engine: Engine, after: timedelta, *, by: str = "mailbot", clock: Clock = _now
) -> tuple[str, ...]:
    """Close the cases resolved longer than `after` ago (a buyer who wrote again reopened them first)."""
    now = clock()
    closed: list[str] = []
    with session_scope(engine) as session:
        for case in repo.resolved_before(session, now - after):
            assert case.id is not None
            case.status = "closed"
            case.resolved_at = None
            case.updated_at = now
            session.add(case)
            days = after.total_seconds() / 86400
            summary = f"status resolved → closed by {by} ({days:g} days after it was resolved)"
            repo.add_event(
                session, case.id, "status", summary, {"by": by, "from": "resolved", "to": "closed"}, now
            )
            closed.append(case.ref)
    return tuple(closed)

"""The queries behind `mailbot status`: read-only counts and timestamps, one small query each.

Kept apart from repo.py (the queries that do the work) because health only ever reads, and a later
metrics endpoint will run exactly these on every scrape, so each must stay an indexed aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailbot.store.tables import MailboxCursor, MailRecord, OutboxItem

# Replies that should still go out. A reply is `sending` only for the moment of its SMTP dialogue,
# so one that stays there as long as `pending` does is stuck just the same.
WAITING_STATUSES = ("pending", "sending")
QUARANTINED = "quarantined"
BUDGET_REASON_PREFIX = "time budget exceeded"  # how ingest words a message that ran past its budget


@dataclass(frozen=True)
class CursorRow:
    """How a mailbox's polls went, as the ingest service last recorded it."""

    mailbox: str
    last_poll_at: datetime | None
    last_ok_at: datetime | None
    last_error: str
    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class WaitingReplies:
    """Replies not yet sent that were queued before a cut-off, and the oldest of them."""

    count: int
    oldest_created_at: datetime | None


def cursors(session: Session) -> dict[str, CursorRow]:
    rows = session.exec(select(MailboxCursor)).all()
    return {
        row.mailbox: CursorRow(
            mailbox=row.mailbox,
            last_poll_at=row.last_poll_at,
            last_ok_at=row.last_ok_at,
            last_error=row.last_error,
            uidvalidity=row.uidvalidity,
            last_uid=row.last_uid,
        )
        for row in rows
    }


def outbox_counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(OutboxItem.status, func.count()).group_by(OutboxItem.status)).all()
    return {status: int(count) for status, count in rows}


def replies_waiting_since(session: Session, cutoff: datetime) -> WaitingReplies:
    """Replies still waiting to be sent that were queued before `cutoff`."""
    count, oldest = session.exec(
        select(func.count(), func.min(OutboxItem.created_at)).where(
            col(OutboxItem.status).in_(WAITING_STATUSES), col(OutboxItem.created_at) < cutoff
        )
    ).one()
    return WaitingReplies(count=int(count), oldest_created_at=oldest)


def mail_outcome_counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(MailRecord.outcome, func.count()).group_by(MailRecord.outcome)).all()
    return {outcome: int(count) for outcome, count in rows}


def quarantined_over_budget(session: Session) -> int:
    """Mail still quarantined because reading, deciding or rendering it ran past the time budget."""
    count = session.exec(
        select(func.count()).where(
            MailRecord.outcome == QUARANTINED,
            col(MailRecord.reason).startswith(BUDGET_REASON_PREFIX, autoescape=True),
        )
    ).one()
    return int(count)

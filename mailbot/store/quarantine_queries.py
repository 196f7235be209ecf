"""The ledger queries behind the quarantine: listing it, copies of one mail, deciding a row again.

Kept apart from `repo.py` because they serve one feature (quarantined mail can be listed, looked at
and reprocessed, and a copy delivered again is decided afresh instead of ignored as a duplicate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from mailbot.store.tables import CaseEvent, MailRecord

QUARANTINED = "quarantined"


@dataclass(frozen=True)
class LedgerCopy:
    """One earlier ledger row holding the same bytes (the same SHA-256) in the same mailbox."""

    id: int
    uid: int
    uidvalidity: int
    outcome: str


@dataclass(frozen=True)
class QuarantineRow:
    """A quarantined mail as listed: everything but its bytes."""

    id: int
    mailbox: str
    uidvalidity: int
    uid: int
    fetched_at: datetime
    size: int
    stored: int
    from_addr: str | None
    subject: str
    reason: str


def ledger_copies(session: Session, mailbox: str, sha256: str) -> list[LedgerCopy]:
    """Every ledger row of this mailbox with these bytes, oldest first (usually none)."""
    rows = session.execute(
        select_columns(
            col(MailRecord.id), col(MailRecord.uid), col(MailRecord.uidvalidity), col(MailRecord.outcome)
        )
        .where(col(MailRecord.mailbox) == mailbox, col(MailRecord.sha256) == sha256)
        .order_by(col(MailRecord.id))
    ).all()
    return [LedgerCopy(int(i), int(uid), int(validity), str(outcome)) for i, uid, validity, outcome in rows]


def update_ledger(session: Session, mail_id: int, values: dict[str, Any]) -> None:
    session.execute(update(MailRecord).where(col(MailRecord.id) == mail_id).values(**values))


def supersede(session: Session, mail_ids: Sequence[int], reason: str) -> None:
    """Quarantined rows whose mail was delivered again and decided afresh leave the quarantine."""
    if mail_ids:
        session.execute(
            update(MailRecord)
            .where(col(MailRecord.id).in_(list(mail_ids)), col(MailRecord.outcome) == QUARANTINED)
            .values(outcome="ignored", reason=reason)
        )


def quarantined(
    session: Session, *, since: datetime | None = None, limit: int | None = None
) -> list[QuarantineRow]:
    """Mail in quarantine, oldest first, without its bytes."""
    query = select_columns(
        col(MailRecord.id),
        col(MailRecord.mailbox),
        col(MailRecord.uidvalidity),
        col(MailRecord.uid),
        col(MailRecord.fetched_at),
        col(MailRecord.size),
        func.length(col(MailRecord.raw)),
        col(MailRecord.from_addr),
        col(MailRecord.subject),
        col(MailRecord.reason),
    ).where(col(MailRecord.outcome) == QUARANTINED)
    if since is not None:
        query = query.where(col(MailRecord.fetched_at) >= since)
    query = query.order_by(col(MailRecord.id))
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query).all()
    return [
        QuarantineRow(
            id=int(mail_id),
            mailbox=mailbox,
            uidvalidity=int(validity),
            uid=int(uid),
            fetched_at=fetched_at,
            size=int(size),
            stored=int(stored or 0),
            from_addr=from_addr,
            subject=subject,
            reason=reason,
        )
        for mail_id, mailbox, validity, uid, fetched_at, size, stored, from_addr, subject, reason in rows
    ]


def mail_events(session: Session, mail_id: int) -> list[CaseEvent]:
    return list(
        session.exec(select(CaseEvent).where(CaseEvent.mail_id == mail_id).order_by(col(CaseEvent.id)))
    )

"""Queries of the staff console: the queue, a case's thread, notes, corrections, accounts, sessions.

Kept apart from repo.py (the intake's queries) so the console can grow without touching the hot path.
Services own the transactions; this module only reads and writes rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Table,
    column,
    delete,
    func,
    insert,
    literal,
    literal_column,
    table,
    tuple_,
    union_all,
    update,
)
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from mailbot.store.tables import (
    Case,
    CaseEvent,
    CaseMessage,
    CaseNote,
    CaseOrder,
    Correction,
    MailRecord,
    MailText,
    OutboxItem,
    StaffSession,
    StaffUser,
)

FULL_ORDER_DIGITS = 12  # the shortest order number; shorter digits are searched as a prefix
_FULL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class QueueQuery:
    """What the queue is filtered by; None means no filter. `after` is the keyset (created_at, id)."""

    status: str | None = None
    category: str | None = None
    mailbox: str | None = None
    language: str | None = None
    assignee: str | None = None  # an address, or "" for unassigned cases
    order_number: str | None = None
    ref: str | None = None
    buyer: str | None = None
    words: str | None = None
    after: tuple[datetime, int] | None = None
    limit: int = 50
    due_after: datetime | None = None  # due times (issue 8): only new and open cases due in this range
    due_before: datetime | None = None


def _table(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _words_in_mail(words: str, dialect: str) -> Any:
    """Cases with a mail whose indexed text holds every word (FTS5 on SQLite, tsvector on PostgreSQL)."""
    if dialect == "sqlite":
        terms = " ".join('"' + w.replace('"', '""') + '"*' for w in words.split()[:8])
        fts = table("mail_text_fts", column("rowid"), column("mail_text_fts"))
        matching = sa_select(fts.c.rowid).where(fts.c.mail_text_fts.op("MATCH")(terms))
    else:
        vector = func.to_tsvector(literal_column("'simple'::regconfig"), col(MailText.body))
        query = func.plainto_tsquery(literal_column("'simple'::regconfig"), words)
        matching = sa_select(col(MailText.mail_id)).where(vector.op("@@")(query))
    return col(Case.id).in_(sa_select(col(MailText.case_id)).where(col(MailText.mail_id).in_(matching)))


def _filters(query: QueueQuery, *, with_status: bool, dialect: str) -> list[Any]:
    where: list[Any] = []
    if with_status and query.status:
        where.append(col(Case.status) == query.status)
    if query.category:
        where.append(col(Case.category) == query.category)
    if query.mailbox:
        where.append(col(Case.mailbox) == query.mailbox)
    if query.language:
        where.append(col(Case.language) == query.language)
    if query.assignee is not None:
        where.append(
            col(Case.assignee).is_(None) if query.assignee == "" else col(Case.assignee) == query.assignee
        )
    if query.ref:
        where.append(col(Case.ref) == query.ref.upper())
    if query.order_number:
        # A whole number is an equality on the case_order index; a shorter piece is a prefix search.
        number = query.order_number
        match = (
            col(CaseOrder.number) == number
            if len(number) >= FULL_ORDER_DIGITS
            else col(CaseOrder.number).like(_escape_like(number) + "%", escape="\\")
        )
        where.append(col(Case.id).in_(sa_select(col(CaseOrder.case_id)).where(match)))
    if query.buyer:
        buyer = query.buyer.strip().lower()
        where.append(
            col(Case.buyer) == buyer
            if _FULL_ADDRESS.match(buyer)
            else col(Case.buyer).like(_escape_like(buyer) + "%", escape="\\")
        )
    if query.words and query.words.split():
        where.append(_words_in_mail(query.words, dialect))
    if query.due_before is not None:
        where += [col(Case.due_at) < query.due_before, col(Case.status).in_(("new", "open"))]
    if query.due_after is not None:
        where.append(col(Case.due_at) >= query.due_after)
    return where


def queue(session: Session, query: QueueQuery) -> list[Case]:
    """One page of the queue, newest first; keyset pagination so page 200 costs what page 1 costs."""
    where = _filters(query, with_status=True, dialect=_dialect(session))
    if query.after is not None:
        created, case_id = query.after
        # A row-value comparison, which PostgreSQL answers from the (status, created_at, id) index.
        columns = _table(Case).c
        where.append(
            tuple_(columns.created_at, columns.id)
            < tuple_(literal(created, type_=columns.created_at.type), literal(case_id, type_=columns.id.type))
        )
    statement = (
        select(Case)
        .where(*where)
        .order_by(col(Case.created_at).desc(), col(Case.id).desc())
        .limit(query.limit + 1)
    )
    return list(session.exec(statement))


def status_counts(session: Session, query: QueueQuery, statuses: Sequence[str], cap: int) -> dict[str, int]:
    """Cases per status under every filter but the status itself, each counted up to `cap` + 1.

    An exact count of 40,000 closed cases costs a scan of the table on every queue page; counting
    each status only until it passes `cap` walks the (status, created_at, id) index a little way.
    """
    filters = _filters(query, with_status=False, dialect=_dialect(session))
    parts = [
        sa_select(literal(status).label("status"), func.count().label("n")).select_from(
            sa_select(col(Case.id))
            .where(col(Case.status) == status, *filters)
            # in index order, so PostgreSQL walks the index instead of scanning until cap + 1
            # rows turned up (updated rows sit at the end of the heap: that scan read 60,000 rows)
            .order_by(col(Case.created_at).desc())
            .limit(cap + 1)
            .subquery()
        )
        for status in statuses
    ]
    if not parts:
        return {}
    rows = session.execute(union_all(*parts)).all()
    return {str(status): int(count) for status, count in rows}


def case_by_ref(session: Session, ref: str) -> Case | None:
    return session.exec(select(Case).where(Case.ref == ref.upper())).first()


def resolved_before(session: Session, cutoff: datetime, limit: int = 1000) -> list[Case]:
    return list(
        session.exec(
            select(Case)
            .where(
                Case.status == "resolved", col(Case.resolved_at).is_not(None), col(Case.resolved_at) < cutoff
            )
            .order_by(col(Case.id))
            .limit(limit)
        )
    )


def thread(session: Session, case_id: int) -> list[tuple[CaseMessage, MailRecord | None, OutboxItem | None]]:
    """The case's messages in order, each with its ledger row (inbound) or outbox row (our reply)."""
    rows = session.exec(
        select(CaseMessage, MailRecord, OutboxItem)
        .outerjoin(MailRecord, col(MailRecord.id) == col(CaseMessage.mail_id))
        .outerjoin(OutboxItem, col(OutboxItem.id) == col(CaseMessage.outbox_id))
        .where(CaseMessage.case_id == case_id)
        .order_by(col(CaseMessage.created_at), col(CaseMessage.id))
    ).all()
    return [(message, mail, out) for message, mail, out in rows]


def replies_without_message(session: Session, case_id: int, known: Sequence[int]) -> list[OutboxItem]:
    """Outbox rows of the case that no case_message points at (older replies are linked by id only)."""
    statement = select(OutboxItem).where(OutboxItem.case_id == case_id)
    if known:
        statement = statement.where(col(OutboxItem.id).not_in(list(known)))
    return list(session.exec(statement.order_by(col(OutboxItem.id))))


def mail_on_case(session: Session, case_id: int, mail_id: int) -> MailRecord | None:
    return session.exec(
        select(MailRecord).where(MailRecord.id == mail_id, MailRecord.case_id == case_id)
    ).first()


def first_mail(session: Session, case_id: int) -> MailRecord | None:
    """The message that opened the case: what mailbot decided about it is what staff correct."""
    return session.exec(
        select(MailRecord).where(MailRecord.case_id == case_id).order_by(col(MailRecord.id)).limit(1)
    ).first()


def events(session: Session, case_id: int) -> list[CaseEvent]:
    return list(
        session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.id)))
    )


def notes(session: Session, case_id: int) -> list[CaseNote]:
    return list(session.exec(select(CaseNote).where(CaseNote.case_id == case_id).order_by(col(CaseNote.id))))


def cases_of_buyer(session: Session, buyer: str, exclude: int, limit: int = 20) -> list[Case]:
    return list(
        session.exec(
            select(Case)
            .where(Case.buyer == buyer, col(Case.id) != exclude)
            .order_by(col(Case.created_at).desc())
            .limit(limit)
        )
    )


def cases_on_orders(session: Session, numbers: Sequence[str], exclude: int, limit: int = 20) -> list[Case]:
    if not numbers:
        return []
    return list(
        session.exec(
            select(Case)
            .where(
                col(Case.id).in_(
                    sa_select(col(CaseOrder.case_id)).where(col(CaseOrder.number).in_(list(numbers)))
                ),
                col(Case.id) != exclude,
            )
            .order_by(col(Case.created_at).desc())
            .limit(limit)
        )
    )


def add_event(
    session: Session, case_id: int, kind: str, summary: str, detail: dict[str, Any], now: datetime
) -> None:
    session.add(CaseEvent(case_id=case_id, kind=kind, summary=summary, detail=detail, created_at=now))


def add_note(session: Session, case_id: int, author: str, body: str, now: datetime) -> None:
    session.add(CaseNote(case_id=case_id, author=author, body=body, created_at=now))


def add_correction(session: Session, correction: Correction) -> None:
    session.add(correction)


def corrections(session: Session, since: datetime | None = None) -> list[tuple[Correction, Case]]:
    statement = select(Correction, Case).join(Case, col(Case.id) == col(Correction.case_id))
    if since is not None:
        statement = statement.where(col(Correction.created_at) >= since)
    return [(c, case) for c, case in session.exec(statement.order_by(col(Correction.id))).all()]


def case_corrections(session: Session, case_id: int) -> list[Correction]:
    return list(
        session.exec(select(Correction).where(Correction.case_id == case_id).order_by(col(Correction.id)))
    )


def mail_by_id(session: Session, mail_id: int) -> MailRecord | None:
    return session.get(MailRecord, mail_id)


# -- accounts and sessions --------------------------------------------------------------------------


def user_by_email(session: Session, email: str) -> StaffUser | None:
    return session.exec(select(StaffUser).where(StaffUser.email == email.lower())).first()


def user_by_id(session: Session, user_id: int) -> StaffUser | None:
    return session.get(StaffUser, user_id)


def users(session: Session) -> list[StaffUser]:
    return list(session.exec(select(StaffUser).order_by(col(StaffUser.email))))


def add_user(session: Session, user: StaffUser) -> None:
    session.add(user)


def add_session(session: Session, row: StaffSession) -> None:
    session.add(row)


def session_by_hash(session: Session, token_hash: str) -> tuple[StaffSession, StaffUser] | None:
    row = session.exec(
        select(StaffSession, StaffUser)
        .join(StaffUser, col(StaffUser.id) == col(StaffSession.user_id))
        .where(StaffSession.token_hash == token_hash)
    ).first()
    return (row[0], row[1]) if row is not None else None


def delete_session(session: Session, token_hash: str) -> None:
    session.execute(delete(StaffSession).where(col(StaffSession.token_hash) == token_hash))


def delete_sessions_of(session: Session, user_id: int) -> None:
    session.execute(delete(StaffSession).where(col(StaffSession.user_id) == user_id))


def delete_expired_sessions(session: Session, now: datetime) -> None:
    session.execute(delete(StaffSession).where(col(StaffSession.expires_at) < now))


def disable_user(session: Session, user_id: int) -> None:
    session.execute(update(StaffUser).where(col(StaffUser.id) == user_id).values(disabled=True))


# -- the search index -------------------------------------------------------------------------------


def unindexed_mail(session: Session, limit: int) -> list[MailRecord]:
    """Routed mail whose text is not in the search index yet, oldest first."""
    return list(
        session.exec(
            select(MailRecord)
            .outerjoin(MailText, col(MailText.mail_id) == col(MailRecord.id))
            .where(col(MailRecord.case_id).is_not(None), col(MailText.mail_id).is_(None))
            .order_by(col(MailRecord.id))
            .limit(limit)
        )
    )


def add_mail_texts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(_table(MailText)), list(rows))

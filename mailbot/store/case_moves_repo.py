"""Queries of due times and of merging and splitting cases: moving rows from one case to another.

Kept apart from casework_repo.py so the console's read queries and these bulk moves can change
independently. Services own the transactions; these functions only read and write rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BindParameter, Table, bindparam, update
from sqlmodel import Session, SQLModel, col, delete, select

from mailbot.store.tables import (
    Case,
    CaseMessage,
    CaseNote,
    CaseOrder,
    Correction,
    MailRecord,
    MailText,
    OutboxItem,
)

# Rows that follow a merged case: (table, its case column). case_order is moved separately (its key).
_MOVED = (CaseMessage, CaseNote, Correction, MailText, MailRecord, OutboxItem)


def _table(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def cases_without_due(session: Session, statuses: Sequence[str], limit: int) -> list[Case]:
    """Cases in `statuses` with no due time. The statuses are written into the SQL as literals so
    that the partial index ix_case_due_missing (new and open cases without one) answers it, also
    from a prepared statement's generic plan; it is asked before every console page."""
    wanted: BindParameter[str] = bindparam(
        "due_statuses", tuple(statuses), expanding=True, literal_execute=True
    )
    return list(
        session.exec(
            select(Case)
            .where(col(Case.due_at).is_(None), col(Case.status).in_(wanted))
            .order_by(col(Case.id))
            .limit(limit)
        )
    )


def due_before(session: Session, statuses: Sequence[str], before: datetime, limit: int) -> list[Case]:
    """Cases in the given statuses due before `before`, the most overdue first (walks ix_case_due)."""
    return list(
        session.exec(
            select(Case)
            .where(col(Case.due_at) < before, col(Case.status).in_(statuses))
            .order_by(col(Case.due_at), col(Case.id))
            .limit(limit)
        )
    )


def move_case_rows(session: Session, source_id: int, target_id: int) -> dict[str, int]:
    """Every message, note, correction, ledger and outbox row of `source_id` now belongs to `target_id`."""
    moved: dict[str, int] = {}
    for model in _MOVED:
        table = _table(model)
        result = session.execute(update(table).where(table.c.case_id == source_id).values(case_id=target_id))
        moved[table.name] = int(getattr(result, "rowcount", 0) or 0)
    return moved


def move_orders(session: Session, source_id: int, target_id: int) -> list[str]:
    """The source's order numbers join the target's (each once); the numbers the target gained."""
    theirs = set(session.exec(select(CaseOrder.number).where(CaseOrder.case_id == source_id)))
    ours = set(session.exec(select(CaseOrder.number).where(CaseOrder.case_id == target_id)))
    gained = sorted(theirs - ours)
    session.execute(delete(CaseOrder).where(col(CaseOrder.case_id) == source_id))
    for number in gained:
        session.add(CaseOrder(case_id=target_id, number=number))
    return gained


def mail_of_case(session: Session, case_id: int, mail_id: int) -> MailRecord | None:
    return session.exec(
        select(MailRecord).where(MailRecord.id == mail_id, MailRecord.case_id == case_id)
    ).first()


def move_mail(session: Session, mail_id: int, source_id: int, target_id: int) -> None:
    """One inbound mail, with its thread entry, indexed text and corrections, moves to another case."""
    for model in (CaseMessage, MailText, Correction, MailRecord):
        table = _table(model)
        key = table.c.id if model is MailRecord else table.c.mail_id
        session.execute(
            update(table).where(key == mail_id, table.c.case_id == source_id).values(case_id=target_id)
        )


def inbound_count(session: Session, case_id: int) -> int:
    return len(
        list(
            session.exec(
                select(CaseMessage.id).where(CaseMessage.case_id == case_id, CaseMessage.direction == "in")
            )
        )
    )


def add_orders(session: Session, case_id: int, numbers: Sequence[str]) -> None:
    for number in numbers:
        session.add(CaseOrder(case_id=case_id, number=number))

"""Every query the services run. Services own the transactions; this module only reads and writes rows."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, case, delete, func, insert, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, col, select

from mailbot.core.types import CaseFacts, SenderHistory
from mailbot.store.tables import (
    Case,
    CaseEvent,
    CaseMessage,
    CaseOrder,
    InboundClaim,
    MailboxCursor,
    MailboxLease,
    MailRecord,
    OutboxItem,
    RulesetVersion,
    Suppression,
    WorkerBeat,
    utcnow,
)

#: Cases a follow-up by order number from the same buyer joins (a resolved one reopens; see ingest).
OPEN_STATUSES = ("new", "open", "waiting", "resolved")


# -- ledger ---------------------------------------------------------------------------------------


def cursor_for(session: Session, mailbox: str) -> MailboxCursor:
    cursor = session.get(MailboxCursor, mailbox)
    if cursor is None:
        cursor = MailboxCursor(mailbox=mailbox)
        session.add(cursor)
        session.flush()
    return cursor


def ledger_by_key(session: Session, mailbox: str, uidvalidity: int, uid: int) -> MailRecord | None:
    return session.exec(
        select(MailRecord).where(
            MailRecord.mailbox == mailbox, MailRecord.uidvalidity == uidvalidity, MailRecord.uid == uid
        )
    ).first()


def ledger_by_sha(session: Session, mailbox: str, sha256: str) -> MailRecord | None:
    return session.exec(
        select(MailRecord)
        .where(MailRecord.mailbox == mailbox, MailRecord.sha256 == sha256)
        .order_by(col(MailRecord.id))
    ).first()


def known_uids(session: Session, mailbox: str, uidvalidity: int, uids: Sequence[int]) -> set[int]:
    if not uids:
        return set()
    rows = session.exec(
        select(MailRecord.uid).where(
            MailRecord.mailbox == mailbox,
            MailRecord.uidvalidity == uidvalidity,
            col(MailRecord.uid).in_(list(uids)),
        )
    ).all()
    return set(rows)


def unacked_uids(session: Session, mailbox: str, uidvalidity: int) -> list[int]:
    return list(
        session.exec(
            select(MailRecord.uid)
            .where(
                MailRecord.mailbox == mailbox,
                MailRecord.uidvalidity == uidvalidity,
                col(MailRecord.acked_at).is_(None),
            )
            .order_by(col(MailRecord.uid))
        ).all()
    )


def mark_acked(session: Session, mailbox: str, uidvalidity: int, uids: Sequence[int], now: datetime) -> None:
    session.execute(
        update(MailRecord)
        .where(
            col(MailRecord.mailbox) == mailbox,
            col(MailRecord.uidvalidity) == uidvalidity,
            col(MailRecord.uid).in_(list(uids)),
        )
        .values(acked_at=now)
    )


# -- the intake's inserts -------------------------------------------------------------------------
# Plain INSERT statements rather than ORM objects: the intake writes about six rows per message, and
# building, validating and flushing SQLModel objects for them cost more than reading the mail. Every
# value is given explicitly (the models' Python-side defaults do not apply to these statements).


def _table(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


@functools.cache
def _insert_returning_id(model: type[SQLModel]) -> Any:
    table = _table(model)
    return insert(table).returning(table.c.id)


def insert_returning_id(session: Session, model: type[SQLModel], values: dict[str, Any]) -> int:
    # One statement per table, built once; the values travel as parameters.
    return int(session.execute(_insert_returning_id(model), values).scalar_one())


def insert_many(session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(_table(model)), list(rows))


def event_row(
    kind: str,
    summary: str,
    now: datetime,
    *,
    case_id: int | None = None,
    mail_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "summary": summary,
        "case_id": case_id,
        "mail_id": mail_id,
        "detail": detail or {},
        "created_at": now,
    }


def mail_by_id(session: Session, mail_id: int) -> MailRecord | None:
    return session.get(MailRecord, mail_id)


def mails_since(session: Session, since: datetime) -> list[MailRecord]:
    return list(
        session.exec(
            select(MailRecord).where(MailRecord.fetched_at >= since).order_by(col(MailRecord.id))
        ).all()
    )


def decisions_since(session: Session, since: datetime) -> list[tuple[int, dict[str, Any]]]:
    rows = session.exec(
        select(MailRecord.id, MailRecord.decision)
        .where(MailRecord.fetched_at >= since)
        .order_by(col(MailRecord.id))
    ).all()
    return [(int(mail_id), dict(decision)) for mail_id, decision in rows if mail_id is not None]


def outcome_counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(MailRecord.outcome, func.count()).group_by(MailRecord.outcome)).all()
    return {outcome: int(count) for outcome, count in rows}


# -- cases ----------------------------------------------------------------------------------------


def case_facts(session: Session, case: Case) -> CaseFacts:
    return CaseFacts(
        ref=case.ref, buyer=case.buyer, status=case.status, orders=tuple(case.orders), mailbox=case.mailbox
    )


def case_by_ref(session: Session, ref: str) -> Case | None:
    return session.exec(select(Case).where(Case.ref == ref.upper())).first()


def case_by_id(session: Session, case_id: int) -> Case | None:
    return session.get(Case, case_id)


def ref_exists(session: Session, ref: str) -> bool:
    return session.exec(select(Case.id).where(Case.ref == ref)).first() is not None


def case_by_message_ids(session: Session, message_ids: Iterable[str]) -> Case | None:
    ids = list(message_ids)
    if not ids:
        return None
    return session.exec(
        select(Case)
        .join(CaseMessage, col(CaseMessage.case_id) == col(Case.id))
        .where(col(CaseMessage.message_id).in_(ids))
        .order_by(col(CaseMessage.id).desc())
    ).first()


def cases_by_refs(session: Session, refs: Iterable[str]) -> list[Case]:
    wanted = [r.upper() for r in refs]
    if not wanted:
        return []
    found = {c.ref: c for c in session.exec(select(Case).where(col(Case.ref).in_(wanted))).all()}
    return [found[r] for r in wanted if r in found]


def open_cases_by_orders(session: Session, buyer: str | None, orders: Iterable[str]) -> list[Case]:
    numbers = list(orders)
    if not numbers or buyer is None:
        return []
    return list(
        session.exec(
            select(Case)
            .join(CaseOrder, col(CaseOrder.case_id) == col(Case.id))
            .where(
                col(CaseOrder.number).in_(numbers),
                Case.buyer == buyer.lower(),
                col(Case.status).in_(OPEN_STATUSES),
            )
            .order_by(col(Case.updated_at).desc())
        )
        .unique()
        .all()
    )


def add_case(session: Session, case: Case) -> Case:
    session.add(case)
    session.flush()
    assert case.id is not None
    for number in case.orders:
        session.add(CaseOrder(case_id=case.id, number=number))
    return case


def add_orders(session: Session, case: Case, numbers: Iterable[str]) -> None:
    assert case.id is not None
    new = [n for n in numbers if n not in case.orders]
    if not new:
        return
    case.orders = [*case.orders, *new]
    session.add(case)
    for number in new:
        session.add(CaseOrder(case_id=case.id, number=number))


def claim_inbound(session: Session, message_id: str, mailbox: str, sha256: str, now: datetime) -> bool:
    """Claim an inbound Message-ID for this message; False when another message holds it.

    INSERT … ON CONFLICT DO NOTHING on the primary key: on PostgreSQL a concurrent transaction
    inserting the same Message-ID waits for the first one to commit and then sees the conflict,
    so two mailboxes polled at the same moment cannot both open a case for one mail.
    """
    statement = (
        _upsert(session, InboundClaim)
        .values(message_id=message_id, mailbox=mailbox, sha256=sha256, claimed_at=now)
        .on_conflict_do_nothing(index_elements=["message_id"])
    )
    if _inserted(session, statement, InboundClaim):
        return True
    held = session.get(InboundClaim, message_id)
    # The same message decided again (e.g. reprocessed from quarantine) keeps its own claim.
    return held is not None and held.mailbox == mailbox and held.sha256 == sha256


def inbound_message_on_case(session: Session, message_id: str) -> CaseMessage | None:
    return session.exec(
        select(CaseMessage).where(CaseMessage.message_id == message_id, CaseMessage.direction == "in")
    ).first()


def list_cases(
    session: Session, *, status: str | None = None, category: str | None = None, limit: int = 200
) -> list[Case]:
    query = select(Case)
    if status:
        query = query.where(Case.status == status)
    if category:
        query = query.where(Case.category == category)
    return list(session.exec(query.order_by(col(Case.created_at).desc(), col(Case.id).desc()).limit(limit)))


def case_messages(session: Session, case_id: int) -> list[CaseMessage]:
    return list(
        session.exec(select(CaseMessage).where(CaseMessage.case_id == case_id).order_by(col(CaseMessage.id)))
    )


def case_events(session: Session, case_id: int) -> list[CaseEvent]:
    return list(
        session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.id)))
    )


def case_outbox(session: Session, case_id: int) -> list[OutboxItem]:
    return list(
        session.exec(select(OutboxItem).where(OutboxItem.case_id == case_id).order_by(col(OutboxItem.id)))
    )


# -- loop policy facts ----------------------------------------------------------------------------


def sender_history(session: Session, address: str | None, now: datetime) -> SenderHistory:
    if address is None:
        return SenderHistory()
    address = address.lower()
    hour_ago = now - timedelta(hours=1)
    hour, day = session.execute(
        select(
            func.count(case((col(OutboxItem.created_at) >= hour_ago, 1))),
            func.count(),
        ).where(col(OutboxItem.rcpt_to) == address, col(OutboxItem.created_at) >= now - timedelta(days=1))
    ).one()
    bounced = session.get(Suppression, address) is not None
    return SenderHistory(replies_last_hour=int(hour), replies_last_day=int(day), hard_bounced=bounced)


def suppress(session: Session, address: str, reason: str, now: datetime | None = None) -> bool:
    """Never write to `address` again; True when it was not suppressed yet.

    An upsert, not a read-then-write: two poll jobs (or the drain) suppressing the same address at
    the same moment must not fail on the primary key.
    """
    values = {"address": address.lower(), "reason": reason[:2000], "created_at": now or utcnow()}
    statement = (
        _upsert(session, Suppression).values(**values).on_conflict_do_nothing(index_elements=["address"])
    )
    return _inserted(session, statement, Suppression)


def outbox_by_message_id(session: Session, message_id: str) -> OutboxItem | None:
    return session.exec(select(OutboxItem).where(OutboxItem.message_id == message_id)).first()


# -- outbox ---------------------------------------------------------------------------------------


def claim_due_outbox(
    session: Session, owner: str, now: datetime, limit: int, exclude: Iterable[int] = ()
) -> list[OutboxItem]:
    """Claim up to `limit` due replies for `owner`: `sending`, owned, one attempt more, not handed over.

    On PostgreSQL the rows are locked with FOR UPDATE SKIP LOCKED, so concurrent drains of several
    workers each get different rows without waiting on each other. SQLite has no row locks (the
    clause is left out), but its writers are serialised (BEGIN IMMEDIATE): the select and the update
    run under one write lock, which gives the same "each row to one drain" semantics.
    """
    query = select(OutboxItem.id).where(OutboxItem.status == "pending", OutboxItem.next_attempt_at <= now)
    skip = list(exclude)
    if skip:  # replies this drain already tried once
        query = query.where(col(OutboxItem.id).not_in(skip))
    ids = list(
        session.exec(query.order_by(col(OutboxItem.id)).limit(limit).with_for_update(skip_locked=True))
    )
    if not ids:
        return []
    session.execute(
        update(OutboxItem)
        .where(col(OutboxItem.id).in_(ids))
        .values(status="sending", owner=owner, attempts=OutboxItem.attempts + 1, handed_over_at=None)
    )
    return list(
        session.exec(select(OutboxItem).where(col(OutboxItem.id).in_(ids)).order_by(col(OutboxItem.id)))
    )


def mark_handed_over(session: Session, item_id: int, owner: str, now: datetime) -> bool:
    """Record that the reply's content is about to reach the server; False if the row is not ours."""
    result = session.execute(
        update(OutboxItem)
        .where(
            col(OutboxItem.id) == item_id, col(OutboxItem.owner) == owner, col(OutboxItem.status) == "sending"
        )
        .values(handed_over_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release_outbox(session: Session, item_ids: Sequence[int], owner: str) -> None:
    """Give claimed replies that never reached the server back to the queue (a drain stopping early)."""
    if item_ids:
        session.execute(
            update(OutboxItem)
            .where(
                col(OutboxItem.id).in_(list(item_ids)),
                col(OutboxItem.owner) == owner,
                col(OutboxItem.status) == "sending",
                col(OutboxItem.handed_over_at).is_(None),
            )
            .values(status="pending", owner=None, attempts=OutboxItem.attempts - 1)
        )


def sending_outbox(session: Session) -> list[OutboxItem]:
    """Every reply in `sending`, whoever owns it (the caller decides whose owner is gone)."""
    return list(
        session.exec(select(OutboxItem).where(OutboxItem.status == "sending").order_by(col(OutboxItem.id)))
    )


def take_over_outbox(session: Session, item_id: int, old_owner: str | None, owner: str) -> bool:
    """Make a row of a gone owner ours before recovering it; False when another worker took it first."""
    owned = col(OutboxItem.owner).is_(None) if old_owner is None else col(OutboxItem.owner) == old_owner
    result = session.execute(
        update(OutboxItem)
        .where(col(OutboxItem.id) == item_id, col(OutboxItem.status) == "sending", owned)
        .values(owner=owner)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def mark_outbox_sent(session: Session, item_ids: Sequence[int], now: datetime) -> None:
    session.execute(
        update(OutboxItem)
        .where(col(OutboxItem.id).in_(list(item_ids)))
        .values(status="sent", sent_at=now, last_error="", owner=None)
    )


def outbox_items(session: Session, item_ids: Sequence[int]) -> list[OutboxItem]:
    return list(session.exec(select(OutboxItem).where(col(OutboxItem.id).in_(list(item_ids)))))


def outbox_counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(OutboxItem.status, func.count()).group_by(OutboxItem.status)).all()
    return {status: int(count) for status, count in rows}


def outbox_item(session: Session, item_id: int) -> OutboxItem | None:
    return session.get(OutboxItem, item_id)


# -- several workers: mailbox leases and heartbeats ---------------------------------------------------


def acquire_lease(session: Session, mailbox: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease on `mailbox` until now + ttl; False while another owner's lease runs.

    One statement (an upsert whose update only applies to our own or an expired lease), so two
    workers asking at the same moment cannot both get it.
    """
    table = _table(MailboxLease)
    statement = _upsert(session, MailboxLease).values(mailbox=mailbox, owner=owner, expires_at=now + ttl)
    statement = statement.on_conflict_do_update(
        index_elements=["mailbox"],
        set_={"owner": statement.excluded.owner, "expires_at": statement.excluded.expires_at},
        where=or_(table.c.owner == owner, table.c.expires_at < now),
    )
    return _inserted(session, statement, MailboxLease)


def lease_holder(session: Session, mailbox: str) -> str | None:
    lease = session.get(MailboxLease, mailbox)
    return lease.owner if lease is not None else None


def take_over_lease(
    session: Session, mailbox: str, old_owner: str, owner: str, now: datetime, ttl: timedelta
) -> bool:
    """Take the lease of a gone worker; False when somebody else changed it meanwhile."""
    result = session.execute(
        update(MailboxLease)
        .where(col(MailboxLease.mailbox) == mailbox, col(MailboxLease.owner) == old_owner)
        .values(owner=owner, expires_at=now + ttl)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release_lease(session: Session, mailbox: str, owner: str) -> None:
    session.execute(
        delete(MailboxLease).where(col(MailboxLease.mailbox) == mailbox, col(MailboxLease.owner) == owner)
    )


def leases(session: Session) -> list[MailboxLease]:
    return list(session.exec(select(MailboxLease).order_by(col(MailboxLease.mailbox))))


def beat(session: Session, worker_id: str, host: str, pid: int, now: datetime) -> None:
    """Insert or refresh this worker's heartbeat row."""
    statement = _upsert(session, WorkerBeat).values(
        id=worker_id, host=host, pid=pid, started_at=now, heartbeat_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["id"], set_={"heartbeat_at": statement.excluded.heartbeat_at}
        )
    )


def forget_workers_before(session: Session, cutoff: datetime) -> None:
    """Drop heartbeat rows silent since `cutoff`: an absent owner counts as gone all the same."""
    session.execute(delete(WorkerBeat).where(col(WorkerBeat.heartbeat_at) < cutoff))


def remove_worker(session: Session, worker_id: str) -> None:
    session.execute(delete(WorkerBeat).where(col(WorkerBeat.id) == worker_id))


def worker_beats(session: Session) -> list[WorkerBeat]:
    return list(session.exec(select(WorkerBeat).order_by(col(WorkerBeat.id))))


def _inserted(session: Session, statement: Any, model: type[SQLModel]) -> bool:
    """Run an INSERT … ON CONFLICT; True when it wrote a row (RETURNING, as rowcount is not reliable)."""
    key = next(iter(_table(model).primary_key.columns))
    return session.execute(statement.returning(key)).first() is not None


def _upsert(session: Session, model: type[SQLModel]) -> Any:
    """INSERT … ON CONFLICT for the session's dialect (SQLite and PostgreSQL share the syntax)."""
    bind = session.get_bind()
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    return dialect.insert(_table(model))


# -- events, rule sets, health ----------------------------------------------------------------------


def add_event(
    session: Session,
    kind: str,
    summary: str,
    *,
    case_id: int | None = None,
    mail_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(CaseEvent(kind=kind, summary=summary, case_id=case_id, mail_id=mail_id, detail=detail or {}))


def remember_ruleset(session: Session, version: str, files: dict[str, Any]) -> None:
    """Record a rule set by its hash; an upsert, since two poll jobs meet a new version together."""
    if version:
        session.execute(
            _upsert(session, RulesetVersion)
            .values(version=version, files=files, first_used_at=utcnow())
            .on_conflict_do_nothing(index_elements=["version"])
        )


def cursors(session: Session) -> list[MailboxCursor]:
    return list(session.exec(select(MailboxCursor).order_by(col(MailboxCursor.mailbox))))


def search_cases(session: Session, text: str, limit: int = 50) -> list[Case]:
    like = f"%{text}%"
    return list(
        session.exec(
            select(Case)
            .outerjoin(CaseOrder, col(CaseOrder.case_id) == col(Case.id))
            .where(
                or_(col(Case.ref) == text.upper(), col(CaseOrder.number) == text, col(Case.buyer).like(like))
            )
            .order_by(col(Case.created_at).desc())
            .limit(limit)
        ).unique()
    )


# -- rules administration -------------------------------------------------------------------------


def mail_ids_since(session: Session, since: datetime, mailbox: str | None = None) -> list[int]:
    """Ledger ids of mail fetched since `since`, oldest first; a replay loads each one in turn."""
    query = select(MailRecord.id).where(MailRecord.fetched_at >= since)
    if mailbox is not None:
        query = query.where(MailRecord.mailbox == mailbox)
    return [int(mail_id) for mail_id in session.exec(query.order_by(col(MailRecord.id))).all() if mail_id]


def decided_mail_since(
    session: Session, since: datetime
) -> list[tuple[int, datetime, str, str | None, str, dict[str, Any]]]:
    """(id, fetched_at, mailbox, from, subject, decision) of mail fetched since `since`, without the bytes."""
    from sqlalchemy import select as select_columns  # sqlmodel's `select` types at most four columns

    rows = session.execute(
        select_columns(
            col(MailRecord.id),
            col(MailRecord.fetched_at),
            col(MailRecord.mailbox),
            col(MailRecord.from_addr),
            col(MailRecord.subject),
            col(MailRecord.decision),
        )
        .where(col(MailRecord.fetched_at) >= since)
        .order_by(col(MailRecord.id))
    ).all()
    return [
        (int(mail_id), fetched_at, mailbox, from_addr, subject, dict(decision))
        for mail_id, fetched_at, mailbox, from_addr, subject, decision in rows
        if mail_id is not None
    ]

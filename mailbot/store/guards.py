"""The queries behind the reply guards: what was sent to an address, to everyone, and what bounced.

Kept apart from repo.py because they answer one question — may we write to this address now? —
and because every one of them is keyed by the address a reply is actually sent to (the outbox's
`rcpt_to`), never by a header of the inbound mail.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from mailbot.core.types import SenderHistory
from mailbot.store.tables import CaseEvent, OutboxItem, Suppression

#: The audit event written when the global ceiling of automatic replies is reached.
CEILING_EVENT = "reply_ceiling"

#: Only automatic replies count against the automatic limits: a buyer a person just answered from the
#: console (outbox template `manual` or `manual:<canned response>`) is not owed fewer automatic answers.
_AUTOMATIC = (col(OutboxItem.template) != "manual") & ~col(OutboxItem.template).startswith("manual:")


def recipient_history(
    session: Session, address: str | None, now: datetime, *, replies_total_last_hour: int = 0
) -> SenderHistory:
    """Replies queued to `address` in the last hour and day, and whether it is suppressed."""
    if not address:
        return SenderHistory(replies_total_last_hour=replies_total_last_hour)
    address = address.lower()
    hour_ago = now - timedelta(hours=1)
    hour, day = session.execute(
        select(
            func.count(case((col(OutboxItem.created_at) >= hour_ago, 1))),
            func.count(),
        ).where(
            col(OutboxItem.rcpt_to) == address,
            col(OutboxItem.created_at) >= now - timedelta(days=1),
            _AUTOMATIC,
        )
    ).one()
    return SenderHistory(
        replies_last_hour=int(hour),
        replies_last_day=int(day),
        hard_bounced=session.get(Suppression, address) is not None,
        replies_total_last_hour=replies_total_last_hour,
    )


def replies_last_hour(session: Session, now: datetime) -> int:
    """Automatic replies queued to anyone in the last hour: what the global ceiling counts."""
    count = session.execute(
        select(func.count())
        .select_from(OutboxItem)
        .where(col(OutboxItem.created_at) >= now - timedelta(hours=1), _AUTOMATIC)
    ).scalar_one()
    return int(count)


def last_ceiling_alert(session: Session, since: datetime) -> datetime | None:
    """When the global ceiling last alerted after `since`; None when it did not (health reads this)."""
    found = session.execute(
        select(func.max(CaseEvent.created_at)).where(
            col(CaseEvent.kind) == CEILING_EVENT, col(CaseEvent.created_at) >= since
        )
    ).scalar_one_or_none()
    return found if isinstance(found, datetime) else None


def reply_by_message_ids(session: Session, message_ids: Iterable[str]) -> OutboxItem | None:
    """Our reply with one of these Message-IDs (the one a bounce returned), if any."""
    wanted = [m for m in dict.fromkeys(message_ids) if m][:20]
    if not wanted:
        return None
    return session.exec(select(OutboxItem).where(col(OutboxItem.message_id).in_(wanted))).first()


def reply_recipients_of_case(session: Session, case_id: int) -> list[str]:
    """Every address a reply on this case was queued to, oldest first."""
    rows = session.exec(
        select(OutboxItem.rcpt_to).where(OutboxItem.case_id == case_id).order_by(col(OutboxItem.id))
    ).all()
    return list(dict.fromkeys(rows))

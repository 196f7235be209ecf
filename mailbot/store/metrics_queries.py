"""The queries behind the worker's metrics that health does not already answer: read-only, indexed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from mailbot.store.tables import MailRecord, OutboxItem


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def recorded_since(session: Session, mailbox: str, since: datetime) -> list[datetime]:
    """When each message of `mailbox` recorded since `since` was written to the ledger, in order."""
    rows = session.exec(
        select(MailRecord.fetched_at)
        .where(MailRecord.mailbox == mailbox, col(MailRecord.fetched_at) >= since)
        .order_by(col(MailRecord.fetched_at))
    ).all()
    return [_aware(moment) for moment in rows]


def reply_delays(session: Session, message_ids: Sequence[str]) -> list[tuple[str, float]]:
    """(mailbox, seconds from the buyer's mail entering the ledger to its reply being accepted by SMTP)."""
    if not message_ids:
        return []
    rows = session.exec(
        select(OutboxItem.mailbox, OutboxItem.sent_at, MailRecord.fetched_at)
        .join(MailRecord, col(MailRecord.id) == col(OutboxItem.mail_id))
        .where(col(OutboxItem.message_id).in_(list(message_ids)), col(OutboxItem.sent_at).is_not(None))
    ).all()
    return [
        (mailbox, max(0.0, (_aware(sent) - _aware(fetched)).total_seconds()))
        for mailbox, sent, fetched in rows
        if sent is not None
    ]

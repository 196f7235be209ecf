"""The tables: ledger, cases, case messages, events, outbox, cursors, rule-set versions, suppressions,
and the coordination of several workers (claimed inbound Message-IDs, mailbox leases, worker heartbeats).

The ledger (`MailRecord`) is the heart of exactly-once processing: a row keyed by
(mailbox, UIDVALIDITY, UID) and the SHA-256 of the raw bytes is written in the same transaction as
everything the message causes, and it keeps the raw bytes so any message can be replayed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class MailRecord(SQLModel, table=True):
    """One fetched message and what became of it (routed, ignored with a reason, quarantined)."""

    __tablename__ = "mail"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_mail_mailbox_uid"),
        Index("ix_mail_mailbox_sha256", "mailbox", "sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(max_length=64)
    # IMAP allows values up to 2**32 - 1: wider than PostgreSQL's INTEGER.
    uidvalidity: int = Field(sa_column=Column(BigInteger, nullable=False))
    uid: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    message_id: str | None = Field(default=None, max_length=998, index=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    from_addr: str | None = Field(default=None, max_length=320)
    fetched_at: datetime = Field(default_factory=utcnow, index=True)
    outcome: str = Field(max_length=16, index=True)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    ruleset_version: str = Field(default="", max_length=64)
    decision: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    acked_at: datetime | None = Field(default=None)


class Case(SQLModel, table=True):
    """A buyer's request as staff see it, with a short public reference quoted in every reply."""

    __tablename__ = "case"

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(max_length=16, unique=True)
    category: str = Field(max_length=64, index=True)
    status: str = Field(default="open", max_length=16, index=True)
    priority: str = Field(default="normal", max_length=16)
    queue: str | None = Field(default=None, max_length=64)
    assignee: str | None = Field(default=None, max_length=128)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    orders: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    buyer: str = Field(max_length=320, index=True)
    buyer_name: str = Field(default="", max_length=320)
    mailbox: str = Field(max_length=64, index=True)
    language: str = Field(default="en", max_length=8)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    # staff console (migration 0003): when the case was last resolved, so it can close itself later
    resolved_at: datetime | None = Field(default=None)
    # due times (migration 0004): when the case must be answered, counted in working hours from
    # created_at by services/due_times.py; NULL until that service has computed it
    due_at: datetime | None = Field(default=None)
    # (migration 0005) when we last started owing an answer: set when the buyer's mail reopens a
    # waiting or resolved case, so its due time counts from that mail; NULL means created_at
    owed_since: datetime | None = Field(default=None)


class CaseOrder(SQLModel, table=True):
    """Order numbers of a case, one row each, so a follow-up can be found by order number."""

    __tablename__ = "case_order"

    case_id: int = Field(foreign_key="case.id", primary_key=True)
    number: str = Field(max_length=32, primary_key=True, index=True)


class CaseMessage(SQLModel, table=True):
    """A message on a case: inbound (from the ledger) or outbound (a reply in the outbox)."""

    __tablename__ = "case_message"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    direction: str = Field(max_length=8)  # in | out
    message_id: str | None = Field(default=None, max_length=998, index=True)
    mail_id: int | None = Field(default=None, foreign_key="mail.id")
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    from_addr: str = Field(default="", max_length=320)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)


class CaseEvent(SQLModel, table=True):
    """The audit trail: every decision (with its trace) and every staff or system action."""

    __tablename__ = "case_event"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    mail_id: int | None = Field(default=None, foreign_key="mail.id", index=True)
    kind: str = Field(max_length=32, index=True)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)


class OutboxItem(SQLModel, table=True):
    """A rendered reply waiting to be sent; sending is a separate drain with retries."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    mail_id: int | None = Field(default=None, foreign_key="mail.id")
    mailbox: str = Field(max_length=64)
    message_id: str = Field(max_length=998, unique=True)
    mail_from: str = Field(max_length=320)
    rcpt_to: str = Field(max_length=320, index=True)
    template: str = Field(max_length=128)
    language: str = Field(max_length=8)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default="pending", max_length=16, index=True)  # pending|sending|sent|failed|uncertain
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    sent_at: datetime | None = None
    # The worker whose drain claimed the row (status `sending`); recovery only takes rows whose owner
    # is gone, never another live worker's send in flight.
    owner: str | None = Field(default=None, max_length=128)
    # Committed right before the final "." of DATA: without it the server cannot have the message,
    # so a failure or crash leaves the reply safe to send again; with it the outcome may be unknown.
    handed_over_at: datetime | None = None


class MailboxCursor(SQLModel, table=True):
    """Where polling of a mailbox stands, and how its last poll went (for health)."""

    __tablename__ = "mailbox_cursor"

    mailbox: str = Field(primary_key=True, max_length=64)
    uidvalidity: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    last_uid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    last_poll_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class RulesetVersion(SQLModel, table=True):
    """Every rule set that has made decisions, by content hash."""

    __tablename__ = "ruleset_version"

    version: str = Field(primary_key=True, max_length=64)
    first_used_at: datetime = Field(default_factory=utcnow)
    files: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Suppression(SQLModel, table=True):
    """An address we never write to again (a reply to it bounced permanently)."""

    __tablename__ = "suppression"

    address: str = Field(primary_key=True, max_length=320)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)


class InboundClaim(SQLModel, table=True):
    """An inbound Message-ID that opened or joined a case: the primary key makes the duplicate check
    hold when two mailboxes receive the same mail at the same moment (no read-then-write)."""

    __tablename__ = "inbound_claim"

    message_id: str = Field(primary_key=True, max_length=998)
    mailbox: str = Field(max_length=64)
    sha256: str = Field(max_length=64)
    claimed_at: datetime = Field(default_factory=utcnow)


class MailboxLease(SQLModel, table=True):
    """Which worker polls a mailbox now; a worker without the lease skips the mailbox this round."""

    __tablename__ = "mailbox_lease"

    mailbox: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=128)
    expires_at: datetime


class WorkerBeat(SQLModel, table=True):
    """A running worker (host, pid) and its last heartbeat; outbox rows of a stale one are recovered."""

    __tablename__ = "worker"

    id: str = Field(primary_key=True, max_length=128)
    host: str = Field(default="", max_length=255)
    pid: int = 0
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow, index=True)


# -- the staff console (issue 8): accounts, sessions, notes, corrections ------------------------------
# Kept together at the end so the console's schema reads as one block; migration 0003 creates it.


class StaffUser(SQLModel, table=True):
    """A person who works cases in the console; the password is kept only as an argon2 hash."""

    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    role: str = Field(max_length=16)  # staff | supervisor | admin
    password_hash: str = Field(sa_column=Column(Text, nullable=False))
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class StaffSession(SQLModel, table=True):
    """A signed-in browser; only the SHA-256 of the cookie's token is kept, so a leaked table is no login."""

    __tablename__ = "staff_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class CaseNote(SQLModel, table=True):
    """An internal note on a case: seen by staff, never sent to the buyer."""

    __tablename__ = "case_note"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    author: str = Field(max_length=320)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Correction(SQLModel, table=True):
    """Staff overruled mailbot's category or intent: a labelled example for `mailbot eval`."""

    __tablename__ = "correction"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    mail_id: int | None = Field(default=None, foreign_key="mail.id", index=True)
    field: str = Field(max_length=16)  # category | intent
    mailbot_said: str = Field(max_length=64)
    staff_said: str = Field(max_length=64)
    author: str = Field(max_length=320)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class MailText(SQLModel, table=True):
    """The searchable text of a routed mail (subject, sender name, new text, attachment names).

    Filled by the console's indexer from the ledger, so the intake pays nothing for search. Migration
    0003 adds the full-text index: an FTS5 table kept in step by a trigger on SQLite, a GIN index on
    to_tsvector('simple', body) on PostgreSQL.
    """

    __tablename__ = "mail_text"

    mail_id: int = Field(foreign_key="mail.id", primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    body: str = Field(sa_column=Column(Text, nullable=False))


# The queue is read newest first, filtered by status or assignee: keyset pagination walks these.
Index("ix_case_status_created", Case.__table__.c.status, Case.__table__.c.created_at, Case.__table__.c.id)  # type: ignore[attr-defined]
Index("ix_case_assignee", Case.__table__.c.assignee)  # type: ignore[attr-defined]
Index("ix_case_due", Case.__table__.c.due_at)  # type: ignore[attr-defined]
# Cases that owe an answer and have no due time yet: normally none, asked before every console page.
# A plain index on due_at walks every closed case (they all have NULL) to find none (migration 0005).
MISSING_DUE = "due_at IS NULL AND status IN ('new', 'open')"
Index(
    "ix_case_due_missing",
    Case.__table__.c.id,  # type: ignore[attr-defined]
    postgresql_where=text(MISSING_DUE),
    sqlite_where=text(MISSING_DUE),
)

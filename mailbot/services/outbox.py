"""Drain the outbox: send rendered replies with retries, and never send one twice.

How a reply is never sent twice, even if the process dies mid-send:
1. the row is marked `sending` and committed before the mail server sees the message;
2. after the server accepted it, a copy is kept in the Sent folder (IMAP) or the local `sent/`
   folder, keyed by the reply's Message-ID;
3. then the row is marked `sent`.
A row found in `sending` at the next drain is a crash survivor: if its copy is in the Sent folder
the server had accepted it, so the row is marked sent without sending again. If there is no copy
the crash came before or during the hand-over, and nobody can know whether the server got it: the
row becomes `uncertain` and is shown to staff (`mailbot outbox retry ID` sends it after a check)
rather than risking a second reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from mailbot.adapters.ports import ReplyTransport, SendError, SentCopies
from mailbot.services.ingest import crash_point
from mailbot.store import repo
from mailbot.store.db import session_scope
from mailbot.store.tables import CaseEvent, OutboxItem

log = logging.getLogger("mailbot.outbox")


@dataclass
class DrainReport:
    sent: int = 0
    recovered: int = 0
    retried: int = 0
    failed: int = 0
    uncertain: int = 0
    error: str | None = None
    sent_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OutboxPolicy:
    max_attempts: int = 8
    backoff_seconds: float = 30.0
    batch: int = 500
    # Accepted replies are marked sent together, this many at a time. Until then their copy in
    # Sent is what proves they went out, so a crash in between resends nothing.
    mark_every: int = 50


def drain(
    engine: Engine,
    transport_for: Callable[[], ReplyTransport],
    sent_copies: SentCopies | None,
    clock: Callable[[], datetime],
    policy: OutboxPolicy = OutboxPolicy(),
    should_stop: Callable[[], bool] = lambda: False,
) -> DrainReport:
    """Send every due reply, over one connection per batch. Never raises for a mail-server problem."""
    report = DrainReport()
    tried: set[int] = set()
    # Without Sent copies nothing proves a reply went out but its row: mark each one at once.
    mark_every = policy.mark_every if sent_copies is not None else 1
    try:
        while not should_stop():
            with session_scope(engine) as session:
                due = repo.due_outbox(session, clock(), policy.batch)
            if not due:
                break
            for item in due:
                if item.status == "sending":
                    _recover(engine, item, sent_copies, report)
            # One attempt per reply per drain: a retry waits for its backoff and the next drain.
            fresh = [item for item in due if item.status == "pending" and item.id not in tried]
            tried.update(item.id for item in fresh if item.id is not None)
            if report.error or (not fresh and all(item.status == "pending" for item in due)):
                break
            if not fresh:
                continue
            accepted: list[OutboxItem] = []
            try:
                with transport_for() as transport:
                    for item in fresh:
                        if should_stop():
                            break
                        if _send_one(engine, transport, sent_copies, item, clock, policy, report):
                            accepted.append(item)
                        if len(accepted) >= mark_every:
                            _mark_sent(engine, accepted, clock, report)
                            accepted = []
            except SendError as exc:  # could not even connect: the rows stay pending for the next drain
                report.error = str(exc)
                log.error("outbox: %s", exc)
                break
            finally:
                _mark_sent(engine, accepted, clock, report)
    finally:
        close = getattr(sent_copies, "close", None)
        if callable(close):
            close()
    return report


def _recover(engine: Engine, item: OutboxItem, sent_copies: SentCopies | None, report: DrainReport) -> None:
    assert item.id is not None
    try:
        found = sent_copies.contains(item.message_id) if sent_copies is not None else False
    except Exception as exc:  # cannot look: leave the row as it is and try again at the next drain
        log.warning("outbox: cannot check the Sent copies for %s: %s", item.message_id, exc)
        report.error = f"cannot check the Sent folder: {exc}"
        return
    with session_scope(engine) as session:
        row = repo.outbox_item(session, item.id)
        assert row is not None
        if found:
            row.status = "sent"
            report.recovered += 1
            repo.add_event(
                session,
                "reply_recovered",
                f"reply {row.message_id} was accepted before a crash (copy found in Sent); not resent",
                case_id=row.case_id,
            )
        else:
            row.status = "uncertain"
            report.uncertain += 1
            repo.add_event(
                session,
                "reply_uncertain",
                f"reply {row.message_id} may or may not have reached the mail server before a crash; "
                f"not resent automatically — check and run `mailbot outbox retry {row.id}`",
                case_id=row.case_id,
            )
        session.add(row)


def _send_one(
    engine: Engine,
    transport: ReplyTransport,
    sent_copies: SentCopies | None,
    item: OutboxItem,
    clock: Callable[[], datetime],
    policy: OutboxPolicy,
    report: DrainReport,
) -> bool:
    """Hand one reply to the server; True when it accepted it (the row is marked sent later)."""
    assert item.id is not None
    with session_scope(engine) as session:
        if not repo.claim_outbox(session, item.id):
            return False  # sent or claimed by another drain meanwhile
    attempts = item.attempts + 1
    try:
        transport.send(item.raw, mail_from=item.mail_from, rcpt_to=[item.rcpt_to])
    except SendError as exc:
        _failed_attempt(engine, item.id, exc, attempts, clock, policy, report)
        return False
    if sent_copies is not None:
        try:
            sent_copies.put(item.message_id, item.raw)
        except Exception as exc:  # the reply is out; a missing copy only weakens crash recovery
            log.warning("outbox: reply %s sent but its Sent copy failed: %s", item.message_id, exc)
    crash_point("after-smtp-accept")
    return True


def _mark_sent(
    engine: Engine, items: list[OutboxItem], clock: Callable[[], datetime], report: DrainReport
) -> None:
    if not items:
        return
    now = clock()
    with session_scope(engine) as session:
        repo.mark_outbox_sent(session, [item.id for item in items if item.id is not None], now)
        events = [
            repo.event_row("reply_sent", f"reply {it.template} sent to {it.rcpt_to}", now, case_id=it.case_id)
            for it in items
        ]
        repo.insert_many(session, CaseEvent, events)
    report.sent += len(items)
    report.sent_ids.extend(item.message_id for item in items)


def _failed_attempt(
    engine: Engine,
    item_id: int,
    exc: SendError,
    attempts: int,
    clock: Callable[[], datetime],
    policy: OutboxPolicy,
    report: DrainReport,
) -> None:
    with session_scope(engine) as session:
        row = repo.outbox_item(session, item_id)
        assert row is not None
        row.last_error = str(exc)[:2000]
        if exc.permanent or attempts >= policy.max_attempts:
            row.status = "failed"
            report.failed += 1
            why = "refused permanently" if exc.permanent else f"gave up after {attempts} attempts"
            repo.add_event(
                session, "reply_failed", f"reply to {row.rcpt_to} {why}: {exc}", case_id=row.case_id
            )
        else:
            row.status = "pending"
            row.next_attempt_at = clock() + timedelta(seconds=policy.backoff_seconds * 2 ** (attempts - 1))
            report.retried += 1
        session.add(row)
    log.warning("outbox: reply %s: %s", item_id, exc)


def retry(engine: Engine, item_id: int, clock: Callable[[], datetime]) -> str:
    """Staff decided an uncertain or failed reply should go out (again)."""
    with session_scope(engine) as session:
        row = repo.outbox_item(session, item_id)
        if row is None:
            return f"no outbox item {item_id}"
        if row.status not in {"uncertain", "failed"}:
            return f"outbox item {item_id} is {row.status}; only uncertain or failed replies can be retried"
        row.status = "pending"
        row.next_attempt_at = clock()
        session.add(row)
        repo.add_event(
            session, "reply_retry", f"staff asked to send reply {row.message_id} again", case_id=row.case_id
        )
        return f"outbox item {item_id} queued again"

"""Drain the outbox: send rendered replies with retries, and never send one twice.

The evidence that decides whether a reply may be sent (again):
1. A drain *claims* due rows for its worker (status `sending`, `owner` = the worker's id); on
   PostgreSQL with FOR UPDATE SKIP LOCKED, so several workers each take different rows.
2. Right before the final "." of DATA — the one line that lets the server accept the message —
   `handed_over_at` is committed in its own transaction. Before that mark the server cannot have
   the reply: any failure or crash leaves it safe to send again, and it is simply queued again.
3. After the server's 250 a copy is kept in the reply's mailbox's Sent folder (IMAP) or the local
   `sent/` folder, keyed by the reply's stable Message-ID; then the row is marked `sent` (in groups).
4. A failure *after* the hand-over without an answer (connection lost after the final ".", or the
   250 later than `final_reply_timeout`) is ambiguous: the server may have the reply. It is never
   resent without evidence: if its Message-ID is found in the Sent folder (servers that file
   submitted mail there) it is marked sent; otherwise it becomes `uncertain`, with an event on the
   case, and waits for staff (`mailbot outbox retry ID` after checking).
5. A row found in `sending` whose owner is gone (stale heartbeat, or a dead process on this host) is
   a crash survivor: without a hand-over mark it is queued again; with one, a Sent copy proves it
   went out (`reply_recovered`), and no copy makes it `uncertain`. Rows of a live worker are never
   touched: they are that worker's sends in flight.
A mailbox whose Sent folder cannot be checked (bad password, server down) holds back only the
recovery of its own rows; every other reply goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.adapters.ports import ReplyTransport, SendError, SentCopies
from mailbot.observability import log_context
from mailbot.services import coordination
from mailbot.services.coordination import Liveness, WorkerIdentity
from mailbot.services.ingest import crash_point
from mailbot.store import repo
from mailbot.store.db import session_scope
from mailbot.store.tables import CaseEvent, OutboxItem

log = logging.getLogger("mailbot.outbox")


@dataclass
class DrainReport:
    sent: int = 0
    recovered: int = 0
    requeued: int = 0  # claimed by a worker that stopped before handing them over: sent again
    retried: int = 0
    failed: int = 0
    uncertain: int = 0
    suppressed: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    sent_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OutboxPolicy:
    max_attempts: int = 8
    backoff_seconds: float = 30.0
    batch: int = 50  # rows claimed at a time; unsent ones go back to the queue if the drain stops
    # Accepted replies are marked sent together, this many at a time. Until then their copy in
    # Sent is what proves they went out, so a crash in between resends nothing.
    mark_every: int = 50
    liveness: Liveness = field(default_factory=Liveness)


class _ClaimLost(Exception):
    """Our claim on a row was taken over (we were thought gone): do not complete the hand-over."""


class _SentFolders:
    """The Sent copies of each mailbox, opened on first use; a mailbox whose folder failed is noted."""

    def __init__(self, open_for: Callable[[str], SentCopies | None]) -> None:
        self._open_for = open_for
        self._open: dict[str, SentCopies | None] = {}
        self.broken: dict[str, str] = {}

    def of(self, mailbox: str) -> SentCopies | None:
        if mailbox not in self._open:
            self._open[mailbox] = self._open_for(mailbox)
        return self._open[mailbox]

    def close(self) -> None:
        for copies in self._open.values():
            close = getattr(copies, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:  # logging out of a broken connection: nothing to save
                    log.debug("outbox: closing a Sent folder failed: %s", exc)


def drain(
    engine: Engine,
    transport_for: Callable[[], ReplyTransport],
    sent_copies_for: Callable[[str], SentCopies | None],
    clock: Callable[[], datetime],
    policy: OutboxPolicy = OutboxPolicy(),
    should_stop: Callable[[], bool] = lambda: False,
    worker: WorkerIdentity | None = None,
) -> DrainReport:
    """Send every due reply, over one connection per claimed batch. Never raises for a mail-server problem."""
    me = worker or WorkerIdentity.new()
    report = DrainReport()
    folders = _SentFolders(sent_copies_for)
    tried: set[int] = set()
    try:
        coordination.beat(engine, me, clock())
        _recover(engine, me, folders, clock, policy, report)
        while not should_stop() and report.error is None:
            # One attempt per reply per drain: a retry waits for its backoff and the next drain.
            with session_scope(engine) as session:
                claimed = repo.claim_due_outbox(session, me.id, clock(), policy.batch, exclude=tried)
            if not claimed:
                break
            tried.update(item.id for item in claimed if item.id is not None)
            _send_claimed(engine, me, transport_for, folders, claimed, clock, policy, should_stop, report)
            coordination.beat(engine, me, clock())
    finally:
        folders.close()
    report.warnings.extend(
        f"cannot check the Sent folder of {box}: {why}" for box, why in folders.broken.items()
    )
    return report


def _send_claimed(
    engine: Engine,
    me: WorkerIdentity,
    transport_for: Callable[[], ReplyTransport],
    folders: _SentFolders,
    claimed: list[OutboxItem],
    clock: Callable[[], datetime],
    policy: OutboxPolicy,
    should_stop: Callable[[], bool],
    report: DrainReport,
) -> None:
    accepted: list[OutboxItem] = []
    finished: set[int] = set()
    refs = _case_refs(engine, claimed)
    try:
        with transport_for() as transport:
            for item in claimed:
                if should_stop():
                    break
                assert item.id is not None
                with _about(item, refs):
                    outcome = _send_one(engine, me, transport, folders, item, clock, policy, report)
                finished.add(item.id)
                if outcome == "accepted-with-copy":
                    accepted.append(item)
                elif outcome == "accepted":  # no copy proves it went out: mark it at once
                    _mark_sent(engine, [*accepted, item], clock, report)
                    accepted = []
                if len(accepted) >= policy.mark_every:
                    _mark_sent(engine, accepted, clock, report)
                    accepted = []
    except SendError as exc:  # could not even connect: the rows go back to the queue for the next drain
        report.error = str(exc)
        log.error("outbox: %s", exc)
    finally:
        _mark_sent(engine, accepted, clock, report)
        unsent = [item.id for item in claimed if item.id is not None and item.id not in finished]
        if unsent:
            with session_scope(engine) as session:
                repo.release_outbox(session, unsent, me.id)


def _case_refs(engine: Engine, items: list[OutboxItem]) -> dict[int, str]:
    """The case reference of each reply's case, for the log lines about it (one read per batch)."""
    wanted = {item.case_id for item in items if item.case_id is not None}
    if not wanted:
        return {}
    with Session(engine) as session:
        cases = (repo.case_by_id(session, case_id) for case_id in wanted)
        return {case.id: case.ref for case in cases if case is not None and case.id is not None}


def _about(item: OutboxItem, refs: dict[int, str]) -> AbstractContextManager[object]:
    """Lines logged while handling a reply name its mailbox, the mail it answers and the case."""
    ref = refs.get(item.case_id) if item.case_id is not None else None
    return log_context(mailbox=item.mailbox, ledger_id=item.mail_id, case_ref=ref)


def _send_one(
    engine: Engine,
    me: WorkerIdentity,
    transport: ReplyTransport,
    folders: _SentFolders,
    item: OutboxItem,
    clock: Callable[[], datetime],
    policy: OutboxPolicy,
    report: DrainReport,
) -> str:
    """Hand one claimed reply to the server.

    Returns "accepted-with-copy", "accepted", "retry", "failed", "uncertain" or "lost".
    """
    assert item.id is not None
    item_id = item.id
    handed_over = False

    def on_handover() -> None:
        nonlocal handed_over
        with session_scope(engine) as session:
            if not repo.mark_handed_over(session, item_id, me.id, clock()):
                raise _ClaimLost(item.message_id)
        handed_over = True
        crash_point("after-handover-mark")

    crash_point("after-claim")
    try:
        transport.send(item.raw, mail_from=item.mail_from, rcpt_to=[item.rcpt_to], on_handover=on_handover)
    except _ClaimLost:
        log.warning("outbox: reply %s was taken over by another worker; not completed here", item.message_id)
        return "lost"
    except SendError as exc:
        if handed_over and exc.outcome_unknown:
            return _ambiguous(engine, folders, item, exc, clock, report)
        return _failed_attempt(engine, item_id, exc, item.attempts, clock, policy, report)
    log.info("outbox: reply #%s (%s) accepted for %s", item_id, item.template, item.rcpt_to)
    copies = _copies(folders, item.mailbox)
    kept = False
    if copies is not None:
        try:
            copies.put(item.message_id, item.raw)
            kept = True
        except Exception as exc:  # the reply is out; without its copy the row is marked at once
            log.warning("outbox: reply %s sent but its Sent copy failed: %s", item.message_id, exc)
    crash_point("after-smtp-accept")
    return "accepted-with-copy" if kept else "accepted"


def _copies(folders: _SentFolders, mailbox: str) -> SentCopies | None:
    try:
        return folders.of(mailbox)
    except Exception as exc:  # a missing secret or a bad setting for this mailbox's Sent folder
        folders.broken.setdefault(mailbox, str(exc))
        return None


def _ambiguous(
    engine: Engine,
    folders: _SentFolders,
    item: OutboxItem,
    exc: SendError,
    clock: Callable[[], datetime],
    report: DrainReport,
) -> str:
    """The whole reply went out but no answer came back: look for evidence, never resend blindly."""
    found = _in_sent(folders, item)
    with session_scope(engine) as session:
        if found:
            repo.mark_outbox_sent(session, [item.id] if item.id is not None else [], clock())
            repo.add_event(
                session,
                "reply_sent",
                f"reply {item.template} to {item.rcpt_to}: the server's answer was lost, but the mail "
                "server filed the reply in Sent",
                case_id=item.case_id,
            )
            report.sent += 1
            report.sent_ids.append(item.message_id)
            return "accepted"
        row = repo.outbox_item(session, item.id) if item.id is not None else None
        if row is not None and row.status == "sending":
            row.status = "uncertain"
            row.owner = None
            row.last_error = str(exc)[:2000]
            session.add(row)
            repo.add_event(
                session,
                "reply_uncertain",
                f"reply {row.message_id} to {row.rcpt_to} was sent in full but the server's answer never "
                f"came ({exc}); it may have been delivered, so it is not resent automatically — check, "
                f"then run `mailbot outbox retry {row.id}`",
                case_id=row.case_id,
            )
    report.uncertain += 1
    log.warning("outbox: reply %s is uncertain: %s", item.message_id, exc)
    return "uncertain"


def _in_sent(folders: _SentFolders, item: OutboxItem) -> bool | None:
    """Whether the reply's copy is in its mailbox's Sent folder; None when that cannot be checked."""
    if item.mailbox in folders.broken:
        return None
    copies = _copies(folders, item.mailbox)
    if copies is None:
        return False
    try:
        return copies.contains(item.message_id)
    except Exception as exc:  # cannot look: that mailbox's rows wait, the others go on
        folders.broken[item.mailbox] = str(exc)
        log.warning("outbox: cannot check the Sent folder of %s: %s", item.mailbox, exc)
        return None


def _recover(
    engine: Engine,
    me: WorkerIdentity,
    folders: _SentFolders,
    clock: Callable[[], datetime],
    policy: OutboxPolicy,
    report: DrainReport,
) -> None:
    """Settle rows left in `sending` by a worker that is gone (or by an earlier drain of ours)."""
    with session_scope(engine) as session:
        sending = repo.sending_outbox(session)
    if not sending:
        return
    live = coordination.live_workers(engine, clock(), policy.liveness)
    refs = _case_refs(engine, sending)
    for item in sending:
        assert item.id is not None
        if item.owner != me.id and live.alive(item.owner):
            continue  # another worker's send in flight
        found: bool | None = None
        if item.handed_over_at is not None:
            with _about(item, refs):
                found = _in_sent(folders, item)
            if found is None:
                continue  # this mailbox's Sent folder cannot be checked now: try at the next drain
        with session_scope(engine) as session:
            if not repo.take_over_outbox(session, item.id, item.owner, me.id):
                continue  # another worker settled it first
            row = repo.outbox_item(session, item.id)
            assert row is not None
            row.owner = None
            if row.handed_over_at is None:
                # Claimed, never handed over: the server cannot have it. Queue it again.
                row.status = "pending"
                row.attempts = max(0, row.attempts - 1)
                report.requeued += 1
            elif found:
                row.status = "sent"
                row.sent_at = clock()
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
                    f"reply {row.message_id} was handed to the mail server when its worker stopped, and "
                    "no copy is in Sent: it may or may not have been delivered; not resent automatically "
                    f"— check and run `mailbot outbox retry {row.id}`",
                    case_id=row.case_id,
                )
            session.add(row)


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
) -> str:
    """A definite refusal or a failure before the hand-over: retry later, or give up and say why."""
    with session_scope(engine) as session:
        row = repo.outbox_item(session, item_id)
        assert row is not None
        row.last_error = str(exc)[:2000]
        row.owner = None
        row.handed_over_at = None
        outcome = "retry"
        if exc.permanent or attempts >= policy.max_attempts:
            outcome = "failed"
            row.status = "failed"
            report.failed += 1
            why = "refused permanently" if exc.permanent else f"gave up after {attempts} attempts"
            repo.add_event(
                session, "reply_failed", f"reply to {row.rcpt_to} {why}: {exc}", case_id=row.case_id
            )
            if (
                exc.permanent
                and exc.recipient_refused
                and repo.suppress(session, row.rcpt_to, f"our SMTP server refused it: {exc}"[:2000], clock())
            ):
                report.suppressed += 1
                repo.add_event(
                    session,
                    "address_suppressed",
                    f"{row.rcpt_to} is suppressed: our SMTP server refused it permanently ({exc}); "
                    "no further automatic replies go to it",
                    case_id=row.case_id,
                )
        else:
            row.status = "pending"
            row.next_attempt_at = clock() + timedelta(seconds=policy.backoff_seconds * 2 ** (attempts - 1))
            report.retried += 1
        session.add(row)
    log.warning("outbox: reply %s: %s", item_id, exc)
    return outcome


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
        row.handed_over_at = None
        row.owner = None
        session.add(row)
        repo.add_event(
            session, "reply_retry", f"staff asked to send reply {row.message_id} again", case_id=row.case_id
        )
        return f"outbox item {item_id} queued again"

"""Poll one mailbox: fetch what is new in bounded batches, apply each batch in one transaction.

Exactly-once effect per message: the ledger row, the case, the events and the rendered reply are
committed together, and the mailbox is touched (flag or move) only after that commit. If the
process dies in between, the next poll finds the ledger row and only acknowledges the message.
A message that cannot be read or applied is quarantined with the error and the run goes on.

Bounded work: each message has a time budget for reading, deciding and rendering (reading runs in
a child process that is killed at the deadline, see `reading_worker`); a message past it is
quarantined with a reason starting "time budget exceeded". A message over `max_message_bytes` is
never downloaded: its headers and size are recorded, quarantined, and it is left untouched in the
mailbox. A fetched batch is bounded in bytes as well as in count (`intake_batches`). While one
batch is stored, the next one is already being read in the child process.

The modules of intake, one responsibility each: this one runs the poll loop and the batches;
`ingest_message` applies one message (ledger, decision, duplicates, quarantine, reprocessing);
`ingest_cases` finds or opens its case; `ingest_reply` queues its reply; `ingest_state` holds
what they share. The names other code uses are exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from mailbot.adapters.ports import FetchedMessage, MailSource, SourceError
from mailbot.observability import log_context
from mailbot.services.ingest_message import ingest_one, reapply
from mailbot.services.ingest_state import (
    CRASH_ENV,
    BatchState,
    Intake,
    MailboxInfo,
    PollReport,
    RuleSource,
    crash_point,
)
from mailbot.services.intake_batches import fetch_batch, plan_batches
from mailbot.services.progress import Progress, Steps
from mailbot.services.reading_worker import ReadJob
from mailbot.store import repo
from mailbot.store.db import session_scope
from mailbot.store.tables import CaseEvent

__all__ = [
    "CRASH_ENV",
    "Intake",
    "MailboxInfo",
    "PollReport",
    "RuleSource",
    "crash_point",
    "poll_mailbox",
    "reapply",
]

log = logging.getLogger("mailbot.ingest")


def poll_mailbox(
    intake: Intake,
    mailbox: str,
    source: MailSource,
    *,
    batch_size: int = 50,
    progress: Progress | None = None,
) -> PollReport:
    """Process everything new in one mailbox. Never raises for a mailbox problem: the report says it.

    `progress` hears (done, total) over the new UIDs: a first poll of a large backlog can take a while.
    Every line logged meanwhile names the mailbox (and, per message, its ledger id and case).
    """
    report = PollReport(mailbox=mailbox)
    with log_context(mailbox=mailbox):
        try:
            with source:
                _poll(intake, mailbox, source, batch_size, report, progress)
        except SourceError as exc:
            report.error = str(exc)
        except OSError as exc:  # network trouble outside the adapter's own handling
            report.error = f"{type(exc).__name__}: {exc}"
        _record_poll(intake, mailbox, report)
        if report.error:
            log.error("mailbox %s failed: %s", mailbox, report.error)
    return report


def _record_poll(intake: Intake, mailbox: str, report: PollReport) -> None:
    now = intake.clock()
    with session_scope(intake.engine) as session:
        cursor = repo.cursor_for(session, mailbox)
        cursor.last_poll_at = now
        if report.error:
            cursor.last_error = report.error
        else:
            cursor.last_ok_at = now
            cursor.last_error = ""
        session.add(cursor)


def _poll(
    intake: Intake,
    mailbox: str,
    source: MailSource,
    batch_size: int,
    report: PollReport,
    progress: Progress | None,
) -> None:
    uidvalidity = source.uidvalidity
    with session_scope(intake.engine) as session:
        cursor = repo.cursor_for(session, mailbox)
        if cursor.uidvalidity != uidvalidity:
            if cursor.uidvalidity:
                repo.add_event(
                    session,
                    "uidvalidity_changed",
                    f"{mailbox}: UIDVALIDITY changed from {cursor.uidvalidity} to {uidvalidity}; "
                    "messages are fetched again and recognised by content hash",
                )
                log.warning(
                    "mailbox %s: UIDVALIDITY changed %s -> %s", mailbox, cursor.uidvalidity, uidvalidity
                )
            cursor.uidvalidity = uidvalidity
            cursor.last_uid = 0
            session.add(cursor)
        after_uid = cursor.last_uid
        leftovers = repo.unacked_uids(session, mailbox, uidvalidity)
    if leftovers:  # recorded by an earlier run that died before touching the mailbox
        _acknowledge(intake, mailbox, uidvalidity, source, leftovers)

    uids = source.new_uids(after_uid)
    steps = Steps(progress, len(uids))
    with intake.reader() as reader:
        # Batch k+1 is fetched and handed to the reading process before batch k is stored, so the
        # two overlap; at most these two batches are in memory.
        pending: _Fetched | None = None
        for batch in _fetched_batches(intake, mailbox, uidvalidity, source, uids, batch_size):
            batch.job = reader.submit(
                [message.raw for message in batch.messages],
                intake.rules.reading(),
                intake.message_budget_seconds,
            )
            if pending is not None:
                _store_batch(intake, mailbox, uidvalidity, source, pending, report, steps)
            pending = batch
        if pending is not None:
            _store_batch(intake, mailbox, uidvalidity, source, pending, report, steps)
    if not intake.should_stop():
        steps.finish()  # UIDs expunged since the search needed no work


@dataclass
class _Fetched:
    """One fetched batch: its messages, the UIDs already in the ledger, and the reading under way."""

    messages: list[FetchedMessage]
    known: list[int]
    job: ReadJob | None = None


def _fetched_batches(
    intake: Intake, mailbox: str, uidvalidity: int, source: MailSource, uids: list[int], batch_size: int
) -> Iterator[_Fetched]:
    for chunk in _chunks(uids, batch_size):
        if intake.should_stop():
            return
        with Session(intake.engine) as session:
            already = repo.known_uids(session, mailbox, uidvalidity, chunk)
        known = [uid for uid in chunk if uid in already]
        todo = [uid for uid in chunk if uid not in already]
        sizes = source.sizes(todo) if todo else {}
        planned = plan_batches(
            todo, sizes, max_batch_bytes=intake.max_batch_bytes, max_message_bytes=intake.max_message_bytes
        )
        if not planned:
            yield _Fetched([], known)
        for number, group in enumerate(planned):
            if number and intake.should_stop():
                return
            messages = list(fetch_batch(source, group, sizes, max_message_bytes=intake.max_message_bytes))
            yield _Fetched(messages, known if number == 0 else [])


def _store_batch(
    intake: Intake,
    mailbox: str,
    uidvalidity: int,
    source: MailSource,
    batch: _Fetched,
    report: PollReport,
    steps: Steps,
) -> None:
    """Apply one read batch in one transaction, then acknowledge its messages in the mailbox."""
    # Wait for every reading first: the write transaction (the database lock) is held only for
    # the inserts of the batch, never while a reading runs into its deadline.
    results = list(batch.job.results()) if batch.job is not None else []
    done = list(batch.known)
    messages = batch.messages
    steps.advance(len(batch.known))  # in the ledger already: only acknowledged below
    with session_scope(intake.engine) as session:
        batch_state = BatchState()
        for message, result in zip(messages, results, strict=True):
            report.fetched += 1
            ingest_one(intake, session, mailbox, uidvalidity, message, result, batch_state, report)
            if message.headers_only:
                # Too large to download: it stays untouched in the mailbox, for a person to see (and
                # for `quarantine reprocess` once the limit is raised); the ledger row keeps it from
                # being fetched again, and there is nothing to acknowledge.
                repo.mark_acked(session, mailbox, uidvalidity, [message.uid], intake.clock())
            else:
                done.append(message.uid)
            steps.advance()
        repo.insert_many(session, CaseEvent, batch_state.events)
        if messages:
            _advance_cursor(session, mailbox, max(message.uid for message in messages))
    crash_point("after-ledger-commit")
    _acknowledge(intake, mailbox, uidvalidity, source, done)


def _acknowledge(intake: Intake, mailbox: str, uidvalidity: int, source: MailSource, uids: list[int]) -> None:
    if not uids:
        return
    source.acknowledge(sorted(uids))
    with session_scope(intake.engine) as session:
        repo.mark_acked(session, mailbox, uidvalidity, uids, intake.clock())


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _advance_cursor(session: Session, mailbox: str, uid: int) -> None:
    cursor = repo.cursor_for(session, mailbox)
    if uid > cursor.last_uid:
        cursor.last_uid = uid
        session.add(cursor)

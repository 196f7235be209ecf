"""Poll one mailbox: fetch what is new, decide, and apply each decision in one transaction.

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
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.adapters.ports import FetchedMessage, MailSource, ReplyRenderer, SourceError
from mailbot.core.conversation import case_ref_from_seed
from mailbot.core.decide import decide, decision_summary
from mailbot.core.reading import ReadingConfig
from mailbot.core.replies import ReplyLimits, build_reply, plan_reply, reply_recipient
from mailbot.core.rules.schema import RuleSet
from mailbot.core.types import Decision, Identity, Outcome, Reading, ThreadCandidates
from mailbot.services import reply_safety
from mailbot.services.intake_batches import fetch_batch, plan_batches
from mailbot.services.reading_worker import (
    InlineReader,
    Reader,
    ReaderPool,
    ReadJob,
    ReadResult,
    TimeBudgetExceeded,
    overrun,
)
from mailbot.store import guards, quarantine_queries, repo
from mailbot.store.db import session_scope
from mailbot.store.tables import Case, CaseEvent, CaseMessage, CaseOrder, MailRecord, OutboxItem

log = logging.getLogger("mailbot.ingest")

#: Environment variable naming a fault-injection point; used by the crash-safety tests to kill the
#: process with SIGKILL at an exact place. Unset in production.
CRASH_ENV = "MAILBOT_CRASH_AT"

#: Statuses a buyer's own (non-machine) mail moves back to "open" (issue 8): staff were waiting for
#: it, or thought the matter settled. "closed" is final; a new mail opens a new, linked case.
REOPENED_BY_BUYER = ("waiting", "resolved")


def crash_point(name: str) -> None:
    """Die here, hard, if the crash-safety tests asked for it."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class RuleSource(Protocol):
    """The rules in charge and how to read mail under them; both may change between two calls."""

    def current(self) -> RuleSet: ...
    def reading(self) -> ReadingConfig: ...


@dataclass(frozen=True)
class MailboxInfo:
    name: str
    address: str
    service: str


@dataclass
class Intake:
    """What ingesting needs, assembled once by the entry point from settings."""

    engine: Engine
    identity: Identity
    rules: RuleSource
    renderer: ReplyRenderer
    mailboxes: dict[str, MailboxInfo]
    limits: ReplyLimits = field(default_factory=ReplyLimits)
    max_message_bytes: int = 25 * 1024 * 1024
    from_name: str = "Trade Assurance Support"
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    should_stop: Callable[[], bool] = lambda: False
    #: Seconds one message may spend being read, decided and rendered before it is quarantined.
    message_budget_seconds: float = 10.0
    #: Bytes of mail one fetched batch may hold (a single larger message under the limit goes alone).
    max_batch_bytes: int = 50 * 1024 * 1024
    #: Child processes that read mail with a hard deadline; None reads in this thread instead (an
    #: overrun is then noticed only once the reading is done).
    readers: ReaderPool | None = None

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        if self.readers is None:
            yield InlineReader(self.identity)
            return
        with self.readers.lease() as reader:
            yield reader


@dataclass
class PollReport:
    mailbox: str
    fetched: int = 0
    routed: int = 0
    ignored: int = 0
    quarantined: int = 0
    duplicates: int = 0
    cases_created: list[str] = field(default_factory=list)
    replies_queued: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def poll_mailbox(intake: Intake, mailbox: str, source: MailSource, *, batch_size: int = 50) -> PollReport:
    """Process everything new in one mailbox. Never raises for a mailbox problem: the report says it."""
    report = PollReport(mailbox=mailbox)
    try:
        with source:
            _poll(intake, mailbox, source, batch_size, report)
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


def _poll(intake: Intake, mailbox: str, source: MailSource, batch_size: int, report: PollReport) -> None:
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
                _store_batch(intake, mailbox, uidvalidity, source, pending, report)
            pending = batch
        if pending is not None:
            _store_batch(intake, mailbox, uidvalidity, source, pending, report)


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
    intake: Intake, mailbox: str, uidvalidity: int, source: MailSource, batch: _Fetched, report: PollReport
) -> None:
    """Apply one read batch in one transaction, then acknowledge its messages in the mailbox."""
    # Wait for every reading first: the write transaction (the database lock) is held only for
    # the inserts of the batch, never while a reading runs into its deadline.
    results = list(batch.job.results()) if batch.job is not None else []
    done = list(batch.known)
    messages = batch.messages
    with session_scope(intake.engine) as session:
        batch_state = _Batch()
        for message, result in zip(messages, results, strict=True):
            report.fetched += 1
            _ingest_one(intake, session, mailbox, uidvalidity, message, result, batch_state, report)
            if message.headers_only:
                # Too large to download: it stays untouched in the mailbox, for a person to see (and
                # for `quarantine reprocess` once the limit is raised); the ledger row keeps it from
                # being fetched again, and there is nothing to acknowledge.
                repo.mark_acked(session, mailbox, uidvalidity, [message.uid], intake.clock())
            else:
                done.append(message.uid)
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


# -- one message ------------------------------------------------------------------------------------


@dataclass
class _Effects:
    """What one message did, counted in the poll report only once its savepoint holds."""

    cases_created: list[str] = field(default_factory=list)
    duplicate: int = 0
    replies_queued: int = 0
    events: list[dict[str, object]] = field(default_factory=list)
    #: The ledger row to decide again (reprocessing from the quarantine) instead of inserting one.
    existing_id: int | None = None
    #: The ledger row written for this message.
    mail_id: int | None = None
    #: Quarantined rows holding the same bytes, which this message's decision supersedes.
    quarantined_copies: list[int] = field(default_factory=list)
    #: Seconds spent so far on reading, deciding and rendering, against the time budget.
    spent: float = 0.0

    def spend(self, intake: Intake, seconds: float, what: str) -> None:
        self.spent += seconds
        if self.spent > intake.message_budget_seconds:
            raise overrun(self.spent, intake.message_budget_seconds, what)


@dataclass
class _Batch:
    """State shared by the messages of one batch: its audit events are written together at the end."""

    events: list[dict[str, object]] = field(default_factory=list)
    rulesets: set[str] = field(default_factory=set)
    # Automatic replies queued to anyone in the last hour (the global ceiling), counted once per batch.
    replies_last_hour: int | None = None


@dataclass(frozen=True)
class _CaseRow:
    id: int
    ref: str
    orders: tuple[str, ...]
    category: str


def _ingest_one(
    intake: Intake,
    session: Session,
    mailbox: str,
    uidvalidity: int,
    message: FetchedMessage,
    result: ReadResult,
    batch: _Batch,
    report: PollReport,
) -> None:
    """Apply one message inside the batch's transaction, in a savepoint of its own.

    A message that fails rolls back only its own savepoint and is quarantined; the batch goes on.
    """
    effects = _Effects(spent=result.seconds)
    try:
        outcome = _apply_in_savepoint(intake, session, mailbox, uidvalidity, message, result, batch, effects)
    except Exception as exc:  # a bug or a poison message: keep it, say why, go on
        log.error("mailbox %s uid %s: quarantined after an error: %s", mailbox, message.uid, exc)
        with session.begin_nested():
            _quarantine(intake, session, mailbox, uidvalidity, message, exc)
        report.quarantined += 1
        return
    batch.events.extend(effects.events)
    report.cases_created.extend(effects.cases_created)
    report.duplicates += effects.duplicate
    report.replies_queued += effects.replies_queued
    if batch.replies_last_hour is not None:
        batch.replies_last_hour += effects.replies_queued
    if outcome is Outcome.ROUTED:
        report.routed += 1
    elif outcome is Outcome.IGNORED:
        report.ignored += 1
    else:
        report.quarantined += 1


def _apply_in_savepoint(
    intake: Intake,
    session: Session,
    mailbox: str,
    uidvalidity: int,
    message: FetchedMessage,
    result: ReadResult,
    batch: _Batch,
    effects: _Effects,
) -> Outcome:
    """`_apply` in a savepoint; quarantined copies of the same mail leave the quarantine with it."""
    with session.begin_nested():
        reading = result.reading
        if result.error is not None and not message.headers_only:
            raise result.error
        outcome = _apply(intake, session, mailbox, uidvalidity, message, reading, batch, effects)
        if effects.quarantined_copies and effects.mail_id is not None:
            _supersede(intake, session, effects)
    return outcome


def _supersede(intake: Intake, session: Session, effects: _Effects) -> None:
    """A quarantined mail delivered again was decided afresh: its old rows leave the quarantine."""
    reason = f"superseded: delivered again as mail #{effects.mail_id}, which was decided afresh"
    quarantine_queries.supersede(session, effects.quarantined_copies, reason)
    now = intake.clock()
    effects.events.extend(
        repo.event_row("superseded", reason, now, mail_id=mail_id) for mail_id in effects.quarantined_copies
    )


def reapply(
    intake: Intake, session: Session, mail_id: int, message: FetchedMessage, result: ReadResult
) -> tuple[Outcome, list[dict[str, object]]]:
    """Decide a quarantined ledger row again, by the path a new message takes, in a savepoint.

    The row is updated in place (its outcome, reason, case and decision); on failure it stays
    quarantined with the new error. Returns the outcome and the audit events to write.
    """
    row = repo.mail_by_id(session, mail_id)
    if row is None:
        raise LookupError(f"no mail #{mail_id}")
    effects = _Effects(existing_id=mail_id, spent=result.seconds)
    batch = _Batch()
    try:
        outcome = _apply_in_savepoint(
            intake, session, row.mailbox, row.uidvalidity, message, result, batch, effects
        )
    except Exception as exc:
        log.error("mail #%s: quarantined again after an error: %s", mail_id, exc)
        reason = _quarantine_reason(exc)
        # The bytes go in too: a mail fetched whole only now (it was too large before) must not
        # depend on the mailbox any more once it is acknowledged there.
        quarantine_queries.update_ledger(
            session,
            mail_id,
            {
                "reason": reason[:2000],
                "raw": message.raw,
                "size": message.full_size,
                "sha256": hashlib.sha256(message.raw).hexdigest(),
            },
        )
        event = repo.event_row(
            "quarantined",
            f"mail #{mail_id}: {reason}"[:500],
            intake.clock(),
            mail_id=mail_id,
            detail={"traceback": "".join(traceback.format_exception(exc, limit=8))},
        )
        return Outcome.QUARANTINED, [event]
    return outcome, [*batch.events, *effects.events]


def _quarantine_reason(exc: Exception) -> str:
    if isinstance(exc, TimeBudgetExceeded):
        return str(exc)  # "time budget exceeded: …", counted by the health view
    return f"processing failed: {type(exc).__name__}: {exc}"


def _quarantine(
    intake: Intake, session: Session, mailbox: str, uidvalidity: int, message: FetchedMessage, exc: Exception
) -> None:
    if repo.ledger_by_key(session, mailbox, uidvalidity, message.uid) is not None:
        return
    error = f"{type(exc).__name__}: {exc}"
    now = intake.clock()
    mail_id = _record(
        session,
        mailbox,
        uidvalidity,
        message,
        hashlib.sha256(message.raw).hexdigest(),
        now,
        Outcome.QUARANTINED,
        _quarantine_reason(exc),
    )
    detail = {"traceback": "".join(traceback.format_exception(exc, limit=8))}
    repo.insert_many(
        session,
        CaseEvent,
        [
            repo.event_row(
                "quarantined",
                f"{mailbox} UID {message.uid}: {error}"[:500],
                now,
                mail_id=mail_id,
                detail=detail,
            )
        ],
    )


def _advance_cursor(session: Session, mailbox: str, uid: int) -> None:
    cursor = repo.cursor_for(session, mailbox)
    if uid > cursor.last_uid:
        cursor.last_uid = uid
        session.add(cursor)


def _record(
    session: Session,
    mailbox: str,
    uidvalidity: int,
    message: FetchedMessage,
    sha: str,
    now: datetime,
    outcome: Outcome,
    reason: str,
    *,
    reading: Reading | None = None,
    case_id: int | None = None,
    decision: dict[str, object] | None = None,
    ruleset_version: str = "",
    existing_id: int | None = None,
) -> int:
    """The ledger row of one message, written with its outcome; returns its id.

    With `existing_id` (a mail reprocessed from the quarantine) that row is decided again in place:
    when it was fetched and whether the mailbox was told stay as they were.
    """
    mail = reading.mail if reading is not None else None
    values: dict[str, object] = {
        "sha256": sha,
        "message_id": mail.message_id if mail else None,
        "raw": message.raw,
        "size": message.full_size,
        "subject": mail.subject[:1000] if mail else "",
        "from_addr": mail.from_addr if mail else None,
        "outcome": outcome.value,
        "reason": reason[:2000],
        "case_id": case_id,
        "ruleset_version": ruleset_version,
        "decision": decision or {},
    }
    if existing_id is not None:
        quarantine_queries.update_ledger(session, existing_id, values)
        return existing_id
    return repo.insert_returning_id(
        session,
        MailRecord,
        {
            "mailbox": mailbox,
            "uidvalidity": uidvalidity,
            "uid": message.uid,
            "fetched_at": now,
            "acked_at": None,
            **values,
        },
    )


def _apply(
    intake: Intake,
    session: Session,
    mailbox: str,
    uidvalidity: int,
    message: FetchedMessage,
    reading: Reading | None,
    batch: _Batch,
    effects: _Effects,
) -> Outcome:
    now = intake.clock()
    sha = reading.mail.sha256 if reading is not None else hashlib.sha256(message.raw).hexdigest()

    def record(outcome: Outcome, reason: str, **more: Any) -> int:
        effects.mail_id = _record(
            session,
            mailbox,
            uidvalidity,
            message,
            sha,
            now,
            outcome,
            reason,
            reading=reading,
            existing_id=effects.existing_id,
            **more,
        )
        return effects.mail_id

    # A copy in quarantine is no reason to ignore this one: it is decided afresh (and supersedes it).
    copies = [
        c for c in quarantine_queries.ledger_copies(session, mailbox, sha) if c.id != effects.existing_id
    ]
    earlier = next((c for c in copies if c.outcome != Outcome.QUARANTINED.value), None)
    effects.quarantined_copies = [c.id for c in copies if c.outcome == Outcome.QUARANTINED.value]
    if earlier is not None:
        effects.duplicate = 1
        effects.quarantined_copies = []
        record(
            Outcome.IGNORED,
            f"duplicate: same content as mail #{earlier.id} (UID {earlier.uid}, "
            f"UIDVALIDITY {earlier.uidvalidity})",
        )
        return Outcome.IGNORED
    if reading is None or message.headers_only or message.full_size > intake.max_message_bytes:
        # Only the headers were fetched (or, if the mail grew since its size was asked, the whole
        # mail is kept but not read); the reading of the headers still names sender and subject.
        record(
            Outcome.QUARANTINED,
            f"message of {message.full_size} bytes exceeds the limit of {intake.max_message_bytes} bytes",
        )
        return Outcome.QUARANTINED

    mail = reading.mail
    if mail.message_id:
        seen = repo.inbound_message_on_case(session, mail.message_id)
        if seen is not None:
            known = repo.case_by_id(session, seen.case_id)
            effects.duplicate = 1
            record(
                Outcome.IGNORED,
                f"duplicate: Message-ID already on case {known.ref if known else '?'} "
                "(delivered to more than one mailbox)",
                case_id=seen.case_id,
            )
            return Outcome.IGNORED

    ruleset = intake.rules.current()
    if ruleset.version not in batch.rulesets:
        repo.remember_ruleset(session, ruleset.version, ruleset.file_texts())
        batch.rulesets.add(ruleset.version)
    if batch.replies_last_hour is None:
        batch.replies_last_hour = guards.replies_last_hour(session, now)
    candidates = _candidates(session, reading)
    # Every guard looks at the address the reply would be sent to, not at From.
    history = guards.recipient_history(
        session,
        reply_recipient(mail, intake.identity).address,
        now,
        replies_total_last_hour=batch.replies_last_hour,
    )
    deciding = time.perf_counter()
    decision = decide(
        reading,
        mailbox=mailbox,
        ruleset=ruleset,
        identity=intake.identity,
        candidates=candidates,
        history=history,
        limits=intake.limits,
    )
    effects.spend(intake, time.perf_counter() - deciding, "reading and deciding")
    summary = decision_summary(decision)
    if decision.reply_block is not None and decision.reply_block.guard == "ceiling":
        reply_safety.ceiling_alert(session, decision.reply_block.why, now, effects.events, batch.events)
    bounce = reply_safety.bounce_of_our_reply(session, intake.identity, reading, decision.thread.case_ref)

    if decision.outcome is not Outcome.ROUTED:
        case_id = _case_id(session, decision.thread.case_ref)
        mail_id = record(
            decision.outcome,
            decision.reason,
            case_id=case_id,
            decision=summary,
            ruleset_version=decision.ruleset_version,
        )
        effects.events.append(
            repo.event_row(
                decision.outcome.value, decision.reason, now, case_id=case_id, mail_id=mail_id, detail=summary
            )
        )
        if bounce is not None:
            effects.events.append(bounce.event(now, mail_id))
        return decision.outcome

    # The unique key on inbound Message-IDs makes the duplicate check above hold when two mailboxes
    # receive the same mail at the same moment: the loser's insert waits for the winner and conflicts.
    if mail.message_id and not repo.claim_inbound(session, mail.message_id, mailbox, sha, now):
        seen = repo.inbound_message_on_case(session, mail.message_id)
        effects.duplicate = 1
        record(
            Outcome.IGNORED,
            "duplicate: Message-ID already claimed by another mailbox's copy (delivered to more than one "
            "mailbox)",
            case_id=seen.case_id if seen else None,
        )
        return Outcome.IGNORED
    case, created = _case_for(session, intake, mailbox, reading, decision, now, effects)
    if created:
        effects.cases_created.append(case.ref)
    mail_id = record(
        Outcome.ROUTED,
        decision.reason,
        case_id=case.id,
        decision=summary,
        ruleset_version=decision.ruleset_version,
    )
    repo.insert_returning_id(
        session,
        CaseMessage,
        {
            "case_id": case.id,
            "direction": "in",
            "message_id": mail.message_id,
            "mail_id": mail_id,
            "outbox_id": None,
            "from_addr": mail.from_addr or "",
            "subject": mail.subject[:1000],
            "created_at": now,
        },
    )
    effects.events.append(
        repo.event_row(
            "routed",
            ("opened case" if created else "joined case") + f" {case.ref}: {decision.reason}",
            now,
            case_id=case.id,
            mail_id=mail_id,
            detail=summary,
        )
    )
    if bounce is not None:
        effects.events.append(bounce.event(now, mail_id))
    if decision.reply_block is not None and decision.reply_block.guard != "machine":
        effects.events.append(
            repo.event_row(
                "reply_blocked",
                f"no reply: {decision.reply_block.why}",
                now,
                case_id=case.id,
                mail_id=mail_id,
            )
        )
    if decision.reply_template is not None and _queue_reply(
        session, intake, mailbox, reading, decision, case, mail_id, now, effects
    ):
        effects.replies_queued = 1
    return Outcome.ROUTED


def _case_id(session: Session, ref: str | None) -> int | None:
    if ref is None:
        return None
    case = repo.case_by_ref(session, ref)
    return case.id if case else None


def _candidates(session: Session, reading: Reading) -> ThreadCandidates:
    keys = reading.thread_keys
    by_mid = repo.case_by_message_ids(session, keys.our_message_ids)
    return ThreadCandidates(
        by_message_id=repo.case_facts(session, by_mid) if by_mid else None,
        by_ref=tuple(repo.case_facts(session, c) for c in repo.cases_by_refs(session, keys.case_refs)),
        by_order=tuple(
            repo.case_facts(session, c)
            for c in repo.open_cases_by_orders(session, reading.mail.from_addr, reading.orders.numbers)
        ),
    )


def _case_for(
    session: Session,
    intake: Intake,
    mailbox: str,
    reading: Reading,
    decision: Decision,
    now: datetime,
    effects: _Effects,
) -> tuple[_CaseRow, bool]:
    mail = reading.mail
    closed: Case | None = None
    if decision.thread.case_ref is not None:
        case = repo.case_by_ref(session, decision.thread.case_ref)
        if case is not None and case.id is not None and case.status == "closed":
            closed = case  # closed is final: the mail opens a new case, linked to this one
        elif case is not None and case.id is not None:
            repo.add_orders(session, case, decision.orders.numbers)
            case.updated_at = now
            if case.status in REOPENED_BY_BUYER and not reading.automation.is_machine:
                before = case.status
                case.status = "open"
                case.resolved_at = None
                effects.events.append(
                    repo.event_row(
                        "status",
                        f"status {before} → open: the buyer wrote again",
                        now,
                        case_id=case.id,
                        detail={"by": "mailbot", "from": before, "to": "open"},
                    )
                )
            session.add(case)
            return _CaseRow(case.id, case.ref, tuple(case.orders), case.category), False
    ref = _new_ref(session, mail.sha256 + mailbox)
    actions = decision.actions
    orders = list(dict.fromkeys(decision.orders.numbers))
    case_id = repo.insert_returning_id(
        session,
        Case,
        {
            "ref": ref,
            "category": actions.category,
            "status": "new",
            "priority": actions.priority,
            "queue": actions.queue,
            "assignee": actions.assignee,
            "tags": list(actions.tags),
            "orders": orders,
            "buyer": (mail.from_addr or "").lower(),
            "buyer_name": mail.from_name,
            "mailbox": mailbox,
            "language": decision.language,
            "subject": mail.subject[:1000],
            "created_at": now,
            "updated_at": now,
        },
    )
    repo.insert_many(session, CaseOrder, [{"case_id": case_id, "number": number} for number in orders])
    if closed is not None and closed.id is not None:
        link = {"closed": closed.ref, "new": ref}
        effects.events.append(
            repo.event_row("linked", f"continues closed case {closed.ref}", now, case_id=case_id, detail=link)
        )
        effects.events.append(
            repo.event_row(
                "linked",
                f"the buyer wrote again; continued in case {ref}",
                now,
                case_id=closed.id,
                detail=link,
            )
        )
    return _CaseRow(case_id, ref, tuple(orders), actions.category), True


def _new_ref(session: Session, seed: str) -> str:
    for attempt in range(100):
        ref = case_ref_from_seed(f"{seed}:{attempt}".encode())
        if not repo.ref_exists(session, ref):
            return ref
    raise RuntimeError("could not find a free case reference")


def _greeting_name(name: str) -> str:
    """The sender's display name, unless it could carry someone's text into our reply (a link, an address)."""
    lowered = name.lower()
    if len(name) > 60 or any(mark in lowered for mark in ("@", "http", "www.", "://")):
        return ""
    return name.strip()


def _queue_reply(
    session: Session,
    intake: Intake,
    mailbox: str,
    reading: Reading,
    decision: Decision,
    case: _CaseRow,
    mail_id: int,
    now: datetime,
    effects: _Effects,
) -> bool:
    info = intake.mailboxes[mailbox]
    assert decision.reply_template is not None
    plan = plan_reply(
        reading.mail,
        mailbox_address=info.address,
        case_ref=case.ref,
        template=decision.reply_template,
        language=decision.language,
        identity=intake.identity,
        seed=f"{mailbox}:{reading.mail.sha256}:{decision.reply_template}",
    )
    context: dict[str, object] = {
        "case_ref": case.ref,
        "orders": list(case.orders),
        "order": case.orders[0] if case.orders else None,
        "buyer_name": _greeting_name(reading.mail.from_name),
        "service": info.service,
        "mailbox_address": info.address,
        "subject": reading.mail.subject,
        "category": case.category,
        "language": decision.language,
    }
    rendering = time.perf_counter()
    try:
        rendered = intake.renderer.render(plan.template, plan.language, context)
    except Exception as exc:  # a supervisor-edited template must never lose the buyer's mail
        effects.spend(intake, time.perf_counter() - rendering, "reading, deciding and rendering")
        effects.events.append(
            repo.event_row(
                "reply_failed",
                f"reply template {plan.template!r} could not be rendered: {exc}",
                now,
                case_id=case.id,
                mail_id=mail_id,
            )
        )
        return False
    effects.spend(intake, time.perf_counter() - rendering, "reading, deciding and rendering")
    raw = build_reply(
        plan,
        text=rendered.text,
        html=rendered.html,
        from_name=intake.from_name,
        now=now,
        case_ref=case.ref,
    )
    outbox_id = repo.insert_returning_id(
        session,
        OutboxItem,
        {
            "case_id": case.id,
            "mail_id": mail_id,
            "mailbox": mailbox,
            "message_id": plan.message_id,
            "mail_from": plan.from_addr,
            "rcpt_to": plan.to_addr.lower(),
            "template": plan.template,
            "language": rendered.language,
            "raw": raw,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
            "sent_at": None,
        },
    )
    repo.insert_returning_id(
        session,
        CaseMessage,
        {
            "case_id": case.id,
            "direction": "out",
            "message_id": plan.message_id,
            "mail_id": None,
            "outbox_id": outbox_id,
            "from_addr": plan.from_addr,
            "subject": plan.subject,
            "created_at": now,
        },
    )
    effects.events.append(
        repo.event_row(
            "reply_queued",
            f"reply {plan.template} ({rendered.language}) to {plan.to_addr}",
            now,
            case_id=case.id,
            mail_id=mail_id,
        )
    )
    return True

"""Applying one message: the ledger row, the decision, the case, its events and the reply, in one savepoint.

A message that fails rolls back only its own savepoint and is quarantined with the reason; the
batch goes on. `reapply` decides a quarantined row again by the same path (`quarantine reprocess`).
Duplicates (same bytes, same Message-ID in another mailbox) are recognised before anything is
decided, and the unique inbound claim makes that hold under concurrency.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from datetime import datetime
from typing import Any

from sqlmodel import Session

from mailbot.adapters.ports import FetchedMessage
from mailbot.core.decide import decide, decision_summary
from mailbot.core.replies import reply_recipient
from mailbot.core.types import Outcome, Reading, ThreadCandidates
from mailbot.observability import log_context
from mailbot.services import reply_safety
from mailbot.services.ingest_cases import case_for
from mailbot.services.ingest_reply import queue_reply
from mailbot.services.ingest_state import BatchState, Effects, Intake, PollReport
from mailbot.services.reading_worker import ReadResult, TimeBudgetExceeded
from mailbot.store import guards, quarantine_queries, repo
from mailbot.store.tables import CaseEvent, CaseMessage, MailRecord

log = logging.getLogger("mailbot.ingest")


def ingest_one(
    intake: Intake,
    session: Session,
    mailbox: str,
    uidvalidity: int,
    message: FetchedMessage,
    result: ReadResult,
    batch: BatchState,
    report: PollReport,
) -> None:
    """Apply one message inside the batch's transaction, in a savepoint of its own.

    A message that fails rolls back only its own savepoint and is quarantined; the batch goes on.
    One INFO line says what became of it; it and every other line logged meanwhile carry the
    mailbox, and the ledger id and case reference from the moment they are known.
    """
    with log_context(mailbox=mailbox) as fields:
        effects = Effects(spent=result.seconds, log_fields=fields)
        try:
            outcome = _apply_in_savepoint(
                intake, session, mailbox, uidvalidity, message, result, batch, effects
            )
        except Exception as exc:  # a bug or a poison message: keep it, say why, go on
            with session.begin_nested():
                sha = _sha(message, result.reading)
                fields.add(ledger_id=_quarantine(intake, session, mailbox, uidvalidity, message, exc, sha))
            log.error("mailbox %s uid %s: quarantined after an error: %s", mailbox, message.uid, exc)
            report.quarantined += 1
            return
        log.info(
            "mailbox %s uid %s: %s%s: %s",
            mailbox,
            message.uid,
            outcome.value,
            f", case {effects.case_ref}" if effects.case_ref else "",
            effects.reason,
        )
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
    batch: BatchState,
    effects: Effects,
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


def _supersede(intake: Intake, session: Session, effects: Effects) -> None:
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
    effects = Effects(existing_id=mail_id, spent=result.seconds)
    batch = BatchState()
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
                "sha256": _sha(message, result.reading),
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


def _sha(message: FetchedMessage, reading: Reading | None) -> str:
    """The SHA-256 of the raw message: the parser's, computed once per message; only a message
    that could not be read at all has its bytes hashed here."""
    return reading.mail.sha256 if reading is not None else hashlib.sha256(message.raw).hexdigest()


def _quarantine(
    intake: Intake,
    session: Session,
    mailbox: str,
    uidvalidity: int,
    message: FetchedMessage,
    exc: Exception,
    sha: str,
) -> int | None:
    """Keep a message that could not be applied, with the error; returns its ledger id."""
    known = repo.ledger_by_key(session, mailbox, uidvalidity, message.uid)
    if known is not None:
        return known.id
    error = f"{type(exc).__name__}: {exc}"
    now = intake.clock()
    mail_id = _record(
        session,
        mailbox,
        uidvalidity,
        message,
        sha,
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
    return mail_id


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
    batch: BatchState,
    effects: Effects,
) -> Outcome:
    now = intake.clock()
    sha = _sha(message, reading)

    def record(outcome: Outcome, reason: str, **more: Any) -> int:
        effects.reason = reason
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
        effects.log_fields.add(ledger_id=effects.mail_id, case_ref=effects.case_ref)
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
            effects.case_ref = known.ref if known else None
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
        effects.case_ref = decision.thread.case_ref if case_id is not None else None
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
    case, created = case_for(session, intake, mailbox, reading, decision, now, effects)
    effects.case_ref = case.ref
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
    what = f"joined case {case.ref}"
    if created:
        # A thread that named a case yet opened one: that case is closed (see ingest_cases).
        named = decision.thread.case_ref
        closed = f" (case {named} is closed)" if named and named != case.ref else ""
        what = f"opened case {case.ref}{closed}"
    effects.events.append(
        repo.event_row(
            "routed",
            f"{what}: {decision.reason}",
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
    if decision.reply_template is not None and queue_reply(
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

"""The quarantine: mail that could not be processed, listed, looked at and decided again.

A mail lands here when reading, deciding or applying it failed, when it overran its time budget, or
when it was too large to download. Nothing in quarantine is lost: the ledger row keeps the bytes
(only the header block for an over-size mail) and the reason. Reprocessing decides the mail again
under the rules and templates in charge now, by the same path a new mail takes (`ingest.reapply`:
read with the time budget, decide, apply), in one transaction per mail; the row becomes routed,
ignored or quarantined again, and an audit event says what happened.

A mail quarantined for its size is reprocessed once `limits.max_message_bytes` allows it: its bytes
were never downloaded, so it is fetched from the mailbox then (it was left there untouched), checked
to be the same mail (its header block must match), and acknowledged in the mailbox after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.adapters.ports import FetchedMessage, MailSource, SourceError
from mailbot.core.types import Outcome
from mailbot.observability import log_context
from mailbot.services.ingest import Intake, reapply
from mailbot.services.progress import Progress, Steps
from mailbot.store import quarantine_queries, repo
from mailbot.store.db import session_scope
from mailbot.store.tables import CaseEvent

log = logging.getLogger("mailbot.quarantine")

SKIPPED = "skipped"


def list_quarantine(
    engine: Engine, *, since: datetime | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Mail in quarantine, oldest first."""
    with Session(engine) as session:
        return [_row(row) for row in quarantine_queries.quarantined(session, since=since, limit=limit)]


def quarantined_ids(engine: Engine, *, since: datetime | None = None) -> list[int]:
    return [row["id"] for row in list_quarantine(engine, since=since)]


def _row(row: quarantine_queries.QuarantineRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "mailbox": row.mailbox,
        "uidvalidity": row.uidvalidity,
        "uid": row.uid,
        "fetched_at": row.fetched_at.isoformat(),
        "size": row.size,
        "stored_bytes": row.stored,
        "headers_only": row.stored < row.size,
        "from": row.from_addr,
        "subject": row.subject,
        "reason": row.reason,
    }


def show_mail(engine: Engine, mail_id: int) -> dict[str, Any] | None:
    """One ledger row (quarantined or not): what is known of the mail, why, and its history."""
    with Session(engine) as session:
        mail = repo.mail_by_id(session, mail_id)
        if mail is None or mail.id is None:
            return None
        case = repo.case_by_id(session, mail.case_id) if mail.case_id is not None else None
        headers = BytesHeaderParser(policy=compat32).parsebytes(mail.raw)
        return {
            "id": mail.id,
            "mailbox": mail.mailbox,
            "uidvalidity": mail.uidvalidity,
            "uid": mail.uid,
            "fetched_at": mail.fetched_at.isoformat(),
            "outcome": mail.outcome,
            "reason": mail.reason,
            "case": case.ref if case is not None else None,
            "size": mail.size,
            "stored_bytes": len(mail.raw),
            "headers_only": len(mail.raw) < mail.size,
            "message_id": mail.message_id,
            "from": mail.from_addr,
            "subject": mail.subject,
            "headers": [(name, str(value)) for name, value in headers.items()],
            "events": [
                {"kind": e.kind, "summary": e.summary, "at": e.created_at.isoformat(), "detail": e.detail}
                for e in quarantine_queries.mail_events(session, mail.id)
            ],
        }


def stored_bytes(engine: Engine, mail_id: int) -> bytes | None:
    with Session(engine) as session:
        mail = repo.mail_by_id(session, mail_id)
        return bytes(mail.raw) if mail is not None else None


@dataclass(frozen=True)
class Reprocessed:
    """What became of one mail: routed, ignored, quarantined (again) or skipped, and why."""

    mail_id: int
    outcome: str
    reason: str
    case_ref: str | None = None
    replies_queued: int = 0

    @property
    def settled(self) -> bool:
        return self.outcome in (Outcome.ROUTED.value, Outcome.IGNORED.value)


@dataclass
class _Sources:
    """Mailboxes opened on demand (only for mail quarantined for its size), each once per run."""

    open_source: Callable[[str], MailSource] | None
    stack: ExitStack = field(default_factory=ExitStack)
    opened: dict[str, MailSource] = field(default_factory=dict)

    def get(self, mailbox: str) -> MailSource:
        if self.open_source is None:
            raise SourceError("the mailbox cannot be opened here")
        if mailbox not in self.opened:
            self.opened[mailbox] = self.stack.enter_context(self.open_source(mailbox))
        return self.opened[mailbox]


class _Skip(Exception):
    """This mail is left as it is, for the reason given."""


def reprocess(
    intake: Intake,
    mail_ids: Sequence[int],
    *,
    open_source: Callable[[str], MailSource] | None = None,
    progress: Progress | None = None,
) -> list[Reprocessed]:
    """Decide these quarantined mails again, one transaction each; `open_source(mailbox)` opens a
    mailbox to fetch a mail that was quarantined for its size (None: such mail is skipped).

    `progress` hears (done, total) after each mail: `--all` on a full quarantine takes a while.
    """
    results: list[Reprocessed] = []
    sources = _Sources(open_source)
    wanted = list(dict.fromkeys(mail_ids))
    steps = Steps(progress, len(wanted))
    with sources.stack:
        for mail_id in wanted:
            with log_context(ledger_id=mail_id):
                try:
                    result = _reprocess_one(intake, mail_id, sources)
                except _Skip as skip:
                    result = Reprocessed(mail_id, SKIPPED, str(skip))
                    log.info("mail #%s skipped: %s", mail_id, skip)
            results.append(result)
            steps.advance()
    return results


def _reprocess_one(intake: Intake, mail_id: int, sources: _Sources) -> Reprocessed:
    with Session(intake.engine) as session:
        row = repo.mail_by_id(session, mail_id)
        if row is None:
            raise _Skip(f"there is no mail #{mail_id}")
        if row.outcome != Outcome.QUARANTINED.value:
            raise _Skip(f"mail #{mail_id} is not in quarantine (it was {row.outcome}: {row.reason})")
        mailbox, uidvalidity, uid, size, raw = row.mailbox, row.uidvalidity, row.uid, row.size, row.raw
        previous = row.reason
    with log_context(mailbox=mailbox):
        result = _decide_again(intake, mail_id, sources, mailbox, uidvalidity, uid, size, raw, previous)
        log.info(
            "mail #%s decided again: %s%s",
            mail_id,
            result.outcome,
            f" (case {result.case_ref})" if result.case_ref else "",
            extra={"case_ref": result.case_ref},
        )
    return result


def _decide_again(
    intake: Intake,
    mail_id: int,
    sources: _Sources,
    mailbox: str,
    uidvalidity: int,
    uid: int,
    size: int,
    raw: bytes,
    previous: str,
) -> Reprocessed:
    source: MailSource | None = None
    if len(raw) < size:  # only its headers were fetched: it was too large
        source = _source_for(sources, mail_id, mailbox, uidvalidity, size, intake)
        raw = _fetch_whole(source, mail_id, uid, raw)
    message = FetchedMessage(uid=uid, raw=raw, size=len(raw))
    with intake.reader() as reader:
        job = reader.submit([raw], intake.rules.reading(), intake.message_budget_seconds)
        (result,) = list(job.results())
    with session_scope(intake.engine) as session:
        outcome, events = reapply(intake, session, mail_id, message, result)
        if source is not None:
            quarantine_queries.update_ledger(session, mail_id, {"acked_at": None})
        replies = sum(1 for event in events if event.get("kind") == "reply_queued")
        case_id = next((event["case_id"] for event in events if event.get("case_id") is not None), None)
        events.append(
            repo.event_row(
                "reprocessed",
                f"mail #{mail_id} decided again after quarantine ({previous[:200]}): {outcome.value}",
                intake.clock(),
                mail_id=mail_id,
                case_id=case_id if isinstance(case_id, int) else None,
            )
        )
        repo.insert_many(session, CaseEvent, events)
    if source is not None:  # its bytes are in the ledger now, whatever the outcome
        _acknowledge(intake, source, mailbox, uidvalidity, uid)
    with Session(intake.engine) as session:
        row = repo.mail_by_id(session, mail_id)
        assert row is not None
        case = repo.case_by_id(session, row.case_id) if row.case_id is not None else None
        return Reprocessed(mail_id, row.outcome, row.reason, case.ref if case else None, replies)


def _source_for(
    sources: _Sources, mail_id: int, mailbox: str, uidvalidity: int, size: int, intake: Intake
) -> MailSource:
    if size > intake.max_message_bytes:
        raise _Skip(
            f"mail #{mail_id} has {size} bytes, still over limits.max_message_bytes "
            f"({intake.max_message_bytes}); raise the limit to reprocess it"
        )
    try:
        source = sources.get(mailbox)
    except (SourceError, OSError, ValueError, KeyError) as exc:
        raise _Skip(
            f"mail #{mail_id} was too large to download and must be fetched from mailbox {mailbox!r}, "
            f"which cannot be opened: {exc}"
        ) from exc
    if source.uidvalidity != uidvalidity:
        raise _Skip(
            f"mail #{mail_id} must be fetched from mailbox {mailbox!r}, but the mailbox was recreated "
            f"(UIDVALIDITY {uidvalidity} is now {source.uidvalidity}); it is fetched again there by the "
            "next poll"
        )
    return source


def _fetch_whole(source: MailSource, mail_id: int, uid: int, headers: bytes) -> bytes:
    try:
        found = next(iter(source.fetch([uid])), None)
    except SourceError as exc:
        raise _Skip(f"mail #{mail_id} could not be fetched: {exc}") from exc
    if found is None:
        raise _Skip(f"mail #{mail_id} (UID {uid}) is no longer in its mailbox")
    if not found.raw.startswith(headers):
        raise _Skip(f"UID {uid} no longer holds mail #{mail_id} (its headers differ); nothing was changed")
    return found.raw


def _acknowledge(intake: Intake, source: MailSource, mailbox: str, uidvalidity: int, uid: int) -> None:
    """Mark the fetched mail processed in the mailbox; if that fails, the next poll does it."""
    try:
        source.acknowledge([uid])
    except SourceError as exc:
        log.warning("mailbox %s: UID %s is acknowledged by the next poll: %s", mailbox, uid, exc)
        return
    with session_scope(intake.engine) as session:
        repo.mark_acked(session, mailbox, uidvalidity, [uid], intake.clock())

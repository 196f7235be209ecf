"""What intake does about replies beyond queuing them: the ceiling alert and bounces of our replies.

Both run inside intake's transaction (the caller's session), so their suppressions and audit
events commit or roll back with the message that caused them. They live apart from ingest.py so
the poll loop stays about fetching and applying, and the loop-safety effects are in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from mailbot.core import bounces
from mailbot.core.conversation import is_our_message_id
from mailbot.core.types import AutomationKind, Identity, Reading
from mailbot.store import guards, repo

log = logging.getLogger("mailbot.ingest")


def ceiling_alert(
    session: Session,
    why: str,
    now: datetime,
    events: list[dict[str, object]],
    pending: Sequence[dict[str, object]] = (),  # events of the batch not written yet
) -> None:
    """The global ceiling blocked a reply: say so loudly, once an hour.

    An error log line for the operator, and a `reply_ceiling` audit event, which is also the fact
    health reads (`guards.last_ceiling_alert`).
    """
    if guards.last_ceiling_alert(session, now - timedelta(hours=1)) is not None:
        return
    if any(event.get("kind") == guards.CEILING_EVENT for event in (*events, *pending)):
        return
    log.error("automatic replies stopped: %s; raise limits.replies_total_per_hour if this is expected", why)
    events.append(repo.event_row(guards.CEILING_EVENT, f"automatic replies stopped: {why}", now))


@dataclass(frozen=True)
class Bounce:
    """A bounce of one of our replies, tied to its case."""

    case_id: int
    summary: str  # "our reply to x@y bounced: smtp; 550 5.1.1 … (permanent)"

    def event(self, now: datetime, mail_id: int) -> dict[str, object]:
        return repo.event_row("reply_bounced", self.summary, now, case_id=self.case_id, mail_id=mail_id)


def bounce_of_our_reply(
    session: Session, identity: Identity, reading: Reading, case_ref: str | None
) -> Bounce | None:
    """Which case a bounce belongs to, and the suppression a permanent failure of our reply earns.

    Matched by our reply's Message-ID in the returned message, else by the case the decision put
    it on (`case_ref`, found by a case reference). Only an address one of our replies on that case
    was sent to is suppressed: a forged bounce naming somebody else's address must not silence
    their case. A bounce of mail we never sent ties to nothing and suppresses nothing.
    """
    report = reading.automation.report
    if reading.automation.kind is not AutomationKind.BOUNCE or report is None:
        return None
    ours = [i for i in bounces.returned_message_ids(reading.mail, report) if is_our_message_id(i, identity)]
    reply = guards.reply_by_message_ids(session, ours)
    case_id = reply.case_id if reply is not None else None
    if case_id is None and case_ref is not None:
        case = repo.case_by_ref(session, case_ref)
        case_id = case.id if case is not None else None
    if case_id is None:
        return None
    if reply is not None:
        address: str | None = reply.rcpt_to
    else:
        sent_to = guards.reply_recipients_of_case(session, case_id)
        address = next((r for r in report.recipients if r in sent_to), None)
    if address is not None and report.permanent:
        repo.suppress(session, address, f"hard bounce: {bounces.describe(report)}"[:500])
    target = address or (report.recipients[0] if report.recipients else "the buyer")
    return Bounce(case_id, f"our reply to {target} bounced: {bounces.describe(report)}"[:500])

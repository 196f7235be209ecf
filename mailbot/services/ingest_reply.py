"""Queuing the automatic reply to one routed message: rendered, built and put in the outbox.

The reply is written in the message's own transaction, so it exists exactly when its case does;
the outbox (`services/outbox.py`) sends it. A template that cannot be rendered costs the buyer the
reply, never the mail: the case records why.
"""

from __future__ import annotations

import time
from datetime import datetime

from sqlmodel import Session

from mailbot.core.replies import build_reply, plan_reply
from mailbot.core.types import Decision, Reading
from mailbot.services.ingest_cases import CaseRow
from mailbot.services.ingest_state import Effects, Intake
from mailbot.store import repo
from mailbot.store.tables import CaseMessage, OutboxItem


def _greeting_name(name: str) -> str:
    """The sender's display name, unless it could carry someone's text into our reply (a link, an address)."""
    lowered = name.lower()
    if len(name) > 60 or any(mark in lowered for mark in ("@", "http", "www.", "://")):
        return ""
    return name.strip()


def queue_reply(
    session: Session,
    intake: Intake,
    mailbox: str,
    reading: Reading,
    decision: Decision,
    case: CaseRow,
    mail_id: int,
    now: datetime,
    effects: Effects,
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
        prefixes=intake.rules.reading().subjects,
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

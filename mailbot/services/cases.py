"""Staff views of cases: the queue and one case with its messages, events and replies."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.store import repo
from mailbot.store.tables import Case


def _case_row(case: Case) -> dict[str, Any]:
    return {
        "ref": case.ref,
        "category": case.category,
        "status": case.status,
        "priority": case.priority,
        "queue": case.queue,
        "assignee": case.assignee,
        "tags": list(case.tags),
        "orders": list(case.orders),
        "buyer": case.buyer,
        "buyer_name": case.buyer_name,
        "mailbox": case.mailbox,
        "language": case.language,
        "subject": case.subject,
        "created_at": case.created_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
    }


def list_cases(
    engine: Engine, *, status: str | None = None, category: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    with Session(engine) as session:
        return [_case_row(c) for c in repo.list_cases(session, status=status, category=category, limit=limit)]


def show_case(engine: Engine, ref: str) -> dict[str, Any] | None:
    with Session(engine) as session:
        case = repo.case_by_ref(session, ref)
        if case is None or case.id is None:
            return None
        data = _case_row(case)
        data["messages"] = [
            {
                "direction": m.direction,
                "message_id": m.message_id,
                "from": m.from_addr,
                "subject": m.subject,
                "at": m.created_at.isoformat(),
            }
            for m in repo.case_messages(session, case.id)
        ]
        data["events"] = [
            {"kind": e.kind, "summary": e.summary, "at": e.created_at.isoformat(), "detail": e.detail}
            for e in repo.case_events(session, case.id)
        ]
        data["replies"] = [
            {
                "id": o.id,
                "message_id": o.message_id,
                "to": o.rcpt_to,
                "template": o.template,
                "language": o.language,
                "status": o.status,
                "attempts": o.attempts,
                "last_error": o.last_error,
                "text": _reply_text(o.raw),
            }
            for o in repo.case_outbox(session, case.id)
        ]
        return data


def _reply_text(raw: bytes) -> str:
    from email import message_from_bytes, policy
    from email.message import EmailMessage

    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    return str(body.get_content()) if body is not None else ""

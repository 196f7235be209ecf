"""Health: how each mailbox's last poll went, what waits in the outbox, what became of the mail."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.store import repo


def health(engine: Engine, mailboxes: list[str]) -> dict[str, Any]:
    """A mailbox is unhealthy when its last poll failed or it was never polled successfully."""
    with Session(engine) as session:
        cursors = {c.mailbox: c for c in repo.cursors(session)}
        boxes = []
        for name in mailboxes:
            cursor = cursors.get(name)
            boxes.append(
                {
                    "mailbox": name,
                    "ok": bool(cursor and cursor.last_ok_at and not cursor.last_error),
                    "last_poll_at": cursor.last_poll_at.isoformat()
                    if cursor and cursor.last_poll_at
                    else None,
                    "last_ok_at": cursor.last_ok_at.isoformat() if cursor and cursor.last_ok_at else None,
                    "last_error": cursor.last_error if cursor else "never polled",
                    "uidvalidity": cursor.uidvalidity if cursor else None,
                    "last_uid": cursor.last_uid if cursor else None,
                }
            )
        outbox = repo.outbox_counts(session)
        return {
            "ok": all(b["ok"] for b in boxes) and not outbox.get("uncertain") and not outbox.get("failed"),
            "mailboxes": boxes,
            "outbox": outbox,
            "mail": repo.outcome_counts(session),
        }

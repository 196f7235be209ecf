"""Which case a routed message lands on: the case its thread names, or a new one.

A buyer's own (non-machine) mail reopens a case that was waiting on them or resolved (issue 8); a
closed case is final, so mail on it opens a new case linked to it by an event on each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from mailbot.core.conversation import case_ref_from_seed
from mailbot.core.types import Decision, Reading
from mailbot.services.ingest_state import Effects, Intake
from mailbot.store import repo
from mailbot.store.tables import Case, CaseOrder

#: Statuses a buyer's own (non-machine) mail moves back to "open" (issue 8): staff were waiting for
#: it, or thought the matter settled. "closed" is final; a new mail opens a new, linked case.
REOPENED_BY_BUYER = ("waiting", "resolved")


@dataclass(frozen=True)
class CaseRow:
    id: int
    ref: str
    orders: tuple[str, ...]
    category: str


def case_for(
    session: Session,
    intake: Intake,
    mailbox: str,
    reading: Reading,
    decision: Decision,
    now: datetime,
    effects: Effects,
) -> tuple[CaseRow, bool]:
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
                case.owed_since = now  # the answer is owed from this mail: the due time restarts
                case.due_at = None
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
            return CaseRow(case.id, case.ref, tuple(case.orders), case.category), False
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
    return CaseRow(case_id, ref, tuple(orders), actions.category), True


def _new_ref(session: Session, seed: str) -> str:
    for attempt in range(100):
        ref = case_ref_from_seed(f"{seed}:{attempt}".encode())
        if not repo.ref_exists(session, ref):
            return ref
    raise RuntimeError("could not find a free case reference")

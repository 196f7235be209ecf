"""Merge two cases of the same buyer, and split one message off into a case of its own.

A buyer who writes twice about one problem without our reference gets two cases; a buyer who asks
about a second order in an old thread gets one case for two problems. Staff fix both here. Each is
one transaction that records audit events on both cases naming who did it and when. Merging across
buyers is refused: it would show one buyer's mail to the other in our replies' quoted history.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.core.conversation import case_ref_from_seed
from mailbot.services.casework import ActionResult, CaseworkError, Clock, _now, normalise_ref
from mailbot.store import case_moves_repo as moves
from mailbot.store import casework_repo as repo
from mailbot.store import repo as intake_repo
from mailbot.store.db import session_scope
from mailbot.store.tables import Case

__all__ = ["MergeResult", "SplitResult", "merge_cases", "split_message"]


@dataclass(frozen=True)
class MergeResult:
    source: str
    target: str
    moved: tuple[tuple[str, int], ...]  # table -> rows moved
    orders_gained: tuple[str, ...]
    action: ActionResult


@dataclass(frozen=True)
class SplitResult:
    source: str
    new_ref: str
    mail_id: int
    action: ActionResult


def _case(session: Session, ref: str) -> Case:
    case = repo.case_by_ref(session, normalise_ref(ref))
    if case is None or case.id is None:
        raise CaseworkError(f"no case {ref}")
    return case


def merge_cases(
    engine: Engine, source_ref: str, target_ref: str, *, by: str, clock: Clock = _now
) -> MergeResult:
    """Everything of `source_ref` moves to `target_ref`; the source is closed as "merged into" the target."""
    now = clock()
    with session_scope(engine) as session:
        source, target = _case(session, source_ref), _case(session, target_ref)
        assert source.id is not None and target.id is not None
        if source.id == target.id:
            raise CaseworkError(f"case {source.ref} cannot be merged into itself")
        if source.buyer.lower() != target.buyer.lower():
            raise CaseworkError(
                f"cases {source.ref} and {target.ref} belong to different buyers "
                f"({source.buyer}, {target.buyer}); only one buyer's cases can be merged"
            )
        if _merged_already(source):
            raise CaseworkError(f"case {source.ref} was already merged")
        moved = moves.move_case_rows(session, source.id, target.id)
        gained = moves.move_orders(session, source.id, target.id)
        target.orders = [*target.orders, *gained]
        if source.due_at is not None and (target.due_at is None or source.due_at < target.due_at):
            target.due_at = source.due_at  # the buyer has waited since the older request
        target.updated_at = now
        source.orders = []
        source.status = "closed"
        source.resolved_at = None
        source.tags = [*source.tags, f"merged-into:{target.ref}"]
        source.updated_at = now
        session.add_all([source, target])
        detail = {"by": by, "source": source.ref, "target": target.ref, "moved": moved, "orders": gained}
        summary = f"merged into {target.ref} by {by}"
        repo.add_event(session, source.id, "merged", summary, detail, now)
        repo.add_event(session, target.id, "merged", f"case {source.ref} merged in by {by}", detail, now)
        return MergeResult(
            source=source.ref,
            target=target.ref,
            moved=tuple(sorted(moved.items())),
            orders_gained=tuple(gained),
            action=ActionResult(source.ref, "merged", summary, by, now),
        )


def _merged_already(case: Case) -> bool:
    return any(tag.startswith("merged-into:") for tag in case.tags)


def split_message(engine: Engine, ref: str, mail_id: int, *, by: str, clock: Clock = _now) -> SplitResult:
    """One buyer message of `ref` becomes a new case of the same buyer, with that message's orders."""
    now = clock()
    with session_scope(engine) as session:
        source = _case(session, ref)
        assert source.id is not None
        mail = moves.mail_of_case(session, source.id, mail_id)
        if mail is None:
            raise CaseworkError(f"case {source.ref} has no message {mail_id}")
        if moves.inbound_count(session, source.id) < 2:
            raise CaseworkError(
                f"message {mail_id} is the only buyer message of case {source.ref}; nothing to split"
            )
        orders = _orders_of(mail.decision)
        new_ref = _free_ref(session, f"split:{source.ref}:{mail_id}")
        case = Case(
            ref=new_ref,
            category=source.category,
            status="new",
            priority=source.priority,
            queue=source.queue,
            tags=[f"split-from:{source.ref}"],
            orders=orders,
            buyer=source.buyer,
            buyer_name=source.buyer_name,
            mailbox=source.mailbox,
            language=source.language,
            subject=(mail.subject or source.subject)[:1000],
            created_at=now,
            updated_at=now,
        )
        session.add(case)
        session.flush()
        assert case.id is not None
        moves.add_orders(session, case.id, orders)
        moves.move_mail(session, mail_id, source.id, case.id)
        source.updated_at = now
        session.add(source)
        detail = {"by": by, "source": source.ref, "new": new_ref, "mail_id": mail_id}
        summary = f"message {mail_id} split off into {new_ref} by {by}"
        repo.add_event(session, source.id, "split", summary, detail, now)
        repo.add_event(session, case.id, "split", f"split off from {source.ref} by {by}", detail, now)
        return SplitResult(source.ref, new_ref, mail_id, ActionResult(source.ref, "split", summary, by, now))


def _orders_of(decision: dict[str, object]) -> list[str]:
    found = decision.get("orders")
    numbers: list[str] = []
    if isinstance(found, list):
        for order in found:
            number = order.get("number") if isinstance(order, dict) else None
            if isinstance(number, str) and number not in numbers:
                numbers.append(number)
    return numbers


def _free_ref(session: Session, seed: str) -> str:
    for attempt in range(100):
        candidate = case_ref_from_seed(f"{seed}:{attempt}".encode())
        if not intake_repo.ref_exists(session, candidate):
            return candidate
    raise CaseworkError("could not find a free case reference")

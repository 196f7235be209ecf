"""What staff read: the queue (filtered, searched, counted, paged) and one case with its whole thread.

Read-only; returns frozen dataclasses. The buyer's text is cut with the same split the reader uses,
so the new part comes first and quoted history can be folded away.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.core.mail_parts import IMAGE_PREVIEW_TYPES, AttachmentPart, attachment_parts
from mailbot.core.parse import parse
from mailbot.services.casework import STATUS_LABELS, STATUSES, normalise_ref
from mailbot.services.due_times import FILL_BATCH, fill_due_times
from mailbot.services.due_times import window as due_window
from mailbot.settings_due import DueSettings
from mailbot.store import casework_repo as repo
from mailbot.store.casework_repo import QueueQuery
from mailbot.store.tables import Case, CaseEvent, MailRecord, OutboxItem

PAGE_SIZE = 50
COUNT_CAP = 99  # the tabs say "99+" past this: exact counts of big statuses would scan the table
PREVIEW_TYPES = IMAGE_PREVIEW_TYPES  # served with their own type (for <img>); the rest as octet-stream
# A case reference: "#K7Q2XZ", or six characters mixing letters and digits (a plain word is a word).
_REF = re.compile(r"^#[A-Z0-9]{6}$|^(?=[A-Z]*[0-9])(?=[0-9]*[A-Z])[A-Z0-9]{6}$")
_DIGITS = re.compile(r"^[0-9][0-9 \-]{4,40}$")


@dataclass(frozen=True)
class CaseSummary:
    ref: str
    category: str
    status: str
    priority: str
    mailbox: str
    language: str
    assignee: str | None
    buyer: str
    buyer_name: str
    subject: str
    orders: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None = None  # set by services/due_times.py (issue 8, due times)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass(frozen=True)
class QueueFilters:
    """The queue as the staff member asked for it; `search` is matched as order, ref, address or words."""

    status: str | None = None
    category: str | None = None
    mailbox: str | None = None
    language: str | None = None
    assignee: str | None = None  # an address; "" for unassigned
    search: str = ""
    after: str | None = None  # the opaque cursor of the next page
    due: str | None = None  # "overdue" or "soon" (services/due_times.py)


@dataclass(frozen=True)
class QueuePage:
    cases: tuple[CaseSummary, ...]
    counts: tuple[tuple[str, int], ...]  # per status, in workflow order; COUNT_CAP + 1 means "more"
    next_after: str | None
    searched_as: str  # "order number", "case reference", "buyer address", "words" or ""


@dataclass(frozen=True)
class AttachmentInfo:
    index: int
    filename: str
    content_type: str
    size: int
    previewable: bool


@dataclass(frozen=True)
class ThreadEntry:
    """One message of the thread: the buyer's (inbound) or ours (outbound, with its delivery status)."""

    direction: str  # in | out
    at: datetime
    sender: str
    sender_name: str
    subject: str
    new_text: str
    quoted_text: str
    attachments: tuple[AttachmentInfo, ...]
    mail_id: int | None
    delivery: str | None  # pending | sending | sent | failed | uncertain | bounced (outbound only)
    delivery_error: str
    recipient: str = ""  # outbound: the address it went to
    manual: bool = False  # outbound: written by staff (services/manual_reply.py), not by the rules


@dataclass(frozen=True)
class NoteView:
    author: str
    body: str
    at: datetime


@dataclass(frozen=True)
class EventView:
    kind: str
    summary: str
    by: str | None
    at: datetime


@dataclass(frozen=True)
class CaseView:
    case: CaseSummary
    thread: tuple[ThreadEntry, ...]
    explanation: tuple[str, ...]  # the decision that opened the case, in plain words
    intent: str
    notes: tuple[NoteView, ...]
    events: tuple[EventView, ...]
    buyer_cases: tuple[CaseSummary, ...]
    order_cases: tuple[CaseSummary, ...]


@dataclass(frozen=True)
class AttachmentFile:
    filename: str
    content_type: str
    data: bytes


def summary_of(case: Case) -> CaseSummary:
    return CaseSummary(
        ref=case.ref,
        category=case.category,
        status=case.status,
        priority=case.priority,
        mailbox=case.mailbox,
        language=case.language,
        assignee=case.assignee,
        buyer=case.buyer,
        buyer_name=case.buyer_name,
        subject=case.subject,
        orders=tuple(case.orders),
        created_at=case.created_at,
        updated_at=case.updated_at,
        due_at=case.due_at,
    )


def _encode_cursor(case: Case) -> str:
    raw = f"{case.created_at.isoformat()}|{case.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, case_id = raw.rsplit("|", 1)
        return datetime.fromisoformat(when), int(case_id)
    except (ValueError, UnicodeDecodeError):
        return None  # a mangled cursor starts from the first page rather than failing


def classify_search(text: str) -> tuple[str, dict[str, str]]:
    """Which kind of search the box holds: an order number, a case reference, an address or words."""
    text = text.strip()
    if not text:
        return "", {}
    if _DIGITS.match(text):
        return "order number", {"order_number": re.sub(r"[ \-]", "", text)}
    if "@" in text:
        return "buyer address", {"buyer": text}
    if _REF.match(text.upper()):
        return "case reference", {"ref": normalise_ref(text)}
    return "words", {"words": text}


def queue_page(
    engine: Engine, filters: QueueFilters, limit: int = PAGE_SIZE, *, due_policy: DueSettings | None = None
) -> QueuePage:
    searched_as, search = classify_search(filters.search)
    if due_policy is not None:
        # One batch at most: a backlog is caught up by due_times.keep_filling, not by a page view.
        fill_due_times(engine, due_policy, limit=FILL_BATCH)
    due_after, due_before = (None, None)
    if filters.due:
        due_after, due_before = due_window(filters.due, datetime.now(UTC), due_policy or DueSettings())
    query = QueueQuery(
        due_after=due_after,
        due_before=due_before,
        status=filters.status or None,
        category=filters.category or None,
        mailbox=filters.mailbox or None,
        language=filters.language or None,
        assignee=filters.assignee,
        after=_decode_cursor(filters.after),
        limit=limit,
        **search,
    )
    with Session(engine) as session:
        rows = repo.queue(session, query)
        counts = repo.status_counts(session, query, STATUSES, COUNT_CAP)
    more = len(rows) > limit
    rows = rows[:limit]
    ordered = [(s, counts.get(s, 0)) for s in STATUSES]
    return QueuePage(
        cases=tuple(summary_of(c) for c in rows),
        counts=tuple(ordered),
        next_after=_encode_cursor(rows[-1]) if more and rows else None,
        searched_as=searched_as,
    )


def _attachments(parts: tuple[AttachmentPart, ...]) -> tuple[AttachmentInfo, ...]:
    return tuple(
        AttachmentInfo(
            index=p.index,
            filename=p.filename,
            content_type=p.content_type,
            size=p.size,
            previewable=p.previewable,
        )
        for p in parts
    )


def _inbound(mail: MailRecord, at: datetime) -> ThreadEntry:
    parsed = parse(mail.raw)
    new_text = parsed.new_text.strip() or parsed.text.strip()
    quoted = "\n\n".join(t for t in (parsed.quoted_text, parsed.forwarded_text) if t.strip())
    return ThreadEntry(
        direction="in",
        at=at,
        sender=parsed.from_addr or mail.from_addr or "",
        sender_name=parsed.from_name,
        subject=parsed.subject,
        new_text=new_text,
        quoted_text=quoted.strip(),
        attachments=_attachments(attachment_parts(mail.raw)),
        mail_id=mail.id,
        delivery=None,
        delivery_error="",
    )


def _outbound(item: OutboxItem, at: datetime) -> ThreadEntry:
    parsed = parse(item.raw)
    manual = item.template == "manual" or item.template.startswith("manual:")
    # A staff reply quotes the buyer: fold the quote like a buyer's history. Ours are shown whole.
    new_text = (parsed.new_text.strip() or parsed.text.strip()) if manual else parsed.text.strip()
    return ThreadEntry(
        direction="out",
        at=at,
        sender=item.mail_from,
        sender_name="",
        subject=parsed.subject,
        new_text=new_text,
        quoted_text=parsed.quoted_text.strip() if manual else "",
        attachments=(),
        mail_id=None,
        delivery=item.status,
        delivery_error=item.last_error,
        recipient=item.rcpt_to,
        manual=manual,
    )


_BOUNCED = re.compile(r"^our reply to (\S+) bounced: (.*)$", re.DOTALL)


def _with_bounces(entries: list[ThreadEntry], events: list[CaseEvent]) -> list[ThreadEntry]:
    """Mark as bounced the reply each `reply_bounced` event (services/reply_safety.py) is about.

    The event names the address; it is our latest reply to that address sent before the bounce
    came. A bounce naming an address none of our replies went to marks nothing.
    """
    marked = list(entries)
    for event in events:
        found = _BOUNCED.match(event.summary) if event.kind == "reply_bounced" else None
        if found is None:
            continue
        address, why = found.group(1).lower(), found.group(2)
        candidates = [
            i
            for i, e in enumerate(marked)
            if e.direction == "out" and e.recipient == address and _naive(e.at) <= _naive(event.created_at)
        ]
        if candidates:
            i = candidates[-1]
            marked[i] = replace(marked[i], delivery="bounced", delivery_error=why)
    return marked


def _naive(value: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes, PostgreSQL aware ones: compare them as naive UTC."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


_SOURCES = {
    "new_text": "new text",
    "quoted": "quoted history",
    "forwarded": "forwarded message",
    "attachment_name": "name of an attachment",
    "html": "HTML part",
}


def explain(decision: Mapping[str, Any]) -> tuple[str, ...]:
    """The stored decision as sentences a support agent reads without knowing the rule engine."""
    if not decision:
        return ("No decision was recorded for this message.",)
    lines: list[str] = []
    hits = [s for s in decision.get("trace", []) if isinstance(s, Mapping) and s.get("hit")]
    lines.append(f"Filed as {decision.get('category', '?')}: {decision.get('reason') or 'no rule matched'}.")
    for step in hits[:6]:
        lines.append(f"Rule '{step.get('rule')}' matched: {step.get('why')}.")
    intent = decision.get("intent")
    reasons = [str(r) for r in decision.get("intent_reasons", [])][:3]
    if intent:
        lines.append(f"Read as {intent}" + (f" because of {'; '.join(reasons)}." if reasons else "."))
    orders = [o for o in decision.get("orders", []) if isinstance(o, Mapping)]
    if orders:
        top = orders[0]
        why = "; ".join(str(r) for r in top.get("reasons", [])[:3])
        where = _SOURCES.get(str(top.get("source")), str(top.get("source")))
        lines.append(
            f"Order number {top.get('number')} (found in the {where})" + (f": {why}." if why else ".")
        )
        if len(orders) > 1:
            lines.append("Also mentioned: " + ", ".join(str(o.get("number")) for o in orders[1:]) + ".")
    else:
        lines.append("No order number was found.")
    rejected = [r for r in decision.get("rejected_numbers", []) if isinstance(r, Mapping)][:3]
    for r in rejected:
        lines.append(f"Not an order number: {r.get('text')} ({r.get('reason')}).")
    lines.append(f"Language: {decision.get('language', '?')}.")
    thread = decision.get("thread") or {}
    if isinstance(thread, Mapping) and thread.get("reason"):
        lines.append(f"Thread: {thread.get('reason')}.")
    automation = decision.get("automation") or {}
    if isinstance(automation, Mapping) and automation.get("kind") not in (None, "human"):
        lines.append(f"Sent by a machine ({automation.get('kind')}): {automation.get('reason')}.")
    if decision.get("template"):
        lines.append(f"Answered automatically with the template '{decision.get('template')}'.")
    else:
        lines.append("Not answered automatically.")
    return tuple(lines)


def case_view(engine: Engine, ref: str) -> CaseView | None:
    with Session(engine) as session:
        case = repo.case_by_ref(session, normalise_ref(ref))
        if case is None or case.id is None:
            return None
        entries: list[ThreadEntry] = []
        linked: list[int] = []
        for message, mail, out in repo.thread(session, case.id):
            if mail is not None and message.direction == "in":
                entries.append(_inbound(mail, message.created_at))
            elif out is not None:
                assert out.id is not None
                linked.append(out.id)
                entries.append(_outbound(out, message.created_at))
        for out in repo.replies_without_message(session, case.id, linked):
            entries.append(_outbound(out, out.created_at))
        entries.sort(key=lambda e: e.at)
        entries = _with_bounces(entries, repo.events(session, case.id))
        first = repo.first_mail(session, case.id)
        decision = dict(first.decision) if first is not None else {}
        intent = str(decision.get("intent", ""))
        for correction in repo.case_corrections(session, case.id):
            if correction.field == "intent":
                intent = correction.staff_said
        return CaseView(
            case=summary_of(case),
            thread=tuple(entries),
            explanation=explain(decision),
            intent=intent,
            notes=tuple(NoteView(n.author, n.body, n.created_at) for n in repo.notes(session, case.id)),
            events=tuple(
                EventView(
                    e.kind,
                    e.summary,
                    str(e.detail.get("by")) if isinstance(e.detail, dict) and e.detail.get("by") else None,
                    e.created_at,
                )
                for e in repo.events(session, case.id)
            ),
            buyer_cases=tuple(summary_of(c) for c in repo.cases_of_buyer(session, case.buyer, case.id)),
            order_cases=tuple(summary_of(c) for c in repo.cases_on_orders(session, case.orders, case.id)),
        )


def attachment(engine: Engine, ref: str, mail_id: int, index: int) -> AttachmentFile | None:
    """One attachment of one message of the case; None when any of the three does not match."""
    with Session(engine) as session:
        case = repo.case_by_ref(session, normalise_ref(ref))
        if case is None or case.id is None:
            return None
        mail = repo.mail_on_case(session, case.id, mail_id)
        if mail is None:
            return None
        raw = mail.raw
    parts = attachment_parts(raw)
    if not 0 <= index < len(parts):
        return None
    part = parts[index]
    return AttachmentFile(filename=part.filename, content_type=part.content_type, data=part.data)

"""Staff replies to a case: free text or a reply template, previewed, then queued in the outbox.

A manual reply is held to the same guarantees as an automatic one, because the outbox cannot tell
them apart: it is rendered and stored whole (`outbox.raw`) in one transaction with its case message
and audit event, and the drain sends it exactly once (claims, hand-over marks, Sent copies). What
differs is deliberate:

* the recipient passes the same strict validation (`core.replies.reply_recipient`) and must not be
  one of our own mailboxes nor on the suppression list — but there is no hourly rate limit, since a
  person decided to write;
* it does not say `Auto-Submitted: auto-replied` (a person wrote it);
* it quotes the buyer's last message under the text, and may carry attachments (10 MB together).

Exactly once from the form too: every form carries a token, the reply's Message-ID is derived from
it, and the outbox's unique Message-ID turns a double click or a resubmitted form into "already
queued" instead of a second mail.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.macro_files import Macro, MacroSet, read_macros
from mailbot.adapters.ports import ReplyRenderer
from mailbot.adapters.templates import TemplateStore
from mailbot.core.parse import parse
from mailbot.core.replies import ReplyAttachment, address_problem, build_reply, plan_reply, reply_recipient
from mailbot.core.subjects import NO_PREFIXES, SubjectPrefixes
from mailbot.core.types import Identity, InboundMail, ReplyPlan
from mailbot.services.casework import STAFF_STATUSES, STATUS_LABELS, CaseworkError, normalise_ref
from mailbot.services.ingest import MailboxInfo
from mailbot.store import casework_repo, repo
from mailbot.store.db import session_scope
from mailbot.store.tables import Case, CaseMessage, OutboxItem, Suppression

if TYPE_CHECKING:
    from mailbot.settings import Settings

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # all attachments of one reply together
MAX_ATTACHMENTS = 10
MAX_TEXT = 50_000
MAX_QUOTED_LINES = 60
MANUAL = "manual"  # the outbox `template` of a free-text reply; a template reply is "manual:<name>"
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\\"]+")

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class ReplyRefused(CaseworkError):
    """The reply cannot go out; the one line says why (shown on the form and by the CLI)."""


@dataclass(frozen=True)
class ReplySetup:
    """What composing a reply needs beyond the database, assembled once by the entry point."""

    identity: Identity
    mailboxes: Mapping[str, MailboxInfo]
    renderer: ReplyRenderer
    templates_dir: Path
    from_name: str = "Trade Assurance Support"
    #: Reply and forward prefixes of subjects (rules/lexicons), stripped from the reply's subject.
    subject_prefixes: SubjectPrefixes = NO_PREFIXES

    def template_names(self) -> tuple[str, ...]:
        names = self.renderer.names() if isinstance(self.renderer, TemplateStore) else frozenset()
        return tuple(sorted(names))

    def languages(self) -> tuple[str, ...]:
        found = self.renderer.languages() if isinstance(self.renderer, TemplateStore) else frozenset()
        return tuple(sorted(found | {"en"}))


def setup_from_settings(settings: Settings) -> ReplySetup:
    """The reply setup of an installation: its mailboxes, identity and (live) templates folder."""
    identity = Identity(
        addresses=frozenset(box.address.lower() for box in settings.mailboxes.values()),
        message_id_domain=settings.identity.message_id_domain,
        case_tag=settings.identity.case_tag,
    )
    return ReplySetup(
        identity=identity,
        mailboxes={
            name: MailboxInfo(name=name, address=box.address, service=box.service)
            for name, box in settings.mailboxes.items()
        },
        renderer=TemplateStore(settings.templates_dir),
        templates_dir=settings.templates_dir,
        from_name=settings.identity.from_name,
        # Read once: a reply prefix added to the lexicons reaches staff replies at the next start.
        subject_prefixes=load_reading_config(settings.rules_dir).subjects,
    )


@dataclass(frozen=True)
class ReplyRequest:
    """What staff asked for: free `text` or a `template`, in `language` (None: the case's)."""

    ref: str
    text: str | None = None
    template: str | None = None
    language: str | None = None
    # The form's token: the reply's Message-ID comes from it, so one form queues at most one reply.
    token: str = ""
    status: str | None = None  # the case's status after the reply (a macro's, or staff's choice)
    attachments: tuple[ReplyAttachment, ...] = ()


@dataclass(frozen=True)
class Draft:
    """The reply as the buyer will get it, or why it cannot be sent."""

    ref: str
    to_addr: str | None
    refusal: str | None  # None when it may be sent
    subject: str
    body: str
    language: str
    template: str | None
    in_reply_to: str | None
    attachments: tuple[tuple[str, int], ...]  # name and size


@dataclass(frozen=True)
class ReplyResult:
    ref: str
    kind: str
    summary: str
    by: str
    at: datetime
    message_id: str
    outbox_id: int
    already: bool  # this form had queued it before: nothing new was queued


def new_token() -> str:
    return secrets.token_urlsafe(18)


def macros(setup: ReplySetup) -> MacroSet:
    """The canned responses supervisors maintain in `<templates>/macros/*.toml`, with their problems."""
    return read_macros(setup.templates_dir, templates=setup.template_names(), statuses=STAFF_STATUSES)


def macro(setup: ReplySetup, name: str) -> Macro:
    for found in macros(setup).macros:
        if found.name == name:
            return found
    raise ReplyRefused(f"no canned response {name!r} (templates/macros/{name}.toml)")


def check_macros(templates_dir: Path) -> list[str]:
    """One line per problem in the macro files (`templates/macros/x.toml:3: …`), for `rules check`."""
    store = TemplateStore(templates_dir)
    found = read_macros(templates_dir, templates=store.names(), statuses=STAFF_STATUSES)
    return [str(p) for p in found.problems]


# -- composing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Composed:
    case: Case
    plan: ReplyPlan
    body: str
    language: str
    refusal: str | None


def _greeting_name(name: str) -> str:
    """As intake does: the buyer's display name unless it could carry text into our reply."""
    lowered = name.lower()
    if len(name) > 60 or any(mark in lowered for mark in ("@", "http", "www.", "://")):
        return ""
    return name.strip()


def _last_buyer_mail(session: Session, case_id: int) -> InboundMail | None:
    last = None
    for message, mail, _ in casework_repo.thread(session, case_id):
        if message.direction == "in" and mail is not None:
            last = mail
    return parse(last.raw) if last is not None else None


def _quote(mail: InboundMail) -> str:
    """The buyer's last message under our text, new part only, as mail clients quote."""
    text = (mail.new_text.strip() or mail.text.strip()).splitlines()
    lines = text[:MAX_QUOTED_LINES] + (["[…]"] if len(text) > MAX_QUOTED_LINES else [])
    who = f"{mail.from_name} <{mail.from_addr}>" if mail.from_name else (mail.from_addr or "the buyer")
    when = mail.date.strftime("%Y-%m-%d %H:%M") if mail.date else ""
    head = f"On {when}, {who} wrote:" if when else f"{who} wrote:"
    return head + "\n" + "\n".join(f"> {line}".rstrip() for line in lines)


def _refusal(session: Session, setup: ReplySetup, mail: InboundMail) -> tuple[str | None, str | None]:
    """The address the reply goes to, and why it must not (None when it may)."""
    recipient = reply_recipient(mail, setup.identity)
    address = recipient.address
    if address is None:
        return None, f"no valid address to reply to: {recipient.why}"
    problem = address_problem(address)
    if problem is not None:
        return address, f"the address {address} is not valid: {problem}"
    if address in {a.lower() for a in setup.identity.addresses}:
        return address, f"{address} is one of our own mailboxes"
    suppressed = session.get(Suppression, address)
    if suppressed is not None:
        why = suppressed.reason or "an earlier reply bounced"
        return address, f"{address} is suppressed ({why}); nothing more is sent to it"
    return address, None


def _compose(session: Session, setup: ReplySetup, request: ReplyRequest) -> _Composed:
    case = casework_repo.case_by_ref(session, normalise_ref(request.ref))
    if case is None or case.id is None:
        raise ReplyRefused(f"no case {request.ref}")
    if (request.text is None or not request.text.strip()) == (
        request.template is None or not request.template
    ):
        raise ReplyRefused("write a text or choose a template (one of the two)")
    if request.status is not None and request.status not in STAFF_STATUSES:
        raise ReplyRefused(f"unknown status {request.status!r}; one of: {', '.join(STAFF_STATUSES)}")
    language = (request.language or case.language or "en").strip().lower()
    if not _LANGUAGE.match(language):
        raise ReplyRefused(f"language {language!r}: two or three lowercase letters (en, de, zh…)")
    info = setup.mailboxes.get(case.mailbox)
    if info is None:
        raise ReplyRefused(f"the case's mailbox {case.mailbox!r} is not configured any more")
    mail = _last_buyer_mail(session, case.id)
    if mail is None:
        raise ReplyRefused(f"case {case.ref} has no message from the buyer to reply to")
    _, refusal = _refusal(session, setup, mail)
    template = request.template or None
    plan = plan_reply(
        mail,
        mailbox_address=info.address,
        case_ref=case.ref,
        template=f"{MANUAL}:{template}" if template else MANUAL,
        language=language,
        identity=setup.identity,
        seed=f"manual:{case.ref}:{request.token or new_token()}",
        prefixes=setup.subject_prefixes,
    )
    if template is not None:
        context: dict[str, object] = {
            "case_ref": case.ref,
            "orders": list(case.orders),
            "order": case.orders[0] if case.orders else None,
            "buyer_name": _greeting_name(mail.from_name),
            "service": info.service,
            "mailbox_address": info.address,
            "subject": mail.subject,
            "category": case.category,
            "language": language,
        }
        try:
            rendered = setup.renderer.render(template, language, context)
        except Exception as exc:  # a supervisor's template: say which file and line, never a traceback
            raise ReplyRefused(f"template {template!r} could not be rendered: {exc}") from exc
        text, language = rendered.text.strip(), rendered.language
    else:
        text = (request.text or "").replace("\r\n", "\n").strip()
        if len(text) > MAX_TEXT:
            raise ReplyRefused(f"the text is longer than {MAX_TEXT} characters")
    body = f"{text}\n\n{_quote(mail)}\n"
    return _Composed(case=case, plan=plan, body=body, language=language, refusal=refusal)


def _checked_attachments(attachments: Sequence[ReplyAttachment]) -> tuple[ReplyAttachment, ...]:
    if len(attachments) > MAX_ATTACHMENTS:
        raise ReplyRefused(f"{len(attachments)} attachments; at most {MAX_ATTACHMENTS}")
    total = sum(len(a.data) for a in attachments)
    if total > MAX_ATTACHMENT_BYTES:
        raise ReplyRefused(
            f"the attachments are {total / 1024 / 1024:.1f} MB together; at most "
            f"{MAX_ATTACHMENT_BYTES // 1024 // 1024} MB"
        )
    cleaned = []
    for attachment in attachments:
        name = " ".join(
            _UNSAFE_NAME.sub(" ", attachment.filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).split()
        )
        cleaned.append(ReplyAttachment(name[:120] or "attachment", attachment.content_type, attachment.data))
    return tuple(cleaned)


def preview(engine: Engine, setup: ReplySetup, request: ReplyRequest) -> Draft:
    """The reply exactly as it would be sent, and whether it may be (nothing is written)."""
    attachments = _checked_attachments(request.attachments)
    with Session(engine) as session:
        composed = _compose(session, setup, request)
        return Draft(
            ref=composed.case.ref,
            to_addr=composed.plan.to_addr or None,
            refusal=composed.refusal,
            subject=composed.plan.subject,
            body=composed.body,
            language=composed.language,
            template=request.template or None,
            in_reply_to=composed.plan.in_reply_to,
            attachments=tuple((a.filename, len(a.data)) for a in attachments),
        )


def send(
    engine: Engine, setup: ReplySetup, request: ReplyRequest, *, by: str, clock: Clock = _now
) -> ReplyResult:
    """Queue the reply in the outbox, with its case message, its audit event and the status change.

    One transaction: either all of it is there for the drain, or none. A second call with the same
    token finds the first reply and queues nothing.
    """
    if not request.token:
        raise ReplyRefused("the reply has no form token; reload the form")
    attachments = _checked_attachments(request.attachments)
    now = clock()
    try:
        with session_scope(engine) as session:
            composed = _compose(session, setup, request)
            earlier = _queued(session, composed.plan.message_id)
            if earlier is not None:
                return earlier
            if composed.refusal is not None:
                raise ReplyRefused(f"not sent: {composed.refusal}")
            return _queue(session, setup, composed, attachments, request, by, now)
    except IntegrityError:  # the same form submitted twice at once: the other submission queued it
        with Session(engine) as session:
            composed = _compose(session, setup, request)
            earlier = _queued(session, composed.plan.message_id)
        if earlier is None:
            raise
        return earlier


def _queued(session: Session, message_id: str) -> ReplyResult | None:
    row = session.exec(select(OutboxItem).where(OutboxItem.message_id == message_id)).first()
    if row is None or row.id is None:
        return None
    case = session.get(Case, row.case_id) if row.case_id is not None else None
    return ReplyResult(
        ref=case.ref if case is not None else "",
        kind="reply",
        summary=f"this reply was already queued ({row.status}); it is not sent twice",
        by="",
        at=row.created_at,
        message_id=row.message_id,
        outbox_id=row.id,
        already=True,
    )


def _queue(
    session: Session,
    setup: ReplySetup,
    composed: _Composed,
    attachments: tuple[ReplyAttachment, ...],
    request: ReplyRequest,
    by: str,
    now: datetime,
) -> ReplyResult:
    case, plan = composed.case, composed.plan
    assert case.id is not None
    raw = build_reply(
        plan,
        text=composed.body,
        html=None,
        from_name=setup.from_name,
        now=now,
        case_ref=case.ref,
        automatic=False,
        attachments=attachments,
    )
    outbox_id = repo.insert_returning_id(
        session,
        OutboxItem,
        {
            "case_id": case.id,
            "mail_id": None,
            "mailbox": case.mailbox,
            "message_id": plan.message_id,
            "mail_from": plan.from_addr,
            "rcpt_to": plan.to_addr.lower(),
            "template": plan.template,
            "language": composed.language,
            "raw": raw,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
            "sent_at": None,
        },
    )
    session.add(
        CaseMessage(
            case_id=case.id,
            direction="out",
            message_id=plan.message_id,
            outbox_id=outbox_id,
            from_addr=plan.from_addr,
            subject=plan.subject,
            created_at=now,
        )
    )
    what = f"template {request.template}" if request.template else "free text"
    files = f", {len(attachments)} attachment(s)" if attachments else ""
    summary = f"reply by {by} ({what}, {composed.language}{files}) to {plan.to_addr}"
    casework_repo.add_event(
        session,
        case.id,
        "reply_manual",
        summary,
        {
            "by": by,
            "message_id": plan.message_id,
            "outbox_id": outbox_id,
            "template": request.template,
            "language": composed.language,
            "attachments": [a.filename for a in attachments],
        },
        now,
    )
    before = case.status
    after = request.status or ("open" if before == "new" else before)
    if after != before:
        case.status = after
        case.resolved_at = now if after == "resolved" else None
        status_summary = f"status {STATUS_LABELS.get(before, before)} → {STATUS_LABELS[after]} by {by}"
        casework_repo.add_event(
            session, case.id, "status", status_summary, {"by": by, "from": before, "to": after}, now
        )
        summary += f"; {status_summary}"
    case.updated_at = now
    session.add(case)
    return ReplyResult(
        ref=case.ref,
        kind="reply_manual",
        summary=summary,
        by=by,
        at=now,
        message_id=plan.message_id,
        outbox_id=outbox_id,
        already=False,
    )

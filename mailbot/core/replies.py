"""Whether to answer, and the reply as an RFC 5322 message.

The last word on answering lives here: whatever the rules say, machine mail, mail without one valid
address to answer, suppressed addresses, our own addresses, recipients over the rate limit and
anything past the global hourly ceiling get no reply. Every guard looks at the address the reply
would actually be sent to (`reply_recipient`), never at another header. The reply itself
carries everything a receiving system needs to avoid a loop (RFC 3834 `Auto-Submitted`) and to
thread it (`In-Reply-To`, `References`, the case tag in the subject).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.encoders import encode_base64
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, getaddresses

from mailbot.core.conversation import format_case_tag, make_message_id
from mailbot.core.subjects import SubjectPrefixes
from mailbot.core.types import Identity, InboundMail, ReplyBlock, ReplyPlan, SenderHistory

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_TOKEN = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$")
MAX_SUBJECT = 200
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP
_WIRE = compat32.clone(linesep="\r\n", max_line_length=998)


@dataclass(frozen=True)
class ReplyLimits:
    """How many automatic replies may go out: per recipient, and to everyone together per hour."""

    per_hour: int = 5
    per_day: int = 20
    # The global ceiling: past it no automatic reply goes out until the hour has passed, and the
    # service raises an alert. It bounds the damage of anything the other guards miss.
    total_per_hour: int = 5000


@dataclass(frozen=True)
class Recipient:
    """Where a reply would go, or why it cannot go anywhere."""

    address: str | None
    why: str  # which header it came from, or what was wrong with it


# An addr-spec we are willing to send to: a dot-atom local part (no quoted strings, no encoded
# words) and a domain of at least two LDH labels with a letter TLD (or an IDNA one).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*$")
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}})$")


def address_problem(address: str | None) -> str | None:
    """Why `address` is not one valid address with a domain we can reply to; None when it is.

    Strict on purpose: what the SMTP client makes of anything looser (`Sales` without a domain,
    `_victim@example.com?=` from an encoded display name) is not what the buyer wrote.
    """
    if not address:
        return "no address"
    if len(address) > 254:
        return "longer than 254 characters"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in address):
        return "contains spaces or control characters"
    if address.count("@") != 1:
        return "not one local part and one domain" if "@" in address else "has no domain"
    local, domain = address.split("@")
    if not local or len(local) > 64 or not _LOCAL.match(local) or "=?" in local:
        return f"the local part {local!r} is not a plain mailbox name"
    if len(domain) > 253 or not _DOMAIN.match(domain):
        return f"the domain {domain!r} is not a valid domain name"
    return None


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


def _related(domain: str, other: str) -> bool:
    """The same domain, or one a subdomain of the other (sales.buyer.example and buyer.example)."""
    return domain == other or domain.endswith("." + other) or other.endswith("." + domain)


def _single(mail: InboundMail, header: str) -> str | None:
    """Why a From/Reply-To header is ambiguous (more than one address in it); None when it is not."""
    values = mail.header_all(header)
    if len(values) > 1:
        return f"{header} appears {len(values)} times"
    if not values:
        return None
    # Only parts with an "@" count: a decoded display name may hold a comma ("López, María").
    found = [addr for _, addr in getaddresses([values[0]]) if "@" in addr]
    if len(found) > 1:
        return f"{header} {values[0][:80]!r} holds {len(found)} addresses"
    return None


def reply_recipient(mail: InboundMail, identity: Identity) -> Recipient:
    """The one address a reply may go to, by the Reply-To policy (README, "Where replies go").

    The From address, which must be one valid address. Reply-To is honoured only when it is one
    valid address in the From address's own domain (or a subdomain of it, or the other way round):
    a buyer's assistant or shared sales address, yes; a third party named by whoever wrote the
    mail, no. Every reply guard then applies to the address returned here, the one the reply is
    actually sent to.
    """
    sender = (mail.from_addr or "").lower()
    ambiguous = _single(mail, "From")
    if ambiguous is not None:
        return Recipient(None, ambiguous)
    problem = address_problem(sender)
    if problem is not None:
        return Recipient(None, f"From address {sender!r}: {problem}" if sender else "no From address")
    reply_to = (mail.reply_to or "").lower()
    if not reply_to or reply_to == sender:
        return Recipient(sender, "From")
    ignored = _single(mail, "Reply-To") or (
        f"invalid: {address_problem(reply_to)}" if address_problem(reply_to) else None
    )
    if ignored is None and not _related(_domain(reply_to), _domain(sender)):
        ignored = f"its domain {_domain(reply_to)} is not the sender's domain {_domain(sender)}"
    if ignored is not None:
        return Recipient(sender, f"From (Reply-To {reply_to} ignored: {ignored})")
    return Recipient(reply_to, f"Reply-To, in the sender's domain {_domain(sender)}")


def reply_blocker(
    mail: InboundMail, history: SenderHistory, limits: ReplyLimits, identity: Identity, is_machine: bool
) -> ReplyBlock | None:
    """Why this message must not be answered, or None when a reply is allowed.

    `history` must be the history of the address the reply goes to (`reply_recipient`), not of
    the From address: otherwise a Reply-To aims replies past the rate limit and the suppression.
    """
    if is_machine:
        return ReplyBlock("machine", "machine-written mail is never answered")
    recipient = reply_recipient(mail, identity)
    if recipient.address is None:
        return ReplyBlock("recipient", f"no valid address to reply to: {recipient.why}")
    address = recipient.address
    if address in {a.lower() for a in identity.addresses}:
        return ReplyBlock("own-address", f"the reply address {address} is one of our own mailboxes")
    if history.hard_bounced:
        return ReplyBlock("suppressed", f"an earlier reply to {address} bounced permanently")
    if history.replies_total_last_hour >= limits.total_per_hour:
        return ReplyBlock(
            "ceiling",
            f"global ceiling: {history.replies_total_last_hour} automatic replies in the last hour "
            f"(limit {limits.total_per_hour})",
        )
    if history.replies_last_hour >= limits.per_hour:
        return ReplyBlock(
            "rate-limit-hour",
            f"rate limit: {history.replies_last_hour} replies to {address} in the last hour",
        )
    if history.replies_last_day >= limits.per_day:
        return ReplyBlock(
            "rate-limit-day", f"rate limit: {history.replies_last_day} replies to {address} in the last day"
        )
    return None


def clean_subject(subject: str, identity: Identity, prefixes: SubjectPrefixes) -> str:
    """The buyer's subject without reply or forward prefixes (rules/lexicons) or an old case tag."""
    text = _CONTROL.sub(" ", subject)
    tag = re.compile(r"\[\s*" + re.escape(identity.case_tag) + r"\s*#?\s*[A-Za-z2-9]{6}\s*\]", re.IGNORECASE)
    previous = None
    while previous != text:
        previous = text
        text = prefixes.strip(text)
        text = tag.sub("", text).strip()
    text = " ".join(text.split())
    return text[:MAX_SUBJECT]


def plan_reply(
    mail: InboundMail,
    *,
    mailbox_address: str,
    case_ref: str,
    template: str,
    language: str,
    identity: Identity,
    seed: str,
    prefixes: SubjectPrefixes,
) -> ReplyPlan:
    """Everything about the reply except its text. `seed` makes the Message-ID stable across retries."""
    to_addr = reply_recipient(mail, identity).address or ""
    topic = clean_subject(mail.subject, identity, prefixes)
    subject = f"Re: {format_case_tag(case_ref, identity)} {topic}".rstrip()
    references = tuple(dict.fromkeys((*mail.references, *(x for x in [mail.message_id] if x))))[-20:]
    return ReplyPlan(
        template=template,
        language=language,
        to_addr=to_addr,
        from_addr=mailbox_address,
        subject=subject,
        in_reply_to=mail.message_id,
        references=references,
        message_id=make_message_id(identity, seed),
    )


@dataclass(frozen=True)
class ReplyAttachment:
    """A file staff attach to a manual reply; the name is shown to the buyer, so it is cleaned."""

    filename: str
    content_type: str
    data: bytes


def build_reply(
    plan: ReplyPlan,
    *,
    text: str,
    html: str | None,
    from_name: str,
    now: datetime,
    case_ref: str,
    automatic: bool = True,
    attachments: Sequence[ReplyAttachment] = (),
) -> bytes:
    """The reply's bytes.

    `automatic=False` is a reply a person wrote (the staff console): it must not claim
    `Auto-Submitted: auto-replied`, or the buyer's own auto-responders and filters would treat a
    human answer as machine mail. `attachments` become a multipart/mixed around the text.

    Every header value is put on one line first (`_one_line`), so nothing a buyer wrote can add a
    header; non-ASCII values are RFC 2047-encoded by `email.header`. The compat32 MIME classes are
    used because the `policy.default` header registry re-parses every value we already built and
    cost more than the rest of a reply's processing together.
    """
    body = _text_part(text, "plain")
    message: Message = body
    if html is not None:
        message = MIMEMultipart("alternative")
        message.attach(body)
        message.attach(_text_part(html, "html"))
    if attachments:
        mixed = MIMEMultipart("mixed")
        mixed.attach(message)
        for attachment in attachments:
            mixed.attach(_attachment_part(attachment))
        message = mixed
    message["From"] = formataddr((_encoded(_one_line(from_name)), _one_line(plan.from_addr)))
    message["To"] = _one_line(plan.to_addr)
    message["Subject"] = _encoded(_one_line(plan.subject))
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{_one_line(plan.message_id)}>"
    if plan.in_reply_to:
        message["In-Reply-To"] = f"<{_one_line(plan.in_reply_to)}>"
    if plan.references:
        message["References"] = " ".join(f"<{_one_line(r)}>" for r in plan.references)
    if automatic:
        message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Mailbot-Case"] = _one_line(case_ref)
    message["Content-Language"] = _one_line(plan.language)
    # Lines up to 998 octets are legal; folding a subject that barely misses 78 only makes it ugly.
    return message.as_bytes(policy=_WIRE)


def _text_part(content: str, subtype: str) -> Message:
    """7bit for ASCII; otherwise UTF-8, quoted-printable so Latin-script text stays readable."""
    if content.isascii():
        return MIMEText(content, subtype, "us-ascii")
    part = MIMENonMultipart("text", subtype)
    part.set_payload(content, _UTF8_QP)
    return part


def _attachment_part(attachment: ReplyAttachment) -> Message:
    """Base64 in the declared type (only a well-formed type/subtype, else octet-stream)."""
    kind = attachment.content_type.lower().strip()
    maintype, _, subtype = kind.partition("/")
    if not (_TOKEN.match(maintype) and _TOKEN.match(subtype)) or maintype == "multipart":
        maintype, subtype = "application", "octet-stream"
    part = MIMENonMultipart(maintype, subtype)
    part.set_payload(attachment.data)
    encode_base64(part)
    name = _one_line(attachment.filename) or "attachment"
    part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", name))
    return part


def _encoded(value: str) -> str:
    """RFC 2047 words of at most 75 characters, folded; plain ASCII stays readable."""
    return value if value.isascii() else Header(value, "utf-8").encode(maxlinelen=75, linesep="\r\n")


def _one_line(value: str) -> str:
    return " ".join(_CONTROL.sub(" ", value).split())

"""Whether to answer, and the reply as an RFC 5322 message.

The last word on answering lives here: whatever the rules say, machine mail, suppressed
addresses, our own addresses and senders over the rate limit get no reply. The reply itself
carries everything a receiving system needs to avoid a loop (RFC 3834 `Auto-Submitted`) and to
thread it (`In-Reply-To`, `References`, the case tag in the subject).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr

from mailbot.core.conversation import format_case_tag, make_message_id
from mailbot.core.types import Identity, InboundMail, ReplyPlan, SenderHistory

_PREFIX = re.compile(
    r"^\s*((re|aw|sv|vs|rv|ref|antw|odp|tr|fw|fwd|wg|回复|回覆|答复|转发|Ответ|رد)\s*(\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_SUBJECT = 200
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP
_WIRE = compat32.clone(linesep="\r\n", max_line_length=998)


@dataclass(frozen=True)
class ReplyLimits:
    per_hour: int = 5
    per_day: int = 20


def reply_blocker(
    mail: InboundMail, history: SenderHistory, limits: ReplyLimits, identity: Identity, is_machine: bool
) -> str | None:
    """Why this message must not be answered, or None when a reply is allowed."""
    if is_machine:
        return "machine-written mail is never answered"
    recipient = reply_recipient(mail, identity)
    if recipient is None:
        return "no usable address to reply to"
    if recipient in identity.addresses:
        return "the reply address is one of our own mailboxes"
    if history.hard_bounced:
        return f"an earlier reply to {recipient} bounced permanently"
    if history.replies_last_hour >= limits.per_hour:
        return f"rate limit: {history.replies_last_hour} replies to {recipient} in the last hour"
    if history.replies_last_day >= limits.per_day:
        return f"rate limit: {history.replies_last_day} replies to {recipient} in the last day"
    return None


def reply_recipient(mail: InboundMail, identity: Identity) -> str | None:
    for candidate in (mail.reply_to, mail.from_addr):
        if candidate and "@" in candidate and candidate not in identity.addresses:
            return candidate
    return mail.from_addr


def clean_subject(subject: str, identity: Identity) -> str:
    """The buyer's subject without reply prefixes or an old case tag, on one line."""
    text = _CONTROL.sub(" ", subject)
    tag = re.compile(r"\[\s*" + re.escape(identity.case_tag) + r"\s*#?\s*[A-Za-z2-9]{6}\s*\]", re.IGNORECASE)
    previous = None
    while previous != text:
        previous = text
        text = _PREFIX.sub("", text)
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
) -> ReplyPlan:
    """Everything about the reply except its text. `seed` makes the Message-ID stable across retries."""
    to_addr = reply_recipient(mail, identity) or ""
    topic = clean_subject(mail.subject, identity)
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


def build_reply(
    plan: ReplyPlan, *, text: str, html: str | None, from_name: str, now: datetime, case_ref: str
) -> bytes:
    """The reply's bytes.

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
    message["From"] = formataddr((_encoded(_one_line(from_name)), _one_line(plan.from_addr)))
    message["To"] = _one_line(plan.to_addr)
    message["Subject"] = _encoded(_one_line(plan.subject))
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{_one_line(plan.message_id)}>"
    if plan.in_reply_to:
        message["In-Reply-To"] = f"<{_one_line(plan.in_reply_to)}>"
    if plan.references:
        message["References"] = " ".join(f"<{_one_line(r)}>" for r in plan.references)
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


def _encoded(value: str) -> str:
    """RFC 2047 words of at most 75 characters, folded; plain ASCII stays readable."""
    return value if value.isascii() else Header(value, "utf-8").encode(maxlinelen=75, linesep="\r\n")


def _one_line(value: str) -> str:
    return " ".join(_CONTROL.sub(" ", value).split())

"""Everything about bounces, in one module: who the mail system is, and what a bounce says.

A bounce (DSN or an old-style non-delivery notice) matters twice: it must never be answered, and
it tells us that one of our replies did not arrive, so the case learns it and the address is
suppressed after a permanent failure. Both the parser (structured `message/delivery-status`
blocks) and the automation chain (text notices, mail-system senders) use this module, so there is
one idea of a mail-system address and one reading of a report.

Nothing here depends on a language: the words of bounce subjects live in the lexicons under
rules/ and are matched by the automation chain.
"""

from __future__ import annotations

import email.message
import re
from email.parser import HeaderParser

from mailbot.core.types import DeliveryReport, InboundMail

_FOLD = re.compile(r"\r?\n[ \t]*")

#: Local parts of the addresses mail systems send from: MAILER-DAEMON in its spellings, postmaster
#: (also "post_master", "post.master"), "Mail.Delivery.System", "mail-delivery-subsystem"…
MAIL_SYSTEM_LOCAL = re.compile(
    r"^(?:mailer[-_.]?daemon|mail[-_.]?daemon|post[-_.]?master|"
    r"mail[-_.]?delivery(?:[-_.]?(?:system|subsystem|service|agent))?|"
    r"mail[-_.]?(?:system|administrator)|smtp[-_.]?(?:daemon|gateway)?)$",
    re.IGNORECASE,
)

#: An enhanced status code (RFC 3463), e.g. 5.1.1.
STATUS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
#: A failure reply code of an SMTP server: 4xx or 5xx, followed by a space, a dash or a status code.
SMTP_CODE = re.compile(r"(?<![\d.])([45])\d\d(?=[\s-])")
#: An SMTP reply as servers write it into bounces: "550 5.1.1 …", "550-5.7.1 …", or a failure code
#: after the words that introduce one ("said: 554 …", "smtp; 550 …"). A bare "500 units" is not one.
_SMTP_REPLY = re.compile(
    r"(?<![\w.])[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b"
    r"|(?i:said|answered|replied|responded|error|smtp;?|reply)\W{0,3}[45]\d\d(?=[\s-])"
)
_ADDRESS = r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"
_NDR_RECIPIENT = re.compile(
    rf"(?im)^\s*<?({_ADDRESS})>?\s*(?::|\.\.\.|$)"
    rf"|(?:failed|undeliverable|rejected|unknown|not delivered|could not be delivered)[^\n@]{{0,60}}?"
    rf"<?({_ADDRESS})>?"
    rf"|\bto\s+<?({_ADDRESS})>?\s+because"
)
_RETURNED_MSGID = re.compile(r"(?im)^\s*message-id:\s*<([^<>\s]+)>")
_MSGID = re.compile(r"<([^<>\s]+)>")
MAX_RECIPIENTS = 20


def local_part(address: str | None) -> str:
    return (address or "").split("@", 1)[0].strip().strip("<>").lower()


def is_mail_system(address: str | None) -> bool:
    """Whether an address belongs to a mail system (MAILER-DAEMON, postmaster, Mail Delivery System)."""
    local = local_part(address)
    return bool(local) and MAIL_SYSTEM_LOCAL.match(local) is not None


def return_path_addresses(mail: InboundMail) -> tuple[str, ...]:
    """The envelope senders the receiving server wrote down; "" for the null path `<>`."""
    found: list[str] = []
    for value in mail.header_all("Return-Path"):
        inner = value.strip()
        match = re.search(r"<([^<>]*)>", inner)
        found.append((match.group(1) if match else inner).strip().lower())
    return tuple(found)


def has_failure_codes(text: str) -> bool:
    """Text that reads like a delivery failure: an SMTP reply ("550 5.1.1 …") or an enhanced status."""
    status = re.search(r"\b[45]\.\d{1,3}\.\d{1,3}\b", text)
    return _SMTP_REPLY.search(text) is not None or (status is not None and SMTP_CODE.search(text) is not None)


# -- structured reports (RFC 3464 message/delivery-status) -------------------------------------------


def blocks_from_text(text: str) -> list[email.message.Message]:
    """A message/delivery-status body the parser kept as one string → its field blocks."""
    parser = HeaderParser()
    return [parser.parsestr(block.strip() + "\n") for block in re.split(r"\n\s*\n", text) if block.strip()]


def _field(block: email.message.Message, name: str) -> str | None:
    value = block.get(name)
    return _FOLD.sub(" ", str(value)).strip() if value is not None else None


def report_from_blocks(blocks: list[email.message.Message], returned_ids: list[str]) -> DeliveryReport:
    """The per-message and per-recipient blocks of a DSN → one report (the worst recipient wins)."""
    recipients: list[str] = []
    statuses: list[str] = []
    actions: list[str] = []
    diagnostics: list[str] = []
    for block in blocks:
        recipient = _field(block, "Final-Recipient") or _field(block, "Original-Recipient")
        if recipient:
            address = recipient.split(";", 1)[-1].strip().strip("<>").lower()
            if address and address not in recipients:
                recipients.append(address)
        status = _field(block, "Status")
        if status:
            found = STATUS.search(status)
            statuses.append(found.group(0) if found else status.split()[0])
        action = _field(block, "Action")
        if action:
            actions.append(action.lower().split()[0])
        diagnostic = _field(block, "Diagnostic-Code")
        if diagnostic:
            diagnostics.append(diagnostic)
    status = next((s for s in statuses if s.startswith("5")), statuses[0] if statuses else None)
    action = next((a for a in actions if a == "failed"), actions[0] if actions else None)
    permanent = (status or "").startswith("5") or (status is None and action == "failed")
    return DeliveryReport(
        original_message_id=returned_ids[0] if returned_ids else None,
        recipients=tuple(recipients[:MAX_RECIPIENTS]),
        status=status,
        action=action,
        permanent=permanent,
        diagnostic=diagnostics[0][:300] if diagnostics else None,
    )


# -- text notices (qmail, Exchange 2003, Notes, Postfix without a report part …) ---------------------


def _diagnostic_line(text: str) -> str | None:
    match = _SMTP_REPLY.search(text)
    if match is None:
        return None
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.start())
    return " ".join(text[start : end if end >= 0 else len(text)].split())[:300] or None


#: How much of a plain-text notice is read. Every mail system puts the failed address, the status and
#: the returned headers at the top; a megabyte "bounce" full of failure words would otherwise cost
#: ~0.8 s of pattern matching per MB, for nothing a real notice ever has further down.
MAX_NOTICE_CHARS = 64_000


def delivery_report_from_text(text: str, extra: str = "", failed: tuple[str, ...] = ()) -> DeliveryReport:
    """Best-effort report from a plain-text non-delivery notice (its first MAX_NOTICE_CHARS only)."""
    text = text[:MAX_NOTICE_CHARS]
    extra = extra[:MAX_NOTICE_CHARS]
    status_match = STATUS.search(text)
    status = status_match.group(0) if status_match else None
    code = SMTP_CODE.search(text)
    recipients = list(dict.fromkeys(a.lower() for a in failed))
    for match in _NDR_RECIPIENT.finditer(text):
        address = next((g for g in match.groups() if g), None)
        if address and address.lower() not in recipients:
            recipients.append(address.lower())
        if len(recipients) >= MAX_RECIPIENTS:
            break
    ids = _RETURNED_MSGID.findall(text + "\n" + extra)
    permanent = (status or "").startswith("5") or (status is None and (code is None or code.group(1) == "5"))
    return DeliveryReport(
        original_message_id=ids[0] if ids else None,
        recipients=tuple(recipients),
        status=status,
        action="failed" if permanent else "delayed",
        permanent=permanent,
        diagnostic=_diagnostic_line(text),
    )


def failed_recipients(mail: InboundMail) -> tuple[str, ...]:
    """The addresses of `X-Failed-Recipients` (Exim and others), lower case."""
    found: list[str] = []
    for value in mail.header_all("X-Failed-Recipients"):
        found.extend(m.group(0).lower() for m in re.finditer(_ADDRESS, value))
    return tuple(dict.fromkeys(found))


def text_report(mail: InboundMail) -> DeliveryReport:
    """The report of a bounce that has no structured part: read from its text and its headers."""
    return delivery_report_from_text(mail.text, mail.forwarded_text, failed_recipients(mail))


def returned_message_ids(mail: InboundMail, report: DeliveryReport | None = None) -> tuple[str, ...]:
    """Message-IDs of the returned message a bounce carries (to find which of our replies bounced)."""
    ids: list[str] = []
    for candidate in (report, mail.report):
        if candidate is not None and candidate.original_message_id:
            ids.append(candidate.original_message_id)
    ids.extend(mail.returned_message_ids)
    ids.extend(_RETURNED_MSGID.findall(mail.text + "\n" + mail.forwarded_text))
    return tuple(dict.fromkeys(i.strip("<>") for i in ids if i))


def describe(report: DeliveryReport) -> str:
    """A bounce in a few words for the case: "550 5.1.1 … (permanent)" or "4.4.1 (temporary)"."""
    what = report.diagnostic or report.status or report.action or "failed"
    return f"{what} ({'permanent' if report.permanent else 'temporary'})"


__all__ = [
    "MAIL_SYSTEM_LOCAL",
    "blocks_from_text",
    "delivery_report_from_text",
    "describe",
    "failed_recipients",
    "has_failure_codes",
    "is_mail_system",
    "report_from_blocks",
    "return_path_addresses",
    "returned_message_ids",
    "text_report",
]

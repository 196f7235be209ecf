"""The MIME body walk: text parts, attachments, forwarded messages and delivery-report blocks.

The walk is bounded (depth and part count) and decodes text through the charset cascade, so a
broken or hostile structure costs at most a recorded defect, never the rest of the message.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import HeaderParser

from mailbot.core.bounces import blocks_from_text
from mailbot.core.charsets import decode_bytes
from mailbot.core.headers import FOLD, decode_words, header_text, message_ids, unescape_8bit
from mailbot.core.text import html_to_text, strip_sentinels, unflow
from mailbot.core.types import Attachment

MAX_DEPTH = 40
MAX_PARTS = 1000


@dataclass
class Body:
    """What the walk collects from one message (the top-level one or a forwarded one)."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)
    report_blocks: list[email.message.Message] = field(default_factory=list)
    returned_ids: list[str] = field(default_factory=list)
    parts: int = 0
    # Attachments reading wants the bytes of (a PDF, a CSV…): `keep(filename, content_type)`
    # chooses, and the parts are kept here during the one walk instead of parsing the mail again.
    keep: Callable[[str, str], bool] | None = None
    kept: list[tuple[str, str, email.message.Message]] = field(default_factory=list)


def _filename(part: email.message.Message, defects: list[str]) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # broken RFC 2231 continuations
        name = None
    if name is None:
        return None
    name = unescape_8bit(str(name), defects, "filename")
    # Outlook and Foxmail put an RFC 2047 word inside the quoted filename="..." (not standard).
    return decode_words(FOLD.sub(" ", name), defects, where="filename").strip() or None


def _payload_bytes(part: email.message.Message, defects: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:  # broken transfer encoding
        defects.append(f"undecodable part {part.get_content_type()}: {type(exc).__name__}")
        return b""
    return data if isinstance(data, bytes) else b""


_BASE64_NOISE = str.maketrans("", "", " \t\r\n=")


def _attachment_size(part: email.message.Message, defects: list[str]) -> int:
    """The decoded size of an attachment. Reading needs only the number, so base64 (nearly every
    attachment) is counted rather than decoded: decoding was a tenth of the parse time."""
    if str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
        payload = part.get_payload()
        if isinstance(payload, str) and payload.isascii():
            return len(payload.translate(_BASE64_NOISE)) * 3 // 4
    return len(_payload_bytes(part, defects))


def _payload(part: email.message.Message, defects: list[str]) -> object:
    """The part's payload as the walk sees it (a list of parts, or text).

    compat32 decodes an 8-bit body with the declared charset even when not asked to decode, and a
    label such as idna, undefined or one with a NUL raises there; the bytes still go through our
    cascade instead of losing the whole mail.
    """
    try:
        return part.get_payload()
    except (UnicodeError, ValueError, LookupError):
        return decode_bytes(_payload_bytes(part, defects), None, where=part.get_content_type()).text


def _part_text(part: email.message.Message, defects: list[str]) -> str:
    data = _payload_bytes(part, defects)
    decoded = decode_bytes(data, part.get_content_charset(), where=part.get_content_type())
    if decoded.defect:
        defects.append(decoded.defect)
    text = decoded.text
    if part.get_content_type() == "text/plain" and str(part.get_param("format") or "").lower() == "flowed":
        text = unflow(text, delsp=str(part.get_param("delsp") or "").lower() == "yes")
    return text


def walk(
    part: email.message.Message,
    body: Body,
    defects: list[str],
    depth: int,
    *,
    in_report: bool = False,
) -> None:
    body.parts += 1
    if depth > MAX_DEPTH or body.parts > MAX_PARTS:
        defects.append(
            f"MIME structure deeper than {MAX_DEPTH} levels or over {MAX_PARTS} parts: rest skipped"
        )
        return
    ctype = part.get_content_type()
    payload = _payload(part, defects)
    defects.extend(f"mime: {type(d).__name__.removesuffix('Defect')}" for d in part.defects)
    if ctype in {"message/rfc822", "message/global"}:
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, email.message.Message):
            _forwarded_message(part, inner, body, defects, depth, in_report=in_report)
        return
    if ctype == "message/delivery-status":
        if isinstance(payload, list):
            body.report_blocks.extend(p for p in payload if isinstance(p, email.message.Message))
        elif isinstance(payload, str):
            body.report_blocks.extend(blocks_from_text(payload))
        return
    if ctype == "message/feedback-report":  # an ARF abuse report: the automation chain looks for it
        body.attachments.append(Attachment(filename=None, content_type=ctype, size=0))
        return
    if ctype in {"text/rfc822-headers", "message/rfc822-headers"}:
        text = _part_text(part, defects)
        headers = HeaderParser().parsestr(text)
        body.returned_ids.extend(message_ids(headers.get("Message-ID")))
        if headers.get("Subject"):
            # The bounced message's subject is all that is left of it; it may name the order.
            body.forwarded.append(f"Subject: {header_text('Subject', str(headers['Subject']), defects)}")
        return
    if part.is_multipart() and isinstance(payload, list):
        is_report = ctype == "multipart/report"
        for child in payload:
            if isinstance(child, email.message.Message):
                walk(child, body, defects, depth + 1, in_report=in_report or is_report)
        return
    if ctype.startswith("multipart/"):
        # multipart/* with no usable boundary: the parser keeps the body as one string.
        defects.append(f"{ctype} without usable boundary read as text")
        body.plain.append(_part_text(part, defects))
        return
    disposition = (part.get_content_disposition() or "").lower()
    filename = _filename(part, defects)
    if ctype in {"text/plain", "text/html"} and disposition != "attachment" and filename is None:
        text = _part_text(part, defects)
        (body.plain if ctype == "text/plain" else body.html).append(text)
        return
    size = _attachment_size(part, defects)
    inline = disposition == "inline" or (disposition == "" and part.get("Content-ID") is not None)
    body.attachments.append(Attachment(filename=filename, content_type=ctype, size=size, inline=inline))
    if body.keep is not None:
        name = shown_name(filename, len(body.attachments))
        if body.keep(name, ctype):
            body.kept.append((name, ctype, part))


def shown_name(filename: str | None, number: int) -> str:
    """The name an attachment is shown and reported by: its own, printable, or "attachment-N"."""
    cleaned = "".join(ch for ch in (filename or "") if ch.isprintable() and ch not in "/\\")
    return cleaned.strip()[:200] or f"attachment-{number}"


@dataclass(frozen=True)
class SelectedPart:
    """An attachment chosen for reading; `data` is None when it is larger than the caller allows
    (it was then never decoded), and `size` is its decoded size, or an estimate from its base64."""

    filename: str
    content_type: str
    size: int
    data: bytes | None


def selected_part(name: str, ctype: str, part: email.message.Message, max_bytes: int) -> SelectedPart:
    """The bytes of a kept part, decoded only when at most `max_bytes`: a 20 MB scan is skipped
    for its size without being decoded first."""
    estimate = _base64_size(part)
    if estimate is not None and estimate > max_bytes:
        return SelectedPart(name, ctype, estimate, None)
    data = _payload_bytes(part, [])
    return SelectedPart(name, ctype, len(data), data if len(data) <= max_bytes else None)


def _base64_size(part: email.message.Message) -> int | None:
    """The decoded size of a base64 part from its length, without decoding it."""
    if str(part.get("Content-Transfer-Encoding", "")).strip().lower() != "base64":
        return None
    payload = part.get_payload()
    if not isinstance(payload, str):
        return None
    return len(payload.translate(_BASE64_NOISE)) * 3 // 4


def _forwarded_message(
    part: email.message.Message,
    inner: email.message.Message,
    body: Body,
    defects: list[str],
    depth: int,
    *,
    in_report: bool,
) -> None:
    """A message/rfc822 part: a forwarded mail, or the returned copy inside a bounce."""
    inner_body = Body(parts=body.parts, keep=body.keep)
    walk(inner, inner_body, defects, depth + 1)
    body.parts = inner_body.parts
    body.kept.extend(inner_body.kept)
    header_lines = []
    for name in ("From", "Date", "Subject", "To"):
        raw = inner.get(name)
        if raw is not None:
            header_lines.append(f"{name}: {header_text(name, str(raw), defects)}")
    text = body_text(inner_body)
    rendered = "\n".join(header_lines) + "\n\n" + text
    body.forwarded.append(rendered.strip())
    body.forwarded.extend(inner_body.forwarded)
    body.attachments.extend(inner_body.attachments)
    if in_report:
        body.returned_ids.extend(message_ids(str(inner.get("Message-ID") or "")))
    else:
        size = sum(len(str(_payload(p, defects))) for p in inner.walk() if not p.is_multipart())
        body.attachments.append(
            Attachment(filename=_filename(part, defects), content_type="message/rfc822", size=size)
        )


def hidden_attachment(part: email.message.Message, defects: list[str]) -> Attachment:
    """A part recovered from behind a malformed boundary: listed for staff, never read as text."""
    size = len(_payload_bytes(part, defects)) if not part.is_multipart() else 0
    return Attachment(filename=_filename(part, defects), content_type=part.get_content_type(), size=size)


def body_text(body: Body) -> str:
    plain = "\n\n".join(t for t in body.plain if t.strip())
    if plain.strip():
        return plain
    return "\n\n".join(strip_sentinels(html_to_text(h)) for h in body.html if h.strip())


__all__ = [
    "MAX_DEPTH",
    "MAX_PARTS",
    "Body",
    "SelectedPart",
    "body_text",
    "hidden_attachment",
    "selected_part",
    "shown_name",
    "walk",
]

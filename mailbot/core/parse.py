"""Raw message bytes → `InboundMail`, for any input: what cannot be read becomes a recorded defect.

mail-parser reads the message (core/mail_engine.py), with the stdlib compat32 parser as its
fallback whenever it raises; either way the headers and the text go through our own tolerant
decoding: RFC 2047 words and addresses (core/headers.py), the charset cascade (core/charsets.py)
and a bounded MIME walk (core/mime_walk.py). Delivery reports are read in core/bounces.py. This
module assembles the result: the body text, its split into new text, quotes and signature, and
the delivery report.

Every fallback is written into `defects` so staff can see why a message reads oddly; nothing is
decoded to mojibake silently.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable

from mailbot.core.bounces import delivery_report_from_text, report_from_blocks
from mailbot.core.charsets import Decoded, decode_bytes
from mailbot.core.headers import addresses, decode_words, header_text, message_ids, parse_date, unescape_8bit
from mailbot.core.mail_engine import parse_message
from mailbot.core.mime_walk import Body, SelectedPart, hidden_attachment, selected_part, walk
from mailbot.core.subjects import NO_PREFIXES, SubjectPrefixes
from mailbot.core.text import html_to_text, normalise, split_message, strip_sentinels
from mailbot.core.types import DeliveryReport, InboundMail

MAX_DEFECTS = 30


def _clean_start(raw: bytes, defects: list[str]) -> bytes:
    data = raw
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        defects.append("UTF-8 byte order mark before the headers")
    stripped = data.lstrip(b" \t\r\n")
    if len(stripped) != len(data):
        defects.append("blank lines before the headers")
        data = stripped
    if data.startswith(b"From ") and not data.startswith(b"From :"):
        # The line ends at the first CR or LF: classic-Mac files have no LF at all, and cutting at
        # the first LF would drop every header and the body with the mbox line.
        ends = [i for i in (data.find(b"\r"), data.find(b"\n")) if i >= 0]
        if not ends:
            data = b""
        else:
            end = min(ends)
            data = data[end + 2 :] if data[end : end + 2] == b"\r\n" else data[end + 1 :]
        defects.append("mbox 'From ' line before the headers")
    return data


def parse(raw: bytes, *, subjects: SubjectPrefixes = NO_PREFIXES) -> InboundMail:
    """Parse raw RFC 5322 bytes. Never raises: the worst case is an empty mail full of defects.

    The SHA-256 of the raw bytes is computed here, once; callers take it from `InboundMail.sha256`.
    `subjects` (from rules/lexicons) tells a forwarded mail by its subject ("Fwd:", "TR:"), whose
    mail-client header block is then forwarded content instead of quoted history.
    """
    return parse_keeping(raw, subjects=subjects)[0]


def parse_keeping(
    raw: bytes,
    *,
    subjects: SubjectPrefixes = NO_PREFIXES,
    keep: Callable[[str, str], bool] | None = None,
    max_bytes: int = 0,
) -> tuple[InboundMail, tuple[SelectedPart, ...]]:
    """`parse`, also returning the attachments `keep(name, content_type)` wants, with their bytes
    when at most `max_bytes` (reading takes the text of PDFs and CSVs from them). One parse of the
    mail serves both: parsing it again for the attachments cost as much as the first parse."""
    sha = hashlib.sha256(raw).hexdigest()
    try:
        mail, body = _parse(raw, sha, subjects, keep)
    except Exception as exc:  # the last guard (RecursionError included): a message is never lost
        return _empty(raw, sha, (f"parser failure: {type(exc).__name__}: {exc}"[:200],)), ()
    return mail, tuple(selected_part(name, ctype, part, max_bytes) for name, ctype, part in body.kept)


def _empty(raw: bytes, sha: str, defects: tuple[str, ...]) -> InboundMail:
    return InboundMail(
        sha256=sha,
        size=len(raw),
        message_id=None,
        subject="",
        from_addr=None,
        from_name="",
        reply_to=None,
        to=(),
        cc=(),
        delivered_to=(),
        date=None,
        in_reply_to=(),
        references=(),
        headers=(),
        content_type="text/plain",
        text="",
        html=None,
        new_text="",
        quoted_text="",
        signature="",
        forwarded_text="",
        defects=defects,
    )


def _parse(
    raw: bytes, sha: str, subjects: SubjectPrefixes, keep: Callable[[str, str], bool] | None
) -> tuple[InboundMail, Body]:
    defects: list[str] = []
    data = _clean_start(raw, defects)
    parsed = parse_message(data)
    msg = parsed.message
    defects.extend(parsed.defects)

    headers: list[tuple[str, str]] = []
    for name, value in msg.raw_items():
        clean_name = unescape_8bit(str(name), defects, "name").strip()
        headers.append((clean_name, header_text(clean_name, str(value), defects)))

    def raw_all(name: str) -> list[str]:
        return [str(v) for k, v in msg.raw_items() if k.lower() == name]

    def first(name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in headers if k.lower() == wanted), None)

    senders = addresses(raw_all("from"), defects, "From")
    if not senders:
        senders = addresses(raw_all("sender"), defects, "Sender")
        defects.append("no From" if not raw_all("from") else "From without a usable address")
    from_name, from_addr = senders[0] if senders else ("", None)
    reply_to = addresses(raw_all("reply-to"), defects, "Reply-To")
    message_id = next(iter(message_ids(first("Message-ID"))), None)
    if first("Message-ID") is None:
        defects.append("no Message-ID")
    if first("Date") is None:
        defects.append("no Date")

    body = Body(keep=keep)
    walk(msg, body, defects, 0)
    body.attachments.extend(hidden_attachment(part, defects) for part in parsed.hidden_parts)

    subject = first("Subject") or ""
    forwarded_subject = subjects.is_forward(unicodedata.normalize("NFKC", subject))
    html = "\n".join(body.html) if body.html else None
    plain = "\n\n".join(t for t in body.plain if t.strip())
    if plain.strip():
        text = normalise(plain)
        split = split_message(text, forwarded=forwarded_subject)
    elif html:
        marked = html_to_text(html, mark_quotes=True)
        text = normalise(strip_sentinels(marked))
        split = split_message(marked, forwarded=forwarded_subject)
    else:
        text = ""
        split = split_message("")

    forwarded = "\n\n".join(
        x for x in (split.forwarded, *(normalise(f) for f in body.forwarded)) if x.strip()
    )

    report: DeliveryReport | None = None
    content_type = msg.get_content_type()
    report_type = str(msg.get_param("report-type") or "").lower()
    if body.report_blocks or (content_type == "multipart/report" and report_type == "delivery-status"):
        report = report_from_blocks(body.report_blocks, body.returned_ids)
        if not report.recipients and not report.status:
            report = delivery_report_from_text(text, forwarded)

    def addrs(name: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a for _, a in addresses(raw_all(name), defects, name)))

    mail = InboundMail(
        sha256=sha,
        size=len(raw),
        message_id=message_id,
        subject=subject,
        from_addr=from_addr,
        from_name=from_name,
        reply_to=reply_to[0][1] if reply_to else None,
        to=addrs("to"),
        cc=addrs("cc"),
        delivered_to=addrs("delivered-to"),
        date=parse_date(first("Date"), defects),
        in_reply_to=message_ids(first("In-Reply-To")),
        references=message_ids(" ".join(v for k, v in headers if k.lower() == "references")),
        headers=tuple(headers),
        content_type=content_type,
        text=text,
        html=html,
        new_text=split.new,
        quoted_text=split.quoted,
        signature=split.signature,
        forwarded_text=forwarded,
        attachments=tuple(body.attachments),
        report=report,
        text_from_html=bool(html) and not plain.strip(),
        returned_message_ids=tuple(dict.fromkeys(body.returned_ids))[:20],
        defects=tuple(dict.fromkeys(defects))[:MAX_DEFECTS],
        received=parsed.received,
    )
    return mail, body


__all__ = ["Decoded", "decode_bytes", "decode_words", "parse", "parse_keeping"]

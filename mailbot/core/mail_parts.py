"""The attachments of a stored mail, with their bytes, for staff to download or preview.

`parse()` keeps only the name, type and size of each attachment (reading needs no more); the console
needs the bytes of one of them, so this walks the same leaves in the same order and numbers them.
Pure: bytes in, bytes out; never raises on a broken message.
"""

from __future__ import annotations

import email
import email.message
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass

from mailbot.core.mime_walk import shown_name
from mailbot.core.parse import decode_words

MAX_PARTS = 200
IMAGE_PREVIEW_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass(frozen=True)
class AttachmentPart:
    """One attachment: its position among the mail's attachments, what it claims to be, its bytes."""

    index: int
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def previewable(self) -> bool:
        """An image the browser can show; SVG is left out because it can carry script."""
        return self.content_type in IMAGE_PREVIEW_TYPES


def _filename(part: email.message.Message, index: int) -> str:
    try:
        name = part.get_filename()
    except Exception:  # broken RFC 2231 continuations
        name = None
    return shown_name(decode_words(str(name)) if name else None, index + 1)


def _leaves(raw: bytes) -> Iterator[tuple[email.message.Message, str]]:
    """Every leaf part that is not the body text, with its content type, in message order."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:
        return
    for count, part in enumerate(message.walk()):
        if count > MAX_PARTS:
            break
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype.startswith("message/") or ctype.endswith("rfc822-headers"):
            continue
        disposition = (part.get_content_disposition() or "").lower()
        try:
            has_name = part.get_filename() is not None
        except Exception:
            has_name = False
        if ctype in {"text/plain", "text/html"} and disposition != "attachment" and not has_name:
            continue
        yield part, ctype


def _data(part: email.message.Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = b""
    return data if isinstance(data, bytes) else b""


def attachment_parts(raw: bytes) -> tuple[AttachmentPart, ...]:
    """Every leaf part that is not the body text: files, inline images, unknown types."""
    found: list[AttachmentPart] = []
    for part, ctype in _leaves(raw):
        index = len(found)
        found.append(AttachmentPart(index, _filename(part, index), ctype, _data(part)))
    return tuple(found)



"""The text of the attachments that can carry an order number: PDF, Outlook .msg, text and CSV.

Buyers attach the proforma invoice or the order confirmation as a PDF, forward an Outlook item as
a .msg file, or paste an order list as .txt or .csv. Reading picks those attachments, skips the
ones over the size limit without decoding them, reads text and CSV here (the charset cascade; a
CSV row becomes "Order ID: 1625… | Amount: 300.00" so each number stands after its column's
name) and hands PDF and .msg bytes to a `TextExtractor` port, which a library adapter implements
(mailbot/adapters/attachment_text.py) and which bounds its own time, pages and text. Whatever is
skipped or unreadable becomes a defect naming the file; nothing here raises.

Mail without such attachments costs one look at the attachment list the parser already made.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from mailbot.core.charsets import decode_bytes
from mailbot.core.mime_walk import SelectedPart
from mailbot.core.types import Attachment, AttachmentText, InboundMail

Kind = Literal["pdf", "msg", "text", "csv"]

_BY_EXTENSION: dict[str, Kind] = {
    ".pdf": "pdf",
    ".msg": "msg",
    ".txt": "text",
    ".text": "text",
    ".csv": "csv",
    ".tsv": "csv",
}
_BY_TYPE: dict[str, Kind] = {
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "application/vnd.ms-outlook": "msg",
    "text/plain": "text",
    "text/csv": "csv",
    "text/tab-separated-values": "csv",
    "application/csv": "csv",
}
# A text file needs at most this many bytes per character kept (UTF-8 of CJK is 3, GB18030 4).
_BYTES_PER_CHAR = 4
# The first rows of a CSV are enough to tell its delimiter; the sniffer is slow on long samples.
_SNIFF_CHARS = 4096
_HEADING_GLUE = re.compile(r"[_.]+")
_LONG_DIGITS = re.compile(r"[0-9]{6}")


@dataclass(frozen=True)
class AttachmentLimits:
    """How much of one mail's attachments is read (the `[limits]` attachment_* settings)."""

    max_bytes: int = 5 * 1024 * 1024  # larger attachments are skipped, not decoded; 0: none is read
    max_pages: int = 10  # of a PDF: order details are on the first pages
    max_chars: int = 20_000  # of text kept per attachment
    seconds: float = 2.0  # for all PDF and .msg files of one mail together
    max_files: int = 5  # attachments read per mail; more are listed as a defect


class UnreadableAttachment(Exception):
    """An attachment that was not read; the message says why in a few words ("encrypted")."""


@dataclass(frozen=True)
class AttachmentFile:
    """One PDF or .msg file handed to the extractor."""

    filename: str
    kind: Kind
    data: bytes


class TextExtractor(Protocol):
    """Reads PDF and .msg files with a library, within `limits` (pages, characters, seconds for
    all the files together). Returns one answer per file, in order: its text, or why not."""

    def __call__(
        self, files: Sequence[AttachmentFile], limits: AttachmentLimits
    ) -> list[str | UnreadableAttachment]: ...


@dataclass(frozen=True)
class AttachmentReading:
    """What reading needs to read attachments: the limits and the PDF/.msg extractor.

    Without an extractor only text and CSV attachments are read.
    """

    limits: AttachmentLimits = AttachmentLimits()
    extractor: TextExtractor | None = None


def kind_of(filename: str | None, content_type: str) -> Kind | None:
    """The kind of attachment text can be read from, by its name first (a PDF is often sent as
    application/octet-stream), else by its type; None for everything else."""
    if filename:
        lower = filename.lower().strip()
        dot = lower.rfind(".")
        if dot >= 0 and lower[dot:] in _BY_EXTENSION:
            return _BY_EXTENSION[lower[dot:]]
    return _BY_TYPE.get(content_type.lower())


def readable(attachments: Sequence[Attachment]) -> bool:
    """Does the mail have an attachment worth reading? The cheap test made for every mail."""
    return any(not a.inline and kind_of(a.filename, a.content_type) is not None for a in attachments)


def wanted_by(reading: AttachmentReading) -> Callable[[str, str], bool] | None:
    """Which attachments the parser should keep the bytes of (by name and type), or None when
    attachment reading is off (`attachment_max_bytes = 0`)."""
    if reading.limits.max_bytes <= 0:
        return None

    def wanted(name: str, content_type: str) -> bool:
        kind = kind_of(name, content_type)
        return kind is not None and (reading.extractor is not None or kind in {"text", "csv"})

    return wanted


def read_attachments(
    parts: Sequence[SelectedPart], mail: InboundMail, reading: AttachmentReading
) -> tuple[tuple[AttachmentText, ...], tuple[str, ...]]:
    """The texts of the mail's readable attachments (`parts`, kept by the parser as `wanted_by`
    asked), and a defect for each one skipped."""
    limits = reading.limits
    if limits.max_bytes <= 0 or not parts or not readable(mail.attachments):
        return (), ()
    defects: list[str] = []
    if len(parts) > limits.max_files:
        skipped = ", ".join(p.filename for p in parts[limits.max_files :])
        defects.append(f"attachments not read (only {limits.max_files} per mail are): {skipped}"[:200])
        parts = parts[: limits.max_files]
    texts: dict[int, AttachmentText] = {}
    files: list[tuple[int, AttachmentFile]] = []
    for index, part in enumerate(parts):
        if part.data is None:
            defects.append(
                f"attachment {part.filename} not read: {_megabytes(part.size)}, "
                f"over the {_megabytes(limits.max_bytes)} limit"
            )
            continue
        kind = kind_of(part.filename, part.content_type)
        if kind in {"text", "csv"}:
            texts[index] = AttachmentText(part.filename, _text_of(part, kind == "csv", limits.max_chars))
        elif kind is not None:
            files.append((index, AttachmentFile(part.filename, kind, part.data)))
    if files and reading.extractor is not None:
        try:
            answers = reading.extractor([f for _, f in files], limits)
        except Exception as exc:  # the adapter's bug must not cost the mail its reading
            answers = [UnreadableAttachment(f"{type(exc).__name__}: {exc}") for _ in files]
        for (index, file), answer in zip(files, answers, strict=False):
            if isinstance(answer, UnreadableAttachment):
                defects.append(f"attachment {file.filename} not read: {answer}"[:200])
            elif answer.strip():
                texts[index] = AttachmentText(file.filename, answer[: limits.max_chars])
    ordered = tuple(texts[i] for i in sorted(texts) if texts[i].text.strip())
    return ordered, tuple(defects)


def _megabytes(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _text_of(part: SelectedPart, is_csv: bool, max_chars: int) -> str:
    data = (part.data or b"")[: max_chars * _BYTES_PER_CHAR]
    text = decode_bytes(data, None, where=f"attachment {part.filename}").text[:max_chars]
    return _csv_as_text(text) if is_csv else text


def _csv_as_text(text: str) -> str:
    """Each row as "Heading: value | Heading: value", so a number stands after its column's name
    the way order words stand before numbers in prose. A file that is not CSV stays as it is."""
    sample = text[:_SNIFF_CHARS]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    except csv.Error:
        return text
    if not rows or max(len(r) for r in rows) < 2:
        return text
    first = rows[0]
    has_heading = not any(_LONG_DIGITS.search(cell) for cell in first)
    if not has_heading:
        return "\n".join(" | ".join(c.strip() for c in row) for row in rows)
    headings = [_HEADING_GLUE.sub(" ", cell).strip() for cell in first]
    lines = []
    for row in rows[1:]:
        cells = [
            f"{headings[i]}: {cell.strip()}" if i < len(headings) and headings[i] else cell.strip()
            for i, cell in enumerate(row)
        ]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


__all__ = [
    "AttachmentFile",
    "AttachmentLimits",
    "AttachmentReading",
    "Kind",
    "TextExtractor",
    "UnreadableAttachment",
    "kind_of",
    "read_attachments",
    "readable",
    "wanted_by",
]

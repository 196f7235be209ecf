"""The text of PDF and Outlook .msg attachments, read with pypdf and extract-msg, within bounds.

This is the `TextExtractor` port of core/attachments.py: the core picks the attachments and reads
text and CSV itself; the library-specific reading of the two binary formats lives here.

A PDF is untrusted input that can cost a lot: a decompression bomb, a content stream of millions
of operators, a page tree of thousands of pages, a broken cross-reference table that makes pypdf
scan the whole file. Reading therefore runs under pypdf's own resource limits (tightened below),
only the first `max_pages` pages are read, text stops at `max_chars`, and a deadline shared by all
PDF and .msg files of one mail is checked between pages and every thousandth content-stream
operator (a pypdf visitor hook). What has no such place to check (opening a file whose
cross-reference table must be rebuilt) is cut off by an alarm signal where one can be used (the
reading process). So a hostile file costs about `seconds` (benchmarks/attachment_reading.py
measures it), not the whole per-message reading budget. An encrypted PDF is read when
it opens with the empty password (owner-only restrictions, common on invoices), else skipped.
Every failure becomes an `UnreadableAttachment` with a short reason; nothing raises.
"""

from __future__ import annotations

import importlib
import io
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailbot.core.attachments import AttachmentFile, AttachmentLimits, UnreadableAttachment
from mailbot.core.text import html_to_text

if TYPE_CHECKING:
    import pypdf

# Imported when the first such file is read, not with mailbot: together they take 0.2-0.4 s to
# import, which every command that loads the rules would pay.
_LIBRARIES = {"pdf": "pypdf", "msg": "extract_msg"}

# pypdf's defaults allow 75 MB per decompressed stream and 2 million parsing steps per content
# stream; a page of an order confirmation needs a small fraction of either.
_PDF_LIMITS: dict[str, Any] = {
    "zlib_maximum_output_length": 8_000_000,
    "lzw_maximum_output_length": 8_000_000,
    "run_length_maximum_output_length": 8_000_000,
    "brotli_maximum_output_length": 8_000_000,
    "array_based_stream_maximum_output_length": 8_000_000,
    "stream_decoding_work_maximum_length": 40_000_000,
    # Parsing a content stream cannot be interrupted (the deadline is checked once it is parsed):
    # 100,000 steps take about 0.4 s here, so this bounds what a page can overrun the deadline by.
    "stream_parsing_work_maximum_count": 100_000,
    "image_maximum_buffer_size": 8_000_000,
    "page_tree_maximum_entries": 10_000,
    "page_tree_maximum_page_entries": 200_000,
    "xform_maximum_invocations_per_extraction": 200,
    "jbig2dec_binary": None,  # never start an external program for an image we do not read
}

# pypdf and extract-msg log every oddity of a broken file at WARNING; the defect says it once.
for _name in ("pypdf", "extract_msg"):
    logging.getLogger(_name).setLevel(logging.ERROR)


class _OutOfTime(Exception):
    pass


class _Interrupted(BaseException):
    """Raised by the alarm. A BaseException, so no `except Exception` inside a library keeps it."""


@dataclass(frozen=True)
class _Deadline:
    at: float

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise _OutOfTime


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Interrupt whatever runs after `seconds`: opening a PDF whose cross-reference table must be
    rebuilt reads every object in Python (9 s for 140,000 of them in 5 MB), with no place to check
    a clock. Only where signals can be used: the main thread (the reading process reads there),
    with no other timer running; elsewhere the checks between pages and operators remain."""
    usable = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )
    if not usable:
        yield
        return

    def ring(signum: int, frame: object) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGALRM, ring)
    try:
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class AttachmentTextReader:
    """Reads PDF and .msg attachments (the core's `TextExtractor`). Picklable: it travels with the
    reading configuration into the reading process."""

    def __call__(
        self, files: Sequence[AttachmentFile], limits: AttachmentLimits
    ) -> list[str | UnreadableAttachment]:
        for kind in {file.kind for file in files}:
            if kind in _LIBRARIES:  # before the clock starts: importing is not reading the file
                importlib.import_module(_LIBRARIES[kind])
        deadline = _Deadline(time.monotonic() + limits.seconds)
        answers: list[str | UnreadableAttachment] = []
        try:
            with _alarm(limits.seconds):
                for file in files:
                    answers.append(_read_one(file, limits, deadline))
        except _Interrupted:
            pass
        late = UnreadableAttachment(f"time bound reached ({limits.seconds:g} s for a mail's attachments)")
        return answers + [late] * (len(files) - len(answers))


def _read_one(
    file: AttachmentFile, limits: AttachmentLimits, deadline: _Deadline
) -> str | UnreadableAttachment:
    try:
        deadline.check()
        read = _read_pdf if file.kind == "pdf" else _read_msg
        return read(file.data, limits, deadline)
    except _OutOfTime:
        return UnreadableAttachment(f"time bound reached ({limits.seconds:g} s for a mail's attachments)")
    except UnreadableAttachment as why:
        return why
    except Exception as exc:  # a library's failure on a broken file, whatever its kind
        what = "PDF" if file.kind == "pdf" else ".msg file"
        return UnreadableAttachment(f"broken {what} ({type(exc).__name__}: {exc})"[:160])


def _read_pdf(data: bytes, limits: AttachmentLimits, deadline: _Deadline) -> str:
    import pypdf
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError

    if b"%%EOF" not in data:
        # pypdf would search the whole file for it backwards, line by line, and then give up: a
        # fifth of a second for 500 KB of noise with a PDF header.
        raise UnreadableAttachment("broken PDF (no %%EOF marker)")
    try:
        with pypdf.apply_configuration(**_PDF_LIMITS):
            try:
                reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
                if reader.is_encrypted and not _opens_without_password(reader):
                    raise UnreadableAttachment("encrypted PDF (needs a password)")
                deadline.check()
                pages = reader.pages
                count = len(pages)
            except (PdfReadError, FileNotDecryptedError) as exc:
                raise UnreadableAttachment(f"broken PDF ({exc})"[:160]) from None
            texts: list[str] = []
            kept = 0
            watch = _watch(deadline)
            for number in range(min(count, limits.max_pages)):
                deadline.check()
                text = pages[number].extract_text(visitor_operand_before=watch)
                texts.append(text)
                kept += len(text)
                if kept >= limits.max_chars:
                    break
    except LimitReachedError as exc:  # a decompression bomb, a stream of endless operators
        raise UnreadableAttachment(f"PDF over a safety limit ({exc})"[:160]) from None
    return "\n".join(texts)[: limits.max_chars]


def _opens_without_password(reader: pypdf.PdfReader) -> bool:
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        return bool(reader.decrypt(""))
    except (DependencyError, NotImplementedError, PdfReadError, FileNotDecryptedError):
        return False


def _watch(deadline: _Deadline) -> Callable[[Any, Any, Any, Any], None]:
    """A visitor pypdf calls before every content-stream operator: the deadline is checked every
    thousandth call (a clock read per operator would double the cost of a normal page)."""
    calls = 0

    def visit(operator: Any, operands: Any, cm: Any, tm: Any) -> None:
        nonlocal calls
        calls += 1
        if calls % 1000 == 0:
            deadline.check()

    return visit


def _read_msg(data: bytes, limits: AttachmentLimits, deadline: _Deadline) -> str:
    """Subject, sender and body of an Outlook item (the body as text, else its HTML as text)."""
    import extract_msg

    try:
        msg = extract_msg.openMsg(data, delayAttachments=True, strict=False)
    except Exception as exc:
        raise UnreadableAttachment(f"broken .msg file ({type(exc).__name__})") from None
    try:
        deadline.check()
        lines = [f"{name}: {value}" for name, value in _headers(msg) if value]
        body = getattr(msg, "body", None)
        if not body:
            html = getattr(msg, "htmlBody", None)
            if isinstance(html, bytes):
                body = html_to_text(html.decode("utf-8", "replace")[: limits.max_chars * 4])
        text = "\n".join(lines) + "\n\n" + str(body or "")
        return text[: limits.max_chars]
    finally:
        msg.close()


def _headers(msg: Any) -> list[tuple[str, str]]:
    return [
        (name, str(getattr(msg, attr, "") or ""))
        for name, attr in (("From", "sender"), ("Subject", "subject"))
    ]


__all__ = ["AttachmentTextReader"]

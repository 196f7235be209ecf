"""The PDF and .msg reader (pypdf, extract-msg): text out, a short reason for anything it skips."""

from __future__ import annotations

import email
import email.policy
import signal
import time
from pathlib import Path

from mailbot.adapters.attachment_text import AttachmentTextReader
from mailbot.core.attachments import AttachmentFile, AttachmentLimits, UnreadableAttachment

FIXTURES = Path(__file__).resolve().parents[1] / "eml" / "attachments"
READER = AttachmentTextReader()


def attached(name: str) -> bytes:
    """The bytes of the one attachment of a fixture mail."""
    message = email.message_from_bytes((FIXTURES / name).read_bytes(), policy=email.policy.default)
    [part] = list(message.iter_attachments())  # type: ignore[attr-defined]
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def test_the_text_of_a_pdf_comes_out_line_by_line() -> None:
    [text] = READER([AttachmentFile("PI.pdf", "pdf", attached("pdf-order.eml"))], AttachmentLimits())
    assert isinstance(text, str)
    assert "Trade Assurance Order No.: 2891 4471 8836 0052" in text.splitlines()


def test_the_text_of_an_outlook_msg_has_its_sender_subject_and_body() -> None:
    [text] = READER([AttachmentFile("FW.msg", "msg", attached("msg-order.eml"))], AttachmentLimits())
    assert isinstance(text, str)
    assert text.startswith("From: Maria Lopez\nSubject: FW: order to cancel\n")
    assert "please cancel Trade Assurance order 1625 3498 7612 3450" in text


def test_a_file_that_is_no_outlook_item_is_a_broken_msg_file() -> None:
    [answer] = READER([AttachmentFile("x.msg", "msg", b"%PDF-1.4 not an Outlook item")], AttachmentLimits())
    assert isinstance(answer, UnreadableAttachment)
    assert str(answer).startswith("broken .msg file")


def test_text_is_cut_at_the_character_limit() -> None:
    data = attached("pdf-huge.eml")
    [text] = READER([AttachmentFile("c.pdf", "pdf", data)], AttachmentLimits(max_chars=500))
    assert isinstance(text, str) and len(text) == 500


def test_the_time_bound_is_shared_by_all_files_of_a_mail() -> None:
    slow = AttachmentFile("scan-export.pdf", "pdf", attached("pdf-slow.eml"))
    quick = AttachmentFile("PI.pdf", "pdf", attached("pdf-order.eml"))
    started = time.perf_counter()
    answers = READER([slow, quick], AttachmentLimits(seconds=0.3))
    assert time.perf_counter() - started < 0.3 + 1.0
    assert [str(a) for a in answers] == ["time bound reached (0.3 s for a mail's attachments)"] * 2


def test_a_decompression_bomb_stops_at_the_safety_limit() -> None:
    started = time.perf_counter()
    [answer] = READER([AttachmentFile("bomb.pdf", "pdf", attached("pdf-bomb.eml"))], AttachmentLimits())
    assert time.perf_counter() - started < 1.0
    assert str(answer).startswith("PDF over a safety limit")


def test_opening_a_pdf_whose_xref_must_be_rebuilt_is_cut_off_at_the_time_bound() -> None:
    # 40,000 objects and a startxref pointing nowhere: pypdf reads every object to rebuild the
    # table before any page can be looked at (several seconds), with no place to check a clock.
    objects = b"".join(b"%d 0 obj << /A [1 2 3] >> endobj\n" % i for i in range(40_000))
    data = b"%PDF-1.4\n" + objects + b"startxref\n123\n%%EOF\n"
    started = time.perf_counter()
    [answer] = READER([AttachmentFile("rebuilt.pdf", "pdf", data)], AttachmentLimits(seconds=0.3))
    assert time.perf_counter() - started < 0.3 + 0.2
    assert str(answer) == "time bound reached (0.3 s for a mail's attachments)"


def test_the_alarm_is_put_back_as_it_was_after_reading() -> None:
    before = signal.getsignal(signal.SIGALRM)
    READER([AttachmentFile("PI.pdf", "pdf", attached("pdf-order.eml"))], AttachmentLimits(seconds=0.3))
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)

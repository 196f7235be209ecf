"""Order numbers in attachments: PDF, Outlook .msg, CSV and text files, read within bounds.

The fixtures are real mails with real files (tests/eml/attachments, written by make_fixtures.py).
"""

from __future__ import annotations

import dataclasses
import time
from email.message import EmailMessage
from pathlib import Path

from mailbot.adapters.lexicons import load_reading_config
from mailbot.core.attachments import (
    AttachmentLimits,
    AttachmentReading,
    kind_of,
    read_attachments,
    wanted_by,
)
from mailbot.core.orders import extract_orders
from mailbot.core.parse import parse_keeping
from mailbot.core.reading import Reading, ReadingConfig, read
from mailbot.core.types import Identity

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "eml" / "attachments"
CONFIG = load_reading_config(REPO / "rules")
IDENTITY = Identity(addresses=frozenset({"support@ta-support.example"}), message_id_domain="example.test")
PI_ORDER = "2891447188360052"


def reading_of(name: str, config: ReadingConfig = CONFIG) -> Reading:
    return read((FIXTURES / name).read_bytes(), identity=IDENTITY, config=config)


def with_limits(**limits: float) -> ReadingConfig:
    assert CONFIG.attachments is not None
    reading = dataclasses.replace(CONFIG.attachments, limits=AttachmentLimits(**limits))  # type: ignore[arg-type]
    return dataclasses.replace(CONFIG, attachments=reading)


def defects_naming(reading: Reading, filename: str) -> list[str]:
    return [d for d in reading.mail.defects if f"attachment {filename}" in d]


def test_an_order_number_only_in_an_attached_pdf_is_found_and_named_by_its_file() -> None:
    reading = reading_of("pdf-order.eml")
    first = reading.orders.orders[0]
    assert first.number == PI_ORDER
    assert first.source == "attachment"
    assert first.reasons[0] == "found in attachment PI-2026-0412.pdf"


def test_the_pi_number_phone_and_bank_account_in_the_pdf_do_not_win() -> None:
    reading = reading_of("pdf-order.eml")
    assert reading.orders.numbers == (PI_ORDER,)
    reasons = {r.text: r.reason for r in reading.orders.rejected}
    assert "document number" in reasons["2026041200017"]
    assert "phone" in reasons["86 755 2345 6789"]
    assert "bank" in reasons["6222 0212 3456 7890 123"]


def test_a_pdf_with_only_a_pi_number_and_a_phone_number_names_no_order() -> None:
    assert reading_of("pdf-decoy-only.eml").orders.numbers == ()


def test_an_order_number_only_in_an_attached_outlook_msg_is_found() -> None:
    first = reading_of("msg-order.eml").orders.orders[0]
    assert (first.number, first.source) == ("1625349876123450", "attachment")
    assert first.reasons[0] == "found in attachment FW order to cancel.msg"


def test_order_numbers_only_in_an_attached_csv_are_found_under_their_column() -> None:
    orders = reading_of("csv-order.eml").orders.orders
    assert [o.number for o in orders] == ["7312045888412207", "7312045888412208"]
    assert all(o.reasons[0] == "found in attachment orders.csv" for o in orders)
    assert "after 'order id' (en)" in orders[0].reasons


def test_the_new_text_ranks_above_the_attachment() -> None:
    orders = reading_of("pdf-with-new-text-order.eml").orders.orders
    assert [(o.number, o.source) for o in orders] == [
        ("5505840392770013", "new_text"),
        (PI_ORDER, "attachment"),
    ]


def test_the_attachment_ranks_above_quoted_history() -> None:
    message = EmailMessage()
    message["From"] = "buyer@shop.example"
    message["Subject"] = "Re: your order"
    message.set_content(
        "See the attached PI.\n\nOn Mon, 13 Apr 2026, Support wrote:\n"
        "> Your order 4411 2298 7765 0031 is on hold.\n"
    )
    message.add_attachment(
        b"Trade Assurance order: 7312 0458 8841 2207\n", maintype="text", subtype="plain", filename="pi.txt"
    )
    raw = message.as_bytes()
    assert CONFIG.attachments is not None
    keep = wanted_by(CONFIG.attachments)
    parsed, parts = parse_keeping(raw, keep=keep, max_bytes=CONFIG.attachments.limits.max_bytes)
    texts, _ = read_attachments(parts, parsed, CONFIG.attachments)
    mail = dataclasses.replace(parsed, attachment_texts=texts)
    orders = extract_orders(mail, CONFIG.orders, case_orders=("4411229877650031",)).orders
    assert [(o.number, o.source) for o in orders] == [
        ("7312045888412207", "attachment"),
        ("4411229877650031", "quoted"),
    ]


def test_an_encrypted_pdf_is_skipped_with_a_defect_naming_it() -> None:
    reading = reading_of("pdf-encrypted.eml")
    assert reading.orders.numbers == ()
    assert defects_naming(reading, "PI-2026-0412.pdf") == [
        "attachment PI-2026-0412.pdf not read: encrypted PDF (needs a password)"
    ]


def test_a_pdf_locked_only_against_editing_is_read() -> None:
    assert reading_of("pdf-owner-password.eml").orders.numbers == (PI_ORDER,)


def test_a_broken_pdf_is_skipped_with_a_defect_naming_it() -> None:
    reading = reading_of("pdf-broken.eml")
    assert reading.orders.numbers == ()
    [defect] = defects_naming(reading, "PI-2026-0412.pdf")
    assert defect.startswith("attachment PI-2026-0412.pdf not read: broken PDF")


def test_only_the_first_pages_of_a_huge_pdf_are_read() -> None:
    started = time.perf_counter()
    reading = reading_of("pdf-huge.eml", with_limits(max_pages=3))
    assert time.perf_counter() - started < 2.0
    [text] = reading.mail.attachment_texts
    assert text.text.count("PROFORMA INVOICE") == 3  # 3 of its 500 pages
    assert reading.orders.numbers == (PI_ORDER,)


def test_a_pdf_over_the_size_limit_is_skipped_with_a_defect_without_being_read() -> None:
    reading = reading_of("pdf-huge.eml", with_limits(max_bytes=64 * 1024))
    assert reading.mail.attachment_texts == ()
    assert defects_naming(reading, "catalogue.pdf") == [
        "attachment catalogue.pdf not read: 77 KB, over the 64 KB limit"
    ]


def test_a_pdf_that_reads_for_too_long_is_skipped_within_the_time_bound() -> None:
    started = time.perf_counter()
    reading = reading_of("pdf-slow.eml", with_limits(seconds=0.5))
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5 + 1.0  # the bound, plus at most one page's parse that cannot be interrupted
    assert defects_naming(reading, "scan-export.pdf") == [
        "attachment scan-export.pdf not read: time bound reached (0.5 s for a mail's attachments)"
    ]


def test_a_text_attachment_without_an_extractor_is_still_read() -> None:
    config = dataclasses.replace(CONFIG, attachments=AttachmentReading(AttachmentLimits(), extractor=None))
    assert reading_of("csv-order.eml", config).orders.numbers[0] == "7312045888412207"
    assert reading_of("pdf-order.eml", config).orders.numbers == ()


def test_attachments_are_not_read_when_reading_has_no_attachment_config() -> None:
    config = dataclasses.replace(CONFIG, attachments=None)
    reading = reading_of("pdf-order.eml", config)
    assert reading.mail.attachment_texts == ()
    assert reading.orders.numbers == ()


def test_a_size_limit_of_zero_turns_attachment_reading_off_without_defects() -> None:
    reading = reading_of("pdf-order.eml", with_limits(max_bytes=0))
    assert reading.orders.numbers == ()
    assert defects_naming(reading, "PI-2026-0412.pdf") == []


def test_only_the_first_attachments_of_a_mail_are_read_and_the_rest_are_named() -> None:
    message = EmailMessage()
    message["From"] = "buyer@shop.example"
    message["Subject"] = "orders"
    message.set_content("The list is attached.")
    for n in range(3):
        message.add_attachment(f"order 731204588841220{n}\n", filename=f"list-{n}.txt")
    reading = read(message.as_bytes(), identity=IDENTITY, config=with_limits(max_files=2))
    assert [t.filename for t in reading.mail.attachment_texts] == ["list-0.txt", "list-1.txt"]
    assert "attachments not read (only 2 per mail are): list-2.txt" in reading.mail.defects


def test_the_kind_comes_from_the_file_name_before_the_declared_type() -> None:
    assert kind_of("PI.PDF", "application/octet-stream") == "pdf"
    assert kind_of("item.msg", "application/octet-stream") == "msg"
    assert kind_of("orders.csv", "application/vnd.ms-excel") == "csv"
    assert kind_of(None, "application/pdf") == "pdf"
    assert kind_of("photo.jpg", "image/jpeg") is None


def test_a_pdf_decompression_bomb_is_skipped_with_a_defect_naming_it() -> None:
    started = time.perf_counter()
    reading = reading_of("pdf-bomb.eml")
    assert time.perf_counter() - started < 1.0
    [defect] = defects_naming(reading, "PI-2026-0412.pdf")
    assert defect.startswith("attachment PI-2026-0412.pdf not read: PDF over a safety limit")


def test_a_number_in_an_attachment_without_an_order_word_is_not_taken() -> None:
    # A catalogue or a spec sheet is full of long numbers (model numbers joined across a table).
    message = EmailMessage()
    message["From"] = "buyer@shop.example"
    message["Subject"] = "models"
    message.set_content("The list is attached.")
    message.add_attachment("Models: 9111-520  9111-285 8204\n5255505705959407\n", filename="models.txt")
    reading = read(message.as_bytes(), identity=IDENTITY, config=CONFIG)
    assert reading.orders.numbers == ()
    assert {r.reason for r in reading.orders.rejected} == {"in an attachment without an order word"}

"""parse(): raw bytes to InboundMail, for any input, with every fallback recorded as a defect."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailbot.core.parse import decode_bytes, decode_words, parse

EML = Path(__file__).resolve().parents[1] / "eml"


def load(name: str) -> bytes:
    return (EML / name).read_bytes()


def test_hash_and_size_describe_the_raw_bytes() -> None:
    raw = load("parse-wrong-charset.eml")
    mail = parse(raw)
    assert mail.sha256 == hashlib.sha256(raw).hexdigest()
    assert mail.size == len(raw)


def test_utf8_bytes_declared_as_latin1_are_read_as_utf8_with_a_defect() -> None:
    mail = parse(load("parse-wrong-charset.eml"))
    assert "didn’t go through – can I pay" in mail.text
    assert any("declared iso-8859-1 but bytes are utf-8" in d for d in mail.defects)


def test_addresses_are_lower_cased_bare_addresses() -> None:
    mail = parse(load("parse-encoded-names.eml"))
    assert mail.from_addr == "zoe.mueller@gmx.example"
    assert mail.to == ("ta-inspection@support.example.test",)
    assert mail.cc == ("sales@supplier.example", "buyer2@shop.example")


def test_encoded_display_name_and_subject_are_decoded() -> None:
    mail = parse(load("parse-encoded-names.eml"))
    assert mail.from_name == "Zoë Müller"
    assert mail.subject == "订单 3317 2514 0598 9331 验货报告"
    assert ("Subject", mail.subject) in mail.headers


def test_message_ids_are_kept_without_angle_brackets() -> None:
    mail = parse(load("parse-encoded-names.eml"))
    assert mail.message_id == "CAF=abc123@mail.gmail.example"
    # In-Reply-To written without brackets is still one id.
    assert mail.in_reply_to == ("20260301T101010.abcdef@mailbot.example.test",)
    assert mail.references == ("first@gmail.example", "20260301T101010.abcdef@mailbot.example.test")


def test_control_characters_in_headers_and_nul_in_the_text_are_removed_with_a_defect() -> None:
    mail = parse(load("parse-nul-in-headers.eml"))
    assert mail.subject == "Please cancel monitoring for order 162534987612345"
    assert mail.from_name == "Bob Tan"
    assert mail.message_id == "nul.1@tan-trading.example"
    assert "\x00" not in mail.text
    assert "control characters removed from header Subject" in mail.defects


def test_date_is_timezone_aware() -> None:
    mail = parse(load("parse-encoded-names.eml"))
    assert mail.date == datetime(2026, 3, 4, 3, 0, tzinfo=UTC)


def test_attachment_names_in_rfc2047_inside_quotes_and_rfc2231_are_decoded() -> None:
    mail = parse(load("parse-encoded-names.eml"))
    names = [a.filename for a in mail.attachments]
    assert names == ["装箱单_3317251405989331.pdf", "微信图片_20260314101455.jpg"]
    assert mail.attachments[0].content_type == "application/pdf"
    assert mail.attachments[0].size > 0


def test_forwarded_message_rfc822_becomes_forwarded_text_and_an_attachment() -> None:
    mail = parse(load("parse-forward-attached.eml"))
    assert "Your order 4417 0923 8850 1267 is packed" in mail.forwarded_text
    assert "Subject: Your order is ready to ship" in mail.forwarded_text
    assert "4417" not in mail.new_text
    assert [a.content_type for a in mail.attachments] == ["message/rfc822"]


def test_delivery_status_report_names_recipient_status_and_our_original_message() -> None:
    mail = parse(load("parse-dsn.eml"))
    assert mail.report is not None
    assert mail.report.recipients == ("nobody@buyer-shop.example",)
    assert mail.report.status == "5.1.1"
    assert mail.report.action == "failed"
    assert mail.report.permanent
    assert mail.report.original_message_id == "20260306T095955.aa11bb22cc33@mailbot.example.test"
    assert "order 730012998877123" in mail.forwarded_text


def test_broken_message_is_read_as_far_as_possible_and_every_problem_is_listed() -> None:
    mail = parse(load("parse-broken.eml"))
    assert mail.from_addr is None
    assert mail.subject == "取消 订单"
    assert "cancel order 123456789012345" in mail.text
    for expected in ("no From", "no Message-ID", "mbox 'From ' line", "byte order mark", "8-bit bytes"):
        assert any(expected in d for d in mail.defects), expected


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\xff\xfe", b"Subject: x", b"\n\n\n", b"From: <>\n\n", b"Content-Type: multipart/mixed\n\n--"],
)
def test_parse_returns_a_mail_for_degenerate_input(raw: bytes) -> None:
    mail = parse(raw)
    assert mail.size == len(raw)


def test_deep_nesting_is_cut_with_a_defect_instead_of_crashing() -> None:
    depth = 200
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth))
    raw = (head + "Content-Type: text/plain\n\nhello\n").encode()
    mail = parse(raw)
    assert any("deeper than" in d for d in mail.defects)


def test_new_text_quoted_text_and_signature_are_split() -> None:
    raw = (
        b"From: a@b.example\nSubject: Re: x\nContent-Type: text/plain; charset=utf-8\n\n"
        b"Please cancel.\n\nRegards,\nAnn\n--\nAnn Lee | Tel +1 555 0100\n\n"
        b"On Mon, 2 Mar 2026 at 10:00, Bob <bob@c.example> wrote:\n> old text\n"
    )
    mail = parse(raw)
    assert mail.new_text == "Please cancel.\n\nRegards,"
    assert "Ann Lee" in mail.signature
    assert mail.quoted_text.endswith("> old text")


def test_html_only_mail_is_converted_and_its_quote_container_removed() -> None:
    raw = (
        b"From: a@b.example\nSubject: x\nContent-Type: text/html; charset=utf-8\n\n"
        b"<div>Order <b>1625 3498 7612 345</b> please</div>"
        b'<div class="gmail_quote">On Mon wrote:<blockquote>older 9999</blockquote></div>'
    )
    mail = parse(raw)
    assert mail.html is not None
    assert "Order 1625 3498 7612 345 please" in mail.new_text
    assert "older 9999" in mail.quoted_text
    assert "older 9999" in mail.text


def test_format_flowed_soft_breaks_are_joined() -> None:
    raw = (
        b"From: a@b.example\nSubject: x\n"
        b"Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\n\n"
        b"This is about order 10841502622506 \n5158. Thanks for \nyour help.\n"
    )
    mail = parse(raw)
    assert "order 108415026225065158. Thanks for your help." in mail.text


def test_charset_cascade_detects_undeclared_legacy_bytes() -> None:
    decoded = decode_bytes("Отмените, пожалуйста, мониторинг производства по заказу".encode("koi8-r"), None)
    assert decoded.text.startswith("Отмените")
    assert decoded.defect is not None and "detected" in decoded.defect


def test_charset_cascade_replaces_what_nothing_can_read_and_says_so() -> None:
    decoded = decode_bytes(b"\x81\x8d\x8f\x90\x9d", "us-ascii")
    assert decoded.defect is not None
    assert decoded.text  # replacement characters, not an exception


def test_unknown_charset_is_a_defect_not_an_error() -> None:
    decoded = decode_bytes(b"plain words", "x-no-such-charset")
    assert decoded.text == "plain words"
    assert decoded.defect == "charset: unknown charset 'x-no-such-charset'"


def test_encoded_words_split_inside_a_multibyte_character_are_joined() -> None:
    whole = "订单号".encode()
    first, second = whole[:4], whole[4:]
    value = f"=?utf-8?B?{base64.b64encode(first).decode()}?= =?utf-8?B?{base64.b64encode(second).decode()}?="
    assert decode_words(value) == "订单号"

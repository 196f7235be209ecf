"""core/bounces.py: one idea of the mail system, and what a bounce says about which of our replies."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.adapters.lexicons import load_reading_config
from mailbot.core import bounces
from mailbot.core.automation import detect_automation
from mailbot.core.parse import parse
from mailbot.core.types import AutomationKind, Identity

EML = Path(__file__).resolve().parents[1] / "eml"
CONFIG = load_reading_config(Path(__file__).resolve().parent / "rules").automation
US = Identity(addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test")


@pytest.mark.parametrize(
    "address",
    [
        "MAILER-DAEMON@mx.example",
        "mailer_daemon@mx.example",
        "postmaster@mx.example",
        "post_master@mx.example",
        "Mail.Delivery.System@mx.example",
        "mail-delivery-subsystem@mx.example",
        "mailerdaemon",
    ],
)
def test_every_spelling_of_the_mail_system_is_the_mail_system(address: str) -> None:
    assert bounces.is_mail_system(address)


@pytest.mark.parametrize(
    "address", ["maria.lopez@andes.example", "postmaster.general@x.example", "mail@x.example", ""]
)
def test_people_and_ordinary_role_addresses_are_not_the_mail_system(address: str) -> None:
    assert not bounces.is_mail_system(address)


def test_a_plain_text_bounce_from_the_mail_system_gets_a_report_naming_our_returned_message() -> None:
    verdict = detect_automation(parse((EML / "parse-qmail-bounce.eml").read_bytes()), US, CONFIG)
    assert verdict.kind is AutomationKind.BOUNCE
    assert verdict.report is not None
    assert verdict.report.recipients[0] == "li.wei@buyer-shop.example"
    assert verdict.report.status == "5.1.1"
    assert verdict.report.original_message_id == "20260307T095000.0011223344ff@mailbot.example.test"


def test_a_structured_report_keeps_the_servers_diagnostic() -> None:
    mail = parse((EML / "parse-dsn.eml").read_bytes())
    assert mail.report is not None
    assert mail.report.permanent
    assert bounces.describe(mail.report).endswith("(permanent)")


def test_the_returned_message_id_is_found_in_returned_headers_of_a_report_without_type() -> None:
    mail = parse((EML / "automation-report-without-type.eml").read_bytes())
    verdict = detect_automation(mail, US, CONFIG)
    assert "mailbot.0011aa22bb33cc44dd55ee66@mailbot.example.test" in bounces.returned_message_ids(
        mail, verdict.report
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("550 5.1.1 <x@y.example>: user unknown", True),
        ("550-5.7.1 rejected by policy", True),
        ("Remote host said: 554 Message refused", True),
        ("Status: 5.2.2 (mailbox full), code 552 returned", True),
        ("Please call 550 1234 about order 162534987612345", False),
        ("We shipped 500 units in 5 cartons", False),
    ],
)
def test_failure_codes_are_told_apart_from_numbers_in_buyer_text(text: str, expected: bool) -> None:
    assert bounces.has_failure_codes(text) is expected


def test_a_plain_text_notice_is_read_only_as_far_as_real_notices_put_their_facts() -> None:
    head = "Delivery to the following recipient failed permanently:\n\n    first@buyer.example\n\n"
    filler = "undeliverable message returned to sender. " * (bounces.MAX_NOTICE_CHARS // 40)
    text = head + filler + "\n    buried@buyer.example\n"
    report = bounces.delivery_report_from_text(text)
    assert "first@buyer.example" in report.recipients
    assert "buried@buyer.example" not in report.recipients

"""What the HTML version adds to order extraction, without converting what the parser converted."""

from __future__ import annotations

from pathlib import Path

from mailbot.adapters.lexicons import load_reading_config
from mailbot.core.order_html import html_new_text
from mailbot.core.orders import extract_orders
from mailbot.core.parse import parse

RULES = Path(__file__).resolve().parent / "rules"  # the core tests' own lexicons (rules/README.md)
CONFIG = load_reading_config(RULES).orders
EML = Path(__file__).resolve().parents[1] / "eml"


def test_an_html_only_mail_is_not_converted_again_for_its_order_numbers() -> None:
    mail = parse((EML / "orders-html-only-link.eml").read_bytes())
    assert mail.text_from_html
    assert html_new_text(mail, CONFIG) == ""


def test_an_order_link_in_an_html_only_mail_names_the_order() -> None:
    mail = parse((EML / "orders-html-only-link.eml").read_bytes())
    found = extract_orders(mail, CONFIG)
    assert found.numbers == ("5505840392770013",)
    assert found.orders[0].source == "url"

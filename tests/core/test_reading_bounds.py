"""Reading is bounded by the size of a mail, not by what it says (timings: benchmarks/reading_bounds.py).

Each test reads a mail that made an earlier version re-scan a line per number or backtrack per
character; such a regression shows as a test that does not finish.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from mailbot.adapters.lexicons import load_reading_config
from mailbot.core.bounded_patterns import PatternProblem
from mailbot.core.orders import NOT_READ, OrderConfig, extract_orders
from mailbot.core.parse import parse
from mailbot.core.reading import read
from mailbot.core.text import MAX_LAYOUT_HTML, MAX_LINES_SPLIT, html_to_text, split_message
from mailbot.core.types import Identity, InboundMail

RULES = Path(__file__).resolve().parent / "rules"  # the core tests' own lexicons (rules/README.md)
CONFIG = load_reading_config(RULES)
US = Identity(addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test")
BLANK = parse(b"From: buyer@shop.example\nSubject: x\n\n")


def message(subject: str, body: str, content_type: str = "text/plain") -> bytes:
    return (
        f"From: buyer@shop.example\r\nTo: ta-pm@support.example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <b@shop.example>\r\nContent-Type: {content_type}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + body
    ).encode("utf-8")


def order_numbers(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [str(rng.randrange(10**15, 10**16)) for _ in range(count)]


def with_text(text: str, subject: str = "x") -> InboundMail:
    return dataclasses.replace(BLANK, new_text=text, text=text, subject=subject)


def test_a_line_of_8000_order_numbers_yields_the_cap_and_a_recorded_reason() -> None:
    numbers = order_numbers(8000)
    reading = read(
        message("orders", "Please cancel orders " + " ".join(numbers) + "\n"), identity=US, config=CONFIG
    )
    assert len(reading.orders.orders) == CONFIG.orders.max_candidates == 1000
    assert reading.orders.numbers[:3] == tuple(numbers[:3])
    unread = [r for r in reading.orders.rejected if r.reason.startswith(NOT_READ)]
    assert [(r.text, r.source) for r in unread] == [("7000 more numbers", "new_text")]
    assert unread[0].reason == "not read: only the first 1000 numbers of a mail are judged"
    assert (
        "order extraction: 7000 more numbers in new_text were not read "
        "(only the first 1000 numbers of a mail are judged)"
    ) in reading.mail.defects


def test_a_mail_under_the_cap_records_nothing_unread() -> None:
    reading = read(
        message("order", "order " + " ".join(order_numbers(20)) + "\n"), identity=US, config=CONFIG
    )
    assert len(reading.orders.orders) == 20
    assert not any(r.reason.startswith(NOT_READ) for r in reading.orders.rejected)
    assert not any("not read" in d for d in reading.mail.defects)


def test_the_cap_is_shared_by_every_part_of_the_mail_and_the_new_text_goes_first() -> None:
    config = dataclasses.replace(CONFIG.orders, max_candidates=3)
    first, second = order_numbers(4, seed=2), order_numbers(2, seed=3)
    found = extract_orders(with_text("order " + " ".join(first), subject="order " + " ".join(second)), config)
    assert found.numbers == tuple(first[:3])
    unread = {(r.text, r.source) for r in found.rejected if r.reason.startswith(NOT_READ)}
    assert unread == {("1 more numbers", "new_text"), ("2 more numbers", "subject")}


def test_a_one_megabyte_subject_of_numbers_is_read_to_the_cap() -> None:
    subject = "cancel order " + " ".join(order_numbers(60_000))
    reading = read(message(subject[:1_000_000], "See the subject.\n"), identity=US, config=CONFIG)
    assert len(reading.orders.orders) == 1000
    assert all(o.source == "subject" for o in reading.orders.orders)


def test_a_megabyte_digit_run_is_rejected_once_and_shown_shortened() -> None:
    found = extract_orders(with_text("1234567890" * 100_000), CONFIG.orders)
    assert found.orders == ()
    [rejected] = found.rejected
    assert rejected.reason == "1000000 digits: longer than an order number (20)"
    assert len(rejected.text) == 60 and rejected.text.endswith("…")


def test_look_alikes_a_megabyte_long_are_still_told_apart() -> None:
    rng = random.Random(4)
    pieces = []
    for number in order_numbers(30_000, seed=5):
        pieces.append(
            rng.choice([f"Tel: +86 {number[:3]} {number[3:7]} {number[7:11]}", f"IBAN DE89 {number}"])
        )
    pieces.insert(10, "order no. 1625 3498 7612 3451")
    found = extract_orders(with_text(" ".join(pieces)[:1_000_000]), CONFIG.orders)
    assert found.numbers == ("1625349876123451",)


def test_unclosed_tags_and_links_do_not_hide_an_order_link() -> None:
    html = (
        "<p>" + "<a href='https://x.example/" * 3000 + "<" * 20_000 + "<span " * 5000 + "</p>"
        '<p>Please cancel <a href="https://biz.example/detail.htm?orderId=5505840392770013">'
        "this order</a></p>"
    )
    reading = read(message("cancel", html, "text/html"), identity=US, config=CONFIG)
    assert reading.orders.numbers == ("5505840392770013",)


def test_an_order_link_among_ordinary_links_is_shown_with_its_number() -> None:
    html = (
        '<p><a href="https://shop.example/">our shop</a> and '
        '<a href="https://biz.example/detail.htm?orderId=5505840392770013">this order</a></p>'
    )
    reading = read(message("cancel", html, "text/html"), identity=US, config=CONFIG)
    assert reading.orders.numbers == ("5505840392770013",)


def test_html_past_the_layout_limit_is_converted_without_layout() -> None:
    html = (
        "<html><body>"
        + "<p>filler text</p>" * (MAX_LAYOUT_HTML // 18)
        + "<p>order 1625 3498 7612 3451</p></body></html>"
    )
    text = html_to_text(html)
    assert "order 1625 3498 7612 3451" in text
    assert "<p>" not in text


def test_pictures_written_into_html_do_not_count_towards_the_layout_limit() -> None:
    picture = "data:image/png;base64," + "A" * MAX_LAYOUT_HTML
    table = "<table><tr><td>Order</td><td>PO</td></tr><tr><td>1625</td><td>77</td></tr></table>"
    html = f'{table}<img src="{picture}">'
    assert "Order | PO" in html_to_text(html)


def test_a_long_run_of_blanks_after_a_header_word_is_not_a_header_block() -> None:
    body = "Hello\nFrom" + " " * 200_000 + "Ningbo\nTo: Los Angeles\n\norder 1625 3498 7612 3451"
    split = split_message(body)
    assert split.quoted == ""
    assert "order 1625 3498 7612 3451" in split.new


def test_four_thousand_thank_you_lines_are_each_checked_against_a_short_look_ahead() -> None:
    line = "and here is one more paragraph of what I wanted to say"
    body = "Please cancel order 1625 3498 7612 3451\n" + f"Thanks\n{line}\n" * 4_000 + "Thanks\nAna\n"
    assert split_message(body).signature == "Ana"


def test_past_the_split_limit_only_quote_marks_are_read() -> None:
    body = (
        "Please cancel\n"
        + "x\n" * MAX_LINES_SPLIT
        + "On Monday Ana wrote:\n> order 1625 3498 7612 3451\n-----Original Message-----\nold text"
    )
    split = split_message(body)
    assert split.quoted == "> order 1625 3498 7612 3451"
    assert split.new.endswith("On Monday Ana wrote:\n-----Original Message-----\nold text")


def test_a_sign_off_line_ending_in_a_long_run_of_blanks_is_checked_once() -> None:
    body = "Please cancel order 1625 3498 7612 3451\nregards" + " " * 100_000 + "x\nAna"
    assert split_message(body).new.startswith("Please cancel")


def test_an_orders_file_pattern_with_a_back_reference_cannot_configure_reading() -> None:
    with pytest.raises(PatternProblem, match="back-reference"):
        OrderConfig(decoy_patterns=(("doubled", r"(\d)\1{5}"),))


def test_look_alike_patterns_are_matched_line_by_line() -> None:
    config = dataclasses.replace(CONFIG.orders, decoy_patterns=(("a line of stock codes", r"^ZZ [0-9]+"),))
    found = extract_orders(with_text("hello\nZZ 1625349876123451\norder 1625349876123452"), config)
    assert found.numbers == ("1625349876123452",)
    assert [r.reason for r in found.rejected] == ["looks like a line of stock codes"]


def test_a_case_reference_after_a_long_run_of_blanks_is_still_found() -> None:
    body = "Hello" + " " * 200_000 + "see [Case" + " " * 100 + "#K7Q2XZ] please\n"
    reading = read(message("Re: my order", body), identity=US, config=CONFIG)
    assert reading.thread_keys.case_refs == ("K7Q2XZ",)

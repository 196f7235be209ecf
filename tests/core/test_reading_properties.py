"""Properties of reading that must hold for any input, checked with generated examples."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.adapters.lexicons import load_reading_config
from mailbot.core.orders import extract_orders
from mailbot.core.parse import parse
from mailbot.core.reading import read
from mailbot.core.types import Identity, InboundMail

RULES = Path(__file__).resolve().parent / "rules"  # the core tests' own lexicons (rules/README.md)
CONFIG = load_reading_config(RULES)
US = Identity(addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test")
BLANK = parse(b"From: buyer@shop.example\nSubject: x\n\n")
CONTEXT_WORDS = sorted({word.rstrip("*") for _, word in CONFIG.orders.context_words})

HEADER_LINES = [
    b"From: =?utf-8?B?5L2g5aW9?= <a@b.example>\r\n",
    b"Subject: =?gbk?Q?=B6=A9=B5=A5?=\r\n",
    b'Content-Type: multipart/mixed; boundary="x"\r\n',
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n",
    b"Content-Type: text/html; charset=x-unknown\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*=utf-8''%E4%BD%A0\r\n",
    b"\r\n",
    b"--x\r\n",
    b"--x--\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: message/delivery-status\r\n",
    b"Final-Recipient: rfc822; a@b\r\nStatus: 5.1.1\r\n",
    b"order 1625 3498 7612 345 =E4=BD\r\n",
    b'<div class="gmail_quote"><blockquote>',
]


def with_new_text(text: str) -> InboundMail:
    return dataclasses.replace(BLANK, new_text=text, text=text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_parsing_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    mail = parse(raw)
    assert mail.size == len(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(HEADER_LINES), st.binary(max_size=40)), max_size=40))
def test_reading_never_raises_on_mail_shaped_garbage(pieces: list[bytes]) -> None:
    reading = read(b"".join(pieces), identity=US, config=CONFIG)
    assert reading.language in CONFIG.languages


WORDS = st.sampled_from(
    [
        "please",
        "check",
        "the",
        "report",
        "for",
        "our",
        "goods",
        "thanks",
        "team",
        "status",
        "cancel",
        "kindly",
    ]
)


@st.composite
def order_number(draw: st.DrawFn) -> tuple[str, str]:
    """(digits, as written): whole, or in groups of 3-5 digits."""
    length = draw(st.integers(min_value=12, max_value=20))
    digits = str(draw(st.integers(min_value=1, max_value=9))) + "".join(
        draw(st.lists(st.sampled_from("0123456789"), min_size=length - 1, max_size=length - 1))
    )
    if not draw(st.booleans()):
        return digits, digits
    groups, rest = [], digits
    while rest:
        size = draw(st.integers(min_value=3, max_value=5))
        groups.append(rest[:size])
        rest = rest[size:]
    if len(groups[-1]) < 2 and len(groups) > 1:
        last = groups.pop()
        groups[-1] += last
    return digits, " ".join(groups)


@st.composite
def paragraph(draw: st.DrawFn) -> tuple[list[str], str]:
    """Prose with order numbers, each after an order word."""
    numbers: list[str] = []
    tokens: list[str] = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        tokens.extend(draw(st.lists(WORDS, min_size=1, max_size=8)))
        digits, written = draw(order_number())
        tokens.extend(["order", written])
        numbers.append(digits)
    tokens.extend(draw(st.lists(WORDS, min_size=1, max_size=5)))
    return numbers, " ".join(tokens)


@settings(max_examples=200, deadline=None)
@given(paragraph(), st.integers(min_value=12, max_value=90), st.sampled_from([" ", "  ", "\t", " \t "]))
def test_extraction_does_not_change_with_whitespace_or_line_wrapping(
    example: tuple[list[str], str], width: int, gap: str
) -> None:
    numbers, text = example
    # Re-space only between words: spaces inside a grouped number are part of how it is written.
    respaced = text.replace(" order ", f"{gap}order ").replace(" please ", f"{gap}please{gap}")
    rewrapped = "\n".join(textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False))
    expected = tuple(dict.fromkeys(numbers))
    assert extract_orders(with_new_text(text), CONFIG.orders).numbers == expected
    assert extract_orders(with_new_text(respaced), CONFIG.orders).numbers == expected
    assert extract_orders(with_new_text(rewrapped), CONFIG.orders).numbers == expected


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200), st.sampled_from(CONTEXT_WORDS), order_number(), st.text(max_size=200))
def test_an_order_number_after_a_context_word_of_any_language_is_found_whatever_surrounds_it(
    before: str, word: str, number: tuple[str, str], after: str
) -> None:
    digits, _ = number
    text = f"{before}\n{word} {digits}\n\n{after}"
    extraction = extract_orders(with_new_text(text), CONFIG.orders)
    assert digits in extraction.numbers

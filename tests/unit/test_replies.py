"""Replies: headers that prevent loops and thread correctly; the reply guard has the last word."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from mailbot.core.parse import parse
from mailbot.core.replies import (
    ReplyLimits,
    address_problem,
    build_reply,
    clean_subject,
    plan_reply,
    reply_blocker,
    reply_recipient,
)
from mailbot.core.subjects import SubjectPrefixes
from mailbot.core.types import Identity, InboundMail, SenderHistory

# A small fixture of subject prefixes: the shipped ones live in rules/lexicons and are tested there.
PREFIXES = SubjectPrefixes(reply=(("en", "re"), ("de", "aw")), forward=(("en", "fwd"),))
US = Identity(addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test")


def mail(**overrides: object) -> InboundMail:
    base: dict[str, object] = dict(
        sha256="0" * 64,
        size=10,
        message_id="abc@buyer.example",
        subject="Cancel order",
        from_addr="b@buyer.example",
        from_name="Buyer",
        reply_to=None,
        to=("ta-pm@support.example.test",),
        cc=(),
        delivered_to=(),
        date=None,
        in_reply_to=(),
        references=("old@buyer.example",),
        headers=(),
        content_type="text/plain",
        text="",
        html=None,
        new_text="",
        quoted_text="",
        signature="",
        forwarded_text="",
    )
    base.update(overrides)
    return InboundMail(**base)  # type: ignore[arg-type]


def test_reply_subject_carries_the_case_tag_once() -> None:
    assert clean_subject("RE: AW: [Case #K7Q2XZ] Cancel order", US, PREFIXES) == "Cancel order"
    plan = plan_reply(
        mail(subject="Re: [Case #K7Q2XZ] Cancel"),
        mailbox_address="ta-pm@support.example.test",
        case_ref="K7Q2XZ",
        template="t",
        language="en",
        identity=US,
        seed="s",
        prefixes=PREFIXES,
    )
    assert plan.subject == "Re: [Case #K7Q2XZ] Cancel"


def test_reply_headers_thread_and_prevent_loops() -> None:
    plan = plan_reply(
        mail(),
        mailbox_address="ta-pm@support.example.test",
        case_ref="K7Q2XZ",
        template="t",
        language="en",
        identity=US,
        seed="s",
        prefixes=PREFIXES,
    )
    raw = build_reply(
        plan,
        text="Hello",
        html=None,
        from_name="TA Support",
        now=datetime(2026, 11, 22, tzinfo=UTC),
        case_ref="K7Q2XZ",
    )
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["In-Reply-To"] == "<abc@buyer.example>"
    assert message["References"] == "<old@buyer.example> <abc@buyer.example>"
    assert message["Message-ID"].endswith("@mailbot.example.test>")
    assert message["To"] == "b@buyer.example"


def test_header_injection_in_the_subject_is_neutralised() -> None:
    plan = plan_reply(
        mail(subject="hi\r\nBcc: victim@example.test"),
        mailbox_address="ta-pm@support.example.test",
        case_ref="K7Q2XZ",
        template="t",
        language="en",
        identity=US,
        seed="s",
        prefixes=PREFIXES,
    )
    raw = build_reply(
        plan, text="x", html=None, from_name="TA\r\nBcc: x@y", now=datetime.now(UTC), case_ref="K7Q2XZ"
    )
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"]


def test_reply_goes_to_reply_to_when_given() -> None:
    plan = plan_reply(
        mail(reply_to="assistant@buyer.example"),
        mailbox_address="ta-pm@support.example.test",
        case_ref="K7Q2XZ",
        template="t",
        language="en",
        identity=US,
        seed="s",
        prefixes=PREFIXES,
    )
    assert plan.to_addr == "assistant@buyer.example"


def test_guard_blocks_machines_our_own_address_bounced_and_rate_limited_senders() -> None:
    limits = ReplyLimits(per_hour=2, per_day=5)
    assert reply_blocker(mail(), SenderHistory(), limits, US, is_machine=True)
    assert reply_blocker(mail(from_addr="ta-pm@support.example.test"), SenderHistory(), limits, US, False)
    assert reply_blocker(mail(), SenderHistory(hard_bounced=True), limits, US, False)
    assert reply_blocker(mail(), SenderHistory(replies_last_hour=2), limits, US, False)
    assert reply_blocker(mail(), SenderHistory(replies_last_day=5), limits, US, False)
    assert reply_blocker(mail(), SenderHistory(replies_last_hour=1), limits, US, False) is None


def test_a_non_ascii_subject_is_encoded_in_short_words_and_reads_back_exactly() -> None:
    subject = "Отмена инспекции по заказу 123456789012345, пожалуйста, срочно"
    plan = plan_reply(
        mail(subject=subject),
        mailbox_address="ta-pm@support.example.test",
        case_ref="K7Q2XZ",
        template="t",
        language="ru",
        identity=US,
        seed="s",
        prefixes=PREFIXES,
    )
    raw = build_reply(
        plan,
        text="Здравствуйте",
        html=None,
        from_name="Служба поддержки",
        now=datetime.now(UTC),
        case_ref="K7Q2XZ",
    )
    assert raw.isascii()
    assert all(len(word) <= 75 for word in re.findall(rb"=\?[^?]+\?[bBqQ]\?[^?]*\?=", raw))
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == f"Re: [Case #K7Q2XZ] {subject}"
    assert message["From"].addresses[0].display_name == "Служба поддержки"
    assert message.get_body(("plain",)).get_content().strip() == "Здравствуйте"


# -- where replies go ------------------------------------------------------------------------------


def with_headers(**fields: str) -> InboundMail:
    """A mail as the parser reads it from these From / Reply-To header values."""
    lines = [f"{name.replace('_', '-')}: {value}" for name, value in fields.items()]
    raw = (
        "\r\n".join([*lines, "To: ta-pm@support.example.test", "Subject: Cancel", "", "Please cancel."])
    ).encode()
    return parse(raw)


def test_reply_to_in_another_domain_is_ignored_and_the_reply_goes_to_from() -> None:
    recipient = reply_recipient(
        with_headers(From="Bot <bot@responder.example>", Reply_To="victim@victim.example"), US
    )
    assert recipient.address == "bot@responder.example"
    assert "victim@victim.example ignored" in recipient.why


def test_reply_to_in_a_subdomain_of_the_senders_domain_is_honoured() -> None:
    recipient = reply_recipient(
        with_headers(From="Li Wei <li.wei@buyer-shop.example>", Reply_To="orders@eu.buyer-shop.example"), US
    )
    assert recipient.address == "orders@eu.buyer-shop.example"


def test_a_from_header_with_two_addresses_gets_no_reply() -> None:
    mail_ = with_headers(From="Bob <Sales> <bob@buyer.example>")
    assert reply_recipient(mail_, US).address is None
    block = reply_blocker(mail_, SenderHistory(), ReplyLimits(), US, is_machine=False)
    assert block is not None and block.guard == "recipient"
    assert "'sales'" in block.why


def test_a_from_header_naming_two_mailboxes_gets_no_reply() -> None:
    mail_ = with_headers(From="a@buyer.example, b@other.example")
    assert reply_recipient(mail_, US).address is None
    assert "2 addresses" in reply_recipient(mail_, US).why


def test_an_encoded_comma_in_the_display_name_is_still_one_address() -> None:
    mail_ = with_headers(From="=?utf-8?q?L=C3=B3pez=2C_Mar=C3=ADa?= <maria@andes.example>")
    assert reply_recipient(mail_, US).address == "maria@andes.example"


def test_an_encoded_line_break_in_the_display_name_cannot_make_a_recipient() -> None:
    mail_ = with_headers(From="=?utf-8?q?Bob=0D=0A_victim@example.com?= <bob@buyer.example>")
    assert reply_recipient(mail_, US).address is None


@pytest.mark.parametrize(
    "address",
    [
        "sales",
        "_victim@example.com?=",
        "=?utf-8?q?x?=_victim@example.com",
        "bob@localhost",
        "bob@buyer.example.",
        "a..b@buyer.example",
        '"a b"@buyer.example',
        "bob@buy er.example",
        "bob@-buyer.example",
        "bob@buyer.example\r\nbcc: x@y.example",
        "x" * 65 + "@buyer.example",
    ],
)
def test_strict_recipient_validation_refuses(address: str) -> None:
    assert address_problem(address) is not None


@pytest.mark.parametrize(
    "address", ["bob@buyer.example", "o'brien+ta@mail.buyer.co.uk", "li.wei@xn--fiqs8s.example", "a@b.cd"]
)
def test_strict_recipient_validation_accepts_ordinary_addresses(address: str) -> None:
    assert address_problem(address) is None


def test_a_same_domain_reply_to_naming_our_own_mailbox_is_refused_by_the_own_address_guard() -> None:
    mail_ = mail(from_addr="colleague@support.example.test", reply_to="ta-pm@support.example.test")
    block = reply_blocker(mail_, SenderHistory(), ReplyLimits(), US, is_machine=False)
    assert block is not None and block.guard == "own-address"


def test_the_global_ceiling_blocks_every_reply_once_reached() -> None:
    limits = ReplyLimits(total_per_hour=100)
    block = reply_blocker(mail(), SenderHistory(replies_total_last_hour=100), limits, US, is_machine=False)
    assert block is not None and block.guard == "ceiling"
    assert (
        reply_blocker(mail(), SenderHistory(replies_total_last_hour=99), limits, US, is_machine=False) is None
    )

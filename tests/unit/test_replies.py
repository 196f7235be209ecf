"""Replies: headers that prevent loops and thread correctly; the reply guard has the last word."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy

from mailbot.core.replies import ReplyLimits, build_reply, clean_subject, plan_reply, reply_blocker
from mailbot.core.types import Identity, InboundMail, SenderHistory

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
    assert clean_subject("RE: AW: [Case #K7Q2XZ] Cancel order", US) == "Cancel order"
    plan = plan_reply(
        mail(subject="Re: [Case #K7Q2XZ] Cancel"),
        mailbox_address="ta-pm@support.example.test",
        case_ref="K7Q2XZ",
        template="t",
        language="en",
        identity=US,
        seed="s",
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

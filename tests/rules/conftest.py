"""Builders for the rules tests: the facts about a message, rule sets written as TOML text, installations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mailbot.core.rules.engine import RuleFacts
from mailbot.core.rules.schema import RuleSet, RuleSource, parse_ruleset
from mailbot.core.types import (
    Attachment,
    AutomationKind,
    AutomationVerdict,
    InboundMail,
    Intent,
    IntentResult,
    OrderExtraction,
    OrderRef,
    Reading,
    ThreadKeys,
    ThreadMatch,
)

from .installation import Installation, install

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = frozenset(
    {
        "cancellation_received",
        "report_dispute_received",
        "order_number_missing",
        "acknowledgement",
        "status_inquiry",
        "add_service",
        "payment_question",
        "general_question",
        "follow_up_received",
    }
)
MAILBOXES = frozenset({"pm", "inspection"})


def make_facts(
    *,
    intent: Intent | str = Intent.GENERAL_QUESTION,
    automation: AutomationKind | str = AutomationKind.HUMAN,
    orders: tuple[str, ...] = (),
    language: str = "en",
    mailbox: str = "pm",
    case: str | None = None,
    subject: str = "A question",
    body: str = "Hello, I have a question.",
    forwarded: str = "",
    quoted: str = "",
    sender: str | None = "ana@buyer.example",
    headers: tuple[tuple[str, str], ...] = (),
    attachments: tuple[Attachment, ...] = (),
) -> RuleFacts:
    """The facts about one message, as the reading would produce them."""
    mail = InboundMail(
        sha256="0" * 64,
        size=1000,
        message_id="m1@buyer.example",
        subject=subject,
        from_addr=sender,
        from_name="Ana",
        reply_to=None,
        to=("ta-pm@support.example.test",),
        cc=(),
        delivered_to=(),
        date=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        in_reply_to=(),
        references=(),
        headers=(("From", sender or ""), ("Subject", subject), *headers),
        content_type="text/plain",
        text=body + "\n" + quoted,
        html=None,
        new_text=body,
        quoted_text=quoted,
        signature="",
        forwarded_text=forwarded,
        attachments=attachments,
    )
    reading = Reading(
        mail=mail,
        automation=AutomationVerdict(kind=AutomationKind(automation), reason="test"),
        orders=OrderExtraction(orders=tuple(OrderRef(n, 0.9, "new_text") for n in orders)),
        language=language,
        intent=IntentResult(intent=Intent(intent), score=0.8),
        thread_keys=ThreadKeys(our_message_ids=(), case_refs=()),
    )
    thread = (
        ThreadMatch(case, "subject-ref", f"case reference {case} from the case's own buyer")
        if case
        else ThreadMatch(None, "new", "no earlier conversation found")
    )
    return RuleFacts(reading=reading, mailbox=mailbox, thread=thread)


def build_rules(text: str, **known: Any) -> RuleSet:
    """A rule set from the text of one routing file, checked against the shipped template names."""
    known.setdefault("known_templates", TEMPLATES)
    known.setdefault("known_mailboxes", MAILBOXES)
    return parse_ruleset([RuleSource("rules/routing.toml", text)], **known)


@pytest.fixture
def facts() -> Callable[..., RuleFacts]:
    return make_facts


@pytest.fixture
def rules() -> Callable[..., RuleSet]:
    return build_rules


@pytest.fixture
def make_installation(tmp_path: Path, database_url: str) -> Iterator[Callable[..., Installation]]:
    """Installations on local Maildirs whose store (SQLite or PostgreSQL) the real ingest fills."""
    made: list[Installation] = []

    def make(*, live_edit: Callable[[str], str] | None = None) -> Installation:
        installation = install(tmp_path / f"mailbot-{len(made)}", database_url, live_edit=live_edit)
        made.append(installation)
        return installation

    yield make
    for installation in made:
        installation.engine.dispose()

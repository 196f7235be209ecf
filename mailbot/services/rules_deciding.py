"""Deciding one message outside the worker, exactly as the worker would: shared by check, test,
explain and replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mailbot.core.decide import decide
from mailbot.core.reading import ReadingConfig, read
from mailbot.core.rules.schema import RuleSet
from mailbot.core.types import CaseFacts, Decision, Identity, Reading, ThreadCandidates


@dataclass(frozen=True)
class RulesContext:
    """What deciding mail outside the worker needs, assembled by the entry point."""

    rules_dir: Path
    identity: Identity
    reading_config: ReadingConfig | None = None  # needed to test, explain and replay, not to check
    known_templates: frozenset[str] | None = None  # None: any template name is accepted
    # the reply templates, part of the rule set: checked with it and in its version (None: left out)
    templates_dir: Path | None = None
    known_mailboxes: frozenset[str] | None = None
    mailbox_addresses: Mapping[str, str] = field(default_factory=dict)  # address -> mailbox name

    def config(self) -> ReadingConfig:
        if self.reading_config is None:
            raise ValueError("a reading configuration is needed to read mail")
        return self.reading_config


# -- deciding one message -----------------------------------------------------------------------


def decide_message(
    raw: bytes, ctx: RulesContext, ruleset: RuleSet, *, mailbox: str, case: str | None = None
) -> tuple[Reading, Decision]:
    """Read and decide one message as the worker would; `case` says it belongs to that existing case."""
    reading = read(raw, identity=ctx.identity, config=ctx.config())
    return reading, decide_reading(reading, ctx, ruleset, mailbox=mailbox, case=case)


def decide_reading(
    reading: Reading, ctx: RulesContext, ruleset: RuleSet, *, mailbox: str, case: str | None = None
) -> Decision:
    candidates = ThreadCandidates()
    if case is not None:
        # Standing in for the store: the case the test or the supervisor says this mail belongs to.
        facts = CaseFacts(
            ref=case,
            buyer=reading.mail.from_addr or "",
            status="open",
            orders=reading.orders.numbers,
            mailbox=mailbox,
        )
        candidates = ThreadCandidates(by_message_id=facts)
    return decide(reading, mailbox=mailbox, ruleset=ruleset, identity=ctx.identity, candidates=candidates)


def mailbox_of(reading: Reading, ctx: RulesContext) -> str | None:
    """The configured mailbox a message was delivered to, from Delivered-To, To and Cc."""
    mail = reading.mail
    for address in (*mail.delivered_to, *mail.to, *mail.cc):
        name = ctx.mailbox_addresses.get(address.lower())
        if name is not None:
            return name
    return None

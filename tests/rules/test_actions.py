"""Every action a rule may take, as the route shows it and as the decision applies it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mailbot.core.decide import decide
from mailbot.core.rules.engine import RuleFacts, evaluate
from mailbot.core.rules.schema import ACTIONS, RuleSet
from mailbot.core.types import Identity, Outcome, RouteActions

US = Identity(addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test")

# action: (the TOML value, what the route then holds)
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "category": ('"cancellation"', {"category": "cancellation"}),
    "priority": ('"urgent"', {"priority": "urgent"}),
    "queue": ('"inspection"', {"queue": "inspection"}),
    "assignee": ('"mei.chen"', {"assignee": "mei.chen"}),
    "reply": ('"cancellation_received"', {"template": "cancellation_received"}),
    "tags": ('["vip", "legal"]', {"tags": ("vip", "legal")}),
    "ignore": ('"newsletter"', {"ignore_reason": "newsletter"}),
    "quarantine": ('"looks forged"', {"quarantine_reason": "looks forged"}),
}


def one_rule(rules: Callable[..., RuleSet], action: str, value: str) -> RuleSet:
    return rules(f'[[rule]]\nname = "r"\nwhen.intent = "cancellation"\nthen.{action} = {value}\n')


def test_every_action_is_tested_here() -> None:
    assert set(CASES) == set(ACTIONS)


@pytest.mark.parametrize("action", sorted(CASES))
def test_action_sets_the_route(
    action: str, rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    value, expected = CASES[action]
    result = evaluate(one_rule(rules, action, value), facts(intent="cancellation"))
    for field, wanted in expected.items():
        assert getattr(result.actions, field) == wanted
    assert result.decided_by == "r"


@pytest.mark.parametrize("action", sorted(CASES))
def test_action_is_named_in_the_trace(
    action: str, rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    value, _ = CASES[action]
    step = evaluate(one_rule(rules, action, value), facts(intent="cancellation")).trace[0]
    assert step.hit and action.rstrip("s") in step.why


def test_reply_false_means_no_reply(rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]) -> None:
    result = evaluate(one_rule(rules, "reply", "false"), facts(intent="cancellation"))
    assert result.actions.template is None
    assert "no reply" in result.trace[0].why


def test_a_rule_that_sets_no_category_leaves_the_default(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    result = evaluate(one_rule(rules, "priority", '"high"'), facts(intent="cancellation"))
    assert result.actions == RouteActions(category="unrouted", priority="high")


def test_the_decision_ignores_mail_a_rule_ignores(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    reading = facts(intent="cancellation").reading
    decision = decide(reading, mailbox="pm", ruleset=one_rule(rules, "ignore", '"newsletter"'), identity=US)
    assert decision.outcome is Outcome.IGNORED and decision.reason == "newsletter"
    assert decision.reply_template is None


def test_the_decision_quarantines_mail_a_rule_quarantines(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    reading = facts(intent="cancellation").reading
    decision = decide(
        reading, mailbox="pm", ruleset=one_rule(rules, "quarantine", '"looks forged"'), identity=US
    )
    assert decision.outcome is Outcome.QUARANTINED and decision.reason == "looks forged"


def test_the_decision_answers_with_the_rules_template(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    reading = facts(intent="cancellation").reading
    ruleset = one_rule(rules, "reply", '"cancellation_received"')
    decision = decide(reading, mailbox="pm", ruleset=ruleset, identity=US)
    assert decision.outcome is Outcome.ROUTED
    assert decision.reply_template == "cancellation_received"
    assert decision.ruleset_version == ruleset.version

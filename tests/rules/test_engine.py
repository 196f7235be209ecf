"""Evaluation: first match wins, `continue`, the default route, and a trace that explains every step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.core.rules.engine import DEFAULT_CATEGORY, DEFAULT_RULE, RuleFacts, evaluate
from mailbot.core.rules.predicates import Verdict
from mailbot.core.rules.schema import Condition, RuleSet
from mailbot.core.types import AutomationKind, Intent

from .conftest import REPO, build_rules, make_facts

TWO_RULES = """
[[rule]]
name = "cancellation"
when.intent = "cancellation"
then.category = "cancellation"
then.reply = "cancellation_received"

[[rule]]
name = "anything-with-an-order"
when.has_order_number = true
then.category = "orders"
"""


def test_the_first_matching_rule_decides_and_later_rules_are_not_looked_at(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    result = evaluate(rules(TWO_RULES), facts(intent="cancellation", orders=("1625349876123450",)))
    assert result.actions.category == "cancellation"
    assert result.matched == ("cancellation",) and result.decided_by == "cancellation"
    assert [s.rule for s in result.trace] == ["cancellation"]


def test_a_miss_moves_on_to_the_next_rule_and_the_trace_says_why(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    result = evaluate(rules(TWO_RULES), facts(intent="status_inquiry", orders=("1625349876123450",)))
    assert result.actions.category == "orders"
    miss, hit = result.trace
    assert not miss.hit and miss.why == "intent is status_inquiry, not cancellation"
    assert hit.hit and hit.why.startswith("has an order number (1625349876123450) → category orders")


def test_when_no_rule_matches_the_mail_is_unrouted_with_no_reply(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    result = evaluate(rules(TWO_RULES), facts(intent="general_question"))
    assert result.actions.category == DEFAULT_CATEGORY == "unrouted"
    assert result.actions.template is None
    assert result.decided_by is None and result.matched == ()
    last = result.trace[-1]
    assert last.rule == DEFAULT_RULE and last.hit
    assert last.why == "no rule decided this message: category unrouted, no reply"


CONTINUE = """
[[rule]]
name = "machines-get-no-reply"
when.automation = ["noreply", "list"]
then.reply = false
then.tags = ["machine"]
continue = true

[[rule]]
name = "vip"
when.sender_domain = "bigbuyer.example"
then.priority = "high"
then.tags = ["vip", "machine"]
continue = true

[[rule]]
name = "cancellation"
when.intent = "cancellation"
then.category = "cancellation"
then.priority = "normal"
then.reply = "cancellation_received"
"""


def test_continue_takes_the_actions_and_keeps_looking(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    result = evaluate(rules(CONTINUE), facts(intent="cancellation", sender="li@bigbuyer.example"))
    assert result.matched == ("vip", "cancellation") and result.decided_by == "cancellation"
    assert result.actions.category == "cancellation"
    assert result.actions.template == "cancellation_received"
    assert result.trace[1].why.endswith("; continues with the rules below")


def test_an_action_set_by_an_earlier_matching_rule_is_kept(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    result = evaluate(
        rules(CONTINUE),
        facts(intent="cancellation", sender="noreply@bigbuyer.example", automation=AutomationKind.NOREPLY),
    )
    assert result.actions.priority == "high"
    assert result.actions.template is None  # reply = false came first
    assert "priority stays high from rule 'vip'" in result.trace[2].why
    assert "reply stays no reply from rule 'machines-get-no-reply'" in result.trace[2].why


def test_tags_of_every_matching_rule_add_up_without_repeats(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    result = evaluate(
        rules(CONTINUE),
        facts(intent="cancellation", sender="noreply@bigbuyer.example", automation=AutomationKind.NOREPLY),
    )
    assert result.actions.tags == ("machine", "vip")


def test_only_continuing_rules_matched_means_the_default_still_applies(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    result = evaluate(rules(CONTINUE), facts(intent="status_inquiry", sender="li@bigbuyer.example"))
    assert result.actions.category == "unrouted" and result.actions.priority == "high"
    assert result.decided_by is None
    assert result.trace[-1].why == (
        "no rule decided this message (only rules that continue matched: vip): category unrouted, no reply"
    )


def test_unless_conditions_stop_a_rule_from_matching(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    ruleset = rules(
        '[[rule]]\nname = "r"\nwhen.intent = "cancellation"\nunless.language = "zh"\nthen.category = "c"\n'
    )
    assert evaluate(ruleset, facts(intent="cancellation", language="en")).decided_by == "r"
    result = evaluate(ruleset, facts(intent="cancellation", language="zh"))
    assert result.decided_by is None
    assert result.trace[0].why == "unless: language is zh"


def test_a_rule_without_conditions_matches_every_message(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    result = evaluate(rules('[[rule]]\nname = "all"\nthen.category = "general"\n'), facts())
    assert result.decided_by == "all"
    assert result.trace[0].why.startswith("no conditions: matches every message")


def test_a_switched_off_rule_is_skipped_and_the_trace_says_so(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    ruleset = rules(TWO_RULES.replace('name = "cancellation"', 'name = "cancellation"\nenabled = false'))
    result = evaluate(ruleset, facts(intent="cancellation", orders=("1625349876123450",)))
    assert result.decided_by == "anything-with-an-order"
    assert result.trace[0].why == "switched off (enabled = false)"


def test_every_failing_condition_is_listed_in_a_miss(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    ruleset = rules(
        '[[rule]]\nname = "r"\nwhen.intent = "cancellation"\nwhen.mailbox = "inspection"\n'
        'then.category = "c"\n'
    )
    why = evaluate(ruleset, facts(intent="spam", mailbox="pm")).trace[0].why
    assert why == "intent is spam, not cancellation; mailbox is pm, not inspection"


def test_a_condition_that_fails_with_an_error_is_a_miss_not_a_crash(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    ruleset = rules(TWO_RULES)

    def broken(_facts: RuleFacts) -> Verdict:
        raise RuntimeError("boom")

    first = ruleset.rules[0]
    bad = replace(first, when=(Condition("intent", 'intent = "cancellation"', broken),))
    result = evaluate(replace(ruleset, rules=(bad, *ruleset.rules[1:])), facts(orders=("1625349876123450",)))
    assert result.trace[0] == result.trace[0].__class__(
        "cancellation", False, "intent could not be checked (RuntimeError: boom)"
    )
    assert result.decided_by == "anything-with-an-order"


SHIPPED = (REPO / "rules" / "routing.toml").read_text(encoding="utf-8")

texts = st.text(st.characters(blacklist_categories=["Cs"]), max_size=200)


@settings(max_examples=200, deadline=None)
@given(
    subject=texts,
    body=texts,
    sender=st.one_of(st.none(), st.emails()),
    intent=st.sampled_from(list(Intent)),
    automation=st.sampled_from(list(AutomationKind)),
    header=st.tuples(st.sampled_from(["Authentication-Results", "X-Mailer", "List-Id"]), texts),
    case=st.one_of(st.none(), st.just("K7Q2XZ")),
    mailbox=st.sampled_from(["pm", "inspection", "other"]),
)
def test_the_shipped_rules_route_any_message_without_raising(
    subject: str,
    body: str,
    sender: str | None,
    intent: Intent,
    automation: AutomationKind,
    header: tuple[str, str],
    case: str | None,
    mailbox: str,
) -> None:
    ruleset = build_rules(SHIPPED)
    result = evaluate(
        ruleset,
        make_facts(
            subject=subject,
            body=body,
            sender=sender,
            intent=intent,
            automation=automation,
            headers=(header,),
            case=case,
            mailbox=mailbox,
        ),
    )
    assert result.trace
    assert result.decided_by is not None or result.trace[-1].rule == DEFAULT_RULE
    if automation is not AutomationKind.HUMAN:
        assert result.actions.template is None

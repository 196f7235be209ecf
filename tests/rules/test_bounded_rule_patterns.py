"""Supervisors' patterns are matched in bounded time; one that cannot be is refused, with file and line."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mailbot.adapters.lexicons import load_reading_config
from mailbot.core.errors import RuleFileError
from mailbot.core.rules.engine import RuleFacts, evaluate
from mailbot.core.rules.schema import RuleSet, RuleSetErrors
from mailbot.services.rules_admin import RulesWatcher

from .conftest import MAILBOXES, REPO, TEMPLATES

GOOD = '[[rule]]\nname = "ok"\nwhen.intent = "cancellation"\nthen.category = "cancellation"\n'


def pattern_rule(name: str, pattern: str, predicate: str = "subject_matches") -> str:
    category = name.replace("-", "_")
    return f'\n[[rule]]\nname = "{name}"\nwhen.{predicate} = \'{pattern}\'\nthen.category = "{category}"\n'


def refusal(rules: Callable[..., RuleSet], text: str) -> str:
    with pytest.raises(RuleSetErrors) as raised:
        rules(text)
    assert len(raised.value.errors) == 1, str(raised.value)
    return str(raised.value.errors[0])


def test_a_back_reference_is_refused_naming_file_line_and_why(rules: Callable[..., RuleSet]) -> None:
    said = refusal(rules, GOOD + pattern_rule("twice", r"(\w+) \1"))
    assert said == (
        "rules/routing.toml:8: when.subject_matches: rule 'twice': "
        "uses a back-reference, which cannot be matched in bounded time"
    )


def test_a_look_ahead_in_a_body_pattern_is_refused(rules: Callable[..., RuleSet]) -> None:
    said = refusal(rules, pattern_rule("refund", r"refund(?! request)", "body_matches"))
    assert "rules/routing.toml:4: when.body_matches" in said
    assert "look-ahead or look-behind, which cannot be matched in bounded time" in said


def test_a_header_pattern_with_a_look_behind_is_refused(rules: Callable[..., RuleSet]) -> None:
    said = refusal(
        rules, '[[rule]]\nname = "sap"\nwhen.header = { "X-Mailer" = "(?<=x)SAP" }\nthen.category = "erp"\n'
    )
    assert "when.header" in said and "look-ahead or look-behind" in said


def test_nested_quantifiers_are_accepted_and_decide_a_long_subject_at_once(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    ruleset = rules(pattern_rule("stall", "(a+)+$") + pattern_rule("bang", "(a+)+!$"))
    routed = evaluate(ruleset, facts(subject="a" * 41 + "!"))
    assert routed.decided_by == "bang"
    assert routed.trace[0].why == "subject does not match /(a+)+$/"


def test_word_classes_mean_letters_of_every_script(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    ruleset = rules(pattern_rule("russian", r"отменить\s+\w+"))
    routed = evaluate(ruleset, facts(subject="Прошу отменить инспекцию"))
    assert routed.decided_by == "russian"
    assert 'at "отменить инспекцию"' in routed.trace[0].why


def test_a_word_edge_against_a_non_latin_letter_is_refused_with_the_fix(
    rules: Callable[..., RuleSet],
) -> None:
    said = refusal(rules, pattern_rule("ru", r"\bзаказ"))
    assert "\\b next to 'з'" in said and "leave the \\b out" in said


def test_a_thousand_pattern_rules_each_record_their_miss_and_the_matching_one_decides(
    rules: Callable[..., RuleSet], facts: Callable[..., RuleFacts]
) -> None:
    text = "".join(pattern_rule(f"r-{i}", rf"^urgent-{i}\b") for i in range(1000)) + "\n" + GOOD
    ruleset = rules(text)
    routed = evaluate(ruleset, facts(subject="URGENT-737 please", intent="cancellation"))
    assert routed.decided_by == "r-737"
    assert len(routed.trace) == 738
    assert all(not step.hit for step in routed.trace[:737])
    assert routed.trace[5].why == "subject does not match /^urgent-5\\b/"
    assert routed.trace[737].why.startswith('subject matches /^urgent-737\\b/ at "URGENT-737"')
    # The next message is answered by the same rule set on its own facts.
    assert evaluate(ruleset, facts(subject="nothing", intent="cancellation")).decided_by == "ok"


def test_an_orders_file_pattern_that_cannot_be_bounded_is_refused_with_its_line(tmp_path: Path) -> None:
    shutil.copytree(REPO / "rules" / "lexicons", tmp_path / "lexicons")
    shutil.copy(REPO / "rules" / "scripts.toml", tmp_path / "scripts.toml")
    (tmp_path / "orders.toml").write_text(
        "[[decoy_patterns]]\nname = \"a phone\"\nregex = '(?<!\\d)\\+86[0-9 ]{8,}'\n", encoding="utf-8"
    )
    with pytest.raises(RuleFileError) as raised:
        load_reading_config(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path / 'orders.toml'}:3: decoy_patterns[0].regex: "
        "uses a look-ahead or look-behind, which cannot be matched in bounded time"
    )


def test_hot_reload_refuses_a_back_reference_and_keeps_the_last_good_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "routing.toml").write_text(GOOD, encoding="utf-8")
    watcher = RulesWatcher(tmp_path, known_mailboxes=MAILBOXES, known_templates=TEMPLATES)
    good = watcher.current()
    (tmp_path / "routing.toml").write_text(GOOD + pattern_rule("twice", r"(ab)\1"), encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="mailbot.rules"):
        assert watcher.current() is good
    assert "routing.toml:8: when.subject_matches: rule 'twice': uses a back-reference" in caplog.text
    assert not watcher.status().ok

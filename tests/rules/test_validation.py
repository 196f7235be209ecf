"""Mistakes in rule files are reported with the file, the line and the key, and a suggestion when one fits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailbot.adapters.rulefiles import load_rule_tests, load_ruleset
from mailbot.core.errors import RuleFileError
from mailbot.core.rules.schema import RuleSet, RuleSetErrors

from .conftest import MAILBOXES, REPO, TEMPLATES

GOOD_RULE = '[[rule]]\nname = "ok"\nwhen.intent = "cancellation"\nthen.category = "cancellation"\n'


def errors_of(rules: Callable[..., RuleSet], text: str, **known: object) -> list[RuleFileError]:
    with pytest.raises(RuleSetErrors) as raised:
        rules(text, **known)
    return list(raised.value.errors)


def only_error(rules: Callable[..., RuleSet], text: str, **known: object) -> RuleFileError:
    errors = errors_of(rules, text, **known)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


# (mistake, file text, line, key, words in the message)
MISTAKES = [
    (
        "unknown condition, with a suggestion",
        GOOD_RULE + '\n[[rule]]\nname = "x"\nwhen.intnet = "spam"\nthen.category = "spam"\n',
        8,
        "when.intnet",
        "rule 'x': unknown condition 'intnet'; did you mean 'intent'?",
    ),
    (
        "unknown action, with a suggestion",
        '[[rule]]\nname = "x"\nwhen.intent = "spam"\nthen.categroy = "spam"\n',
        4,
        "then.categroy",
        "unknown action 'categroy'; did you mean 'category'?",
    ),
    (
        "unknown reply template, with a suggestion",
        '[[rule]]\nname = "x"\nwhen.intent = "cancellation"\nthen.reply = "cancelation_received"\n',
        4,
        "then.reply",
        "no reply template named 'cancelation_received'; did you mean 'cancellation_received'?",
    ),
    (
        "a pattern that is not a valid regular expression",
        '[[rule]]\nname = "x"\n[rule.when]\nsubject_matches = "^(urgent"\n[rule.then]\ncategory = "u"\n',
        4,
        "when.subject_matches",
        "not a valid pattern: missing ), unterminated subpattern at position 1",
    ),
    (
        "a value of the wrong type",
        '[[rule]]\nname = "x"\nwhen.has_order_number = "yes"\nthen.category = "c"\n',
        3,
        "when.has_order_number",
        "expected true or false, got text ('yes')",
    ),
    (
        "two rules with the same name",
        GOOD_RULE + "\n" + GOOD_RULE,
        7,
        "name",
        "rule 'ok': another rule already has this name (at rules/routing.toml:2)",
    ),
    (
        "a rule without a name",
        '[[rule]]\nwhen.intent = "spam"\nthen.category = "spam"\n',
        1,
        "name",
        "rule #1: missing required key 'name'",
    ),
    (
        "a rule that does nothing",
        '\n[[rule]]\nname = "x"\nwhen.intent = "spam"\n',
        2,
        "then",
        "rule 'x': missing required key 'then'",
    ),
    (
        "unknown intent, with a suggestion",
        '[[rule]]\nname = "x"\nwhen.intent = ["cancellation", "report_dispue"]\nthen.category = "c"\n',
        3,
        "when.intent",
        "unknown intent 'report_dispue'; did you mean 'report_dispute'?",
    ),
    (
        "unknown automation kind, with a suggestion",
        '[[rule]]\nname = "x"\nwhen.automation = [\n  "auto_reply",\n  "bounced",\n]\nthen.reply = false\n',
        5,
        "when.automation",
        "unknown automation 'bounced'; did you mean 'bounce'?",
    ),
    (
        "unknown mailbox, with a suggestion",
        '[[rule]]\nname = "x"\nwhen.mailbox = "inspections"\nthen.queue = "insp"\n',
        3,
        "when.mailbox",
        "unknown mailbox 'inspections'; did you mean 'inspection'?",
    ),
    (
        "ignore together with a reply",
        '[[rule]]\nname = "x"\nwhen.intent = "spam"\nthen.ignore = "spam"\nthen.reply = "general_question"\n',
        5,
        "then.reply",
        "an ignored or quarantined mail is never answered",
    ),
    (
        "ignore together with quarantine",
        '[[rule]]\nname = "x"\nwhen.intent = "spam"\nthen.ignore = "spam"\nthen.quarantine = "odd"\n',
        5,
        "then.quarantine",
        "a rule can ignore a mail or quarantine it, not both",
    ),
    (
        "ignore together with continue",
        '[[rule]]\nname = "x"\nwhen.intent = "spam"\nthen.ignore = "spam"\ncontinue = true\n',
        5,
        "continue",
        "'ignore' ends the decision, so it cannot be combined with continue = true",
    ),
    (
        "a TOML syntax error",
        GOOD_RULE + '\n[[rule]]\nname = "x\nwhen.intent = "spam"\n',
        7,
        None,
        "TOML syntax: the text is not closed with a quote before the end of the line",
    ),
    (
        "a key set twice",
        '[[rule]]\nname = "x"\nname = "y"\nthen.category = "c"\n',
        3,
        None,
        "TOML syntax: this key is set twice",
    ),
    (
        "an empty rule set",
        "# nothing here yet\n",
        1,
        None,
        "there are no rules; add at least one [[rule]] section",
    ),
    (
        "[rule] instead of [[rule]]",
        '# rules\n[rule]\nname = "x"\nthen.category = "c"\n',
        2,
        "rule",
        "each rule starts with [[rule]] (two square brackets), not [rule]",
    ),
    (
        "a condition written outside when",
        '[[rule]]\nname = "x"\nintent = "spam"\nthen.category = "spam"\n',
        3,
        "intent",
        "'intent' is a condition: put it under when (when.intent = …)",
    ),
    (
        "an action written under when",
        '[[rule]]\nname = "x"\nwhen.category = "spam"\nthen.category = "spam"\n',
        3,
        "when.category",
        "'category' is an action: put it under then (then.category = …)",
    ),
    (
        "unknown priority, with a suggestion",
        '[[rule]]\nname = "x"\nwhen.intent = "spam"\nthen.priority = "hihg"\n',
        4,
        "then.priority",
        "unknown priority 'hihg'; did you mean 'high'?",
    ),
    (
        "a word list that is not defined",
        '[word_lists]\nlegal = ["lawyer"]\n\n[[rule]]\nname = "x"\nwhen.word_list = "legl"\n'
        'then.priority = "high"\n',
        6,
        "when.word_list",
        "no word list named 'legl'; did you mean 'legal'?",
    ),
    (
        "reply = true instead of a template name",
        '[[rule]]\nname = "x"\nwhen.intent = "spam"\nthen.reply = true\n',
        4,
        "then.reply",
        "give the name of a reply template, or false for no reply",
    ),
    (
        "a category that is not a plain name",
        '[[rule]]\nname = "x"\nwhen.intent = "spam"\nthen.category = "Report Dispute"\n',
        4,
        "then.category",
        "(like report_dispute)",
    ),
    (
        "a backslash in a double-quoted pattern",
        '[[rule]]\nname = "x"\nwhen.body_matches = "refund\\s+now"\nthen.queue = "finance"\n',
        3,
        None,
        'TOML syntax: a backslash inside "…"; write patterns in single quotes',
    ),
    (
        "a rule name with spaces",
        '[[rule]]\nname = "Refunds to finance"\nthen.queue = "finance"\n',
        2,
        "name",
        "use letters, digits, - and _ in rule names, without spaces (like refunds-to-finance)",
    ),
    (
        "a misspelt top-level section",
        '[word_list]\nlegal = ["lawyer"]\n\n' + GOOD_RULE,
        1,
        "word_list",
        "unknown section 'word_list'; did you mean 'word_lists'?",
    ),
    (
        "a misspelt key of a rule",
        '[[rule]]\nname = "x"\nwhen.intent = "spam"\nthen.category = "c"\ncontinues = true\n',
        5,
        "continues",
        "unknown key 'continues'; did you mean 'continue'?",
    ),
]


@pytest.mark.parametrize(
    ("mistake", "text", "line", "key", "message"), MISTAKES, ids=[m[0] for m in MISTAKES]
)
def test_mistake_is_reported_with_file_line_and_key(
    mistake: str, text: str, line: int, key: str | None, message: str, rules: Callable[..., RuleSet]
) -> None:
    error = only_error(rules, text)
    assert (error.path, error.line, error.key) == ("rules/routing.toml", line, key), str(error)
    assert message in error.message, str(error)


def test_an_error_reads_as_file_line_key_message(rules: Callable[..., RuleSet]) -> None:
    error = only_error(rules, '[[rule]]\nname = "x"\nwhen.intnet = "spam"\nthen.category = "spam"\n')
    assert str(error) == (
        "rules/routing.toml:3: when.intnet: rule 'x': unknown condition 'intnet'; did you mean 'intent'?"
    )


def test_every_mistake_in_a_file_is_reported_at_once(rules: Callable[..., RuleSet]) -> None:
    text = (
        '[[rule]]\nname = "a"\nwhen.intnet = "spam"\nthen.category = "spam"\n\n'
        '[[rule]]\nname = "b"\nwhen.intent = "spam"\nthen.reply = "nope"\n'
    )
    assert [(e.line, e.key) for e in errors_of(rules, text)] == [(3, "when.intnet"), (9, "then.reply")]


def test_without_known_templates_any_template_name_is_accepted(rules: Callable[..., RuleSet]) -> None:
    ruleset = rules('[[rule]]\nname = "x"\nthen.reply = "brand_new"\n', known_templates=None)
    assert ruleset.rules[0].actions.reply == "brand_new"


def test_the_version_is_the_content_hash_of_the_files(rules: Callable[..., RuleSet]) -> None:
    first, same = rules(GOOD_RULE), rules(GOOD_RULE)
    changed = rules(GOOD_RULE.replace('category = "cancellation"', 'category = "cancel"'))
    assert first.version == same.version and len(first.version) == 64
    assert changed.version != first.version


# -- files on disk --------------------------------------------------------------------------------


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_errors(rules_dir: Path) -> list[RuleFileError]:
    with pytest.raises(RuleSetErrors) as raised:
        load_ruleset(rules_dir, known_templates=TEMPLATES, known_mailboxes=MAILBOXES)
    return list(raised.value.errors)


def test_a_missing_routing_file_is_named(tmp_path: Path) -> None:
    (error,) = load_errors(tmp_path)
    assert str(error) == f"{tmp_path}/routing.toml: the main routing file is missing"


def test_a_file_that_is_not_utf8_is_reported_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "routing.toml", GOOD_RULE.encode() + b"\n# caf\xe9 rule\n")
    (error,) = load_errors(tmp_path)
    assert (error.path, error.line) == (str(tmp_path / "routing.toml"), 6)
    assert "not UTF-8" in error.message


def test_extra_routing_files_follow_the_main_one_and_errors_name_them(tmp_path: Path) -> None:
    write(tmp_path, "routing.toml", GOOD_RULE)
    write(
        tmp_path,
        "routing-vip.toml",
        '[[rule]]\nname = "vip"\nwhen.sender_domain = "big.example"\nthen.priority = "high"\n',
    )
    write(tmp_path, "orders.toml", "this is not a routing file = at all")
    ruleset = load_ruleset(tmp_path, known_templates=TEMPLATES)
    assert [(r.name, Path(r.source).name, r.line) for r in ruleset.rules] == [
        ("ok", "routing.toml", 1),
        ("vip", "routing-vip.toml", 1),
    ]
    write(tmp_path, "routing-vip.toml", '[[rule]]\nname = "ok"\nthen.priority = "high"\n')
    (error,) = load_errors(tmp_path)
    assert (Path(error.path).name, error.line, error.key) == ("routing-vip.toml", 2, "name")
    assert f"(at {tmp_path}/routing.toml:2)" in error.message


def test_mistakes_in_rule_tests_are_reported_with_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "tests/cancel.toml",
        (
            'mailbox = "pm"\n\n[[test]]\nname = "cancel"\nsubject = "cancel please"\n'
            'expect.categroy = "cancellation"\n\n[[test]]\nname = "no mail"\nexpect.reply = true\n'
            '\n[[test]]\nname = "gone"\neml = "tests/mail/none.eml"\n'
            'expect.template = "cancellation_recieved"\n'
        ),
    )
    with pytest.raises(RuleSetErrors) as raised:
        load_rule_tests(tmp_path, known_templates=TEMPLATES, known_mailboxes=MAILBOXES)
    assert [str(e) for e in raised.value.errors] == [
        f"{tmp_path}/tests/cancel.toml:6: expect.categroy: test 'cancel': unknown expectation 'categroy'; "
        "did you mean 'category'?",
        f"{tmp_path}/tests/cancel.toml:8: eml: test 'no mail': give a mail: eml = \"tests/mail/….eml\", "
        "or from/subject/body",
        f"{tmp_path}/tests/cancel.toml:15: expect.template: test 'gone': no reply template named "
        "'cancellation_recieved'; did you mean 'cancellation_received'?",
    ]


def test_the_shipped_rules_are_valid() -> None:
    from mailbot.adapters.templates import TemplateStore

    ruleset = load_ruleset(
        REPO / "rules", known_templates=TemplateStore(REPO / "templates").names(), known_mailboxes=MAILBOXES
    )
    assert len(ruleset.rules) >= 10

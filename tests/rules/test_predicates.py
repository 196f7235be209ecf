"""Every condition a rule may use: when it holds, when it does not, and the reason it gives either way."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from typing import Any

import pytest

from mailbot.core.authentication import auth_verdict
from mailbot.core.rules.engine import RuleFacts
from mailbot.core.rules.predicates import PREDICATES, ValueProblem, Vocabulary
from mailbot.core.types import Attachment, AutomationKind, Intent

VOCABULARY = Vocabulary(mailboxes=frozenset({"pm", "inspection"}), word_lists={"legal": ("lawyer", "律师")})

# name: (value, facts that hold, facts that do not, words in the reason for a hit, for a miss)
CASES: dict[str, tuple[Any, dict[str, Any], dict[str, Any], str, str]] = {
    "mailbox": (
        "inspection",
        {"mailbox": "inspection"},
        {"mailbox": "pm"},
        "mailbox is inspection",
        "mailbox is pm, not inspection",
    ),
    "sender": (
        ["*@erp.example.com", "noreply@*"],
        {"sender": "noreply@shop.example"},
        {"sender": "ana@erp.example"},
        "matches noreply@*",
        "is not one of",
    ),
    "sender_domain": (
        "supplier.example.com",
        {"sender": "li@sales.supplier.example.com"},
        {"sender": "li@notsupplier.example.com"},
        "within supplier.example.com",
        "notsupplier.example.com is not supplier.example.com",
    ),
    "subject_matches": (
        r"^urgent\b",
        {"subject": "URGENT: cancel"},
        {"subject": "not urgent"},
        'at "URGENT"',
        "does not match",
    ),
    "body_matches": (
        r"refund\s+to\s+my\s+card",
        {"body": "Please refund  to my card."},
        {"body": "Please refund by bank."},
        "text matches",
        "does not match",
    ),
    "subject_contains": (
        ["cancel", "取消"],
        {"subject": "请取消服务"},
        {"subject": "cancellation of order"},
        'contains "取消"',
        'none of "cancel", "取消"',
    ),
    "body_contains": (
        "legal action",
        {"body": "we will take LEGAL\nACTION"},
        {"body": "legal actions"},
        "contains",
        "contains none of",
    ),
    "word_list": (
        "legal",
        {"body": "my lawyer says"},
        {"body": "my lawyers say"},
        'contains "lawyer" from word list legal',
        "no word from word list legal",
    ),
    "has_order_number": (
        True,
        {"orders": ("1625349876123450",)},
        {"orders": ()},
        "has an order number (1625349876123450)",
        "has no order number",
    ),
    "language": (["es", "pt"], {"language": "pt"}, {"language": "en"}, "language is pt", "not one of es, pt"),
    "automation": (
        ["auto_reply", "bounce"],
        {"automation": AutomationKind.BOUNCE},
        {"automation": AutomationKind.HUMAN},
        "automation is bounce",
        "automation is human",
    ),
    "has_attachment": (
        True,
        {"attachments": (Attachment("report.pdf", "application/pdf", 2000),)},
        {"attachments": (Attachment("logo.png", "image/png", 900, inline=True),)},
        "has an attachment (report.pdf)",
        "has no attachment",
    ),
    "header": (
        {"X-Mailer": "^SAP", "List-Id": ""},
        {"headers": (("X-Mailer", "SAP NetWeaver"), ("List-Id", "<l>"))},
        {"headers": (("X-Mailer", "SAP NetWeaver"),)},
        "X-Mailer header matches",
        "no List-Id header",
    ),
    "auth": (
        "fail",
        {"headers": (("Authentication-Results", "mx.example; dmarc=fail header.from=x.example"),)},
        {"headers": (("Authentication-Results", "mx.example; dkim=pass header.d=x.example"),)},
        "authentication is fail (dmarc=fail)",
        "authentication is pass, not fail (dkim=pass)",
    ),
    "intent": (
        ["cancellation", "report_dispute"],
        {"intent": Intent.REPORT_DISPUTE},
        {"intent": Intent.STATUS_INQUIRY},
        "intent is report_dispute",
        "intent is status_inquiry, not one of",
    ),
    "joins_case": (
        True,
        {"case": "K7Q2XZ"},
        {"case": None},
        "joins an existing case (case K7Q2XZ",
        "joins no existing case",
    ),
}


def test_every_registered_predicate_is_tested_here() -> None:
    assert set(CASES) == set(PREDICATES.names())


def test_every_predicate_has_a_one_line_description_and_an_example_naming_it() -> None:
    for predicate in PREDICATES:
        assert predicate.doc and "\n" not in predicate.doc and predicate.doc.endswith("."), predicate.name
        assert predicate.example.startswith(predicate.name + " = "), predicate.name


def test_every_example_is_valid_toml_with_a_value_the_predicate_accepts() -> None:
    vocabulary = Vocabulary(mailboxes=VOCABULARY.mailboxes, word_lists={"legal_threats": ("lawyer",)})
    for predicate in PREDICATES:
        value = tomllib.loads(predicate.example)[predicate.name]
        predicate.build(value, vocabulary)


@pytest.mark.parametrize("name", sorted(CASES))
def test_predicate_holds_and_says_why(name: str, facts: Callable[..., RuleFacts]) -> None:
    value, holds, _, said, _ = CASES[name]
    predicate = PREDICATES.get(name)
    assert predicate is not None
    verdict = predicate.build(value, VOCABULARY)(facts(**holds))
    assert verdict.hit, verdict.why
    assert said in verdict.why


@pytest.mark.parametrize("name", sorted(CASES))
def test_predicate_misses_and_says_why(name: str, facts: Callable[..., RuleFacts]) -> None:
    value, _, fails, _, said = CASES[name]
    predicate = PREDICATES.get(name)
    assert predicate is not None
    verdict = predicate.build(value, VOCABULARY)(facts(**fails))
    assert not verdict.hit, verdict.why
    assert said in verdict.why


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("mailbox", "pmm", "unknown mailbox 'pmm'; did you mean 'pm'?"),
        ("sender", "erp.example.com", "is not an address"),
        ("sender_domain", "ana@erp.example.com", "is not a domain"),
        ("subject_matches", "(urgent", "not a valid pattern: missing ), unterminated subpattern"),
        ("body_matches", 3, "expected a pattern (text), got a number (3)"),
        ("subject_contains", [], "the list is empty"),
        ("body_contains", ["ok", ""], "empty text"),
        ("word_list", "legl", "no word list named 'legl'; did you mean 'legal'?"),
        ("has_order_number", "yes", "expected true or false, got text ('yes')"),
        ("language", "english", "'english' is not a language code"),
        ("automation", "autoreply", "unknown automation 'autoreply'; did you mean 'auto_reply'?"),
        ("has_attachment", 1, "expected true or false, got a number (1)"),
        ("header", "List-Id", "expected a table of header name = pattern"),
        ("auth", "passed", "unknown authentication 'passed'; did you mean 'pass'?"),
        ("intent", "cancelation", "unknown intent 'cancelation'; did you mean 'cancellation'?"),
        ("joins_case", "true", "expected true or false"),
    ],
)
def test_predicate_refuses_a_wrong_value_with_a_reason(name: str, value: Any, message: str) -> None:
    predicate = PREDICATES.get(name)
    assert predicate is not None
    with pytest.raises(ValueProblem) as raised:
        predicate.build(value, VOCABULARY)
    assert message in raised.value.message


def test_without_known_mailboxes_any_mailbox_name_is_accepted(facts: Callable[..., RuleFacts]) -> None:
    predicate = PREDICATES.get("mailbox")
    assert predicate is not None
    assert predicate.build("sales", Vocabulary())(facts(mailbox="sales")).hit


def test_phrases_match_whole_words_only(facts: Callable[..., RuleFacts]) -> None:
    predicate = PREDICATES.get("subject_contains")
    assert predicate is not None
    check = predicate.build("cancel", VOCABULARY)
    assert check(facts(subject="Please CANCEL it")).hit
    assert not check(facts(subject="cancellation")).hit


def test_body_conditions_read_forwarded_text_but_not_quoted_history(facts: Callable[..., RuleFacts]) -> None:
    predicate = PREDICATES.get("body_contains")
    assert predicate is not None
    check = predicate.build("cancel", VOCABULARY)
    assert check(facts(body="see below", forwarded="We cancel the order.")).hit
    assert not check(facts(body="thanks", quoted="> please cancel")).hit


def test_sender_conditions_miss_when_the_mail_has_no_sender(facts: Callable[..., RuleFacts]) -> None:
    for name, value in (("sender", "*@*"), ("sender_domain", "example.com")):
        predicate = PREDICATES.get(name)
        assert predicate is not None
        verdict = predicate.build(value, VOCABULARY)(facts(sender=None))
        assert not verdict.hit and "no sender address" in verdict.why


def test_a_flag_predicate_set_to_false_holds_when_the_fact_is_absent(facts: Callable[..., RuleFacts]) -> None:
    predicate = PREDICATES.get("has_order_number")
    assert predicate is not None
    check = predicate.build(False, VOCABULARY)
    assert check(facts(orders=())).hit
    assert not check(facts(orders=("1625349876123450",))).hit


@pytest.mark.parametrize(
    ("header", "verdict"),
    [
        (None, "none"),
        ("mx.example; dmarc=pass header.from=x.example; spf=fail", "pass"),
        ("mx.example; dkim=fail; spf=softfail", "fail"),
        ("mx.example; spf=pass smtp.mailfrom=x.example", "pass"),
        ("mx.example; dmarc=none; dkim=neutral", "none"),
    ],
)
def test_authentication_verdict_prefers_dmarc_then_dkim_or_spf(
    header: str | None, verdict: str, facts: Callable[..., RuleFacts]
) -> None:
    headers = (("Authentication-Results", header),) if header else ()
    assert auth_verdict(facts(headers=headers).reading.mail)[0] == verdict


def test_only_the_topmost_authentication_results_header_counts(facts: Callable[..., RuleFacts]) -> None:
    # A forged header further down (added before our server saw the mail) must not be believed.
    headers = (
        ("Authentication-Results", "mx.example; dmarc=fail"),
        ("Authentication-Results", "evil; dmarc=pass"),
    )
    assert auth_verdict(facts(headers=headers).reading.mail)[0] == "fail"

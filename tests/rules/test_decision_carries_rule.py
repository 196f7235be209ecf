"""The Decision names the rule that decided it, and the stored summary keeps that name."""

from __future__ import annotations

from pathlib import Path

from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.rulefiles import load_ruleset
from mailbot.core.decide import decide, decision_summary
from mailbot.core.reading import read
from mailbot.core.rules.engine import DEFAULT_RULE
from mailbot.core.types import Identity
from mailbot.services.rules_replay import stored_deciding_rule

REPO = Path(__file__).resolve().parents[2]
US = Identity(
    addresses=frozenset({"ta-pm@support.example.test"}),
    message_id_domain="mailbot.example.test",
    case_tag="Case",
)


def _decide(raw: bytes, rules_dir: Path = REPO / "rules"):  # type: ignore[no-untyped-def]
    reading = read(raw, identity=US, config=load_reading_config(REPO / "rules"))
    return decide(reading, mailbox="TA-PM", ruleset=load_ruleset(rules_dir), identity=US)


def _mail(subject: str, body: str) -> bytes:
    return (
        "From: Buyer <buyer@example.com>\r\nTo: ta-pm@support.example.test\r\n"
        f"Subject: {subject}\r\nMessage-ID: <d1@example.com>\r\n"
        "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def test_a_decision_names_the_rule_that_ended_evaluation() -> None:
    decision = _decide(
        _mail("Cancel order 123456789012345", "Please cancel the inspection for order 123456789012345.")
    )
    last_hit = [
        s.rule
        for s in decision.trace
        if s.hit and s.rule != "reply guard" and not s.rule.startswith("automation: ")
    ][-1]
    assert decision.decided_by == last_hit and decision.decided_by != ""


def test_the_default_is_named_when_no_rule_decides(tmp_path: Path) -> None:
    (tmp_path / "routing.toml").write_text(
        '[[rule]]\nname = "never"\nwhen.subject_contains = ["zzzunmatched"]\nthen.category = "x"\n',
        encoding="utf-8",
    )
    decision = _decide(_mail("hello", "hello"), tmp_path)
    assert decision.decided_by == DEFAULT_RULE


def test_the_stored_summary_carries_the_deciding_rule() -> None:
    decision = _decide(
        _mail("Cancel order 123456789012345", "Please cancel the inspection for order 123456789012345.")
    )
    summary = decision_summary(decision)
    assert summary["decided_by"] == decision.decided_by
    assert stored_deciding_rule(summary) == decision.decided_by


def test_older_stored_decisions_without_the_field_are_read_from_the_trace() -> None:
    stored = {
        "trace": [{"rule": "r1", "hit": True, "why": ""}, {"rule": "reply guard", "hit": True, "why": ""}]
    }
    assert stored_deciding_rule(stored) == "r1"

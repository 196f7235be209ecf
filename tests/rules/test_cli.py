"""`mailbot rules check | explain | reference`: readable output, JSON for programs, meaningful exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailbot.cli.rules_cmd import rules as rules_cli
from mailbot.core.rules.predicates import PREDICATES
from mailbot.core.rules.schema import ACTIONS

from .conftest import REPO

TEMPLATES_DIR = str(REPO / "templates")


@pytest.fixture(autouse=True)
def away_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)


def run(*args: str) -> Result:
    return CliRunner().invoke(rules_cli, list(args))


def test_check_of_the_shipped_rules_says_ok_with_the_version() -> None:
    result = run("check", str(REPO / "rules"), "--templates-dir", TEMPLATES_DIR)
    assert result.exit_code == 0, result.output
    assert f"{REPO / 'rules' / 'routing.toml'}: " in result.output
    assert "OK: version " in result.output


def test_check_names_the_lexicons_and_a_mistake_in_one_with_file_and_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    good = run("check", str(rules), "--templates-dir", TEMPLATES_DIR)
    assert f"{rules / 'lexicons'}: 15 languages (ar de en" in good.output
    assert "orders.toml" not in good.output
    lexicon = rules / "lexicons" / "fr.toml"
    broken = lexicon.read_text(encoding="utf-8").replace('language = "fr"', 'language = "de"')
    lexicon.write_text(broken, encoding="utf-8")
    result = run("check", str(rules), "--templates-dir", TEMPLATES_DIR)
    assert result.exit_code == 1
    assert "lexicons/fr.toml:" in result.output and 'expected language = "fr"' in result.output


def test_check_lists_every_mistake_and_exits_1(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    routing = rules / "routing.toml"
    text = routing.read_text(encoding="utf-8")
    routing.write_text(
        text.replace('when.intent = "spam"', 'when.intnet = "spam"').replace(
            'then.reply = "general_question"', 'then.reply = "general_questions"'
        ),
        encoding="utf-8",
    )
    result = run("check", str(rules), "--templates-dir", TEMPLATES_DIR)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[-1] == "2 mistakes found."
    assert (
        lines[0].startswith(f"{routing}:")
        and "when.intnet: rule 'spam': unknown condition 'intnet'" in lines[0]
    )
    assert (
        "then.reply: rule 'general-question': no reply template named 'general_questions'; did you mean "
        "'general_question'?" in lines[1]
    )


def test_check_json_names_file_line_and_key(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "routing.toml").write_text(
        '[[rule]]\nname = "x"\nthen.categroy = "c"\n', encoding="utf-8"
    )
    result = run("check", str(tmp_path / "r"), "--templates-dir", TEMPLATES_DIR, "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False
    assert data["errors"] == [
        {
            "file": str(tmp_path / "r" / "routing.toml"),
            "line": 3,
            "key": "then.categroy",
            "message": "rule 'x': unknown action 'categroy'; did you mean 'category'?",
        }
    ]


def test_explain_shows_reading_orders_trace_and_decision() -> None:
    mail = REPO / "rules" / "tests" / "mail" / "cancellation-with-order.eml"
    result = run(
        "explain",
        str(mail),
        "--rules-dir",
        str(REPO / "rules"),
        "--templates-dir",
        TEMPLATES_DIR,
        "--mailbox",
        "pm",
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Mail:      'Cancel production monitoring for order 1625 3498 7612 3450' from Maria Lopez" in out
    assert "Orders:    1625349876123450 (score" in out
    assert "  miss  spam: intent is cancellation, not spam" in out
    assert (
        "  hit   cancellation: intent is cancellation → category cancellation, priority high, "
        "reply cancellation_received" in out
    )
    assert "Reply:     cancellation_received" in out


def test_explain_json_carries_the_decision_trace_and_order_reasoning() -> None:
    mail = REPO / "rules" / "tests" / "mail" / "report-dispute.eml"
    result = run(
        "explain",
        str(mail),
        "--rules-dir",
        str(REPO / "rules"),
        "--templates-dir",
        TEMPLATES_DIR,
        "--mailbox",
        "inspection",
        "--json",
    )
    data = json.loads(result.output)
    assert data["category"] == "report_dispute" and data["decided_by"] == "report-dispute"
    assert data["orders"][0]["number"] == "77137099514548672" and data["orders"][0]["reasons"]
    assert any(step["rule"] == "report-dispute" and step["hit"] for step in data["trace"])
    assert len(data["ruleset_version"]) == 64


def test_explain_with_a_case_shows_the_mail_joining_it() -> None:
    mail = REPO / "rules" / "tests" / "mail" / "out-of-office.eml"
    result = run(
        "explain",
        str(mail),
        "--rules-dir",
        str(REPO / "rules"),
        "--templates-dir",
        TEMPLATES_DIR,
        "--mailbox",
        "pm",
        "--case",
        "[Case #k7q2xz]",
    )
    assert "Thread:    case K7Q2XZ" in result.output
    assert "decided by automatic-reply-on-a-case" in result.output
    assert "Reply:     none" in result.output


def test_reference_lists_every_condition_and_action() -> None:
    result = run("reference")
    assert result.exit_code == 0
    for name in (*PREDICATES.names(), *ACTIONS):
        assert f"  {name} " in result.output, name


def test_the_guide_documents_every_condition_and_action() -> None:
    guide = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    for name in (*PREDICATES.names(), *ACTIONS):
        assert f"`{name}`" in guide, name

"""`mailbot rules test`: the shipped expectations pass, and a broken expectation fails loudly and clearly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailbot.cli.rules_cmd import rules as rules_cli

from .conftest import REPO


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    # Run away from any config.toml so the command uses only the folders it is given.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    return CliRunner()


def rules_test(runner: CliRunner, rules_dir: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(
        rules_cli, ["test", "--rules-dir", str(rules_dir), "--templates-dir", str(REPO / "templates"), *extra]
    )
    return result.exit_code, result.output


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(REPO / "rules", target)
    return target


def test_the_shipped_rule_tests_pass(runner: CliRunner) -> None:
    code, output = rules_test(runner, REPO / "rules")
    assert code == 0, output
    assert "0 failed" in output and "FAIL" not in output


def test_every_shipped_test_mail_is_used_by_a_test() -> None:
    texts = "".join(p.read_text(encoding="utf-8") for p in (REPO / "rules" / "tests").glob("*.toml"))
    for mail in (REPO / "rules" / "tests" / "mail").glob("*.eml"):
        assert f"tests/mail/{mail.name}" in texts, mail.name


def test_a_rule_change_that_breaks_an_expectation_fails_with_expected_and_actual(
    runner: CliRunner, rules_copy: Path
) -> None:
    routing = rules_copy / "routing.toml"
    text = routing.read_text(encoding="utf-8")
    routing.write_text(
        text.replace('then.reply = "cancellation_received"', 'then.reply = "acknowledgement"'),
        encoding="utf-8",
    )
    code, output = rules_test(runner, rules_copy)
    assert code == 1
    assert "FAIL  a cancellation with an order number gets the cancellation reply" in output
    assert "template: expected cancellation_received, got acknowledgement" in output
    assert "hit   cancellation: intent is cancellation → category cancellation" in output


def test_the_json_report_lists_each_test_with_its_decision(runner: CliRunner) -> None:
    code, output = rules_test(runner, REPO / "rules", "--json")
    report = json.loads(output)
    assert code == 0 and report["ok"] and report["failed"] == 0
    first = report["tests"][0]
    assert first["passed"] and first["decision"]["category"] == "cancellation"
    assert first["where"].endswith("buyer-requests.toml:8")


def test_an_expectation_naming_an_unknown_rule_is_a_file_error(runner: CliRunner, rules_copy: Path) -> None:
    tests = rules_copy / "tests" / "machine-mail.toml"
    tests.write_text(
        tests.read_text(encoding="utf-8").replace(
            'expect.rule = "automatic-reply-elsewhere"', 'expect.rule = "automatic-reply-elswhere"'
        ),
        encoding="utf-8",
    )
    code, output = rules_test(runner, rules_copy)
    assert code == 1
    assert (
        "machine-mail.toml:14: expect.rule: test 'an out-of-office reply that belongs to no case is only "
        "recorded': no rule named 'automatic-reply-elswhere'; did you mean 'automatic-reply-elsewhere'?"
        in output
    )


def test_a_missing_test_mail_is_reported_with_the_test_line(runner: CliRunner, rules_copy: Path) -> None:
    (rules_copy / "tests" / "mail" / "bounce.eml").unlink()
    code, output = rules_test(runner, rules_copy)
    assert code == 1
    assert (
        "machine-mail.toml:21: eml: test 'a bounce of one of our replies joins that case without an answer'"
        in output
    )

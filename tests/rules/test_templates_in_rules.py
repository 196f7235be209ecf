"""Reply templates are part of the rule set: `rules check` names a broken template's file and line, the
worker will not start on one, hot reload refuses one and keeps the last good templates, and the rule-set
version (recorded with every decision) changes with the templates."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fixtures.configs import maildir_config, make_maildirs

from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.templates import sample_context
from mailbot.cli import main as mailbot_cli
from mailbot.cli.rules_cmd import rules as rules_cli
from mailbot.core.rules.schema import RuleSetErrors
from mailbot.core.types import Identity
from mailbot.services.rules_admin import RulesContext, RulesStatusFile, RulesWatcher, replay_corpus
from mailbot.services.template_check import version_on_disk

from .conftest import MAILBOXES, REPO

ACK = "en/acknowledgement.txt.j2"
@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A copy of the shipped templates, for a test to break."""
    return Path(shutil.copytree(REPO / "templates", tmp_path / "templates"))


def edit(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def check(templates: Path) -> Result:
    return CliRunner().invoke(rules_cli, ["check", str(REPO / "rules"), "--templates-dir", str(templates)])


def watcher(templates: Path) -> RulesWatcher:
    return RulesWatcher(REPO / "rules", templates_dir=templates, known_mailboxes=MAILBOXES, templates_every=0)


def acknowledgement(rules: RulesWatcher) -> str:
    return rules.renderer.render("acknowledgement", "en", sample_context()).text


# -- rules check ----------------------------------------------------------------------------------


def test_rules_check_counts_the_templates_and_says_ok(templates: Path) -> None:
    result = check(templates)
    assert result.exit_code == 0, result.output
    assert (
        f"{templates}: 209 template files, 15 languages (ar de en es fr id it ja ko pl pt ru tr vi zh)"
        in result.output
    )


def test_rules_check_fails_with_file_and_line_for_a_syntax_error(templates: Path) -> None:
    edit(templates / "fr/status_inquiry.txt.j2", "Bonjour,\n{% if orders %}\ncommande\n")
    result = check(templates)
    assert result.exit_code == 1
    assert (
        f"{templates}/fr/status_inquiry.txt.j2:3: syntax error: Unexpected end of template" in result.output
    )


def test_rules_check_fails_with_file_and_line_for_an_unknown_variable(templates: Path) -> None:
    edit(templates / ACK, "Dear {{ buyer_name }},\n\ncase {{ case_number }}\n")
    result = check(templates)
    assert result.exit_code == 1
    assert f"{templates}/{ACK}:3: unknown variable 'case_number'; did you mean 'case_ref'?" in result.output


def test_rules_check_fails_with_file_and_line_for_a_limit_breach(templates: Path) -> None:
    edit(templates / ACK, "Dear {{ buyer_name }},\n{% for i in range(10**6) %}.{% endfor %}\n")
    result = check(templates)
    assert result.exit_code == 1
    assert f"{templates}/{ACK}:2: limit: range() of 1000000 items, over the limit of 10000" in result.output


def test_rules_check_fails_when_a_rule_names_a_template_that_is_gone(templates: Path) -> None:
    (templates / "en/payment_question.txt.j2").unlink()
    result = check(templates)
    assert result.exit_code == 1
    assert "payment_question" in result.output


# -- the worker -----------------------------------------------------------------------------------


def test_the_worker_refuses_to_start_on_a_broken_template(tmp_path: Path, templates: Path) -> None:
    edit(templates / ACK, "Dear {{ buyer_name }},\n{% endif %}\n")
    config = tmp_path / "config.toml"
    database_url = f"sqlite:///{tmp_path / 'mailbot.db'}"
    config.write_text(maildir_config(database_url, rules=REPO / "rules"), encoding="utf-8")
    make_maildirs(tmp_path)
    result = CliRunner().invoke(mailbot_cli, ["--config", str(config), "poll", "--once"])
    assert result.exit_code != 0
    assert f"{templates}/{ACK}:2: syntax error: Encountered unknown tag 'endif'." in result.output
    assert "Traceback" not in result.output
    assert "unknown mailbox" not in result.output  # the template is the only problem


def test_a_broken_template_at_start_up_raises_with_file_and_line(templates: Path) -> None:
    edit(templates / ACK, "{{ case_ref|shout }}\n")
    with pytest.raises(RuleSetErrors, match=rf"{ACK}:1: syntax error: No filter named 'shout'"):
        watcher(templates)


def test_a_missing_templates_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(RuleSetErrors, match=f"{tmp_path / 'nope'}: the templates folder does not exist"):
        watcher(tmp_path / "nope")


# -- hot reload -----------------------------------------------------------------------------------


def test_a_valid_template_edit_is_used_and_is_a_new_version(templates: Path) -> None:
    rules = watcher(templates)
    before = rules.current()
    edit(templates / ACK, "Hello {{ buyer_name }}, case {{ case_ref }}.\n")
    after = rules.current()
    assert after.version != before.version
    assert acknowledgement(rules) == "Hello Ana Lima, case K7Q2XZ.\n"
    assert after.file_texts()["templates/en/acknowledgement.txt.j2"].startswith("Hello {{ buyer_name }}")


def test_a_broken_template_edit_is_refused_and_the_last_good_templates_stay(
    templates: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = watcher(templates)
    good = rules.current()
    text = acknowledgement(rules)
    edit(templates / ACK, "Dear {{ buyer_name }},\n{% if orders %}\n")
    with caplog.at_level(logging.ERROR, logger="mailbot.rules"):
        assert rules.current() is good
        assert rules.current() is good
    assert acknowledgement(rules) == text
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert f"still using version {good.short_version}" in errors[0].getMessage()
    assert f"{ACK}:2: syntax error" in errors[0].getMessage()
    assert "\n" not in errors[0].getMessage()  # one line
    status = rules.status()
    assert not status.ok and status.error is not None and f"{ACK}:2: syntax error" in status.error


def test_a_template_over_a_limit_is_refused_like_a_syntax_error(templates: Path) -> None:
    rules = watcher(templates)
    good = rules.current()
    edit(templates / ACK, "{{ 'x'|center(10**9) }}\n")
    assert rules.current() is good
    assert "limit: the center filter would build" in (rules.status().error or "")


def test_fixing_the_template_puts_the_new_set_in_charge(templates: Path) -> None:
    rules = watcher(templates)
    edit(templates / ACK, "{% if %}\n")
    rules.current()
    edit(templates / ACK, "Fixed {{ case_ref }}\n")
    rules.current()
    assert rules.status().ok
    assert acknowledgement(rules) == "Fixed K7Q2XZ\n"


def test_templates_in_two_languages_with_the_same_name_are_kept_apart(templates: Path) -> None:
    texts = watcher(templates).current().file_texts()
    assert texts["templates/en/acknowledgement.txt.j2"] != texts["templates/fr/acknowledgement.txt.j2"]


def test_the_status_file_lets_rules_status_compare_the_version_on_disk(
    tmp_path: Path, templates: Path
) -> None:
    status_file = RulesStatusFile.in_data_dir(tmp_path / "var")
    rules = RulesWatcher(
        REPO / "rules", templates_dir=templates, on_change=status_file.write, templates_every=0
    )
    status = status_file.read()
    assert status is not None and status.templates_dir == str(templates)
    assert version_on_disk(REPO / "rules", templates) == status.version == rules.current().version
    edit(templates / ACK, "Changed {{ case_ref }}\n")
    assert version_on_disk(REPO / "rules", templates) != status.version


def test_a_replay_shows_the_versions_the_worker_records(tmp_path: Path, templates: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(REPO / "rules" / "tests" / "mail" / "cancellation-with-order.eml", corpus)
    ctx = RulesContext(
        rules_dir=REPO / "rules",
        identity=Identity(addresses=frozenset(), message_id_domain="mailbot.example.test", case_tag="Case"),
        reading_config=load_reading_config(REPO / "rules"),
        templates_dir=templates,
        known_mailboxes=MAILBOXES,
    )
    report = replay_corpus(corpus, ctx, draft_dir=REPO / "rules", mailbox="pm")
    assert report.old_version == report.new_version == watcher(templates).current().version

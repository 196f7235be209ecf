"""Replay: deciding a corpus again under a draft rule set reports exactly what the change would do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.rulefiles import corpus_messages
from mailbot.cli.rules_cmd import rules as rules_cli
from mailbot.core.types import Identity
from mailbot.services.rules_admin import RulesContext, replay_corpus

from .conftest import MAILBOXES, REPO, TEMPLATES

CORPUS = REPO / "rules" / "tests" / "mail"
US = Identity(
    addresses=frozenset({"ta-pm@support.example.test", "ta-inspection@support.example.test"}),
    message_id_domain="mailbot.example.test",
)


@pytest.fixture
def draft(tmp_path: Path) -> Path:
    """The shipped rules with one change: cancellations get their own category and a plain acknowledgement."""
    target = tmp_path / "draft"
    shutil.copytree(REPO / "rules", target)
    routing = target / "routing.toml"
    text = routing.read_text(encoding="utf-8")
    text = text.replace(
        'then.category = "cancellation"\nthen.priority = "high"\nthen.reply = "cancellation_received"',
        'then.category = "service_cancellation"\nthen.priority = "high"\nthen.reply = "acknowledgement"',
    )
    routing.write_text(text, encoding="utf-8")
    return target


def context() -> RulesContext:
    return RulesContext(
        rules_dir=REPO / "rules",
        identity=US,
        reading_config=load_reading_config(REPO / "rules"),
        known_templates=TEMPLATES,
        known_mailboxes=MAILBOXES,
        mailbox_addresses={
            "ta-pm@support.example.test": "pm",
            "ta-inspection@support.example.test": "inspection",
        },
    )


def test_replay_reports_exactly_the_messages_the_change_moves(draft: Path) -> None:
    report = replay_corpus(CORPUS, context(), draft_dir=draft)
    changes = {
        row.source: {f: (getattr(row.old, f), getattr(row.new, f)) for f in row.changed_fields}
        for row in report.changed
    }
    assert changes == {
        "cancellation-with-order.eml": {
            "category": ("cancellation", "service_cancellation"),
            "template": ("cancellation_received", "acknowledgement"),
        },
        # The reply asking for the order number comes from an earlier rule, so it stays.
        "cancellation-no-order.eml": {"category": ("cancellation", "service_cancellation")},
        # Machine mail: filed differently, still never answered.
        "erp-cancellation-notice.eml": {"category": ("cancellation", "service_cancellation")},
    }
    assert report.counts() == {
        "messages": len(corpus_messages(CORPUS)),
        "changed": 3,
        "unreadable": 0,
        "skipped": 0,
        "category changed": 3,
        "template changed": 1,
    }
    assert report.transitions() == [("cancellation", "service_cancellation", 3)]


def test_replaying_the_same_rules_changes_nothing() -> None:
    report = replay_corpus(CORPUS, context(), draft_dir=REPO / "rules")
    assert report.old_version == report.new_version
    assert report.changed == () and report.counts()["changed"] == 0


def test_the_replay_command_prints_counts_and_each_change(
    draft: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    args = [
        "replay",
        "--rules",
        str(draft),
        "--corpus",
        str(CORPUS),
        "--rules-dir",
        str(REPO / "rules"),
        "--templates-dir",
        str(REPO / "templates"),
        "--mailbox",
        "pm",
    ]
    result = CliRunner().invoke(rules_cli, args)
    assert result.exit_code == 0, result.output
    assert "3 of 8 would be decided differently." in result.output
    assert "  cancellation -> service_cancellation: 3" in result.output
    assert "    template  cancellation_received -> acknowledgement" in result.output
    data = json.loads(CliRunner().invoke(rules_cli, [*args, "--json"]).output)
    assert data["counts"]["changed"] == 3
    assert {row["source"] for row in data["changed"]} == {
        "cancellation-with-order.eml",
        "cancellation-no-order.eml",
        "erp-cancellation-notice.eml",
    }
    assert data["changed"][0]["new"]["reply"] is True


def test_a_broken_draft_is_refused_with_its_errors(
    draft: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    routing = draft / "routing.toml"
    routing.write_text(
        routing.read_text(encoding="utf-8").replace('when.intent = "spam"', 'when.intent = "spma"'),
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        rules_cli,
        [
            "replay",
            "--rules",
            str(draft),
            "--corpus",
            str(CORPUS),
            "--rules-dir",
            str(REPO / "rules"),
            "--templates-dir",
            str(REPO / "templates"),
        ],
    )
    assert result.exit_code == 1
    assert "unknown intent 'spma'; did you mean 'spam'?" in result.output

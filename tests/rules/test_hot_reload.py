"""Hot reload: a valid change to the rule files is used at once; an invalid one is refused, logged and shown
in health, and the last good rules stay in charge."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailbot.core.rules.schema import RuleSetErrors
from mailbot.services.rules_admin import RulesWatcher

from .conftest import MAILBOXES, REPO, TEMPLATES

V1 = '[[rule]]\nname = "cancellation"\nwhen.intent = "cancellation"\nthen.category = "cancellation"\n'
V2 = V1 + '\n[[rule]]\nname = "spam"\nwhen.intent = "spam"\nthen.ignore = "spam"\n'
BROKEN = V1 + '\n[[rule]]\nname = "spam"\nwhen.intnet = "spam"\nthen.ignore = "spam"\n'


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=5)
        return self.now


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "routing.toml").write_text(V1, encoding="utf-8")
    return tmp_path


def watcher(rules_dir: Path, **kwargs: object) -> RulesWatcher:
    kwargs.setdefault("known_templates", TEMPLATES)
    return RulesWatcher(rules_dir, known_mailboxes=MAILBOXES, clock=Clock(), **kwargs)  # type: ignore[arg-type]


def test_a_valid_change_is_used_without_a_restart(rules_dir: Path) -> None:
    rules = watcher(rules_dir)
    before = rules.current()
    (rules_dir / "routing.toml").write_text(V2, encoding="utf-8")
    after = rules.current()
    assert [r.name for r in after.rules] == ["cancellation", "spam"]
    assert after.version != before.version
    assert rules.status().ok


def test_an_unchanged_file_keeps_the_same_rule_set_object(rules_dir: Path) -> None:
    rules = watcher(rules_dir)
    assert rules.current() is rules.current()


def test_an_invalid_change_is_refused_and_the_last_good_rules_stay(
    rules_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = watcher(rules_dir)
    good = rules.current()
    (rules_dir / "routing.toml").write_text(BROKEN, encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="mailbot.rules"):
        assert rules.current() is good
    assert f"still using version {good.short_version}" in caplog.text
    assert (
        "routing.toml:8: when.intnet: rule 'spam': unknown condition 'intnet'; did you mean 'intent'?"
        in caplog.text
    )


def test_a_refused_change_is_shown_in_health_until_it_is_fixed(rules_dir: Path) -> None:
    rules = watcher(rules_dir)
    (rules_dir / "routing.toml").write_text(BROKEN, encoding="utf-8")
    rules.current()
    status = rules.status()
    assert not status.ok and status.error is not None and "unknown condition 'intnet'" in status.error
    assert status.as_json()["error_since"] is not None
    (rules_dir / "routing.toml").write_text(V2, encoding="utf-8")
    assert len(rules.current().rules) == 2
    assert rules.status().ok and rules.status().error is None


def test_a_refused_change_is_logged_once_not_at_every_look(
    rules_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = watcher(rules_dir)
    (rules_dir / "routing.toml").write_text(BROKEN, encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="mailbot.rules"):
        for _ in range(3):
            rules.current()
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


def test_reverting_to_the_rules_in_charge_clears_the_error(rules_dir: Path) -> None:
    rules = watcher(rules_dir)
    (rules_dir / "routing.toml").write_text(BROKEN, encoding="utf-8")
    rules.current()
    (rules_dir / "routing.toml").write_text(V1, encoding="utf-8")
    rules.current()
    assert rules.status().ok


def test_a_deleted_routing_file_is_refused_too(rules_dir: Path) -> None:
    rules = watcher(rules_dir)
    good = rules.current()
    (rules_dir / "routing.toml").unlink()
    assert rules.current() is good
    assert "the main routing file is missing" in (rules.status().error or "")


def test_a_rule_waiting_for_a_new_template_is_taken_once_the_template_exists(rules_dir: Path) -> None:
    templates = set(TEMPLATES)
    rules = watcher(rules_dir, known_templates=lambda: frozenset(templates))
    (rules_dir / "routing.toml").write_text(V1 + 'then.reply = "cancellation_v2"\n', encoding="utf-8")
    assert rules.current().rules[0].actions.reply is None
    templates.add("cancellation_v2")
    assert rules.current().rules[0].actions.reply == "cancellation_v2"


def test_invalid_rules_at_start_up_stop_the_start(rules_dir: Path) -> None:
    (rules_dir / "routing.toml").write_text(BROKEN, encoding="utf-8")
    with pytest.raises(RuleSetErrors):
        watcher(rules_dir)


def test_every_version_keeps_the_text_of_its_files(rules_dir: Path) -> None:
    rules = watcher(rules_dir)
    assert rules.current().file_texts() == {"routing.toml": V1}


@pytest.fixture
def rules_with_lexicons(rules_dir: Path) -> Path:
    shutil.copytree(REPO / "rules" / "lexicons", rules_dir / "lexicons")
    shutil.copy(REPO / "rules" / "orders.toml", rules_dir / "orders.toml")
    shutil.copy(REPO / "rules" / "scripts.toml", rules_dir / "scripts.toml")
    return rules_dir


def test_a_lexicon_change_is_used_without_a_restart_and_is_a_new_version(rules_with_lexicons: Path) -> None:
    rules = watcher(rules_with_lexicons)
    before, reading_before = rules.current(), rules.reading()
    en = rules_with_lexicons / "lexicons" / "en.toml"
    en.write_text(
        en.read_text(encoding="utf-8").replace(
            "[intents.cancellation]\nphrases = [",
            '[intents.cancellation]\nphrases = [\n  { text = "scrap it", weight = 3 },',
        ),
        encoding="utf-8",
    )
    after = rules.current()
    assert after.version != before.version
    assert rules.reading() is not reading_before
    assert any(p.text == "scrap it" for p in rules.reading().intents.phrases)
    assert "lexicons/en.toml" in after.file_texts()


def test_an_invalid_lexicon_is_refused_and_the_last_good_reading_stays(
    rules_with_lexicons: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = watcher(rules_with_lexicons)
    good_rules, good_reading = rules.current(), rules.reading()
    en = rules_with_lexicons / "lexicons" / "en.toml"
    en.write_text(
        en.read_text(encoding="utf-8") + '\n[intents.cancellation2]\nphrases = ["x"]\n', encoding="utf-8"
    )
    with caplog.at_level(logging.ERROR, logger="mailbot.rules"):
        assert rules.current() is good_rules
        assert rules.reading() is good_reading
    assert "lexicons/en.toml" in caplog.text
    assert not rules.status().ok

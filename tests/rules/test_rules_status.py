"""Rules health across processes: the watcher tells every change of its status, the worker keeps it in a
file, and `mailbot rules status` shows the version in charge and any refused change."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailbot.cli import main
from mailbot.services.rules_admin import RulesStatus, RulesStatusFile, RulesWatcher

from .conftest import MAILBOXES, TEMPLATES

V1 = '[[rule]]\nname = "cancellation"\nwhen.intent = "cancellation"\nthen.category = "cancellation"\n'
V2 = V1 + '\n[[rule]]\nname = "spam"\nwhen.intent = "spam"\nthen.ignore = "spam"\n'
BROKEN = V1 + '\n[[rule]]\nname = "spam"\nwhen.intnet = "spam"\nthen.ignore = "spam"\n'
CONFIG = """\
data_dir = "var"
rules_dir = "rules"

[mailboxes.pm]
address = "ta-pm@support.example.test"
service = "Production Monitoring"
source = "maildir"
maildir = { path = "mail/pm" }
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "routing.toml").write_text(V1, encoding="utf-8")
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def save(root: Path, text: str) -> None:
    (root / "rules" / "routing.toml").write_text(text, encoding="utf-8")


def watcher(root: Path, told: list[RulesStatus]) -> RulesWatcher:
    return RulesWatcher(
        root / "rules",
        known_templates=TEMPLATES,
        known_mailboxes=MAILBOXES,
        clock=Clock(),
        on_change=told.append,
    )


def status_command(root: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(root / "config.toml"), "rules", "status", *args])


def test_the_watcher_tells_the_rules_it_starts_with(root: Path) -> None:
    told: list[RulesStatus] = []
    rules = watcher(root, told)
    assert told == [rules.status()]
    assert told[0].ok and told[0].rules == 1 and told[0].rules_dir == str(root / "rules")


def test_a_new_version_in_charge_is_told(root: Path) -> None:
    told: list[RulesStatus] = []
    rules = watcher(root, told)
    save(root, V2)
    new = rules.current()
    assert [s.version for s in told] == [told[0].version, new.version]
    assert told[-1].ok and told[-1].rules == 2


def test_a_refused_change_is_told_once_with_its_error_and_since_when(root: Path) -> None:
    told: list[RulesStatus] = []
    rules = watcher(root, told)
    save(root, BROKEN)
    for _ in range(3):
        rules.current()
    assert len(told) == 2
    refused = told[1]
    assert refused.version == told[0].version  # the last good rules stay in charge
    assert refused.error is not None and "unknown condition 'intnet'" in refused.error
    assert refused.error_since is not None and refused.error_since > refused.loaded_at


def test_files_back_to_the_rules_in_charge_clear_the_error_and_are_told(root: Path) -> None:
    told: list[RulesStatus] = []
    rules = watcher(root, told)
    save(root, BROKEN)
    rules.current()
    save(root, V1)
    rules.current()
    assert [s.ok for s in told] == [True, False, True]


def test_looking_again_without_a_change_tells_nothing(root: Path) -> None:
    told: list[RulesStatus] = []
    rules = watcher(root, told)
    for _ in range(3):
        rules.current()
    assert len(told) == 1


def test_a_status_that_cannot_be_recorded_does_not_stop_the_rules(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def full_disk(_status: RulesStatus) -> None:
        raise OSError(28, "No space left on device")

    rules = RulesWatcher(root / "rules", known_templates=TEMPLATES, on_change=full_disk)
    save(root, V2)
    with caplog.at_level(logging.ERROR, logger="mailbot.rules"):
        assert len(rules.current().rules) == 2
    assert "could not record the rules status" in caplog.text


def test_the_status_file_gives_back_what_was_written(root: Path) -> None:
    status_file = RulesStatusFile.in_data_dir(root / "var")
    told: list[RulesStatus] = []
    rules = watcher(root, told)
    save(root, BROKEN)
    rules.current()
    status_file.write(rules.status())
    assert status_file.read() == rules.status()
    assert status_file.path == root / "var" / "rules-status.json"


def test_the_status_command_shows_the_rules_in_charge(root: Path) -> None:
    rules = RulesWatcher(root / "rules", on_change=RulesStatusFile.in_data_dir(root / "var").write)
    result = status_command(root)
    assert result.exit_code == 0, result.output
    version = rules.current().short_version
    assert result.output.splitlines()[0].startswith(
        f"Rules in charge: version {version}, 1 rules from {root / 'rules'}, loaded "
    )
    assert "OK: no change to the rules was refused." in result.output


def test_the_status_command_shows_a_refused_change_with_its_error_and_exits_1(root: Path) -> None:
    rules = RulesWatcher(
        root / "rules", clock=Clock(), on_change=RulesStatusFile.in_data_dir(root / "var").write
    )
    save(root, BROKEN)
    rules.current()
    result = status_command(root)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[1] == (
        "REFUSED since 2026-03-02 09:02:00 UTC: the rule files were changed but are invalid, "
        f"so version {rules.current().short_version} stays in charge until they are fixed:"
    )
    assert lines[2] == (
        f"  {root / 'rules' / 'routing.toml'}:8: when.intnet: rule 'spam': unknown condition 'intnet'; "
        "did you mean 'intent'?"
    )
    data = json.loads(status_command(root, "--json").output)
    assert data["status"]["ok"] is False and data["status"]["error_since"] == "2026-03-02T09:02:00+00:00"
    assert data["files_version"] != data["status"]["version"]


def test_the_status_command_says_when_the_files_are_newer_than_the_rules_in_charge(root: Path) -> None:
    RulesWatcher(root / "rules", on_change=RulesStatusFile.in_data_dir(root / "var").write)
    save(root, V2)  # saved, but no worker has looked since
    result = status_command(root)
    assert result.exit_code == 0
    assert "a running worker takes them within seconds" in result.output


def test_without_a_recorded_status_the_command_says_so_and_exits_1(root: Path) -> None:
    result = status_command(root)
    assert result.exit_code == 1
    assert "No worker has recorded the rules it uses yet" in result.output


def test_a_damaged_status_file_is_one_clear_line(root: Path) -> None:
    (root / "var").mkdir()
    (root / "var" / "rules-status.json").write_text("{not json", encoding="utf-8")
    result = status_command(root)
    assert result.exit_code == 2
    assert "is not a rules status file" in result.output

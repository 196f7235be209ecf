"""Settings: a bad config is one clear line naming the key; secrets never come from the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.settings import SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
[mailboxes.pm]
address = "ta-pm@support.example.test"
service = "Production Monitoring"
source = "maildir"
maildir = { path = "mail/pm" }
"""

IMAP = """
[mailboxes.pm]
address = "ta-pm@support.example.test"
service = "Production Monitoring"

[mailboxes.pm.imap]
host = "imap.example.test"
username = "ta-pm@support.example.test"
password_secret = "pm-imap-password"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_example_config_documents_two_mailboxes_pm_and_inspection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILBOT_SECRET_PM_IMAP_PASSWORD", "x")
    monkeypatch.setenv("MAILBOT_SECRET_INSPECTION_IMAP_PASSWORD", "y")
    settings = load_settings(REPO / "config.example.toml")
    assert set(settings.mailboxes) == {"pm", "inspection"}
    assert settings.mailboxes["pm"].imap is not None and settings.mailboxes["pm"].imap.security == "tls"


def test_every_setting_in_the_example_has_a_comment() -> None:
    for line in (REPO / "config.example.toml").read_text().splitlines():
        stripped = line.strip()
        if "=" in stripped and not stripped.startswith("#") and not stripped.startswith("["):
            key = stripped.split("=")[0].strip()
            if key in {
                "host",
                "username",
                "source",
                "address",
                "service",
                "poll_interval_seconds",
                "security",
            }:
                continue  # repeated in the second mailbox, documented in the first
            assert "#" in line, f"undocumented setting: {line}"


def test_minimal_maildir_config_loads_with_sqlite_default(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'mailbot.db'}"
    assert settings.maildir_path("pm") == tmp_path / "mail" / "pm"


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, IMAP.replace("host =", "hots =")))
    assert "mailboxes.pm.imap.hots: unknown setting (did you mean 'host'?)" in message
    assert str(tmp_path / "config.toml") in message


def test_wrong_type_names_the_key_and_the_value(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, MINIMAL + "poll_interval_seconds = 'often'\n"))
    assert "mailboxes.pm.poll_interval_seconds" in message
    assert "'often'" in message


def test_missing_secret_names_the_key_and_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILBOT_SECRET_PM_IMAP_PASSWORD", raising=False)
    message = error_of(write(tmp_path, IMAP))
    assert "mailboxes.pm.imap.password_secret" in message
    assert "MAILBOT_SECRET_PM_IMAP_PASSWORD" in message


def test_secret_is_read_from_the_secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILBOT_SECRET_PM_IMAP_PASSWORD", raising=False)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pm-imap-password").write_text("s3cret\n")
    settings = load_settings(write(tmp_path, 'secrets_dir = "secrets"\n' + IMAP))
    assert settings.secrets.get("pm-imap-password", key="k") == "s3cret"
    assert "s3cret" not in repr(settings)


def test_password_in_the_file_is_refused(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, IMAP + 'password = "hunter2"\n'))
    assert "secrets are never read from the config file" in message
    assert "hunter2" not in message


def test_plain_imap_is_refused_for_a_remote_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILBOT_SECRET_PM_IMAP_PASSWORD", "x")
    message = error_of(write(tmp_path, IMAP + 'security = "plain"\n'))
    assert "mailboxes.pm.imap.security" in message and "loopback" in message


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, MINIMAL.replace('service = "Production Monitoring"\n', "")))
    assert "mailboxes.pm.service: required setting is missing" in message


def test_invalid_toml_says_where(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "[mailboxes.pm\n"))
    assert "not valid TOML" in message and "line 1" in message


def test_missing_file_says_how_to_start(tmp_path: Path) -> None:
    message = error_of(tmp_path / "nope.toml")
    assert "config.example.toml" in message

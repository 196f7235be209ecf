"""Settings: a bad config is one clear line naming the key; secrets never come from the file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mailbot.settings import SettingsError, check_secrets, load_settings

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
    settings = load_settings(write(tmp_path, IMAP))
    with pytest.raises(SettingsError) as info:
        check_secrets(settings)
    message = str(info.value)
    assert "mailboxes.pm.imap.password_secret" in message
    assert "MAILBOT_SECRET_PM_IMAP_PASSWORD" in message
    assert str(tmp_path / "config.toml") in message


def test_settings_load_without_the_mail_server_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staff commands read the settings; only commands that connect need the passwords."""
    monkeypatch.delenv("MAILBOT_SECRET_PM_IMAP_PASSWORD", raising=False)
    settings = load_settings(write(tmp_path, IMAP))
    assert settings.mailboxes["pm"].imap is not None


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


# -- the file itself --------------------------------------------------------------------------------


def test_a_utf16_config_file_says_to_save_it_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL, encoding="utf-16")  # what Notepad's "Unicode" writes
    message = error_of(path)
    assert message == f"{path}: the config file is UTF-16 text; save it as UTF-8 in your editor"


def test_a_utf16_config_file_without_byte_order_mark_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(MINIMAL.encode("utf-16-le"))
    assert "UTF-16" in error_of(path)


def test_a_binary_config_file_is_named_as_binary(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert error_of(path) == f"{path}: the config file is binary, not TOML text (it contains NUL bytes)"


def test_latin1_bytes_in_the_config_file_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(MINIMAL.encode() + b'\n[identity]\nfrom_name = "Soporte T\xe9cnico"\n')
    message = error_of(path)
    assert message.startswith(f"{path}: line 9: the config file is not UTF-8 text")


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(MINIMAL.encode("utf-8-sig"))
    assert set(load_settings(path).mailboxes) == {"pm"}


# -- database.url -----------------------------------------------------------------------------------


def with_database(url: str) -> str:
    return f'[database]\nurl = "{url}"\n' + MINIMAL


def test_a_malformed_database_url_names_the_key(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, with_database("postgres//mailbot@db.internal/mailbot")))
    assert message.startswith(f"{tmp_path / 'config.toml'}: database.url: not a database URL; expected ")
    assert "postgresql+psycopg://" in message


def test_an_unknown_database_dialect_names_the_key_and_the_dialect(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, with_database("postgres://mailbot@db.internal/mailbot")))
    assert "database.url: unknown database 'postgres'; expected postgresql+psycopg://" in message


def test_a_database_mailbot_does_not_support_is_refused(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, with_database("mysql://mailbot@db.internal/mailbot")))
    assert "database.url: unknown database 'mysql'" in message


def test_psycopg_not_installed_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an install without the extra looks like
    message = error_of(write(tmp_path, with_database("postgresql+psycopg://mailbot@db.internal/mailbot")))
    assert "database.url: the database driver 'psycopg' is not installed" in message
    assert "pip install 'mailbot[postgres]'" in message


def test_a_postgresql_driver_that_is_not_installed_points_to_psycopg(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, with_database("postgresql+psycopg2://mailbot@db.internal/mailbot")))
    assert "the database driver 'psycopg2' is not installed" in message
    assert "postgresql+psycopg://" in message


def test_a_password_in_the_database_url_is_refused_without_echoing_it(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, with_database("postgresql+psycopg://mailbot:hunter2@db/mailbot")))
    assert "database.url: contains a password, and secrets never belong in the config file" in message
    assert "database.password_secret" in message and "MAILBOT_SECRET_DB_PASSWORD" in message
    assert "hunter2" not in message


def test_the_database_password_comes_from_its_secret_and_stays_out_of_the_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_SECRET_DB_PASSWORD", "s3cr3t")
    text = with_database("postgresql+psycopg://mailbot@db.internal/mailbot").replace(
        'url = "', 'password_secret = "db-password"\nurl = "'
    )
    settings = load_settings(write(tmp_path, text))
    assert settings.database_url == "postgresql+psycopg://mailbot:s3cr3t@db.internal/mailbot"
    assert "s3cr3t" not in repr(settings)


# -- ports and mailboxes ----------------------------------------------------------------------------


@pytest.mark.parametrize("port", [0, 99999, -1])
def test_a_port_outside_1_to_65535_is_refused(tmp_path: Path, port: int) -> None:
    message = error_of(write(tmp_path, IMAP + f"port = {port}\n"))
    assert message == (
        f"{tmp_path / 'config.toml'}: mailboxes.pm.imap.port: must be a TCP port between 1 and 65535 "
        f"(leave it out for the default) (got {port})"
    )


def test_an_smtp_port_of_zero_is_refused(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, MINIMAL + '\n[smtp]\nhost = "127.0.0.1"\nport = 0\n'))
    assert "smtp.port: must be a TCP port between 1 and 65535" in message


def test_two_mailboxes_with_one_address_are_refused(tmp_path: Path) -> None:
    second = MINIMAL.replace("[mailboxes.pm]", "[mailboxes.inspection]").replace("mail/pm", "mail/insp")
    message = error_of(write(tmp_path, MINIMAL + second.replace("TA-PM", "x")))
    assert message == (
        f"{tmp_path / 'config.toml'}: mailboxes.inspection.address: ta-pm@support.example.test is already "
        "the address of mailboxes.pm; each mailbox needs its own address"
    )


def test_two_mailboxes_on_one_imap_login_are_refused(tmp_path: Path) -> None:
    second = IMAP.replace("[mailboxes.pm", "[mailboxes.inspection").replace(
        'address = "ta-pm@', 'address = "ta-inspection@'
    )
    message = error_of(write(tmp_path, IMAP + second))
    assert "mailboxes.inspection.imap.username: ta-pm@support.example.test on imap.example.test" in message
    assert "already the IMAP login of mailboxes.pm" in message


def test_one_imap_account_may_serve_two_mailboxes_from_two_folders(tmp_path: Path) -> None:
    second = IMAP.replace("[mailboxes.pm", "[mailboxes.inspection").replace(
        'address = "ta-pm@', 'address = "ta-inspection@'
    )
    settings = load_settings(write(tmp_path, IMAP + second + 'folder = "Inspection"\n'))
    assert set(settings.mailboxes) == {"pm", "inspection"}


def test_a_relative_ca_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, IMAP + 'ca_file = "certs/ca.pem"\n'))
    imap = settings.mailboxes["pm"].imap
    assert imap is not None and imap.ca_file == str(tmp_path / "certs" / "ca.pem")


def test_health_thresholds_default_and_can_be_set(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, MINIMAL)).health.max_pending_reply_age_seconds == 900
    text = "[health]\nmissed_polls = 5\nmax_pending_reply_age_seconds = 60\n" + MINIMAL
    health = load_settings(write(tmp_path, text)).health
    assert (health.missed_polls, health.max_pending_reply_age_seconds) == (5, 60)


def test_the_due_section_sets_the_policy_and_the_calendar(tmp_path: Path) -> None:
    due = """
[due]
timezone = "Asia/Shanghai"
working_days = ["mon", "tue", "wed", "thu", "fri", "sat"]
hours = "08:30-18:00"
holidays = ["2027-02-17"]
[due.policy.cancellation]
high = 4
[due.policy."*"]
high = 12
"""
    settings = load_settings(write(tmp_path, MINIMAL + due))
    calendar = settings.due.calendar()
    assert calendar.weekdays == frozenset(range(6)) and str(calendar.zone) == "Asia/Shanghai"
    assert settings.due.hours_for("cancellation", "high") == 4
    assert settings.due.hours_for("report_dispute", "high") == 12
    assert settings.due.hours_for("report_dispute", "low") == settings.due.default_hours


def test_a_misspelt_priority_in_the_due_policy_names_its_key(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, MINIMAL + "[due.policy.cancellation]\nhihg = 4\n"))
    assert (
        "due.policy" in message and "cancellation.hihg: priorities are low, normal, high, urgent" in message
    )


def test_an_unknown_time_zone_is_one_line(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, MINIMAL + '[due]\ntimezone = "Mars/Olympus"\n'))
    assert "due.timezone: not a time zone name" in message and "'Mars/Olympus'" in message


def test_working_hours_that_end_before_they_start_are_refused(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, MINIMAL + '[due]\nhours = "18:00-09:00"\n'))
    assert "due.hours: the working day must end after it starts" in message


def test_attachment_limits_default_and_can_be_set(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, MINIMAL)).limits.attachment_max_pages == 10
    text = "[limits]\nattachment_max_bytes = 0\nattachment_seconds = 1.5\n" + MINIMAL
    limits = load_settings(write(tmp_path, text)).limits
    assert (limits.attachment_max_bytes, limits.attachment_seconds) == (0, 1.5)


def test_attachment_seconds_over_the_message_budget_names_the_key(tmp_path: Path) -> None:
    text = "[limits]\nmessage_budget_seconds = 3\nattachment_seconds = 5\n" + MINIMAL
    message = error_of(write(tmp_path, text))
    assert "limits.attachment_seconds: must be less than message_budget_seconds (3)" in message

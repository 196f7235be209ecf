"""`mailbot oauth login` and `mailbot oauth status`, and the config file's OAuth2 keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.token_server import TENANT, TokenServer

from mailbot.cli import main
from mailbot.settings import SettingsError, load_settings

USER = "user06@example.test"


def _config(tmp_path: Path, oauth: str, *, imap_extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
data_dir = "var"
secrets_dir = "secrets"

[mailboxes.pm]
address = "ta-pm@support.example.test"
service = "Production Monitoring"

[mailboxes.pm.imap]
host = "127.0.0.1"
security = "plain"
username = "{USER}"
auth = "xoauth2"{imap_extra}

[mailboxes.pm.imap.oauth]
{oauth}

[mailboxes.inspection]
address = "ta-inspection@support.example.test"
service = "Inspection"

[mailboxes.inspection.imap]
host = "127.0.0.1"
security = "plain"
username = "ta-inspection@example.test"
password_secret = "inspection-imap"
""",
        encoding="utf-8",
    )
    return config


def _delegated(server: TokenServer) -> str:
    return f"""provider = "microsoft"
flow = "refresh_token"
tenant = "{TENANT}"
client_id = "mailbot-public"
refresh_token_secret = "pm-refresh-token"
authority = "{server.authority}"
ca_file = "{server.cert.cert}"
"""


def test_login_walks_through_the_device_code_and_stores_the_refresh_token(
    tmp_path: Path, token_server: TokenServer
) -> None:
    token_server.add_client("mailbot-public")
    token_server.device_user = USER  # the admin signs in as soon as mailbot asks
    config = _config(tmp_path, _delegated(token_server))

    result = CliRunner().invoke(main, ["--config", str(config), "oauth", "login", "pm"])

    assert result.exit_code == 0, result.output
    assert f"open {token_server.base}/devicelogin and enter the code TEST-CODE" in result.output
    stored = tmp_path / "secrets" / "pm-refresh-token"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert token_server.refresh_tokens[stored.read_text().strip()] == USER
    assert stored.read_text().strip() not in result.output


def test_status_shows_each_accounts_auth_and_token_expiry(tmp_path: Path, token_server: TokenServer) -> None:
    token_server.add_client("mailbot-public")
    config = _config(tmp_path, _delegated(token_server))
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pm-refresh-token").write_text(token_server.add_refresh_token(USER))
    runner = CliRunner()

    before = runner.invoke(main, ["--config", str(config), "oauth", "status"])
    from mailbot.services.oauth import token_source

    token_source(load_settings(config), "pm").token()
    after = runner.invoke(main, ["--config", str(config), "oauth", "status"])

    assert before.exit_code == 0 and "microsoft/refresh_token" in before.output
    assert "no token yet" in before.output
    assert "mailbox inspection" in before.output and "password" in before.output
    assert after.exit_code == 0 and "token valid until" in after.output


def test_status_exits_1_after_a_failed_refresh(tmp_path: Path, token_server: TokenServer) -> None:
    config = _config(tmp_path, _delegated(token_server))
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pm-refresh-token").write_text("rt-never-issued")
    from mailbot.adapters.oauth import TokenError
    from mailbot.services.oauth import token_source

    with pytest.raises(TokenError):
        token_source(load_settings(config), "pm").token()
    result = CliRunner().invoke(main, ["--config", str(config), "oauth", "status"])

    assert result.exit_code == 1
    assert "last refresh FAILED" in result.output and "rt-never-issued" not in result.output


@pytest.mark.parametrize(
    ("oauth", "extra", "expected"),
    [
        (
            'provider = "microsoft"\nflow = "service_account"',
            "",
            'mailboxes.pm.imap.oauth.flow: "service_account"',
        ),
        (
            'provider = "microsoft"\nflow = "client_credentials"\ntenant = "t"',
            "",
            "mailboxes.pm.imap.oauth.client_id:",
        ),
        (
            'provider = "google"\nflow = "refresh_token"\nclient_id = "c"\nclient_secret = "s"',
            "",
            "client_secret",
        ),
        ('provider = "yahoo"\nflow = "refresh_token"', "", "mailboxes.pm.imap.oauth.provider:"),
    ],
)
def test_a_bad_oauth_setting_is_one_line_naming_the_key(
    tmp_path: Path, oauth: str, extra: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as failure:
        load_settings(_config(tmp_path, oauth, imap_extra=extra))

    assert expected in str(failure.value) and "\n" not in str(failure.value)


def test_a_client_secret_in_the_config_file_is_refused_with_the_way_to_do_it(tmp_path: Path) -> None:
    oauth = 'provider = "google"\nflow = "refresh_token"\nclient_id = "c"\nclient_secret = "s3"'
    with pytest.raises(SettingsError, match="secrets are never read from the config file"):
        load_settings(_config(tmp_path, oauth))


def test_xoauth2_without_an_oauth_table_names_the_missing_table(tmp_path: Path) -> None:
    config = _config(tmp_path, "")
    config.write_text(config.read_text().replace("[mailboxes.pm.imap.oauth]\n", ""))

    with pytest.raises(SettingsError, match=r"mailboxes\.pm\.imap\.oauth: required when auth = \"xoauth2\""):
        load_settings(config)


def test_google_login_receives_the_consent_on_loopback_and_stores_the_refresh_token(
    tmp_path: Path, token_server: TokenServer
) -> None:
    """Gmail's scope has no device flow: the installed-app consent, the browser played by a thread."""
    import threading

    import requests

    from mailbot.services.oauth import Consent, login

    token_server.add_client("mailbot-installed", "installed-secret")
    token_server.consent_user = USER
    config = _config(
        tmp_path,
        f"""provider = "google"
flow = "refresh_token"
client_id = "mailbot-installed"
client_secret_secret = "gmail-client-secret"
refresh_token_secret = "pm-refresh-token"
token_uri = "{token_server.google_token_uri}"
auth_uri = "{token_server.google_auth_uri}"
ca_file = "{token_server.cert.cert}"
""",
    )
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "gmail-client-secret").write_text("installed-secret")
    shown: list[Consent] = []

    def browser(consent: Consent) -> None:
        shown.append(consent)
        threading.Thread(
            target=requests.get,
            args=(consent.url,),
            kwargs={"verify": str(token_server.cert.cert)},
            daemon=True,
        ).start()

    done, token = login(load_settings(config), "pm", browser)

    assert shown[0].url.startswith(token_server.google_auth_uri) and "code_challenge=" in shown[0].url
    stored = (tmp_path / "secrets" / "pm-refresh-token").read_text().strip()
    assert token_server.refresh_tokens[stored] == USER and "refresh token stored" in done
    assert token_server.tokens[token.access_token].user == USER

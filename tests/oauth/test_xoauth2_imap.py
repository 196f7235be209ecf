"""XOAUTH2 logins to a real Dovecot whose `oauth2` passdb asks the loopback token server about each
token: every provider flow gets a token from its library (msal, google-auth) and logs in with it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fixtures.servers import DovecotServer
from fixtures.token_server import TokenServer

from mailbot.adapters.imap import ImapSource
from mailbot.adapters.oauth import TokenError, TokenSource, read_states
from mailbot.adapters.ports import SourceError

from .helpers import google_config, microsoft_config

pytestmark = pytest.mark.imap

USER = "user07@example.test"


def _login(dovecot: DovecotServer, source: TokenSource) -> int:
    config = dovecot.imap_config(USER, password="", token=source)
    with ImapSource(config) as imap:
        return imap.uidvalidity


def _seed_cache(cache: Path, account: str, **values: object) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    (cache / f"{account}.json").write_text(json.dumps(values))


def test_microsoft_client_credentials_token_logs_in_to_dovecot(
    dovecot_oauth: DovecotServer, token_server: TokenServer, tmp_path: Path
) -> None:
    token_server.add_app("mailbot-app", "app-secret-1", USER)
    source = TokenSource(microsoft_config(token_server, tmp_path, USER, client_secret="app-secret-1"))
    seen = len(token_server.introspections)

    assert _login(dovecot_oauth, source) > 0
    assert token_server.introspections[seen:] == [source.token()]  # Dovecot checked exactly our token


def test_a_wrong_client_secret_fails_the_refresh_without_the_secret_in_the_message(
    token_server: TokenServer, tmp_path: Path
) -> None:
    token_server.add_app("mailbot-app", "app-secret-1", USER)
    source = TokenSource(microsoft_config(token_server, tmp_path, USER, client_secret="not-the-secret-9"))

    with pytest.raises(TokenError) as failure:
        source.token()

    message = str(failure.value)
    assert "mailbox pm" in message and "invalid_client" in message
    assert "not-the-secret-9" not in message and "\n" not in message


def test_a_token_about_to_expire_is_refreshed_and_the_new_one_logs_in(
    dovecot_oauth: DovecotServer, token_server: TokenServer, tmp_path: Path
) -> None:
    """Delegated Microsoft: 60 s left is inside the 5-minute margin, so the refresh token is used
    (and the rotated one Microsoft sends back is kept for the next refresh)."""
    token_server.add_client("mailbot-public")
    refresh = token_server.add_refresh_token(USER)
    old = token_server.issue(USER, expires_in=60)
    _seed_cache(tmp_path, "pm", access_token=old, expires_at=time.time() + 60)
    source = TokenSource(
        microsoft_config(token_server, tmp_path, USER, flow="refresh_token", refresh_token=refresh)
    )
    before = len(token_server.grants())

    new = source.token()

    assert new != old
    assert token_server.grants()[before:] == ["refresh_token"]
    assert _login(dovecot_oauth, source) > 0
    assert refresh not in token_server.refresh_tokens  # rotated away: only the cached new one works now
    token_server.expire(new)
    _seed_cache(tmp_path, "pm", **{**json.loads((tmp_path / "pm.json").read_text()), "expires_at": 0})
    assert _login(dovecot_oauth, source) > 0  # refreshed again, with the rotated refresh token


def test_a_cached_token_with_time_left_is_used_without_asking_the_provider(
    dovecot_oauth: DovecotServer, token_server: TokenServer, tmp_path: Path
) -> None:
    token = token_server.issue(USER, expires_in=3600)
    _seed_cache(tmp_path, "pm", access_token=token, expires_at=time.time() + 3600)
    source = TokenSource(microsoft_config(token_server, tmp_path, USER, client_secret="unused"))
    before = len(token_server.grants())

    assert _login(dovecot_oauth, source) > 0
    assert token_server.grants()[before:] == []


def test_an_expired_token_that_cannot_be_refreshed_is_recorded_as_a_failure(
    dovecot_oauth: DovecotServer, token_server: TokenServer, tmp_path: Path
) -> None:
    token_server.add_client("mailbot-public")
    refresh = token_server.add_refresh_token(USER)
    token_server.revoke(refresh)
    _seed_cache(tmp_path, "pm", access_token="at-old", expires_at=time.time() - 10)
    source = TokenSource(
        microsoft_config(token_server, tmp_path, USER, flow="refresh_token", refresh_token=refresh)
    )

    with pytest.raises(TokenError, match="invalid_grant"):
        _login(dovecot_oauth, source)

    [state] = read_states(tmp_path)
    assert state.failures == 1 and "AADSTS70008" in state.last_error
    assert (tmp_path / "pm.json").stat().st_mode & 0o777 == 0o600


def test_google_service_account_acts_as_the_mailbox_user(
    dovecot_oauth: DovecotServer, token_server: TokenServer, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = "mailbot@project.iam.gserviceaccount.example"
    token_server.add_service_account(
        email,
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    key_file = {
        "type": "service_account",
        "client_email": email,
        "private_key_id": "k1",
        "private_key": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "token_uri": "https://oauth2.googleapis.com/token",  # replaced by the configured token_uri
    }
    source = TokenSource(
        google_config(token_server, tmp_path, USER, service_account_key=json.dumps(key_file))
    )

    assert _login(dovecot_oauth, source) > 0
    assert token_server.tokens[source.token()].user == USER  # the JWT's subject: domain-wide delegation


def test_google_installed_app_refresh_token_logs_in(
    dovecot_oauth: DovecotServer, token_server: TokenServer, tmp_path: Path
) -> None:
    token_server.add_client("mailbot-installed", "installed-secret")
    refresh = token_server.add_refresh_token(USER)
    source = TokenSource(
        google_config(
            token_server,
            tmp_path,
            USER,
            flow="refresh_token",
            refresh_token=refresh,
            client_secret="installed-secret",
        )
    )

    assert _login(dovecot_oauth, source) > 0


def test_a_token_dovecot_refuses_is_replaced_at_the_next_login(
    dovecot_oauth: DovecotServer, token_server: TokenServer, tmp_path: Path
) -> None:
    """The login really depends on the token (not the user name), and a token the server refuses
    before its time is not offered again: the next login refreshes."""
    token_server.add_app("mailbot-app", "app-secret-1", USER)
    token = token_server.issue(USER, expires_in=3600)
    token_server.expire(token)
    _seed_cache(tmp_path, "pm", access_token=token, expires_at=time.time() + 3600)
    source = TokenSource(microsoft_config(token_server, tmp_path, USER, client_secret="app-secret-1"))

    with pytest.raises(SourceError, match="XOAUTH2 login failed"):
        _login(dovecot_oauth, source)
    assert _login(dovecot_oauth, source) > 0
    assert source.token() != token

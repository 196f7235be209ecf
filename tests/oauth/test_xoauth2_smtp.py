"""AUTH XOAUTH2 to a real aiosmtpd server that accepts only tokens the loopback provider issued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.servers import SmtpCapture
from fixtures.token_server import TokenServer

from mailbot.adapters.oauth import TokenSource
from mailbot.adapters.ports import SendError
from mailbot.adapters.smtp import SmtpConfig, SmtpTransport

from .helpers import microsoft_config

SENDER = "ta-pm@example.test"
REPLY = (Path(__file__).parent / "eml" / "pm-question.eml").read_bytes()


@pytest.fixture
def oauth_smtp(token_server: TokenServer) -> Iterator[SmtpCapture]:
    def valid(user: str, token: str) -> bool:
        answer = token_server.introspect(token)
        return bool(answer["active"]) and answer["email"] == user

    with SmtpCapture(xoauth2=valid) as server:
        yield server


def _transport(server: SmtpCapture, source: TokenSource) -> SmtpTransport:
    return SmtpTransport(
        SmtpConfig(
            host=server.host, port=server.port, security="plain", username=SENDER, token=source, timeout=5
        )
    )


def test_a_reply_is_sent_after_auth_xoauth2_with_the_providers_token(
    oauth_smtp: SmtpCapture, token_server: TokenServer, tmp_path: Path
) -> None:
    token_server.add_app("mailbot-smtp-app", "smtp-app-secret", SENDER)
    config = microsoft_config(token_server, tmp_path, SENDER, client_secret="smtp-app-secret")
    source = TokenSource(config.__class__(**{**config.__dict__, "client_id": "mailbot-smtp-app"}))

    with _transport(oauth_smtp, source) as transport:
        transport.send(REPLY, mail_from=SENDER, rcpt_to=["li.wei@sunrise-import.example"])

    [captured] = oauth_smtp.wait_for(1)
    assert captured.login == SENDER
    assert oauth_smtp.xoauth2_tokens == [source.token()]


def test_a_token_the_server_refuses_is_a_temporary_send_error_and_is_replaced_next_time(
    oauth_smtp: SmtpCapture, token_server: TokenServer, tmp_path: Path
) -> None:
    token_server.add_app("mailbot-app", "app-secret-1", SENDER)
    stale = token_server.issue(SENDER, expires_in=3600)
    token_server.expire(stale)
    source = TokenSource(microsoft_config(token_server, tmp_path, SENDER, client_secret="app-secret-1"))
    (tmp_path / "pm.json").write_text(f'{{"access_token": "{stale}", "expires_at": 9999999999}}')

    with pytest.raises(SendError, match="535") as failure, _transport(oauth_smtp, source):
        pass
    assert not failure.value.permanent  # the account's problem: the reply waits, it is not failed for good
    assert oauth_smtp.messages == []

    with _transport(oauth_smtp, source) as transport:
        transport.send(REPLY, mail_from=SENDER, rcpt_to=["li.wei@sunrise-import.example"])
    assert oauth_smtp.xoauth2_tokens == [stale, source.token()]


def test_a_failed_token_refresh_is_a_temporary_send_error_and_opens_no_connection(
    oauth_smtp: SmtpCapture, token_server: TokenServer, tmp_path: Path
) -> None:
    source = TokenSource(microsoft_config(token_server, tmp_path, SENDER, client_secret="wrong"))

    with pytest.raises(SendError, match="OAuth2 token refresh failed for mailbox pm") as failure:
        _transport(oauth_smtp, source).__enter__()

    assert not failure.value.permanent  # the outbox keeps the reply and retries once the token works
    assert oauth_smtp.connections == 0

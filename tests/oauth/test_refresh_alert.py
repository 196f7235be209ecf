"""An expired token that cannot be refreshed is an alert, and only its own mailbox stops.

The installation has two mailboxes on the oauth-mode Dovecot: `pm` logs in with XOAUTH2 (Microsoft,
delegated, its refresh token revoked and its cached access token expired), `inspection` with a
password. `mailbot poll --once` runs as a child process, as cron would run it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from fixtures.intake import REPO, Env, write_config
from fixtures.servers import DovecotServer, SmtpCapture
from fixtures.token_server import TENANT, TokenServer

from mailbot.services.health import HealthPolicy
from mailbot.services.metrics import Metrics
from mailbot.store.db import make_engine

pytestmark = pytest.mark.imap

EML = Path(__file__).parent / "eml"
USERS = {"pm": "user08@example.test", "inspection": "user09@example.test"}


def _installation(
    tmp_path: Path, dovecot: DovecotServer, smtp: SmtpCapture, tokens: TokenServer, refresh_token: str
) -> Env:
    for user in USERS.values():
        dovecot.clean(user)
    config = write_config(tmp_path, dovecot, smtp, f"sqlite:///{tmp_path / 'mailbot.db'}", USERS)
    text = config.read_text(encoding="utf-8")
    text = text.replace('data_dir = "var"', 'data_dir = "var"\nsecrets_dir = "secrets"', 1)
    text = text.replace('password_secret = "pm-imap"', 'auth = "xoauth2"', 1)
    text += f"""
[mailboxes.pm.imap.oauth]
provider = "microsoft"
flow = "refresh_token"
tenant = "{TENANT}"
client_id = "mailbot-public"
refresh_token_secret = "pm-refresh-token"
authority = "{tokens.authority}"
ca_file = "{tokens.cert.cert}"
"""
    config.write_text(text, encoding="utf-8")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pm-refresh-token").write_text(refresh_token)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env["MAILBOT_SECRET_INSPECTION_IMAP"] = dovecot.password(USERS["inspection"])
    env["PYTHONPATH"] = str(REPO)
    return Env(dovecot=dovecot, smtp=smtp, config=config, users=USERS, env=env)


def test_an_unrefreshable_token_alerts_and_the_other_mailbox_goes_on(
    tmp_path: Path, dovecot_oauth: DovecotServer, smtp_server: SmtpCapture, token_server: TokenServer
) -> None:
    token_server.add_client("mailbot-public")
    revoked = token_server.add_refresh_token(USERS["pm"])
    token_server.revoke(revoked)
    env = _installation(tmp_path, dovecot_oauth, smtp_server, token_server, revoked)
    cache = tmp_path / "var" / "oauth"
    cache.mkdir(parents=True)
    (cache / "pm.json").write_text(json.dumps({"access_token": "at-old", "expires_at": time.time() - 60}))
    env.append("pm", str(EML / "pm-question.eml"))
    env.append("inspection", str(EML / "buyer-question.eml"))

    poll = env.poll()

    assert poll.returncode == 1, poll.stdout + poll.stderr
    assert "inspection: 1 fetched" in poll.stdout  # the password mailbox was polled all the same
    errors = [line for line in poll.stderr.splitlines() if " ERROR " in line and "mailbox pm" in line]
    assert any("OAuth2" in line and "AADSTS70008" in line for line in errors), poll.stderr
    assert revoked not in poll.stderr + poll.stdout

    status = env.mailbot("status", "--json")
    assert status.returncode == 1
    problems = json.loads(status.stdout)["problems"]
    assert any(p.startswith("mailbox pm: OAuth2 token refresh failed") for p in problems), problems
    assert not any(p.startswith("mailbox inspection") for p in problems), problems

    policy = HealthPolicy(poll_intervals={"pm": 5, "inspection": 5}, data_dir=tmp_path / "var")
    exposition = Metrics(
        make_engine(f"sqlite:///{tmp_path / 'mailbot.db'}"), policy, lambda: "v1"
    ).exposition()
    assert b'mailbot_oauth_refresh_failures_total{account="pm"} 1.0' in exposition
    assert b'mailbot_oauth_token_expiry_seconds{account="pm"} -' in exposition  # negative: expired


def test_the_alert_clears_once_a_new_refresh_token_works(
    tmp_path: Path, dovecot_oauth: DovecotServer, smtp_server: SmtpCapture, token_server: TokenServer
) -> None:
    token_server.add_client("mailbot-public")
    revoked = token_server.add_refresh_token(USERS["pm"])
    token_server.revoke(revoked)
    env = _installation(tmp_path, dovecot_oauth, smtp_server, token_server, revoked)
    assert env.poll().returncode == 1

    (tmp_path / "secrets" / "pm-refresh-token").write_text(token_server.add_refresh_token(USERS["pm"]))
    poll = env.poll()

    assert poll.returncode == 0, poll.stderr
    status = env.mailbot("status", "--json")
    assert not any("OAuth2" in p for p in json.loads(status.stdout)["problems"])


def test_both_mailboxes_and_smtp_work_with_xoauth2_end_to_end(
    tmp_path: Path, dovecot_oauth: DovecotServer, token_server: TokenServer
) -> None:
    """The wiring from config to login: the pm mailbox reads with an app token, the reply leaves over
    SMTP with the smtp account's own token (and would be refused without one)."""
    smtp_user = "ta-support@example.test"
    token_server.add_app("mailbot-public", "pm-app-secret", USERS["pm"])
    token_server.add_app("mailbot-smtp", "smtp-app-secret", smtp_user)

    def valid(user: str, token: str) -> bool:
        answer = token_server.introspect(token)
        return bool(answer["active"]) and answer["email"] == user

    with SmtpCapture(xoauth2=valid) as smtp:
        env = _installation(tmp_path, dovecot_oauth, smtp, token_server, "unused")
        text = env.config.read_text().replace('flow = "refresh_token"', 'flow = "client_credentials"')
        text = text.replace('refresh_token_secret = "pm-refresh-token"', 'client_secret_secret = "pm-app"')
        text = text.replace(
            'security = "plain"\n', f'security = "plain"\nusername = "{smtp_user}"\nauth = "xoauth2"\n', 1
        )
        text += f"""
[smtp.oauth]
provider = "microsoft"
flow = "client_credentials"
tenant = "{TENANT}"
client_id = "mailbot-smtp"
client_secret_secret = "smtp-app"
authority = "{token_server.authority}"
ca_file = "{token_server.cert.cert}"
"""
        env.config.write_text(text)
        (tmp_path / "secrets" / "pm-app").write_text("pm-app-secret")
        env.env["MAILBOT_SECRET_SMTP_APP"] = "smtp-app-secret"
        env.append("pm", str(EML / "pm-question.eml"))

        poll = env.poll()

        assert poll.returncode == 0, poll.stdout + poll.stderr
        assert "pm: 1 fetched" in poll.stdout
        [reply] = smtp.wait_for(1)
        assert reply.login == smtp_user and reply.rcpt_tos == ["li.wei@sunrise-import.example"]

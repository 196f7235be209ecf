"""`mailbot oauth login ACCOUNT | status`: consent for the delegated flows, and every token's expiry.

`login` is for the admin at a terminal: for Microsoft's delegated flow it prints the verification
URL and the code, waits while the admin signs in elsewhere, and stores the refresh token in the
secrets dir; for the app-only flows it fetches a first token to prove the registration works.
`status` never contacts a provider: it reads what the worker and `poll --once` recorded.
"""

from __future__ import annotations

import json
import sys
import time

import click

from mailbot.cli import Context, fail, pass_ctx
from mailbot.settings import SettingsError


@click.group()
def oauth() -> None:
    """OAuth2 (XOAUTH2) for Microsoft 365 and Gmail: consent and token status."""


@oauth.command("login")
@click.argument("account")
@click.option(
    "--port",
    default=0,
    type=click.IntRange(0, 65535),
    help="Google only: the 127.0.0.1 port that receives the browser after consent (default: any free one).",
)
@pass_ctx
def oauth_login(ctx: Context, account: str, port: int) -> None:
    """Consent for ACCOUNT (a mailbox name, or "smtp") and store the refresh token it yields."""
    from mailbot.services.oauth import Consent, TokenError, login

    settings = ctx.settings()

    def show(consent: Consent) -> None:
        click.echo(consent.message)
        click.echo("waiting for the sign-in to finish …")

    try:
        done, token = login(settings, account, show, port=port)
    except SettingsError as exc:
        fail(str(exc))
    except TokenError as exc:
        fail(str(exc), code=1)
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(token.expires_at))
    click.echo(f"{account}: {done}; access token valid until {until}")


@oauth.command("status")
@click.option("--json", "as_json", is_flag=True, help="The same facts as JSON.")
@pass_ctx
def oauth_status(ctx: Context, as_json: bool) -> None:
    """Each account's authentication and token expiry; exit 1 when a refresh failed or a token expired."""
    from mailbot.services.oauth import account_statuses, password_accounts

    settings = ctx.settings()
    now = time.time()
    statuses = account_statuses(settings)
    bad = [s for s in statuses if s.state is not None and (s.state.last_error or s.expired(now))]
    if as_json:
        rows = [
            {
                "account": s.account.name,
                "auth": "xoauth2",
                "provider": s.account.oauth.provider,
                "flow": s.account.oauth.flow,
                "username": s.account.username,
                "expires_in_seconds": None if s.state is None else s.state.seconds_left(now),
                "refresh_failures": 0 if s.state is None else s.state.failures,
                "last_error": "" if s.state is None else s.state.last_error,
            }
            for s in statuses
        ]
        rows += [{"account": label, "auth": auth} for label, auth in password_accounts(settings)]
        click.echo(json.dumps(rows, indent=2))
    else:
        for status in statuses:
            click.echo(status.describe(now))
        for label, auth in password_accounts(settings):
            click.echo(f"{label:<20} {auth}")
        if not statuses:
            click.echo('no account uses OAuth2 (auth = "xoauth2")')
    if bad:
        sys.exit(1)

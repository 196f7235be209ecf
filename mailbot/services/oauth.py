"""OAuth2 accounts as the rest of mailbot sees them: token sources, their status, and consent.

An "account" is a mailbox whose `[mailboxes.NAME.imap]` says `auth = "xoauth2"` (named after the
mailbox) or the `[smtp]` account (named "smtp"). The runtime asks `token_source` for the callable
the IMAP and SMTP adapters log in with; `mailbot oauth status` reads `account_statuses`, and
`mailbot oauth login` runs `login` (Microsoft's device code or Google's consent page for the
delegated flows; a first token for the app-only flows, to prove the registration works).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailbot.adapters.oauth import (
    OAuthConfig,
    OAuthSecrets,
    Token,
    TokenError,
    TokenSource,
    TokenState,
    cache_dir_in,
    forget,
    read_states,
)
from mailbot.adapters.oauth_login import Consent, google_installed_app, microsoft_device_code
from mailbot.settings import Settings, SettingsError
from mailbot.settings_oauth import OAuthSettings

SMTP_ACCOUNT = "smtp"
__all__ = ["SMTP_ACCOUNT", "Account", "AccountStatus", "Consent", "TokenError", "login", "token_source"]


@dataclass(frozen=True)
class Account:
    name: str  # mailbox name or "smtp"
    label: str
    username: str
    oauth: OAuthSettings
    key: str  # the config key of the oauth table, for messages


def accounts(settings: Settings) -> list[Account]:
    """Every account that logs in with XOAUTH2, mailboxes first (disabled ones included)."""
    found = [
        Account(name, f"mailbox {name}", box.imap.username, box.imap.oauth, f"mailboxes.{name}.imap.oauth")
        for name, box in settings.mailboxes.items()
        if box.imap is not None and box.imap.auth == "xoauth2" and box.imap.oauth is not None
    ]
    smtp = settings.smtp
    if smtp is not None and smtp.auth == "xoauth2" and smtp.oauth is not None and smtp.username:
        found.append(Account(SMTP_ACCOUNT, "smtp", smtp.username, smtp.oauth, "smtp.oauth"))
    return found


def account(settings: Settings, name: str) -> Account:
    for candidate in accounts(settings):
        if candidate.name == name:
            return candidate
    known = ", ".join(a.name for a in accounts(settings)) or "none"
    raise SettingsError(
        f"{settings.source}: {name!r} does not use OAuth2 (auth = \"xoauth2\"); accounts that do: {known}"
    )


def oauth_config(settings: Settings, acct: Account) -> OAuthConfig:
    oauth = acct.oauth
    where = f"{settings.source}: {acct.key}"

    def secret(name: str | None, key: str) -> str | None:
        return settings.secrets.get(name, key=f"{where}.{key}") if name else None

    def read() -> OAuthSecrets:
        refresh: str | None = None
        if oauth.refresh_token_secret:
            try:
                refresh = secret(oauth.refresh_token_secret, "refresh_token_secret")
            except SettingsError:
                refresh = None  # a rotated refresh token in the cache may still do; else "run oauth login"
        return OAuthSecrets(
            client_secret=secret(oauth.client_secret_secret, "client_secret_secret"),
            refresh_token=refresh,
            service_account_key=secret(oauth.service_account_key_secret, "service_account_key_secret"),
        )

    return OAuthConfig(
        account=acct.name,
        label=acct.label,
        provider=oauth.provider,
        flow=oauth.flow,
        username=acct.username,
        cache_dir=cache_dir_in(settings.data_dir),
        secrets=read,
        tenant=oauth.tenant,
        client_id=oauth.client_id,
        subject=oauth.subject,
        scopes=tuple(oauth.scopes or ()),
        authority=oauth.authority,
        token_uri=oauth.token_uri,
        ca_file=oauth.ca_file,
        refresh_before_seconds=float(oauth.refresh_before_seconds),
        timeout=oauth.timeout,
    )


def token_source(settings: Settings, name: str, *, clock: Callable[[], float] = time.time) -> TokenSource:
    return TokenSource(oauth_config(settings, account(settings, name)), clock=clock)


@dataclass(frozen=True)
class AccountStatus:
    account: Account
    state: TokenState | None  # None: no token fetched yet

    def expired(self, now: float) -> bool:
        left = None if self.state is None else self.state.seconds_left(now)
        return left is not None and left <= 0

    def describe(self, now: float) -> str:
        acct = self.account
        head = f"{acct.label:<20} {acct.oauth.provider}/{acct.oauth.flow} as {acct.username}"
        state = self.state
        if state is None or state.expires_at is None:
            failed = f"; last refresh FAILED: {state.last_error}" if state and state.last_error else ""
            return f"{head}: no token yet{failed}"
        left = state.expires_at - now
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.expires_at))
        expiry = f"token valid until {when} ({int(left)} s left)" if left > 0 else f"token EXPIRED at {when}"
        failed = f"; last refresh FAILED: {state.last_error}" if state.last_error else ""
        return f"{head}: {expiry}{failed}"


def account_statuses(settings: Settings) -> list[AccountStatus]:
    known = accounts(settings)
    states = {s.account: s for s in read_states(cache_dir_in(settings.data_dir), [a.name for a in known])}
    return [AccountStatus(a, states.get(a.name)) for a in known]


def password_accounts(settings: Settings) -> list[tuple[str, str]]:
    """(label, auth) of the accounts that still log in with a password, for `oauth status`."""
    rows = [
        (f"mailbox {name}", "password")
        for name, box in settings.mailboxes.items()
        if box.imap is not None and box.imap.auth == "password"
    ]
    if settings.smtp is not None and settings.smtp.auth == "password" and settings.smtp.username:
        rows.append(("smtp", "password"))
    return rows


def login(
    settings: Settings, name: str, show: Callable[[Consent], None], *, port: int = 0
) -> tuple[str, Token]:
    """Consent for one account; returns (what was done, the new token).

    Delegated flows (`refresh_token`): Microsoft's device code, or Google's installed-app consent
    (a listener on 127.0.0.1:`port`); the refresh token goes to the secrets dir (0600) under the
    account's `refresh_token_secret`. App-only flows (client credentials, service account) need no
    consent from mailbot: a first token is fetched to prove the registration and its secret work.
    """
    acct = account(settings, name)
    config = oauth_config(settings, acct)
    oauth = acct.oauth
    if oauth.flow != "refresh_token":
        token = TokenSource(config).refresh()
        return "no consent needed for this flow: fetched a token with the app's own credentials", token
    if settings.secrets.directory is None:
        raise SettingsError(f"{settings.source}: secrets_dir: required to store the refresh token of {name}")
    if oauth.provider == "microsoft":
        token = microsoft_device_code(config, show)
    else:
        token = google_installed_app(config, show, auth_uri=oauth.auth_uri, port=port)
    if not token.refresh_token:
        raise TokenError(f"OAuth2 login of {acct.label}: the provider sent no refresh token")
    assert oauth.refresh_token_secret is not None
    stored: Path = settings.secrets.put(oauth.refresh_token_secret, token.refresh_token)
    forget(config.cache_dir, acct.name)  # the old rotated refresh token must not win over the new one
    return f"refresh token stored in {stored}", token

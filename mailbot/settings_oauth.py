"""The authentication keys of `[mailboxes.NAME.imap]` and `[smtp]`: a password, or OAuth2 (XOAUTH2).

Kept apart from settings.py (which is near its size limit) and imported by it. Which provider settings
each flow needs is checked here, so a missing `client_id` names its key in one line instead of
surfacing as a provider's error at the first refresh.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Auth = Literal["password", "xoauth2"]


class OAuthSettings(BaseModel):
    """`[mailboxes.NAME.imap.oauth]` / `[smtp.oauth]`: where an XOAUTH2 access token comes from.

    Only names of secrets appear here (`*_secret`), like everywhere else; `authority`, `token_uri`
    and `ca_file` exist for private clouds and for the loopback token server of the tests.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)  # a typo is an error, as in settings.py

    provider: Literal["microsoft", "google"]
    flow: Literal["client_credentials", "refresh_token", "service_account"]
    tenant: str | None = None  # microsoft: the directory (tenant) id or its domain
    client_id: str | None = None
    client_secret_secret: str | None = None
    refresh_token_secret: str | None = None
    service_account_key_secret: str | None = None  # google: the JSON key file's content
    subject: str | None = None  # google service account: the user to act as (default: the username)
    scopes: list[str] | None = None  # default: the provider's mail scopes for the flow
    authority: str | None = None  # microsoft: default https://login.microsoftonline.com/<tenant>
    token_uri: str | None = None  # google: default https://oauth2.googleapis.com/token
    auth_uri: str | None = None  # google: the consent page, default https://accounts.google.com/o/oauth2/auth
    ca_file: str | None = None  # trust a private CA for the token endpoint
    refresh_before_seconds: Annotated[int, Field(ge=0, le=3000)] = 300
    timeout: Annotated[float, Field(gt=0)] = 30.0


# What each provider's flow needs from the config file (besides the secrets it names).
_OAUTH_FLOWS: dict[tuple[str, str], tuple[str, ...]] = {
    ("microsoft", "client_credentials"): ("tenant", "client_id", "client_secret_secret"),
    ("microsoft", "refresh_token"): ("tenant", "client_id", "refresh_token_secret"),
    ("google", "service_account"): ("service_account_key_secret",),
    ("google", "refresh_token"): ("client_id", "client_secret_secret", "refresh_token_secret"),
}


def auth_problem(auth: str, password_secret: str | None, oauth: OAuthSettings | None, key: str) -> str | None:
    """One line naming the key when the chosen authentication lacks what it needs, else None."""
    if auth == "password":
        if password_secret is None and key.endswith(".imap"):
            return f'{key}.password_secret: required when auth = "password" (the default)'
        return None
    if oauth is None:
        return f'{key}.oauth: required when auth = "xoauth2" (provider, flow and the client settings)'
    needed = _OAUTH_FLOWS.get((oauth.provider, oauth.flow))
    if needed is None:
        offered = " or ".join(f'"{f}"' for p, f in _OAUTH_FLOWS if p == oauth.provider)
        return f'{key}.oauth.flow: "{oauth.flow}" is not a flow of provider "{oauth.provider}"; use {offered}'
    for name in needed:
        if not getattr(oauth, name):
            return f'{key}.oauth.{name}: required for provider "{oauth.provider}" with flow "{oauth.flow}"'
    return None

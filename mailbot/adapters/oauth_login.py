"""Consent for the delegated flows: how an admin gives mailbot a refresh token, once.

* Microsoft (delegated): the device-code flow through msal. mailbot shows a URL and a short code;
  the admin opens the URL on any device, signs in as the mailbox, and mailbot receives the tokens.
* Google (installed app): Google does not allow the Gmail scope in its device-code flow, so this is
  the installed-app flow through google-auth-oauthlib: a one-shot HTTP listener on 127.0.0.1
  receives the browser's redirect after consent. On a server without a browser the admin forwards
  the port (`ssh -L PORT:127.0.0.1:PORT server`) and opens the URL on their own machine.

Both return a `Token` with the refresh token; storing it is the caller's business (the secrets dir).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from mailbot.adapters.oauth import (
    OAuthConfig,
    Token,
    TokenError,
    describe_failure,
    microsoft_app,
    token_from_msal,
)

GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"


@dataclass(frozen=True)
class Consent:
    """What the admin must do: open `url` (and, for a device code, enter `code`)."""

    message: str
    url: str
    code: str | None = None


def microsoft_device_code(config: OAuthConfig, show: Callable[[Consent], None]) -> Token:
    try:
        app = microsoft_app(config)
        flow = app.initiate_device_flow(scopes=config.effective_scopes)
        if "user_code" not in flow:
            token_from_msal(flow)  # raises with the provider's error
        url = str(flow.get("verification_uri", ""))
        code = str(flow["user_code"])
        message = str(flow.get("message") or f"Open {url} and enter the code {code}")
        show(Consent(message=message, url=url, code=code))
        return token_from_msal(app.acquire_token_by_device_flow(flow))
    except TokenError:
        raise
    except Exception as exc:
        raise TokenError(f"OAuth2 login of {config.label} failed: {describe_failure(exc)}") from exc


def google_installed_app(
    config: OAuthConfig,
    show: Callable[[Consent], None],
    *,
    auth_uri: str | None = None,
    port: int = 0,
    timeout_seconds: int = 600,
) -> Token:
    from google_auth_oauthlib.flow import InstalledAppFlow

    secrets = config.secrets()
    client = {
        "installed": {
            "client_id": config.client_id,
            "client_secret": secrets.client_secret,
            "auth_uri": auth_uri or GOOGLE_AUTH_URI,
            "token_uri": config.effective_token_uri,
        }
    }
    try:
        flow = InstalledAppFlow.from_client_config(client, scopes=config.effective_scopes)
        _use_ca_file(flow.oauth2session, config)
        authorization_url = flow.authorization_url

        def announce(**kwargs: Any) -> Any:
            # run_local_server listens before it builds the URL: the admin may open it at once.
            url, state = authorization_url(**kwargs)
            listening = str(flow.redirect_uri).rstrip("/").rsplit(":", 1)[1]
            show(
                Consent(
                    message=f"Open this address in a browser and allow access as {config.username} "
                    f"(on another machine, first run: ssh -L {listening}:127.0.0.1:{listening} THIS-HOST):"
                    f"\n{url}",
                    url=url,
                )
            )
            return url, state

        flow.authorization_url = announce
        credentials = flow.run_local_server(
            host="127.0.0.1",
            port=port,
            open_browser=False,
            authorization_prompt_message=None,
            timeout_seconds=timeout_seconds,
            prompt="consent",  # Google sends a refresh token only on a fresh consent
        )
    except Exception as exc:
        raise TokenError(f"OAuth2 login of {config.label} failed: {describe_failure(exc)}") from exc
    expiry = credentials.expiry  # naive UTC in google-auth
    return Token(
        access_token=str(credentials.token),
        expires_at=expiry.replace(tzinfo=UTC).timestamp() if expiry is not None else 0.0,
        refresh_token=credentials.refresh_token,
    )


def _use_ca_file(session: Any, config: OAuthConfig) -> None:
    """The configured CA and timeout on every request of requests-oauthlib's session (see http_session)."""
    request = session.request

    def with_ca(method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        if config.ca_file:
            kwargs["verify"] = config.ca_file
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = config.timeout
        return request(method, url, *args, **kwargs)

    session.request = with_ca

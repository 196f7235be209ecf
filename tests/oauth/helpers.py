"""Small builders shared by the OAuth2 tests: an OAuthConfig against the loopback token server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fixtures.token_server import TENANT, TokenServer

from mailbot.adapters.oauth import OAuthConfig, OAuthSecrets


def microsoft_config(
    server: TokenServer, cache: Path, user: str, *, flow: str = "client_credentials", **secrets: Any
) -> OAuthConfig:
    return OAuthConfig(
        account="pm",
        label="mailbox pm",
        provider="microsoft",
        flow=flow,  # type: ignore[arg-type]
        username=user,
        cache_dir=cache,
        secrets=lambda: OAuthSecrets(**secrets),
        tenant=TENANT,
        client_id="mailbot-app" if flow == "client_credentials" else "mailbot-public",
        authority=server.authority,
        ca_file=str(server.cert.cert),
    )


def google_config(
    server: TokenServer, cache: Path, user: str, *, flow: str = "service_account", **secrets: Any
) -> OAuthConfig:
    return OAuthConfig(
        account="gmail",
        label="mailbox gmail",
        provider="google",
        flow=flow,  # type: ignore[arg-type]
        username=user,
        cache_dir=cache,
        secrets=lambda: OAuthSecrets(**secrets),
        client_id="mailbot-installed" if flow == "refresh_token" else None,
        token_uri=server.google_token_uri,
        ca_file=str(server.cert.cert),
    )

"""OAuth2 access tokens for XOAUTH2: Microsoft 365 through msal, Google through google-auth.

Microsoft and Google no longer take passwords over IMAP and SMTP for organisations; a mailbox (or
the SMTP account) gets a short-lived access token from its provider instead, one of four ways:

* microsoft / client_credentials: the app registration's own secret (IMAP.AccessAsApp, no user);
* microsoft / refresh_token: delegated, a refresh token stored by `mailbot oauth login` (device code);
* google / service_account: a service account with domain-wide delegation acting as `subject`;
* google / refresh_token: an installed-app client and a user's refresh token.

`TokenSource.token()` hands out a token valid for at least `refresh_before_seconds` more (5 minutes
by default), refreshing it otherwise, so no IMAP login or SMTP AUTH ever starts with a token about to
lapse. The token is cached per account in `<data_dir>/oauth/<account>.json` (mode 0600, folder 0700),
so `poll --once` runs and worker restarts do not each ask the provider again. The same file records
the last refresh failure and counts them: `mailbot status`, the metrics and `mailbot oauth status`
read it from there (`read_states`), in any process. A failed refresh is a `TokenError` (a
`SourceError`, so a poll fails for that mailbox only) and one ERROR log line naming the account;
neither carries a secret: provider errors are reduced to their code and first line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from mailbot.adapters.ports import SourceError

log = logging.getLogger(__name__)

Provider = Literal["microsoft", "google"]
Flow = Literal["client_credentials", "refresh_token", "service_account"]

MICROSOFT_AUTHORITY = "https://login.microsoftonline.com/{tenant}"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (an address, not a secret)
# msal adds offline_access, openid and profile by itself (and refuses them when passed).
DEFAULT_SCOPES: dict[tuple[str, str], tuple[str, ...]] = {
    ("microsoft", "client_credentials"): ("https://outlook.office365.com/.default",),
    ("microsoft", "refresh_token"): (
        "https://outlook.office365.com/IMAP.AccessAsUser.All",
        "https://outlook.office365.com/SMTP.Send",
    ),
    ("google", "service_account"): ("https://mail.google.com/",),
    ("google", "refresh_token"): ("https://mail.google.com/",),
}


class TokenProvider(Protocol):
    """What the IMAP and SMTP adapters log in with: a token now, and word back when it was refused."""

    def __call__(self) -> str: ...

    def forget(self, token: str) -> None: ...


class TokenError(SourceError):
    """No usable access token: the refresh failed. The message names the account, never a secret."""


@dataclass(frozen=True)
class OAuthSecrets:
    """What the flow needs from env or the secrets dir; read at each refresh so a new login counts."""

    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    service_account_key: str | None = field(default=None, repr=False)  # the JSON key file's content


@dataclass(frozen=True, kw_only=True)
class OAuthConfig:
    account: str  # the mailbox name, or "smtp": names the cache file, the log lines and the metrics
    label: str  # "mailbox pm" / "smtp": how messages refer to it
    provider: Provider
    flow: Flow
    username: str  # the mail login (the XOAUTH2 user)
    cache_dir: Path
    secrets: Callable[[], OAuthSecrets] = field(repr=False, compare=False)
    tenant: str | None = None
    client_id: str | None = None
    subject: str | None = None
    scopes: tuple[str, ...] = ()
    authority: str | None = None
    token_uri: str | None = None
    ca_file: str | None = None
    refresh_before_seconds: float = 300.0
    timeout: float = 30.0

    @property
    def effective_scopes(self) -> list[str]:
        return list(self.scopes or DEFAULT_SCOPES.get((self.provider, self.flow), ()))

    @property
    def effective_authority(self) -> str:
        return self.authority or MICROSOFT_AUTHORITY.format(tenant=self.tenant or "organizations")

    @property
    def effective_token_uri(self) -> str:
        return self.token_uri or GOOGLE_TOKEN_URI


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    expires_at: float  # Unix time
    refresh_token: str | None = field(default=None, repr=False)  # a rotated one, when the provider sent it


@dataclass(frozen=True)
class TokenState:
    """What `status`, the metrics and `oauth status` may know about an account's token (no secret)."""

    account: str
    provider: str
    flow: str
    expires_at: float | None
    refreshed_at: float | None
    failures: int  # refresh failures ever counted for this account (a Prometheus counter)
    last_error: str  # empty once a refresh succeeded again
    failed_at: float | None

    def seconds_left(self, now: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - now


def xoauth2_string(username: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64): the same for IMAP and SMTP."""
    return f"user={username}\x01auth=Bearer {token}\x01\x01"


def cache_dir_in(data_dir: Path) -> Path:
    return data_dir / "oauth"


class TokenSource:
    """Hands out an access token for one account, refreshed `refresh_before_seconds` before expiry."""

    def __init__(self, config: OAuthConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self._lock = threading.Lock()
        self._cache = _CacheFile(config.cache_dir, config.account)

    def __repr__(self) -> str:
        return f"TokenSource({self.config.label}, {self.config.provider}/{self.config.flow})"

    def __call__(self) -> str:
        return self.token()

    def token(self) -> str:
        with self._lock:
            data = self._cache.load()
            access, expires = data.get("access_token"), data.get("expires_at")
            margin = self.config.refresh_before_seconds
            fresh = isinstance(expires, int | float) and expires - margin > self.clock()
            if isinstance(access, str) and fresh:
                return access
            return self._refresh(data).access_token

    def forget(self, token: str) -> None:
        """The server refused `token` (revoked early, consent withdrawn): the next call refreshes
        instead of offering it again until it expires by the clock."""
        with self._lock:
            data = self._cache.load()
            if data.get("access_token") == token:
                data["expires_at"] = 0
                self._cache.save(data)

    def refresh(self) -> Token:
        """A new token now, whatever the cache holds (`mailbot oauth login` for the app-only flows)."""
        with self._lock:
            return self._refresh(self._cache.load())

    def _refresh(self, data: dict[str, Any]) -> Token:
        config = self.config
        now = self.clock()
        try:
            token = fetch_token(config, rotated=_str_or_none(data.get("refresh_token")))
        except Exception as exc:
            why = describe_failure(exc)
            data.update(
                last_error=why, failed_at=now, failures=int(data.get("failures", 0)) + 1, **_kind(config)
            )
            self._cache.save(data)
            log.error(
                "OAuth2: refreshing the access token of %s (%s/%s) failed: %s",
                config.label, config.provider, config.flow, why,
            )
            raise TokenError(
                f"OAuth2 token refresh failed for {config.label} ({config.username}, "
                f"{config.provider}/{config.flow}): {why}"
            ) from exc
        data.update(
            access_token=token.access_token, expires_at=token.expires_at, refreshed_at=now,
            last_error="", failed_at=None, **_kind(config),
        )
        if token.refresh_token:
            data["refresh_token"] = token.refresh_token
        self._cache.save(data)
        log.info(
            "OAuth2: new access token for %s, valid until %s",
            config.label, datetime.fromtimestamp(token.expires_at, UTC).isoformat(timespec="seconds"),
        )
        return token


def _kind(config: OAuthConfig) -> dict[str, str]:
    return {"provider": config.provider, "flow": config.flow}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def fetch_token(config: OAuthConfig, *, rotated: str | None = None) -> Token:
    """Ask the provider for a token; `rotated` is a refresh token the provider handed out since login."""
    secrets = config.secrets()
    if config.provider == "microsoft":
        return _microsoft(config, secrets, rotated)
    return _google(config, secrets, rotated)


def microsoft_app(config: OAuthConfig, secrets: OAuthSecrets | None = None) -> Any:
    """The msal application for the config: confidential for client credentials, public otherwise."""
    import msal

    options: dict[str, Any] = {
        "authority": config.effective_authority,
        "http_client": http_session(config),
        "instance_discovery": False,  # would ask login.microsoftonline.com about a private authority
        "token_cache": msal.TokenCache(),  # in memory only: the cache file is ours
    }
    if config.flow == "client_credentials":
        secret = (secrets or config.secrets()).client_secret
        return msal.ConfidentialClientApplication(config.client_id, client_credential=secret, **options)
    return msal.PublicClientApplication(config.client_id, **options)


def http_session(config: OAuthConfig) -> Any:
    """A requests session with the config's CA and timeout on every request.

    Per request, not per session: requests lets REQUESTS_CA_BUNDLE in the environment override a
    session's `verify` (psf/requests#3829), which would silently drop a configured `ca_file`.
    """
    import requests

    class _Session(requests.Session):
        def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
            if config.ca_file:
                kwargs["verify"] = config.ca_file
            kwargs.setdefault("timeout", config.timeout)
            return super().request(method, url, *args, **kwargs)

    return _Session()


def _microsoft(config: OAuthConfig, secrets: OAuthSecrets, rotated: str | None) -> Token:
    app = microsoft_app(config, secrets)
    scopes = config.effective_scopes
    if config.flow == "client_credentials":
        result = app.acquire_token_for_client(scopes=scopes)
    else:
        refresh = rotated or secrets.refresh_token
        if not refresh:
            raise _Refused(f"no refresh token: run `mailbot oauth login {config.account}`")
        result = app.acquire_token_by_refresh_token(refresh, scopes=scopes)
    return token_from_msal(result)


def token_from_msal(result: dict[str, Any] | None) -> Token:
    if not result or "access_token" not in result:
        result = result or {}
        error = str(result.get("error") or "no token in the answer")
        text = str(result.get("error_description") or "").strip().splitlines()
        raise _Refused(f"{error}: {text[0]}" if text else error)
    return Token(
        access_token=str(result["access_token"]),
        expires_at=time.time() + float(result.get("expires_in", 3600)),
        refresh_token=_str_or_none(result.get("refresh_token")),
    )


def _google(config: OAuthConfig, secrets: OAuthSecrets, rotated: str | None) -> Token:
    from google.auth.transport.requests import Request

    session = http_session(config)
    scopes = config.effective_scopes
    credentials: Any
    if config.flow == "service_account":
        from google.oauth2 import service_account

        if not secrets.service_account_key:
            raise _Refused("the service account key is empty")
        try:
            info = json.loads(secrets.service_account_key)
        except ValueError:
            raise _Refused("the service account key is not JSON (use the key file Google gave you)") from None
        info = {**info, "token_uri": config.effective_token_uri} if config.token_uri else info
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=scopes, subject=config.subject or config.username
        )
    else:
        from google.oauth2.credentials import Credentials

        credentials = Credentials(  # type: ignore[no-untyped-call]
            None,
            refresh_token=rotated or secrets.refresh_token,
            token_uri=config.effective_token_uri,
            client_id=config.client_id,
            client_secret=secrets.client_secret,
            scopes=scopes,
        )
    try:
        credentials.refresh(Request(session))
    finally:
        session.close()
    expiry = credentials.expiry  # naive UTC in google-auth
    expires_at = expiry.replace(tzinfo=UTC).timestamp() if expiry is not None else time.time() + 3600
    new_refresh = getattr(credentials, "refresh_token", None)
    return Token(
        access_token=str(credentials.token),
        expires_at=expires_at,
        refresh_token=new_refresh if new_refresh and new_refresh != secrets.refresh_token else None,
    )


class _Refused(Exception):
    """The provider (or the config) said no; the text is already safe to show."""


def describe_failure(exc: BaseException) -> str:
    """One line, no secret: provider errors by code and first line, network trouble by its kind."""
    if isinstance(exc, _Refused):
        text = str(exc)
    else:
        try:
            from google.auth.exceptions import RefreshError, TransportError
        except ImportError:  # pragma: no cover - google-auth is a dependency
            RefreshError = TransportError = ()  # type: ignore[assignment,misc]
        import requests

        if isinstance(exc, RefreshError) and exc.args:
            text = str(exc.args[0])
        elif isinstance(exc, TransportError | requests.RequestException):
            text = f"the token endpoint cannot be reached ({type(exc).__name__})"
        elif isinstance(exc, ValueError):
            text = str(exc)  # msal's authority and discovery problems are ValueErrors with plain text
        else:
            text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:300]


class _CacheFile:
    """`<dir>/<account>.json`, 0600 in a 0700 folder, replaced atomically."""

    def __init__(self, directory: Path, account: str) -> None:
        self.path = directory / f"{account}.json"

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: dict[str, Any]) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = directory / f".{self.path.name}.{os.getpid()}.{threading.get_ident()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        temporary.replace(self.path)


def forget(cache_dir: Path, account: str) -> None:
    """Drop the cached token (a new login makes the old refresh token and its access token moot)."""
    with contextlib.suppress(FileNotFoundError):
        (cache_dir / f"{account}.json").unlink()


def read_states(cache_dir: Path, accounts: Sequence[str] | None = None) -> list[TokenState]:
    """Every account's token facts, from the cache files (missing or unreadable files are skipped)."""
    if accounts is None:
        names = sorted(p.stem for p in cache_dir.glob("*.json")) if cache_dir.is_dir() else []
    else:
        names = list(accounts)
    states = []
    for name in names:
        data = _CacheFile(cache_dir, name).load()
        if not data:
            continue
        states.append(
            TokenState(
                account=name,
                provider=str(data.get("provider", "")),
                flow=str(data.get("flow", "")),
                expires_at=_number(data.get("expires_at")),
                refreshed_at=_number(data.get("refreshed_at")),
                failures=int(data.get("failures", 0) or 0),
                last_error=str(data.get("last_error", "") or ""),
                failed_at=_number(data.get("failed_at")),
            )
        )
    return states


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None

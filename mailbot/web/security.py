"""The console's browser-facing defences: headers on every response, cookies, CSRF, login throttling.

Mail is written by strangers and shown to staff, so the page must stay inert even if an escape were
missed somewhere: the Content-Security-Policy allows scripts only from our own origin (htmx and the
keyboard shortcuts, both static files), no inline script or style, no plugins, no framing.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "mailbot_session"
LOGIN_COOKIE = "mailbot_login"  # the pre-login CSRF token (double submit)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Attachments are the buyer's bytes: nothing in them may run even when opened directly.
ATTACHMENT_CSP = "default-src 'none'; img-src 'self'; sandbox"

_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class SecurityHeaders:
    """ASGI middleware: the security headers on every response, a response's own CSP taking precedence."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Pages hold case data and are never cached; the static files (htmx, CSS) may be, for an hour.
        cache = b"public, max-age=3600" if str(scope.get("path", "")).startswith("/static/") else b"no-store"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in _HEADERS if name not in present)
                if b"cache-control" not in present:
                    headers.append((b"cache-control", cache))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secure_cookies(request: Request) -> bool:
    """Cookies are marked Secure unless the console is reached on a loopback address over plain HTTP."""
    return request.url.scheme == "https" or (request.url.hostname or "") not in LOOPBACK


def set_session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def safe_next(target: str | None, default: str = "/cases") -> str:
    """Where to go after login: only a path on this site (no scheme, no host, no `//` or `/\\` trick)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ch in target for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


class LoginThrottle:
    """Failed sign-ins per address and per client: past the limit within the window, wait.

    Kept in memory: the console is one process, and a restart forgetting a few failures is harmless
    next to the argon2 cost every attempt pays anyway.
    """

    def __init__(
        self,
        *,
        per_account: int = 5,
        per_client: int = 20,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_account = per_account
        self.per_client = per_client
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def wait_seconds(self, account: str, client: str) -> int:
        """0 when an attempt may be made now, else how many seconds until one may."""
        now = self.clock()
        with self._lock:
            waits = []
            for key, limit in ((f"a:{account.lower()}", self.per_account), (f"c:{client}", self.per_client)):
                times = self._recent(key, now)
                if len(times) >= limit:
                    waits.append(times[0] + self.window - now)
            return max(1, int(max(waits)) + 1) if waits else 0

    def failed(self, account: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (f"a:{account.lower()}", f"c:{client}"):
                self._recent(key, now).append(now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop(f"a:{account.lower()}", None)

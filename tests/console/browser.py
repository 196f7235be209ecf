"""The console served by uvicorn on a free loopback port, and Debian's chromium driven by Playwright.

No browser is ever downloaded: Playwright launches /usr/bin/chromium. Without it the browser tests
are skipped on a laptop and fail in CI (CI=true), like the tests that need Dovecot. The helpers
here (a page that records dialogs and CSP violations, signing in) are shared by every browser test.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fixtures.servers import unavailable
from sqlalchemy.engine import Engine

from mailbot.services.manual_reply import ReplySetup
from mailbot.settings_due import DueSettings
from mailbot.web.app import build_app

from .installation import PASSWORD

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def chromium_path() -> str:
    path = os.environ.get("MAILBOT_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        message = "chromium is not installed (apt-get install -y chromium); the browser tests need it"
        unavailable(message)
    return path


@contextmanager
def serve(
    engine: Engine, replies: ReplySetup | None = None, due: DueSettings | None = None
) -> Iterator[str]:
    """Run the console in a thread on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = build_app(engine, replies=replies, due=due)
    config = uvicorn.Config(app, log_level="warning", server_header=False)
    server = uvicorn.Server(config)
    started = threading.Event()

    original_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original_startup(sockets)
        started.set()

    server.startup = startup  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the console did not start within 30 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def watched_page(chromium: Any) -> Iterator[Any]:
    """A 1280 px page that records every dialog (dismissed) and every CSP violation it reports.

    `page.dialogs` must stay empty when hostile mail is shown; `page.csp_violations` must stay empty
    on every page, or the policy blocks something the console itself needs.
    """
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.dialogs = []
    page.csp_violations = []

    def on_dialog(dialog: Any) -> None:
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on(
        "console",
        lambda msg: page.csp_violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    try:
        yield page
    finally:
        context.close()


def sign_in(page: Any, console: str, email: str, path: str = "/cases") -> None:
    page.goto(console + path)
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("header.top nav")

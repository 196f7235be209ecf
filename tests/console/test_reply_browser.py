"""In a real browser: a staff member replies with a template; it reaches a real SMTP server once."""

from __future__ import annotations

import email
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fixtures.servers import SmtpCapture

from mailbot.adapters.maildir import FolderSentCopies
from mailbot.adapters.smtp import SmtpConfig, SmtpTransport
from mailbot.services import casework_view, manual_reply
from mailbot.services.coordination import WorkerIdentity
from mailbot.services.outbox import OutboxPolicy, drain

from .browser import serve
from .installation import Installation
from .test_web_browser import sign_in


@pytest.fixture
def console(sqlite_installation: Installation) -> Iterator[str]:
    replies = manual_reply.setup_from_settings(sqlite_installation.runtime.settings)
    with serve(sqlite_installation.engine, replies) as url:
        yield url


@pytest.fixture
def page(chromium: Any, console: str) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.csp_violations = []
    page.on(
        "console",
        lambda msg: page.csp_violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    yield page
    context.close()


def drain_to(smtp: SmtpCapture, installation: Installation, tmp_path: Path) -> None:
    config = SmtpConfig(host=smtp.host, port=smtp.port, security="plain", timeout=5.0)
    report = drain(
        installation.engine,
        lambda: SmtpTransport(config),
        lambda mailbox: FolderSentCopies(tmp_path / "sent"),
        lambda: datetime.now(UTC),
        OutboxPolicy(backoff_seconds=0),
        worker=WorkerIdentity.new(),
    )
    assert report.error is None and report.failed == 0 and report.uncertain == 0, report


def test_a_staff_member_replies_with_a_template_and_waits_on_the_buyer(
    page: Any, console: str, sqlite_installation: Installation, smtp_server: SmtpCapture, tmp_path: Path
) -> None:
    sqlite_installation.deliver_file("pm", "console-photo.eml")
    ref = sqlite_installation.poll()[0]
    sqlite_installation.user("ana@support.example")
    sign_in(page, console, "ana@support.example", f"/cases/{ref}")

    page.click("text=Reply to the buyer")
    page.select_option("select[name=template]", "status_inquiry")
    page.click("button:has-text('Preview')")
    page.wait_for_selector("#reply-body")
    assert page.inner_text("#reply-to") == "maria.lopez@andes-buyer.example"
    assert f"[Case #{ref}]" in page.inner_text("#reply-subject")
    assert "> please cancel the production monitoring service" in page.inner_text("#reply-body")
    page.click("button:has-text('Send')")
    page.wait_for_selector("p.flash:has-text('reply by ana@support.example (template status_inquiry')")
    page.keyboard.press("w")
    page.wait_for_selector("dl.facts .status:has-text('waiting on buyer')")

    drain_to(smtp_server, sqlite_installation, tmp_path)
    drain_to(smtp_server, sqlite_installation, tmp_path)  # a second drain sends nothing again
    parsed = [email.message_from_bytes(m.data) for m in smtp_server.messages]
    ours = [m for m in parsed if m["Auto-Submitted"] is None]  # the staff reply, not the automatic one
    assert len(ours) == 1
    assert ours[0]["In-Reply-To"] == "<console-photo-01@andes-buyer.example>"
    assert f"[Case #{ref}]" in ours[0]["Subject"]
    assert ours[0]["To"] == "maria.lopez@andes-buyer.example"

    page.reload()
    page.wait_for_selector("article.msg.out:has-text('staff reply') .delivery.d-sent")
    view = casework_view.case_view(sqlite_installation.engine, ref)
    assert view is not None and view.case.status == "waiting"
    assert page.csp_violations == []

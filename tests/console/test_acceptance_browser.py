"""Issue 8's acceptance flow in one real browser, over the real servers mail travels through.

The "pm" mailbox is an account on the real Dovecot, replies go to a real aiosmtpd server, the
console runs under uvicorn and Debian's chromium drives it. A staff member finds a case by order
number, reads it, opens the photo, takes it, replies with a template, waits on the buyer; the
buyer's answer, APPENDed to Dovecot and polled, reopens the case; she resolves it.
"""

from __future__ import annotations

import email
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from fixtures.servers import DovecotServer, SmtpCapture

from mailbot.services import casework_view, manual_reply

from .browser import serve, sign_in, watched_page
from .installation import EML, Installation, make_installation

ORDER = "3909797815690838"
STAFF = "ana@support.example"


@pytest.fixture
def installation(
    tmp_path: Path, dovecot: DovecotServer, imap_user: str, smtp_server: SmtpCapture
) -> Iterator[Installation]:
    database = f"sqlite:///{tmp_path / 'mailbot.db'}"
    made = make_installation(tmp_path, database, dovecot=dovecot, imap_user=imap_user, smtp=smtp_server)
    yield made
    made.runtime.close_sources()
    made.engine.dispose()


@pytest.fixture
def console(installation: Installation) -> Iterator[str]:
    replies = manual_reply.setup_from_settings(installation.runtime.settings)
    with serve(installation.engine, replies) as url:
        yield url


@pytest.fixture
def page(chromium: Any, console: str) -> Iterator[Any]:
    with watched_page(chromium) as watched:
        yield watched


def staff_replies(smtp: SmtpCapture) -> list[Message]:
    """What reached the SMTP server from staff: mailbot's own automatic replies carry Auto-Submitted."""
    parsed = [email.message_from_bytes(m.data) for m in smtp.messages]
    return [m for m in parsed if m["Auto-Submitted"] is None]


def buyer_answer(to: Message) -> bytes:
    """The buyer's mail client answering our reply: the fixture's text, threaded under `to`."""
    raw = (EML / "console-photo-answer.eml").read_bytes()
    threading = (
        f"Subject: Re: {to['Subject']}\r\nIn-Reply-To: {to['Message-ID']}\r\n"
        f"References: {to['References'] or ''} {to['Message-ID']}\r\n"
    ).encode()
    return threading + raw


def drain(installation: Installation) -> None:
    report = installation.runtime.drain()
    assert report.error is None and report.failed == 0 and report.uncertain == 0, report


def test_staff_work_a_case_from_search_through_the_buyers_answer_to_resolved(
    page: Any, console: str, installation: Installation, smtp_server: SmtpCapture
) -> None:
    installation.deliver_file("pm", "console-photo.eml")
    installation.deliver_file("pm", "console-xss.eml")  # another case, which the search must leave out
    refs = installation.poll()
    assert len(refs) == 2
    installation.user(STAFF)
    sign_in(page, console, STAFF)

    # finds the case by order number
    page.fill("input[name=q]", ORDER)
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("text=searched as order number")
    rows = page.locator("table.queue tr.row")
    assert rows.count() == 1
    rows.first.locator("a").click()
    page.wait_for_url("**/cases/*")
    ref = page.url.rsplit("/", 1)[-1]
    assert ref in refs
    page.wait_for_selector(f"text=#{ref}")

    # reads the buyer's text (new part first, quoted history folded) and opens the photo
    body = page.locator("article.msg.in pre.body").first.inner_text()
    assert body.startswith("Hello,") and "please cancel the production monitoring" in body
    assert not page.locator("details.quoted").first.evaluate("d => d.open")
    page.wait_for_function(  # the preview has loaded (a failed load leaves naturalWidth 0: timeout)
        "() => { const i = document.querySelector('img.preview');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    assert page.locator("img.preview").first.evaluate("img => img.naturalWidth") == 48
    with page.expect_download() as download:
        page.click("text=cartons.png")
    assert download.value.suggested_filename == "cartons.png"
    assert Path(download.value.path()).read_bytes().startswith(b"\x89PNG")

    # assigns it to herself
    page.click("button:has-text('Assign to me')")
    page.wait_for_selector(f"#assignee:has-text('{STAFF}')")

    # replies with a template, previewed first
    page.click("text=Reply to the buyer")
    page.select_option("select[name=template]", "status_inquiry")
    page.click("button:has-text('Preview')")
    page.wait_for_selector("#reply-body")
    assert page.inner_text("#reply-to") == "maria.lopez@andes-buyer.example"
    assert f"[Case #{ref}]" in page.inner_text("#reply-subject")
    assert "> please cancel the production monitoring service" in page.inner_text("#reply-body")
    page.click("button:has-text('Send')")
    page.wait_for_selector(f"p.flash:has-text('reply by {STAFF} (template status_inquiry')")

    # sets "waiting on buyer" with the keyboard shortcut
    page.keyboard.press("w")
    page.wait_for_selector("dl.facts .status:has-text('waiting on buyer')")

    # the reply reaches the SMTP server once, threaded and carrying the case reference
    drain(installation)
    drain(installation)  # a second drain sends nothing again
    (ours,) = staff_replies(smtp_server)
    assert ours["In-Reply-To"] == "<console-photo-01@andes-buyer.example>"
    assert f"[Case #{ref}]" in ours["Subject"]
    assert ours["To"] == "maria.lopez@andes-buyer.example"
    page.reload()
    page.wait_for_selector("article.msg.out:has-text('staff reply') .delivery.d-sent")

    # the buyer answers: APPENDed to Dovecot, polled; it joins the case and reopens it
    installation.deliver("pm", buyer_answer(ours))
    assert installation.poll() == []  # no new case
    page.reload()
    page.wait_for_selector("dl.facts .status:has-text('open')")
    assert "the cartons reach Valparaiso on 14 December" in page.locator("article.msg.in").last.inner_text()
    assert "status waiting → open: the buyer wrote again" in page.locator("ul.events").inner_text()

    # she resolves it
    page.click("button:has-text('resolved')")
    page.wait_for_selector("dl.facts .status:has-text('resolved')")
    history = page.locator("ul.events").inner_text()
    assert f"assigned to {STAFF} by {STAFF}" in history
    assert f"open → resolved by {STAFF}" in history
    view = casework_view.case_view(installation.engine, ref)
    assert view is not None and view.case.status == "resolved"
    assert len(staff_replies(smtp_server)) == 1
    assert page.csp_violations == [] and page.dialogs == []

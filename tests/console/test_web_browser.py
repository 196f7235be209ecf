"""The console in a real browser (Debian's chromium): a staff member works a case; hostile mail is inert."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import serve
from .installation import PASSWORD, Installation


@pytest.fixture
def console(sqlite_installation: Installation) -> Iterator[str]:
    with serve(sqlite_installation.engine) as url:
        yield url


@pytest.fixture
def page(chromium: Any, console: str) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.dialogs = []  # every alert/confirm/prompt that fires; a hostile mail must fire none
    page.csp_violations = []

    def on_dialog(dialog: Any) -> None:
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on(
        "console",
        lambda msg: page.csp_violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    yield page
    context.close()


def sign_in(page: Any, console: str, email: str, path: str = "/cases") -> None:
    page.goto(console + path)
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("header.top nav")


def test_a_staff_member_works_a_case_from_search_to_resolved(
    page: Any, console: str, sqlite_installation: Installation
) -> None:
    sqlite_installation.deliver_file("pm", "console-photo.eml")
    sqlite_installation.deliver_file("pm", "console-xss.eml")
    photo_ref = sqlite_installation.poll()[0]
    sqlite_installation.user("ana@support.example")
    sign_in(page, console, "ana@support.example")

    page.fill("input[name=q]", "3909797815690838")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("text=searched as order number")
    rows = page.locator("table.queue tr.row")
    assert rows.count() == 1
    rows.first.locator("a").click()
    page.wait_for_selector(f"text=#{photo_ref}")

    body = page.locator("article.msg.in pre.body").first.inner_text()
    assert body.startswith("Hello,") and "please cancel the production monitoring" in body
    assert not page.locator("details.quoted").first.evaluate("d => d.open")  # history folded

    page.wait_for_function(  # the photo has loaded (or failed: then naturalWidth stays 0 and this times out)
        "() => { const i = document.querySelector('img.preview');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    assert page.locator("img.preview").first.evaluate("img => img.naturalWidth") == 48
    with page.expect_download() as download:
        page.click("text=cartons.png")
    assert download.value.suggested_filename == "cartons.png"
    assert Path(download.value.path()).read_bytes().startswith(b"\x89PNG")

    page.click("button:has-text('Assign to me')")
    page.wait_for_selector("#assignee:has-text('ana@support.example')")
    page.keyboard.press("w")  # the shortcut for "waiting on buyer"
    page.wait_for_selector("dl.facts .status:has-text('waiting on buyer')")
    page.click("button:has-text('resolved')")
    page.wait_for_selector("dl.facts .status:has-text('resolved')")
    history = page.locator("ul.events").inner_text()
    assert "assigned to ana@support.example by ana@support.example" in history
    assert "waiting on buyer → resolved by ana@support.example" in history
    assert page.csp_violations == []


def test_a_hostile_mail_renders_inert(page: Any, console: str, sqlite_installation: Installation) -> None:
    sqlite_installation.deliver_file("pm", "console-xss.eml")
    ref = sqlite_installation.poll()[0]
    sqlite_installation.user("ana@support.example")
    sign_in(page, console, "ana@support.example")
    page.wait_for_selector("table.queue tr.row")
    assert "<script>alert('subject')</script>" in page.locator("td.subject").first.inner_text()
    page.goto(f"{console}/cases/{ref}")
    page.wait_for_selector("article.msg.in")
    text = page.locator("article.msg.in").first.inner_text()
    assert "<script>alert('body')</script>" in text and "javascript:alert('bare')" in text
    assert "<img src=x onerror=alert('name')>" in text
    for link in page.locator("a").all():
        assert not (link.get_attribute("href") or "").lower().startswith("javascript:")
    page.locator("img.preview").first.wait_for()
    page.reload()
    page.wait_for_selector("article.msg.in")
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    assert page.dialogs == []


def test_the_session_id_changes_at_login(page: Any, console: str, sqlite_installation: Installation) -> None:
    sqlite_installation.user("ana@support.example")
    sign_in(page, console, "ana@support.example")
    first = {c["name"]: c for c in page.context.cookies()}["mailbot_session"]
    assert first["httpOnly"] and first["sameSite"] == "Lax"
    sign_in(page, console, "ana@support.example", "/login")
    second = {c["name"]: c for c in page.context.cookies()}["mailbot_session"]
    assert first["value"] != second["value"]


def test_there_is_no_open_redirect_after_login(
    page: Any, console: str, sqlite_installation: Installation
) -> None:
    sqlite_installation.user("ana@support.example")
    sign_in(page, console, "ana@support.example", "/login?next=//evil.example/steal")
    assert page.url == f"{console}/cases"


def test_a_page_asked_for_before_login_opens_after_it(
    page: Any, console: str, sqlite_installation: Installation
) -> None:
    sqlite_installation.user("ana@support.example")
    sign_in(page, console, "ana@support.example", "/cases?status=waiting")
    assert page.url == f"{console}/cases?status=waiting"


def test_a_refused_action_is_shown_not_swallowed(
    page: Any, console: str, sqlite_installation: Installation
) -> None:
    sqlite_installation.deliver_file("pm", "console-photo.eml")
    ref = sqlite_installation.poll()[0]
    sqlite_installation.user("ana@support.example")
    sign_in(page, console, "ana@support.example", f"/cases/{ref}")
    page.wait_for_selector("article.msg.in")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'stale')")
    page.evaluate("document.body.removeAttribute('hx-headers')")
    page.click("button:has-text('resolved')")
    page.wait_for_selector("text=The form expired; reload the page.")

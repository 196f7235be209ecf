"""The console in a real browser (Debian's chromium): hostile mail is inert, sign-in is safe, errors show.

The whole staff flow, from search to resolved across a buyer's answer, is test_acceptance_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .browser import serve, sign_in, watched_page
from .installation import Installation


@pytest.fixture
def console(sqlite_installation: Installation) -> Iterator[str]:
    with serve(sqlite_installation.engine) as url:
        yield url


@pytest.fixture
def page(chromium: Any, console: str) -> Iterator[Any]:
    with watched_page(chromium) as watched:
        yield watched


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

"""The console over HTTP (Starlette's test client, real database): sessions, CSRF, roles, headers.

That every route needs a session, the CSRF token and its role is checked route by route, from the
app's own route table, in test_web_routes.py.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from mailbot.web.app import build_app

from .installation import PASSWORD, Installation

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def client(installation: Installation) -> Iterator[TestClient]:
    with TestClient(build_app(installation.engine), base_url="http://127.0.0.1") as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD, next_: str = "") -> object:
    form = client.get("/login", params={"next": next_} if next_ else None)
    return client.post(
        "/login",
        data={"csrf_token": csrf_of(form.text), "email": email, "password": password, "next": next_},
        follow_redirects=False,
    )


@pytest.fixture
def case_ref(installation: Installation) -> str:
    installation.deliver_file("pm", "console-photo.eml")
    return installation.poll()[0]


def test_healthz_and_login_need_no_session(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"ok": True}
    assert client.get("/login").status_code == 200


def test_a_post_without_a_session_is_refused(client: TestClient, case_ref: str) -> None:
    assert client.post(f"/cases/{case_ref}/status", data={"status": "resolved"}).status_code == 401


def test_a_post_without_the_csrf_token_is_forbidden(
    client: TestClient, installation: Installation, case_ref: str
) -> None:
    installation.user("ana@support.example")
    sign_in(client, "ana@support.example")
    response = client.post(f"/cases/{case_ref}/status", data={"status": "resolved"}, follow_redirects=False)
    assert response.status_code == 403
    wrong = client.post(
        f"/cases/{case_ref}/status",
        data={"status": "resolved", "csrf_token": "guess"},
        follow_redirects=False,
    )
    assert wrong.status_code == 403


def test_a_login_post_without_its_csrf_token_is_forbidden(
    client: TestClient, installation: Installation
) -> None:
    installation.user("ana@support.example")
    response = client.post("/login", data={"email": "ana@support.example", "password": PASSWORD})
    assert response.status_code == 403


def test_an_htmx_request_may_send_the_token_as_a_header(
    client: TestClient, installation: Installation, case_ref: str
) -> None:
    installation.user("ana@support.example")
    sign_in(client, "ana@support.example")
    token = csrf_of(client.get(f"/cases/{case_ref}").text)
    response = client.post(
        f"/cases/{case_ref}/status",
        data={"status": "resolved"},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "resolved" in client.get(response.headers["location"]).text


def test_staff_cannot_correct_a_category(
    client: TestClient, installation: Installation, case_ref: str
) -> None:
    installation.user("ana@support.example", "staff")
    sign_in(client, "ana@support.example")
    token = csrf_of(client.get(f"/cases/{case_ref}").text)
    response = client.post(
        f"/cases/{case_ref}/recategorize",
        data={"csrf_token": token, "field": "category", "value": "report_dispute"},
    )
    assert response.status_code == 403


def test_a_supervisor_sees_corrections_and_an_admin_sees_users(
    client: TestClient, installation: Installation
) -> None:
    installation.user("sup@support.example", "supervisor")
    sign_in(client, "sup@support.example")
    assert client.get("/corrections").status_code == 200
    assert client.get("/users").status_code == 403
    installation.user("root@support.example", "admin")
    sign_in(client, "root@support.example")
    assert "sup@support.example" in client.get("/users").text


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
    ],
)
def test_there_is_no_open_redirect_after_login(
    client: TestClient, installation: Installation, target: str
) -> None:
    installation.user("ana@support.example")
    response = sign_in(client, "ana@support.example", next_=target)
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == "/cases"  # type: ignore[attr-defined]


def test_login_returns_to_the_page_asked_for(client: TestClient, installation: Installation) -> None:
    installation.user("ana@support.example")
    response = sign_in(client, "ana@support.example", next_="/cases?status=waiting")
    assert response.headers["location"] == "/cases?status=waiting"  # type: ignore[attr-defined]


def test_the_session_id_changes_at_login(client: TestClient, installation: Installation) -> None:
    installation.user("ana@support.example")
    sign_in(client, "ana@support.example")
    first = client.cookies.get("mailbot_session")
    sign_in(client, "ana@support.example")
    second = client.cookies.get("mailbot_session")
    assert first and second and first != second
    client.cookies.set("mailbot_session", first)
    assert client.get("/cases", follow_redirects=False).status_code == 303  # the old id is dead


def test_the_session_cookie_is_httponly_and_lax_and_secure_off_loopback(installation: Installation) -> None:
    installation.user("ana@support.example")
    for base, secure in (("http://127.0.0.1", False), ("https://console.example", True)):
        with TestClient(build_app(installation.engine), base_url=base) as client:
            cookie = sign_in(client, "ana@support.example").headers["set-cookie"]  # type: ignore[attr-defined]
            assert "mailbot_session=" in cookie
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie
            assert ("Secure" in cookie) is secure
    with TestClient(build_app(installation.engine), base_url="http://console.example") as client:
        assert "Secure" in client.get("/login").headers["set-cookie"]  # plain HTTP off loopback too


def test_logout_ends_the_session(client: TestClient, installation: Installation) -> None:
    installation.user("ana@support.example")
    sign_in(client, "ana@support.example")
    token = csrf_of(client.get("/cases").text)
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/cases", follow_redirects=False).status_code == 303


def test_failed_logins_are_rate_limited(client: TestClient, installation: Installation) -> None:
    installation.user("ana@support.example")
    for _ in range(5):
        assert sign_in(client, "ana@support.example", "wrong password").status_code == 401  # type: ignore[attr-defined]
    blocked = sign_in(client, "ana@support.example")  # even the right password must wait now
    assert blocked.status_code == 429  # type: ignore[attr-defined]
    assert "Too many failed sign-ins" in blocked.text  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/login", "/healthz", "/static/console.css", "/no-such-page"])
def test_every_response_carries_a_strict_content_security_policy(client: TestClient, path: str) -> None:
    policy = client.get(path).headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_an_attachment_is_a_download_that_is_never_sniffed(
    client: TestClient, installation: Installation
) -> None:
    installation.deliver_file("pm", "console-xss.eml")
    ref = installation.poll()[0]
    installation.user("ana@support.example")
    sign_in(client, "ana@support.example")
    page = client.get(f"/cases/{ref}").text
    links = re.findall(rf'href="(/cases/{ref}/attachments/\d+/\d+)"', page)
    assert len(set(links)) == 2
    image, html = (client.get(link) for link in sorted(set(links)))
    for response in (image, html):
        assert response.headers["content-disposition"].startswith("attachment;")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in response.headers["content-security-policy"]
    assert image.headers["content-type"] == "image/png"
    assert html.headers["content-type"] == "application/octet-stream"  # text/html is never served as such


def test_mail_text_is_escaped_in_the_page(client: TestClient, installation: Installation) -> None:
    installation.deliver_file("pm", "console-xss.eml")
    ref = installation.poll()[0]
    installation.user("ana@support.example")
    sign_in(client, "ana@support.example")
    for page in (client.get(f"/cases/{ref}").text, client.get("/cases").text):
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert "&lt;script&gt;alert(" in page


def test_pages_are_never_cached_but_static_files_may_be(client: TestClient) -> None:
    assert client.get("/login").headers["cache-control"] == "no-store"
    assert "max-age" in client.get("/static/htmx.min.js").headers["cache-control"]


def test_a_supervisor_downloads_the_corrections_export_as_a_zip(
    client: TestClient, installation: Installation, case_ref: str
) -> None:
    installation.user("sup@support.example", "supervisor")
    sign_in(client, "sup@support.example")
    token = csrf_of(client.get(f"/cases/{case_ref}").text)
    client.post(
        f"/cases/{case_ref}/recategorize",
        data={"csrf_token": token, "field": "category", "value": "report_dispute"},
    )
    assert 'href="/corrections/export.zip"' in client.get("/corrections").text
    response = client.get("/corrections/export.zip")
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith('attachment; filename="mailbot-corrections-')
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = sorted(archive.namelist())
        labels = archive.read("labels.jsonl").decode().splitlines()
    assert len(names) == 2 and names[0].endswith(".eml") and names[1] == "labels.jsonl"
    assert json.loads(labels[0])["category"] == "report_dispute"

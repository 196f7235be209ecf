"""Every route of the console, read from the app itself, is guarded: a new route cannot slip through.

Each route must be listed in ROLES with the role it needs (or in PUBLIC); a route added to the app
and not listed here fails `test_every_route_is_listed_with_the_role_it_needs` until someone decides.
Then, for every route the app really has: no session → the login (GET) or 401 (POST); a POST
without the CSRF token → 403; an account below the route's role → 403.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from mailbot.services import manual_reply
from mailbot.web.app import build_app

from .installation import Installation
from .test_web_http import csrf_of, sign_in

PUBLIC = {"/login", "/healthz"}
STATIC = "/static"  # htmx, the stylesheet and the shortcuts script: public files, no case data
ROLES = {
    "/": "staff",
    "/logout": "staff",
    "/cases": "staff",
    "/cases/{ref}": "staff",
    "/cases/{ref}/attachments/{mail_id}/{index}": "staff",
    "/cases/{ref}/assign": "staff",
    "/cases/{ref}/status": "staff",
    "/cases/{ref}/note": "staff",
    "/cases/{ref}/merge": "staff",
    "/cases/{ref}/split": "staff",
    "/cases/{ref}/reply": "staff",
    "/cases/{ref}/reply/preview": "staff",
    "/cases/{ref}/recategorize": "supervisor",
    "/corrections": "supervisor",
    "/corrections/export.zip": "supervisor",
    "/users": "admin",
}
RANK = {"staff": 0, "supervisor": 1, "admin": 2}
PARAM = re.compile(r"\{(\w+)\}")


@pytest.fixture
def app(sqlite_installation: Installation) -> Starlette:
    """The console with every optional part on (replies too), so every route it can have is there."""
    replies = manual_reply.setup_from_settings(sqlite_installation.runtime.settings)
    return build_app(sqlite_installation.engine, replies=replies)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture
def case_ref(sqlite_installation: Installation) -> str:
    sqlite_installation.deliver_file("pm", "console-photo.eml")
    return sqlite_installation.poll()[0]


def routes(app: Starlette) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves; the one mount must be the static files."""
    found: list[tuple[str, str]] = []
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path == STATIC, f"an unexpected mount {route.path}"
            continue
        assert isinstance(route, Route), route
        found.extend((method, route.path) for method in sorted((route.methods or {"GET"}) - {"HEAD"}))
    return found


def guarded(app: Starlette) -> list[tuple[str, str]]:
    return [(method, path) for method, path in routes(app) if path not in PUBLIC]


def concrete(path: str, ref: str) -> str:
    return PARAM.sub(lambda m: {"ref": ref, "mail_id": "1", "index": "0"}[m.group(1)], path)


def test_every_route_is_listed_with_the_role_it_needs(app: Starlette) -> None:
    paths = {path for _method, path in routes(app)}
    assert paths - PUBLIC == set(ROLES), "a route was added or removed: list it in ROLES with its role"
    assert paths >= PUBLIC


def test_every_route_but_login_and_healthz_needs_a_session(
    app: Starlette, client: TestClient, case_ref: str
) -> None:
    checked = guarded(app)
    assert len(checked) >= len(ROLES)
    for method, path in checked:
        response = client.request(method, concrete(path, case_ref), follow_redirects=False)
        if method == "GET":
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login?next="), (method, path)
        else:
            assert response.status_code == 401, (method, path)
    assert client.get("/healthz").status_code == 200 and client.get("/login").status_code == 200


def test_every_post_without_the_csrf_token_is_forbidden(
    app: Starlette, client: TestClient, sqlite_installation: Installation, case_ref: str
) -> None:
    sqlite_installation.user("root@support.example", "admin")  # may do everything but skip the token
    sign_in(client, "root@support.example")
    posts = [path for method, path in guarded(app) if method == "POST"]
    assert "/cases/{ref}/recategorize" in posts and "/cases/{ref}/reply" in posts
    for path in posts:
        response = client.post(concrete(path, case_ref), data={"status": "resolved"}, follow_redirects=False)
        assert response.status_code == 403, path
        assert "The form expired" in response.text


@pytest.mark.parametrize("role", ["staff", "supervisor"])
def test_an_account_gets_403_on_every_route_above_its_role(
    app: Starlette, client: TestClient, sqlite_installation: Installation, case_ref: str, role: str
) -> None:
    sqlite_installation.user(f"{role}@support.example", role)
    sign_in(client, f"{role}@support.example")
    token = csrf_of(client.get(f"/cases/{case_ref}").text)
    above = [(m, p) for m, p in guarded(app) if RANK[ROLES[p]] > RANK[role]]
    assert above, role
    for method, path in above:
        response = client.request(
            method, concrete(path, case_ref), data={"csrf_token": token} if method == "POST" else None
        )
        assert response.status_code == 403, (method, path)
        assert f"This page is for the {ROLES[path]} role." in response.text

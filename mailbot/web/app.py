"""`mailbot web`: the staff console — sign-in, the queue, one case, the actions on it.

Server-rendered Jinja2 (autoescaped: mail is shown as text, never as markup) with htmx for the
actions, over Starlette. Every page but /login and /healthz needs a session; every POST needs the
session's CSRF token; roles are checked here, on the server. Imports services only (import-linter).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mailbot.services import accounts, casework, casework_view, corrections, due_times
from mailbot.services.accounts import SignedIn
from mailbot.services.manual_reply import ReplySetup, macros
from mailbot.settings_due import DueSettings
from mailbot.web import security
from mailbot.web.case_moves import merge_action, split_action
from mailbot.web.reply_routes import reply_routes
from mailbot.web.security import (
    ATTACHMENT_CSP,
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginThrottle,
    SecurityHeaders,
)

STATIC = Path(__file__).resolve().parent / "static"
MAX_FORM_BYTES = 256 * 1024

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass
class Console:
    """What the handlers share: the database, the clock, the login throttle, the template engine."""

    engine: Engine
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    jinja: Environment = field(
        default_factory=lambda: Environment(
            loader=PackageLoader("mailbot.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
    )

    def render(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = self.jinja.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status_code)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _short_when(value: datetime) -> str:
    """The queue's compact form ("Dec 07 14:04"); the full date is in the cell's title."""
    return value.strftime("%b %d %H:%M")


def _reply_links(replies: ReplySetup | None) -> dict[str, Any]:
    """What the case page offers for replying: the reply form and the canned responses, if set up."""
    if replies is None:
        return {"may_reply": False, "macros": ()}
    return {"may_reply": True, "macros": macros(replies).macros}


def build_app(
    engine: Engine,
    *,
    clock: Callable[[], datetime] | None = None,
    replies: ReplySetup | None = None,
    due: DueSettings | None = None,
) -> Starlette:
    """The console; with `replies` (the installation's mailboxes and templates) staff can also reply."""
    console = Console(engine=engine) if clock is None else Console(engine=engine, clock=clock)
    due_policy = due or DueSettings()
    console.jinja.globals["due_of"] = lambda c: due_times.due_state(
        c.due_at, c.status, console.clock(), due_policy
    )
    console.jinja.filters["size"] = _size
    console.jinja.filters["when"] = _when
    console.jinja.filters["short_when"] = _short_when
    console.jinja.globals["status_labels"] = casework.STATUS_LABELS
    console.jinja.globals["csrf_field"] = CSRF_FIELD
    console.jinja.globals["count_cap"] = casework_view.COUNT_CAP

    async def current(request: Request) -> SignedIn | None:
        token = request.cookies.get(SESSION_COOKIE)
        return await run_in_threadpool(accounts.session_for, engine, token, clock=console.clock)

    def page(role: str = "staff") -> Callable[[Callable[[Request, SignedIn], Awaitable[Response]]], Endpoint]:
        """A handler that needs a session with `role`; a POST also needs the session's CSRF token."""

        def wrap(handler: Callable[[Request, SignedIn], Awaitable[Response]]) -> Endpoint:
            async def endpoint(request: Request) -> Response:
                user = await current(request)
                if user is None:
                    if request.method != "GET":
                        return console.render("error.html.j2", 401, user=None, message="Please sign in.")
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
                if request.method == "POST":
                    form = await request.form(max_part_size=MAX_FORM_BYTES)
                    given = request.headers.get(CSRF_HEADER) or str(form.get(CSRF_FIELD) or "")
                    if not security.csrf_matches(user.csrf_token, given):
                        return console.render(
                            "error.html.j2", 403, user=user, message="The form expired; reload the page."
                        )
                if not user.account.may(role):
                    return console.render(
                        "error.html.j2", 403, user=user, message=f"This page is for the {role} role."
                    )
                return await handler(request, user)

            return endpoint

        return wrap

    # -- sign-in ------------------------------------------------------------------------------------

    async def login_form(request: Request) -> Response:
        pre = secrets.token_urlsafe(24)
        response = console.render(
            "login.html.j2", user=None, csrf=pre, next=security.safe_next(request.query_params.get("next"))
        )
        response.set_cookie(
            LOGIN_COOKIE,
            pre,
            max_age=3600,
            httponly=True,
            samesite="lax",
            secure=security.secure_cookies(request),
            path="/login",
        )
        return response

    async def login_submit(request: Request) -> Response:
        form = await request.form(max_part_size=MAX_FORM_BYTES)
        if not security.csrf_matches(request.cookies.get(LOGIN_COOKIE), str(form.get(CSRF_FIELD) or "")):
            return console.render(
                "error.html.j2", 403, user=None, message="The form expired; reload the page."
            )
        email = str(form.get("email") or "").strip()[:320]
        password = str(form.get("password") or "")[:1024]
        target = security.safe_next(str(form.get("next") or ""))
        client = _client(request)
        wait = console.throttle.wait_seconds(email, client)
        if wait:
            return _login_again(
                request, f"Too many failed sign-ins. Try again in {wait} seconds.", target, 429
            )
        signed = await run_in_threadpool(
            accounts.sign_in,
            engine,
            email,
            password,
            previous_token=request.cookies.get(SESSION_COOKIE),
            clock=console.clock,
        )
        if signed is None:
            console.throttle.failed(email, client)
            return _login_again(request, "Wrong address or password.", target, 401)
        console.throttle.succeeded(email)
        response = RedirectResponse(target, status_code=303)
        max_age = int((signed.expires_at - console.clock()).total_seconds())
        security.set_session_cookie(response, request, signed.token, max_age)
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    def _login_again(request: Request, message: str, target: str, status: int) -> Response:
        pre = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        response = console.render("login.html.j2", status, user=None, csrf=pre, next=target, error=message)
        response.set_cookie(
            LOGIN_COOKIE,
            pre,
            max_age=3600,
            httponly=True,
            samesite="lax",
            secure=security.secure_cookies(request),
            path="/login",
        )
        return response

    @page()
    async def logout(request: Request, user: SignedIn) -> Response:
        await run_in_threadpool(accounts.sign_out, engine, user.token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    @page()
    async def root(request: Request, user: SignedIn) -> Response:
        return RedirectResponse("/cases", status_code=303)

    # -- the queue ----------------------------------------------------------------------------------

    @page()
    async def queue(request: Request, user: SignedIn) -> Response:
        q = request.query_params
        assignee_param = q.get("assignee", "")
        assignee = {"": None, "me": user.account.email, "none": ""}.get(assignee_param, assignee_param)
        filters = casework_view.QueueFilters(
            status=q.get("status") or None,
            category=q.get("category") or None,
            mailbox=q.get("mailbox") or None,
            language=q.get("language") or None,
            assignee=assignee,
            search=q.get("q", "")[:200],
            after=q.get("after") or None,
            due=q.get("due") if q.get("due") in ("overdue", "soon") else None,
        )
        result = await run_in_threadpool(
            lambda: casework_view.queue_page(engine, filters, due_policy=due_policy)
        )
        base = {k: v for k, v in q.items() if k != "after" and v}

        def link(**changes: str | None) -> str:
            params = {**base, **changes}
            return "/cases?" + urlencode({k: v for k, v in params.items() if v})

        next_link = link(after=result.next_after) if result.next_after else None
        return console.render(
            "queue.html.j2", user=user, page=result, params=base, link=link, next_link=next_link
        )

    # -- one case -----------------------------------------------------------------------------------

    @page()
    async def case_page(request: Request, user: SignedIn) -> Response:
        await run_in_threadpool(
            lambda: due_times.fill_due_times(engine, due_policy, limit=due_times.FILL_BATCH)
        )
        view = await run_in_threadpool(casework_view.case_view, engine, request.path_params["ref"])
        if view is None:
            return console.render("error.html.j2", 404, user=user, message="No such case.")
        return console.render(
            "case.html.j2",
            user=user,
            view=view,
            flash=request.query_params.get("done", "")[:200],
            error=request.query_params.get("error", "")[:200],
            statuses=casework.STAFF_STATUSES,
            intents=casework.INTENTS,
            may_correct=user.account.may("supervisor"),
            **_reply_links(replies),
        )

    @page()
    async def attachment(request: Request, user: SignedIn) -> Response:
        try:
            mail_id = int(request.path_params["mail_id"])
            index = int(request.path_params["index"])
        except ValueError:
            return console.render("error.html.j2", 404, user=user, message="No such attachment.")
        found = await run_in_threadpool(
            casework_view.attachment, engine, request.path_params["ref"], mail_id, index
        )
        if found is None:
            return console.render("error.html.j2", 404, user=user, message="No such attachment.")
        previewable = found.content_type in casework_view.PREVIEW_TYPES
        media = found.content_type if previewable else "application/octet-stream"
        return Response(
            found.data,
            media_type=media,
            headers={
                "Content-Disposition": "attachment; filename*=UTF-8''" + quote(found.filename, safe=""),
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": ATTACHMENT_CSP,
                "Cache-Control": "private, no-store",
            },
        )

    def _action(
        run: Callable[[Request, SignedIn, Any], casework.ActionResult], role: str = "staff"
    ) -> Endpoint:
        @page(role)
        async def endpoint(request: Request, user: SignedIn) -> Response:
            ref = request.path_params["ref"]
            form = await request.form(max_part_size=MAX_FORM_BYTES)
            try:
                result = await run_in_threadpool(run, request, user, form)
                target = f"/cases/{quote(result.ref)}?" + urlencode({"done": result.summary})
            except casework.CaseworkError as exc:
                target = f"/cases/{quote(casework.normalise_ref(ref))}?" + urlencode({"error": str(exc)})
            return RedirectResponse(target, status_code=303)

        return endpoint

    def do_assign(request: Request, user: SignedIn, form: Any) -> casework.ActionResult:
        who = None if form.get("to") == "nobody" else user.account.email
        return casework.assign(
            engine, request.path_params["ref"], who, by=user.account.email, clock=console.clock
        )

    def do_status(request: Request, user: SignedIn, form: Any) -> casework.ActionResult:
        return casework.set_status(
            engine,
            request.path_params["ref"],
            str(form.get("status") or ""),
            by=user.account.email,
            clock=console.clock,
        )

    def do_note(request: Request, user: SignedIn, form: Any) -> casework.ActionResult:
        return casework.add_note(
            engine,
            request.path_params["ref"],
            str(form.get("body") or ""),
            by=user.account.email,
            clock=console.clock,
        )

    def do_recategorize(request: Request, user: SignedIn, form: Any) -> casework.ActionResult:
        return casework.recategorize(
            engine,
            request.path_params["ref"],
            str(form.get("field") or ""),
            str(form.get("value") or ""),
            by=user.account.email,
            clock=console.clock,
        )

    # -- supervisor and admin pages -----------------------------------------------------------------

    @page("supervisor")
    async def corrections_page(request: Request, user: SignedIn) -> Response:
        rows = await run_in_threadpool(corrections.list_corrections, engine)
        return console.render("corrections.html.j2", user=user, rows=rows)

    @page("supervisor")
    async def corrections_download(request: Request, user: SignedIn) -> Response:
        """The corrections export as one zip: the .eml files and labels.jsonl `mailbot eval` reads."""
        handle, path = tempfile.mkstemp(prefix="mailbot-corrections-", suffix=".zip")
        try:
            with os.fdopen(handle, "wb") as out:
                await run_in_threadpool(corrections.export_zip, engine, out)
        except BaseException:
            Path(path).unlink()
            raise
        return FileResponse(
            path,
            media_type="application/zip",
            filename=corrections.export_filename(console.clock()),
            headers={"Cache-Control": "private, no-store"},
            background=BackgroundTask(Path(path).unlink),
        )

    @page("admin")
    async def users_page(request: Request, user: SignedIn) -> Response:
        rows = await run_in_threadpool(accounts.list_users, engine)
        return console.render("users.html.j2", user=user, rows=rows)

    routes = [
        Route("/", root),
        Route("/healthz", healthz),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/cases", queue),
        Route("/cases/{ref}", case_page),
        Route("/cases/{ref}/attachments/{mail_id}/{index}", attachment),
        Route("/cases/{ref}/assign", _action(do_assign), methods=["POST"]),
        Route("/cases/{ref}/status", _action(do_status), methods=["POST"]),
        Route("/cases/{ref}/note", _action(do_note), methods=["POST"]),
        Route("/cases/{ref}/recategorize", _action(do_recategorize, "supervisor"), methods=["POST"]),
        Route("/cases/{ref}/merge", _action(merge_action(engine, console.clock)), methods=["POST"]),
        Route("/cases/{ref}/split", _action(split_action(engine, console.clock)), methods=["POST"]),
        Route("/corrections", corrections_page),
        Route("/corrections/export.zip", corrections_download),
        Route("/users", users_page),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    if replies is not None:
        routes[-1:-1] = reply_routes(console, page, replies, engine, lambda: console.clock())
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])

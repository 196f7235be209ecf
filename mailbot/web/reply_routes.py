"""The reply form of the console: compose (text, template or canned response), preview, send.

Kept apart from app.py so the pages of the case view and of replying can change independently.
What is sent is what was previewed: the send form carries the previewed choices as hidden fields and
the service renders them again the same way; the form's token makes a second submission a no-op.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from mailbot.core.replies import ReplyAttachment
from mailbot.services import casework, casework_view, manual_reply
from mailbot.services.accounts import SignedIn
from mailbot.services.manual_reply import Draft, ReplyRefused, ReplyRequest, ReplySetup

# The body of a send: the attachments' limit plus room for the text and the form's fields.
MAX_REPLY_BODY = manual_reply.MAX_ATTACHMENT_BYTES + 1024 * 1024

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, SignedIn], Awaitable[Response]]


class _Renders(Protocol):
    def render(self, name: str, status_code: int = 200, **context: Any) -> Response: ...


def _request(ref: str, values: dict[str, str], attachments: tuple[ReplyAttachment, ...] = ()) -> ReplyRequest:
    template = values.get("template") or None
    return ReplyRequest(
        ref=ref,
        text=None if template else values.get("text", ""),
        template=template,
        language=values.get("language") or None,
        token=values.get("token", ""),
        status=values.get("status") or None,
        attachments=attachments,
    )


def _values(source: Any) -> dict[str, str]:
    keys = ("template", "text", "language", "status", "token", "macro")
    return {k: str(source.get(k) or "")[: manual_reply.MAX_TEXT + 1] for k in keys}


async def _uploads(form: FormData) -> tuple[ReplyAttachment, ...]:
    found = []
    for item in form.getlist("attachments"):
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read()
            found.append(
                ReplyAttachment(item.filename, item.content_type or "application/octet-stream", data)
            )
    return tuple(found)


def reply_routes(
    console: _Renders,
    page: Callable[[str], Callable[[Handler], Endpoint]],
    replies: ReplySetup,
    engine: Any,
    clock: Callable[[], Any],
) -> list[Route]:
    """The routes of replying; `page` is the console's session-and-CSRF guard."""

    def render_form(
        user: SignedIn,
        ref: str,
        values: dict[str, str],
        draft: Draft | None,
        error: str = "",
        status: int = 200,
    ) -> Response:
        view = casework_view.case_view(engine, ref)
        if view is None:
            return console.render("error.html.j2", 404, user=user, message="No such case.")
        if not values.get("language"):
            values["language"] = view.case.language
        if not values.get("token"):
            values["token"] = manual_reply.new_token()
        found = manual_reply.macros(replies)
        return console.render(
            "reply.html.j2",
            status,
            user=user,
            view=view,
            values=values,
            draft=draft,
            error=error,
            templates=replies.template_names(),
            languages=sorted({*replies.languages(), view.case.language}),
            statuses=casework.STAFF_STATUSES,
            macros=found.macros,
            max_mb=manual_reply.MAX_ATTACHMENT_BYTES // 1024 // 1024,
        )

    @page("staff")
    async def reply_form(request: Request, user: SignedIn) -> Response:
        ref = request.path_params["ref"]
        values = _values(request.query_params)
        error = ""
        if values["macro"]:
            try:
                chosen = await run_in_threadpool(manual_reply.macro, replies, values["macro"])
                values["template"], values["status"] = chosen.template, chosen.status or ""
            except ReplyRefused as exc:
                error = str(exc)
        return await run_in_threadpool(render_form, user, ref, values, None, error)

    @page("staff")
    async def reply_preview(request: Request, user: SignedIn) -> Response:
        ref = request.path_params["ref"]
        values = _values(await request.form())
        try:
            draft = await run_in_threadpool(manual_reply.preview, engine, replies, _request(ref, values))
        except ReplyRefused as exc:
            return await run_in_threadpool(render_form, user, ref, values, None, str(exc), 400)
        return await run_in_threadpool(render_form, user, ref, values, draft)

    @page("staff")
    async def reply_send(request: Request, user: SignedIn) -> Response:
        ref = request.path_params["ref"]
        form = await request.form()
        values = _values(form)
        attachments = await _uploads(form)
        wanted = _request(ref, values, attachments)
        try:
            result = await run_in_threadpool(
                lambda: manual_reply.send(engine, replies, wanted, by=user.account.email, clock=clock)
            )
        except ReplyRefused as exc:
            draft = None
            try:
                draft = await run_in_threadpool(manual_reply.preview, engine, replies, _request(ref, values))
            except ReplyRefused:
                pass
            return await run_in_threadpool(render_form, user, ref, values, draft, str(exc), 400)
        target = f"/cases/{quote(result.ref)}?" + urlencode({"done": result.summary[:200]})
        return RedirectResponse(target, status_code=303)

    async def bounded_send(request: Request) -> Response:
        """Refuse an oversized upload from its Content-Length, before a byte of it is parsed."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_REPLY_BODY:
            limit = manual_reply.MAX_ATTACHMENT_BYTES // 1024 // 1024
            return console.render(
                "error.html.j2",
                413,
                user=None,
                message=f"The attachments are larger than {limit} MB together.",
            )
        return await send_endpoint(request)

    send_endpoint = reply_send
    return [
        Route("/cases/{ref}/reply", reply_form, methods=["GET"]),
        Route("/cases/{ref}/reply/preview", reply_preview, methods=["POST"]),
        Route("/cases/{ref}/reply", bounded_send, methods=["POST"]),
    ]

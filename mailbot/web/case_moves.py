"""The console's merge and split actions, kept apart from app.py so each part of the console stays small.

Each returns the function app.py's `_action` wraps (session, CSRF and role checks stay there); the
ActionResult names the case to show next: the merge target, or the new case a split opened.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from starlette.requests import Request

from mailbot.services.accounts import SignedIn
from mailbot.services.case_merge import merge_cases, split_message
from mailbot.services.casework import ActionResult, CaseworkError

Run = Callable[[Request, SignedIn, Any], ActionResult]


def merge_action(engine: Engine, clock: Callable[[], datetime]) -> Run:
    def run(request: Request, user: SignedIn, form: Any) -> ActionResult:
        target = str(form.get("target") or "").strip()
        if not target:
            raise CaseworkError("say which case to merge into")
        result = merge_cases(engine, request.path_params["ref"], target, by=user.account.email, clock=clock)
        done = result.action
        return ActionResult(result.target, done.kind, done.summary, done.by, done.at)

    return run


def split_action(engine: Engine, clock: Callable[[], datetime]) -> Run:
    def run(request: Request, user: SignedIn, form: Any) -> ActionResult:
        try:
            mail_id = int(str(form.get("mail_id") or ""))
        except ValueError:
            raise CaseworkError("say which message to split off") from None
        result = split_message(
            engine, request.path_params["ref"], mail_id, by=user.account.email, clock=clock
        )
        done = result.action
        return ActionResult(result.new_ref, done.kind, done.summary, done.by, done.at)

    return run

"""`mailbot cases assign|status|note|recategorize|reply` and `mailbot corrections …`: case work for scripting.

The same services as the web console; every action is an audit event naming who did it (`--by`,
default `cli:<login name>`). A refused action is one line on stderr and exit code 1.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from mailbot.services.casework import ActionResult


def _engine(ctx: click.Context) -> Engine:
    from mailbot.services.console_store import open_engine

    settings = ctx.find_root().obj.settings()
    return open_engine(settings.database_url)


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


_by = click.option(
    "--by", "by", default=None, help="Who does this, for the audit trail (default cli:<login>)."
)


def _run(action: Callable[[], ActionResult]) -> None:
    from mailbot.services.casework import CaseworkError

    try:
        result = action()
    except CaseworkError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{result.ref}: {result.summary}")


@click.command("assign")
@click.argument("ref")
@click.argument("assignee", required=False)
@click.option("--unassign", is_flag=True, help="Take the case away from whoever has it.")
@_by
@click.pass_context
def cases_assign(ctx: click.Context, ref: str, assignee: str | None, unassign: bool, by: str | None) -> None:
    """Assign case REF to the staff account ASSIGNEE (or --unassign)."""
    from mailbot.services.casework import assign

    if unassign == (assignee is not None):
        click.echo("error: give either ASSIGNEE or --unassign", err=True)
        sys.exit(2)
    engine = _engine(ctx)
    _run(lambda: assign(engine, ref, None if unassign else assignee, by=by or _default_actor()))


@click.command("status")
@click.argument("ref")
@click.argument("status", type=click.Choice(["open", "waiting", "resolved", "closed"]))
@_by
@click.pass_context
def cases_status(ctx: click.Context, ref: str, status: str, by: str | None) -> None:
    """Set the status of case REF (waiting = waiting on the buyer)."""
    from mailbot.services.casework import set_status

    engine = _engine(ctx)
    _run(lambda: set_status(engine, ref, status, by=by or _default_actor()))


@click.command("note")
@click.argument("ref")
@click.argument("text", required=False)
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the note from standard input.")
@_by
@click.pass_context
def cases_note(ctx: click.Context, ref: str, text: str | None, from_stdin: bool, by: str | None) -> None:
    """Add an internal note to case REF (never sent to the buyer)."""
    from mailbot.services.casework import add_note

    body = sys.stdin.read() if from_stdin else (text or "")
    engine = _engine(ctx)
    _run(lambda: add_note(engine, ref, body, by=by or _default_actor()))


@click.command("recategorize")
@click.argument("ref")
@click.option("--category", default=None, help="The right category (changes the case).")
@click.option("--intent", default=None, help="The right intent (kept as a labelled example).")
@_by
@click.pass_context
def cases_recategorize(
    ctx: click.Context, ref: str, category: str | None, intent: str | None, by: str | None
) -> None:
    """Correct what mailbot decided for case REF; `mailbot corrections export` collects these."""
    from mailbot.services.casework import recategorize

    if category is None and intent is None:
        click.echo("error: give --category and/or --intent", err=True)
        sys.exit(2)
    engine = _engine(ctx)
    actor = by or _default_actor()
    if category is not None:
        _run(lambda: recategorize(engine, ref, "category", category, by=actor))
    if intent is not None:
        _run(lambda: recategorize(engine, ref, "intent", intent, by=actor))


@click.command("reply")
@click.argument("ref")
@click.option("--template", "template", default=None, help="A reply template (templates/<lang>/NAME.txt.j2).")
@click.option("--text-file", "text_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="The reply's text in a UTF-8 file ('-' reads standard input).")
@click.option("--macro", "macro_name", default=None, help="A canned response (templates/macros/NAME.toml).")
@click.option("--language", default=None, help="Reply in this language (default: the case's).")
@click.option("--status", type=click.Choice(["open", "waiting", "resolved", "closed"]), default=None,
              help="Set the case's status with the reply (waiting = waiting on the buyer).")
@click.option("--attach", "attach_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Attach a file (repeatable; 10 MB together).")
@click.option("--preview", "only_preview", is_flag=True, help="Print the reply; queue nothing.")
@_by
@click.pass_context
def cases_reply(
    ctx: click.Context,
    ref: str,
    template: str | None,
    text_file: Path | None,
    macro_name: str | None,
    language: str | None,
    status: str | None,
    attach_files: tuple[Path, ...],
    only_preview: bool,
    by: str | None,
) -> None:
    """Reply to the buyer of case REF through the outbox (quoted, threaded, case reference in the subject)."""
    import mimetypes

    from mailbot.core.replies import ReplyAttachment
    from mailbot.services.manual_reply import (
        ReplyRefused,
        ReplyRequest,
        macro,
        new_token,
        preview,
        send,
        setup_from_settings,
    )

    if sum(x is not None for x in (template, text_file, macro_name)) != 1:
        click.echo("error: give one of --template NAME, --text-file FILE or --macro NAME", err=True)
        sys.exit(2)
    settings = ctx.find_root().obj.settings()
    setup = setup_from_settings(settings)
    try:
        text = None
        if text_file is not None:
            text = sys.stdin.read() if str(text_file) == "-" else _read_text(text_file)
        if macro_name is not None:
            chosen = macro(setup, macro_name)
            template, status = chosen.template, status or chosen.status
        attachments = tuple(
            ReplyAttachment(p.name, mimetypes.guess_type(p.name)[0] or "application/octet-stream", data)
            for p, data in ((p, _read_bytes(p)) for p in attach_files)
        )
        request = ReplyRequest(
            ref=ref, text=text, template=template, language=language, token=new_token(), status=status,
            attachments=attachments,
        )
        engine = _engine(ctx)
        if only_preview:
            draft = preview(engine, setup, request)
            click.echo(f"To: {draft.to_addr or '(nobody)'}\nSubject: {draft.subject}\n\n{draft.body}")
            if draft.refusal:
                click.echo(f"error: cannot be sent: {draft.refusal}", err=True)
                sys.exit(1)
            return
        result = send(engine, setup, request, by=by or _default_actor())
    except ReplyRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{result.ref}: {result.summary} (outbox item {result.outbox_id}, <{result.message_id}>)")


def _read_text(path: Path) -> str:
    from mailbot.services.manual_reply import ReplyRefused

    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise ReplyRefused(f"{path}: cannot be read as UTF-8 text ({why})") from exc


def _read_bytes(path: Path) -> bytes:
    from mailbot.services.manual_reply import MAX_ATTACHMENT_BYTES, ReplyRefused

    try:
        if path.stat().st_size > MAX_ATTACHMENT_BYTES:
            raise ReplyRefused(f"{path}: larger than {MAX_ATTACHMENT_BYTES // 1024 // 1024} MB")
        return path.read_bytes()
    except OSError as exc:
        raise ReplyRefused(f"{path}: cannot be read ({exc.strerror or exc})") from exc


@click.command("close-resolved")
@click.option("--days", type=click.FloatRange(min=0), default=7, show_default=True)
@click.pass_context
def cases_close_resolved(ctx: click.Context, days: float) -> None:
    """Close the cases resolved more than DAYS ago (for cron or the worker's schedule)."""
    from datetime import timedelta

    from mailbot.services.casework import close_resolved

    refs = close_resolved(_engine(ctx), timedelta(days=days))
    click.echo(f"{len(refs)} resolved cases closed" + (": " + ", ".join(refs) if refs else ""))


@click.command("reindex")
@click.pass_context
def cases_reindex(ctx: click.Context) -> None:
    """Add every routed mail not yet searchable by its words to the search index (mailbot web does it too)."""
    from mailbot.services.search_index import index_all, subject_prefixes

    settings = ctx.find_root().obj.settings()
    subjects = subject_prefixes(settings.rules_dir)
    click.echo(f"{index_all(_engine(ctx), subjects=subjects)} mails indexed for search")


@click.group("corrections")
def corrections() -> None:
    """Categories and intents staff corrected: labelled examples for `mailbot eval`."""


@corrections.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def corrections_list(ctx: click.Context, as_json: bool) -> None:
    """Every correction, oldest first."""
    from dataclasses import asdict

    from mailbot.services.corrections import list_corrections

    rows = list_corrections(_engine(ctx))
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no corrections")
    for r in rows:
        click.echo(f"{r.at}  {r.case_ref}  {r.field}: {r.mailbot_said} → {r.staff_said}  by {r.by}")


@corrections.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def corrections_export(ctx: click.Context, folder: Path) -> None:
    """Write the corrected messages as .eml files with labels.jsonl into FOLDER, for `mailbot eval`."""
    from mailbot.services.corrections import ExportError, export_corrections

    try:
        report = export_corrections(_engine(ctx), folder)
    except ExportError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"{report.messages} messages ({report.corrections} corrections) written to {report.folder}; "
        f"measure with: mailbot eval {report.folder}"
    )


def attach(main: click.Group, cases: click.Group) -> None:
    """Hook the console's commands onto the CLI (called once from mailbot.cli)."""
    from mailbot.cli.users_cmd import users
    from mailbot.cli.web_cmd import web

    for command in (
        cases_assign,
        cases_status,
        cases_note,
        cases_recategorize,
        cases_reply,
        cases_close_resolved,
        cases_reindex,
    ):
        cases.add_command(command)
    main.add_command(corrections)
    main.add_command(users)
    main.add_command(web)

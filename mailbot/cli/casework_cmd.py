"""`mailbot cases assign|status|note|recategorize` and `mailbot corrections …`: case work for scripting.

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
    from mailbot.services.search_index import index_all

    click.echo(f"{index_all(_engine(ctx))} mails indexed for search")


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
        cases_close_resolved,
        cases_reindex,
    ):
        cases.add_command(command)
    main.add_command(corrections)
    main.add_command(users)
    main.add_command(web)

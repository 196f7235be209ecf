"""`mailbot cases merge|split`: joining a buyer's two cases, and splitting a message off into its own.

The same services as the web console's buttons; every action is an audit event naming who did it
(`--by`, default `cli:<login name>`). A refused action is one line on stderr and exit code 1.
"""

from __future__ import annotations

import sys

import click

from mailbot.cli.casework_cmd import _by, _default_actor, _engine


@click.command("merge")
@click.argument("source")
@click.argument("target")
@_by
@click.pass_context
def cases_merge(ctx: click.Context, source: str, target: str, by: str | None) -> None:
    """Move everything of case SOURCE into case TARGET (same buyer) and close SOURCE."""
    from mailbot.services.case_merge import merge_cases
    from mailbot.services.casework import CaseworkError

    try:
        result = merge_cases(_engine(ctx), source, target, by=by or _default_actor())
    except CaseworkError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    moved = ", ".join(f"{n} {table}" for table, n in result.moved if n) or "nothing"
    click.echo(f"{result.source}: {result.action.summary} (moved {moved})")


@click.command("split")
@click.argument("ref")
@click.argument("mail_id", type=int)
@_by
@click.pass_context
def cases_split(ctx: click.Context, ref: str, mail_id: int, by: str | None) -> None:
    """Move the buyer message MAIL_ID of case REF into a new case of its own."""
    from mailbot.services.case_merge import split_message
    from mailbot.services.casework import CaseworkError

    try:
        result = split_message(_engine(ctx), ref, mail_id, by=by or _default_actor())
    except CaseworkError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{result.source}: {result.action.summary}")
    click.echo(result.new_ref)

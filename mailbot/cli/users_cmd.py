"""`mailbot users add|list|disable`: staff accounts of the web console."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def _engine(ctx: click.Context) -> Engine:
    from mailbot.services.console_store import open_engine

    settings = ctx.find_root().obj.settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_engine(settings.database_url, migrate=True)


@click.group("users")
def users() -> None:
    """Staff accounts of the web console (roles: staff, supervisor, admin)."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["staff", "supervisor", "admin"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (scripts).")
@click.pass_context
def users_add(ctx: click.Context, email: str, role: str, password_stdin: bool) -> None:
    """Create an account; the password is asked for twice unless --password-stdin."""
    from mailbot.services.accounts import AccountError, add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        account = add_user(_engine(ctx), email, role, password)
    except AccountError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"added {account.email} ({account.role})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def users_list(ctx: click.Context, as_json: bool) -> None:
    """Every account with its role and whether it is disabled."""
    from mailbot.services.accounts import list_users

    rows = list_users(_engine(ctx))
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "email": a.email,
                        "role": a.role,
                        "disabled": a.disabled,
                        "created_at": a.created_at.isoformat(),
                    }
                    for a in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        click.echo("no accounts (mailbot users add EMAIL --role staff)")
    for a in rows:
        click.echo(f"{a.email:<40} {a.role:<11} {'disabled' if a.disabled else 'active'}")


@users.command("disable")
@click.argument("email")
@click.pass_context
def users_disable(ctx: click.Context, email: str) -> None:
    """Disable an account; its open sessions end at once."""
    from mailbot.services.accounts import AccountError, disable_user

    try:
        account = disable_user(_engine(ctx), email)
    except AccountError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"disabled {account.email}")

"""`mailbot …`: the command line for operators, staff and supervisors.

Every command takes `--config FILE` (default ./config.toml, then $MAILBOT_CONFIG). Problems are
printed as one line saying what to fix, never as a traceback.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from mailbot import __version__
from mailbot.settings import Settings, SettingsError, find_config, load_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from mailbot.runtime import Runtime
    from mailbot.services.health import Health


class Context:
    def __init__(self, config: str | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def config_path(self) -> Path:
        return find_config(self.config)

    def settings(self) -> Settings:
        """The settings without the mail-server secrets: enough for staff and supervisor commands."""
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path)
            except SettingsError as exc:
                fail(str(exc))
        return self._settings

    def intake_settings(self) -> Settings:
        """The settings for a command that connects: secrets present, every folder and file usable."""
        from mailbot.preflight import check_for_intake

        settings = self.settings()
        try:
            check_for_intake(settings)
        except SettingsError as exc:
            fail(str(exc))
        return settings

    def engine(self) -> Engine:
        """The database of a staff command, which must already have mailbot's schema (exit 1 if not)."""
        from mailbot.services.entry_support import make_engine, schema_problem

        url = self.settings().database_url
        problem = schema_problem(url)
        if problem is not None:
            fail(problem, code=1)
        return make_engine(url)


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _runtime(settings: Settings) -> Runtime:
    """Wire everything, turning a broken rule, lexicon or template folder into one clear message."""
    from mailbot.core.errors import RuleFileError
    from mailbot.core.rules.schema import RuleSetErrors
    from mailbot.runtime import build_runtime

    try:
        return build_runtime(settings)
    except RuleSetErrors as exc:
        fail("the rules (routing, lexicons or templates) are invalid; nothing was processed:\n" + str(exc))
    except RuleFileError as exc:
        fail(f"{exc}; nothing was processed")


def _setup_logging(settings: Settings) -> None:
    from mailbot.observability import setup_logging

    own = [box.address for box in settings.mailboxes.values()]  # never masked: they are ours, not buyers'
    # Our Message-IDs are not people's addresses: kept readable so a log line names its reply.
    domains = [settings.identity.message_id_domain]
    setup_logging(settings.log_level, settings.log_format, own_addresses=own, own_domains=domains)


pass_ctx = click.make_pass_decorator(Context)


class _Main(click.Group):
    """The `mailbot` command: a database that cannot be reached is one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from sqlalchemy.exc import DBAPIError

        try:
            return super().invoke(ctx)
        except DBAPIError as exc:
            first = str(exc.orig or exc).strip().splitlines()[0]
            fail(f"the database cannot be used: {first}", code=1)
        except SettingsError as exc:  # a secret first needed mid-command (the database password)
            fail(str(exc))


@click.group(cls=_Main)
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings file (default ./config.toml, then $MAILBOT_CONFIG).",
)
@click.version_option(__version__, prog_name="mailbot")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """mailbot: reads the Trade Assurance support mailboxes, opens cases and answers buyers."""
    ctx.obj = Context(config)


# -- database ---------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Create the database or bring its schema up to date."""
    from mailbot.preflight import prepare_data_dir
    from mailbot.services.entry_support import upgrade_schema

    settings = ctx.settings()
    try:
        prepare_data_dir(settings)
    except SettingsError as exc:
        fail(str(exc))
    upgrade_schema(settings.database_url)
    click.echo(f"database is up to date ({_safe_url(settings.database_url)})")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- polling ----------------------------------------------------------------------------------------


@main.command()
@click.option(
    "--once", is_flag=True, required=True, help="Process every mailbox once, drain the outbox, exit."
)
@click.option("--mailbox", "only", multiple=True, help="Only this mailbox (repeatable).")
@pass_ctx
def poll(ctx: Context, once: bool, only: tuple[str, ...]) -> None:
    """Poll the mailboxes once; exit 1 when a mailbox failed (one line per failing mailbox)."""
    from mailbot.cli.progress import progress_bar

    settings = ctx.intake_settings()
    _setup_logging(settings)
    for name in only:
        if name not in settings.mailboxes:
            fail(f"unknown mailbox {name!r}; configured: {', '.join(settings.mailboxes)}")
    runtime = _runtime(settings)
    failed = []
    for name in runtime.enabled_mailboxes():
        if only and name not in only:
            continue
        with progress_bar(name) as progress:  # a bar on a terminal: a first poll may meet a backlog
            report = runtime.poll(name, progress=progress)
        if report.ok:
            click.echo(
                f"{name}: {report.fetched} fetched, {report.routed} routed, {report.ignored} ignored, "
                f"{report.quarantined} quarantined, {len(report.cases_created)} new cases"
            )
        else:
            failed.append(name)
            click.echo(f"{name}: FAILED: {report.error}", err=True)
    outbox = runtime.drain()
    click.echo(
        f"outbox: {outbox.sent} sent, {outbox.retried} to retry, {outbox.failed} failed"
        + (f", {outbox.uncertain} uncertain" if outbox.uncertain else "")
        + (f", {outbox.recovered} recovered" if outbox.recovered else "")
    )
    for warning in outbox.warnings:  # e.g. one mailbox's Sent folder: only its own replies wait
        click.echo(f"outbox: {warning}", err=True)
    if outbox.error:
        click.echo(f"outbox: FAILED: {outbox.error}", err=True)
    if failed or outbox.error:
        sys.exit(1)


@main.command()
@pass_ctx
def run(ctx: Context) -> None:
    """Run the worker: poll every mailbox on its schedule and send replies, until SIGTERM."""
    from mailbot.worker import Worker

    settings = ctx.intake_settings()
    _setup_logging(settings)
    Worker(_runtime(settings)).run()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="The same facts as JSON.")
@pass_ctx
def status(ctx: Context, as_json: bool) -> None:
    """Health: polls, the outbox, quarantined mail and the templates; exit 1 when unhealthy."""
    from mailbot.services.health import HealthPolicy, check_health

    settings = ctx.settings()
    policy = HealthPolicy(
        poll_intervals={
            name: box.poll_interval_seconds for name, box in settings.mailboxes.items() if box.enabled
        },
        missed_polls=settings.health.missed_polls,
        max_pending_reply_age_seconds=settings.health.max_pending_reply_age_seconds,
        templates_dir=settings.templates_dir,
        data_dir=settings.data_dir,
    )
    report = check_health(ctx.engine(), policy, datetime.now(UTC))
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _print_health(report)
    if not report.ok:
        sys.exit(1)


def _print_health(report: Health) -> None:
    for box in report.mailboxes:
        state = "ok" if box.ok else "FAILING: " + "; ".join(box.problems)
        last = box.last_poll_at.isoformat(timespec="seconds") if box.last_poll_at else "never"
        click.echo(f"mailbox {box.mailbox:<12} {state}  (last poll {last})")
    counts = report.outbox.counts
    click.echo("outbox: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "empty"))
    click.echo("mail:   " + (", ".join(f"{n} {s}" for s, n in sorted(report.mail.items())) or "none yet"))
    if report.ok:
        click.echo("healthy")
        return
    click.echo("UNHEALTHY:")
    for problem in report.problems:
        click.echo(f"  - {problem}")


# -- cases ------------------------------------------------------------------------------------------


@main.group()
def cases() -> None:
    """The case queue."""


@cases.command("list")
@click.option("--status", default=None, help="open, waiting, closed")
@click.option("--category", default=None, help="cancellation, report_dispute, …")
@click.option("--overdue", is_flag=True, help="Only cases past their due time, the most overdue first.")
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def cases_list(
    ctx: Context, status: str | None, category: str | None, overdue: bool, limit: int, as_json: bool
) -> None:
    """List cases, newest first (or the overdue ones, most overdue first)."""
    from mailbot.services.cases import list_cases

    if overdue:
        if status or category:
            fail("--overdue lists new and open cases of every category; leave out --status and --category")
        _list_overdue(ctx, limit, as_json)
        return
    rows = list_cases(ctx.engine(), status=status, category=category, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no cases")
        return
    click.echo(f"{'REF':<8} {'CATEGORY':<17} {'STATUS':<8} {'MAILBOX':<11} {'ORDERS':<22} BUYER")
    for row in rows:
        orders = ",".join(row["orders"]) or "-"
        click.echo(
            f"{row['ref']:<8} {row['category']:<17} {row['status']:<8} {row['mailbox']:<11} "
            f"{orders:<22} {row['buyer']}"
        )


def _list_overdue(ctx: Context, limit: int, as_json: bool) -> None:
    from mailbot.services.due_times import overdue_cases

    found = overdue_cases(ctx.engine(), ctx.settings().due, limit=limit)
    if as_json:
        rows = [
            {
                "ref": c.ref,
                "category": c.category,
                "priority": c.priority,
                "status": c.status,
                "assignee": c.assignee,
                "buyer": c.buyer,
                "mailbox": c.mailbox,
                "due_at": c.due.due_at.isoformat() if c.due.due_at else None,
                "overdue_working_hours": round(-c.due.working_left.total_seconds() / 3600, 2),
            }
            for c in found
        ]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo("no overdue cases")
        return
    click.echo(f"{'REF':<8} {'CATEGORY':<17} {'PRIORITY':<8} {'DUE (UTC)':<17} {'OVERDUE':<18} ASSIGNEE")
    for c in found:
        when = c.due.due_at.strftime("%Y-%m-%d %H:%M") if c.due.due_at else "-"
        click.echo(
            f"{c.ref:<8} {c.category:<17} {c.priority:<8} {when:<17} {c.due.label:<18} {c.assignee or '-'}"
        )


@cases.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def cases_show(ctx: Context, ref: str, as_json: bool) -> None:
    """One case: orders, messages, decisions and replies."""
    from mailbot.services.cases import show_case

    data = show_case(ctx.engine(), ref.strip("#[] ").upper())
    if data is None:
        fail(f"no case {ref}", code=1)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    _print_case(data)


def _print_case(data: dict[str, Any]) -> None:
    click.echo(f"Case #{data['ref']}  {data['category']}  ({data['status']}, priority {data['priority']})")
    click.echo(
        f"  buyer:   {data['buyer_name']} <{data['buyer']}>"
        if data["buyer_name"]
        else f"  buyer:   {data['buyer']}"
    )
    click.echo(f"  mailbox: {data['mailbox']}   language: {data['language']}")
    click.echo(f"  orders:  {', '.join(data['orders']) or '(none given)'}")
    click.echo(f"  subject: {data['subject']}")
    click.echo("  messages:")
    for m in data["messages"]:
        arrow = "<-" if m["direction"] == "in" else "->"
        click.echo(f"    {m['at'][:19]} {arrow} {m['from']}: {m['subject']}")
    click.echo("  events:")
    for e in data["events"]:
        click.echo(f"    {e['at'][:19]} {e['kind']}: {e['summary']}")
        for step in e["detail"].get("trace", []) if isinstance(e["detail"], dict) else []:
            mark = "hit " if step["hit"] else "miss"
            click.echo(f"        {mark} {step['rule']}: {step['why']}")
    for r in data["replies"]:
        click.echo(f"  reply #{r['id']} ({r['status']}, {r['template']}/{r['language']}) to {r['to']}:")
        for line in r["text"].splitlines():
            click.echo(f"    | {line}")


# -- outbox -----------------------------------------------------------------------------------------


@main.group()
def outbox() -> None:
    """Replies waiting to be sent."""


@outbox.command("retry")
@click.argument("item_id", type=int)
@pass_ctx
def outbox_retry(ctx: Context, item_id: int) -> None:
    """Send an uncertain or failed reply again (after checking it did not reach the buyer)."""
    from mailbot.services.outbox import retry

    click.echo(retry(ctx.engine(), item_id, lambda: datetime.now(UTC)))


def _register_optional() -> None:
    from mailbot.cli.demo_cmd import demo
    from mailbot.cli.eval_cmd import eval_command
    from mailbot.cli.oauth_cmd import oauth
    from mailbot.cli.quarantine_cmd import quarantine
    from mailbot.cli.rules_cmd import rules
    from mailbot.cli.rules_history_cmd import COMMANDS as RULES_HISTORY

    main.add_command(demo)
    main.add_command(eval_command)
    main.add_command(oauth)
    main.add_command(quarantine)
    for command in RULES_HISTORY:
        rules.add_command(command)
    main.add_command(rules)


_register_optional()
from mailbot.cli.casework_cmd import attach as _attach_console  # noqa: E402  (the staff console, issue 8)

_attach_console(main, cases)
from mailbot.cli.case_merge_cmd import cases_merge, cases_split  # noqa: E402  (issue 8, merge and split)

cases.add_command(cases_merge)
cases.add_command(cases_split)

"""`mailbot quarantine list | show ID | reprocess ID… [--all] [--since DATE]`.

Staff see what could not be processed and why, and decide it again once the cause is fixed (a rule,
a template, a raised limit). Listing and showing read only the database.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from mailbot.cli import Context, _runtime, _setup_logging, fail, pass_ctx
from mailbot.cli.progress import progress_bar


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    from mailbot.cli.rules_history_cmd import _since as parse_since

    return parse_since(text, datetime.now(UTC))


_SINCE_HELP = (
    "Only mail fetched since DATE: 2026-11-20, 2026-11-20T08:00 (UTC unless the time says), 7d, 12h."
)


@click.group()
def quarantine() -> None:
    """Mail that could not be processed: list it, look at it, decide it again."""


@quarantine.command("list")
@click.option("--since", default=None, metavar="DATE", help="Only mail " + _SINCE_HELP)
@click.option("--limit", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def quarantine_list(ctx: Context, since: str | None, limit: int, as_json: bool) -> None:
    """Quarantined mail, oldest first, with the reason."""
    from mailbot.services.entry_support import make_engine
    from mailbot.services.quarantine import list_quarantine

    rows = list_quarantine(make_engine(ctx.settings().database_url), since=_since(since), limit=limit)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("the quarantine is empty")
        return
    click.echo(f"{'ID':>6} {'FETCHED':<16} {'MAILBOX':<11} {'SIZE':>9} {'FROM':<28} REASON")
    for row in rows:
        size = _size(row["size"]) + ("*" if row["headers_only"] else "")
        click.echo(
            f"{row['id']:>6} {row['fetched_at'][:16]:<16} {row['mailbox']:<11} {size:>9} "
            f"{(row['from'] or '?')[:28]:<28} {_one_line(row['reason'], 100)}"
        )
        if row["subject"]:
            click.echo(f"{'':>6} subject: {_one_line(row['subject'], 100)}")
    if any(row["headers_only"] for row in rows):
        click.echo("* too large: only the headers were fetched; the mail is still in its mailbox")


@quarantine.command("show")
@click.argument("mail_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option("--raw", "raw", is_flag=True, help="Write the stored bytes of the mail to stdout.")
@pass_ctx
def quarantine_show(ctx: Context, mail_id: int, as_json: bool, raw: bool) -> None:
    """One mail: where it came from, why it is quarantined, its headers and its history."""
    from mailbot.services.entry_support import make_engine
    from mailbot.services.quarantine import show_mail, stored_bytes

    engine = make_engine(ctx.settings().database_url)
    if raw:
        data = stored_bytes(engine, mail_id)
        if data is None:
            fail(f"there is no mail #{mail_id}", code=1)
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    shown = show_mail(engine, mail_id)
    if shown is None:
        fail(f"there is no mail #{mail_id}", code=1)
    if as_json:
        click.echo(json.dumps(shown, ensure_ascii=False, indent=2, default=str))
        return
    _print_mail(shown)


def _print_mail(mail: dict[str, Any]) -> None:
    click.echo(f"Mail #{mail['id']}  {mail['outcome']}" + (f"  case {mail['case']}" if mail["case"] else ""))
    click.echo(f"  reason:   {mail['reason']}")
    click.echo(
        f"  mailbox:  {mail['mailbox']}  UID {mail['uid']}  UIDVALIDITY {mail['uidvalidity']}  "
        f"fetched {mail['fetched_at'][:19]}"
    )
    stored = "headers only (too large to download)" if mail["headers_only"] else "all of it"
    click.echo(f"  size:     {mail['size']} bytes; stored: {stored}")
    click.echo(f"  from:     {mail['from'] or '?'}")
    click.echo(f"  subject:  {mail['subject']}")
    click.echo("  headers:")
    for name, value in mail["headers"]:
        click.echo(f"    {name}: {_one_line(value, 200)}")
    click.echo("  events:")
    for event in mail["events"]:
        click.echo(f"    {event['at'][:19]} {event['kind']}: {event['summary']}")
        trace = event["detail"].get("traceback") if isinstance(event["detail"], dict) else None
        if trace:
            for line in str(trace).rstrip().splitlines():
                click.echo(f"      | {line}")


@quarantine.command("reprocess")
@click.argument("mail_ids", nargs=-1, type=int)
@click.option("--all", "everything", is_flag=True, help="Every quarantined mail.")
@click.option("--since", default=None, metavar="DATE", help="Every quarantined mail " + _SINCE_HELP)
@pass_ctx
def quarantine_reprocess(
    ctx: Context, mail_ids: tuple[int, ...], everything: bool, since: str | None
) -> None:
    """Decide quarantined mail again under the rules and templates in charge now.

    Each mail becomes routed, ignored or quarantined again, in one transaction, with an audit event.
    A mail quarantined for its size is fetched from its mailbox, once limits.max_message_bytes allows
    it. Replies are queued; the worker (or `mailbot poll --once`) sends them. Exit 1 when a mail is
    still quarantined or was skipped.
    """
    from mailbot.services.quarantine import quarantined_ids, reprocess

    if bool(mail_ids) + everything + (since is not None) != 1:
        raise click.UsageError("name the mail: IDs, or --all, or --since DATE (one of them)")
    settings = ctx.settings()
    _setup_logging(settings)
    start = _since(since)
    runtime = _runtime(settings)
    wanted = list(mail_ids) or quarantined_ids(runtime.engine, since=start)
    if not wanted:
        click.echo("the quarantine is empty" if start is None else "nothing was quarantined since then")
        return
    with progress_bar("reprocessing") as progress:
        results = reprocess(runtime.intake, wanted, open_source=runtime.source, progress=progress)
    for result in results:
        case = f" (case {result.case_ref})" if result.case_ref else ""
        click.echo(f"#{result.mail_id}: {result.outcome}{case}: {_one_line(result.reason, 160)}")
    settled = sum(1 for result in results if result.settled)
    replies = sum(result.replies_queued for result in results)
    click.echo(
        f"{settled} of {len(results)} decided"
        + (f"; {replies} replies queued, sent at the next outbox drain" if replies else "")
    )
    if settled < len(results):
        sys.exit(1)


def _size(size: int) -> str:
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _one_line(text: str, width: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"

"""`mailbot rules replay | stats | status`: what the rules did and would do with real mail.

A supervisor's draft is replayed on a folder of mail or on what the store kept, the rules in charge
are summed up from the ledger, and `status` says which version runs and whether the files on disk
differ. Split from rules_cmd.py (check, test, explain), which owns the `rules` group and the
helpers both use.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mailbot.cli.progress import progress_bar
from mailbot.cli.rules_cmd import _context, _dump, _load, _print_errors, _settings
from mailbot.core.errors import RuleFileError
from mailbot.core.rules.engine import DEFAULT_RULE
from mailbot.core.rules.schema import RuleSet, RuleSetErrors
from mailbot.services.rules_admin import (
    ReplayReport,
    RulesStatus,
    RulesStatusFile,
    RuleStats,
    replay_corpus,
    replay_stored,
    rule_stats,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from mailbot.settings import Settings

_T = TypeVar("_T")

_RULES_DIR_HELP = "The rules folder (default: rules_dir of the config file, else ./rules)."
_TEMPLATES_DIR_HELP = (
    "The reply templates folder (default: templates_dir of the config, else next to the rules)."
)


# -- replay ---------------------------------------------------------------------------------------


@click.command("replay")
@click.option(
    "--rules",
    "draft",
    required=True,
    type=click.Path(file_okay=False, exists=True),
    help="The draft rules folder to compare with the rules in charge.",
)
@click.option(
    "--corpus",
    default=None,
    type=click.Path(file_okay=False, exists=True),
    help="A folder of .eml files (searched recursively) to decide again.",
)
@click.option(
    "--since",
    default=None,
    metavar="DATE",
    help="Decide again the stored mail fetched since DATE: 2026-11-20, 2026-11-20T08:00 (UTC unless the "
    "time says otherwise), or 7d / 12h for seven days or twelve hours ago.",
)
@click.option("--rules-dir", default=None, type=click.Path(file_okay=False), help=_RULES_DIR_HELP)
@click.option("--templates-dir", default=None, type=click.Path(file_okay=False), help=_TEMPLATES_DIR_HELP)
@click.option(
    "--mailbox",
    default=None,
    help="With --corpus: the mailbox the mails arrived in (default: from their recipients). "
    "With --since: only the stored mail of this mailbox.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def replay_command(
    draft: str,
    corpus: str | None,
    since: str | None,
    rules_dir: str | None,
    templates_dir: str | None,
    mailbox: str | None,
    as_json: bool,
) -> None:
    """Decide mail again under a draft rule set and report what would change.

    The mail is a folder of saved mails (--corpus) or the stored mail of the database (--since).
    """
    if (corpus is None) == (since is None):
        raise click.UsageError("give the mail to replay: either --corpus DIR or --since DATE")
    try:
        if corpus is not None:
            ctx = _context(rules_dir, templates_dir, reading=True)
            with progress_bar("replaying") as progress:
                report = replay_corpus(
                    Path(corpus), ctx, draft_dir=Path(draft), mailbox=mailbox, progress=progress
                )
        else:
            assert since is not None
            start = _since(since, datetime.now(UTC))
            settings = _settings(needed_for="replay --since")
            assert settings is not None
            if mailbox is not None and mailbox not in settings.mailboxes:
                raise click.BadParameter(
                    f"unknown mailbox {mailbox!r}; configured: {', '.join(settings.mailboxes)}",
                    param_hint="--mailbox",
                )
            ctx = _context(rules_dir, templates_dir, reading=True, settings=settings)
            with progress_bar("replaying") as progress:
                report = _from_store(
                    settings,
                    lambda engine: replay_stored(
                        engine, ctx, draft_dir=Path(draft), since=start, mailbox=mailbox, progress=progress
                    ),
                )
    except RuleSetErrors as problems:
        _print_errors(problems.errors)
        sys.exit(1)
    except RuleFileError as error:
        click.echo(str(error))
        sys.exit(1)
    if as_json:
        _dump(report.as_json())
    else:
        _print_replay(report, ctx.rules_dir, Path(draft))
    sys.exit(1 if report.errors else 0)


def _since(text: str, now: datetime) -> datetime:
    """The moment `--since` names: a date, a date and time, or a span before `now` (7d, 12h)."""
    ago = re.fullmatch(r"\s*(\d+)\s*([dh])\s*", text)
    if ago is not None:
        amount = int(ago.group(1))
        return now - (timedelta(days=amount) if ago.group(2) == "d" else timedelta(hours=amount))
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date like 2026-11-20, a time like 2026-11-20T08:00, or a span like 7d or 12h",
            param_hint="--since",
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _from_store(settings: Settings, query: Callable[[Engine], _T]) -> _T:
    """Run a read-only query on the configured database; an unreachable or empty one is one clear line."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from mailbot.services.entry_support import make_engine

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).is_file():
        click.echo(f"error: there is no database at {url.database} yet; nothing has been stored", err=True)
        sys.exit(2)
    engine = make_engine(settings.database_url)
    try:
        return query(engine)
    except SQLAlchemyError as exc:
        cause = exc.__cause__ or exc
        detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        click.echo(
            f"error: cannot read the stored mail ({detail}); is the database set up (mailbot db upgrade)?",
            err=True,
        )
        sys.exit(2)
    finally:
        engine.dispose()


def _when(moment: datetime, *, seconds: bool = False) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _print_replay(report: ReplayReport, rules_dir: Path, draft: Path) -> None:
    counts = report.counts()
    what = f"stored mails fetched since {_when(report.since)} UTC" if report.since else "messages"
    click.echo(
        f"Replayed {counts['messages']} {what}: {rules_dir} (version {report.old_version[:12]}) "
        f"-> {draft} (version {report.new_version[:12]})"
    )
    if report.draft_reading:
        click.echo(
            "The draft's lexicons or orders.toml differ from the live ones: the draft read the mail again."
        )
    if report.skipped:
        click.echo(
            f"Skipped {report.skipped} stored mails the rules never decided "
            "(duplicates, mail that could not be processed)."
        )
    click.echo(f"{counts['changed']} of {counts['messages']} would be decided differently.")
    for name, value in counts.items():
        if name not in ("messages", "changed", "unreadable", "skipped"):
            click.echo(f"  {name}: {value}")
    moves = report.transitions()
    if moves:
        click.echo("Category moves:")
        for old, new, count in moves:
            click.echo(f"  {old} -> {new}: {count}")
    for row in report.changed:
        assert row.old is not None and row.new is not None
        where = f"{row.source}  {_when(row.received)}  {row.mailbox}" if row.received else row.source
        click.echo(f"{where}  {row.subject[:60]!r}  from {row.sender or '(no sender)'}")
        for name in (*row.changed_fields, "reply"):
            if name == "reply":
                if row.old.reply == row.new.reply:
                    continue
                old, new = (
                    ("reply" if row.old.reply else "no reply"),
                    ("reply" if row.new.reply else "no reply"),
                )
            else:
                old, new = _shown(getattr(row.old, name)), _shown(getattr(row.new, name))
            click.echo(f"    {name:<9} {old} -> {new}")
        if row.old.decided_by != row.new.decided_by:
            click.echo(f"    {'rule':<9} {row.old.decided_by} -> {row.new.decided_by}")
        else:
            click.echo(f"    {'rule':<9} {row.old.decided_by} (unchanged)")
        if row.stored is not None and row.stored != row.old:
            # Decided under earlier rules (or the reply guard held a reply back): say what really happened.
            stored = row.stored
            click.echo(
                f"    {'arrived':<9} {stored.outcome}, category {stored.category}, "
                f"{'reply ' + stored.template if stored.template else 'no reply'}, rule {stored.decided_by} "
                f"(version {row.stored_version[:12]})"
            )
    for row in report.errors:
        click.echo(f"{row.source}: could not be read: {row.error}", err=True)


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ", ".join(value) or "none"
    return str(value)


# -- statistics -----------------------------------------------------------------------------------


@click.command("stats")
@click.option("--rules-dir", default=None, type=click.Path(file_okay=False), help=_RULES_DIR_HELP)
@click.option("--templates-dir", default=None, type=click.Path(file_okay=False), help=_TEMPLATES_DIR_HELP)
@click.option("--limit", default=20, show_default=True, help="How many of the mails no rule decided to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def stats_command(rules_dir: str | None, templates_dir: str | None, limit: int, as_json: bool) -> None:
    """How often each rule decided and matched stored mail in the last day and week; what no rule decided."""
    settings = _settings(needed_for="rules stats")
    assert settings is not None
    ctx = _context(rules_dir, templates_dir, reading=False, settings=settings)
    ruleset = _load(ctx, ctx.rules_dir)
    stats = _from_store(
        settings, lambda engine: rule_stats(engine, ruleset, now=datetime.now(UTC), limit=limit)
    )
    if as_json:
        _dump(stats.as_json())
    else:
        _print_stats(stats, ruleset)


def _print_stats(stats: RuleStats, ruleset: RuleSet) -> None:
    click.echo(
        f"Rules in charge: version {stats.version[:12]}. Decisions: {stats.decided_day} in the last "
        f"24 hours, {stats.decided_week} in the last 7 days."
    )
    width = max(len(r.rule) for r in stats.rules) + 2
    click.echo(f"\n{'':<{width}}{'decided':>13}{'matched':>15}")
    click.echo(f"{'rule':<{width}}{'24h':>6}{'7d':>7}{'24h':>8}{'7d':>7}")
    retired_shown = False
    for count in stats.rules:
        if not count.in_rules and count.rule != DEFAULT_RULE and not retired_shown:
            click.echo("no longer in the rules:")
            retired_shown = True
        rule = ruleset.rule(count.rule)
        if rule is not None and rule.continues:
            decided = f"{'-':>6}{'-':>7}"  # a rule that continues never decides
        else:
            decided = f"{count.decided_day:>6}{count.decided_week:>7}"
        note = "  (switched off)" if rule is not None and not rule.enabled else ""
        click.echo(f"{count.rule:<{width}}{decided}{count.matched_day:>8}{count.matched_week:>7}{note}")
    if stats.versions:
        shown = ", ".join(f"{version[:12]} {n}" for version, n in stats.versions)
        click.echo(f"\nDecisions of the last 7 days by rules version: {shown}")
    if stats.skipped_week:
        click.echo(
            "Mail of the last 7 days the rules never saw (duplicates, processing failures): "
            f"{stats.skipped_week}"
        )
    click.echo(f"\nMail no rule decided in the last 7 days: {stats.unmatched_week}")
    for mail in stats.unmatched:
        click.echo(
            f"  #{mail.mail_id}  {_when(mail.received)}  {mail.mailbox}  {mail.sender or '(no sender)'}  "
            f"{mail.subject[:60]!r}"
        )
    hidden = stats.unmatched_week - len(stats.unmatched)
    if hidden > 0:
        click.echo(f"  … and {hidden} more (--limit)")


# -- status ---------------------------------------------------------------------------------------


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_command(as_json: bool) -> None:
    """The rules the worker decides with now and, if a change was refused, why and since when."""
    from mailbot.services.template_check import version_on_disk

    settings = _settings(needed_for="rules status")
    assert settings is not None
    status_file = RulesStatusFile.in_data_dir(settings.data_dir)
    try:
        status = status_file.read()
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    rules_dir = Path(status.rules_dir) if status and status.rules_dir else settings.rules_dir
    templates_dir = Path(status.templates_dir) if status and status.templates_dir else None
    on_disk = version_on_disk(rules_dir, templates_dir)
    if as_json:
        _dump(
            {
                "status": status.as_json() if status else None,
                "status_file": str(status_file.path),
                "files_version": on_disk,
            }
        )
    else:
        _print_status(status, status_file, rules_dir, on_disk)
    sys.exit(0 if status is not None and status.ok else 1)


def _print_status(
    status: RulesStatus | None, status_file: RulesStatusFile, rules_dir: Path, on_disk: str | None
) -> None:
    if status is None:
        click.echo(f"No worker has recorded the rules it uses yet ({status_file.path} does not exist).")
    else:
        click.echo(
            f"Rules in charge: version {status.version[:12]}, {status.rules} rules from {status.rules_dir}, "
            f"loaded {_when(status.loaded_at, seconds=True)} UTC."
        )
        if status.error is None:
            click.echo("OK: no change to the rules was refused.")
        else:
            since = f" since {_when(status.error_since, seconds=True)} UTC" if status.error_since else ""
            click.echo(
                f"REFUSED{since}: the rule files were changed but are invalid, "
                f"so version {status.version[:12]} stays in charge until they are fixed:"
            )
            for line in status.error.splitlines():
                click.echo(f"  {line}")
    if on_disk is None:
        click.echo(f"The routing files in {rules_dir} cannot be read now.")
    elif status is None:
        click.echo(f"The routing files in {rules_dir} are version {on_disk[:12]}.")
    elif on_disk != status.version and status.error is None:
        click.echo(
            f"The files in {rules_dir} are now version {on_disk[:12]}; "
            "a running worker takes them within seconds."
        )


#: Added to the `rules` group by the CLI (mailbot/cli/__init__.py).
COMMANDS = (replay_command, stats_command, status_command)

"""`mailbot rules …`: supervisors check, test, explain and replay routing rules before they go live,
and see how the rules in charge are doing (statistics, health).

Output is plain text for people and `--json` for programs. Exit codes: 0 when everything is fine,
1 when a rule file is invalid, a test fails or a mail cannot be read, 2 for a usage problem.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mailbot.core.errors import RuleFileError
from mailbot.core.rules.engine import DEFAULT_RULE
from mailbot.core.rules.expectations import EXPECT_KEYS, TEST_KEYS
from mailbot.core.rules.predicates import PREDICATES
from mailbot.core.rules.schema import ACTIONS, RULE_KEYS, RuleSet, RuleSetErrors
from mailbot.core.types import Identity
from mailbot.services.rules_admin import (
    CheckReport,
    ReplayReport,
    RulesContext,
    RulesStatus,
    RulesStatusFile,
    RuleStats,
    RuleTestReport,
    check_rules,
    explain_message,
    replay_corpus,
    replay_stored,
    rule_stats,
    run_rule_tests,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from mailbot.settings import Settings

_T = TypeVar("_T")

_RULES_DIR_HELP = "The rules folder (default: rules_dir of the config file, else ./rules)."
_TEMPLATES_DIR_HELP = (
    "The reply templates folder (default: templates_dir of the config, else next to the rules)."
)


@click.group()
def rules() -> None:
    """Routing rules: check, test, explain and replay them before they go live; status and statistics."""


def _dump(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _settings(*, needed_for: str | None = None) -> Settings | None:
    """The settings of the config file when there is one; with `needed_for`, a missing file is an error."""
    from mailbot.settings import SettingsError, find_config, load_settings

    parent = click.get_current_context().find_root().obj
    explicit = getattr(parent, "config", None)
    config = find_config(explicit)
    if not explicit and not config.is_file():
        if needed_for is None:
            return None
        click.echo(f"error: {needed_for} needs the config file ({config} not found; use --config)", err=True)
        sys.exit(2)
    try:
        return load_settings(config)
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _context(
    rules_dir: str | None, templates_dir: str | None, *, reading: bool, settings: Settings | None = None
) -> RulesContext:
    """Paths, identity and mailbox names from the config file when there is one, else plain defaults."""
    from mailbot.settings import IdentitySettings

    identity = Identity(
        addresses=frozenset(),
        message_id_domain=IdentitySettings().message_id_domain,
        case_tag=IdentitySettings().case_tag,
    )
    mailboxes: frozenset[str] | None = None
    addresses: dict[str, str] = {}
    default_rules, default_templates = Path("rules"), None
    settings = settings or _settings()
    if settings is not None:
        identity = Identity(
            addresses=frozenset(box.address for box in settings.mailboxes.values()),
            message_id_domain=settings.identity.message_id_domain,
            case_tag=settings.identity.case_tag,
        )
        mailboxes = frozenset(settings.mailboxes)
        addresses = {box.address: name for name, box in settings.mailboxes.items()}
        default_rules, default_templates = _shorter(settings.rules_dir), _shorter(settings.templates_dir)
    rules_path = Path(rules_dir) if rules_dir else default_rules
    templates_path = (
        Path(templates_dir) if templates_dir else default_templates or rules_path.parent / "templates"
    )
    # The templates are part of the rule set wherever they were named (option or config); the folder
    # next to the rules is only a guess, and is left out when it is not there.
    named = bool(templates_dir) or default_templates is not None
    return RulesContext(
        rules_dir=rules_path,
        identity=identity,
        reading_config=_reading_config(rules_path) if reading else None,
        templates_dir=templates_path if named or templates_path.is_dir() else None,
        known_templates=_template_names(templates_path),
        known_mailboxes=mailboxes,
        mailbox_addresses=addresses,
    )


def _shorter(path: Path) -> Path:
    """A path under the working folder as a relative one, so error lines stay short."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _template_names(templates_dir: Path) -> frozenset[str] | None:
    from mailbot.services.entry_support import template_names

    if not templates_dir.is_dir():
        click.echo(
            f"note: no templates folder at {templates_dir}; reply template names are not checked", err=True
        )
        return None
    return template_names(templates_dir)


def _reading_config(rules_dir: Path) -> Any:
    from mailbot.services.entry_support import load_reading_config

    try:
        return load_reading_config(rules_dir)
    except Exception as exc:  # a broken lexicon or orders file: say which, not a traceback
        click.echo(f"error: cannot load the reading configuration from {rules_dir}: {exc}", err=True)
        sys.exit(1)


def _print_errors(errors: Sequence[RuleFileError]) -> None:
    for error in errors:
        click.echo(str(error))
    click.echo(f"{len(errors)} mistake{'s' if len(errors) != 1 else ''} found.")


# -- check ----------------------------------------------------------------------------------------


@rules.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--templates-dir", default=None, type=click.Path(file_okay=False), help=_TEMPLATES_DIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check_command(directory: str | None, templates_dir: str | None, as_json: bool) -> None:
    """Check the routing files and rule tests in DIRECTORY (default: the rules folder)."""
    ctx = _context(directory, templates_dir, reading=False)
    report = check_rules(ctx)
    if as_json:
        _dump(report.as_json())
    else:
        _print_check(report, ctx)
    sys.exit(0 if report.ok else 1)


def _print_check(report: CheckReport, ctx: RulesContext) -> None:
    if not report.ok:
        _print_errors(report.errors)
        return
    assert report.ruleset is not None
    ruleset = report.ruleset
    languages = []
    for name, _sha in ruleset.files:
        if name.startswith("templates/"):
            continue
        if name.startswith("lexicons/"):
            languages.append(Path(name).stem)
        elif name not in ("orders.toml", "scripts.toml"):
            count = sum(1 for r in ruleset.rules if Path(r.source).name == name)
            click.echo(f"{ctx.rules_dir / name}: {count} rules")
    if languages:
        click.echo(f"{ctx.rules_dir / 'lexicons'}: {len(languages)} languages ({' '.join(languages)})")
    click.echo(f"{ctx.rules_dir / 'tests'}: {report.tests} tests")
    if ctx.templates_dir is not None:
        click.echo(
            f"{ctx.templates_dir}: {len(report.templates)} template files, "
            f"{len(report.template_languages)} languages ({' '.join(report.template_languages)})"
        )
    off = [r.name for r in ruleset.rules if not r.enabled]
    if off:
        click.echo(f"switched off: {', '.join(off)}")
    click.echo(f"OK: version {ruleset.short_version}")


# -- test -----------------------------------------------------------------------------------------


@rules.command("test")
@click.option("--rules-dir", default=None, type=click.Path(file_okay=False), help=_RULES_DIR_HELP)
@click.option("--templates-dir", default=None, type=click.Path(file_okay=False), help=_TEMPLATES_DIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show the trace of passing tests too.")
def test_command(rules_dir: str | None, templates_dir: str | None, as_json: bool, verbose: bool) -> None:
    """Run the expectations in rules/tests/*.toml against the rules."""
    report = run_rule_tests(_context(rules_dir, templates_dir, reading=True))
    if as_json:
        _dump(report.as_json())
    else:
        _print_tests(report, verbose=verbose)
    sys.exit(0 if report.ok else 1)


def _print_tests(report: RuleTestReport, *, verbose: bool) -> None:
    if report.errors:
        _print_errors(report.errors)
        return
    for outcome in report.outcomes:
        click.echo(f"{'PASS' if outcome.passed else 'FAIL'}  {outcome.test.name}  ({outcome.test.where})")
        if outcome.error:
            click.echo(f"      the mail could not be decided: {outcome.error}")
        for problem in outcome.problems:
            click.echo(f"      {problem}")
        if outcome.decision is not None and (verbose or not outcome.passed):
            for step in outcome.decision.trace:
                click.echo(f"        {'hit ' if step.hit else 'miss'}  {step.rule}: {step.why}")
    total = len(report.outcomes)
    click.echo(
        f"{total} tests: {total - report.failed} passed, {report.failed} failed "
        f"(rules version {report.version[:12] if report.version else '?'})"
    )


# -- explain --------------------------------------------------------------------------------------


@rules.command("explain")
@click.argument("eml", type=click.Path(dir_okay=False, exists=True))
@click.option("--rules-dir", default=None, type=click.Path(file_okay=False), help=_RULES_DIR_HELP)
@click.option("--templates-dir", default=None, type=click.Path(file_okay=False), help=_TEMPLATES_DIR_HELP)
@click.option(
    "--mailbox", default=None, help="The mailbox the mail arrived in (default: from its recipients)."
)
@click.option("--case", "case", default=None, help="Treat the mail as belonging to this existing case.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def explain_command(
    eml: str,
    rules_dir: str | None,
    templates_dir: str | None,
    mailbox: str | None,
    case: str | None,
    as_json: bool,
) -> None:
    """Show how one mail would be decided: how it was read, its order numbers and every rule looked at."""
    ctx = _context(rules_dir, templates_dir, reading=True)
    ruleset = _load(ctx, ctx.rules_dir)
    data = explain_message(Path(eml).read_bytes(), ctx, ruleset, mailbox=mailbox, case=_case_ref(case))
    if as_json:
        _dump(data)
        return
    _print_explanation(data, ruleset)


def _case_ref(value: str | None) -> str | None:
    """K7Q2XZ from 'K7Q2XZ', '#k7q2xz' or '[Case #K7Q2XZ]'."""
    if value is None:
        return None
    found = re.search(r"([A-Za-z2-9]{6})\W*$", value)
    if found is None:
        raise click.BadParameter(f"{value!r} is not a case reference like K7Q2XZ", param_hint="--case")
    return found.group(1).upper()


def _load(ctx: RulesContext, directory: Path) -> RuleSet:
    """The rules in `directory`, with the templates in their version as the worker records it."""
    from mailbot.services.entry_support import read_template_files
    from mailbot.services.template_check import load_rules_and_templates

    files = read_template_files(ctx.templates_dir) if ctx.templates_dir is not None else None
    try:
        return load_rules_and_templates(
            directory, files, known_templates=ctx.known_templates, known_mailboxes=ctx.known_mailboxes
        )
    except RuleSetErrors as problems:
        _print_errors(problems.errors)
        sys.exit(1)


def _print_explanation(data: dict[str, Any], ruleset: RuleSet) -> None:
    mail = data["mail"]
    sender = f"{mail['from_name']} <{mail['from']}>" if mail["from_name"] else (mail["from"] or "(no sender)")
    click.echo(f"Mail:      {mail['subject']!r} from {sender}")
    click.echo(f"Mailbox:   {data['mailbox'] or '(unknown: use --mailbox)'}")
    automation = data["automation"]
    writer = "a person" if automation["kind"] == "human" else f"a machine ({automation['kind']})"
    click.echo(f"Written by {writer}: {automation['reason']}")
    runners_up = sorted(
        ((s, i) for i, s in data["intent_scores"].items() if i != data["intent"]), reverse=True
    )[:2]
    others = ", ".join(f"{i} {s}" for s, i in runners_up)
    click.echo(
        f"Intent:    {data['intent']} (score {data['intent_score']}{'; next: ' + others if others else ''}), "
        f"language {data['language']}"
    )
    for reason in data["intent_reasons"]:
        click.echo(f"           - {reason}")
    if data["orders"]:
        for index, order in enumerate(data["orders"]):
            label = "Orders:" if index == 0 else ""
            click.echo(f"{label:<10} {order['number']} (score {order['score']}, found in {order['source']})")
            for reason in order["reasons"]:
                click.echo(f"             - {reason}")
    else:
        click.echo("Orders:    none found")
    for rejected in data["rejected_numbers"]:
        click.echo(f"Not taken: {rejected['text']!r} in {rejected['source']}: {rejected['reason']}")
    thread = data["thread"]
    click.echo(f"Thread:    {'case ' + thread['case'] if thread['case'] else 'new case'}: {thread['reason']}")
    click.echo(f"Rules (version {ruleset.short_version}):")
    for step in data["trace"]:
        click.echo(f"  {'hit ' if step['hit'] else 'miss'}  {step['rule']}: {step['why']}")
    parts = [f"category {data['category']}", f"priority {data['priority']}"]
    parts += [f"{k} {data[k]}" for k in ("queue", "assignee") if data[k]]
    if data["tags"]:
        parts.append("tags " + ", ".join(data["tags"]))
    click.echo(f"Decision:  {data['outcome']} ({data['reason']}); decided by {data['decided_by']}")
    click.echo(f"           {', '.join(parts)}")
    click.echo(f"Reply:     {data['template'] or 'none'}")


# -- replay ---------------------------------------------------------------------------------------


@rules.command("replay")
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
            report = replay_corpus(Path(corpus), ctx, draft_dir=Path(draft), mailbox=mailbox)
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
            report = _from_store(
                settings,
                lambda engine: replay_stored(
                    engine, ctx, draft_dir=Path(draft), since=start, mailbox=mailbox
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


@rules.command("stats")
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


@rules.command("status")
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


# -- reference ------------------------------------------------------------------------------------


@rules.command("reference")
def reference_command() -> None:
    """List every condition, action and key a rule or rule test may use, with what it means."""
    sections: list[tuple[str, list[tuple[str, str]]]] = [
        ("Keys of a [[rule]]", list(RULE_KEYS.items())),
        (
            "Conditions (under when / unless)",
            [(p.name, f"{p.doc}  Example: {p.example}") for p in PREDICATES],
        ),
        ("Actions (under then)", list(ACTIONS.items())),
        ("Keys of a [[test]]", list(TEST_KEYS.items())),
        ("Expectations (under expect)", list(EXPECT_KEYS.items())),
    ]
    for index, (title, entries) in enumerate(sections):
        if index:
            click.echo()
        click.echo(title)
        width = max(len(name) for name, _ in entries)
        for name, doc in entries:
            click.echo(f"  {name:<{width}}  {doc}")

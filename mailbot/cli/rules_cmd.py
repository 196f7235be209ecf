"""`mailbot rules …`: supervisors check, test, explain and replay routing rules before they go live,
and see how the rules in charge are doing (statistics, health).

Output is plain text for people and `--json` for programs. Exit codes: 0 when everything is fine,
1 when a rule file is invalid, a test fails or a mail cannot be read, 2 for a usage problem.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mailbot.core.errors import RuleFileError
from mailbot.core.rules.expectations import EXPECT_KEYS, TEST_KEYS
from mailbot.core.rules.predicates import PREDICATES
from mailbot.core.rules.schema import ACTIONS, RULE_KEYS, RuleSet, RuleSetErrors
from mailbot.core.types import Identity
from mailbot.services.rules_admin import (
    CheckReport,
    RulesContext,
    RuleTestReport,
    check_rules,
    explain_message,
    run_rule_tests,
)

if TYPE_CHECKING:

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

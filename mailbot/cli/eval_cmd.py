"""`mailbot eval PATH`: how well mailbot reads and answers a folder of labelled mail.

Needs no server and no config file: without one, our identity (mailbox addresses, Message-ID
domain, case tag) is taken from config.example.toml, which follows the labelled corpora's
conventions.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import click

from mailbot.core.types import Identity

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.toml"


def _identity_and_paths(config_option: str | None) -> tuple[Identity, dict[str, str], Path, Path]:
    from mailbot.settings import SettingsError, find_config, load_settings

    config = find_config(config_option)
    if config_option or config.is_file():
        try:
            settings = load_settings(config)
        except SettingsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        identity = Identity(
            addresses=frozenset(box.address for box in settings.mailboxes.values()),
            message_id_domain=settings.identity.message_id_domain,
            case_tag=settings.identity.case_tag,
        )
        addresses = {box.address: name for name, box in settings.mailboxes.items()}
        return identity, addresses, settings.rules_dir, settings.templates_dir
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    boxes = data.get("mailboxes", {})
    ident = data.get("identity", {})
    identity = Identity(
        addresses=frozenset(str(b["address"]).lower() for b in boxes.values()),
        message_id_domain=str(ident.get("message_id_domain", "mailbot.example.test")),
        case_tag=str(ident.get("case_tag", "Case")),
    )
    addresses = {str(b["address"]).lower(): name for name, b in boxes.items()}
    return identity, addresses, REPO / "rules", REPO / "templates"


def _print_report(report: dict[str, Any]) -> None:
    click.echo(f"{report['n']} labelled mails")
    for key, label in (
        ("order_first", "first order number right"),
        ("order_exact", "all order numbers right"),
        ("intent_accuracy", "intent right"),
        ("reply_precision", "replies that were wanted"),
        ("reply_recall", "wanted replies given"),
        ("language_accuracy", "language right"),
    ):
        click.echo(f"  {label:<26} {report[key]:6.1%}   ({key})")
    click.echo("  per intent:                 precision  recall   f1   (mails)")
    for intent, scores in sorted(report["intent"].items()):
        click.echo(
            f"    {intent:<24} {scores['precision']:8.0%} {scores['recall']:7.0%} {scores['f1']:5.2f}"
            f"   ({scores['support']})"
        )
    failures = report["failures"]
    if failures:
        click.echo(f"\n{len(failures)} differences:")
        for f in failures:
            click.echo(f"  {f['file']}: {f['field']}: expected {f['expected']!r}, got {f['got']!r}")


@click.command("eval")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--rules-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Rules to evaluate (default: the config's rules_dir, else the shipped rules/).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every figure and failure.")
@click.pass_context
def eval_command(ctx: click.Context, path: Path, rules_dir: Path | None, as_json: bool) -> None:
    """Read and decide every .eml in PATH (with labels.jsonl) and report accuracy; no server needed."""
    from mailbot.cli.progress import progress_bar
    from mailbot.core.errors import RuleFileError
    from mailbot.core.rules.schema import RuleSetErrors
    from mailbot.services.entry_support import load_reading_config, load_ruleset, template_names
    from mailbot.services.evaluate import EvalContext, EvalInputError, evaluate_folder

    identity, addresses, default_rules, templates_dir = _identity_and_paths(
        getattr(ctx.find_root().obj, "config", None)
    )
    rules = rules_dir or default_rules
    try:
        context = EvalContext(
            identity=identity,
            reading_config=load_reading_config(rules),
            ruleset=load_ruleset(
                rules,
                known_templates=template_names(templates_dir),
                known_mailboxes=frozenset(addresses.values()),
            ),
            mailbox_addresses=addresses,
        )
        with progress_bar("reading and deciding") as progress:
            report = evaluate_folder(path, context, progress)
    except (RuleFileError, RuleSetErrors, EvalInputError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_report(report)

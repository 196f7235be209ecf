"""`mailbot demo`: the main job on the embedded default, with no server at all.

It sets up a folder holding a config, an SQLite database and two local Maildirs seeded with a few
buyer mails, runs one poll, and prints the cases opened and the replies written — the quickest
way for a new user to see what mailbot does.
"""

from __future__ import annotations

import shutil
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import click

from mailbot.settings import load_settings

REPO = Path(__file__).resolve().parents[2]

DEMO_CONFIG = """\
# Written by `mailbot demo`: two local Maildirs, SQLite, replies as .eml files in var/outbox.
data_dir = "var"
rules_dir = "{rules}"
templates_dir = "{templates}"
log_level = "WARNING"

[identity]
message_id_domain = "mailbot.example.test"

[mailboxes.pm]
address = "ta-pm@support.example.test"
service = "Production Monitoring"
source = "maildir"
maildir = {{ path = "mail/pm" }}

[mailboxes.inspection]
address = "ta-inspection@support.example.test"
service = "Inspection"
source = "maildir"
maildir = {{ path = "mail/inspection" }}
"""


def _seed(samples: Path, maildir: Path) -> int:
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    count = 0
    for number, eml in enumerate(sorted(samples.glob("*.eml")), start=1):
        shutil.copyfile(eml, maildir / "new" / f"1763280000.M{number}P1.demo")
        count += 1
    return count


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Folder for the demo's config, database and Maildirs.",
)
@click.option(
    "--fresh/--keep",
    default=True,
    show_default=True,
    help="Start from an empty folder (default) or keep earlier demo state.",
)
def demo(directory: Path, fresh: bool) -> None:
    """Run the main job on sample buyer mail: local Maildirs in, SQLite, replies to a local folder."""
    from mailbot.runtime import build_runtime
    from mailbot.services.cases import show_case

    examples = REPO / "examples" / "mail"
    if not examples.is_dir():
        click.echo("error: the demo needs a source checkout (examples/mail not found)", err=True)
        sys.exit(2)
    if fresh and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.toml"
    config.write_text(
        DEMO_CONFIG.format(rules=REPO / "rules", templates=REPO / "templates"), encoding="utf-8"
    )
    seeded = sum(_seed(examples / box, directory / "mail" / box) for box in ("pm", "inspection"))
    click.echo(f"Seeded {seeded} buyer mails into {directory / 'mail'} (Maildirs pm/ and inspection/).")

    runtime = build_runtime(load_settings(config))
    created: list[str] = []
    for name in runtime.enabled_mailboxes():
        report = runtime.poll(name)
        if not report.ok:
            click.echo(f"error: mailbox {name}: {report.error}", err=True)
            sys.exit(1)
        created.extend(report.cases_created)
        click.echo(
            f"{name}: {report.fetched} mails read: {report.routed} routed, {report.ignored} ignored, "
            f"{report.quarantined} quarantined"
        )
    drained = runtime.drain()

    click.echo(f"\nCases opened ({len(created)}):")
    for ref in created:
        case = show_case(runtime.engine, ref)
        assert case is not None
        orders = ", ".join(case["orders"]) or "no order number"
        click.echo(
            f"  [Case #{ref}] {case['category']:<16} {case['mailbox']:<11} {orders:<20} {case['buyer']}"
        )

    outbox = runtime.settings.outbox_dir
    written = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
    click.echo(f"\nReplies written to {outbox} ({drained.sent}):")
    for path in written:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        first = next((ln for ln in str(body.get_content()).splitlines() if ln.strip()), "") if body else ""
        click.echo(f"  {path.name}\n    To: {message['To']}\n    Subject: {message['Subject']}\n    {first}")
    click.echo(f"\nLook closer: mailbot --config {config} cases list   |   cases show REF")

"""Long work tells its caller how far it has got: (done, total) from a real poll, replay, eval, reprocess.

The command line draws a bar from these calls (tests/test_cli_progress.py); here the totals and the
order of the calls are checked against real work: a Dovecot backlog, the shipped rule files over a
labelled folder, and quarantine rows made by a real poll.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fixtures.servers import DovecotServer

from mailbot.adapters.imap import ImapSource
from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.maildir import MaildirSource
from mailbot.adapters.templates import TemplateStore
from mailbot.core.types import Identity
from mailbot.services.entry_support import load_ruleset, template_names
from mailbot.services.evaluate import EvalContext, evaluate_folder
from mailbot.services.ingest import Intake, MailboxInfo, poll_mailbox
from mailbot.services.quarantine import list_quarantine, reprocess
from mailbot.services.rules_admin import RulesContext, RulesWatcher, replay_corpus
from mailbot.store.db import make_engine, upgrade

REPO = Path(__file__).resolve().parents[2]
BACKLOG = (REPO / "tests" / "eml" / "progress" / "backlog-cancel.eml").read_bytes()
LABELLED = REPO / "tests" / "eml" / "heldout6"  # 50 labelled mails
ADDRESSES = {"ta-pm@support.example.test": "pm", "ta-inspection@support.example.test": "inspection"}
US = Identity(addresses=frozenset(ADDRESSES), message_id_domain="mailbot.example.test")
MAILBOXES = frozenset(ADDRESSES.values())
TEMPLATES = template_names(REPO / "templates")


class Heard:
    """A Progress that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def assert_counts_up_to(self, total: int, *, at_least: int) -> None:
        assert self.calls[0] == (0, total)
        assert self.calls[-1] == (total, total)
        assert {t for _d, t in self.calls} == {total}
        done = [d for d, _t in self.calls]
        assert done == sorted(done)
        assert len(self.calls) >= at_least, self.calls


def backlog(n: int) -> list[bytes]:
    """`n` distinct buyer mails: the fixture with its order number and Message-ID numbered."""
    return [
        BACKLOG.replace(b"NNNNN", f"{i:05d}".encode()).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        for i in range(n)
    ]


def make_intake(database_url: str, **limits: object) -> Intake:
    upgrade(database_url)
    templates = TemplateStore(REPO / "templates")
    intake = Intake(
        engine=make_engine(database_url),
        identity=US,
        rules=RulesWatcher(REPO / "rules", known_templates=templates.names),
        renderer=templates,
        mailboxes={"pm": MailboxInfo("pm", "ta-pm@support.example.test", "Production Monitoring")},
        clock=lambda: datetime.now(UTC),
    )
    for name, value in limits.items():
        setattr(intake, name, value)
    return intake


@pytest.mark.imap
def test_a_poll_reports_each_mail_of_a_dovecot_backlog_and_an_empty_poll_reports_nothing(
    dovecot: DovecotServer, imap_user: str, database_url: str
) -> None:
    dovecot.append_many(imap_user, backlog(12))
    intake = make_intake(database_url)
    heard = Heard()

    source = ImapSource(dovecot.imap_config(imap_user))
    report = poll_mailbox(intake, "pm", source, batch_size=5, progress=heard)

    assert report.ok and report.routed == 12, report
    heard.assert_counts_up_to(12, at_least=13)  # (0, 12), then after every mail
    again = Heard()
    poll_mailbox(intake, "pm", ImapSource(dovecot.imap_config(imap_user)), progress=again)
    assert again.calls == []
    intake.engine.dispose()


def test_a_replay_reports_each_mail_of_the_corpus_under_the_shipped_rule_files() -> None:
    ctx = RulesContext(
        rules_dir=REPO / "rules",
        identity=US,
        reading_config=load_reading_config(REPO / "rules"),
        known_templates=TEMPLATES,
        known_mailboxes=MAILBOXES,
        mailbox_addresses=ADDRESSES,
    )
    heard = Heard()

    report = replay_corpus(LABELLED, ctx, draft_dir=REPO / "rules", progress=heard)

    assert len(report.rows) == 50 and not report.changed  # the same rules on both sides
    heard.assert_counts_up_to(50, at_least=51)


def test_eval_reports_each_labelled_mail_of_the_folder() -> None:
    ctx = EvalContext(
        identity=US,
        reading_config=load_reading_config(REPO / "rules"),
        ruleset=load_ruleset(REPO / "rules", known_templates=TEMPLATES, known_mailboxes=MAILBOXES),
        mailbox_addresses=ADDRESSES,
    )
    heard = Heard()

    report = evaluate_folder(LABELLED, ctx, heard)

    assert report["n"] == 50
    heard.assert_counts_up_to(50, at_least=51)


def test_reprocess_reports_each_quarantined_mail(tmp_path: Path, database_url: str) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for number, raw in enumerate(backlog(3)):
        (maildir / "new" / f"{number:04d}.mail").write_bytes(raw)
    intake = make_intake(database_url, message_budget_seconds=1e-9)  # nobody can meet it
    poll_mailbox(intake, "pm", MaildirSource(maildir))
    rows = list_quarantine(intake.engine)
    assert len(rows) == 3
    intake.message_budget_seconds = 10.0
    heard = Heard()

    results = reprocess(intake, [row["id"] for row in rows], progress=heard)

    assert [result.outcome for result in results] == ["routed"] * 3
    assert heard.calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    intake.engine.dispose()

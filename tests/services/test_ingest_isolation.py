"""One message never spoils its batch: each is applied in a savepoint of the batch's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from sqlmodel import Session, col, select

from mailbot.adapters.maildir import MaildirSource
from mailbot.adapters.templates import TemplateStore
from mailbot.core.reading import ReadingConfig
from mailbot.core.rules.schema import RuleSet
from mailbot.core.types import Identity
from mailbot.services.ingest import Intake, MailboxInfo, poll_mailbox
from mailbot.services.rules_admin import RulesWatcher
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import Case, CaseEvent, MailRecord, OutboxItem

REPO = Path(__file__).resolve().parents[2]
EML = REPO / "tests" / "eml"


class RulesThatBreakOnTheSecondMail:
    """The rules in charge, except that asking for them while deciding the second mail raises.

    Stands in for a bug in the engine: the service must keep the mail, say why, and go on.
    """

    def __init__(self, watcher: RulesWatcher) -> None:
        self.watcher = watcher
        self.calls = 0

    def current(self) -> RuleSet:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("engine bug while deciding")
        return self.watcher.current()

    def reading(self) -> ReadingConfig:
        return self.watcher.reading()


def buyer_mail(n: int, subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Buyer {n} <buyer{n}@shop.example>"
    message["To"] = "ta-pm@support.example.test"
    message["Subject"] = subject
    message["Message-ID"] = f"<iso-{n}@shop.example>"
    message.set_content(f"Please cancel the production monitoring for {subject.lower()}.")
    return message.as_bytes()


def maildir_with(tmp_path: Path, mails: list[bytes]) -> Path:
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for number, raw in enumerate(mails):
        (maildir / "new" / f"{number:04d}.mail").write_bytes(raw)
    return maildir


def intake_for(database_url: str) -> Intake:
    upgrade(database_url)
    templates = TemplateStore(REPO / "templates")
    watcher = RulesWatcher(REPO / "rules", known_templates=templates.names)
    return Intake(
        engine=make_engine(database_url),
        identity=Identity(
            addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test"
        ),
        rules=watcher,
        renderer=templates,
        mailboxes={"pm": MailboxInfo("pm", "ta-pm@support.example.test", "Production Monitoring")},
        clock=lambda: datetime.now(UTC),
    )


def test_a_message_that_fails_mid_batch_is_quarantined_alone_and_its_batch_is_routed(
    tmp_path: Path, database_url: str
) -> None:
    mails = [
        buyer_mail(1, "Order 162534987612345"),
        buyer_mail(2, "Order 372615498761234"),
        buyer_mail(3, "Order 482615498761234"),
    ]
    intake = intake_for(database_url)
    intake.rules = RulesThatBreakOnTheSecondMail(intake.rules)  # type: ignore[arg-type]

    report = poll_mailbox(intake, "pm", MaildirSource(maildir_with(tmp_path, mails)), batch_size=50)

    assert (report.fetched, report.routed, report.quarantined) == (3, 2, 1)
    with Session(intake.engine) as session:
        outcomes = [r.outcome for r in session.exec(select(MailRecord).order_by(col(MailRecord.uid)))]
        poisoned = session.exec(select(MailRecord).where(col(MailRecord.outcome) == "quarantined")).one()
        assert "engine bug while deciding" in poisoned.reason
        assert poisoned.raw == mails[1]  # kept byte for byte, to be looked at and replayed
        cases = session.exec(select(Case)).all()
        assert sorted(c.orders[0] for c in cases) == ["162534987612345", "482615498761234"]
        assert len(session.exec(select(OutboxItem)).all()) == 2  # nothing half-applied for the poison
        assert session.exec(select(CaseEvent).where(col(CaseEvent.kind) == "quarantined")).one()
    assert outcomes == ["routed", "quarantined", "routed"]
    intake.engine.dispose()


def test_a_mail_with_nul_bytes_in_its_headers_is_routed_on_every_database(
    tmp_path: Path, database_url: str
) -> None:
    intake = intake_for(database_url)
    source = MaildirSource(maildir_with(tmp_path, [(EML / "parse-nul-in-headers.eml").read_bytes()]))

    report = poll_mailbox(intake, "pm", source)

    assert (report.routed, report.quarantined) == (1, 0), report
    with Session(intake.engine) as session:
        (case,) = session.exec(select(Case)).all()
        assert case.orders == ["162534987612345"]
        assert case.subject == "Please cancel monitoring for order 162534987612345"
    intake.engine.dispose()

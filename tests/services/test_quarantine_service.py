"""Reprocessing quarantined mail at the service level, on a Maildir and SQLite / PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, col, select

from mailbot.adapters.maildir import MaildirSource
from mailbot.adapters.templates import TemplateStore
from mailbot.core.types import Identity
from mailbot.services.ingest import Intake, MailboxInfo, poll_mailbox
from mailbot.services.quarantine import list_quarantine, reprocess
from mailbot.services.rules_admin import RulesWatcher
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import CaseEvent, MailRecord

REPO = Path(__file__).resolve().parents[2]
CANCEL = (REPO / "tests" / "eml" / "bounds" / "cancel.eml").read_bytes()


def make_intake(database_url: str, **limits: object) -> Intake:
    upgrade(database_url)
    templates = TemplateStore(REPO / "templates")
    intake = Intake(
        engine=make_engine(database_url),
        identity=Identity(
            addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test"
        ),
        rules=RulesWatcher(REPO / "rules", known_templates=templates.names),
        renderer=templates,
        mailboxes={"pm": MailboxInfo("pm", "ta-pm@support.example.test", "Production Monitoring")},
        clock=lambda: datetime.now(UTC),
    )
    for name, value in limits.items():
        setattr(intake, name, value)
    return intake


def maildir_with(tmp_path: Path, raw: bytes) -> Path:
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "new" / "0001.mail").write_bytes(raw)
    return root


def events_of(intake: Intake, mail_id: int) -> list[str]:
    with Session(intake.engine) as session:
        query = select(CaseEvent).where(CaseEvent.mail_id == mail_id).order_by(col(CaseEvent.id))
        return [event.kind for event in session.exec(query)]


def test_a_mail_that_fails_again_stays_quarantined_with_the_new_reason(
    tmp_path: Path, database_url: str
) -> None:
    intake = make_intake(database_url, message_budget_seconds=1e-9)
    poll_mailbox(intake, "pm", MaildirSource(maildir_with(tmp_path, CANCEL)))
    (row,) = list_quarantine(intake.engine)

    (result,) = reprocess(intake, [row["id"]])

    assert result.outcome == "quarantined" and not result.settled
    assert result.reason.startswith("time budget exceeded")
    assert events_of(intake, row["id"]) == ["quarantined", "quarantined", "reprocessed"]
    intake.engine.dispose()


def test_reprocessing_routes_the_mail_and_records_the_case_on_its_ledger_row(
    tmp_path: Path, database_url: str
) -> None:
    intake = make_intake(database_url, message_budget_seconds=1e-9)
    poll_mailbox(intake, "pm", MaildirSource(maildir_with(tmp_path, CANCEL)))
    (row,) = list_quarantine(intake.engine)

    intake.message_budget_seconds = 10.0
    (result,) = reprocess(intake, [row["id"]])

    assert (result.outcome, result.replies_queued) == ("routed", 1)
    with Session(intake.engine) as session:
        mail = session.exec(select(MailRecord)).one()
        assert (mail.outcome, mail.case_id is not None, mail.raw) == ("routed", True, CANCEL)
    assert events_of(intake, row["id"]) == ["quarantined", "routed", "reply_queued", "reprocessed"]
    assert list_quarantine(intake.engine) == []
    intake.engine.dispose()


def test_a_mail_too_large_is_fetched_from_its_maildir_once_the_limit_allows_and_marked_processed(
    tmp_path: Path, database_url: str
) -> None:
    big = CANCEL + b"\n" + b"Attached: the packing list, pasted.\n" * 100
    root = maildir_with(tmp_path, big)
    intake = make_intake(database_url, max_message_bytes=1024)
    poll_mailbox(intake, "pm", MaildirSource(root))
    (row,) = list_quarantine(intake.engine)
    assert row["headers_only"] and list((root / "new").iterdir())  # left where it was

    intake.max_message_bytes = 1024 * 1024
    (result,) = reprocess(intake, [row["id"]], open_source=lambda mailbox: MaildirSource(root))

    assert result.outcome == "routed", result.reason
    (processed,) = (root / "cur").iterdir()
    assert processed.name.endswith(":2,Sa")
    with Session(intake.engine) as session:
        mail = session.exec(select(MailRecord)).one()
        assert (mail.raw, mail.size, mail.acked_at is not None) == (big, len(big), True)
    intake.engine.dispose()


def test_a_mail_too_large_is_skipped_when_its_mailbox_cannot_be_opened(
    tmp_path: Path, database_url: str
) -> None:
    intake = make_intake(database_url, max_message_bytes=1024)
    poll_mailbox(intake, "pm", MaildirSource(maildir_with(tmp_path, CANCEL + b"x" * 2000)))
    (row,) = list_quarantine(intake.engine)
    intake.max_message_bytes = 1024 * 1024

    (result,) = reprocess(intake, [row["id"]])

    assert result.outcome == "skipped"
    assert "must be fetched from mailbox 'pm', which cannot be opened" in result.reason
    assert len(list_quarantine(intake.engine)) == 1
    intake.engine.dispose()

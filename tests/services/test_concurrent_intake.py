"""Two poll jobs at the same moment: one mail cross-posted to both mailboxes is one case and one reply."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from sqlmodel import Session, func, select

from mailbot.adapters.maildir import MaildirSource
from mailbot.adapters.templates import TemplateStore
from mailbot.core.types import Identity
from mailbot.services.ingest import Intake, MailboxInfo, PollReport, poll_mailbox
from mailbot.services.rules_admin import RulesWatcher
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import Case, MailRecord, OutboxItem

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 8

BOXES = {
    "pm": MailboxInfo("pm", "ta-pm@support.example.test", "Production Monitoring"),
    "inspection": MailboxInfo("inspection", "ta-inspection@support.example.test", "Inspection"),
}


def cross_posted(n: int, mailbox: str) -> bytes:
    """One buyer mail sent to both support addresses; each copy carries its own Delivered-To."""
    message = EmailMessage()
    message["Delivered-To"] = BOXES[mailbox].address
    message["From"] = f"Buyer {n} <buyer{n}@shop.example>"
    message["To"] = "ta-pm@support.example.test, ta-inspection@support.example.test"
    message["Subject"] = f"Cancel order {162534987612000 + n}"
    message["Message-ID"] = f"<cross-{n}@shop.example>"
    message.set_content(f"Please cancel the service for order {162534987612000 + n}.")
    return message.as_bytes()


def maildir(root: Path, name: str) -> Path:
    path = root / name
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def test_the_same_message_id_polled_in_two_mailboxes_at_once_opens_one_case_and_queues_one_reply(
    tmp_path: Path, database_url: str
) -> None:
    upgrade(database_url)
    templates = TemplateStore(REPO / "templates")
    intake = Intake(
        engine=make_engine(database_url),
        identity=Identity(
            addresses=frozenset(box.address for box in BOXES.values()),
            message_id_domain="mailbot.example.test",
        ),
        rules=RulesWatcher(REPO / "rules", known_templates=templates.names),
        renderer=templates,
        mailboxes=BOXES,
        clock=lambda: datetime.now(UTC),
    )
    dirs = {name: maildir(tmp_path, name) for name in BOXES}
    reports: list[PollReport] = []

    for n in range(ROUNDS):
        for name, path in dirs.items():
            (path / "new" / f"{n:04d}.mail").write_bytes(cross_posted(n, name))
        barrier = threading.Barrier(len(dirs))

        def poll(name: str, barrier: threading.Barrier) -> None:
            source = MaildirSource(dirs[name])
            barrier.wait()
            reports.append(poll_mailbox(intake, name, source))

        threads = [threading.Thread(target=poll, args=(name, barrier)) for name in dirs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert all(report.ok and report.quarantined == 0 for report in reports), reports
    with Session(intake.engine) as session:
        assert session.exec(select(func.count()).select_from(Case)).one() == ROUNDS
        assert session.exec(select(func.count()).select_from(OutboxItem)).one() == ROUNDS
        duplicates = session.exec(select(MailRecord).where(MailRecord.outcome == "ignored")).all()
        assert len(duplicates) == ROUNDS and all("duplicate" in mail.reason for mail in duplicates)
    intake.engine.dispose()

"""All 759 real-world mails through the whole intake: nothing lost, nothing answered that is a machine.

The mails are put in a local Maildir and ingested by the real service into a real database; then
the ledger is checked against the corpus manifest.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from mailbot.adapters.maildir import MaildirSource
from mailbot.adapters.templates import TemplateStore
from mailbot.core.types import Identity
from mailbot.services.ingest import Intake, MailboxInfo, poll_mailbox
from mailbot.services.rules_admin import RulesWatcher
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import MailRecord, OutboxItem

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("MAILBOT_SHARED", REPO.parent / "shared")) / "corpus"
MACHINE_NOTES = ("bounce", "Auto-Submitted=", "auto-reply", "Precedence=")


def manifest() -> list[dict[str, str]]:
    path = CORPUS / "MANIFEST.tsv"
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the real-world corpus is missing: {path}")
        pytest.skip(f"the real-world corpus is missing: {path}")
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.mark.slow
def test_every_real_world_mail_ends_routed_ignored_or_quarantined_and_machines_get_no_reply(
    tmp_path: Path, database_url: str
) -> None:
    rows = manifest()
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for number, row in enumerate(rows):
        shutil.copyfile(CORPUS / "realworld" / row["file"], maildir / "new" / f"{number:06d}.corpus")
    upgrade(database_url)
    engine = make_engine(database_url)
    templates = TemplateStore(REPO / "templates")
    intake = Intake(
        engine=engine,
        identity=Identity(
            addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test"
        ),
        rules=RulesWatcher(REPO / "rules", known_templates=templates.names),
        renderer=templates,
        mailboxes={
            "pm": MailboxInfo(
                name="pm", address="ta-pm@support.example.test", service="Production Monitoring"
            )
        },
        clock=lambda: datetime.now(UTC),
    )

    report = poll_mailbox(intake, "pm", MaildirSource(maildir))

    assert report.ok, report.error
    assert report.fetched == len(rows)
    with Session(engine) as session:
        records = session.exec(select(MailRecord)).all()
        answered = set(session.exec(select(OutboxItem.mail_id)).all())
        assert len(records) == len(rows)  # nothing lost: one ledger row per message
        by_sha = {r.sha256: r for r in records}
        for row in rows:
            record = by_sha[row["sha256"]]
            assert record.outcome in {"routed", "ignored", "quarantined"}, row["file"]
            if record.outcome != "routed":
                assert record.reason, row["file"]
            if any(note in row["notes"] for note in MACHINE_NOTES):
                assert record.id not in answered, f"{row['file']} is machine mail but was answered"
            assert hashlib.sha256(record.raw).hexdigest() == row["sha256"]  # raw bytes kept exactly
        quarantined = session.exec(select(MailRecord).where(col(MailRecord.outcome) == "quarantined")).all()
    # Quarantine is for mail that truly cannot be handled, not for every oddity in the corpus.
    assert len(quarantined) < len(rows) * 0.1, [q.reason for q in quarantined][:10]
    assert set(os.listdir(maildir / "new")) == set()  # everything acknowledged
    engine.dispose()

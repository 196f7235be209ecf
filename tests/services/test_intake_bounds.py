"""Bounded work per message, against a real Dovecot and SQLite / PostgreSQL.

A mail that reads for ever, or kills its reader, is quarantined and the next mail is routed; a mail
over the size limit is never downloaded, its headers are recorded and it stays untouched in the
mailbox; a quarantined mail delivered again is decided afresh.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fixtures.servers import DovecotServer
from fixtures.slow_reading import read_or_misbehave
from sqlmodel import Session, col, select

from mailbot.adapters.imap import PROCESSED_KEYWORD, ImapSource
from mailbot.adapters.templates import TemplateStore
from mailbot.core.types import Identity
from mailbot.services.ingest import Intake, MailboxInfo, PollReport, poll_mailbox
from mailbot.services.reading_worker import ReaderPool
from mailbot.services.rules_admin import RulesWatcher
from mailbot.store.db import make_engine, upgrade
from mailbot.store.tables import Case, CaseEvent, MailRecord

pytestmark = pytest.mark.imap

REPO = Path(__file__).resolve().parents[2]
EML = REPO / "tests" / "eml" / "bounds"
IDENTITY = Identity(
    addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test"
)


def eml(name: str) -> bytes:
    return (EML / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def large_mail(n: int, size: int) -> bytes:
    """A buyer mail of about `size` bytes with CRLF line ends (so RFC822.SIZE is its length)."""
    head = (
        f"From: Big Sender {n} <big{n}@factory.example>\r\n"
        "To: ta-pm@support.example.test\r\n"
        f"Subject: Inspection photos for order 16253498761{n:04d}\r\n"
        f"Message-ID: <bounds-large-{n}@factory.example>\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    ).encode()
    line = b"All the photos of the production line are below, in one long text.\r\n"
    return head + line * ((size - len(head)) // len(line) + 1)


@pytest.fixture
def readers() -> Iterator[ReaderPool]:
    pool = ReaderPool(IDENTITY, read_fn=read_or_misbehave)
    yield pool
    pool.close()


def make_intake(database_url: str, readers: ReaderPool | None = None, **limits: object) -> Intake:
    upgrade(database_url)
    templates = TemplateStore(REPO / "templates")
    intake = Intake(
        engine=make_engine(database_url),
        identity=IDENTITY,
        rules=RulesWatcher(REPO / "rules", known_templates=templates.names),
        renderer=templates,
        mailboxes={"pm": MailboxInfo("pm", "ta-pm@support.example.test", "Production Monitoring")},
        clock=lambda: datetime.now(UTC),
        readers=readers,
    )
    for name, value in limits.items():
        setattr(intake, name, value)
    return intake


def poll(intake: Intake, dovecot: DovecotServer, user: str) -> PollReport:
    report = poll_mailbox(intake, "pm", ImapSource(dovecot.imap_config(user)))
    assert report.ok, report.error
    return report


def ledger(intake: Intake) -> list[MailRecord]:
    with Session(intake.engine) as session:
        return list(session.exec(select(MailRecord).order_by(col(MailRecord.uid))))


# -- the time budget ----------------------------------------------------------------------------------


def test_a_mail_that_reads_past_its_budget_is_quarantined_and_the_next_mail_is_routed(
    dovecot: DovecotServer, imap_user: str, database_url: str, readers: ReaderPool
) -> None:
    dovecot.append_many(imap_user, [eml("hang.eml"), eml("cancel.eml")])
    intake = make_intake(database_url, readers, message_budget_seconds=3.0)

    report = poll(intake, dovecot, imap_user)

    assert (report.fetched, report.quarantined, report.routed) == (2, 1, 1)
    stuck, routed = ledger(intake)
    assert stuck.outcome == "quarantined"
    assert stuck.reason.startswith("time budget exceeded")
    assert stuck.raw == eml("hang.eml")  # kept byte for byte, to be reprocessed
    assert routed.outcome == "routed"
    with Session(intake.engine) as session:
        (case,) = session.exec(select(Case)).all()
        assert case.orders == ["162534987612345"]
    intake.engine.dispose()


def test_the_mail_past_its_budget_is_not_read_again_at_the_next_poll(
    dovecot: DovecotServer, imap_user: str, database_url: str, readers: ReaderPool
) -> None:
    dovecot.append(imap_user, eml("hang.eml"))
    intake = make_intake(database_url, readers, message_budget_seconds=2.0)
    poll(intake, dovecot, imap_user)
    dovecot.append(imap_user, eml("cancel.eml"))

    again = poll(intake, dovecot, imap_user)

    assert (again.fetched, again.routed) == (1, 1)
    assert all(PROCESSED_KEYWORD in flags for flags in dovecot.flags(imap_user).values())
    intake.engine.dispose()


def test_a_reading_process_that_dies_costs_only_the_mail_it_was_reading(
    dovecot: DovecotServer, imap_user: str, database_url: str, readers: ReaderPool
) -> None:
    dovecot.append_many(imap_user, [eml("crash.eml"), eml("cancel.eml")])
    intake = make_intake(database_url, readers)

    report = poll(intake, dovecot, imap_user)

    assert (report.quarantined, report.routed) == (1, 1)
    crashed, routed = ledger(intake)
    assert crashed.reason.startswith("processing failed: ReadingProcessDied: the reading process died")
    assert routed.outcome == "routed"
    intake.engine.dispose()


# -- the size limit -----------------------------------------------------------------------------------


def dovecot_sessions(dovecot: DovecotServer, user: str) -> list[str]:
    """Dovecot's logout lines of this user's IMAP sessions (they count the bytes each one sent)."""
    text = dovecot.log_path.read_text(errors="replace") if dovecot.log_path.exists() else ""
    return [line for line in text.splitlines() if f"imap({user})" in line and "Logged out" in line]


def wait_for_sessions(dovecot: DovecotServer, user: str, count: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(found := dovecot_sessions(dovecot, user)) < count:
        assert time.monotonic() < deadline, f"Dovecot logged {len(found)} of {count} sessions of {user}"
        time.sleep(0.02)
    return found


def sent_bytes(line: str) -> int:
    match = re.search(r"\bout=(\d+)", line)
    assert match is not None, line
    return int(match.group(1))


def test_mail_over_the_size_limit_is_not_downloaded_and_its_headers_are_quarantined(
    dovecot: DovecotServer, imap_user: str, database_url: str
) -> None:
    big = large_mail(1, 400_000)
    before = len(dovecot_sessions(dovecot, imap_user))
    small_uid = dovecot.append(imap_user, eml("cancel.eml"))
    big_uid = dovecot.append(imap_user, big)
    last_uid = dovecot.append(imap_user, (REPO / "tests" / "eml" / "intake" / "dispute.eml").read_bytes())
    wait_for_sessions(dovecot, imap_user, before + 3)
    intake = make_intake(database_url, max_message_bytes=100_000)

    report = poll(intake, dovecot, imap_user)

    session_line = wait_for_sessions(dovecot, imap_user, before + 4)[-1]
    assert sent_bytes(session_line) < 50_000  # the server sent the two small mails, not 400 KB
    assert (report.fetched, report.routed, report.quarantined) == (3, 2, 1)
    rows = {row.uid: row for row in ledger(intake)}
    large = rows[big_uid]
    assert large.outcome == "quarantined"
    assert large.reason == f"message of {len(big)} bytes exceeds the limit of 100000 bytes"
    assert large.size == len(big)
    assert large.raw == big[: big.index(b"\r\n\r\n") + 4]  # the header block, nothing more
    assert large.subject == "Inspection photos for order 162534987610001"
    assert large.from_addr == "big1@factory.example"
    flags = dovecot.flags(imap_user)
    assert flags[big_uid] == frozenset()  # left untouched, unread, for a person to see
    assert PROCESSED_KEYWORD in flags[small_uid] and PROCESSED_KEYWORD in flags[last_uid]
    intake.engine.dispose()


def test_mail_over_the_size_limit_is_not_fetched_again_at_the_next_poll(
    dovecot: DovecotServer, imap_user: str, database_url: str
) -> None:
    dovecot.append(imap_user, large_mail(2, 300_000))
    intake = make_intake(database_url, max_message_bytes=100_000)
    poll(intake, dovecot, imap_user)

    again = poll(intake, dovecot, imap_user)

    assert again.fetched == 0
    assert len(ledger(intake)) == 1
    intake.engine.dispose()


def whole_mail_fetches(caplog: pytest.LogCaptureFixture) -> list[list[int]]:
    """The UIDs of each whole-mail FETCH the client sent, read from imaplib's debug log."""
    sent = re.compile(r"^> b'\S+ UID FETCH ([0-9:,]+) \(BODY\.PEEK\[\]\)")
    found = []
    for record in caplog.records:
        match = sent.match(record.getMessage())
        if match:
            found.append([int(uid) for uid in match.group(1).split(",")])
    return found


def test_batches_are_cut_by_bytes_as_well_as_by_count(
    dovecot: DovecotServer, imap_user: str, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    uids = dovecot.append_many(imap_user, [large_mail(10 + n, 40_000) for n in range(5)])
    intake = make_intake(database_url, max_batch_bytes=100_000)

    with caplog.at_level(logging.DEBUG, logger="imapclient"):
        report = poll(intake, dovecot, imap_user)

    assert report.routed == 5
    assert whole_mail_fetches(caplog) == [uids[0:2], uids[2:4], uids[4:5]]
    intake.engine.dispose()


# -- quarantined mail delivered again -----------------------------------------------------------------


def test_a_quarantined_mail_delivered_again_is_decided_afresh_not_ignored_as_a_duplicate(
    dovecot: DovecotServer, imap_user: str, database_url: str, readers: ReaderPool
) -> None:
    raw = eml("cancel.eml")
    dovecot.append(imap_user, raw)
    intake = make_intake(database_url, readers, message_budget_seconds=1e-9)  # everything overruns
    assert poll(intake, dovecot, imap_user).quarantined == 1

    intake.message_budget_seconds = 10.0
    dovecot.append(imap_user, raw)
    again = poll(intake, dovecot, imap_user)

    assert (again.routed, again.duplicates) == (1, 0)
    first, second = ledger(intake)
    assert second.outcome == "routed"
    assert first.outcome == "ignored"
    assert first.reason == f"superseded: delivered again as mail #{second.id}, which was decided afresh"
    with Session(intake.engine) as session:
        kinds = [e.kind for e in session.exec(select(CaseEvent).where(CaseEvent.mail_id == first.id))]
    assert kinds == ["quarantined", "superseded"]
    intake.engine.dispose()

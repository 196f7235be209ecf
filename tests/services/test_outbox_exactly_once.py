"""The outbox against a real SMTP server that loses, delays or refuses answers, on SQLite and PostgreSQL.

Each drain is synchronous and the capture server records a message before it answers the final
".", so once `drain()` has returned every message it handed over is already in `smtp.messages`:
"no second send" is checked on that definite event, not after a sleep.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from fixtures.servers import SmtpCapture
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailbot.adapters.maildir import FolderSentCopies
from mailbot.adapters.smtp import SmtpConfig, SmtpTransport
from mailbot.services.coordination import WorkerIdentity
from mailbot.services.outbox import DrainReport, OutboxPolicy, drain
from mailbot.store import repo
from mailbot.store.db import session_scope
from mailbot.store.tables import Case, CaseEvent, OutboxItem, WorkerBeat


def now() -> datetime:
    return datetime.now(UTC)


def queue_reply(engine: Engine, n: int, rcpt: str = "buyer@shop.example", mailbox: str = "pm") -> int:
    """A rendered reply on its own case, as the intake leaves it in the outbox."""
    message = EmailMessage()
    message["From"] = "ta-pm@support.example.test"
    message["To"] = rcpt
    message["Subject"] = f"Re: order {n} [Case #C{n:05d}]"
    message["Message-ID"] = f"<reply-{n}@mailbot.example.test>"
    message["Auto-Submitted"] = "auto-replied"
    message.set_content(f"We received your request number {n}.")
    with session_scope(engine) as session:
        case = repo.add_case(
            session, Case(ref=f"C{n:05d}", category="cancellation", buyer=rcpt, mailbox=mailbox, orders=[])
        )
        item = OutboxItem(
            case_id=case.id,
            mailbox=mailbox,
            message_id=f"<reply-{n}@mailbot.example.test>",
            mail_from="ta-pm@support.example.test",
            rcpt_to=rcpt,
            template="cancellation_ack",
            language="en",
            raw=message.as_bytes(),
        )
        session.add(item)
        session.flush()
        assert item.id is not None
        return item.id


def run_drain(
    engine: Engine,
    smtp: SmtpCapture,
    tmp_path: Path,
    *,
    worker: WorkerIdentity | None = None,
    timeout: float = 5.0,
    final_reply_timeout: float = 10.0,
) -> DrainReport:
    config = SmtpConfig(
        host=smtp.host,
        port=smtp.port,
        security="plain",
        timeout=timeout,
        final_reply_timeout=final_reply_timeout,
    )
    return drain(
        engine,
        lambda: SmtpTransport(config),
        lambda mailbox: FolderSentCopies(tmp_path / "sent"),
        now,
        OutboxPolicy(backoff_seconds=0),
        worker=worker or WorkerIdentity.new(),
    )


def row(engine: Engine, item_id: int) -> OutboxItem:
    with Session(engine) as session:
        item = session.get(OutboxItem, item_id)
        assert item is not None
        return item


def event_kinds(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [e.kind for e in session.exec(select(CaseEvent).order_by(col(CaseEvent.id)))]


def test_a_connection_lost_after_the_final_dot_leaves_the_reply_uncertain_and_never_resends_it(
    engine: Engine, smtp_server: SmtpCapture, tmp_path: Path
) -> None:
    item_id = queue_reply(engine, 1)
    smtp_server.fault("drop-after-data")

    first = run_drain(engine, smtp_server, tmp_path)
    second = run_drain(engine, smtp_server, tmp_path)

    assert (first.uncertain, first.sent, first.retried) == (1, 0, 0)
    assert (second.sent, second.uncertain) == (0, 0)
    assert len(smtp_server.messages) == 1
    stored = row(engine, item_id)
    assert stored.status == "uncertain" and stored.handed_over_at is not None
    assert "reply_uncertain" in event_kinds(engine)


def test_a_250_later_than_the_final_reply_timeout_is_uncertain_not_sent_again(
    engine: Engine, smtp_server: SmtpCapture, tmp_path: Path
) -> None:
    item_id = queue_reply(engine, 2)
    smtp_server.fault("delay-250:3")

    first = run_drain(engine, smtp_server, tmp_path, timeout=0.5, final_reply_timeout=0.5)
    second = run_drain(engine, smtp_server, tmp_path, timeout=0.5, final_reply_timeout=0.5)

    assert first.uncertain == 1 and second.sent == 0
    assert len(smtp_server.messages) == 1
    assert row(engine, item_id).status == "uncertain"


def test_a_slow_250_is_awaited_longer_than_other_commands_and_the_reply_is_sent_once(
    engine: Engine, smtp_server: SmtpCapture, tmp_path: Path
) -> None:
    item_id = queue_reply(engine, 3)
    smtp_server.fault("delay-250:1")
    config = SmtpConfig(
        host=smtp_server.host, port=smtp_server.port, security="plain", timeout=0.3, final_reply_timeout=10
    )

    report = drain(
        engine,
        lambda: SmtpTransport(config),
        lambda mailbox: FolderSentCopies(tmp_path / "sent"),
        now,
        OutboxPolicy(backoff_seconds=0),
    )

    assert (report.sent, report.uncertain) == (1, 0)
    assert row(engine, item_id).status == "sent"
    assert len(smtp_server.messages) == 1


def test_a_temporary_refusal_of_the_message_is_retried_and_sent_once(
    engine: Engine, smtp_server: SmtpCapture, tmp_path: Path
) -> None:
    item_id = queue_reply(engine, 4)
    smtp_server.script("DATA", "451 4.3.0 try again later")

    first = run_drain(engine, smtp_server, tmp_path)
    second = run_drain(engine, smtp_server, tmp_path)

    assert (first.retried, second.sent) == (1, 1)
    stored = row(engine, item_id)
    assert stored.status == "sent" and stored.owner is None
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize(
    ("stage", "answer"),
    [("RCPT", "550 5.1.1 no such user"), ("DATA", "554 5.7.1 message refused for this recipient")],
)
def test_an_address_our_smtp_server_refuses_permanently_is_suppressed_with_an_event_on_the_case(
    engine: Engine, smtp_server: SmtpCapture, tmp_path: Path, stage: str, answer: str
) -> None:
    item_id = queue_reply(engine, 5, rcpt="Gone@Buyer.example")
    smtp_server.script(stage, answer)

    report = run_drain(engine, smtp_server, tmp_path)

    assert (report.failed, report.suppressed) == (1, 1)
    assert row(engine, item_id).status == "failed"
    with Session(engine) as session:
        assert repo.sender_history(session, "gone@buyer.example", now()).hard_bounced
        (event,) = session.exec(select(CaseEvent).where(CaseEvent.kind == "address_suppressed")).all()
        assert event.case_id == row(engine, item_id).case_id and answer.split()[0] in event.summary


def test_a_refused_sender_is_not_blamed_on_the_recipient(
    engine: Engine, smtp_server: SmtpCapture, tmp_path: Path
) -> None:
    queue_reply(engine, 6, rcpt="buyer6@shop.example")
    smtp_server.script("MAIL", "553 5.7.1 sender not allowed")

    report = run_drain(engine, smtp_server, tmp_path)

    assert (report.failed, report.suppressed) == (1, 0)
    with Session(engine) as session:
        assert not repo.sender_history(session, "buyer6@shop.example", now()).hard_bounced


def claim_as(engine: Engine, worker: WorkerIdentity, beat_at: datetime) -> list[int]:
    """Another worker's drain in flight: its heartbeat and the rows it claimed."""
    with session_scope(engine) as session:
        repo.beat(session, worker.id, worker.host, worker.pid, beat_at)
        return [item.id for item in repo.claim_due_outbox(session, worker.id, now(), 100) if item.id]


def test_another_live_workers_send_in_flight_is_left_alone(
    engine: Engine, smtp_server: SmtpCapture, tmp_path: Path
) -> None:
    queue_reply(engine, 7)
    other = WorkerIdentity(id="elsewhere:1:a", host="another-host", pid=1)
    (claimed,) = claim_as(engine, other, now())

    report = run_drain(engine, smtp_server, tmp_path)

    assert (report.sent, report.recovered, report.requeued, report.uncertain) == (0, 0, 0, 0)
    assert row(engine, claimed).status == "sending" and row(engine, claimed).owner == other.id
    assert smtp_server.messages == []
    assert "reply_recovered" not in event_kinds(engine)


def test_a_reply_claimed_by_a_gone_worker_but_never_handed_over_is_sent_not_left_uncertain(
    engine: Engine, smtp_server: SmtpCapture, tmp_path: Path
) -> None:
    queue_reply(engine, 8)
    gone = WorkerIdentity(id="elsewhere:1:b", host="another-host", pid=1)
    (claimed,) = claim_as(engine, gone, now() - timedelta(minutes=5))

    report = run_drain(engine, smtp_server, tmp_path)

    assert (report.requeued, report.sent, report.uncertain) == (1, 1, 0)
    assert row(engine, claimed).status == "sent"
    assert len(smtp_server.messages) == 1


def test_a_handed_over_reply_of_a_gone_worker_is_recovered_from_its_sent_copy_or_else_uncertain(
    engine: Engine, smtp_server: SmtpCapture, tmp_path: Path
) -> None:
    with_copy, without_copy = queue_reply(engine, 9), queue_reply(engine, 10)
    gone = WorkerIdentity(id="elsewhere:1:c", host="another-host", pid=1)
    claim_as(engine, gone, now() - timedelta(minutes=5))
    with session_scope(engine) as session:
        for item_id in (with_copy, without_copy):
            assert repo.mark_handed_over(session, item_id, gone.id, now())
    copied = row(engine, with_copy)
    FolderSentCopies(tmp_path / "sent").put(copied.message_id, copied.raw)

    report = run_drain(engine, smtp_server, tmp_path)

    assert (report.recovered, report.uncertain, report.sent) == (1, 1, 0)
    assert row(engine, with_copy).status == "sent"
    assert row(engine, without_copy).status == "uncertain"
    assert smtp_server.messages == []


def test_a_worker_that_signed_off_is_gone_at_once(engine: Engine) -> None:
    from mailbot.services import coordination

    me = WorkerIdentity.new()
    coordination.beat(engine, me, now())
    assert coordination.live_workers(engine, now(), coordination.Liveness()).alive(me.id)

    coordination.retire(engine, me, ["pm"])

    with Session(engine) as session:
        assert session.get(WorkerBeat, me.id) is None

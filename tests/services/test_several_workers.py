"""Two `mailbot run` workers on one database over one backlog: each mail once, quietly.

The workers are real child processes against the real Dovecot and aiosmtpd. The test waits for the
definite event (every expected reply captured), then stops both with SIGTERM; once they have exited
nothing more can be sent, so the final counts are exact.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from email.message import EmailMessage

import pytest
from fixtures.intake import Env
from sqlmodel import Session, col, func, select

from mailbot.store.db import make_engine
from mailbot.store.tables import Case, CaseEvent, MailRecord, OutboxItem

pytestmark = pytest.mark.imap

PER_MAILBOX = 12


def buyer_mail(mailbox: str, n: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Buyer {mailbox} {n} <buyer-{mailbox}-{n}@shop{n}.example>"
    message["To"] = f"ta-{mailbox}@support.example.test"
    message["Subject"] = f"Cancel the service for order {372615498760000 + n}"
    message["Message-ID"] = f"<workers-{mailbox}-{n}@shop{n}.example>"
    message.set_content(
        f"Hello, please cancel the {mailbox} service for order {372615498760000 + n}. Thank you."
    )
    return message.as_bytes()


def start_worker(env: Env) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mailbot", "--config", str(env.config), "run"],
        env=env.env,
        cwd=env.config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_workers_on_one_database_process_each_mail_once_without_errors_or_false_recoveries(
    env: Env, database_url: str
) -> None:
    for mailbox in ("pm", "inspection"):
        for n in range(PER_MAILBOX):
            env.append_raw(mailbox, buyer_mail(mailbox, n))
    workers = [start_worker(env), start_worker(env)]
    logs: list[str] = []
    try:
        env.smtp.wait_for(2 * PER_MAILBOX, timeout=180)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            _out, err = worker.communicate(timeout=60)
            logs.append(err)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()

    assert [worker.returncode for worker in workers] == [0, 0], logs
    for log in logs:
        assert " ERROR " not in log and "Traceback" not in log, log
    recipients = [captured.rcpt_tos[0] for captured in env.smtp.messages]
    assert len(recipients) == 2 * PER_MAILBOX and len(set(recipients)) == 2 * PER_MAILBOX
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            assert session.exec(select(func.count()).select_from(Case)).one() == 2 * PER_MAILBOX
            assert session.exec(select(func.count()).select_from(MailRecord)).one() == 2 * PER_MAILBOX
            statuses = session.exec(select(OutboxItem.status)).all()
            assert statuses == ["sent"] * 2 * PER_MAILBOX
            recovered = session.exec(
                select(func.count()).select_from(CaseEvent).where(col(CaseEvent.kind) == "reply_recovered")
            ).one()
            assert recovered == 0
    finally:
        engine.dispose()

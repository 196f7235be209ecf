"""The worker's JSON log names, on each line about a mail, its mailbox, ledger id and case; buyers masked.

A real mail goes through Dovecot, `mailbot run` (a child process, JSON logs) and aiosmtpd. Its
lines are the ones that name it in any way (its case, its sender's domain, or a context field);
each must carry all three fields with the values the database holds, and no line at INFO or above
may hold the buyer's address.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

import pytest
from fixtures.intake import REPO, Env
from sqlalchemy import text

from mailbot.store.db import make_engine

pytestmark = pytest.mark.imap

MAIL = (REPO / "tests" / "eml" / "progress" / "logged-cancel.eml").read_bytes()
BUYER = "tomasz.wierzbicki@baltic-tools.example"
MASKED = "t***@baltic-tools.example"


def run_worker_until_the_reply(env: Env) -> list[dict[str, Any]]:
    """`mailbot run` until the reply reaches the SMTP server, then SIGTERM; its log, one object per line."""
    before = len(env.smtp.messages)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailbot", "--config", str(env.config), "run"],
        env=env.env, cwd=env.config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        env.smtp.wait_for(before + 1, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, log = proc.communicate(timeout=60)
    assert proc.returncode == 0, log
    return [json.loads(line) for line in log.splitlines() if line.strip()]


def ledger_row(database_url: str) -> tuple[int, str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            (row,) = connection.execute(
                text('SELECT mail.id, "case".ref FROM mail JOIN "case" ON "case".id = mail.case_id')
            ).all()
    finally:
        engine.dispose()
    return int(row[0]), str(row[1])


def test_every_json_line_about_a_mail_names_its_mailbox_ledger_id_and_case_and_masks_the_buyer(
    env: Env, database_url: str
) -> None:
    env.config.write_text(
        env.config.read_text(encoding="utf-8") + '\n[logging]\nformat = "json"\n', encoding="utf-8"
    )
    env.append_raw("pm", MAIL)

    lines = run_worker_until_the_reply(env)

    ledger_id, case_ref = ledger_row(database_url)
    about = [
        line
        for line in lines
        if any(key in line for key in ("ledger_id", "case_ref"))
        or case_ref in line["message"]
        or "baltic-tools" in line["message"]
    ]
    assert {line["logger"] for line in about} >= {"mailbot.ingest", "mailbot.outbox"}, lines
    for line in about:
        assert (line.get("mailbox"), line.get("ledger_id"), line.get("case_ref")) == (
            "pm",
            ledger_id,
            case_ref,
        ), line
    loud = [line for line in lines if line["level"] in ("info", "warning", "error", "critical")]
    assert not [line for line in loud if BUYER in json.dumps(line)]
    assert any(MASKED in line["message"] for line in about if line["logger"] == "mailbot.outbox")

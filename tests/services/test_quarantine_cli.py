"""`mailbot quarantine list | show | reprocess`, run as the operator runs it, on Dovecot and SQL.

Each test quarantines real mail through `poll --once` (a budget nobody can meet, or a size limit),
then works the quarantine from the command line.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fixtures.intake import EML, Env

pytestmark = pytest.mark.imap

BASE_CONFIG: dict[str, str] = {}


def set_limits(env: Env, **limits: float) -> None:
    """Rewrite the config's [limits] section (the rest of the file stays as the fixture wrote it)."""
    base = BASE_CONFIG.setdefault(str(env.config), env.config.read_text(encoding="utf-8"))
    section = "\n[limits]\n" + "".join(f"{key} = {value}\n" for key, value in limits.items())
    env.config.write_text(base + section, encoding="utf-8")


def quarantine(env: Env) -> list[dict[str, Any]]:
    result = env.mailbot("quarantine", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def large_cancellation() -> bytes:
    """The buyer's cancellation with a long pasted order history below: about 6 KB."""
    raw = (EML / "cancellation.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return raw + b"\r\n" + b"Order history: shipped, inspected, invoiced, paid in full.\r\n" * 100


def test_mail_past_its_budget_is_listed_shown_and_routed_by_reprocess_once_the_budget_allows(
    env: Env,
) -> None:
    set_limits(env, message_budget_seconds=0.000001)
    env.append("pm", "cancellation.eml")
    polled = env.poll()
    assert "1 quarantined" in polled.stdout, polled.stdout + polled.stderr

    (row,) = quarantine(env)
    assert row["reason"].startswith("time budget exceeded")
    listed = env.mailbot("quarantine", "list")
    assert f"{row['id']:>6} " in listed.stdout and "time budget exceeded" in listed.stdout
    shown = env.mailbot("quarantine", "show", str(row["id"]))
    assert "Subject: Cancel" in shown.stdout and "time budget exceeded" in shown.stdout

    set_limits(env, message_budget_seconds=10)
    again = env.mailbot("quarantine", "reprocess", str(row["id"]))

    assert again.returncode == 0, again.stdout + again.stderr
    (case,) = env.cases()
    assert f"#{row['id']}: routed (case {case['ref']})" in again.stdout
    assert quarantine(env) == []
    assert "the quarantine is empty" in env.mailbot("quarantine", "list").stdout
    history = env.mailbot("quarantine", "show", str(row["id"])).stdout
    assert "quarantined:" in history and "reprocessed:" in history and "routed:" in history
    assert env.poll().returncode == 0
    (reply,) = env.smtp.wait_for(1)
    assert f"[Case #{case['ref']}]" in reply.message()["Subject"]


def test_reprocess_all_decides_every_quarantined_mail_again(env: Env) -> None:
    set_limits(env, message_budget_seconds=0.000001)
    env.append("pm", "cancellation.eml")
    env.append("inspection", "dispute.eml")
    assert env.poll().returncode == 0
    assert len(quarantine(env)) == 2

    set_limits(env, message_budget_seconds=10)
    again = env.mailbot("quarantine", "reprocess", "--all")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 of 2 decided; 2 replies queued" in again.stdout
    assert sorted(str(c["category"]) for c in env.cases()) == ["cancellation", "report_dispute"]


def test_mail_too_large_is_fetched_from_its_mailbox_and_routed_once_the_limit_is_raised(env: Env) -> None:
    set_limits(env, max_message_bytes=2048)
    raw = large_cancellation()
    uid = env.append_raw("pm", raw)
    assert "1 quarantined" in env.poll().stdout
    (row,) = quarantine(env)
    assert row["headers_only"] and row["size"] == len(raw)
    assert row["reason"] == f"message of {len(raw)} bytes exceeds the limit of 2048 bytes"

    refused = env.mailbot("quarantine", "reprocess", str(row["id"]))
    assert refused.returncode == 1
    assert "still over limits.max_message_bytes (2048); raise the limit" in refused.stdout
    assert env.dovecot.flags(env.users["pm"])[uid] == frozenset()

    set_limits(env, max_message_bytes=1_000_000)
    again = env.mailbot("quarantine", "reprocess", str(row["id"]))

    assert again.returncode == 0, again.stdout + again.stderr
    assert f"#{row['id']}: routed" in again.stdout
    assert "$MailbotProcessed" in env.dovecot.flags(env.users["pm"])[uid]
    stored = env.mailbot("quarantine", "show", str(row["id"]), "--raw")
    assert stored.stdout.encode() == raw.replace(b"\r\n", b"\n")  # text mode reads CRLF as LF


def test_reprocessing_a_mail_that_is_not_in_quarantine_changes_nothing_and_exits_1(env: Env) -> None:
    env.append("pm", "cancellation.eml")
    assert env.poll().returncode == 0

    result = env.mailbot("quarantine", "reprocess", "1", "999")

    assert result.returncode == 1
    assert "#1: skipped: mail #1 is not in quarantine (it was routed" in result.stdout
    assert "#999: skipped: there is no mail #999" in result.stdout
    assert len(env.cases()) == 1


def test_reprocess_must_be_told_which_mail(env: Env) -> None:
    result = env.mailbot("quarantine", "reprocess")

    assert result.returncode == 2
    assert "name the mail: IDs, or --all, or --since DATE" in result.stderr


def test_reprocess_since_a_date_takes_only_mail_fetched_since(env: Env) -> None:
    set_limits(env, message_budget_seconds=0.000001)
    env.append("pm", "cancellation.eml")
    assert env.poll().returncode == 0

    result = env.mailbot("quarantine", "reprocess", "--since", "2999-01-01")

    assert result.returncode == 0, result.stderr
    assert "nothing was quarantined since then" in result.stdout
    assert len(quarantine(env)) == 1

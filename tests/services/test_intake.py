"""Intake end to end on real servers: Dovecot in, SQLite or PostgreSQL, aiosmtpd out.

Each test runs the real `mailbot` command in a child process, as an operator or the scheduler would.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from email.message import EmailMessage

import pytest
from fixtures.intake import Env

pytestmark = pytest.mark.imap


def replies_by_recipient(env: Env) -> dict[str, list[EmailMessage]]:
    found: dict[str, list[EmailMessage]] = {}
    for captured in env.smtp.messages:
        message = captured.message()
        found.setdefault(str(message["To"]), []).append(message)
    return found


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_one_poll_turns_cancellation_and_dispute_into_cases_with_exactly_one_reply_each(env: Env) -> None:
    env.append("pm", "cancellation.eml")
    env.append("inspection", "dispute.eml")
    env.append("pm", "auto-reply.eml")

    result = env.poll()

    assert result.returncode == 0, result.stderr
    cases = {c["category"]: c for c in env.cases()}
    assert cases["cancellation"]["orders"] == ["162534987612345"]
    assert cases["cancellation"]["mailbox"] == "pm"
    assert cases["report_dispute"]["orders"] == ["27105266805393750"]
    assert cases["report_dispute"]["mailbox"] == "inspection"
    assert len(cases) == 2  # the out-of-office reply opened no case

    replies = replies_by_recipient(env)
    assert set(replies) == {"maria.lopez@andes-trading.example", "a.karim@gulf-home.example"}
    for address, case in (
        ("maria.lopez@andes-trading.example", cases["cancellation"]),
        ("a.karim@gulf-home.example", cases["report_dispute"]),
    ):
        (reply,) = replies[address]
        assert reply["Auto-Submitted"] == "auto-replied"
        assert f"[Case #{case['ref']}]" in reply["Subject"]
        assert reply["Message-ID"].endswith("@mailbot.example.test>")
        assert reply["In-Reply-To"] in {
            "<intake-cancel-1@andes-trading.example>",
            "<intake-dispute-1@gulf-home.example>",
        }
        assert reply["In-Reply-To"] in reply["References"]
        assert case["ref"] in body(reply)
        orders = case["orders"]
        assert isinstance(orders, list)
        assert orders[0] in body(reply)


def test_processed_messages_are_flagged_never_deleted(env: Env) -> None:
    env.append("pm", "cancellation.eml")
    assert env.poll().returncode == 0
    flags = env.dovecot.flags(env.users["pm"])
    assert len(flags) == 1
    assert all({"$MailbotProcessed", "\\Seen"} <= f for f in flags.values())


def test_move_mode_moves_processed_mail_to_the_configured_folder(make_env: object) -> None:
    env = make_env(processed_action="move")  # type: ignore[operator]
    env.append("pm", "cancellation.eml")
    assert env.poll().returncode == 0
    assert env.dovecot.uids(env.users["pm"]) == []
    assert len(env.dovecot.uids(env.users["pm"], "Processed")) == 1


def test_second_poll_with_nothing_new_creates_and_sends_nothing(env: Env) -> None:
    env.append("pm", "cancellation.eml")
    assert env.poll().returncode == 0
    env.smtp.wait_for(1)

    again = env.poll()

    assert again.returncode == 0, again.stderr
    assert "0 fetched" in again.stdout
    assert len(env.cases()) == 1
    assert len(env.smtp.messages) == 1


def test_crash_after_ledger_commit_before_mailbox_ack_creates_no_second_case(env: Env) -> None:
    env.append("pm", "cancellation.eml")

    crashed = env.poll(extra_env={"MAILBOT_CRASH_AT": "after-ledger-commit"})
    assert crashed.returncode == -signal.SIGKILL
    assert all("$MailbotProcessed" not in f for f in env.dovecot.flags(env.users["pm"]).values())

    after = env.poll()

    assert after.returncode == 0, after.stderr
    assert len(env.cases()) == 1
    assert all("$MailbotProcessed" in f for f in env.dovecot.flags(env.users["pm"]).values())
    assert len(env.smtp.wait_for(1)) == 1
    assert len(env.smtp.wait_idle()) == 1  # the drain hung up: nothing more can arrive


def test_crash_after_smtp_accepted_before_marked_sent_sends_no_second_reply(env: Env) -> None:
    env.append("pm", "cancellation.eml")

    crashed = env.poll(extra_env={"MAILBOT_CRASH_AT": "after-smtp-accept"})
    assert crashed.returncode == -signal.SIGKILL
    assert len(env.smtp.wait_for(1)) == 1

    after = env.poll()

    assert after.returncode == 0, after.stderr
    assert "1 recovered" in after.stdout
    assert len(env.smtp.wait_idle()) == 1  # the drain hung up: nothing more can arrive
    (case,) = env.cases()
    shown = env.mailbot("cases", "show", str(case["ref"]))
    assert "copy found in Sent); not resent" in shown.stdout


def test_recreated_mailbox_is_fetched_again_but_nothing_is_processed_twice(env: Env) -> None:
    env.append("pm", "cancellation.eml")
    assert env.poll().returncode == 0
    before = env.dovecot.uidvalidity(env.users["pm"])

    env.dovecot.recreate_mailbox(env.users["pm"])
    env.append("pm", "cancellation.eml")
    assert env.dovecot.uidvalidity(env.users["pm"]) != before

    again = env.poll()

    assert again.returncode == 0, again.stderr
    assert "1 fetched" in again.stdout and "1 ignored" in again.stdout
    assert len(env.cases()) == 1
    assert len(env.smtp.wait_idle()) == 1  # the drain hung up: nothing more can arrive


def test_wrong_credentials_on_one_mailbox_do_not_stop_the_other(env: Env) -> None:
    env.append("pm", "cancellation.eml")
    env.append("inspection", "dispute.eml")

    result = env.poll(extra_env={"MAILBOT_SECRET_INSPECTION_IMAP": "wrong-password"})

    assert result.returncode == 1
    failing = [line for line in result.stderr.splitlines() if ": FAILED:" in line]
    assert len(failing) == 1 and failing[0].startswith("inspection: FAILED:")
    assert "wrong-password" not in result.stderr + result.stdout
    assert "pm: 1 fetched" in result.stdout
    assert [c["mailbox"] for c in env.cases()] == ["pm"]
    assert "mailbox inspection failed" in result.stderr  # the log names the mailbox too


def test_unreadable_message_is_quarantined_and_the_run_goes_on(env: Env) -> None:
    env.append("pm", "garbage.eml")
    env.append("pm", "cancellation.eml")

    result = env.poll()

    assert result.returncode == 0, result.stderr
    assert "1 routed" in result.stdout and "1 quarantined" in result.stdout
    assert all("$MailbotProcessed" in f for f in env.dovecot.flags(env.users["pm"]).values())


def test_same_message_delivered_to_both_mailboxes_opens_one_case_with_one_reply(env: Env) -> None:
    env.append("pm", "cancellation.eml")
    env.append("inspection", "cancellation.eml")

    assert env.poll().returncode == 0

    assert len(env.cases()) == 1
    assert len(env.smtp.wait_idle()) == 1  # the drain hung up: nothing more can arrive


def test_buyer_reply_to_our_reply_joins_the_case_and_is_answered_once(env: Env) -> None:
    env.append("pm", "cancellation.eml")
    assert env.poll().returncode == 0
    (reply,) = env.smtp.wait_for(1)
    ours = reply.message()
    follow_up = (
        "From: Maria Lopez <maria.lopez@andes-trading.example>\r\n"
        "To: ta-pm@support.example.test\r\n"
        f"Subject: Re: {ours['Subject']}\r\n"
        "Message-ID: <intake-followup-1@andes-trading.example>\r\n"
        f"In-Reply-To: {ours['Message-ID']}\r\n"
        f"References: <intake-cancel-1@andes-trading.example> {ours['Message-ID']}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Thank you. Any news on the refund?\r\n"
    ).encode()
    env.append_raw("pm", follow_up)

    assert env.poll().returncode == 0

    assert len(env.cases()) == 1
    second = env.smtp.wait_for(2)[1].message()
    assert second["Subject"] == ours["Subject"]


def test_worker_stops_cleanly_on_sigterm(env: Env) -> None:
    env.append("pm", "cancellation.eml")
    process = subprocess.Popen(
        [sys.executable, "-m", "mailbot", "--config", str(env.config), "run"],
        env=env.env,
        cwd=env.config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        env.smtp.wait_for(1, timeout=30)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "worker stopped" in err
    assert len(env.cases()) == 1

"""The outbox drain against a real SMTP server, and the staff commands over a real database."""

from __future__ import annotations

import json
import signal

import pytest
from fixtures.intake import Env

pytestmark = pytest.mark.imap


def test_temporary_smtp_refusal_is_retried_at_the_next_drain_and_sent_once(env: Env) -> None:
    env.append("pm", "cancellation.eml")
    env.smtp.script("DATA", "451 4.3.0 try again later")

    first = env.poll()

    assert first.returncode == 0, first.stderr
    assert "1 to retry" in first.stdout
    assert env.smtp.messages == []
    second = env.poll()  # backoff_seconds = 0 in the test config: due at once
    assert "1 sent" in second.stdout
    assert len(env.smtp.wait_for(1)) == 1


def test_permanent_smtp_refusal_fails_the_reply_and_says_so_on_the_case(env: Env) -> None:
    env.append("pm", "cancellation.eml")
    env.smtp.script("RCPT", "550 5.1.1 no such user")

    result = env.poll()

    assert "1 failed" in result.stdout
    (case,) = env.cases()
    shown = json.loads(env.mailbot("cases", "show", str(case["ref"]), "--json").stdout)
    assert shown["replies"][0]["status"] == "failed"
    assert "550" in shown["replies"][0]["last_error"]
    assert any(e["kind"] == "reply_failed" for e in shown["events"])
    status = env.mailbot("status")
    assert status.returncode == 1 and "1 failed" in status.stdout


def test_cases_list_filters_by_category_and_status(env: Env) -> None:
    env.append("pm", "cancellation.eml")
    env.append("inspection", "dispute.eml")
    assert env.poll().returncode == 0

    only = json.loads(env.mailbot("cases", "list", "--category", "report_dispute", "--json").stdout)
    assert [c["category"] for c in only] == ["report_dispute"]
    assert json.loads(env.mailbot("cases", "list", "--status", "closed", "--json").stdout) == []
    table = env.mailbot("cases", "list").stdout
    assert "cancellation" in table and "report_dispute" in table and "REF" in table


def test_case_show_gives_orders_messages_decision_trace_and_reply_text(env: Env) -> None:
    env.append("inspection", "dispute.eml")
    assert env.poll().returncode == 0
    (case,) = env.cases()

    shown = env.mailbot("cases", "show", f"#{case['ref']}")

    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert f"Case #{case['ref']}" in text and "27105266805393750" in text
    assert "<- a.karim@gulf-home.example" in text  # the buyer's message
    assert "hit " in text  # the routing trace
    assert "| " in text and case["ref"] in text.split("reply #", 1)[1]  # the reply text
    missing = env.mailbot("cases", "show", "ZZZZZZ")
    assert missing.returncode == 1 and "no case ZZZZZZ" in missing.stderr


def test_status_is_healthy_after_a_good_poll_and_names_a_failing_mailbox(env: Env) -> None:
    assert env.poll().returncode == 0
    assert env.mailbot("status").returncode == 0

    env.poll(extra_env={"MAILBOT_SECRET_PM_IMAP": "wrong"})
    status = env.mailbot("status")

    assert status.returncode == 1
    assert "mailbox pm" in status.stdout and "FAILING: login failed" in status.stdout


def test_db_upgrade_creates_the_schema(env: Env) -> None:
    result = env.mailbot("db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "database is up to date" in result.stdout


def test_a_reply_claimed_by_a_killed_poll_but_never_handed_over_is_sent_at_the_next_poll(env: Env) -> None:
    env.append("pm", "cancellation.eml")

    crashed = env.poll(extra_env={"MAILBOT_CRASH_AT": "after-claim"})
    assert crashed.returncode == -signal.SIGKILL
    assert env.smtp.messages == []

    after = env.poll()

    assert after.returncode == 0, after.stderr
    assert "1 sent" in after.stdout and "uncertain" not in after.stdout
    assert len(env.smtp.messages) == 1  # the poll has returned: nothing else is on its way
    assert env.mailbot("status").returncode == 0


def test_a_poll_killed_once_the_hand_over_is_marked_leaves_the_reply_uncertain_and_unsent(env: Env) -> None:
    env.append("pm", "cancellation.eml")

    crashed = env.poll(extra_env={"MAILBOT_CRASH_AT": "after-handover-mark"})
    assert crashed.returncode == -signal.SIGKILL

    after = env.poll()

    assert "1 uncertain" in after.stdout
    assert env.smtp.messages == []  # never resent without evidence
    status = env.mailbot("status")
    assert status.returncode == 1 and "1 uncertain" in status.stdout


def test_a_mailbox_whose_sent_folder_cannot_be_opened_does_not_hold_back_the_other_mailboxs_replies(
    env: Env,
) -> None:
    env.append("inspection", "dispute.eml")
    crashed = env.poll(extra_env={"MAILBOT_CRASH_AT": "after-smtp-accept"})
    assert crashed.returncode == -signal.SIGKILL
    assert len(env.smtp.wait_for(1)) == 1
    env.append("inspection", "cancellation.eml")

    after = env.poll(extra_env={"MAILBOT_SECRET_PM_IMAP": "wrong-password"})

    assert after.returncode == 1 and "pm: FAILED" in after.stderr
    assert "1 recovered" in after.stdout and "1 sent" in after.stdout, after.stdout
    assert "outbox: FAILED" not in after.stderr
    assert len(env.smtp.messages) == 2

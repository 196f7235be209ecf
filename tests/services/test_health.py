"""Health tells the truth: what should have happened by now, on SQLite and PostgreSQL.

"No poll failed" is not health: a dead worker fails no poll, and an SMTP outage fails none either.
Each test sets up the one fact that makes mailbot unhealthy (or the fact just inside the limit)
and reads the verdict the way `mailbot status` and a metrics endpoint will.
"""

from __future__ import annotations

import json
import shutil
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from sqlalchemy.engine import Engine

from mailbot.cli import main
from mailbot.services.health import HealthPolicy, check_health
from mailbot.services.rules_admin import RulesStatus, RulesStatusFile
from mailbot.store import guards
from mailbot.store.db import make_engine, session_scope
from mailbot.store.tables import CaseEvent, MailboxCursor, MailRecord, OutboxItem

REPO = Path(__file__).resolve().parents[2]
EML = REPO / "tests" / "eml"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
POLICY = HealthPolicy(
    poll_intervals={"pm": 60, "inspection": 120}, missed_polls=3, max_pending_reply_age_seconds=900
)


def polled(engine: Engine, mailbox: str, at: datetime, error: str = "") -> None:
    with session_scope(engine) as session:
        session.add(
            MailboxCursor(
                mailbox=mailbox,
                uidvalidity=7,
                last_uid=42,
                last_poll_at=at,
                last_ok_at=None if error else at,
                last_error=error,
            )
        )


def both_polled_just_now(engine: Engine) -> None:
    polled(engine, "pm", NOW - timedelta(seconds=30))
    polled(engine, "inspection", NOW - timedelta(seconds=30))


def reply(engine: Engine, status: str, created_at: datetime, n: int = 1) -> None:
    with session_scope(engine) as session:
        session.add(
            OutboxItem(
                mailbox="pm",
                message_id=f"<reply-{n}-{status}@mailbot.example.test>",
                mail_from="ta-pm@support.example.test",
                rcpt_to="buyer@example.test",
                template="ack",
                language="en",
                raw=b"x",
                status=status,
                created_at=created_at,
                next_attempt_at=created_at,
            )
        )


def quarantined(engine: Engine, uid: int, reason: str) -> None:
    with session_scope(engine) as session:
        session.add(
            MailRecord(
                mailbox="pm",
                uidvalidity=7,
                uid=uid,
                sha256=f"{uid:064d}",
                raw=b"x",
                size=1,
                outcome="quarantined",
                reason=reason,
            )
        )


def no_templates(_root: Path) -> list[str]:
    return []


def health(engine: Engine, policy: HealthPolicy = POLICY, now: datetime = NOW):  # type: ignore[no-untyped-def]
    return check_health(engine, policy, now, check_templates=no_templates)


def test_recent_polls_and_an_empty_outbox_are_healthy(engine: Engine) -> None:
    both_polled_just_now(engine)
    report = health(engine)
    assert report.ok and report.problems == ()
    assert [box.mailbox for box in report.mailboxes] == ["pm", "inspection"]


def test_a_mailbox_never_polled_is_unhealthy(engine: Engine) -> None:
    polled(engine, "pm", NOW)
    report = health(engine)
    assert report.problems == ("mailbox inspection: never polled (is the worker running?)",)


def test_no_completed_poll_within_a_few_intervals_means_the_worker_is_stopped_or_stalled(
    engine: Engine,
) -> None:
    polled(engine, "pm", NOW - timedelta(seconds=181))  # three 60 s intervals and a second
    polled(engine, "inspection", NOW - timedelta(seconds=300))  # within three of its 120 s intervals
    report = health(engine)
    assert report.problems == (
        "mailbox pm: no completed poll for 3 min (polled every 60 s): the worker is stopped or stalled",
    )


def test_each_mailbox_is_judged_by_its_own_interval(engine: Engine) -> None:
    polled(engine, "pm", NOW - timedelta(seconds=180))
    polled(engine, "inspection", NOW - timedelta(seconds=361))
    report = health(engine)
    assert [box.ok for box in report.mailboxes] == [True, False]


def test_a_mailbox_whose_last_poll_failed_is_unhealthy_with_the_error(engine: Engine) -> None:
    polled(engine, "pm", NOW - timedelta(seconds=10), error="login failed for ta-pm [AUTHENTICATIONFAILED]")
    polled(engine, "inspection", NOW)
    report = health(engine)
    assert report.problems == ("mailbox pm: login failed for ta-pm [AUTHENTICATIONFAILED]",)


def test_a_disabled_mailbox_is_not_expected_to_be_polled(engine: Engine) -> None:
    polled(engine, "pm", NOW)
    report = health(engine, HealthPolicy(poll_intervals={"pm": 60}))
    assert report.ok


def test_a_reply_pending_longer_than_the_limit_means_smtp_is_not_taking_mail(engine: Engine) -> None:
    both_polled_just_now(engine)
    reply(engine, "pending", NOW - timedelta(seconds=901), n=1)
    reply(engine, "pending", NOW - timedelta(seconds=899), n=2)
    report = health(engine)
    assert report.outbox.overdue == 1
    assert report.outbox.oldest_overdue_at == NOW - timedelta(seconds=901)
    (problem,) = report.problems
    assert problem.startswith(
        "outbox: 1 reply waiting longer than 15 min (the oldest since 2026-12-07T11:44:59"
    )
    assert problem.endswith("is the SMTP server reachable?")


def test_a_reply_stuck_in_sending_counts_as_waiting(engine: Engine) -> None:
    both_polled_just_now(engine)
    reply(engine, "sending", NOW - timedelta(hours=2))
    assert health(engine).outbox.overdue == 1


def test_a_young_pending_reply_is_healthy(engine: Engine) -> None:
    both_polled_just_now(engine)
    reply(engine, "pending", NOW - timedelta(seconds=60))
    reply(engine, "sent", NOW - timedelta(days=3))
    assert health(engine).ok


@pytest.mark.parametrize("status", ["uncertain", "failed"])
def test_an_uncertain_or_failed_reply_is_unhealthy(engine: Engine, status: str) -> None:
    both_polled_just_now(engine)
    reply(engine, status, NOW - timedelta(seconds=5))
    (problem,) = health(engine).problems
    assert problem.startswith(f"outbox: 1 reply {status}")
    assert "mailbot outbox retry ID" in problem


def test_mail_quarantined_for_running_past_its_time_budget_is_unhealthy(engine: Engine) -> None:
    both_polled_just_now(engine)
    quarantined(engine, 1, "time budget exceeded: reading took more than 10 s")
    quarantined(engine, 2, "time budget exceeded_not_really".replace("time budget", "time_budget"))
    quarantined(engine, 3, "message of 90000000 bytes exceeds the limit of 26214400 bytes")
    report = health(engine)
    assert report.quarantined_over_budget == 1
    assert report.mail == {"quarantined": 3}
    assert report.problems == (
        "mail: 1 message quarantined for running past the time budget (see `mailbot quarantine list`)",
    )


def test_a_broken_template_is_unhealthy_naming_file_and_line(engine: Engine, tmp_path: Path) -> None:
    both_polled_just_now(engine)
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    broken = tmp_path / "templates" / "en" / "general_question.txt.j2"
    broken.write_text("Dear {{ buyer_name }},\n\n{% if order %}Your order {{ order }}\n", encoding="utf-8")
    policy = HealthPolicy(poll_intervals=POLICY.poll_intervals, templates_dir=tmp_path / "templates")
    report = check_health(engine, policy, NOW)
    assert not report.ok
    assert any(str(broken) in line for line in report.template_problems)
    (problem,) = report.problems
    assert problem.startswith(f"templates: {broken}:")


def test_the_shipped_templates_are_healthy(engine: Engine) -> None:
    both_polled_just_now(engine)
    policy = HealthPolicy(poll_intervals=POLICY.poll_intervals, templates_dir=REPO / "templates")
    assert check_health(engine, policy, NOW).template_problems == ()


def test_a_rule_change_the_worker_refused_is_unhealthy(engine: Engine, tmp_path: Path) -> None:
    both_polled_just_now(engine)
    status = RulesStatus(
        version="v42",
        rules=18,
        loaded_at=NOW - timedelta(hours=1),
        error="rules/routing.toml:7: unknown predicate 'subject_maches'\nrules/routing.toml:9: another",
        error_since=NOW - timedelta(minutes=5),
    )
    RulesStatusFile.in_data_dir(tmp_path).write(status)
    report = health(engine, HealthPolicy(poll_intervals=POLICY.poll_intervals, data_dir=tmp_path))
    assert report.problems == (
        "rules: the worker refused the rule files since 2026-12-07T11:55:00+00:00 "
        "and still uses version v42: rules/routing.toml:7: unknown predicate 'subject_maches' "
        "(more in `mailbot rules status`)",
    )


def test_rules_in_charge_without_a_refused_change_are_healthy(engine: Engine, tmp_path: Path) -> None:
    both_polled_just_now(engine)
    RulesStatusFile.in_data_dir(tmp_path).write(RulesStatus(version="v42", rules=18, loaded_at=NOW))
    assert health(engine, HealthPolicy(poll_intervals=POLICY.poll_intervals, data_dir=tmp_path)).ok


def test_the_json_shape_carries_the_same_facts(engine: Engine) -> None:
    polled(engine, "pm", NOW - timedelta(hours=1))
    reply(engine, "failed", NOW)
    data = json.loads(json.dumps(health(engine).as_dict()))
    assert data["ok"] is False
    assert data["checked_at"] == NOW.isoformat()
    assert data["mailboxes"][0]["last_poll_at"] == (NOW - timedelta(hours=1)).isoformat()
    assert data["mailboxes"][1] == {
        "mailbox": "inspection",
        "ok": False,
        "poll_interval_seconds": 120,
        "last_poll_at": None,
        "last_ok_at": None,
        "last_error": "",
        "uidvalidity": None,
        "last_uid": None,
        "problems": ["never polled (is the worker running?)"],
    }
    assert data["outbox"]["counts"] == {"failed": 1}
    assert len(data["problems"]) == 3


def ceiling_reached(engine: Engine, at: datetime) -> None:
    with session_scope(engine) as session:
        session.add(
            CaseEvent(
                kind=guards.CEILING_EVENT,
                summary="automatic replies stopped: 5000 automatic replies in the last hour",
                created_at=at,
            )
        )


def test_the_reply_ceiling_reached_within_the_hour_is_unhealthy(engine: Engine) -> None:
    both_polled_just_now(engine)
    ceiling_reached(engine, NOW - timedelta(minutes=50))
    verdict = health(engine)
    assert not verdict.ok
    assert verdict.reply_ceiling_alert_at == NOW - timedelta(minutes=50)
    (problem,) = verdict.problems
    assert problem.startswith("outbox: the global ceiling of automatic replies per hour was reached at ")
    assert verdict.as_dict()["reply_ceiling_alert_at"] == (NOW - timedelta(minutes=50)).isoformat()


def test_the_reply_ceiling_an_hour_ago_no_longer_makes_mailbot_unhealthy(engine: Engine) -> None:
    both_polled_just_now(engine)
    ceiling_reached(engine, NOW - timedelta(minutes=61))
    verdict = health(engine)
    assert verdict.ok and verdict.reply_ceiling_alert_at is None
    assert verdict.as_dict()["reply_ceiling_alert_at"] is None


# -- end to end: an SMTP outage makes `mailbot status` unhealthy -----------------------------------


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_status_says_unhealthy_when_smtp_has_been_down_longer_than_the_limit(
    tmp_path: Path, database_url: str
) -> None:
    for mailbox in ("pm", "inspection"):
        for sub in ("cur", "new", "tmp"):
            (tmp_path / "mail" / mailbox / sub).mkdir(parents=True)
    shutil.copy(
        REPO / "rules" / "tests" / "mail" / "cancellation-with-order.eml", tmp_path / "mail" / "pm" / "new"
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f"""data_dir = "var"
rules_dir = "{REPO / "rules"}"
templates_dir = "{REPO / "templates"}"
log_level = "ERROR"

[database]
url = "{database_url}"

[health]
max_pending_reply_age_seconds = 600

[smtp]
host = "127.0.0.1"
port = {closed_port()}
security = "plain"

[mailboxes.pm]
address = "ta-pm@support.example.test"
service = "Production Monitoring"
source = "maildir"
maildir = {{ path = "mail/pm" }}

[mailboxes.inspection]
address = "ta-inspection@support.example.test"
service = "Inspection"
source = "maildir"
maildir = {{ path = "mail/inspection" }}
""",
        encoding="utf-8",
    )
    runner = CliRunner()
    poll = runner.invoke(main, ["--config", str(config), "poll", "--once"])
    assert poll.exit_code == 1 and "outbox: FAILED: SMTP connecting" in poll.stderr, poll.output
    assert runner.invoke(main, ["--config", str(config), "status"]).exit_code == 0  # a fresh reply may wait

    engine = make_engine(database_url)
    with session_scope(engine) as session:  # the outage has lasted eleven minutes
        session.execute(update(OutboxItem).values(created_at=datetime.now(UTC) - timedelta(minutes=11)))
    engine.dispose()
    status = runner.invoke(main, ["--config", str(config), "status"])

    assert status.exit_code == 1
    assert "UNHEALTHY:" in status.stdout
    assert "outbox: 1 reply waiting longer than 10 min" in status.stdout
    as_json = json.loads(runner.invoke(main, ["--config", str(config), "status", "--json"]).stdout)
    assert as_json["outbox"]["overdue"] == 1 and as_json["ok"] is False

"""Replay over stored mail: the ledger's mail decided again under a draft, and exactly what would change."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from mailbot.core.decide import decide
from mailbot.services import rules_replay
from mailbot.services.rules_admin import ReplayReport, replay_stored, stored_deciding_rule

from .installation import (
    CANCELLATION,
    CANCELLATION_2,
    ERP_NOTICE,
    FOLLOW_UP,
    NEWSLETTER,
    NO_ORDER_INSPECTION,
    NO_ORDER_PM,
    OOO_ON_CASE,
    SAME_ORDER,
    Installation,
    install,
)

CANCELLATION_RULE = (
    'then.category = "cancellation"\nthen.priority = "high"\nthen.reply = "cancellation_received"'
)
ON_A_CASE = """[[rule]]
name = "on-a-case"
when.joins_case = true
then.tags = ["on-a-case"]
continue = true

[[rule]]
name = "our-own-mail"
"""


def own_category_for_cancellations(text: str) -> str:
    """The change supervisors try: cancellations get a category of their own and a plain acknowledgement."""
    return text.replace(
        CANCELLATION_RULE,
        'then.category = "service_cancellation"\nthen.priority = "high"\nthen.reply = "acknowledgement"',
    )


def tag_mail_on_a_case(text: str) -> str:
    return text.replace('[[rule]]\nname = "our-own-mail"\n', ON_A_CASE)


@pytest.fixture
def stored(make_installation: Callable[..., Installation]) -> Installation:
    installation = make_installation()
    installation.first_round()
    installation.second_round()
    return installation


def replay(stored: Installation, draft: Path, **kwargs: object) -> ReplayReport:
    since = kwargs.pop("since", datetime.now(UTC) - timedelta(days=1))
    return replay_stored(stored.engine, stored.context(), draft_dir=draft, since=since, **kwargs)  # type: ignore[arg-type]


def changes(stored: Installation, report: ReplayReport) -> dict[str, dict[str, tuple[object, object]]]:
    """Message-ID -> {changed field: (old, new)} for every mail the report says would change."""
    by_id = {mail_id: message_id for message_id, mail_id in stored.mail_ids().items()}
    return {
        by_id[row.mail_id or 0]: {f: (getattr(row.old, f), getattr(row.new, f)) for f in row.changed_fields}
        for row in report.changed
    }


def test_replay_reports_exactly_the_stored_mails_a_rule_change_moves(stored: Installation) -> None:
    report = replay(stored, stored.draft(own_category_for_cancellations))
    moved = ("cancellation", "service_cancellation")
    assert changes(stored, report) == {
        CANCELLATION: {"category": moved, "template": ("cancellation_received", "acknowledgement")},
        CANCELLATION_2: {"category": moved, "template": ("cancellation_received", "acknowledgement")},
        # Machine mail: filed differently, still never answered.
        ERP_NOTICE: {"category": moved},
        # The reply asking for the order number comes from an earlier rule, so it stays.
        NO_ORDER_PM: {"category": moved},
        NO_ORDER_INSPECTION: {"category": moved},
    }
    assert report.counts() == {
        "messages": 14,
        "changed": 5,
        "unreadable": 0,
        "skipped": 1,  # the second copy of the newsletter: a duplicate the rules never saw
        "category changed": 5,
        "template changed": 2,
    }
    assert report.transitions() == [("cancellation", "service_cancellation", 5)]
    assert {(r.old.decided_by, r.new.decided_by) for r in report.changed if r.old and r.new} == {
        ("cancellation", "cancellation")
    }


def test_each_changed_mail_names_its_ledger_row_sender_subject_and_mailbox(stored: Installation) -> None:
    report = replay(stored, stored.draft(own_category_for_cancellations))
    row = next(r for r in report.changed if r.mail_id == stored.mail_ids()[NO_ORDER_INSPECTION])
    assert (row.source, row.mailbox, row.sender, row.subject) == (
        f"#{row.mail_id}",
        "inspection",
        "tom@becker-handel.example",
        "Please cancel the inspection",
    )
    assert row.received is not None and row.received > datetime.now(UTC) - timedelta(hours=1)
    data = row.as_json()
    assert data["old"] == {
        "outcome": "routed",
        "category": "cancellation",
        "template": "order_number_missing",
        "reply": True,
        "priority": "high",
        "queue": "inspection",
        "assignee": None,
        "tags": ["order-number-missing"],
        "rule": "cancellation",
    }
    assert data["new"] == {**data["old"], "category": "service_cancellation"}


def test_replaying_under_the_rules_in_charge_reproduces_every_stored_decision(stored: Installation) -> None:
    report = replay(stored, stored.rules_dir)
    assert report.changed == () and len(report.rows) == 14
    decisions = {record.id: record.decision for record in stored.records()}
    for row in report.rows:
        assert row.old is not None
        stored_decision = decisions[row.mail_id]
        assert {
            "outcome": row.old.outcome,
            "category": row.old.category,
            "template": row.old.template,
            "priority": row.old.priority,
            "queue": row.old.queue,
            "tags": list(row.old.tags),
            "rule": row.old.decided_by,
        } == {
            **{
                k: stored_decision[k]
                for k in ("outcome", "category", "template", "priority", "queue", "tags")
            },
            "rule": stored_deciding_rule(stored_decision),
        }, row.source


def test_a_draft_sees_each_mail_in_the_thread_it_joined_when_it_arrived(stored: Installation) -> None:
    """Not the thread the store would find today: a mail that opened a case does not join that case."""
    report = replay(stored, stored.draft(tag_mail_on_a_case))
    assert changes(stored, report) == {
        FOLLOW_UP: {"tags": ((), ("on-a-case",))},  # named its case in the subject
        SAME_ORDER: {"tags": ((), ("on-a-case",))},  # same buyer, same order, open case
        OOO_ON_CASE: {"tags": (("automatic-reply",), ("on-a-case", "automatic-reply"))},
    }


def test_since_leaves_out_older_mail(stored: Installation) -> None:
    stored.set_fetched_at([CANCELLATION, ERP_NOTICE], datetime.now(UTC) - timedelta(days=3))
    report = replay(stored, stored.draft(own_category_for_cancellations))
    assert set(changes(stored, report)) == {CANCELLATION_2, NO_ORDER_PM, NO_ORDER_INSPECTION}
    assert report.counts()["messages"] == 12
    week = replay(stored, stored.root / "rules-draft", since=datetime.now(UTC) - timedelta(days=7))
    assert week.counts()["changed"] == 5


def test_a_mailbox_limits_the_replay_to_its_mail(stored: Installation) -> None:
    report = replay(stored, stored.draft(own_category_for_cancellations), mailbox="inspection")
    assert set(changes(stored, report)) == {NO_ORDER_INSPECTION}
    assert {row.mailbox for row in report.rows} == {"inspection"}
    assert report.counts()["messages"] == 5


def test_a_draft_with_its_own_order_number_format_reads_the_mail_again(stored: Installation) -> None:
    draft = stored.root / "rules-orders"
    shutil.copytree(stored.rules_dir, draft)
    orders = draft / "orders.toml"
    orders.write_text(orders.read_text(encoding="utf-8").replace("min_digits = 12", "min_digits = 16"))
    report = replay(stored, draft)
    assert report.draft_reading
    # 1625 3498 7612 345 has 15 digits: no longer an order number, so the reply asks for one.
    missing = ("order_number_missing",)
    assert changes(stored, report) == {
        CANCELLATION_2: {
            "template": ("cancellation_received", *missing),
            "tags": ((), ("order-number-missing",)),
        },
        SAME_ORDER: {"template": ("status_inquiry", *missing), "tags": ((), ("order-number-missing",))},
    }


def test_the_replay_command_over_stored_mail_prints_counts_and_each_change(stored: Installation) -> None:
    draft = stored.draft(own_category_for_cancellations)
    result = stored.mailbot("rules", "replay", "--rules", str(draft), "--since", "1d")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Replayed 14 stored mails fetched since ")
    assert lines[1:7] == [
        "Skipped 1 stored mails the rules never decided (duplicates, mail that could not be processed).",
        "5 of 14 would be decided differently.",
        "  category changed: 5",
        "  template changed: 2",
        "Category moves:",
        "  cancellation -> service_cancellation: 5",
    ]
    first = stored.mail_ids()[CANCELLATION]
    header = next(i for i, line in enumerate(lines) if line.startswith(f"#{first}  "))
    assert lines[header].endswith(
        "  pm  'Cancel production monitoring for order 1625 3498 7612 3450'  "
        "from maria.lopez@andes-imports.example"
    )
    assert lines[header + 1 : header + 4] == [
        "    category  cancellation -> service_cancellation",
        "    template  cancellation_received -> acknowledgement",
        "    rule      cancellation (unchanged)",
    ]


def test_the_replay_command_prints_json_for_programs(stored: Installation) -> None:
    draft = stored.draft(own_category_for_cancellations)
    result = stored.mailbot("rules", "replay", "--rules", str(draft), "--since", "1d", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"]["changed"] == 5 and data["counts"]["skipped"] == 1
    ids = stored.mail_ids()
    assert {row["mail_id"] for row in data["changed"]} == {
        ids[m] for m in (CANCELLATION, CANCELLATION_2, ERP_NOTICE, NO_ORDER_PM, NO_ORDER_INSPECTION)
    }
    row = next(r for r in data["changed"] if r["mail_id"] == ids[ERP_NOTICE])
    assert (row["from"], row["mailbox"], row["changed"]) == (
        "noreply@erp.andes-imports.example",
        "pm",
        ["category"],
    )
    assert (row["old"]["reply"], row["new"]["reply"], row["new"]["rule"]) == (False, False, "cancellation")
    assert data["since"] is not None


def test_the_replay_command_needs_either_a_corpus_or_a_date(stored: Installation) -> None:
    neither = stored.mailbot("rules", "replay", "--rules", str(stored.rules_dir))
    assert neither.exit_code == 2 and "either --corpus DIR or --since DATE" in neither.output
    both = stored.mailbot(
        "rules", "replay", "--rules", str(stored.rules_dir), "--since", "1d", "--corpus", "."
    )
    assert both.exit_code == 2


def test_a_date_the_command_cannot_read_is_a_usage_error(stored: Installation) -> None:
    result = stored.mailbot("rules", "replay", "--rules", str(stored.rules_dir), "--since", "last tuesday")
    assert result.exit_code == 2
    assert "'last tuesday' is not a date like 2026-11-20" in result.output


def test_a_date_includes_mail_fetched_from_its_midnight_utc(stored: Installation) -> None:
    today = datetime.now(UTC).date().isoformat()
    result = stored.mailbot("rules", "replay", "--rules", str(stored.rules_dir), "--since", today, "--json")
    assert json.loads(result.output)["counts"]["messages"] == 14
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    result = stored.mailbot(
        "rules", "replay", "--rules", str(stored.rules_dir), "--since", tomorrow, "--json"
    )
    assert json.loads(result.output)["counts"]["messages"] == 0


def test_stored_mail_of_an_unknown_mailbox_is_a_usage_error(stored: Installation) -> None:
    result = stored.mailbot(
        "rules", "replay", "--rules", str(stored.rules_dir), "--since", "1d", "--mailbox", "sales"
    )
    assert result.exit_code == 2 and "unknown mailbox 'sales'" in result.output


def test_newsletters_stay_spam_under_both_rule_sets(stored: Installation) -> None:
    """A control: the mail the change does not touch is replayed, and reported as unchanged."""
    report = replay(stored, stored.draft(own_category_for_cancellations))
    row = next(r for r in report.rows if r.mail_id == stored.mail_ids()[NEWSLETTER])
    assert row.old is not None and row.new is not None
    assert (row.old.outcome, row.old.category, row.new.category, row.changed_fields) == (
        "ignored",
        "spam",
        "spam",
        (),
    )


def test_mail_decided_under_earlier_rules_says_what_was_decided_when_it_arrived(stored: Installation) -> None:
    """The replay compares the rules in charge with the draft; the ledger adds what really happened."""
    before = stored.records()[0].ruleset_version
    routing = stored.rules_dir / "routing.toml"
    shipped = routing.read_text(encoding="utf-8")
    routing.write_text(own_category_for_cancellations(shipped), encoding="utf-8")  # went live after the mail
    draft = stored.draft(lambda text: text.replace('"service_cancellation"', '"cancellation"'), name="back")
    report = replay(stored, draft)
    row = next(r for r in report.changed if r.mail_id == stored.mail_ids()[CANCELLATION])
    assert (row.old and row.old.category, row.new and row.new.category) == (
        "service_cancellation",
        "cancellation",
    )
    assert row.stored is not None and row.stored_version == before
    assert (row.stored.category, row.stored.template, row.stored.decided_by) == (
        "cancellation",
        "cancellation_received",
        "cancellation",
    )
    assert row.as_json()["stored"]["version"] == before
    result = stored.mailbot("rules", "replay", "--rules", str(draft), "--since", "1d")
    assert (
        "    arrived   routed, category cancellation, reply cancellation_received, rule cancellation "
        f"(version {before[:12]})"
    ) in result.output.splitlines()


def test_mail_decided_as_the_rules_in_charge_decide_it_shows_no_arrival_line(stored: Installation) -> None:
    draft = stored.draft(own_category_for_cancellations)
    result = stored.mailbot("rules", "replay", "--rules", str(draft), "--since", "1d")
    assert "    arrived " not in result.output


def test_a_replay_does_not_keep_the_worker_from_recording_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a transaction holds the database lock: mail is loaded in short reads and decided after."""
    url = f"sqlite:///{tmp_path / 'mailbot.db'}"
    installation = install(tmp_path / "mailbot", url)
    installation.first_round()
    worker = create_engine(url, connect_args={"timeout": 0.5})
    recorded: list[int] = []

    def decide_while_the_worker_records(*args: Any, **kwargs: Any) -> Any:
        with worker.begin() as connection:  # fails with "database is locked" if the replay holds it
            recorded.append(connection.execute(text("UPDATE mailbox_cursor SET last_error = ''")).rowcount)
        return decide(*args, **kwargs)

    monkeypatch.setattr(rules_replay, "decide", decide_while_the_worker_records)
    report = replay(installation, installation.draft(own_category_for_cancellations))
    assert report.counts()["changed"] == 5 and len(recorded) == 2 * 11
    worker.dispose()
    installation.engine.dispose()

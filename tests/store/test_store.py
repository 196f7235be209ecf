"""The store on SQLite and PostgreSQL: migrations, the ledger key, lookups the threading relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from mailbot.store import repo
from mailbot.store.db import current_revision, session_scope, upgrade
from mailbot.store.tables import Case, MailRecord, OutboxItem

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def mail(uid: int, sha: str = "a" * 64, **kw: object) -> MailRecord:
    values: dict[str, object] = dict(
        mailbox="pm", uidvalidity=4_000_000_000, uid=uid, sha256=sha, raw=b"x", size=1, outcome="routed"
    )
    values.update(kw)
    return MailRecord(**values)  # type: ignore[arg-type]


def test_upgrade_creates_every_table_and_is_idempotent(engine, database_url: str) -> None:  # type: ignore[no-untyped-def]
    upgrade(database_url)
    names = set(inspect(engine).get_table_names())
    assert {
        "mail",
        "case",
        "case_order",
        "case_message",
        "case_event",
        "outbox",
        "mailbox_cursor",
        "ruleset_version",
        "suppression",
        "inbound_claim",
        "mailbox_lease",
        "worker",
        "alembic_version",
    } <= names
    assert current_revision(engine) == "0005"


def test_ledger_key_is_unique_per_mailbox_uidvalidity_uid(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        session.add(mail(1))
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(mail(1, sha="b" * 64))


def test_uid_values_beyond_32_bits_signed_are_stored(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        session.add(mail(4_294_967_295))
    with Session(engine) as session:
        assert repo.ledger_by_key(session, "pm", 4_000_000_000, 4_294_967_295) is not None


def test_raw_bytes_are_kept_exactly(engine) -> None:  # type: ignore[no-untyped-def]
    raw = b"Subject: x\r\n\r\n\x00\xff\xfe mixed\n endings\r"
    with session_scope(engine) as session:
        session.add(mail(7, raw=raw))
    with Session(engine) as session:
        record = repo.ledger_by_key(session, "pm", 4_000_000_000, 7)
        assert record is not None and record.raw == raw


def test_open_cases_are_found_by_order_number_for_the_same_buyer_only(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        repo.add_case(
            session,
            Case(
                ref="K7Q2XZ",
                category="cancellation",
                buyer="b@x.example",
                mailbox="pm",
                orders=["1625349876123450"],
            ),
        )
        closed = repo.add_case(
            session,
            Case(
                ref="AAAAAA",
                category="cancellation",
                buyer="b@x.example",
                mailbox="pm",
                orders=["999999999999"],
                status="closed",
            ),
        )
        assert closed.id
    with Session(engine) as session:
        found = repo.open_cases_by_orders(session, "B@x.example", ["1625349876123450"])
        assert [c.ref for c in found] == ["K7Q2XZ"]
        assert repo.open_cases_by_orders(session, "other@x.example", ["1625349876123450"]) == []
        assert repo.open_cases_by_orders(session, "b@x.example", ["999999999999"]) == []


def test_sender_history_counts_replies_in_the_last_hour_and_day(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        for n, age in enumerate((timedelta(minutes=5), timedelta(hours=3), timedelta(days=3))):
            session.add(
                OutboxItem(
                    mailbox="pm",
                    message_id=f"m{n}@mailbot.example.test",
                    mail_from="a@b",
                    rcpt_to="b@x.example",
                    template="t",
                    language="en",
                    raw=b"x",
                    created_at=NOW - age,
                )
            )
        repo.suppress(session, "B@x.example", "hard bounce")
    with Session(engine) as session:
        history = repo.sender_history(session, "b@x.example", NOW)
    assert (history.replies_last_hour, history.replies_last_day, history.hard_bounced) == (1, 2, True)

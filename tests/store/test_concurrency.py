"""Keys that must hold when two transactions race on PostgreSQL (SQLite serialises its writers).

The second transaction is started while the first still holds its row, and the first commits only
once PostgreSQL shows the second one waiting for that lock (a definite event, not a sleep).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.store import repo
from mailbot.store.db import WRITE, make_engine, session_scope, upgrade
from mailbot.store.tables import OutboxItem, RulesetVersion


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Engine]:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def now() -> datetime:
    return datetime.now(UTC)


def wait_until_blocked(engine: Engine, timeout: float = 10.0) -> None:
    """Until some backend waits for a lock held by another transaction."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            if conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one():
                return
            conn.rollback()
        raise TimeoutError("the second transaction never waited for the first")


def race(
    engine: Engine, first: Callable[[Session], Any], second: Callable[[Session], Any]
) -> tuple[Any, Any]:
    """Run `first` in an open transaction, `second` in another until it waits, then commit both."""
    results: dict[str, Any] = {}

    def run_second() -> None:
        try:
            with session_scope(engine) as session:
                results["second"] = second(session)
        except Exception as exc:  # the failure is the test's result, reported below
            results["second"] = exc

    with Session(engine.execution_options(**{WRITE: True})) as session:
        results["first"] = first(session)
        thread = threading.Thread(target=run_second)
        thread.start()
        wait_until_blocked(engine)
        session.commit()
    thread.join(timeout=30)
    return results["first"], results["second"]


def test_a_message_id_claimed_by_a_concurrent_transaction_is_a_duplicate_not_an_error(pg: Engine) -> None:
    first, second = race(
        pg,
        lambda s: repo.claim_inbound(s, "<same@buyer.example>", "pm", "a" * 64, now()),
        lambda s: repo.claim_inbound(s, "<same@buyer.example>", "inspection", "b" * 64, now()),
    )

    assert (first, second) == (True, False)


def test_two_poll_jobs_meeting_a_new_rule_set_both_record_it_without_an_error(pg: Engine) -> None:
    _, second = race(
        pg,
        lambda s: repo.remember_ruleset(s, "v2", {"routing.toml": "x"}),
        lambda s: repo.remember_ruleset(s, "v2", {"routing.toml": "x"}),
    )

    assert not isinstance(second, Exception), second
    with Session(pg) as session:
        assert session.get(RulesetVersion, "v2") is not None


def test_suppressing_an_address_twice_at_once_is_not_an_error(pg: Engine) -> None:
    first, second = race(
        pg,
        lambda s: repo.suppress(s, "gone@buyer.example", "hard bounce"),
        lambda s: repo.suppress(s, "Gone@Buyer.example", "refused by our SMTP server"),
    )

    assert (first, second) == (True, False)


def test_the_same_message_reclaimed_by_its_own_mailbox_keeps_its_claim(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert repo.claim_inbound(session, "<m@b.example>", "pm", "a" * 64, now())
    with session_scope(engine) as session:
        assert repo.claim_inbound(session, "<m@b.example>", "pm", "a" * 64, now())
        assert not repo.claim_inbound(session, "<m@b.example>", "inspection", "a" * 64, now())


def queue(engine: Engine, count: int) -> None:
    with session_scope(engine) as session:
        for n in range(count):
            session.add(
                OutboxItem(
                    mailbox="pm",
                    message_id=f"<r{n}@mailbot.example.test>",
                    mail_from="ta-pm@support.example.test",
                    rcpt_to=f"b{n}@shop.example",
                    template="t",
                    language="en",
                    raw=b"Subject: x\r\n\r\nx\r\n",
                )
            )


def test_concurrent_drains_claim_different_replies_without_waiting_on_each_other(pg: Engine) -> None:
    queue(pg, 4)
    with Session(pg.execution_options(**{WRITE: True})) as first:
        mine = {item.id for item in repo.claim_due_outbox(first, "worker-a", now(), 2)}
        with Session(pg.execution_options(**{WRITE: True})) as second:
            second.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting would fail the test
            theirs = {item.id for item in repo.claim_due_outbox(second, "worker-b", now(), 10)}
            second.commit()
        first.commit()

    assert len(mine) == 2 and len(theirs) == 2
    assert mine.isdisjoint(theirs)


def test_a_drain_claims_each_reply_for_one_owner_on_every_database(engine: Engine) -> None:
    queue(engine, 3)
    with session_scope(engine) as session:
        first = repo.claim_due_outbox(session, "worker-a", now(), 2)
    with session_scope(engine) as session:
        second = repo.claim_due_outbox(session, "worker-b", now(), 10)
        third = repo.claim_due_outbox(session, "worker-c", now(), 10)

    assert [len(first), len(second), len(third)] == [2, 1, 0]
    assert all(item.status == "sending" and item.owner == "worker-a" for item in first)


def test_a_mailbox_lease_belongs_to_one_worker_until_it_expires(engine: Engine) -> None:
    ttl = timedelta(seconds=60)
    start = now()
    with session_scope(engine) as session:
        assert repo.acquire_lease(session, "pm", "worker-a", start, ttl)
        assert not repo.acquire_lease(session, "pm", "worker-b", start + timedelta(seconds=30), ttl)
        assert repo.acquire_lease(session, "pm", "worker-a", start + timedelta(seconds=30), ttl)  # renewed
        assert not repo.acquire_lease(session, "pm", "worker-b", start + timedelta(seconds=80), ttl)
        assert repo.acquire_lease(session, "pm", "worker-b", start + timedelta(seconds=91), ttl)
        assert repo.lease_holder(session, "pm") == "worker-b"


def test_two_workers_asking_for_a_free_lease_at_once_get_it_once(pg: Engine) -> None:
    ttl = timedelta(seconds=60)
    first, second = race(
        pg,
        lambda s: repo.acquire_lease(s, "pm", "worker-a", now(), ttl),
        lambda s: repo.acquire_lease(s, "pm", "worker-b", now(), ttl),
    )

    assert (first, second) == (True, False)

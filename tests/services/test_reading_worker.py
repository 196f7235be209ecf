"""The reading child process: results in order, a deadline per mail, a new child after a kill."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.slow_reading import CRASH, HANG, read_or_misbehave

from mailbot.adapters.templates import TemplateStore
from mailbot.core.reading import ReadingConfig
from mailbot.core.types import Identity
from mailbot.services.reading_worker import (
    InlineReader,
    ProcessReader,
    ReadingProcessDied,
    TimeBudgetExceeded,
)
from mailbot.services.rules_admin import RulesWatcher

REPO = Path(__file__).resolve().parents[2]
IDENTITY = Identity(addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="example.test")


def mail(n: int, extra: bytes = b"") -> bytes:
    return (
        (
            f"From: buyer{n}@shop.example\r\nTo: ta-pm@support.example.test\r\n"
            f"Subject: order 16253498761{n:04d}\r\nMessage-ID: <rw-{n}@shop.example>\r\n"
        ).encode()
        + extra
        + b"\r\nPlease cancel the monitoring.\r\n"
    )


@pytest.fixture(scope="module")
def config() -> ReadingConfig:
    templates = TemplateStore(REPO / "templates")
    return RulesWatcher(REPO / "rules", known_templates=templates.names).reading()


@pytest.fixture
def reader() -> Iterator[ProcessReader]:
    process_reader = ProcessReader(IDENTITY, read_or_misbehave)
    yield process_reader
    process_reader.close()


def test_results_come_back_in_the_order_the_mail_was_submitted(
    reader: ProcessReader, config: ReadingConfig
) -> None:
    results = list(reader.submit([mail(n) for n in range(5)], config, 30).results())

    assert [r.reading.mail.message_id if r.reading else None for r in results] == [
        f"rw-{n}@shop.example" for n in range(5)
    ]


def test_a_mail_past_the_deadline_gets_an_overrun_and_a_new_child_reads_the_next(
    reader: ProcessReader, config: ReadingConfig
) -> None:
    (first,) = reader.submit([mail(1)], config, 30).results()
    assert first.reading is not None
    old_pid = reader.pid

    stuck, after = reader.submit([mail(2, HANG + b"\r\n"), mail(3)], config, 1.0).results()

    assert isinstance(stuck.error, TimeBudgetExceeded)
    assert str(stuck.error).startswith("time budget exceeded: reading took 1.0 s")
    assert after.reading is not None and after.reading.mail.message_id == "rw-3@shop.example"
    assert reader.restarts == 1 and reader.pid != old_pid


def test_a_child_that_dies_is_reported_for_its_mail_and_replaced(
    reader: ProcessReader, config: ReadingConfig
) -> None:
    dead, after = reader.submit([mail(4, CRASH + b"\r\n"), mail(5)], config, 30).results()

    assert isinstance(dead.error, ReadingProcessDied)
    assert "SIGKILL" in str(dead.error)
    assert after.reading is not None


def test_two_jobs_submitted_back_to_back_are_both_answered(
    reader: ProcessReader, config: ReadingConfig
) -> None:
    first = reader.submit([mail(6), mail(7)], config, 30)
    second = reader.submit([mail(8)], config, 30)

    assert [r.reading is not None for r in (*first.results(), *second.results())] == [True, True, True]


def test_reading_in_this_thread_notices_an_overrun_afterwards(config: ReadingConfig) -> None:
    (result,) = InlineReader(IDENTITY).submit([mail(9)], config, 1e-9).results()

    assert isinstance(result.error, TimeBudgetExceeded)
    assert result.reading is None

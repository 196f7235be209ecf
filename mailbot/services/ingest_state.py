"""What ingesting carries: its inputs, what one message did, what a batch shares, what a poll reports.

Kept apart from the poll loop (`ingest`) and the applying of one message (`ingest_message`) so
both, and the reply and case helpers, can name these without importing each other.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.engine import Engine

from mailbot.adapters.ports import ReplyRenderer
from mailbot.core.reading import ReadingConfig
from mailbot.core.replies import ReplyLimits
from mailbot.core.rules.schema import RuleSet
from mailbot.core.types import Identity
from mailbot.observability import LogFields
from mailbot.services.reading_worker import InlineReader, Reader, ReaderPool, overrun

#: Environment variable naming a fault-injection point; used by the crash-safety tests to kill the
#: process with SIGKILL at an exact place. Unset in production.
CRASH_ENV = "MAILBOT_CRASH_AT"


def crash_point(name: str) -> None:
    """Die here, hard, if the crash-safety tests asked for it."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class RuleSource(Protocol):
    """The rules in charge and how to read mail under them; both may change between two calls."""

    def current(self) -> RuleSet: ...
    def reading(self) -> ReadingConfig: ...


@dataclass(frozen=True)
class MailboxInfo:
    name: str
    address: str
    service: str


@dataclass
class Intake:
    """What ingesting needs, assembled once by the entry point from settings."""

    engine: Engine
    identity: Identity
    rules: RuleSource
    renderer: ReplyRenderer
    mailboxes: dict[str, MailboxInfo]
    limits: ReplyLimits = field(default_factory=ReplyLimits)
    max_message_bytes: int = 25 * 1024 * 1024
    from_name: str = "Trade Assurance Support"
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    should_stop: Callable[[], bool] = lambda: False
    #: Seconds one message may spend being read, decided and rendered before it is quarantined.
    message_budget_seconds: float = 10.0
    #: Bytes of mail one fetched batch may hold (a single larger message under the limit goes alone).
    max_batch_bytes: int = 50 * 1024 * 1024
    #: Child processes that read mail with a hard deadline; None reads in this thread instead (an
    #: overrun is then noticed only once the reading is done).
    readers: ReaderPool | None = None

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        if self.readers is None:
            yield InlineReader(self.identity)
            return
        with self.readers.lease() as reader:
            yield reader


@dataclass
class PollReport:
    mailbox: str
    fetched: int = 0
    routed: int = 0
    ignored: int = 0
    quarantined: int = 0
    duplicates: int = 0
    cases_created: list[str] = field(default_factory=list)
    replies_queued: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Effects:
    """What one message did, counted in the poll report only once its savepoint holds."""

    cases_created: list[str] = field(default_factory=list)
    duplicate: int = 0
    replies_queued: int = 0
    events: list[dict[str, object]] = field(default_factory=list)
    #: The ledger row to decide again (reprocessing from the quarantine) instead of inserting one.
    existing_id: int | None = None
    #: The ledger row written for this message.
    mail_id: int | None = None
    #: Quarantined rows holding the same bytes, which this message's decision supersedes.
    quarantined_copies: list[int] = field(default_factory=list)
    #: Seconds spent so far on reading, deciding and rendering, against the time budget.
    spent: float = 0.0
    #: The case the message joined, opened or named (for the log lines about it), and why.
    case_ref: str | None = None
    reason: str = ""
    #: Where the ledger id and case reference go once known, so the lines logged after carry them.
    log_fields: LogFields = field(default_factory=LogFields)

    def spend(self, intake: Intake, seconds: float, what: str) -> None:
        self.spent += seconds
        if self.spent > intake.message_budget_seconds:
            raise overrun(self.spent, intake.message_budget_seconds, what)


@dataclass
class BatchState:
    """State shared by the messages of one batch: its audit events are written together at the end."""

    events: list[dict[str, object]] = field(default_factory=list)
    rulesets: set[str] = field(default_factory=set)
    # Automatic replies queued to anyone in the last hour (the global ceiling), counted once per batch.
    replies_last_hour: int | None = None

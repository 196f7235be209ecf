"""Composition root: turns Settings into the adapters, store and services the entry points run.

This is the only module (with the entry points) that reads settings and secrets, so every other
module receives plain values and stays testable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from mailbot.adapters.imap import ImapConfig, ImapSentCopies, ImapSource
from mailbot.adapters.maildir import FolderSentCopies, MaildirSource
from mailbot.adapters.ports import MailSource, ReplyTransport, SentCopies
from mailbot.adapters.smtp import FolderTransport, SmtpConfig, SmtpTransport
from mailbot.adapters.templates import TemplateStore
from mailbot.core.replies import ReplyLimits
from mailbot.core.types import Identity
from mailbot.services.ingest import Intake, MailboxInfo, PollReport, poll_mailbox
from mailbot.services.outbox import DrainReport, OutboxPolicy, drain
from mailbot.services.reading_worker import ReaderPool
from mailbot.services.rules_admin import RulesStatusFile, RulesWatcher
from mailbot.settings import Settings
from mailbot.store.db import make_engine, upgrade

log = logging.getLogger("mailbot")


def identity_of(settings: Settings) -> Identity:
    return Identity(
        addresses=frozenset(box.address for box in settings.mailboxes.values()),
        message_id_domain=settings.identity.message_id_domain,
        case_tag=settings.identity.case_tag,
    )


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    intake: Intake
    rules: RulesWatcher
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def source(self, mailbox: str) -> MailSource:
        box = self.settings.mailboxes[mailbox]
        if box.source == "maildir":
            return MaildirSource(self.settings.maildir_path(mailbox))
        assert box.imap is not None
        return ImapSource(self._imap_config(mailbox))

    def _imap_config(self, mailbox: str) -> ImapConfig:
        box = self.settings.mailboxes[mailbox]
        assert box.imap is not None
        imap = box.imap
        return ImapConfig(
            host=imap.host,
            port=imap.port,
            username=imap.username,
            password=self.settings.secrets.get(
                imap.password_secret, key=f"mailboxes.{mailbox}.imap.password_secret"
            ),
            security=imap.security,
            ca_file=imap.ca_file,
            folder=imap.folder,
            processed_action=imap.processed_action,
            move_to=imap.move_to,
            sent_folder=imap.sent_folder,
            connect_timeout=imap.connect_timeout,
            read_timeout=imap.read_timeout,
            batch_size=imap.batch_size,
        )

    def batch_size(self, mailbox: str) -> int:
        box = self.settings.mailboxes[mailbox]
        return box.imap.batch_size if box.imap is not None else 50

    def transport(self) -> ReplyTransport:
        smtp = self.settings.smtp
        if smtp is None:
            return FolderTransport(self.settings.outbox_dir)
        password = (
            self.settings.secrets.get(smtp.password_secret, key="smtp.password_secret")
            if smtp.password_secret
            else None
        )
        return SmtpTransport(
            SmtpConfig(
                host=smtp.host,
                port=smtp.port,
                security=smtp.security,
                username=smtp.username,
                password=password,
                ca_file=smtp.ca_file,
                timeout=smtp.timeout,
            )
        )

    def sent_copies(self) -> SentCopies | None:
        mode = self.settings.outbox.sent_copies
        if mode == "none":
            return None
        if mode == "imap":
            first = next(
                (
                    name
                    for name, box in self.settings.mailboxes.items()
                    if box.source == "imap" and box.enabled
                ),
                None,
            )
            if first is not None:
                return ImapSentCopies(self._imap_config(first))
        return FolderSentCopies(self.settings.sent_dir)

    def enabled_mailboxes(self) -> list[str]:
        return [name for name, box in self.settings.mailboxes.items() if box.enabled]

    def poll(self, mailbox: str) -> PollReport:
        self.intake.rules = self.rules
        try:
            source = self.source(mailbox)
        except Exception as exc:  # a missing secret or a bad value must name the mailbox, not crash the run
            report = PollReport(mailbox=mailbox, error=str(exc))
            log.error("mailbox %s failed: %s", mailbox, exc)
            return report
        return poll_mailbox(self.intake, mailbox, source, batch_size=self.batch_size(mailbox))

    def drain(self) -> DrainReport:
        policy = OutboxPolicy(
            max_attempts=self.settings.outbox.max_attempts,
            backoff_seconds=self.settings.outbox.backoff_seconds,
        )
        return drain(
            self.engine, self.transport, self.sent_copies(), self.clock, policy, self.intake.should_stop
        )


def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Wire everything. With `migrate`, the database schema is brought up to date first."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    identity = identity_of(settings)
    readers = ReaderPool(identity)
    readers.warm()  # the reading process starts while the database and the rules are loaded
    if migrate:
        upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    templates = TemplateStore(settings.templates_dir)
    rules = RulesWatcher(
        settings.rules_dir,
        known_templates=templates.names,
        known_mailboxes=frozenset(settings.mailboxes),
        on_change=RulesStatusFile.in_data_dir(settings.data_dir).write,
    )
    rules.reading()  # no lexicons, no reading: say so at start-up, not at the first poll
    intake = Intake(
        engine=engine,
        identity=identity,
        rules=rules,
        renderer=templates,
        mailboxes={
            name: MailboxInfo(name=name, address=box.address, service=box.service)
            for name, box in settings.mailboxes.items()
        },
        limits=ReplyLimits(
            per_hour=settings.limits.replies_per_sender_per_hour,
            per_day=settings.limits.replies_per_sender_per_day,
        ),
        max_message_bytes=settings.limits.max_message_bytes,
        from_name=settings.identity.from_name,
        max_batch_bytes=settings.limits.max_batch_bytes,
        message_budget_seconds=settings.limits.message_budget_seconds,
        readers=readers,
    )
    return Runtime(settings=settings, engine=engine, intake=intake, rules=rules)


def default_paths() -> tuple[Path, Path]:
    """rules/ and templates/ shipped with a checkout (used by commands that run without a config)."""
    root = Path(__file__).resolve().parent.parent
    return root / "rules", root / "templates"

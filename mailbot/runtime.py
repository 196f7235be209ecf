"""Composition root: turns Settings into the adapters, store and services the entry points run.

This is the only module (with the entry points) that reads settings and secrets, so every other
module receives plain values and stays testable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from mailbot.adapters.imap import ImapConfig, ImapSentCopies, ImapSource
from mailbot.adapters.maildir import FolderSentCopies, MaildirSource
from mailbot.adapters.oauth import TokenSource
from mailbot.adapters.ports import MailSource, ReplyTransport, SentCopies
from mailbot.adapters.smtp import FolderTransport, SmtpConfig, SmtpTransport
from mailbot.core.attachments import AttachmentLimits
from mailbot.core.replies import ReplyLimits
from mailbot.core.types import Identity
from mailbot.services import coordination, oauth
from mailbot.services.coordination import Liveness, WorkerIdentity
from mailbot.services.health import HealthPolicy
from mailbot.services.ingest import Intake, MailboxInfo, PollReport, poll_mailbox
from mailbot.services.outbox import DrainReport, OutboxPolicy, drain
from mailbot.services.progress import Progress
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
    # Who this process is to the other workers on the same database, and how liveness is judged.
    worker: WorkerIdentity = field(default_factory=WorkerIdentity.new)
    liveness: Liveness = field(default_factory=Liveness)
    _polling: set[str] = field(default_factory=set, init=False, repr=False)
    _lost: set[str] = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _local: threading.local = field(default_factory=threading.local, init=False, repr=False)
    # Set by the worker: SIGTERM asks every service to finish the message in hand and stop.
    should_stop: Callable[[], bool] = field(default=lambda: False)
    # Set by the worker: keep each IMAP mailbox's session logged in between polls (see ImapSource).
    keep_connections: bool = False
    _kept: dict[str, ImapSource] = field(default_factory=dict, init=False, repr=False)
    # One token source per XOAUTH2 account, shared by its polls, IDLE and Sent-folder connections.
    _tokens: dict[str, TokenSource] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.intake.should_stop = self._should_stop

    def source(self, mailbox: str) -> MailSource:
        box = self.settings.mailboxes[mailbox]
        if box.source == "maildir":
            return MaildirSource(self.settings.maildir_path(mailbox))
        assert box.imap is not None
        if not self.keep_connections:
            return ImapSource(self._imap_config(mailbox))
        with self._lock:
            kept = self._kept.get(mailbox)
        if kept is None:
            kept = ImapSource(self._imap_config(mailbox), keep_open=True)
            with self._lock:
                kept = self._kept.setdefault(mailbox, kept)
        return kept

    def close_sources(self) -> None:
        """Log out of the IMAP sessions kept between polls (the worker, when it stops)."""
        with self._lock:
            kept, self._kept = list(self._kept.values()), {}
        for source in kept:
            source.close()

    def _imap_config(self, mailbox: str) -> ImapConfig:
        box = self.settings.mailboxes[mailbox]
        assert box.imap is not None
        imap = box.imap
        xoauth2 = imap.auth == "xoauth2"
        return ImapConfig(
            host=imap.host,
            port=imap.port,
            username=imap.username,
            password=""
            if xoauth2 or imap.password_secret is None
            else self.settings.secrets.get(
                imap.password_secret, key=f"mailboxes.{mailbox}.imap.password_secret"
            ),
            token=self.token_source(mailbox) if xoauth2 else None,
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

    def token_source(self, account: str) -> TokenSource:
        """The XOAUTH2 token source of a mailbox (or "smtp"), made once per process."""
        with self._lock:
            source = self._tokens.get(account)
            if source is None:
                source = self._tokens[account] = oauth.token_source(self.settings, account)
            return source

    def idle_config(self, mailbox: str) -> ImapConfig | None:
        """The IMAP settings to wait on with IDLE, or None: a Maildir mailbox, or `idle = false`."""
        box = self.settings.mailboxes[mailbox]
        if box.source != "imap" or box.imap is None or not box.imap.idle:
            return None
        return self._imap_config(mailbox)

    def health_policy(self) -> HealthPolicy:
        """What /readyz and the metrics judge by: `mailbot status`'s policy, without the template check."""
        settings = self.settings
        return HealthPolicy(
            poll_intervals={
                name: box.poll_interval_seconds for name, box in settings.mailboxes.items() if box.enabled
            },
            missed_polls=settings.health.missed_polls,
            max_pending_reply_age_seconds=settings.health.max_pending_reply_age_seconds,
            data_dir=settings.data_dir,
        )

    def batch_size(self, mailbox: str) -> int:
        box = self.settings.mailboxes[mailbox]
        return box.imap.batch_size if box.imap is not None else 50

    def transport(self) -> ReplyTransport:
        smtp = self.settings.smtp
        if smtp is None:
            return FolderTransport(self.settings.outbox_dir)
        xoauth2 = smtp.auth == "xoauth2"
        password = (
            self.settings.secrets.get(smtp.password_secret, key="smtp.password_secret")
            if smtp.password_secret and not xoauth2
            else None
        )
        return SmtpTransport(
            SmtpConfig(
                host=smtp.host,
                port=smtp.port,
                security=smtp.security,
                username=smtp.username,
                password=password,
                token=self.token_source(oauth.SMTP_ACCOUNT) if xoauth2 else None,
                ca_file=smtp.ca_file,
                timeout=smtp.timeout,
            )
        )

    def sent_copies(self, mailbox: str) -> SentCopies | None:
        """Where the copies of `mailbox`'s replies are kept: its own IMAP account's Sent folder.

        Per mailbox, so one account's bad password only holds back the recovery of its own replies.
        A Maildir mailbox (or one no longer configured) keeps its copies in the local `sent/` folder.
        """
        mode = self.settings.outbox.sent_copies
        if mode == "none":
            return None
        box = self.settings.mailboxes.get(mailbox)
        if mode == "imap" and box is not None and box.imap is not None and box.imap.sent_folder:
            return ImapSentCopies(self._imap_config(mailbox))
        return FolderSentCopies(self.settings.sent_dir)

    def enabled_mailboxes(self) -> list[str]:
        return [name for name, box in self.settings.mailboxes.items() if box.enabled]

    def poll(self, mailbox: str, progress: Progress | None = None) -> PollReport:
        """Poll `mailbox` if this worker gets its lease; another worker's poll in progress is skipped.

        While the poll runs, a small thread beats this worker's heartbeat and renews the lease, so a
        long fetch or backlog keeps it, in the worker and in `poll --once` alike. `progress` (the
        command line's bar) hears how far the poll has got through the new mail.
        """
        self.intake.rules = self.rules
        coordination.beat(self.engine, self.worker, self.clock())
        if not coordination.acquire_lease(self.engine, mailbox, self.worker, self.clock(), self.liveness):
            log.info("mailbox %s: another worker is polling it; skipped this round", mailbox)
            return PollReport(mailbox=mailbox)
        with self._lock:
            self._polling.add(mailbox)
            self._lost.discard(mailbox)
        self._local.polling = mailbox
        done = threading.Event()
        beating = threading.Thread(target=self._beat_until, args=(done, mailbox), daemon=True)
        beating.start()
        try:
            try:
                source = self.source(mailbox)
            except Exception as exc:  # a missing secret or a bad value must name the mailbox, not crash
                report = PollReport(mailbox=mailbox, error=str(exc))
                log.error("mailbox %s failed: %s", mailbox, exc)
                return report
            return poll_mailbox(
                self.intake, mailbox, source, batch_size=self.batch_size(mailbox), progress=progress
            )
        finally:
            done.set()
            beating.join()
            self._local.polling = None
            with self._lock:
                self._polling.discard(mailbox)
            coordination.release_lease(self.engine, mailbox, self.worker)

    def _beat_until(self, done: threading.Event, mailbox: str) -> None:
        while not done.wait(self.liveness.heartbeat.total_seconds()):
            try:
                self._renew([mailbox], self.clock())
            except Exception as exc:  # the database is away for a moment: the next beat tries again
                log.warning("mailbox %s: renewing the lease failed: %s", mailbox, exc)

    def _should_stop(self) -> bool:
        """The intake's `should_stop`: a stop was asked for, or this thread's poll lost its lease."""
        if self.should_stop():
            return True
        mailbox = getattr(self._local, "polling", None)
        if mailbox is None:
            return False
        with self._lock:
            lost = mailbox in self._lost
        if lost:
            log.warning("mailbox %s: the lease was lost to another worker; stopping this poll", mailbox)
        return lost

    def heartbeat(self) -> None:
        """Say this worker is alive and renew the leases of the mailboxes it is polling right now."""
        with self._lock:
            polling = sorted(self._polling)
        self._renew(polling, self.clock())

    def _renew(self, mailboxes: list[str], now: datetime) -> None:
        coordination.beat(self.engine, self.worker, now)
        for mailbox in mailboxes:
            if not coordination.acquire_lease(self.engine, mailbox, self.worker, now, self.liveness):
                with self._lock:
                    self._lost.add(mailbox)

    def retire(self) -> None:
        """A clean stop: other workers need not wait for this one's heartbeat to age."""
        coordination.retire(self.engine, self.worker, list(self.settings.mailboxes))

    def drain(self) -> DrainReport:
        policy = OutboxPolicy(
            max_attempts=self.settings.outbox.max_attempts,
            backoff_seconds=self.settings.outbox.backoff_seconds,
            liveness=self.liveness,
        )
        return drain(
            self.engine,
            self.transport,
            self.sent_copies,
            self.clock,
            policy,
            self.should_stop,
            worker=self.worker,
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
    rules = RulesWatcher(  # the reply templates are part of the rule set: checked, versioned, reloaded
        settings.rules_dir,
        templates_dir=settings.templates_dir,
        rules_every=1.0,
        known_mailboxes=frozenset(settings.mailboxes),
        on_change=RulesStatusFile.in_data_dir(settings.data_dir).write,
        attachment_limits=AttachmentLimits(
            max_bytes=settings.limits.attachment_max_bytes,
            max_pages=settings.limits.attachment_max_pages,
            max_chars=settings.limits.attachment_max_chars,
            seconds=settings.limits.attachment_seconds,
        ),
    )
    rules.reading()  # no lexicons, no reading: say so at start-up, not at the first poll
    intake = Intake(
        engine=engine,
        identity=identity,
        rules=rules,
        renderer=rules.renderer,
        mailboxes={
            name: MailboxInfo(name=name, address=box.address, service=box.service)
            for name, box in settings.mailboxes.items()
        },
        limits=ReplyLimits(
            per_hour=settings.limits.replies_per_sender_per_hour,
            per_day=settings.limits.replies_per_sender_per_day,
            total_per_hour=settings.limits.replies_total_per_hour,
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

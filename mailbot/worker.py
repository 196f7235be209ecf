"""The long-running worker: one scheduled job per mailbox and one for the outbox.

APScheduler 3 runs each job in its own thread with `max_instances=1` and `coalesce=True`, so a slow
mailbox never overlaps itself and never blocks the other. SIGTERM/SIGINT set a flag the services
check between messages: the message in hand is finished and committed, then the worker exits.

Several workers may run against one PostgreSQL database (see the README, "Running N workers"):
each beats a heartbeat every few seconds, polls a mailbox only while it holds that mailbox's lease,
and claims outbox rows under its own id; on a clean stop it removes its heartbeat row and leases.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from mailbot.runtime import Runtime
from mailbot.services import casework

log = logging.getLogger("mailbot.worker")


class Worker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stopping = threading.Event()
        self._draining = threading.Lock()  # the poll jobs and the outbox job may both want to drain
        runtime.should_stop = self.stopping.is_set
        self.scheduler = BlockingScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        )

    def _poll_job(self, mailbox: str) -> None:
        if self.stopping.is_set():
            return
        report = self.runtime.poll(mailbox)
        if report.ok and report.fetched:
            log.info(
                "mailbox %s: %d fetched, %d routed, %d ignored, %d quarantined, %d new cases",
                mailbox,
                report.fetched,
                report.routed,
                report.ignored,
                report.quarantined,
                len(report.cases_created),
            )
        if report.replies_queued and not self.stopping.is_set():
            self._drain_job()

    def _drain_job(self) -> None:
        if self.stopping.is_set() or not self._draining.acquire(blocking=False):
            return  # a drain is already running; it will pick these replies up
        try:
            report = self.runtime.drain()
        finally:
            self._draining.release()
        if report.sent or report.failed or report.uncertain or report.recovered or report.requeued:
            log.info(
                "outbox: %d sent, %d retried, %d failed, %d uncertain, %d recovered, %d queued again",
                report.sent,
                report.retried,
                report.failed,
                report.uncertain,
                report.recovered,
                report.requeued,
            )
        for warning in report.warnings:
            log.warning("outbox: %s", warning)

    def _close_resolved_job(self) -> None:
        """Resolved cases the buyer left alone close themselves (issue 8); with N workers each may
        run it: closing an already closed case is a no-op, as the query only finds resolved ones."""
        days = self.runtime.settings.cases.close_resolved_after_days
        try:
            closed = casework.close_resolved(self.runtime.engine, timedelta(days=days))
        except Exception as exc:  # the database is unreachable: try again tomorrow, keep running
            log.warning("closing resolved cases failed: %s", exc)
            return
        if closed:
            log.info("closed %d case(s) resolved over %d days ago: %s", len(closed), days, ", ".join(closed))

    def _heartbeat_job(self) -> None:
        try:
            self.runtime.heartbeat()
        except Exception as exc:  # the database is unreachable: say so once per beat, keep running
            log.warning("heartbeat failed: %s", exc)

    def _signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the message in hand, then stopping", signal.Signals(signum).name)
        self.stopping.set()
        # wait=True lets a running job finish its current message (it checks `stopping`).
        threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    def run(self) -> None:
        settings = self.runtime.settings
        for name in self.runtime.enabled_mailboxes():
            interval = settings.mailboxes[name].poll_interval_seconds
            self.scheduler.add_job(
                self._poll_job,
                "interval",
                args=[name],
                seconds=interval,
                id=f"poll:{name}",
                name=f"poll {name}",
                next_run_time=_now(),
            )
        self.scheduler.add_job(
            self._drain_job,
            "interval",
            seconds=settings.outbox.drain_interval_seconds,
            id="outbox",
            name="outbox drain",
            next_run_time=_now(),
        )
        self.scheduler.add_job(
            self.runtime.rules.current, "interval", seconds=5, id="rules", name="rules reload"
        )
        self.scheduler.add_job(
            self._heartbeat_job,
            "interval",
            seconds=self.runtime.liveness.heartbeat.total_seconds(),
            id="heartbeat",
            name="heartbeat",
            next_run_time=_now(),
        )
        self.scheduler.add_job(
            self._close_resolved_job,
            "interval",
            days=1,
            id="close-resolved",
            name="close resolved cases",
            next_run_time=_now(),
        )
        signal.signal(signal.SIGTERM, self._signal)
        signal.signal(signal.SIGINT, self._signal)
        log.info(
            "worker %s started: mailboxes %s",
            self.runtime.worker.id,
            ", ".join(self.runtime.enabled_mailboxes()),
        )
        self.scheduler.start()
        try:
            self.runtime.retire()
        except Exception as exc:  # the database went away at shutdown: the heartbeat ages out instead
            log.warning("worker could not sign off (%s); its heartbeat will go stale instead", exc)
        log.info("worker stopped")


def _now() -> datetime:
    return datetime.now(UTC)

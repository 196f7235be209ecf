"""The long-running worker: one scheduled job per mailbox and one for the outbox.

APScheduler 3 runs each job in its own thread with `max_instances=1` and `coalesce=True`, so a slow
mailbox never overlaps itself and never blocks the other. SIGTERM/SIGINT set a flag the services
check between messages: the message in hand is finished and committed, then the worker exits.

Several workers may run against one PostgreSQL database (see the README, "Running N workers"):
each beats a heartbeat every few seconds, polls a mailbox only while it holds that mailbox's lease,
and claims outbox rows under its own id; on a clean stop it removes its heartbeat row and leases.

IMAP IDLE (on by default where the server offers it) keeps one more connection per mailbox that
only listens: new mail triggers that mailbox's poll at once, and the poll drains the outbox, so a
buyer is answered in about a second; the scheduled poll still runs as the safety net. A poll asked
for while one is running is not lost: the running one goes round once more.

With `[observability] listen`, /metrics, /healthz and /readyz are served (see worker_http.py).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.schedulers.base import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler

from mailbot.adapters.imap import IdleTiming, ImapIdler
from mailbot.observability import log_context
from mailbot.runtime import Runtime
from mailbot.services import casework
from mailbot.services.metrics import Metrics
from mailbot.worker_http import WorkerHttp

log = logging.getLogger("mailbot.worker")


class Worker:
    def __init__(self, runtime: Runtime, *, idle_timing: IdleTiming = IdleTiming()) -> None:
        self.runtime = runtime
        self.stopping = threading.Event()
        self._draining = threading.Lock()  # the poll jobs and the outbox job may both want to drain
        runtime.should_stop = self.stopping.is_set
        runtime.keep_connections = True  # an empty safety-net poll: SELECT + SEARCH, no new login
        self.scheduler = BlockingScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        )
        mailboxes = list(runtime.settings.mailboxes)
        self._polling = {name: threading.Lock() for name in mailboxes}  # one poll of a mailbox at a time
        self._wanted = {name: threading.Event() for name in mailboxes}  # a poll was asked for since
        self.idle_timing = idle_timing
        self._idlers: list[threading.Thread] = []
        listen = runtime.settings.observability.listen
        self.metrics: Metrics | None = None
        self.http: WorkerHttp | None = None
        if listen is not None:
            self.metrics = Metrics(
                runtime.engine,
                runtime.health_policy(),
                lambda: runtime.rules.current().version,
                clock=runtime.clock,
            )
            self.http = WorkerHttp(listen, self.metrics, alive=self._alive)

    def _alive(self) -> bool:
        return not self.stopping.is_set() and self.scheduler.running

    def _poll_job(self, mailbox: str) -> None:
        """Poll `mailbox` now, or make the poll already running go round once more."""
        wanted, polling = self._wanted[mailbox], self._polling[mailbox]
        wanted.set()
        while wanted.is_set() and not self.stopping.is_set():
            if not polling.acquire(blocking=False):
                return  # the running poll sees `wanted` before it lets go of the lock
            try:
                while wanted.is_set() and not self.stopping.is_set():
                    wanted.clear()
                    with log_context(mailbox=mailbox):
                        self._poll_once(mailbox)
            finally:
                polling.release()

    def _wake(self, mailbox: str) -> None:
        """IDLE saw new mail: poll on the scheduler's threads at once (the IDLE thread goes on listening)."""
        if self.metrics is not None:
            self.metrics.idle_wakeups.labels(mailbox).inc()
        try:
            self.scheduler.add_job(self._poll_job, args=[mailbox], name=f"poll {mailbox} (IDLE)")
        except SchedulerNotRunningError:
            pass  # stopping, or not started yet: the first scheduled poll is due at start anyway

    def _poll_once(self, mailbox: str) -> None:
        if self.stopping.is_set():
            return
        started, clock = self.runtime.clock(), time.perf_counter()
        report = self.runtime.poll(mailbox)
        if self.metrics is not None:
            self.metrics.observe_poll(report, started, time.perf_counter() - clock)
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
        if self.metrics is not None:
            self.metrics.observe_drain(report)
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
        self._start_idlers()
        if self.http is not None:
            self.http.start()
        log.info(
            "worker %s started: mailboxes %s",
            self.runtime.worker.id,
            ", ".join(self.runtime.enabled_mailboxes()),
        )
        try:
            self.scheduler.start()
        finally:
            self.stopping.set()
            self._stop_idlers()
            self._wait_for_polls()
            self.runtime.close_sources()
            if self.http is not None:
                self.http.stop()
        try:
            self.runtime.retire()
        except Exception as exc:  # the database went away at shutdown: the heartbeat ages out instead
            log.warning("worker could not sign off (%s); its heartbeat will go stale instead", exc)
        log.info("worker stopped")

    def _start_idlers(self) -> None:
        for name in self.runtime.enabled_mailboxes():
            try:
                config = self.runtime.idle_config(name)
            except Exception as exc:  # a missing secret: the poll job reports it on every round
                log.warning("mailbox %s: no IDLE: %s", name, exc)
                continue
            if config is None:
                continue
            idler = ImapIdler(
                config,
                on_new_mail=lambda name=name: self._wake(name),  # type: ignore[misc]
                stop=self.stopping,
                timing=self.idle_timing,
                on_connected=lambda up, name=name: self._idle_state(name, up),  # type: ignore[misc]
            )
            thread = threading.Thread(target=idler.run, name=f"idle {name}", daemon=True)
            thread.start()
            self._idlers.append(thread)

    def _idle_state(self, mailbox: str, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.idle_connected.labels(mailbox).set(1 if up else 0)
        if up:
            log.info("mailbox %s: waiting for new mail with IMAP IDLE", mailbox)

    def _wait_for_polls(self, timeout: float = 60.0) -> None:
        """A poll in progress finishes its message before its kept IMAP session is logged out."""
        deadline = time.monotonic() + timeout
        for lock in self._polling.values():
            if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                lock.release()

    def _stop_idlers(self) -> None:
        """The IDLE threads look at `stopping` every second; each then says DONE and logs out."""
        deadline = time.monotonic() + self.idle_timing.check_seconds + 10
        for thread in self._idlers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop in time; leaving it to exit with the process", thread.name)


def _now() -> datetime:
    return datetime.now(UTC)

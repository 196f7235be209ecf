"""The worker's Prometheus metrics: counters fed by each poll and drain, gauges read at scrape time.

What happens in this process (mail taken in, decisions, replies sent, send failures, polls) is
counted as it happens from the PollReport and DrainReport the worker already gets. What is true of
the installation as a whole (outbox by state, quarantined mail, the last successful poll and the lag
of each mailbox, whether the database answers) is read from the database on every scrape through
`check_health`, so `/metrics`, `/readyz` and `mailbot status` never disagree.

Decision time is the time the intake spent on each message, from the start of the poll's work to
the message's ledger row (and from one row to the next): reading, deciding, rendering and the
transaction, which is what a buyer waits for. Arrival-to-reply runs from the ledger row to the SMTP
server's 250.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.services.health import Health, HealthPolicy, check_health
from mailbot.services.ingest import PollReport
from mailbot.services.outbox import DrainReport
from mailbot.store import metrics_queries

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_DECISION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REPLY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
_HEALTH_CACHE_SECONDS = 1.0  # /metrics and /readyz scraped together read the database once


@dataclass(frozen=True)
class Readiness:
    ok: bool
    problems: tuple[str, ...]


class Metrics:
    """Every metric object, defined once, in a registry of its own (tests build as many as they like)."""

    def __init__(
        self,
        engine: Engine,
        policy: HealthPolicy,
        ruleset_version: Callable[[], str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.clock = clock
        self.registry = CollectorRegistry()
        r = self.registry
        self.mail = Counter(
            "mailbot_mail",
            "Mail taken in by this worker, by mailbox and outcome",
            ["mailbox", "outcome"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            "mailbot_decision_seconds",
            "Time to read, decide, render and record one message",
            ["mailbox"],
            buckets=_DECISION_BUCKETS,
            registry=r,
        )
        self.reply_seconds = Histogram(
            "mailbot_arrival_to_reply_seconds",
            "From a buyer's mail entering the ledger to its reply accepted by the SMTP server",
            ["mailbox"],
            buckets=_REPLY_BUCKETS,
            registry=r,
        )
        self.replies_sent = Counter("mailbot_replies_sent", "Replies accepted by the SMTP server", registry=r)
        self.send_failures = Counter(
            "mailbot_send_failures",
            "Sends that did not succeed, by class: temporary (retried), permanent (failed), "
            "uncertain (may have arrived), drain (the drain itself failed)",
            ["class"],
            registry=r,
        )
        self.polls = Counter("mailbot_polls", "Polls run by this worker", ["mailbox", "result"], registry=r)
        self.poll_seconds = Histogram(
            "mailbot_poll_seconds",
            "Duration of one poll (connect, search, fetch, decide, acknowledge)",
            ["mailbox"],
            registry=r,
        )
        self.idle_wakeups = Counter(
            "mailbot_idle_wakeups", "New-mail notifications received over IMAP IDLE", ["mailbox"], registry=r
        )
        self.idle_connected = Gauge(
            "mailbot_idle_connected", "1 while the mailbox's IDLE connection is up", ["mailbox"], registry=r
        )
        self._facts = _Facts(self, ruleset_version)
        r.register(self._facts)

    # -- fed by the worker

    def observe_poll(self, report: PollReport, started: datetime, seconds: float) -> None:
        mailbox = report.mailbox
        self._facts.invalidate()  # the next scrape sees this poll
        self.polls.labels(mailbox, "ok" if report.ok else "failed").inc()
        self.poll_seconds.labels(mailbox).observe(seconds)
        for outcome, count in (
            ("routed", report.routed),
            ("ignored", report.ignored),
            ("quarantined", report.quarantined),
            ("duplicate", report.duplicates),
        ):
            if count:
                self.mail.labels(mailbox, outcome).inc(count)
        if not (report.routed or report.ignored or report.quarantined):
            return  # an empty poll costs no query
        try:
            with Session(self.engine) as session:
                moments = metrics_queries.recorded_since(session, mailbox, started)
        except Exception as exc:  # metrics never break a poll
            log.warning("metrics: could not read the decision times of %s: %s", mailbox, exc)
            return
        previous = started
        for moment in moments:
            self.decision_seconds.labels(mailbox).observe(max(0.0, (moment - previous).total_seconds()))
            previous = moment

    def observe_drain(self, report: DrainReport) -> None:
        self._facts.invalidate()
        self.replies_sent.inc(report.sent)
        for kind, count in (
            ("temporary", report.retried),
            ("permanent", report.failed),
            ("uncertain", report.uncertain),
            ("drain", 1 if report.error else 0),
        ):
            if count:
                self.send_failures.labels(kind).inc(count)
        if not report.sent_ids:
            return
        try:
            with Session(self.engine) as session:
                delays = metrics_queries.reply_delays(session, report.sent_ids)
        except Exception as exc:
            log.warning("metrics: could not read the reply times: %s", exc)
            return
        for mailbox, seconds in delays:
            self.reply_seconds.labels(mailbox).observe(seconds)

    # -- read by the HTTP endpoint

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def readiness(self) -> Readiness:
        """Ready: the database answers and every enabled mailbox was polled recently and without error."""
        health, error = self._facts.health()
        if health is None:
            return Readiness(ok=False, problems=(f"database: {error}",))
        problems = tuple(f"mailbox {box.mailbox}: {p}" for box in health.mailboxes for p in box.problems)
        return Readiness(ok=not problems, problems=problems)


class _Facts(Collector):
    """Gauges computed from the database at scrape time (shared with readiness, cached briefly)."""

    def __init__(self, metrics: Metrics, ruleset_version: Callable[[], str]) -> None:
        self.metrics = metrics
        self.ruleset_version = ruleset_version
        self._lock = threading.Lock()
        self._cached: tuple[datetime, Health | None, str] | None = None

    def health(self) -> tuple[Health | None, str]:
        now = self.metrics.clock()
        with self._lock:
            fresh = timedelta(seconds=_HEALTH_CACHE_SECONDS)
            if self._cached is not None and now - self._cached[0] < fresh:
                return self._cached[1], self._cached[2]
            try:
                health: Health | None = check_health(self.metrics.engine, self.metrics.policy, now)
                error = ""
            except Exception as exc:  # the database is away: that is a fact to report, not a crash
                health, error = None, " ".join(str(exc).split())[:300]
            self._cached = (now, health, error)
            return health, error

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily | CounterMetricFamily]:
        health, _error = self.health()
        database = GaugeMetricFamily("mailbot_database_up", "1 when the database answered this scrape")
        database.add_metric([], 1.0 if health is not None else 0.0)
        yield database
        try:
            version = self.ruleset_version()
        except Exception:
            version = ""
        info = InfoMetricFamily("mailbot_ruleset", "The rule-set version in charge")
        info.add_metric([], {"version": version})
        yield info
        if health is None:
            return
        now = health.checked_at
        outbox = GaugeMetricFamily(
            "mailbot_outbox_replies", "Replies in the outbox by state", labels=["state"]
        )
        for state in ("pending", "sending", "sent", "failed", "uncertain"):
            outbox.add_metric([state], float(health.outbox.counts.get(state, 0)))
        yield outbox
        quarantined = GaugeMetricFamily("mailbot_quarantined_mail", "Mail in quarantine")
        quarantined.add_metric([], float(health.mail.get("quarantined", 0)))
        yield quarantined
        last_ok = GaugeMetricFamily(
            "mailbot_last_successful_poll_timestamp_seconds",
            "When each mailbox last completed a poll without error (Unix time)",
            labels=["mailbox"],
        )
        lag = GaugeMetricFamily(
            "mailbot_poll_lag_seconds", "Seconds since each mailbox's last completed poll", labels=["mailbox"]
        )
        up = GaugeMetricFamily(
            "mailbot_mailbox_up", "1 when the mailbox has no health problem", labels=["mailbox"]
        )
        for box in health.mailboxes:
            if box.last_ok_at is not None:
                last_ok.add_metric([box.mailbox], box.last_ok_at.timestamp())
            if box.last_poll_at is not None:
                lag.add_metric([box.mailbox], max(0.0, (now - box.last_poll_at).total_seconds()))
            up.add_metric([box.mailbox], 1.0 if box.ok else 0.0)
        yield last_ok
        yield lag
        yield up
        yield from _token_metrics(health, now)


def _token_metrics(health: Health, now: datetime) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Token expiry per XOAUTH2 account (negative once expired) and the refresh failures counted so far
    (in the token cache, so failures of `poll --once` runs and earlier worker processes count too)."""
    expiry = GaugeMetricFamily(
        "mailbot_oauth_token_expiry_seconds",
        "Seconds until the account's OAuth2 access token expires (negative: expired)",
        labels=["account"],
    )
    failures = CounterMetricFamily(
        "mailbot_oauth_refresh_failures", "OAuth2 token refreshes that failed", labels=["account"]
    )
    for token in health.tokens:
        if token.expires_at is not None:
            expiry.add_metric([token.account], token.expires_at - now.timestamp())
        failures.add_metric([token.account], float(token.failures))
    yield expiry
    yield failures

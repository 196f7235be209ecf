"""Health: is mailbot doing its job right now? Every reason it is not, one line each.

"The last poll did not fail" is not health: a dead worker never fails a poll, and an SMTP outage
fails no poll at all. So health looks at what should have happened by now: each enabled mailbox
polled to completion within a few of its intervals, and without an error; every queued reply
sent within a configured age; no reply left `uncertain` or `failed` for staff; no mail quarantined
for running past its time budget; every reply template usable; and the global ceiling of automatic
replies not reached within the last hour (past it nobody gets an automatic reply).

`check_health` returns a typed, frozen `Health` so the CLI (`mailbot status`, `--json`) and a later
metrics endpoint read the same facts; `as_dict` is the JSON shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.adapters.oauth import TokenState, cache_dir_in
from mailbot.adapters.oauth import read_states as read_token_states
from mailbot.adapters.templates import check_templates as check_templates_in
from mailbot.services.rules_admin import RulesStatusFile
from mailbot.store import guards
from mailbot.store import health_queries as queries

#: How long a reached reply ceiling keeps mailbot unhealthy: the ceiling counts replies per hour, so
#: for an hour after it fired replies may still be held back.
CEILING_ALERT_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class HealthPolicy:
    """What counts as unhealthy; built from settings by the entry point."""

    poll_intervals: Mapping[str, int]  # enabled mailbox -> its poll interval in seconds
    missed_polls: int = 3  # no completed poll for this many intervals: the worker is dead or stalled
    max_pending_reply_age_seconds: int = 900  # a reply still unsent after this long: SMTP is down
    templates_dir: Path | None = None  # None: do not check the templates
    data_dir: Path | None = None  # where the worker reports a refused rule change; None: not checked


@dataclass(frozen=True)
class MailboxHealth:
    mailbox: str
    poll_interval_seconds: int
    last_poll_at: datetime | None
    last_ok_at: datetime | None
    last_error: str
    uidvalidity: int | None
    last_uid: int | None
    problems: tuple[str, ...]  # each reads after "mailbox NAME:"; a failed poll's error verbatim

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class OutboxHealth:
    counts: Mapping[str, int]  # replies per status
    overdue: int  # replies waiting longer than the policy's age
    oldest_overdue_at: datetime | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Health:
    checked_at: datetime
    mailboxes: tuple[MailboxHealth, ...]
    outbox: OutboxHealth
    mail: Mapping[str, int]  # ledger rows per outcome
    quarantined_over_budget: int
    template_problems: tuple[str, ...]
    rules_error: str | None = None  # why the worker refused the rule files on disk, if it did
    tokens: tuple[TokenState, ...] = ()  # the XOAUTH2 accounts' tokens (from the data dir's oauth/)
    reply_ceiling_alert_at: datetime | None = None  # the global reply ceiling fired in the last hour
    problems: tuple[str, ...] = field(default=())  # every reason for being unhealthy, one line each

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `mailbot status --json`; timestamps in ISO 8601."""
        return {
            "ok": self.ok,
            "checked_at": _iso(self.checked_at),
            "problems": list(self.problems),
            "mailboxes": [
                {
                    "mailbox": box.mailbox,
                    "ok": box.ok,
                    "poll_interval_seconds": box.poll_interval_seconds,
                    "last_poll_at": _iso(box.last_poll_at),
                    "last_ok_at": _iso(box.last_ok_at),
                    "last_error": box.last_error,
                    "uidvalidity": box.uidvalidity,
                    "last_uid": box.last_uid,
                    "problems": list(box.problems),
                }
                for box in self.mailboxes
            ],
            "outbox": {
                "ok": self.outbox.ok,
                "counts": dict(self.outbox.counts),
                "overdue": self.outbox.overdue,
                "oldest_overdue_at": _iso(self.outbox.oldest_overdue_at),
                "problems": list(self.outbox.problems),
            },
            "mail": dict(self.mail),
            "quarantined_over_budget": self.quarantined_over_budget,
            "template_problems": list(self.template_problems),
            "rules_error": self.rules_error,
            "reply_ceiling_alert_at": _iso(self.reply_ceiling_alert_at),
            "oauth": [
                {
                    "account": t.account,
                    "provider": t.provider,
                    "flow": t.flow,
                    "expires_at": _iso(_from_unix(t.expires_at)),
                    "refresh_failures": t.failures,
                    "last_error": t.last_error,
                }
                for t in self.tokens
            ],
        }


TemplateCheck = Callable[[Path], list[str]]


def template_problems(root: Path) -> list[str]:
    """One line per problem in the reply templates ("<file>:<line>: <what>"), as `rules check` sees them."""
    return check_templates_in(root)


def check_health(
    engine: Engine,
    policy: HealthPolicy,
    now: datetime,
    *,
    check_templates: TemplateCheck = template_problems,
) -> Health:
    """Read the facts in one read transaction and judge them against the policy."""
    with Session(engine) as session:
        cursors = queries.cursors(session)
        counts = queries.outbox_counts(session)
        age = timedelta(seconds=policy.max_pending_reply_age_seconds)
        waiting = queries.replies_waiting_since(session, now - age)
        mail = queries.mail_outcome_counts(session)
        over_budget = queries.quarantined_over_budget(session)
        ceiling = _aware_or_none(guards.last_ceiling_alert(session, now - CEILING_ALERT_WINDOW))
    mailboxes = tuple(
        _mailbox_health(name, interval, cursors.get(name), policy, now)
        for name, interval in policy.poll_intervals.items()
    )
    outbox = _outbox_health(counts, waiting, policy)
    templates = tuple(check_templates(policy.templates_dir)) if policy.templates_dir is not None else ()
    problems = [f"mailbox {box.mailbox}: {p}" for box in mailboxes for p in box.problems]
    problems += outbox.problems
    if over_budget:
        problems.append(
            f"mail: {_plural(over_budget, 'message')} quarantined for running past the time budget "
            "(see `mailbot quarantine list`)"
        )
    if ceiling is not None:
        problems.append(
            f"outbox: the global ceiling of automatic replies per hour was reached at {_iso(ceiling)}; "
            "automatic replies are held back (raise limits.replies_total_per_hour if this is expected)"
        )
    tokens = _tokens(policy)
    problems += _token_problems(tokens, policy)
    rules_error = _rules_error(policy.data_dir) if policy.data_dir is not None else None
    if rules_error:
        problems.append(f"rules: {rules_error}")
    if templates:
        more = f" (and {len(templates) - 1} more)" if len(templates) > 1 else ""
        problems.append(f"templates: {templates[0]}{more}; buyers get no reply from a broken template")
    return Health(
        checked_at=now,
        mailboxes=mailboxes,
        outbox=outbox,
        mail=mail,
        quarantined_over_budget=over_budget,
        template_problems=templates,
        rules_error=rules_error,
        tokens=tokens,
        reply_ceiling_alert_at=ceiling,
        problems=tuple(
            " ".join(problem.split()) for problem in problems
        ),  # one line each, whatever the source
    )


def _tokens(policy: HealthPolicy) -> tuple[TokenState, ...]:
    """The tokens of the configured accounts (a mailbox since switched back to a password is not one)."""
    if policy.data_dir is None:
        return ()
    states = read_token_states(cache_dir_in(policy.data_dir))
    return tuple(s for s in states if s.account in policy.poll_intervals or s.account == "smtp")


def _token_problems(tokens: tuple[TokenState, ...], policy: HealthPolicy) -> list[str]:
    """A refresh that failed is an alert at once, not when the token finally lapses: the admin may
    need to consent again (`mailbot oauth login`), and that takes a person."""
    problems = []
    for token in tokens:
        if not token.last_error:
            continue
        label = f"mailbox {token.account}" if token.account in policy.poll_intervals else token.account
        since = f" at {_iso(_from_unix(token.failed_at))}" if token.failed_at is not None else ""
        problems.append(
            f"{label}: OAuth2 token refresh failed{since}: {token.last_error} "
            "(see `mailbot oauth status`; a delegated account may need "
            f"`mailbot oauth login {token.account}`)"
        )
    return problems


def _from_unix(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _rules_error(data_dir: Path) -> str | None:
    """The worker's word on the rule files: a refused change leaves the last good set in charge."""
    try:
        status = RulesStatusFile.in_data_dir(data_dir).read()
    except ValueError as exc:
        return str(exc)
    if status is None or status.error is None:
        return None
    since = f" since {_iso(status.error_since)}" if status.error_since else ""
    lines = status.error.strip().splitlines() or [""]
    more = " (more in `mailbot rules status`)" if len(lines) > 1 else ""
    return (
        f"the worker refused the rule files{since} and still uses version {status.version}: {lines[0]}{more}"
    )


def _mailbox_health(
    name: str, interval: int, cursor: queries.CursorRow | None, policy: HealthPolicy, now: datetime
) -> MailboxHealth:
    problems: list[str] = []  # phrased to follow "mailbox NAME:"
    if cursor is None or cursor.last_poll_at is None:
        problems.append("never polled (is the worker running?)")
    else:
        since = now - _aware(cursor.last_poll_at)
        allowed = timedelta(seconds=interval * policy.missed_polls)
        if since > allowed:
            problems.append(
                f"no completed poll for {_duration(since)} (polled every {interval} s): "
                "the worker is stopped or stalled"
            )
        if cursor.last_error:
            problems.append(cursor.last_error)
    return MailboxHealth(
        mailbox=name,
        poll_interval_seconds=interval,
        last_poll_at=_aware_or_none(cursor.last_poll_at) if cursor else None,
        last_ok_at=_aware_or_none(cursor.last_ok_at) if cursor else None,
        last_error=cursor.last_error if cursor else "",
        uidvalidity=cursor.uidvalidity if cursor else None,
        last_uid=cursor.last_uid if cursor else None,
        problems=tuple(problems),
    )


def _outbox_health(
    counts: Mapping[str, int], waiting: queries.WaitingReplies, policy: HealthPolicy
) -> OutboxHealth:
    problems: list[str] = []
    if waiting.count:
        problems.append(
            f"outbox: {_plural(waiting.count, 'reply', 'replies')} waiting longer than "
            f"{_duration(timedelta(seconds=policy.max_pending_reply_age_seconds))} "
            f"(the oldest since {_iso(_aware_or_none(waiting.oldest_created_at))}): "
            "is the SMTP server reachable?"
        )
    if counts.get("uncertain"):
        problems.append(
            f"outbox: {_plural(counts['uncertain'], 'reply', 'replies')} uncertain: may or may not have "
            "reached the buyer; check, then `mailbot outbox retry ID`"
        )
    if counts.get("failed"):
        problems.append(
            f"outbox: {_plural(counts['failed'], 'reply', 'replies')} failed: "
            "see the case, then `mailbot outbox retry ID`"
        )
    return OutboxHealth(
        counts=dict(counts),
        overdue=waiting.count,
        oldest_overdue_at=_aware_or_none(waiting.oldest_created_at),
        problems=tuple(problems),
    )


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for rows written by older code; they were UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _aware_or_none(moment: datetime | None) -> datetime | None:
    return _aware(moment) if moment is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"

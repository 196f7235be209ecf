"""Supervisors' use cases for routing rules: check, test, explain, replay, statistics, and the watcher.

Every command decides mail with exactly the code the worker runs (`read` then `decide`), so what a
supervisor sees in `rules test`, `rules explain` or `rules replay` is what the worker would do.
Replay and statistics also work on the stored mail and decisions of the ledger.
The `RulesWatcher` gives the worker the rule set to use and swaps in a changed one only when it is
valid; an invalid change is logged, shown in health (and in `RulesStatusFile` for other processes),
and the last good set stays in charge.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.maildir import write_atomically
from mailbot.adapters.rulefiles import (
    corpus_messages,
    load_rule_tests,
    load_ruleset,
    reading_files,
    routing_files,
    routing_version,
)
from mailbot.core.decide import decide, decision_summary
from mailbot.core.errors import RuleFileError
from mailbot.core.reading import ReadingConfig, read
from mailbot.core.rules.engine import DEFAULT_RULE
from mailbot.core.rules.expectations import Expectation, RuleTest
from mailbot.core.rules.predicates import suggestion
from mailbot.core.rules.schema import RuleSet, RuleSetErrors
from mailbot.core.types import CaseFacts, Decision, Identity, Reading, ThreadCandidates
from mailbot.store import repo

log = logging.getLogger("mailbot.rules")

TemplateNames = frozenset[str] | Callable[[], frozenset[str]] | None


@dataclass(frozen=True)
class RulesContext:
    """What deciding mail outside the worker needs, assembled by the entry point."""

    rules_dir: Path
    identity: Identity
    reading_config: ReadingConfig | None = None  # needed to test, explain and replay, not to check
    known_templates: frozenset[str] | None = None  # None: any template name is accepted
    known_mailboxes: frozenset[str] | None = None
    mailbox_addresses: Mapping[str, str] = field(default_factory=dict)  # address -> mailbox name

    def config(self) -> ReadingConfig:
        if self.reading_config is None:
            raise ValueError("a reading configuration is needed to read mail")
        return self.reading_config


# -- deciding one message -----------------------------------------------------------------------


def decide_message(
    raw: bytes, ctx: RulesContext, ruleset: RuleSet, *, mailbox: str, case: str | None = None
) -> tuple[Reading, Decision]:
    """Read and decide one message as the worker would; `case` says it belongs to that existing case."""
    reading = read(raw, identity=ctx.identity, config=ctx.config())
    return reading, decide_reading(reading, ctx, ruleset, mailbox=mailbox, case=case)


def decide_reading(
    reading: Reading, ctx: RulesContext, ruleset: RuleSet, *, mailbox: str, case: str | None = None
) -> Decision:
    candidates = ThreadCandidates()
    if case is not None:
        # Standing in for the store: the case the test or the supervisor says this mail belongs to.
        facts = CaseFacts(
            ref=case,
            buyer=reading.mail.from_addr or "",
            status="open",
            orders=reading.orders.numbers,
            mailbox=mailbox,
        )
        candidates = ThreadCandidates(by_message_id=facts)
    return decide(reading, mailbox=mailbox, ruleset=ruleset, identity=ctx.identity, candidates=candidates)


def deciding_rule(decision: Decision, ruleset: RuleSet) -> str:
    """The rule that ended evaluation, or DEFAULT_RULE when none did."""
    for step in decision.trace:
        rule = ruleset.rule(step.rule)
        if step.hit and rule is not None and not rule.continues:
            return rule.name
    return DEFAULT_RULE


def mailbox_of(reading: Reading, ctx: RulesContext) -> str | None:
    """The configured mailbox a message was delivered to, from Delivered-To, To and Cc."""
    mail = reading.mail
    for address in (*mail.delivered_to, *mail.to, *mail.cc):
        name = ctx.mailbox_addresses.get(address.lower())
        if name is not None:
            return name
    return None


# -- check ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckReport:
    files: tuple[str, ...]
    ruleset: RuleSet | None
    rule_tests: tuple[RuleTest, ...]
    errors: tuple[RuleFileError, ...]

    @property
    def tests(self) -> int:
        return len(self.rule_tests)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": list(self.files),
            "version": self.ruleset.version if self.ruleset else None,
            "rules": [r.name for r in self.ruleset.rules] if self.ruleset else [],
            "tests": self.tests,
            "errors": [_error_json(e) for e in self.errors],
        }


def check_rules(ctx: RulesContext) -> CheckReport:
    """Load and check the routing files, the reading files (lexicons, orders.toml) and the rule tests.

    Every mistake in the routing files and the rule tests is listed; the reading files stop at
    their first mistake (their loader reads them one after the other).
    """
    errors: list[RuleFileError] = []
    ruleset: RuleSet | None = None
    tests: list[RuleTest] = []
    try:
        ruleset = load_ruleset(
            ctx.rules_dir, known_templates=ctx.known_templates, known_mailboxes=ctx.known_mailboxes
        )
    except RuleSetErrors as problems:
        errors.extend(problems.errors)
    try:
        tests = load_rule_tests(
            ctx.rules_dir, known_templates=ctx.known_templates, known_mailboxes=ctx.known_mailboxes
        )
    except RuleSetErrors as problems:
        errors.extend(problems.errors)
    if ruleset is not None:
        errors.extend(_unknown_rule_names(tests, ruleset))
    if (ctx.rules_dir / "lexicons").is_dir():
        try:
            load_reading_config(ctx.rules_dir)
        except RuleFileError as error:
            errors.append(error)
    files = tuple(str(p) for p in routing_files(ctx.rules_dir)) if ctx.rules_dir.is_dir() else ()
    return CheckReport(files=files, ruleset=ruleset, rule_tests=tuple(tests), errors=tuple(errors))


def _unknown_rule_names(tests: Sequence[RuleTest], ruleset: RuleSet) -> list[RuleFileError]:
    names = [r.name for r in ruleset.rules]
    return [
        RuleFileError(
            test.path,
            test.line,
            "expect.rule",
            f"test '{test.name}': no rule named '{test.expect.rule}'"
            f"{suggestion(test.expect.rule, [*names, DEFAULT_RULE])}",
        )
        for test in tests
        if test.expect.rule is not None and test.expect.rule not in names and test.expect.rule != DEFAULT_RULE
    ]


def _error_json(error: RuleFileError) -> dict[str, Any]:
    return {"file": error.path, "line": error.line, "key": error.key, "message": error.message}


# -- test -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleTestOutcome:
    test: RuleTest
    problems: tuple[str, ...]  # expectation not met, one line each; empty when the test passed
    decision: Decision | None
    decided_by: str | None
    error: str | None = None  # the mail could not be read or decided at all

    @property
    def passed(self) -> bool:
        return not self.problems and self.error is None


@dataclass(frozen=True)
class RuleTestReport:
    version: str | None
    outcomes: tuple[RuleTestOutcome, ...]
    errors: tuple[RuleFileError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors and all(o.passed for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.passed)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "version": self.version,
            "passed": len(self.outcomes) - self.failed,
            "failed": self.failed,
            "errors": [_error_json(e) for e in self.errors],
            "tests": [
                {
                    "name": o.test.name,
                    "where": o.test.where,
                    "passed": o.passed,
                    "problems": list(o.problems),
                    "error": o.error,
                    "decided_by": o.decided_by,
                    "decision": decision_summary(o.decision) if o.decision else None,
                }
                for o in self.outcomes
            ],
        }


def run_rule_tests(ctx: RulesContext) -> RuleTestReport:
    """Run every expectation in rules/tests/*.toml against the rules in `ctx.rules_dir`."""
    check = check_rules(ctx)
    if not check.ok or check.ruleset is None:
        return RuleTestReport(version=None, outcomes=(), errors=check.errors)
    ruleset = check.ruleset
    outcomes = []
    for test in check.rule_tests:
        try:
            _, decision = decide_message(test.raw, ctx, ruleset, mailbox=test.mailbox, case=test.case)
        except Exception as exc:  # one unreadable test mail must not hide the results of the others
            outcomes.append(RuleTestOutcome(test, (), None, None, error=f"{type(exc).__name__}: {exc}"))
            continue
        decided_by = deciding_rule(decision, ruleset)
        outcomes.append(RuleTestOutcome(test, unmet(test.expect, decision, decided_by), decision, decided_by))
    return RuleTestReport(version=ruleset.version, outcomes=tuple(outcomes))


def unmet(expect: Expectation, decision: Decision, decided_by: str) -> tuple[str, ...]:
    """Each expectation the decision does not meet, as 'what: expected X, got Y'."""
    actions = decision.actions
    got_template = decision.reply_template
    checks: list[tuple[str, Any, Any]] = [
        ("category", expect.category, actions.category),
        ("outcome", expect.outcome, decision.outcome.value),
        ("priority", expect.priority, actions.priority),
        ("queue", expect.queue, actions.queue),
        ("assignee", expect.assignee, actions.assignee),
        ("rule", expect.rule, decided_by),
        ("intent", expect.intent, decision.intent.value),
    ]
    problems = [
        f"{what}: expected {want}, got {got if got is not None else 'none'}"
        for what, want, got in checks
        if want is not None and want != got
    ]
    if expect.template is not None:
        want_template = expect.template or None
        if want_template != got_template:
            problems.append(
                f"template: expected {want_template or 'no reply'}, got {got_template or 'no reply'}"
            )
    if expect.reply is not None and expect.reply != (got_template is not None):
        problems.append(
            f"reply: expected {'a reply' if expect.reply else 'no reply'}, "
            f"got {'reply ' + got_template if got_template else 'no reply'}"
        )
    missing = [t for t in expect.tags if t not in actions.tags]
    if missing:
        problems.append(f"tags: expected {', '.join(missing)}, got {', '.join(actions.tags) or 'none'}")
    if expect.order_numbers is not None and tuple(expect.order_numbers) != decision.orders.numbers:
        problems.append(
            f"order_numbers: expected {', '.join(expect.order_numbers) or 'none'}, "
            f"got {', '.join(decision.orders.numbers) or 'none'}"
        )
    return tuple(problems)


# -- explain --------------------------------------------------------------------------------------


def explain_message(
    raw: bytes, ctx: RulesContext, ruleset: RuleSet, *, mailbox: str | None = None, case: str | None = None
) -> dict[str, Any]:
    """Everything about how one mail would be decided: the reading, the orders, every rule looked at."""
    reading = read(raw, identity=ctx.identity, config=ctx.config())
    box = mailbox or mailbox_of(reading, ctx) or ""
    decision = decide_reading(reading, ctx, ruleset, mailbox=box, case=case)
    mail = reading.mail
    summary = decision_summary(decision)
    summary["decided_by"] = deciding_rule(decision, ruleset)
    summary["mailbox"] = box
    summary["mail"] = {
        "subject": mail.subject,
        "from": mail.from_addr,
        "from_name": mail.from_name,
        "message_id": mail.message_id,
        "date": mail.date.isoformat() if mail.date else None,
        "defects": list(mail.defects),
    }
    summary["intent_score"] = round(reading.intent.score, 3)
    summary["intent_scores"] = {i.value: round(s, 3) for i, s in reading.intent.scores}
    return summary


# -- replay ---------------------------------------------------------------------------------------

#: The parts of a decision a replay compares, in the order a change is reported.
REPLAY_FIELDS = ("outcome", "category", "template", "priority", "queue", "assignee", "tags")


@dataclass(frozen=True)
class Snapshot:
    """The parts of one decision a replay compares."""

    outcome: str
    category: str
    template: str | None
    priority: str
    queue: str | None
    assignee: str | None
    tags: tuple[str, ...]
    decided_by: str

    @property
    def reply(self) -> bool:
        return self.template is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "category": self.category,
            "template": self.template,
            "reply": self.reply,
            "priority": self.priority,
            "queue": self.queue,
            "assignee": self.assignee,
            "tags": list(self.tags),
            "rule": self.decided_by,
        }


def snapshot(decision: Decision, ruleset: RuleSet) -> Snapshot:
    actions = decision.actions
    return Snapshot(
        outcome=decision.outcome.value,
        category=actions.category,
        template=decision.reply_template,
        priority=actions.priority,
        queue=actions.queue,
        assignee=actions.assignee,
        tags=actions.tags,
        decided_by=deciding_rule(decision, ruleset),
    )


@dataclass(frozen=True)
class ReplayRow:
    source: str  # file name, or "#<id>" for stored mail
    subject: str
    sender: str
    mailbox: str
    old: Snapshot | None
    new: Snapshot | None
    error: str | None = None
    mail_id: int | None = None  # stored mail only
    received: datetime | None = None  # stored mail only: when it was fetched
    stored: Snapshot | None = None  # stored mail only: the decision made when it arrived...
    stored_version: str = ""  # ... by this rules version

    @property
    def changed_fields(self) -> tuple[str, ...]:
        if self.old is None or self.new is None:
            return ()
        return tuple(f for f in REPLAY_FIELDS if getattr(self.old, f) != getattr(self.new, f))

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "mail_id": self.mail_id,
            "received": self.received.isoformat() if self.received else None,
            "subject": self.subject,
            "from": self.sender,
            "mailbox": self.mailbox,
            "changed": list(self.changed_fields),
            "old": self.old.as_json() if self.old else None,
            "new": self.new.as_json() if self.new else None,
            "stored": {**self.stored.as_json(), "version": self.stored_version} if self.stored else None,
            "error": self.error,
        }


@dataclass(frozen=True)
class ReplayReport:
    old_version: str
    new_version: str
    rows: tuple[ReplayRow, ...]
    skipped: int = 0  # stored mail the rules never decided (duplicates, mail that could not be processed)
    since: datetime | None = None  # stored mail only: the replay covers mail fetched since then
    draft_reading: bool = False  # the draft's lexicons or orders.toml differ, so mail was read again

    @property
    def changed(self) -> tuple[ReplayRow, ...]:
        return tuple(r for r in self.rows if r.changed_fields)

    @property
    def errors(self) -> tuple[ReplayRow, ...]:
        return tuple(r for r in self.rows if r.error is not None)

    def counts(self) -> dict[str, int]:
        """How many messages changed, and how many in each way."""
        counts: Counter[str] = Counter()
        for row in self.changed:
            assert row.old is not None and row.new is not None
            for name in row.changed_fields:
                counts[f"{name} changed"] += 1
            if row.new.reply and not row.old.reply:
                counts["reply gained"] += 1
            if row.old.reply and not row.new.reply:
                counts["reply lost"] += 1
        return {
            "messages": len(self.rows),
            "changed": len(self.changed),
            "unreadable": len(self.errors),
            "skipped": self.skipped,
            **dict(sorted(counts.items())),
        }

    def transitions(self) -> list[tuple[str, str, int]]:
        """(old category, new category, how many) for every category change, most frequent first."""
        moves = Counter(
            (r.old.category, r.new.category)
            for r in self.changed
            if r.old is not None and r.new is not None and r.old.category != r.new.category
        )
        return [
            (old, new, n) for (old, new), n in sorted(moves.items(), key=lambda item: (-item[1], item[0]))
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "since": self.since.isoformat() if self.since else None,
            "draft_reading": self.draft_reading,
            "counts": self.counts(),
            "category_moves": [{"from": o, "to": n, "messages": c} for o, n, c in self.transitions()],
            "changed": [r.as_json() for r in self.changed],
            "errors": [r.as_json() for r in self.errors],
        }


def replay_messages(
    messages: Sequence[tuple[str, bytes]],
    ctx: RulesContext,
    *,
    old: RuleSet,
    new: RuleSet,
    mailbox: str | None = None,
    new_config: ReadingConfig | None = None,
) -> ReplayReport:
    """Decide every message under both rule sets; the report lists what the new rules would change.

    The mailbox is `mailbox` when given, else the configured mailbox the message was delivered to.
    With `new_config` (a draft with its own lexicons) the mail is read again for the new rules.
    """
    rows = tuple(
        _replay_one(source, raw, ctx, old=old, new=new, mailbox=mailbox, new_config=new_config)
        for source, raw in messages
    )
    return ReplayReport(old.version, new.version, rows, draft_reading=new_config is not None)


def _replay_one(
    source: str,
    raw: bytes,
    ctx: RulesContext,
    *,
    old: RuleSet,
    new: RuleSet,
    mailbox: str | None,
    new_config: ReadingConfig | None,
    thread: Callable[[Reading], ThreadCandidates] = lambda _reading: ThreadCandidates(),
) -> ReplayRow:
    try:
        reading = read(raw, identity=ctx.identity, config=ctx.config())
        box = mailbox or mailbox_of(reading, ctx) or ""
        before = decide(reading, mailbox=box, ruleset=old, identity=ctx.identity, candidates=thread(reading))
        if new_config is not None:
            reading = read(raw, identity=ctx.identity, config=new_config)
        after = decide(reading, mailbox=box, ruleset=new, identity=ctx.identity, candidates=thread(reading))
    except Exception as exc:  # one unreadable mail must not stop the replay of the others
        return ReplayRow(source, "", "", mailbox or "", None, None, error=f"{type(exc).__name__}: {exc}")
    mail = reading.mail
    return ReplayRow(
        source, mail.subject, mail.from_addr or "", box, snapshot(before, old), snapshot(after, new)
    )


def replay_corpus(
    corpus_dir: Path, ctx: RulesContext, *, draft_dir: Path, mailbox: str | None = None
) -> ReplayReport:
    """Decide every .eml under `corpus_dir` with the running rules and with the draft rules in `draft_dir`.

    Raises RuleSetErrors when either rule set is invalid (a replay against a broken draft says
    nothing), and RuleFileError when the draft's own lexicons or orders.toml are.
    """
    old, new, new_config = _rule_sets(ctx, draft_dir)
    return replay_messages(
        corpus_messages(corpus_dir), ctx, old=old, new=new, mailbox=mailbox, new_config=new_config
    )


def replay_stored(
    engine: Engine,
    ctx: RulesContext,
    *,
    draft_dir: Path,
    since: datetime,
    mailbox: str | None = None,
) -> ReplayReport:
    """Decide the stored mail fetched since `since` (of one mailbox, if given) with both rule sets.

    Each mail is read from its stored bytes and decided for the mailbox it arrived in, in the thread
    recorded when it arrived. Threading is not up to the rules, and the store has moved on since:
    asked today, it would find the case a mail opened itself and put the mail into it, and closed
    cases would no longer be found. Either would show differences that no rule made. The reply
    guard's rate limits belong to the moment of arrival and are not replayed. Mail the rules never
    decided (duplicates, mail that could not be processed) is counted as skipped.
    """
    old, new, new_config = _rule_sets(ctx, draft_dir)
    rows: list[ReplayRow] = []
    skipped = 0
    with Session(engine) as session:
        mail_ids = repo.mail_ids_since(session, since, mailbox)
    for start in range(0, len(mail_ids), REPLAY_BATCH):
        for mail in _stored_batch(engine, mail_ids[start : start + REPLAY_BATCH]):
            if not mail.decision.get("trace"):
                skipped += 1
                continue
            row = _replay_one(
                f"#{mail.mail_id}",
                mail.raw,
                ctx,
                old=old,
                new=new,
                mailbox=mail.mailbox,
                new_config=new_config,
                thread=partial(recorded_thread, mail.decision.get("thread"), mail.case),
            )
            rows.append(
                replace(
                    row,
                    mail_id=mail.mail_id,
                    received=mail.received,
                    subject=row.subject or mail.subject,
                    sender=row.sender or mail.sender,
                    stored=stored_snapshot(mail.decision),
                    stored_version=mail.version,
                )
            )
    return ReplayReport(
        old.version,
        new.version,
        tuple(rows),
        skipped=skipped,
        since=since,
        draft_reading=new_config is not None,
    )


#: Stored mails loaded per read transaction. Deciding happens outside it: on SQLite a transaction
#: holds the database lock, and a long replay must not keep the worker from recording new mail.
REPLAY_BATCH = 20


@dataclass(frozen=True)
class _StoredMail:
    mail_id: int
    raw: bytes
    mailbox: str
    received: datetime
    subject: str
    sender: str
    decision: dict[str, Any]
    version: str
    case: CaseFacts | None  # the case the recorded thread names, as the store has it


def _stored_batch(engine: Engine, mail_ids: Sequence[int]) -> list[_StoredMail]:
    batch = []
    with Session(engine) as session:
        for mail_id in mail_ids:
            record = repo.mail_by_id(session, mail_id)
            if record is None:
                continue
            decision = dict(record.decision)
            thread = decision.get("thread")
            ref = thread.get("case") if isinstance(thread, dict) else None
            case = repo.case_by_ref(session, str(ref)) if ref else None
            batch.append(
                _StoredMail(
                    mail_id=mail_id,
                    raw=record.raw,
                    mailbox=record.mailbox,
                    received=record.fetched_at,
                    subject=record.subject,
                    sender=record.from_addr or "",
                    decision=decision,
                    version=record.ruleset_version,
                    case=repo.case_facts(session, case) if case else None,
                )
            )
    return batch


def recorded_thread(thread: Any, case: CaseFacts | None, reading: Reading) -> ThreadCandidates:
    """Candidates that lead the core to the thread recorded in a stored decision, and to no other.

    `thread` is the stored decision's thread; `case` the store's facts of the case it names, if any.
    """
    if not isinstance(thread, dict) or not thread.get("case"):
        return ThreadCandidates()
    facts = CaseFacts(
        ref=str(thread["case"]),
        buyer=case.buyer if case else (reading.mail.from_addr or "").lower(),
        status="open",  # it was open enough to join then, whatever it is now
        orders=case.orders if case else reading.orders.numbers,
        mailbox=case.mailbox if case else "",
    )
    how = thread.get("how")
    if how == "subject-ref":
        return ThreadCandidates(by_ref=(facts,))
    if how == "order-number":
        return ThreadCandidates(by_order=(facts,))
    return ThreadCandidates(by_message_id=facts)


def _rule_sets(ctx: RulesContext, draft_dir: Path) -> tuple[RuleSet, RuleSet, ReadingConfig | None]:
    """The rules in charge, the draft, and the draft's reading configuration when it has its own."""
    known: dict[str, Any] = {"known_templates": ctx.known_templates, "known_mailboxes": ctx.known_mailboxes}
    old = load_ruleset(ctx.rules_dir, **known)
    new = load_ruleset(draft_dir, **known)
    draft_files = reading_files(draft_dir)
    if not draft_files or draft_files == reading_files(ctx.rules_dir):
        return old, new, None
    return old, new, load_reading_config(draft_dir)


# -- statistics -----------------------------------------------------------------------------------

#: The step `decide` adds after the rules when it holds a reply back; it is not a rule.
REPLY_GUARD_STEP = "reply guard"
AUTOMATION_STEP_PREFIX = "automation: "


def stored_deciding_rule(decision: Mapping[str, Any]) -> str | None:
    """The rule that decided a stored decision (DEFAULT_RULE when none did); None if the rules never ran.

    The engine stops at the deciding rule, or ends with a DEFAULT_RULE step, so it is the last hit
    of the trace, before anything `decide` added after the rules.
    """
    for step in reversed(decision.get("trace") or ()):
        if step.get("hit") and _is_rule_step(step):
            return str(step["rule"])
    return None


def stored_snapshot(decision: Mapping[str, Any]) -> Snapshot:
    """The parts a replay compares, of a decision as the ledger keeps it (`decision_summary`)."""
    return Snapshot(
        outcome=str(decision.get("outcome", "")),
        category=str(decision.get("category", "")),
        template=decision.get("template"),
        priority=str(decision.get("priority", "")),
        queue=decision.get("queue"),
        assignee=decision.get("assignee"),
        tags=tuple(decision.get("tags") or ()),
        decided_by=stored_deciding_rule(decision) or "",
    )


def stored_matched_rules(decision: Mapping[str, Any]) -> list[str]:
    """Every rule that hit, including those that `continue` (they never decide, but they act).

    DEFAULT_RULE is among them when no rule decided, so its matched count equals its decided count.
    """
    return [
        str(step["rule"])
        for step in decision.get("trace") or ()
        if step.get("hit") and _is_rule_step(step)
    ]


def _is_rule_step(step: Mapping[str, Any]) -> bool:
    """A step of the routing rules, not of the automation chain or the reply guard around them."""
    rule = str(step.get("rule") or "")
    return rule != REPLY_GUARD_STEP and not rule.startswith(AUTOMATION_STEP_PREFIX)


@dataclass(frozen=True)
class RuleCount:
    rule: str
    decided_day: int
    decided_week: int
    matched_day: int
    matched_week: int
    in_rules: bool  # the rule is in the rules in charge (False: only older versions had it)

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "decided": {"day": self.decided_day, "week": self.decided_week},
            "matched": {"day": self.matched_day, "week": self.matched_week},
            "in_rules": self.in_rules,
        }


@dataclass(frozen=True)
class StoredMail:
    mail_id: int
    received: datetime
    mailbox: str
    sender: str
    subject: str
    category: str

    def as_json(self) -> dict[str, Any]:
        return {
            "mail_id": self.mail_id,
            "received": self.received.isoformat(),
            "mailbox": self.mailbox,
            "from": self.sender,
            "subject": self.subject,
            "category": self.category,
        }


@dataclass(frozen=True)
class RuleStats:
    version: str  # the rules in charge, whose rules are listed even when nothing hit them
    now: datetime
    decided_day: int  # mail the rules decided in the last 24 hours
    decided_week: int  # ... in the last 7 days
    skipped_week: int  # mail of the last 7 days the rules never saw (duplicates, processing failures)
    rules: tuple[RuleCount, ...]  # rules in charge in file order, then DEFAULT_RULE, then retired rules
    unmatched: tuple[StoredMail, ...]  # the newest mail of the week no rule decided, newest first
    unmatched_week: int
    versions: tuple[tuple[str, int], ...]  # (rules version, decisions in the week), most used first

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "now": self.now.isoformat(),
            "decided": {"day": self.decided_day, "week": self.decided_week},
            "skipped_week": self.skipped_week,
            "rules": [r.as_json() for r in self.rules],
            "unmatched_week": self.unmatched_week,
            "unmatched": [m.as_json() for m in self.unmatched],
            "versions": [{"version": v, "decisions": n} for v, n in self.versions],
        }


def rule_stats(engine: Engine, ruleset: RuleSet, *, now: datetime, limit: int = 50) -> RuleStats:
    """Which rules decided and matched the stored mail of the last day and week, and what no rule decided."""
    day, week = now - timedelta(days=1), now - timedelta(days=7)
    with Session(engine) as session:
        rows = repo.decided_mail_since(session, week)
    decided: dict[str, Counter[str]] = {"day": Counter(), "week": Counter()}
    matched: dict[str, Counter[str]] = {"day": Counter(), "week": Counter()}
    versions: Counter[str] = Counter()
    unmatched: list[StoredMail] = []
    skipped = 0
    for mail_id, received, mailbox, sender, subject, decision in rows:
        rule = stored_deciding_rule(decision)
        if rule is None:
            skipped += 1
            continue
        windows = ("day", "week") if received >= day else ("week",)
        for window in windows:
            decided[window][rule] += 1
            matched[window].update(set(stored_matched_rules(decision)))
        versions[str(decision.get("ruleset_version") or "?")] += 1
        if rule == DEFAULT_RULE:
            category = str(decision.get("category") or "")
            unmatched.append(StoredMail(mail_id, received, mailbox, sender or "", subject, category))
    current = [r.name for r in ruleset.rules]
    retired = sorted((set(decided["week"]) | set(matched["week"])) - {*current, DEFAULT_RULE})
    counts = tuple(
        RuleCount(
            name,
            decided["day"][name],
            decided["week"][name],
            matched["day"][name],
            matched["week"][name],
            in_rules=name in current,
        )
        for name in (*current, DEFAULT_RULE, *retired)
    )
    newest = sorted(unmatched, key=lambda m: (m.received, m.mail_id), reverse=True)
    return RuleStats(
        version=ruleset.version,
        now=now,
        decided_day=sum(decided["day"].values()),
        decided_week=sum(decided["week"].values()),
        skipped_week=skipped,
        rules=counts,
        unmatched=tuple(newest[:limit]),
        unmatched_week=len(unmatched),
        versions=tuple(sorted(versions.items(), key=lambda item: (-item[1], item[0]))),
    )


# -- hot reload -----------------------------------------------------------------------------------

#: The status file's name inside the data folder (see RulesStatusFile).
RULES_STATUS_FILE = "rules-status.json"


@dataclass(frozen=True)
class RulesStatus:
    """What health shows about the rules: the set in charge and, if any, why a change was refused."""

    version: str
    rules: int
    loaded_at: datetime
    error: str | None = None
    error_since: datetime | None = None
    rules_dir: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "version": self.version,
            "rules": self.rules,
            "loaded_at": self.loaded_at.isoformat(),
            "error": self.error,
            "error_since": self.error_since.isoformat() if self.error_since else None,
            "rules_dir": self.rules_dir,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RulesStatus:
        since = data.get("error_since")
        return cls(
            version=str(data["version"]),
            rules=int(data["rules"]),
            loaded_at=datetime.fromisoformat(data["loaded_at"]),
            error=data.get("error"),
            error_since=datetime.fromisoformat(since) if since else None,
            rules_dir=str(data.get("rules_dir") or ""),
        )


class RulesStatusFile:
    """The watcher's status kept in a small JSON file, for `mailbot rules status` in another process.

    A command cannot see the worker's memory. The worker hands `write` to its watcher as `on_change`;
    the file is replaced atomically, so a reader sees the previous status or the next, never half.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> RulesStatusFile:
        return cls(Path(data_dir) / RULES_STATUS_FILE)

    def write(self, status: RulesStatus) -> None:
        data = json.dumps(status.as_json(), ensure_ascii=False, indent=2) + "\n"
        write_atomically(self.path, data.encode("utf-8"))

    def read(self) -> RulesStatus | None:
        """The last status written; None when no worker has written one. ValueError if it is damaged."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return RulesStatus.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{self.path} is not a rules status file ({type(exc).__name__}: {exc})"
            ) from None


class RulesWatcher:
    """The rule set the worker uses, re-read whenever the rule files change (no restart needed).

    The rule files are the routing files and the reading files (orders.toml and the lexicons, which
    decide the intent and the order numbers the rules see); `reading()` gives the latter's config.
    `current()` compares the files' content hash with the set in charge, so saving a file is enough.
    A change that does not pass the checks is refused: the error is logged once and kept for health,
    and the last good set stays in charge until the files are fixed. The first load has no good set
    to fall back on, so an invalid rule set at start-up raises RuleSetErrors.

    `on_change(status)` is told the status at start-up and whenever it changes (a new set in charge,
    a refused change, the files back to the set in charge). It runs with the watcher's lock held, in
    whichever thread noticed the change, possibly inside an ingest transaction: it must be quick and
    must not write to the database. Its failure is logged and does not stop the rules from working.
    """

    def __init__(
        self,
        rules_dir: Path,
        *,
        known_templates: TemplateNames = None,
        known_mailboxes: frozenset[str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[RulesStatus], None] | None = None,
    ) -> None:
        self.rules_dir = Path(rules_dir)
        self._templates = known_templates
        self._mailboxes = known_mailboxes
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._ruleset, self._reading = self._load()
        self._loaded_at = clock()
        self._error: str | None = None
        self._error_since: datetime | None = None
        self._refused: tuple[str | None, frozenset[str] | None] | None = None
        log.info("rules loaded: version %s, %d rules", self._ruleset.short_version, len(self._ruleset.rules))
        with self._lock:
            self._announce()

    def current(self) -> RuleSet:
        """The rule set to decide with now; picks up a valid change to the files first."""
        with self._lock:
            if self._refresh():
                self._announce()
            return self._ruleset

    def reading(self) -> ReadingConfig:
        """How to read mail (lexicons, order format) under the rules in charge; re-read like them."""
        with self._lock:
            if self._refresh():
                self._announce()
            if self._reading is None:
                raise RuleSetErrors(
                    [RuleFileError(str(self.rules_dir / "lexicons"), None, None, "no lexicon files found")]
                )
            return self._reading

    def status(self) -> RulesStatus:
        with self._lock:
            return self._status()

    def _status(self) -> RulesStatus:
        return RulesStatus(
            self._ruleset.version,
            len(self._ruleset.rules),
            self._loaded_at,
            self._error,
            self._error_since,
            str(self.rules_dir),
        )

    def _announce(self) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(self._status())
        except Exception:  # health reporting must never stop the rules from being used
            log.exception("rules: could not record the rules status")

    def _known_templates(self) -> frozenset[str] | None:
        return self._templates() if callable(self._templates) else self._templates

    def _load(self) -> tuple[RuleSet, ReadingConfig | None]:
        ruleset = load_ruleset(
            self.rules_dir, known_templates=self._known_templates(), known_mailboxes=self._mailboxes
        )
        if not (self.rules_dir / "lexicons").is_dir():
            return ruleset, None  # a folder of routing files only (a draft being checked)
        try:
            return ruleset, load_reading_config(self.rules_dir)
        except RuleFileError as error:
            raise RuleSetErrors([error]) from None

    def _refresh(self) -> bool:
        """Take a valid change, or note a refused one; True when the status changed."""
        version = routing_version(self.rules_dir)
        if version == self._ruleset.version:
            if self._error is None:
                return False
            log.info(
                "rules: the files are back to version %s; nothing to change", self._ruleset.short_version
            )
            self._error = self._error_since = None
            self._refused = None
            return True
        # Retry a refused change only when something that could fix it has changed.
        attempt = (version, self._known_templates())
        if attempt == self._refused:
            return False
        try:
            ruleset, reading = self._load()
        except RuleSetErrors as problems:
            self._refused = attempt
            if self._error is None:
                self._error_since = self._clock()
            self._error = str(problems)
            log.error(
                "rules in %s were changed but are invalid; still using version %s:\n%s",
                self.rules_dir,
                self._ruleset.short_version,
                problems,
            )
            return True
        log.info(
            "rules reloaded: version %s -> %s, %d rules",
            self._ruleset.short_version,
            ruleset.short_version,
            len(ruleset.rules),
        )
        self._ruleset, self._reading = ruleset, reading
        self._loaded_at = self._clock()
        self._error = self._error_since = None
        self._refused = None
        return True

"""Replay: decide stored or corpus mail with the rules in charge and with a draft, and report what the
draft would change. Also the readers of stored decisions that replay and statistics share.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.rulefiles import (
    corpus_messages,
    reading_files,
)
from mailbot.adapters.templates import read_template_files
from mailbot.core.decide import decide
from mailbot.core.reading import ReadingConfig, read
from mailbot.core.rules.schema import RuleSet
from mailbot.core.types import CaseFacts, Decision, Reading, ThreadCandidates
from mailbot.services.progress import Progress, Steps
from mailbot.services.rules_deciding import RulesContext, mailbox_of
from mailbot.services.template_check import load_rules_and_templates
from mailbot.store import repo

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


def snapshot(decision: Decision) -> Snapshot:
    actions = decision.actions
    return Snapshot(
        outcome=decision.outcome.value,
        category=actions.category,
        template=decision.reply_template,
        priority=actions.priority,
        queue=actions.queue,
        assignee=actions.assignee,
        tags=actions.tags,
        decided_by=decision.decided_by,
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
    progress: Progress | None = None,
) -> ReplayReport:
    """Decide every message under both rule sets; the report lists what the new rules would change.

    The mailbox is `mailbox` when given, else the configured mailbox the message was delivered to.
    With `new_config` (a draft with its own lexicons) the mail is read again for the new rules.
    `progress` hears (done, total) after each message.
    """
    steps = Steps(progress, len(messages))
    rows = []
    for source, raw in messages:
        rows.append(_replay_one(source, raw, ctx, old=old, new=new, mailbox=mailbox, new_config=new_config))
        steps.advance()
    return ReplayReport(old.version, new.version, tuple(rows), draft_reading=new_config is not None)


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
    return ReplayRow(source, mail.subject, mail.from_addr or "", box, snapshot(before), snapshot(after))


def replay_corpus(
    corpus_dir: Path,
    ctx: RulesContext,
    *,
    draft_dir: Path,
    mailbox: str | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Decide every .eml under `corpus_dir` with the running rules and with the draft rules in `draft_dir`.

    Raises RuleSetErrors when either rule set is invalid (a replay against a broken draft says
    nothing), and RuleFileError when the draft's own lexicons or orders.toml are.
    """
    old, new, new_config = _rule_sets(ctx, draft_dir)
    return replay_messages(
        corpus_messages(corpus_dir),
        ctx,
        old=old,
        new=new,
        mailbox=mailbox,
        new_config=new_config,
        progress=progress,
    )


def replay_stored(
    engine: Engine,
    ctx: RulesContext,
    *,
    draft_dir: Path,
    since: datetime,
    mailbox: str | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Decide the stored mail fetched since `since` (of one mailbox, if given) with both rule sets.

    Each mail is read from its stored bytes and decided for the mailbox it arrived in, in the thread
    recorded when it arrived. Threading is not up to the rules, and the store has moved on since:
    asked today, it would find the case a mail opened itself and put the mail into it, and closed
    cases would no longer be found. Either would show differences that no rule made. The reply
    guard's rate limits belong to the moment of arrival and are not replayed. Mail the rules never
    decided (duplicates, mail that could not be processed) is counted as skipped. `progress` hears
    (done, total) after each stored batch.
    """
    old, new, new_config = _rule_sets(ctx, draft_dir)
    rows: list[ReplayRow] = []
    skipped = 0
    with Session(engine) as session:
        mail_ids = repo.mail_ids_since(session, since, mailbox)
    steps = Steps(progress, len(mail_ids))
    for start in range(0, len(mail_ids), REPLAY_BATCH):
        batch_ids = mail_ids[start : start + REPLAY_BATCH]
        for mail in _stored_batch(engine, batch_ids):
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
        steps.advance(len(batch_ids))
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
    """The rules in charge, the draft, and the draft's reading configuration when it has its own.

    Both are versioned with the templates in `ctx.templates_dir` (a draft changes rules, not the
    templates), so the versions shown are those the worker records.
    """
    files = read_template_files(ctx.templates_dir) if ctx.templates_dir is not None else None
    known: dict[str, Any] = {"known_templates": ctx.known_templates, "known_mailboxes": ctx.known_mailboxes}
    old = load_rules_and_templates(ctx.rules_dir, files, **known)
    new = load_rules_and_templates(draft_dir, files, **known)
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
    of the trace, before anything `decide` added after the rules. Decisions stored since the
    Decision carried its rule name it directly; the trace is read only for older ledger rows.
    """
    if decision.get("decided_by"):
        return str(decision["decided_by"])
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

"""Supervisors' use cases for routing rules: check, test, explain, replay, statistics, and the watcher.

Every command decides mail with exactly the code the worker runs (`read` then `decide`), so what a
supervisor sees in `rules test`, `rules explain` or `rules replay` is what the worker would do.
Replay and statistics also work on the stored mail and decisions of the ledger.
The `RulesWatcher` gives the worker the rule set to use and swaps in a changed one only when it is
valid; an invalid change is logged, shown in health (and in `RulesStatusFile` for other processes),
and the last good set stays in charge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.rulefiles import (
    load_rule_tests,
    routing_files,
)
from mailbot.adapters.templates import TemplateStore, read_template_files
from mailbot.core.decide import decision_summary
from mailbot.core.errors import RuleFileError
from mailbot.core.reading import read
from mailbot.core.rules.engine import DEFAULT_RULE
from mailbot.core.rules.expectations import Expectation, RuleTest
from mailbot.core.rules.predicates import suggestion
from mailbot.core.rules.schema import RuleSet, RuleSetErrors
from mailbot.core.types import Decision
from mailbot.services.rules_deciding import (
    RulesContext,
    decide_message,
    decide_reading,
    mailbox_of,
)
from mailbot.services.rules_replay import (
    REPLAY_BATCH,
    REPLAY_FIELDS,
    REPLY_GUARD_STEP,
    ReplayReport,
    ReplayRow,
    Snapshot,
    recorded_thread,
    replay_corpus,
    replay_messages,
    replay_stored,
    snapshot,
    stored_deciding_rule,
    stored_matched_rules,
    stored_snapshot,
)
from mailbot.services.rules_stats import RuleCount, RuleStats, StoredMail, rule_stats
from mailbot.services.rules_watch import (
    RULES_STATUS_FILE,
    RulesStatus,
    RulesStatusFile,
    RulesWatcher,
    TemplateNames,
)
from mailbot.services.template_check import load_rules_and_templates, macro_errors, template_errors

#: The whole supervisor API, in one place for the entry points (the parts live in rules_*.py).
__all__ = [
    "REPLAY_BATCH",
    "REPLAY_FIELDS",
    "REPLY_GUARD_STEP",
    "RULES_STATUS_FILE",
    "CheckReport",
    "ReplayReport",
    "ReplayRow",
    "RuleCount",
    "RuleStats",
    "RuleTestOutcome",
    "RuleTestReport",
    "RulesContext",
    "RulesStatus",
    "RulesStatusFile",
    "RulesWatcher",
    "Snapshot",
    "StoredMail",
    "TemplateNames",
    "check_rules",
    "decide_message",
    "decide_reading",
    "explain_message",
    "mailbox_of",
    "recorded_thread",
    "replay_corpus",
    "replay_messages",
    "replay_stored",
    "rule_stats",
    "run_rule_tests",
    "snapshot",
    "stored_deciding_rule",
    "stored_matched_rules",
    "stored_snapshot",
    "unmet",
]


# -- check ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckReport:
    files: tuple[str, ...]
    ruleset: RuleSet | None
    rule_tests: tuple[RuleTest, ...]
    errors: tuple[RuleFileError, ...]
    templates: tuple[str, ...] = ()  # the template files checked with the rules (relative to their folder)
    template_languages: tuple[str, ...] = ()

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
            "templates": list(self.templates),
            "errors": [_error_json(e) for e in self.errors],
        }


def check_rules(ctx: RulesContext) -> CheckReport:
    """Load and check the routing files, the reading files (lexicons, orders.toml), the rule tests and,
    with `ctx.templates_dir`, the reply templates (as the worker checks them before using them).

    Every mistake in the routing files, the rule tests and the templates is listed; the reading
    files stop at their first mistake (their loader reads them one after the other).
    """
    errors: list[RuleFileError] = []
    ruleset: RuleSet | None = None
    tests: list[RuleTest] = []
    files = read_template_files(ctx.templates_dir) if ctx.templates_dir is not None else None
    store = TemplateStore.pinned(files) if files is not None else None
    known = (
        store.names()
        if store is not None and files is not None and not files.missing
        else ctx.known_templates
    )
    try:
        ruleset = load_rules_and_templates(
            ctx.rules_dir, files, known_templates=known, known_mailboxes=ctx.known_mailboxes
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
    if store is not None:
        errors.extend(template_errors(store))
        errors.extend(macro_errors(store))
    return CheckReport(
        files=tuple(str(p) for p in routing_files(ctx.rules_dir)) if ctx.rules_dir.is_dir() else (),
        ruleset=ruleset,
        rule_tests=tuple(tests),
        errors=tuple(errors),
        templates=tuple(sorted([*files.texts, *files.refused])) if files is not None else (),
        template_languages=tuple(sorted(store.languages())) if store is not None else (),
    )


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
        decided_by = decision.decided_by
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

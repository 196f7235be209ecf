"""Statistics: which rules decided and matched the stored mail of the last day and week, and what no
rule decided.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailbot.core.rules.engine import DEFAULT_RULE
from mailbot.core.rules.schema import RuleSet
from mailbot.services.rules_replay import stored_deciding_rule, stored_matched_rules
from mailbot.store import repo


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

"""Evaluate a rule set against the facts of one message: the route, and the trace that explains it.

Rules are tried in order. The first rule that matches decides, unless it says `continue`: then its
actions are taken and the rules below it are tried too. When several matching rules set the same
action, the first one to set it wins (as "first match wins" suggests); tags add up. When no rule
decides, the message is filed under the category `unrouted` with no reply, and the trace says so.

Evaluation is total: a condition that fails with an error counts as a miss, with the error in the
trace, so a surprising message can never stop routing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailbot.core.rules.predicates import RuleFacts, Verdict
from mailbot.core.rules.schema import Condition, Rule, RuleActions, RuleSet
from mailbot.core.types import RouteActions, TraceStep

__all__ = ["DEFAULT_CATEGORY", "DEFAULT_RULE", "RouteResult", "RuleFacts", "evaluate"]

DEFAULT_CATEGORY = "unrouted"
#: The trace step written when no rule decided; rule statistics count these as unmatched mail.
DEFAULT_RULE = "(no rule decided)"

# Single-valued actions in the order the trace lists them.
_SLOTS = ("category", "priority", "queue", "assignee", "reply", "ignore", "quarantine")


@dataclass(frozen=True)
class RouteResult:
    actions: RouteActions
    trace: tuple[TraceStep, ...]
    matched: tuple[str, ...]  # every rule that hit, in order
    decided_by: str | None  # the rule that ended evaluation; None when the default applied


def evaluate(ruleset: RuleSet, facts: RuleFacts) -> RouteResult:
    """Route one message. Never raises."""
    chosen: dict[str, Any] = {}
    owner: dict[str, str] = {}
    tags: list[str] = []
    trace: list[TraceStep] = []
    matched: list[str] = []
    decided_by: str | None = None
    for rule in ruleset.rules:
        if not rule.enabled:
            trace.append(TraceStep(rule.name, False, "switched off (enabled = false)"))
            continue
        when = rule.when
        if len(when) == 1 and not rule.unless:
            # The usual rule, one condition, inlined: with a thousand rules the calls add up.
            condition = when[0]
            try:
                verdict = condition.check(facts)
            except Exception as exc:
                verdict = _failed(condition, exc)
            if not verdict.hit:
                step = rule.miss_steps.get(verdict.why)
                trace.append(step if step is not None else _miss_step(rule, verdict.why))
                continue
            hit, why = True, verdict.why
        else:
            hit, why = _match(rule, facts)
        if not hit:
            trace.append(_miss_step(rule, why))
            continue
        matched.append(rule.name)
        taken = _take(rule, chosen, owner, tags)
        ending = "; continues with the rules below" if rule.continues else ""
        trace.append(TraceStep(rule.name, True, f"{why} → {taken}{ending}"))
        if not rule.continues:
            decided_by = rule.name
            break
    if decided_by is None:
        trace.append(TraceStep(DEFAULT_RULE, True, _default_why(chosen, matched)))
    reply = chosen.get("reply")
    return RouteResult(
        actions=RouteActions(
            category=chosen.get("category", DEFAULT_CATEGORY),
            template=reply if isinstance(reply, str) else None,
            ignore_reason=chosen.get("ignore"),
            quarantine_reason=chosen.get("quarantine"),
            priority=chosen.get("priority", "normal"),
            queue=chosen.get("queue"),
            assignee=chosen.get("assignee"),
            tags=tuple(tags),
        ),
        trace=tuple(trace),
        matched=tuple(matched),
        decided_by=decided_by,
    )


def _match(rule: Rule, facts: RuleFacts) -> tuple[bool, str]:
    """All `when` conditions hold and no `unless` condition does; the reasons either way."""
    held: list[str] = []
    failed: list[str] = []
    for condition in rule.when:
        verdict = _check(condition, facts)
        (held if verdict.hit else failed).append(verdict.why)
    for condition in rule.unless:
        verdict = _check(condition, facts)
        if verdict.hit:
            failed.append(f"unless: {verdict.why}")
        else:
            held.append(verdict.why)
    if failed:
        return False, "; ".join(failed)
    return True, "; ".join(held) if held else "no conditions: matches every message"


# At most this many distinct misses are kept per rule: a miss that quotes the mail differs each time.
_MISS_STEPS_KEPT = 16


def _miss_step(rule: Rule, why: str) -> TraceStep:
    step = rule.miss_steps.get(why)
    if step is None:
        step = TraceStep(rule.name, False, why)
        if len(rule.miss_steps) < _MISS_STEPS_KEPT:
            rule.miss_steps[why] = step
    return step


def _check(condition: Condition, facts: RuleFacts) -> Verdict:
    try:
        return condition.check(facts)
    except Exception as exc:  # a condition must never stop routing: count it as a miss and say why
        return _failed(condition, exc)


def _failed(condition: Condition, exc: Exception) -> Verdict:
    return Verdict(False, f"{condition.predicate} could not be checked ({type(exc).__name__}: {exc})")


def _take(rule: Rule, chosen: dict[str, Any], owner: dict[str, str], tags: list[str]) -> str:
    """Apply a hit rule's actions where no earlier rule has set them; describe what happened."""
    said = _said(rule.actions)
    taken: list[str] = []
    kept: list[str] = []
    for slot in _SLOTS:
        if slot not in said:
            continue
        if slot in chosen:
            kept.append(f"{slot} stays {_shown(slot, chosen[slot])} from rule '{owner[slot]}'")
            continue
        chosen[slot] = said[slot]
        owner[slot] = rule.name
        taken.append(_shown(slot, said[slot], verb=True))
    new_tags = [t for t in rule.actions.tags if t not in tags]
    tags.extend(new_tags)
    if new_tags:
        taken.append("tags " + ", ".join(new_tags))
    text = ", ".join(taken) if taken else "nothing new"
    return text + (f" ({'; '.join(kept)})" if kept else "")


def _said(actions: RuleActions) -> dict[str, Any]:
    said: dict[str, Any] = {
        slot: getattr(actions, slot)
        for slot in ("category", "priority", "queue", "assignee", "ignore", "quarantine")
        if getattr(actions, slot) is not None
    }
    if actions.reply is not None:
        said["reply"] = actions.reply
    elif actions.no_reply:
        said["reply"] = False
    return said


def _shown(slot: str, value: Any, *, verb: bool = False) -> str:
    if slot == "reply":
        return ("reply " + value if verb else value) if isinstance(value, str) else "no reply"
    if slot in ("ignore", "quarantine"):
        return f"{slot}: {value}" if verb else value
    return f"{slot} {value}" if verb else str(value)


def _default_why(chosen: dict[str, Any], matched: list[str]) -> str:
    parts = []
    if "category" not in chosen:
        parts.append(f"category {DEFAULT_CATEGORY}")
    if "reply" not in chosen:
        parts.append("no reply")
    head = "no rule decided this message"
    if matched:
        head += " (only rules that continue matched: " + ", ".join(matched) + ")"
    return head + (": " + ", ".join(parts) if parts else "")

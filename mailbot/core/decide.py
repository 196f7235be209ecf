"""Decide, then act: one Reading plus what the store knows becomes one Decision, with its reasons.

This is the only place the separate judgements meet: threading (conversation), routing (the
supervisors' rules) and the reply guard (replies). Nothing here touches the store or the network,
so `mailbot eval` and `mailbot rules replay` run exactly the same code as the worker.
"""

from __future__ import annotations

from typing import Any

from mailbot.core.automation import TRACE_PREFIX
from mailbot.core.conversation import choose_thread
from mailbot.core.replies import ReplyLimits, reply_blocker, reply_recipient
from mailbot.core.rules.engine import DEFAULT_RULE, RuleFacts, evaluate
from mailbot.core.rules.schema import RuleSet
from mailbot.core.types import (
    AutomationKind,
    Decision,
    Identity,
    Outcome,
    Reading,
    SenderHistory,
    ThreadCandidates,
    ThreadMatch,
    TraceStep,
)


def decide(
    reading: Reading,
    *,
    mailbox: str,
    ruleset: RuleSet,
    identity: Identity,
    candidates: ThreadCandidates | None = None,
    history: SenderHistory | None = None,
    limits: ReplyLimits | None = None,
) -> Decision:
    mail = reading.mail
    thread = choose_thread(
        reading.thread_keys, candidates or ThreadCandidates(), mail.from_addr, reading.orders.numbers
    )
    thread = _bounce_thread(reading, candidates or ThreadCandidates(), thread)
    routed = evaluate(ruleset, RuleFacts(reading=reading, mailbox=mailbox, thread=thread))
    actions = routed.actions
    # The automation chain first (its checks are named "automation: …"), then the rules.
    trace = [*reading.automation.trace, *routed.trace]

    if actions.quarantine_reason:
        outcome, reason = Outcome.QUARANTINED, actions.quarantine_reason
    elif actions.ignore_reason:
        outcome, reason = Outcome.IGNORED, actions.ignore_reason
    elif mail.from_addr is None and not reading.automation.is_machine and thread.case_ref is None:
        outcome, reason = Outcome.QUARANTINED, "no usable sender address"
    else:
        outcome = Outcome.ROUTED
        reason = f"category {actions.category}" + (f" on case {thread.case_ref}" if thread.case_ref else "")

    template = actions.template if outcome is Outcome.ROUTED else None
    block = None
    if template is not None:
        block = reply_blocker(
            mail, history or SenderHistory(), limits or ReplyLimits(), identity, reading.automation.is_machine
        )
        if block is not None:
            trace.append(TraceStep(rule="reply guard", hit=True, why=f"no reply: {block.why}"))
            template = None
        else:
            recipient = reply_recipient(mail, identity)
            trace.append(
                TraceStep(
                    rule="reply guard", hit=False, why=f"reply to {recipient.address} ({recipient.why})"
                )
            )
    return Decision(
        outcome=outcome,
        reason=reason,
        intent=reading.intent.intent,
        language=reading.language,
        orders=reading.orders,
        automation=reading.automation,
        thread=thread,
        actions=actions,
        reply_template=template,
        trace=tuple(trace),
        ruleset_version=ruleset.version,
        notes=reading.intent.reasons,
        reply_block=block,
        decided_by=routed.decided_by or DEFAULT_RULE,
    )


def _bounce_thread(reading: Reading, candidates: ThreadCandidates, thread: ThreadMatch) -> ThreadMatch:
    """A bounce that names a case reference (in the returned subject) lands on that case.

    Threading by reference needs the case's own buyer as sender, and a bounce comes from a mail
    system; but a bounce is never answered, so attaching it cannot aim anything at anyone. It only
    tells staff that the buyer did not get our reply.
    """
    if thread.case_ref is not None or reading.automation.kind is not AutomationKind.BOUNCE:
        return thread
    if not candidates.by_ref:
        return thread
    case = candidates.by_ref[0]
    return ThreadMatch(case.ref, "bounce", f"a bounce naming case reference {case.ref}")


def _stored_trace(trace: tuple[TraceStep, ...]) -> list[dict[str, Any]]:
    """The trace as stored: the automation chain's misses folded into one step naming them all.

    Every mail misses most of the twenty checks; one line per miss would double the size of every
    stored decision for nothing staff need spelled out (`rules explain` shows them in full).
    """
    stored: list[dict[str, Any]] = []
    misses: list[str] = []
    for step in trace:
        if step.rule.startswith(TRACE_PREFIX) and not step.hit:
            misses.append(step.rule.removeprefix(TRACE_PREFIX))
            continue
        if misses:
            stored.append(
                {"rule": TRACE_PREFIX + "no sign", "hit": False, "why": "checked: " + ", ".join(misses)}
            )
            misses = []
        stored.append({"rule": step.rule, "hit": step.hit, "why": step.why})
    return stored


def decision_summary(decision: Decision) -> dict[str, Any]:
    """The decision as plain JSON data: stored with the mail, shown to staff, compared in replays."""
    return {
        "outcome": decision.outcome.value,
        "reason": decision.reason,
        "intent": decision.intent.value,
        "intent_reasons": list(decision.notes),
        "language": decision.language,
        "category": decision.actions.category,
        "template": decision.reply_template,
        "reply": decision.reply_template is not None,
        "priority": decision.actions.priority,
        "queue": decision.actions.queue,
        "assignee": decision.actions.assignee,
        "tags": list(decision.actions.tags),
        "automation": {"kind": decision.automation.kind.value, "reason": decision.automation.reason},
        "reply_block": (
            {"guard": decision.reply_block.guard, "why": decision.reply_block.why}
            if decision.reply_block
            else None
        ),
        "thread": {
            "case": decision.thread.case_ref,
            "how": decision.thread.how,
            "reason": decision.thread.reason,
        },
        "orders": [
            {"number": o.number, "score": round(o.score, 3), "source": o.source, "reasons": list(o.reasons)}
            for o in decision.orders.orders
        ],
        "rejected_numbers": [
            {"text": r.text, "source": r.source, "reason": r.reason} for r in decision.orders.rejected
        ],
        "decided_by": decision.decided_by,
        "trace": _stored_trace(decision.trace),
        "ruleset_version": decision.ruleset_version,
    }

"""Everything the core reads out of one raw message, before any rule or store lookup.

parse → attachment texts (when the reading config reads attachments) → automation → thread keys →
orders → language → intent, each stage seeing what the earlier ones found. `read` never raises: a
stage that fails is replaced by its safe answer and the failure is written into the mail's
defects, so the message is still routed (or quarantined by the rules) instead of being lost. The
safe answer for automation is "machine": when in doubt, do not reply.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

from mailbot.core.attachments import AttachmentReading, read_attachments, readable, wanted_by
from mailbot.core.automation import AutomationConfig, detect_automation
from mailbot.core.conversation import thread_keys
from mailbot.core.intent import IntentLexicon, classify_intent
from mailbot.core.language import LanguageProfile, detect_language
from mailbot.core.orders import NOT_READ, OrderConfig, extract_orders
from mailbot.core.parse import parse_keeping
from mailbot.core.scripts import NO_SCRIPTS, Scripts
from mailbot.core.subjects import NO_PREFIXES, SubjectPrefixes
from mailbot.core.types import (
    AutomationKind,
    AutomationVerdict,
    Identity,
    InboundMail,
    Intent,
    IntentResult,
    OrderExtraction,
    Reading,
    RejectedCandidate,
    ThreadKeys,
)


@dataclass(frozen=True)
class ReadingConfig:
    """All supervisor-tunable reading data (rules/orders.toml and rules/lexicons/*.toml)."""

    orders: OrderConfig
    automation: AutomationConfig
    intents: IntentLexicon
    profiles: tuple[LanguageProfile, ...]
    languages: tuple[str, ...]
    # PDF, .msg, text and CSV attachments are read for order numbers; None: they are not.
    attachments: AttachmentReading | None = None
    # Reply/forward prefixes of subjects (rules/lexicons) and writing systems (rules/scripts.toml).
    subjects: SubjectPrefixes = NO_PREFIXES
    scripts: Scripts = NO_SCRIPTS


def _failed(stage: str, exc: Exception) -> str:
    return f"{stage} failed: {type(exc).__name__}: {exc}"[:200]


def read(raw: bytes, *, identity: Identity, config: ReadingConfig) -> Reading:
    """Read one message. Total: returns a Reading for any bytes."""
    reading = config.attachments
    keep = wanted_by(reading) if reading is not None else None
    max_bytes = reading.limits.max_bytes if reading is not None else 0
    mail, parts = parse_keeping(raw, subjects=config.subjects, keep=keep, max_bytes=max_bytes)
    problems: list[str] = []
    if reading is not None and parts and readable(mail.attachments):
        try:
            texts, skipped = read_attachments(parts, mail, reading)
            mail = dataclasses.replace(mail, attachment_texts=texts)
            problems.extend(skipped)
        except Exception as exc:
            problems.append(_failed("attachment reading", exc))

    try:
        automation = detect_automation(mail, identity, config.automation)
    except Exception as exc:  # a bug here must not make us answer a robot
        problems.append(_failed("automation check", exc))
        automation = AutomationVerdict(
            AutomationKind.AUTO_GENERATED, "automation check failed; treated as machine"
        )
    try:
        keys = thread_keys(mail, identity)
    except Exception as exc:
        problems.append(_failed("thread keys", exc))
        keys = ThreadKeys(our_message_ids=(), case_refs=())
    try:
        orders = extract_orders(mail, config.orders, thread=keys)
    except Exception as exc:
        problems.append(_failed("order extraction", exc))
        orders = OrderExtraction(orders=())
    problems.extend(
        f"order extraction: {r.text} in {r.source} were not read ({r.reason.removeprefix(NOT_READ)})"
        for r in orders.rejected
        if r.reason.startswith(NOT_READ)
    )
    try:
        language = detect_language(language_text(mail), config.languages, config.profiles, config.scripts)
    except Exception as exc:
        problems.append(_failed("language detection", exc))
        language = "en" if "en" in config.languages or not config.languages else config.languages[0]
    try:
        intent = classify_intent(mail, automation, keys, orders, language, config.intents)
    except Exception as exc:
        problems.append(_failed("intent", exc))
        intent = IntentResult(Intent.GENERAL_QUESTION, 0.0, ("intent could not be decided",))

    if intent.intent is Intent.SPAM and orders.orders:
        # Numbers in spam are bait, not orders to act on.
        orders = OrderExtraction(
            orders=(),
            rejected=(
                *orders.rejected,
                *(RejectedCandidate(o.number, o.source, "the mail is spam") for o in orders.orders),
            ),
        )
    if problems:
        mail = dataclasses.replace(mail, defects=(*mail.defects, *problems))
    return Reading(
        mail=mail, automation=automation, orders=orders, language=language, intent=intent, thread_keys=keys
    )


def language_text(mail: InboundMail) -> str:
    """The sender's own words: new text, else (a bare forward, a bounce) what there is."""
    for candidate in (mail.new_text, mail.text, mail.forwarded_text, mail.subject):
        # Stop at the third letter: a long text is not read to the end to learn it has three.
        if len(list(itertools.islice((ch for ch in candidate if ch.isalpha()), 3))) == 3:
            return candidate
    return mail.subject

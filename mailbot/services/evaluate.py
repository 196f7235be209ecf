"""`mailbot eval`: the pure decision path over labelled mail, scored like the acceptance figures.

Each file is read and decided exactly as the worker would (same reading, same rules, same reply
guard) but without a store: "would answer" means the decision carries a reply template.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailbot.core.decide import decide
from mailbot.core.evaluation import Prediction, evaluate, scored_intent
from mailbot.core.reading import ReadingConfig, read
from mailbot.core.rules.schema import RuleSet
from mailbot.core.types import Identity
from mailbot.services.progress import Progress, Steps


class EvalInputError(Exception):
    """The folder or its labels.jsonl cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class EvalContext:
    identity: Identity
    reading_config: ReadingConfig
    ruleset: RuleSet
    mailbox_addresses: Mapping[str, str]  # address -> mailbox name


def load_labels(folder: Path) -> list[dict[str, Any]]:
    path = folder / "labels.jsonl"
    if not path.is_file():
        raise EvalInputError(f"{path}: not found (one JSON object per .eml file, buyer-samples schema)")
    labels: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            label = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
        missing = [k for k in ("file", "intent", "should_reply", "language") if k not in label]
        if missing:
            raise EvalInputError(f"{path}:{number}: missing {', '.join(missing)}")
        if not (folder / str(label["file"])).is_file():
            raise EvalInputError(f"{path}:{number}: {label['file']} does not exist in {folder}")
        labels.append(label)
    return labels


def _mailbox(label: Mapping[str, Any], ctx: EvalContext, to: tuple[str, ...]) -> str:
    if label.get("mailbox"):
        return str(label["mailbox"])
    for address in to:
        if address in ctx.mailbox_addresses:
            return ctx.mailbox_addresses[address]
    return next(iter(ctx.mailbox_addresses.values()), "pm")


def predict(folder: Path, label: Mapping[str, Any], ctx: EvalContext) -> Prediction:
    raw = (folder / str(label["file"])).read_bytes()
    reading = read(raw, identity=ctx.identity, config=ctx.reading_config)
    mail = reading.mail
    mailbox = _mailbox(label, ctx, (*mail.delivered_to, *mail.to, *mail.cc))
    decision = decide(reading, mailbox=mailbox, ruleset=ctx.ruleset, identity=ctx.identity)
    return Prediction(
        file=str(label["file"]),
        orders=reading.orders.numbers,
        intent=scored_intent(reading.intent.intent),
        would_reply=decision.reply_template is not None,
        language=reading.language,
    )


def evaluate_folder(folder: Path, ctx: EvalContext, progress: Progress | None = None) -> dict[str, Any]:
    """Score every labelled mail; `progress` hears (done, total) after each (a corpus takes minutes)."""
    labels = load_labels(folder)
    steps = Steps(progress, len(labels))
    predictions = []
    for label in labels:
        predictions.append(predict(folder, label, ctx))
        steps.advance()
    return evaluate(labels, predictions)

"""Reading quality against labelled mail: the figures `mailbot eval` prints and the suite asserts.

Pure arithmetic over labels (dicts in the buyer-samples labels.jsonl schema) and predictions, so
the same numbers come out of the CLI, the test suite and a supervisor's replay of a rule change.
Definitions:
  order_first        share of mails whose first extracted number is the first labelled one
                     (a mail labelled with none is right only when none is extracted);
  order_exact        extracted numbers equal the labelled ones as a set;
  intent_accuracy    share of mails with the labelled intent (plus precision/recall/f1 per intent);
  reply_precision    of the mails mailbot would answer, the share that should be answered;
  reply_recall       of the mails that should be answered, the share mailbot would answer;
  language_accuracy  share of mails with the labelled language.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailbot.core.types import AutomationKind, Intent, Reading

NO_REPLY_INTENTS = frozenset({Intent.SPAM, Intent.OFF_TOPIC, Intent.AUTO_REPLY, Intent.BOUNCE})
# The labelled sets know ten intents; they label mail that is no request of ours "spam", whether it
# sells something or is a misdirected hotel confirmation. mailbot keeps the two apart (spam is
# dropped, off-topic mail is shown to staff), and both count as "spam" against such a label.
_LABEL_OF = {Intent.OFF_TOPIC: Intent.SPAM}


def scored_intent(intent: Intent) -> str:
    """The label an intent is scored against (off-topic mail against "spam")."""
    return _LABEL_OF.get(intent, intent).value


@dataclass(frozen=True)
class Prediction:
    """What mailbot read out of one labelled file."""

    file: str
    orders: tuple[str, ...]
    intent: str
    would_reply: bool
    language: str


def would_reply(reading: Reading) -> bool:
    """Whether mailbot would answer this mail at all: a person wrote it and it asks something."""
    return reading.automation.kind is AutomationKind.HUMAN and reading.intent.intent not in NO_REPLY_INTENTS


def prediction_from_reading(file: str, reading: Reading) -> Prediction:
    return Prediction(
        file=file,
        orders=reading.orders.numbers,
        intent=scored_intent(reading.intent.intent),
        would_reply=would_reply(reading),
        language=reading.language,
    )


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 1.0


def evaluate(labels: Sequence[Mapping[str, Any]], predictions: Iterable[Prediction]) -> dict[str, Any]:
    """The report dict: n, the six metrics, per-intent precision/recall/f1, and every failure."""
    by_file = {p.file: p for p in predictions}
    failures: list[dict[str, Any]] = []
    first_ok = exact_ok = intent_ok = language_ok = 0
    reply_tp = reply_fp = reply_fn = 0
    intents = sorted({str(label["intent"]) for label in labels} | {p.intent for p in by_file.values()})
    confusion = {i: {"tp": 0, "fp": 0, "fn": 0} for i in intents}

    for label in labels:
        file = str(label["file"])
        prediction = by_file.get(file)
        expected_orders = [str(o) for o in label.get("order_numbers", [])]
        got_orders = list(prediction.orders) if prediction else None
        expected_first = expected_orders[0] if expected_orders else None
        got_first = (got_orders[0] if got_orders else None) if prediction else "<missing>"
        if prediction is not None and got_first == expected_first:
            first_ok += 1
        else:
            failures.append(
                {"file": file, "field": "order_first", "expected": expected_first, "got": got_first}
            )
        if got_orders is not None and set(got_orders) == set(expected_orders):
            exact_ok += 1
        else:
            failures.append(
                {"file": file, "field": "order_exact", "expected": expected_orders, "got": got_orders}
            )

        expected_intent = str(label["intent"])
        got_intent = prediction.intent if prediction else None
        if got_intent == expected_intent:
            intent_ok += 1
            confusion[expected_intent]["tp"] += 1
        else:
            failures.append({"file": file, "field": "intent", "expected": expected_intent, "got": got_intent})
            confusion[expected_intent]["fn"] += 1
            if got_intent is not None:
                confusion[got_intent]["fp"] += 1

        should = bool(label["should_reply"])
        would = bool(prediction.would_reply) if prediction else False
        reply_tp += should and would
        reply_fp += would and not should
        reply_fn += should and not would
        if should != would:
            failures.append({"file": file, "field": "reply", "expected": should, "got": would})

        expected_language = str(label["language"])
        got_language = prediction.language if prediction else None
        if got_language == expected_language:
            language_ok += 1
        else:
            failures.append(
                {"file": file, "field": "language", "expected": expected_language, "got": got_language}
            )

    n = len(labels)
    per_intent: dict[str, dict[str, float]] = {}
    for intent, counts in confusion.items():
        precision = _ratio(counts["tp"], counts["tp"] + counts["fp"])
        recall = _ratio(counts["tp"], counts["tp"] + counts["fn"])
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent[intent] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": counts["tp"] + counts["fn"],
        }
    return {
        "n": n,
        "order_first": round(_ratio(first_ok, n), 4),
        "order_exact": round(_ratio(exact_ok, n), 4),
        "intent_accuracy": round(_ratio(intent_ok, n), 4),
        "intent": per_intent,
        "reply_precision": round(_ratio(reply_tp, reply_tp + reply_fp), 4),
        "reply_recall": round(_ratio(reply_tp, reply_tp + reply_fn), 4),
        "language_accuracy": round(_ratio(language_ok, n), 4),
        "failures": failures,
    }

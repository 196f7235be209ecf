"""evaluate(): the metric definitions behind `mailbot eval` and the buyer-samples thresholds."""

from __future__ import annotations

from typing import Any

from mailbot.core.evaluation import Prediction, evaluate


def label(
    file: str, orders: list[str], intent: str = "cancellation", reply: bool = True, lang: str = "en"
) -> dict[str, Any]:
    return {"file": file, "order_numbers": orders, "intent": intent, "should_reply": reply, "language": lang}


def predict(
    file: str, orders: tuple[str, ...], intent: str = "cancellation", reply: bool = True, lang: str = "en"
) -> Prediction:
    return Prediction(file=file, orders=orders, intent=intent, would_reply=reply, language=lang)


def test_first_order_must_match_and_no_order_is_right_only_when_none_is_found() -> None:
    report = evaluate(
        [label("a", ["1", "2"]), label("b", []), label("c", [])],
        [predict("a", ("1",)), predict("b", ()), predict("c", ("9",))],
    )
    assert report["order_first"] == round(2 / 3, 4)
    assert report["order_exact"] == round(1 / 3, 4)


def test_exact_compares_sets_not_order() -> None:
    report = evaluate([label("a", ["1", "2"])], [predict("a", ("2", "1"))])
    assert report["order_exact"] == 1.0
    assert report["order_first"] == 0.0


def test_reply_precision_and_recall() -> None:
    labels = [label("a", [], reply=True), label("b", [], reply=False), label("c", [], reply=True)]
    predictions = [predict("a", (), reply=True), predict("b", (), reply=True), predict("c", (), reply=False)]
    report = evaluate(labels, predictions)
    assert report["reply_precision"] == 0.5
    assert report["reply_recall"] == 0.5


def test_per_intent_precision_recall_and_f1() -> None:
    labels = [label("a", [], "spam"), label("b", [], "spam"), label("c", [], "bounce")]
    predictions = [predict("a", (), "spam"), predict("b", (), "bounce"), predict("c", (), "bounce")]
    report = evaluate(labels, predictions)
    assert report["intent_accuracy"] == round(2 / 3, 4)
    assert report["intent"]["spam"] == {"precision": 1.0, "recall": 0.5, "f1": round(2 / 3, 4), "support": 2}
    assert report["intent"]["bounce"]["precision"] == 0.5


def test_every_miss_is_listed_as_a_failure() -> None:
    report = evaluate([label("a", ["1"], lang="fr")], [predict("a", ("2",), "spam", False, "en")])
    fields = {f["field"] for f in report["failures"]}
    assert fields == {"order_first", "order_exact", "intent", "reply", "language"}
    assert {"file": "a", "field": "language", "expected": "fr", "got": "en"} in report["failures"]


def test_a_missing_prediction_counts_as_wrong_everywhere() -> None:
    report = evaluate([label("a", [])], [])
    assert report["n"] == 1
    assert report["order_first"] == 0.0
    assert report["intent_accuracy"] == 0.0
    assert report["reply_recall"] == 0.0

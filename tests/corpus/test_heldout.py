"""Reading quality on our own held-out sets, asserted at the same thresholds as the buyer samples.

`tests/eml/heldout*` were written by people who never saw `rules/` or `mailbot/`, in the label
schema of the buyer samples. A rule change that only fits the buyer samples shows up here. The
first measurement of each set is in its README (the honest figure for mail never seen).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from corpus.test_buyer_samples import THRESHOLDS, US
from mailbot.adapters.lexicons import load_reading_config
from mailbot.core.evaluation import evaluate, prediction_from_reading
from mailbot.core.reading import read

EML = Path(__file__).resolve().parents[1] / "eml"
SETS = ("heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6")


@pytest.fixture(scope="module", params=SETS)
def report(request: pytest.FixtureRequest) -> dict[str, Any]:
    folder = EML / request.param
    labels = [json.loads(line) for line in (folder / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    config = load_reading_config(Path(__file__).resolve().parents[2] / "rules")
    predictions = [
        prediction_from_reading(
            label["file"], read((folder / label["file"]).read_bytes(), identity=US, config=config)
        )
        for label in labels
    ]
    return evaluate(labels, predictions)


@pytest.mark.parametrize(("metric", "threshold"), THRESHOLDS.items())
def test_held_out_metric_meets_its_threshold(report: dict[str, Any], metric: str, threshold: float) -> None:
    failures = [f for f in report["failures"] if f["field"] in {metric, metric.split("_")[0]}]
    assert report[metric] >= threshold, failures

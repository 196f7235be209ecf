"""The real-world robustness corpus: every message is read without an exception, and machine mail is
recognised wherever it carries the standard signs (the MANIFEST notes say which rows do)."""

from __future__ import annotations

import csv
import hashlib
import os
import time
from pathlib import Path

import pytest

from mailbot.adapters.lexicons import load_reading_config
from mailbot.adapters.rulefiles import load_ruleset
from mailbot.core.decide import decide
from mailbot.core.evaluation import would_reply
from mailbot.core.reading import read
from mailbot.core.rules.schema import RuleSet
from mailbot.core.types import AutomationKind, Identity

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MAILBOT_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"
MANIFEST = CORPUS / "MANIFEST.tsv"
CONFIG = load_reading_config(REPO / "rules")
US = Identity(
    addresses=frozenset({"ta-pm@support.example.test", "ta-inspection@support.example.test"}),
    message_id_domain="mailbot.example.test",
    case_tag="Case",
)
# Notes that mark a message as machine-written by its standard headers or structure.
MACHINE_NOTES = ("bounce(", "Auto-Submitted=", "Precedence=", "auto-reply(")


def _rows() -> list[dict[str, str]]:
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


ROWS = _rows()


@pytest.fixture(autouse=True)
def _corpus_present() -> None:
    if not ROWS:
        if os.environ.get("CI") == "true":
            pytest.fail(f"real-world corpus missing at {CORPUS}")
        pytest.skip(f"real-world corpus missing at {CORPUS}")


@pytest.fixture(scope="module")
def machine_rows() -> list[dict[str, str]]:
    """The bounces and auto-replies (and bulk mail) the notes derive from standard headers."""
    return [row for row in ROWS if any(note in row["notes"] for note in MACHINE_NOTES)]


def test_the_manifest_lists_every_file() -> None:
    listed = {row["file"] for row in ROWS}
    present = {p.name for p in (CORPUS / "realworld").glob("*.eml")}
    assert listed == present
    assert len(ROWS) == 759


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_ruleset(REPO / "rules")


@pytest.mark.parametrize("row", ROWS, ids=[row["file"] for row in ROWS])
def test_every_message_is_intact_read_and_decided_without_an_exception(
    row: dict[str, str], ruleset: RuleSet
) -> None:
    raw = (CORPUS / "realworld" / row["file"]).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == row["sha256"]
    started = time.perf_counter()
    reading = read(raw, identity=US, config=CONFIG)
    assert time.perf_counter() - started < 5.0
    assert reading.mail.sha256 == row["sha256"]
    stage_failures = [d for d in reading.mail.defects if " failed: " in d or d.startswith("parser failure")]
    assert stage_failures == []
    decision = decide(reading, mailbox="pm", ruleset=ruleset, identity=US)
    assert decision.outcome.value in {"routed", "ignored", "quarantined"}
    if reading.automation.is_machine:
        assert decision.reply_template is None


def test_the_fixture_finds_the_machine_rows(machine_rows: list[dict[str, str]]) -> None:
    dsn = [row for row in machine_rows if "bounce(DSN multipart/report)" in row["notes"]]
    assert len(dsn) == 132
    assert len(machine_rows) >= 150


def test_every_delivery_status_report_is_a_bounce(machine_rows: list[dict[str, str]]) -> None:
    missed = []
    for row in machine_rows:
        if "bounce(DSN multipart/report)" not in row["notes"]:
            continue
        reading = read((CORPUS / "realworld" / row["file"]).read_bytes(), identity=US, config=CONFIG)
        if reading.automation.kind is not AutomationKind.BOUNCE:
            missed.append((row["file"], reading.automation.kind.value, reading.automation.reason))
    assert missed == []


def test_every_bounce_and_auto_reply_with_standard_signs_is_machine_mail_and_never_answered(
    machine_rows: list[dict[str, str]],
) -> None:
    answered = []
    for row in machine_rows:
        reading = read((CORPUS / "realworld" / row["file"]).read_bytes(), identity=US, config=CONFIG)
        if not reading.automation.is_machine or would_reply(reading):
            answered.append((row["file"], row["notes"][:60], reading.automation.reason))
    assert answered == []


def test_out_of_office_replies_are_recognised_as_auto_replies(machine_rows: list[dict[str, str]]) -> None:
    rows = [row for row in machine_rows if "auto-reply(OOO" in row["notes"]]
    kinds = {
        row["file"]: read(
            (CORPUS / "realworld" / row["file"]).read_bytes(), identity=US, config=CONFIG
        ).automation.kind
        for row in rows
    }
    assert rows
    assert all(kind is AutomationKind.AUTO_REPLY for kind in kinds.values()), kinds

"""The real-world corpus, read for loop safety: every bounce, auto-reply and report in it is recognised
as machine mail of the right kind, by one named check of the automation chain.

The corpus lives outside the repository (`shared/corpus`, or `$MAILBOT_SHARED/corpus`); the tests
skip without it on a laptop and fail without it in CI.
"""

from __future__ import annotations

import csv
import os
from functools import cache
from pathlib import Path

import pytest
from fixtures.servers import unavailable

from mailbot.adapters.lexicons import load_reading_config
from mailbot.core.evaluation import would_reply
from mailbot.core.reading import read
from mailbot.core.types import AutomationKind, Identity, Reading

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("MAILBOT_SHARED", REPO.parent / "shared")) / "corpus"
CONFIG = load_reading_config(REPO / "rules")
US = Identity(addresses=frozenset({"ta-pm@support.example.test"}), message_id_domain="mailbot.example.test")
# The BounceParser collection is real bounces and auto-replies, except the four spam mails it keeps
# as the originals that spam-rejection bounces quote.
SPAM_ORIGINALS = {
    "perl-bounceparser__spam-bogus-email-in-report.eml",
    "perl-bounceparser__spam-lots-of-bogus-addresses.eml",
    "perl-bounceparser__spam-with-badly-parsed-email.eml",
    "perl-bounceparser__spam-with-image.eml",
}


def _rows() -> list[dict[str, str]]:
    path = CORPUS / "MANIFEST.tsv"
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


ROWS = _rows()


@pytest.fixture(autouse=True)
def _corpus_present() -> None:
    if not ROWS:
        unavailable(f"real-world corpus missing at {CORPUS}")


@cache
def reading(name: str) -> Reading:
    return read((CORPUS / "realworld" / name).read_bytes(), identity=US, config=CONFIG)


def rows_noted(note: str) -> list[str]:
    return [row["file"] for row in ROWS if note in row["notes"]]


def test_every_mail_of_the_bounce_collection_is_machine_mail_and_never_answered() -> None:
    collection = [
        row["file"] for row in ROWS if row["source_repo"] == "rjbs/Mail-DeliveryStatus-BounceParser"
    ]
    answered = [
        (name, reading(name).automation.kind.value)
        for name in collection
        if name not in SPAM_ORIGINALS
        and (not reading(name).automation.is_machine or would_reply(reading(name)))
    ]
    assert len(collection) == 128
    assert answered == []


def test_every_bounce_the_manifest_recognises_by_sender_or_subject_is_a_bounce() -> None:
    names = rows_noted("bounce(heuristic: From/Subject)")
    assert len(names) == 16
    # The manifest's heuristic also lists one person's mail sent from a postmaster@ address (a link
    # test): machine mail all the same, since a mail system's address never reads replies.
    not_bounces = {"mailgun-flanker__long-links.eml"}
    missed = [
        (n, reading(n).automation.reason)
        for n in names
        if reading(n).automation.kind is not AutomationKind.BOUNCE and n not in not_bounces
    ]
    assert missed == []
    assert all(reading(n).automation.kind is AutomationKind.NOREPLY for n in not_bounces)


@pytest.mark.parametrize("note", ["ARF complaint/feedback-report", "MDN read-receipt"])
def test_abuse_reports_and_read_receipts_are_machine_mail(note: str) -> None:
    names = rows_noted(note)
    assert names
    assert [n for n in names if not reading(n).automation.is_machine] == []


def test_every_machine_verdict_names_the_check_that_decided_it() -> None:
    for row in ROWS[:200]:
        verdict = reading(row["file"]).automation
        hits = [step for step in verdict.trace if step.hit]
        if verdict.is_machine:
            assert len(hits) == 1 and hits[0] == verdict.trace[-1], row["file"]
        else:
            assert hits == [], row["file"]

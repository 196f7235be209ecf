"""mail-parser is the parser; the stdlib parser takes over, with a recorded defect, where it raises."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import mailparser
import pytest
from fixtures.servers import unavailable

from mailbot.core import mail_engine
from mailbot.core.parse import parse
from mailbot.core.types import ReceivedHop

EML = Path(__file__).resolve().parents[1] / "eml"
REPO = Path(__file__).resolve().parents[2]
REALWORLD = Path(os.environ.get("MAILBOT_SHARED", REPO.parent / "shared")) / "corpus" / "realworld"
# The shared real-world files on which mail-parser 4.8 raises (its epilogue lookup finds no epilogue).
RAISING = (
    "stalwart-mail-parser__malformed_001.eml",
    "stalwart-mail-parser__malformed_003.eml",
    "stalwart-mail-parser__malformed_013.eml",
)


def load(name: str) -> bytes:
    return (EML / name).read_bytes()


def realworld(name: str) -> bytes:
    path = REALWORLD / name
    if not path.is_file():
        unavailable(f"real-world corpus missing at {REALWORLD}")
    return path.read_bytes()


def test_ordinary_mail_is_read_by_mail_parser_without_a_fallback() -> None:
    parsed = mail_engine.parse_message(load("engine-received-chain.eml"))
    mail = parse(load("engine-received-chain.eml"))
    assert not any(d.startswith("mail-parser raised") for d in (*parsed.defects, *mail.defects))
    assert "order 2603 0488 1200 7731" in mail.text


def test_the_received_chain_is_kept_first_relay_first() -> None:
    mail = parse(load("engine-received-chain.eml"))
    assert mail.received == (
        ReceivedHop(
            hop=1,
            from_host="[10.0.0.7] (dsl-10-0-0-7.example [198.51.100.7])",
            by_host="mail.hoffmann-moebel.example (Postfix)",
            protocol="ESMTPSA",
            id="33A1F",
            for_addr="",
            date=datetime(2026, 3, 4, 8, 12, 44, tzinfo=UTC),
        ),
        ReceivedHop(
            hop=2,
            from_host="mail.hoffmann-moebel.example (mail.hoffmann-moebel.example [192.0.2.44])",
            by_host="mx.support.example.test (Postfix)",
            protocol="ESMTPS",
            id="7KQ2ZB",
            for_addr="ta-pm@support.example.test",
            date=datetime(2026, 3, 4, 8, 12, 46, tzinfo=UTC),
        ),
    )


def test_mail_parser_header_defect_categories_are_recorded() -> None:
    mail = parse(load("engine-received-chain.eml"))  # Date says Tuesday; 4 March 2026 is a Wednesday
    assert "mail-parser: DateHeaderDefect: date: weekday-mismatch" in mail.defects


def test_a_part_hidden_in_the_epilogue_is_recorded_and_listed_but_not_read() -> None:
    mail = parse(load("engine-epilogue-hidden-part.eml"))
    assert mail_engine.HIDDEN_EPILOGUE_PART in mail.defects
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("report.zip", "application/zip")]
    assert mail.text == "Please see the attached inspection report."


@pytest.mark.parametrize("name", ["engine-received-chain.eml", "engine-epilogue-hidden-part.eml"])
def test_the_reader_sees_the_same_chain_and_defect_categories_as_mail_parser_itself(name: str) -> None:
    raw = load(name)
    full = mailparser.parse_from_bytes(raw)
    parsed = mail_engine.parse_message(raw)
    assert [hop.id for hop in parsed.received] == [hop["id"] for hop in full.received]
    categories = {d.split(":")[1].strip() for d in parsed.defects if d.startswith("mail-parser: ")}
    assert categories == set(full.defects_categories) & {
        "AddressHeaderDefect",
        "DateHeaderDefect",
        "ReceivedHeaderDefect",
    }


@pytest.mark.parametrize("name", RAISING)
def test_the_stdlib_parser_takes_over_where_mail_parser_raises(name: str) -> None:
    raw = realworld(name)
    with pytest.raises(AttributeError):
        mailparser.parse_from_bytes(raw)
    mail = parse(raw)
    assert any(
        d.startswith("mail-parser raised AttributeError") and d.endswith("; read with the stdlib parser")
        for d in mail.defects
    )
    assert mail.text.strip()
    assert not any(d.startswith("parser failure") for d in mail.defects)

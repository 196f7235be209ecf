"""Logs and the observability settings: JSON lines carry the message context, buyers stay anonymous."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.observability import AddContext, JsonFormatter, RedactAddresses, TextFormatter, log_context
from mailbot.settings import SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]

IMAP = """
[mailboxes.pm]
address = "ta-pm@support.example.test"
service = "Production Monitoring"

[mailboxes.pm.imap]
host = "imap.example.test"
username = "ta-pm@support.example.test"
password_secret = "pm-imap-password"
"""


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactAddresses(["ta-pm@support.example.test"]))
    handler.addFilter(AddContext())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.observability")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler
    logger.handlers.clear()


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_mailbox_ledger_id_and_case_ref_from_the_context(lines) -> None:  # type: ignore[no-untyped-def]
    logger, stream, _handler = lines
    with log_context(mailbox="pm"):
        logger.info("polled")
        with log_context(ledger_id=42, case_ref="K7Q2XZ"):
            logger.info("routed")
    logger.info("outside")
    polled, routed, outside = records(stream)
    assert polled["mailbox"] == "pm" and "ledger_id" not in polled
    assert (routed["mailbox"], routed["ledger_id"], routed["case_ref"]) == ("pm", 42, "K7Q2XZ")
    assert "mailbox" not in outside


def test_fields_passed_with_extra_win_over_the_context(lines) -> None:  # type: ignore[no-untyped-def]
    logger, stream, _handler = lines
    with log_context(mailbox="pm", case_ref="OLD111"):
        logger.info("joined", extra={"case_ref": "NEW222", "ledger_id": 7})
    [line] = records(stream)
    assert (line["case_ref"], line["ledger_id"]) == ("NEW222", 7)


def test_buyer_addresses_are_masked_at_info_but_our_own_stay(lines) -> None:  # type: ignore[no-untyped-def]
    logger, stream, _handler = lines
    logger.info("reply to jane.doe@buyer.example from ta-pm@support.example.test")
    logger.debug("reply to jane.doe@buyer.example")
    info, debug = records(stream)
    assert info["message"] == "reply to j***@buyer.example from ta-pm@support.example.test"
    assert debug["message"] == "reply to jane.doe@buyer.example"


def test_text_lines_name_the_message_context_at_the_end() -> None:
    record = logging.LogRecord("mailbot", logging.INFO, __file__, 1, "routed", None, None)
    record.mailbox, record.case_ref = "pm", "K7Q2XZ"
    assert TextFormatter().format(record).endswith("routed [mailbox=pm case_ref=K7Q2XZ]")


def test_the_logging_section_sets_the_json_format(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[logging]\nformat = "json"\n' + IMAP, encoding="utf-8")
    assert load_settings(path).log_format == "json"


def test_observability_is_off_by_default_and_idle_on(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(IMAP, encoding="utf-8")
    settings = load_settings(path)
    assert settings.observability.listen is None
    assert settings.mailboxes["pm"].imap is not None and settings.mailboxes["pm"].imap.idle is True


def test_a_listen_address_without_a_port_is_one_line_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[observability]\nlisten = "127.0.0.1"\n' + IMAP, encoding="utf-8")
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert "observability.listen" in str(info.value) and "HOST:PORT" in str(info.value)
    assert "\n" not in str(info.value)


def test_our_own_message_ids_stay_readable_while_buyer_addresses_are_masked() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactAddresses(["ta-pm@support.example.test"], ["mailbot.example.test"]))
    logger = logging.getLogger("test.observability.own-domain")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.info("reply <r-17.k7q2xz@mailbot.example.test> to maria.lopez@andes-buyer.example failed")
    expected = "reply <r-17.k7q2xz@mailbot.example.test> to m***@andes-buyer.example failed"
    assert stream.getvalue().strip() == expected

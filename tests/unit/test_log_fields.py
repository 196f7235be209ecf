"""Fields learnt inside a `log_context` block (the ledger id) reach later lines of that block only."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from mailbot.observability import AddContext, JsonFormatter, LogFields, log_context


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(AddContext())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.log_fields")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.handlers.clear()


def fields_of(stream: io.StringIO) -> list[dict[str, object]]:
    keys = ("mailbox", "ledger_id", "case_ref")
    lines = stream.getvalue().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k in keys} for line in lines]


def test_fields_added_in_a_block_reach_the_later_lines_of_that_block_only(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    with log_context(mailbox="pm") as fields:
        logger.info("fetched")
        fields.add(ledger_id=7, case_ref="K7Q2XZ", missing=None)
        logger.info("routed")
    logger.info("next poll")
    assert fields_of(stream) == [
        {"mailbox": "pm"},
        {"mailbox": "pm", "ledger_id": 7, "case_ref": "K7Q2XZ"},
        {},
    ]


def test_a_handle_outside_its_block_adds_nothing_to_the_thread(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    with log_context(mailbox="pm") as fields:
        pass
    fields.add(ledger_id=1)
    LogFields().add(case_ref="OLD111")  # a default handle, made outside any block
    logger.info("later")
    assert fields_of(stream) == [{}]


def test_a_traceback_at_info_and_above_masks_the_buyer_address_too() -> None:
    from mailbot.observability import RedactAddresses

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactAddresses(["ta-pm@support.example.test"]))
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.log_fields.traceback")
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        raise ValueError("no case for jane.doe@buyer.example")
    except ValueError:
        logger.exception("applying a mail failed")
    logger.handlers.clear()
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert "ValueError: no case for j***@buyer.example" in str(line["error"])
    assert "jane.doe" not in stream.getvalue()

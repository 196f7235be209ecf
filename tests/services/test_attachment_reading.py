"""Attachment limits from `[limits]` reach the reading process, and a hostile PDF costs a defect there,
not the mail's time budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.adapters.templates import TemplateStore
from mailbot.core.attachments import AttachmentLimits
from mailbot.core.reading import ReadingConfig
from mailbot.core.types import Identity
from mailbot.services.reading_worker import ProcessReader
from mailbot.services.rules_admin import RulesWatcher

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "eml" / "attachments"
IDENTITY = Identity(addresses=frozenset({"support@ta-support.example"}), message_id_domain="example.test")
LIMITS = AttachmentLimits(max_bytes=1024 * 1024, max_pages=5, max_chars=10_000, seconds=0.5)


@pytest.fixture(scope="module")
def config() -> ReadingConfig:
    templates = TemplateStore(REPO / "templates")
    watcher = RulesWatcher(REPO / "rules", known_templates=templates.names, attachment_limits=LIMITS)
    return watcher.reading()


@pytest.fixture
def reader() -> Iterator[ProcessReader]:
    process_reader = ProcessReader(IDENTITY)
    yield process_reader
    process_reader.close()


def test_the_watchers_reading_config_carries_the_attachment_limits(config: ReadingConfig) -> None:
    assert config.attachments is not None
    assert config.attachments.limits == LIMITS
    assert config.attachments.extractor is not None


def test_the_reading_process_finds_the_order_in_an_attached_pdf(
    reader: ProcessReader, config: ReadingConfig
) -> None:
    raw = (FIXTURES / "pdf-order.eml").read_bytes()
    [result] = reader.submit([raw], config, budget=10).results()
    assert result.reading is not None
    assert result.reading.orders.numbers == ("2891447188360052",)


def test_a_slow_pdf_in_the_reading_process_is_a_defect_within_the_budget(
    reader: ProcessReader, config: ReadingConfig
) -> None:
    raw = (FIXTURES / "pdf-slow.eml").read_bytes()
    [result] = reader.submit([raw], config, budget=3).results()
    assert result.error is None and result.reading is not None
    assert result.seconds < 0.5 + 1.0
    assert "attachment scan-export.pdf not read: time bound reached (0.5 s for a mail's attachments)" in (
        result.reading.mail.defects
    )

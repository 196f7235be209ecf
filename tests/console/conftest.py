"""Fixtures of the console tests: an installation whose store the real intake filled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .installation import Installation, make_installation


@pytest.fixture
def installation(database_url: str, tmp_path: Path) -> Iterator[Installation]:
    made = make_installation(tmp_path, database_url)
    yield made
    made.engine.dispose()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless chromium for the session (Debian's, via Playwright's executable_path)."""
    from playwright.sync_api import sync_playwright

    from .browser import CHROMIUM_ARGS, chromium_path

    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def sqlite_installation(tmp_path: Path) -> Iterator[Installation]:
    """The browser tests run on SQLite only: what they check is the browser's side, not the database's."""
    made = make_installation(tmp_path, f"sqlite:///{tmp_path / 'mailbot.db'}")
    yield made
    made.engine.dispose()

"""Fixtures of the console tests: an installation whose store the real intake filled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .installation import Installation, make_installation


@pytest.fixture
def installation(database_url: str, tmp_path: Path) -> Iterator[Installation]:
    made = make_installation(tmp_path, database_url)
    yield made
    made.engine.dispose()
